/* Size classes: 16-byte steps up to 128 bytes, then four classes per power
 * of two (160, 192, 224, 256, 320, ...) up to 2 MiB, so a block wastes at
 * most a quarter of its size. Classes up to MS_SMALL_MAX share spans; the
 * "medium" ones above it (320 KiB .. 2 MiB) have a span each, so many of
 * them share one segment (one kernel mapping) instead of a mapping each. Every class size is a multiple of 16, and of
 * any power of two up to its own lowest set bit, which is what aligned
 * allocation relies on. */
#ifndef MS_SIZE_CLASS_H
#define MS_SIZE_CLASS_H
#include <stddef.h>
#include <stdint.h>
#include "types.h"

#define MS_CLASS_COUNT 64
#define MS_SMALL_MAX ((size_t)256 * 1024)   /* larger classes: one block per span */
#define MS_MEDIUM_MAX ((size_t)2048 * 1024) /* larger blocks are mapped alone */
#define MS_CLASS_TABLE_MAX 1024           /* sizes the lookup table covers */

/* Class of sizes 0..1024, indexed by (size + 15) / 16. */
extern const uint8_t ms_class_table[MS_CLASS_TABLE_MAX / 16 + 1] MS_HIDDEN;

static inline unsigned ms_size_class_of(size_t size) {
    if (size <= MS_CLASS_TABLE_MAX)
        return ms_class_table[(size + 15) >> 4];
    size_t s = size - 1;
    unsigned top = 63u - (unsigned)__builtin_clzll(s); /* >= 10 here */
    return 8u + (top - 7u) * 4u + (unsigned)((s >> (top - 2u)) & 3u);
}

static inline size_t ms_size_class_size(unsigned size_class) {
    if (size_class < 8)
        return (size_t)(size_class + 1) * 16;
    unsigned group = (size_class - 8) / 4, step = (size_class - 8) % 4;
    return (size_t)(5 + step) * ((size_t)32 << group);
}

/* Slices per span: one for classes up to 8 KiB, enough for eight blocks up
 * to MS_SMALL_MAX, so big classes still amortise the span set-up, and just
 * enough for one block above (plus the secure build's guard page, in case
 * the span ends the segment). */
unsigned ms_size_class_slices(unsigned size_class) MS_HIDDEN;

#endif
