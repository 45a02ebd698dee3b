/* The allocator's entry points for interpose/. The two fast paths are
 * inline so that the exported malloc and free are exactly them: one list
 * pop, one push. Everything they decline goes to the functions below. */
#ifndef MS_ALLOC_H
#define MS_ALLOC_H
#include <stdbool.h>
#include <stddef.h>
#include "heap.h"
#include "host.h"
#include "secure.h"
#include "segment.h"
#include "size_class.h"
#include "span.h"
#include "types.h"

/* malloc for sizes up to MS_DIRECT_MEDIUM_MAX when the thread's current
 * span of the class has a hole; NULL sends the caller to its slow path
 * (which also covers a thread that has no heap yet: its spans are all
 * ms_span_empty). Up to 1 KiB the class comes from the size in one shift;
 * above, from its top bits (see heap_t's direct arrays). The hardened
 * build also checks the next link (a bad one is reported by the slow path)
 * and does its hand-out work; in the default build MS_SECURE_TRAILER is 0,
 * ms_link_code returns its argument and the extra lines vanish. */
static inline void *ms_alloc_fast(size_t size) {
    span_t *span;
    if (MS_LIKELY(size <= MS_DIRECT_MAX - MS_SECURE_TRAILER))
        span = ms_heap_tls->direct[(size + MS_SECURE_TRAILER + 15) >> 4];
    else if (size <= MS_DIRECT_MEDIUM_MAX - MS_SECURE_TRAILER)
        span = ms_heap_tls->direct_medium[ms_size_class_above_table(size + MS_SECURE_TRAILER) -
                                          MS_CLASS_TABLE_COUNT];
    else
        return NULL;
    block_t *block = span->free;
    if (MS_LIKELY(block != NULL)) {
        block_t *next = ms_link_code(block->next, block);
        if (MS_SECURE && next && !ms_span_is_block_start(ms_segment_base(span), span, next))
            return NULL;
        span->free = next;
        block->freed_mark = 0;
        span->used++;
        if (MS_SECURE)
            ms_secure_block_out(block, span->block_size, size);
        return block;
    }
    return NULL;
}

/* The owner's free of block into span, offset bytes from the span's start.
 * The span's local_key matches only for the owner of a listed span, so one
 * compare also rules out free slices, forwarding slices, full spans and
 * large segments. The block test (see span_t) rejects interior, misaligned
 * and never-carved addresses, the mark a block that is already a hole.
 * false sends the caller to its slow path. */
static inline bool ms_free_into(segment_t *segment, span_t *span, block_t *block,
                                uint64_t offset) {
    if (MS_LIKELY(span->local_key == ms_thread_id() &&
                  offset * span->block_magic < span->carved_limit &&
                  block->freed_mark != (uintptr_t)span)) {
        if (MS_SECURE)
            ms_secure_block_in(block, span->block_size, "free");
        block->next = ms_link_code(span->free, block);
        block->freed_mark = (uintptr_t)span;
        span->free = block;
        if (MS_UNLIKELY(--span->used == 0))
            ms_heap_span_emptied(segment->heap, segment, span);
        return true;
    }
    return false;
}

/* The rest of free's fast path, out of line so that the first part keeps
 * its registers: p past the first slice of a longer span. */
bool ms_free_far(void *p, segment_t *segment, span_t *slice) MS_HIDDEN MS_NOINLINE;

/* free's fast path. A block that starts in the first slice of its span
 * (all of them, for spans of one slice: classes up to 8 KiB) has the
 * slice's descriptor for its span's, found with a shift and a mask; one
 * further in a longer span, declined there, is found from the slice's
 * descriptor, which says how far back the span's is. */
static inline bool ms_free_fast(void *p) {
    if (MS_LIKELY(ms_segment_mapped(p))) {
        segment_t *segment = ms_segment_base(p);
        span_t *slice = ms_segment_slice_of(segment, p);
        if (ms_free_into(segment, slice, (block_t *)p, (uintptr_t)p & (MS_SLICE_SIZE - 1)))
            return true;
        return ms_free_far(p, segment, slice);
    }
    return false;
}

/* General malloc for a thread that has a heap: any size, any power-of-two
 * alignment. NULL with errno ENOMEM. */
void *ms_alloc(heap_t *heap, size_t size, size_t alignment) MS_HIDDEN;

/* calloc above MS_MEDIUM_MAX: zeroed, from a fresh mapping or a cached one. */
void *ms_calloc_large(size_t size) MS_HIDDEN;

/* free of any pointer: NULL is ignored, anything mspace did not hand out
 * (or already took back) aborts with "<caller>(): ..." on stderr. */
void ms_free(void *p, const char *caller) MS_HIDDEN;

/* The bytes usable at p (p must be live); aborts on a foreign pointer. */
size_t ms_usable_size(const void *p, const char *caller) MS_HIDDEN;

/* realloc for p != NULL and size != 0. NULL with ENOMEM leaves p intact. */
void *ms_realloc(heap_t *heap, void *p, size_t size) MS_HIDDEN;
/* The same, reporting misuse as "<caller>(): ...". */
void *ms_realloc_as(heap_t *heap, void *p, size_t size, const char *caller) MS_HIDDEN;

/* Does mspace's heap (not the bootstrap arena) manage this address? */
static inline bool ms_owns(const void *p) { return ms_segment_of(p) != NULL; }

#endif
