/* Segments: the 4 MiB-aligned regions mapped from the OS, kept on one
 * global chain (MeMS's main chain), found from any address through the
 * segment map, and cut into slices for spans. */
#ifndef MS_SEGMENT_H
#define MS_SEGMENT_H
#include <stdbool.h>
#include <stdint.h>
#include "host.h"
#include "secure.h"
#include "types.h"

/* One byte per 4 MiB of address space: MS_MAP_SEGMENT where a segment header
 * starts. It lives in .bss, so untouched parts cost no memory, and free()
 * can test any pointer, even before initialisation, without faulting.
 * MS_MAP_TAIL marks where a large block aligned to 4 MiB or more starts:
 * its header is one slot below (see large.c). */
enum { MS_MAP_NONE = 0, MS_MAP_SEGMENT = 1, MS_MAP_TAIL = 2 };
extern uint8_t ms_segment_map[MS_MAP_ENTRIES] MS_HIDDEN;

static inline bool ms_segment_mapped(const void *p) {
    uintptr_t a = (uintptr_t)p;
    return MS_LIKELY((a >> MS_SEGMENT_SHIFT) < MS_MAP_ENTRIES) &&
           ms_segment_map[a >> MS_SEGMENT_SHIFT] == MS_MAP_SEGMENT;
}

static inline segment_t *ms_segment_base(const void *p) {
    return (segment_t *)((uintptr_t)p & ~(uintptr_t)MS_SEGMENT_MASK);
}

/* The segment holding p, or NULL if mspace never mapped p's region. */
static inline segment_t *ms_segment_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    if ((a >> MS_SEGMENT_SHIFT) >= MS_MAP_ENTRIES)
        return NULL;
    switch (ms_segment_map[a >> MS_SEGMENT_SHIFT]) {
    case MS_MAP_SEGMENT:
        return ms_segment_base(p);
    case MS_MAP_TAIL:
        return (segment_t *)((char *)ms_segment_base(p) - MS_SEGMENT_SIZE);
    default:
        return NULL;
    }
}

static inline span_t *ms_segment_slice_of(segment_t *segment, const void *p) {
    return &segment->spans[((uintptr_t)p >> MS_SLICE_SHIFT) & (MS_SLICES_PER_SEGMENT - 1)];
}

static inline void *ms_segment_slice_base(segment_t *segment, const span_t *slice) {
    return (char *)segment + (size_t)(slice - segment->spans) * MS_SLICE_SIZE;
}

/* Bytes of slices [first, first + count) that can hold blocks: all of
 * them, less the hardened build's guard page at the segment's end. */
static inline size_t ms_segment_room(unsigned first, unsigned count) {
    size_t bytes = (size_t)count * MS_SLICE_SIZE;
    return first + count == MS_SLICES_PER_SEGMENT ? bytes - MS_SECURE_GUARD : bytes;
}

/* Maps a small segment for heap, on the chain; NULL with errno on failure. */
segment_t *ms_segment_create(heap_t *heap) MS_HIDDEN;
/* The same from a mapping that held a freed large block (large_cache.c),
 * 4 MiB-aligned, resized to a segment: its resident pages serve spans
 * instead of being unmapped while a new segment faults fresh ones. NULL
 * (old unmapped) if it cannot be resized. */
segment_t *ms_segment_recycle(heap_t *heap, segment_t *old) MS_HIDDEN;
/* Puts a freshly mapped segment (small or large) on the chain and the map. */
void ms_segment_register(segment_t *segment) MS_HIDDEN;
/* Takes a segment off the map and the chain; the caller unmaps it. */
void ms_segment_unregister(segment_t *segment) MS_HIDDEN;
void ms_segment_destroy(segment_t *segment) MS_HIDDEN;

/* First run of `count` free slices, marked used; its head index, or -1. */
int ms_segment_take_slices(segment_t *segment, unsigned count) MS_HIDDEN;
/* Returns a run of slices; their pages stay resident until purged. */
void ms_segment_give_slices(segment_t *segment, unsigned first, unsigned count) MS_HIDDEN;
static inline bool ms_segment_is_empty(const segment_t *segment) {
    return segment->used_slices == 1; /* only the header slice */
}
/* madvise the free slices whose pages may still be resident: all of them,
 * or (everything false) those that were already free and resident at the
 * previous call, so a slice freed a moment ago is not faulted in again
 * right away. Bytes purged. */
size_t ms_segment_purge(segment_t *segment, bool everything) MS_HIDDEN;
/* The span just taken starts the upper half of the segment (2 MiB, the size
 * and alignment of a huge page) and the caller expects blocks carved from
 * all of it soon: fault the half in at once, as one huge page where the
 * kernel has one. Only if nothing else in the half is taken or resident;
 * never in the hardened build, whose guard page at the segment's end rules
 * the huge page out. true if populated. */
bool ms_segment_populate_upper_half(segment_t *segment) MS_HIDDEN;
/* Every free slice has been free since the previous purge. */
static inline bool ms_segment_aged(const segment_t *segment) {
    return ((~segment->used_slices & segment->dirty_slices) & ~segment->aging_slices) == 0;
}

/* Calls visit(segment, arg) for every segment on the chain, under its lock. */
void ms_segment_chain_walk(void (*visit)(segment_t *, void *), void *arg) MS_HIDDEN;
extern ms_lock_t ms_segment_chain_lock MS_HIDDEN;

#endif
