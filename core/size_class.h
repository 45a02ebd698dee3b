/* Size classes: 16-byte steps up to 128 bytes, four classes per power of two
 * up to 1 KiB (160, 192, 224, 256, 320, ...), then eight per power of two
 * up to 2 MiB (1152, 1280, ..., 2048, 2304, ...). A block wastes at most a
 * quarter of its size up to 1 KiB and an eighth above, where the bytes lost
 * to rounding add up: sqlite's page cache (2-5 KiB blocks) came out 19%
 * bigger than its requests with four classes per doubling above 1 KiB, and
 * 7% with eight. Below 1 KiB, where blocks are many and each class's spans
 * keep their own holes, fewer classes waste less. Classes up to
 * MS_SMALL_MAX share spans; the "medium" ones above it (288 KiB .. 2 MiB)
 * have a span each, so many of them share one segment (one kernel mapping)
 * instead of a mapping each. Every class size is a multiple of 16, and of
 * any power of two up to its own lowest set bit, which is what aligned
 * allocation relies on. */
#ifndef MS_SIZE_CLASS_H
#define MS_SIZE_CLASS_H
#include <stddef.h>
#include <stdint.h>
#include "types.h"

#define MS_CLASS_COUNT 108
#define MS_SMALL_MAX ((size_t)256 * 1024)   /* larger classes: one block per span */
#define MS_MEDIUM_MAX ((size_t)2048 * 1024) /* larger blocks are mapped alone */
#define MS_CLASS_TABLE_MAX 1024           /* sizes the lookup table covers */

/* Class of sizes 0..1024, indexed by (size + 15) / 16. */
extern const uint8_t ms_class_table[MS_CLASS_TABLE_MAX / 16 + 1] MS_HIDDEN;

#define MS_CLASS_TABLE_COUNT 20 /* classes the table covers: 16 .. 1024 */

/* Class of a size the table does not cover (above MS_CLASS_TABLE_MAX): the
 * doubling it falls in, then the three bits below its top one. */
static inline unsigned ms_size_class_above_table(size_t size) {
    size_t s = size - 1;
    unsigned top = 63u - (unsigned)__builtin_clzll(s); /* >= 10 here */
    return MS_CLASS_TABLE_COUNT + (top - 10u) * 8u + (unsigned)((s >> (top - 3u)) & 7u);
}

static inline unsigned ms_size_class_of(size_t size) {
    if (size <= MS_CLASS_TABLE_MAX)
        return ms_class_table[(size + 15) >> 4];
    return ms_size_class_above_table(size);
}

static inline size_t ms_size_class_size(unsigned size_class) {
    if (size_class < 8)
        return (size_t)(size_class + 1) * 16;
    if (size_class < MS_CLASS_TABLE_COUNT) {
        unsigned group = (size_class - 8) / 4, step = (size_class - 8) % 4;
        return (size_t)(5 + step) * ((size_t)32 << group);
    }
    unsigned group = (size_class - MS_CLASS_TABLE_COUNT) / 8;
    unsigned step = (size_class - MS_CLASS_TABLE_COUNT) % 8;
    return (size_t)(9 + step) * ((size_t)128 << group);
}

/* Slices per span: one for classes up to 8 KiB; above, up to MS_SMALL_MAX,
 * enough for sixteen blocks up to 64 KiB and for eight or more beyond, so
 * big classes still amortise the span set-up; and just enough for one
 * block above (plus the secure build's guard page, in case the span ends
 * the segment). */
unsigned ms_size_class_slices(unsigned size_class) MS_HIDDEN;

#endif
