/* What the heap holds right now, gathered by walking the segment chain: the
 * figures behind mspace_stats_get, mallinfo2, malloc_stats and malloc_info,
 * and the region-by-region view behind the verbose report.
 *
 * Snapshot semantics: the chain itself is walked under its lock, so every
 * region listed is mapped while it is read, but the span descriptors and
 * blocks of other threads' heaps are read without their owners' consent.
 * A busy heap therefore gives a near snapshot (a count may be off by the
 * blocks moved meanwhile), never a crash, and the totals still add up:
 *   in_use + free + overhead == mapped, exactly, by construction (each
 * region's bytes are split among the three from one reading). */
#ifndef MS_USAGE_H
#define MS_USAGE_H
#include <stddef.h>
#include <stdint.h>
#include "size_class.h"
#include "types.h"

typedef struct {
    size_t spans;
    size_t blocks_in_use; /* handed out (a block freed by another thread
                             counts until its owner takes it back) */
    size_t blocks_free;   /* holes: carved and not in use */
    size_t bytes_uncarved; /* span bytes not (yet) cut into blocks */
} ms_class_usage_t;

typedef struct {
    size_t mapped, in_use, free, overhead;
    /* free, by kind: holes in spans, the uncarved rest of spans, slices no
     * span uses, freed large blocks kept mapped by the large-block cache
     * (with what of them is lent to a growing block) */
    size_t free_holes, free_uncarved, free_slices, free_cached;
    /* overhead, by kind: slice 0 of small segments (the header and the
     * rest of its slice, never given to a span) and the hardened build's
     * guard page at their end, the pages before each large block, the
     * heap structs */
    size_t overhead_segments, overhead_large, overhead_heaps;
    size_t small_segments, small_mapped, small_in_use; /* in_use: live blocks x class size */
    size_t large_blocks, large_mapped, large_in_use;  /* large_in_use: usable bytes */
    size_t heaps, holes; /* heaps: thread and explicit heaps; holes: free
                            blocks in spans, counted */
    ms_class_usage_t classes[MS_CLASS_COUNT];
} ms_usage_t;

void ms_usage_collect(ms_usage_t *out) MS_HIDDEN;

/* ---- the region-by-region view (MeMS's main chain and sub-chains) ---- */

/* Consecutive blocks of a span in one state, in address order. A block is
 * a HOLE when its second word carries the span's freed mark (types.h), so
 * a block freed by another thread and not yet taken back is a hole here
 * while the totals above still count it in use. */
enum { MS_RUN_IN_USE, MS_RUN_HOLE, MS_RUN_UNCARVED };
typedef struct {
    uint32_t state;
    uint32_t blocks;
} ms_run_t;

#define MS_VIEW_RUNS_MAX 6   /* runs kept per span */
#define MS_VIEW_SPANS_MAX 8  /* spans kept per region */

typedef struct {
    uintptr_t start;
    size_t bytes;
    uint32_t block_size, size_class;
    uint32_t in_use, holes, uncarved; /* blocks, from the marks */
    uint32_t run_count;               /* runs in all; the first MS_VIEW_RUNS_MAX are kept */
    ms_run_t runs[MS_VIEW_RUNS_MAX];
} ms_span_view_t;

typedef struct {
    uintptr_t base;
    size_t size;
    uint8_t kind;        /* SEGMENT_SMALL or SEGMENT_LARGE */
    const heap_t *heap;  /* owner: of a small segment; of a large one if explicit */
    uintptr_t block;     /* large: the block */
    size_t block_size;   /* large: its usable bytes */
    unsigned free_slices;
    unsigned span_count; /* spans in all; the first MS_VIEW_SPANS_MAX are kept */
    ms_span_view_t spans[MS_VIEW_SPANS_MAX];
} ms_region_view_t;

/* Describes the first `max` regions of the chain into out[]; returns how
 * many regions the chain holds. Reads the carved blocks of the regions it
 * describes (bounded by each span's capacity), so it costs more than
 * ms_usage_collect. */
size_t ms_usage_regions(ms_region_view_t *out, size_t max) MS_HIDDEN;

#endif
