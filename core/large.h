/* Large blocks: anything above the biggest size class (or more aligned than
 * a span can give) gets a segment of its own, mapped to fit, with the block
 * one header past the base or at the requested alignment. realloc resizes
 * the mapping with mremap, so growing a big buffer never copies it. */
#ifndef MS_LARGE_H
#define MS_LARGE_H
#include <stdbool.h>
#include <stddef.h>
#include "types.h"

/* zero: the caller needs the block zeroed (fresh mappings already are).
 * growing: realloc is moving a block that grew out of its place, and it
 * may borrow a bigger cached mapping whole (ms_large_cache_lend). */
void *ms_large_alloc(size_t size, size_t alignment, bool zero, bool growing) MS_HIDDEN;
void ms_large_free(segment_t *segment) MS_HIDDEN;
/* Straight back to the OS, not to the cache: its explicit heap is going. */
void ms_large_discard(segment_t *segment) MS_HIDDEN;
/* Resizes in place or by moving the mapping; NULL with ENOMEM if it can't. */
void *ms_large_resize(segment_t *segment, size_t size) MS_HIDDEN;
/* Is part of the mapping on loan (see ms_large_cache_lend)? For the block's
 * owner; a collection may end the loan meanwhile, which the loan calls
 * notice under the cache lock. */
static inline bool ms_large_on_loan(const segment_t *segment) {
    return segment->large_limit < __atomic_load_n(&segment->mapped_size, __ATOMIC_ACQUIRE);
}

static inline size_t ms_large_usable(const segment_t *segment) {
    return (size_t)((char *)segment + segment->large_limit - (char *)segment->large_block);
}

#endif
