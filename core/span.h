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

/* Drops the record of span's parked pages (their memory is given back
 * already) and of its free pages: on reset and when its slices go back
 * (ms_span_release, the only way they do). */
void ms_span_forget_parked(segment_t *segment, span_t *span) MS_HIDDEN;

/* Back to "nothing carved" (only when nothing is in use): the holes, parked
 * ones too, are dropped and the block test rejects every address until
 * carving again. A span carved whole stays so, even with pages given back:
 * the pages past where it carves again may still be resident, and
 * ms_span_purge_holes gives back what lies past the blocks of such a span. */
static inline void ms_span_reset(segment_t *segment, span_t *span) {
    span->free = NULL;
    span->carved_end = 0;
    span->carved_limit = 0;
    ms_span_forget_parked(segment, span);
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

/* Gives back the OS pages of span that hold only holes, while the budget
 * lasts: the holes on them are parked (span.c) and the pages' bits set in
 * segment->parked_pages. Also the pages past the carved blocks of a span
 * carved whole before. Pages go at once when everything, else when the
 * previous call saw them free already. Bytes purged. Only by the span's
 * owner (or under its heap's lock), which must then keep the span off
 * free's fast path (local_key 0) while ms_span_has_parked. */
size_t ms_span_purge_holes(segment_t *segment, span_t *span, bool everything,
                           ms_hole_budget_t *budget) MS_HIDDEN;
/* Does span have parked holes? Is this carved block one of them? Asked on
 * every slow malloc and free: most segments never park a page, and a count
 * in the header says so in one load. */
static inline bool ms_segment_has_parked(const segment_t *segment) {
    return __atomic_load_n(&segment->parked_count, __ATOMIC_RELAXED) != 0;
}
bool ms_span_has_parked_pages(const segment_t *segment, const span_t *span) MS_HIDDEN;
bool ms_span_block_on_parked_page(const segment_t *segment, const span_t *span,
                                  const void *block) MS_HIDDEN;
static inline bool ms_span_has_parked(const segment_t *segment, const span_t *span) {
    return ms_segment_has_parked(segment) && ms_span_has_parked_pages(segment, span);
}
static inline bool ms_span_block_parked(const segment_t *segment, const span_t *span,
                                        const void *block) {
    return ms_segment_has_parked(segment) && ms_span_block_on_parked_page(segment, span, block);
}
/* Threads the parked holes of the lowest run of parked pages (about a
 * carving batch) back onto span->free. Returns how many; 0 if none. */
unsigned ms_span_unpark(segment_t *segment, span_t *span) MS_HIDDEN;
/* Is block a hole? Its mark says so, or its page was given back with it. */
static inline bool ms_span_block_free(const segment_t *segment, const span_t *span,
                                      const block_t *block) {
    return ms_span_block_parked(segment, span, block) ||
           __atomic_load_n(&block->freed_mark, __ATOMIC_RELAXED) == (uintptr_t)span;
}

/* A block of a class with one block per span (above MS_SMALL_MAX) going
 * out for a request of `size` bytes: the pages past the request may still
 * be resident from a bigger request before; they go back to the OS. */
void ms_span_trim_block(void *block, size_t block_size, size_t size) MS_HIDDEN;

/* Is block already a hole on span's free list? Linear; only called to
 * confirm a suspected double free. */
bool ms_span_has_hole(const span_t *span, const block_t *block) MS_HIDDEN;

#endif
