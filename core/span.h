/* Spans: runs of slices that hold blocks of one size class. Blocks are
 * carved lazily in address order, so a fresh span costs only the pages that
 * are actually handed out. */
#ifndef MS_SPAN_H
#define MS_SPAN_H
#include <stdbool.h>
#include "segment.h"
#include "types.h"

/* The span descriptor for slices[first], set up for size_class; the other
 * slices of the run point back at it. */
span_t *ms_span_init(segment_t *segment, unsigned first, unsigned count,
                     unsigned size_class) MS_HIDDEN;
/* Clears the descriptors and gives the slices back to the segment. */
void ms_span_release(segment_t *segment, span_t *span) MS_HIDDEN;

static inline char *ms_span_start(segment_t *segment, const span_t *span) {
    return ms_segment_slice_base(segment, span);
}

/* Back to "nothing carved" (only when nothing is in use): the holes are
 * dropped and the block test rejects every address until carving again. */
static inline void ms_span_reset(span_t *span) {
    span->free = NULL;
    span->carved_end = 0;
    span->carved_limit = 0;
}

/* Threads up to a batch of never-used blocks onto span->free. Returns how
 * many; 0 when the span is fully carved. */
unsigned ms_span_carve(segment_t *segment, span_t *span) MS_HIDDEN;

/* The head descriptor for any slice of a span (NULL if the slice is free). */
static inline span_t *ms_span_head(span_t *slice) {
    span_t *head = slice - slice->head_delta;
    return head->block_size ? head : NULL;
}

/* True if p is exactly the start of a carved block of span (see span_t). */
static inline bool ms_span_is_block_start(segment_t *segment, const span_t *span,
                                          const void *p) {
    uintptr_t offset = (uintptr_t)p - (uintptr_t)ms_span_start(segment, span);
    return offset < (uintptr_t)span->slice_count * MS_SLICE_SIZE &&
           offset * span->block_magic < span->carved_limit;
}

/* Work left for one round of ms_span_purge_holes over many spans. */
typedef struct {
    unsigned visits;  /* holes looked at */
    unsigned purges;  /* madvise calls */
} ms_hole_budget_t;

/* Gives back the whole OS pages inside span's holes (on its free list)
 * past the page holding each hole's link and mark, while the budget lasts.
 * A hole is purged once: at once when everything, else when a previous
 * call already saw it as a hole (its mark says which). Bytes purged. Only
 * by the span's owner (or under its heap's lock). */
size_t ms_span_purge_holes(segment_t *segment, span_t *span, bool everything,
                           ms_hole_budget_t *budget) MS_HIDDEN;
/* Can a hole of this block size hold a whole page past its first one?
 * (From 8 KiB always, above 4 KiB depending on where it starts.) */
static inline bool ms_span_holes_purgeable(size_t block_size) {
    return block_size > MS_OS_PAGE;
}

/* A block of a class with one block per span (above MS_SMALL_MAX) going
 * out for a request of `size` bytes: the pages past the request may still
 * be resident from a bigger request before; they go back to the OS. */
void ms_span_trim_block(void *block, size_t block_size, size_t size) MS_HIDDEN;

/* Is block already a hole on span's free list? Linear; only called to
 * confirm a suspected double free. */
bool ms_span_has_hole(const span_t *span, const block_t *block) MS_HIDDEN;

#endif
