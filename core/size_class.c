#include "size_class.h"
#include "secure.h"

/* Entry i covers sizes 16*(i-1)+1 .. 16*i; entry 0 is malloc(0). */
const uint8_t ms_class_table[MS_CLASS_TABLE_MAX / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7,                   /* ..128 */
    8, 8, 9, 9, 10, 10, 11, 11,                  /* ..256 */
    12, 12, 12, 12, 13, 13, 13, 13,              /* ..384 */
    14, 14, 14, 14, 15, 15, 15, 15,              /* ..512 */
    16, 16, 16, 16, 16, 16, 16, 16,              /* ..640 */
    17, 17, 17, 17, 17, 17, 17, 17,              /* ..768 */
    18, 18, 18, 18, 18, 18, 18, 18,              /* ..896 */
    19, 19, 19, 19, 19, 19, 19, 19,              /* ..1024 */
};
_Static_assert(sizeof ms_class_table == 65, "table covers 0..1024");

/* Spans of classes above 8 KiB hold sixteen blocks while that takes at
 * most this many slices (1 MiB: classes to 64 KiB), as many blocks as fit
 * in it up to 128 KiB, and eight above. malloc moves to another span when
 * its current one runs out of holes, and the span it leaves takes its next
 * free on the slow path: with eight blocks, one malloc and one free in
 * eight were slow under churn of 1-64 KiB blocks; sixteen took 13% fewer
 * instructions and 1 MiB more RSS (13.5 MiB, still below every peer). */
#define SPAN_SIXTEEN_SLICES 16

unsigned ms_size_class_slices(unsigned size_class) {
    size_t size = ms_size_class_size(size_class);
    if (size <= 8192)
        return 1;
    if (size > MS_SMALL_MAX)
        return (unsigned)((size + MS_SECURE_GUARD + MS_SLICE_SIZE - 1) / MS_SLICE_SIZE);
    unsigned eight = (unsigned)((size * 8 + MS_SLICE_SIZE - 1) / MS_SLICE_SIZE);
    unsigned sixteen = (unsigned)((size * 16 + MS_SLICE_SIZE - 1) / MS_SLICE_SIZE);
    return sixteen <= SPAN_SIXTEEN_SLICES ? sixteen
                                          : eight > SPAN_SIXTEEN_SLICES ? eight : SPAN_SIXTEEN_SLICES;
}
_Static_assert(MS_MEDIUM_MAX + MS_SECURE_GUARD <= MS_SEGMENT_SIZE - MS_SLICE_SIZE,
               "the largest class fits a segment beside its header");
