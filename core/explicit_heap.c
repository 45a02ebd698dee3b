#include "explicit_heap.h"
#include <stdbool.h>
#include "host.h"
#include "large.h"
#include "os.h"
#include "span.h"

/* Every live explicit heap, for malloc_trim and fork. Taken before any
 * explicit heap's lock. */
static ms_lock_t list_lock = MS_LOCK_INIT;
static heap_t *explicit_heaps;

heap_t *ms_explicit_heap_create(void) {
    heap_t *heap = ms_os_map(MS_HEAP_MAPPED_SIZE);
    if (heap == NULL)
        return NULL;
    ms_heap_init(heap);
    heap->is_explicit = true;
    ms_lock(&list_lock);
    heap->explicit_next = explicit_heaps;
    if (explicit_heaps)
        explicit_heaps->explicit_prev = heap;
    explicit_heaps = heap;
    ms_unlock(&list_lock);
    return heap;
}

size_t ms_explicit_heap_count(void) {
    size_t n = 0;
    ms_lock(&list_lock);
    for (heap_t *heap = explicit_heaps; heap; heap = heap->explicit_next)
        n++;
    ms_unlock(&list_lock);
    return n;
}

/* Only at destroy, when no other call may use heap: no lock. */
static void walk_live(heap_t *heap, void (*visit)(void *, void *), void *arg) {
    for (segment_t *segment = heap->segments; segment; segment = segment->heap_next)
        for (unsigned i = 1; i < MS_SLICES_PER_SEGMENT; i++) {
            span_t *span = &segment->spans[i];
            if (span->block_size == 0)
                continue;
            /* Every hole carries the mark (ms_span_carve, heap.c:span_take_back)
             * or lies on a parked page; a block in use has had the mark
             * cleared, and no remote list holds any. */
            char *start = ms_span_start(segment, span);
            for (uint32_t at = 0; at < span->carved_end; at += span->block_size)
                if (!ms_span_block_free(segment, span, (block_t *)(start + at)))
                    visit(start + at, arg);
        }
    for (segment_t *segment = heap->large; segment; segment = segment->heap_next)
        visit(segment->large_block, arg);
}

void ms_explicit_heap_destroy(heap_t *heap, void (*live)(void *, void *), void *arg) {
    ms_lock(&list_lock);
    if (heap->explicit_prev)
        heap->explicit_prev->explicit_next = heap->explicit_next;
    else
        explicit_heaps = heap->explicit_next;
    if (heap->explicit_next)
        heap->explicit_next->explicit_prev = heap->explicit_prev;
    ms_unlock(&list_lock);
    /* Off the list first: a fork() from now on does not take its lock, so
     * live may take locks that fork() takes before it. */
    if (live)
        walk_live(heap, live, arg);
    /* Off the map first, then unmapped: a later free() of a block that was
     * here finds no segment and is reported as an invalid pointer. */
    for (segment_t *segment = heap->segments, *next; segment; segment = next) {
        next = segment->heap_next;
        ms_segment_destroy(segment);
    }
    for (segment_t *segment = heap->large, *next; segment; segment = next) {
        next = segment->heap_next;
        ms_large_discard(segment);
    }
    ms_os_unmap(heap, MS_HEAP_MAPPED_SIZE);
}

void ms_explicit_heap_adopt_large(heap_t *heap, segment_t *segment) {
    ms_lock(&heap->lock);
    segment->heap = heap;
    segment->heap_prev = NULL;
    segment->heap_next = heap->large;
    if (heap->large)
        heap->large->heap_prev = segment;
    heap->large = segment;
    ms_unlock(&heap->lock);
}

void ms_explicit_heap_forget_large(segment_t *segment) {
    heap_t *heap = segment->heap;
    ms_lock(&heap->lock);
    if (segment->heap_prev)
        segment->heap_prev->heap_next = segment->heap_next;
    else
        heap->large = segment->heap_next;
    if (segment->heap_next)
        segment->heap_next->heap_prev = segment->heap_prev;
    ms_unlock(&heap->lock);
    /* A cached segment may serve any heap next. */
    segment->heap = NULL;
    segment->heap_next = segment->heap_prev = NULL;
}

void ms_explicit_heap_usage(heap_t *heap, ms_explicit_heap_usage_t *out) {
    *out = (ms_explicit_heap_usage_t){0};
    ms_lock(&heap->lock);
    for (segment_t *segment = heap->segments; segment; segment = segment->heap_next) {
        out->segments++;
        out->small_mapped += segment->mapped_size;
        for (unsigned i = 1; i < MS_SLICES_PER_SEGMENT; i++) {
            const span_t *span = &segment->spans[i];
            if (span->block_size == 0)
                continue;
            out->blocks[span->size_class] += span->used;
            out->small_in_use += (size_t)span->used * span->block_size;
        }
    }
    for (segment_t *segment = heap->large; segment; segment = segment->heap_next) {
        out->large_blocks++;
        out->large_mapped += segment->large_limit; /* a tail on loan is the cache's */
    }
    ms_unlock(&heap->lock);
}

size_t ms_explicit_heap_trim_all(void) {
    size_t released = 0;
    ms_lock(&list_lock);
    for (heap_t *heap = explicit_heaps; heap; heap = heap->explicit_next) {
        ms_lock(&heap->lock);
        released += ms_heap_collect(heap);
        ms_unlock(&heap->lock);
    }
    ms_unlock(&list_lock);
    return released;
}

/* ---- fork ---- */

static bool list_locked_for_fork;

void ms_explicit_heap_fork_prepare(void) {
    ms_lock_for_fork(&list_lock, &list_locked_for_fork);
    for (heap_t *heap = explicit_heaps; heap; heap = heap->explicit_next)
        ms_lock_for_fork(&heap->lock, &heap->fork_locked);
}

void ms_explicit_heap_fork_parent(void) {
    for (heap_t *heap = explicit_heaps; heap; heap = heap->explicit_next)
        if (heap->fork_locked)
            ms_unlock(&heap->lock);
    if (list_locked_for_fork)
        ms_unlock(&list_lock);
}

void ms_explicit_heap_fork_child(void) {
    for (heap_t *heap = explicit_heaps; heap; heap = heap->explicit_next)
        ms_lock_reset(&heap->lock);
    ms_lock_reset(&list_lock);
}
