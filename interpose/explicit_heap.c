/* The explicit-heap API of mspace.h: an mspace_t is a core explicit heap
 * (core/explicit_heap.c). Allocation goes through core/alloc.c with that
 * heap, which takes the heap's lock; free goes wherever the block lives. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "../core/alloc.h"
#include "../core/explicit_heap.h"
#include "../core/large.h"
#include "bootstrap.h"
#include "guard.h"
#include "init.h"
#include "mspace.h"
#include "observe.h"

#define EXPORT __attribute__((visibility("default")))

static heap_t *heap_of(mspace_t *ms) { return (heap_t *)ms; }

static void *observed(void *p, size_t size) {
    if (MS_UNLIKELY(ms_observing) && p)
        ms_observe_alloc(p, size);
    return p;
}

EXPORT mspace_t *mspace_create(void) {
    if (ms_guard_active()) { /* from inside the allocator's own set-up */
        errno = ENOMEM;
        return NULL;
    }
    /* Sets the process up (options, fork hooks) if nothing has yet. */
    bool temporary;
    heap_t *own = ms_heap_for_call(&temporary);
    if (own == NULL)
        return NULL;
    ms_heap_return(own, temporary);
    heap_t *heap = ms_explicit_heap_create();
    if (heap == NULL)
        errno = ENOMEM;
    return (mspace_t *)heap;
}

static void observe_free(void *block, void *arg) { ms_observe_free(block); }

EXPORT void mspace_destroy(mspace_t *ms) {
    if (ms == NULL)
        return;
    /* What is still in use goes now: observers see it freed. */
    ms_explicit_heap_destroy(heap_of(ms), MS_UNLIKELY(ms_observing) ? observe_free : NULL, NULL);
}

EXPORT void *mspace_malloc(mspace_t *ms, size_t size) {
    return observed(ms_alloc(heap_of(ms), size, 0), size);
}

EXPORT void *mspace_calloc(mspace_t *ms, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    heap_t *heap = heap_of(ms);
    if (total > MS_MEDIUM_MAX) /* fresh mappings are zero already */
        return observed(ms_explicit_heap_track(heap, ms_calloc_large(total)), total);
    void *p = ms_alloc(heap, total, 0);
    if (p)
        memset(p, 0, total);
    return observed(p, total);
}

EXPORT void *mspace_memalign(mspace_t *ms, size_t alignment, size_t size) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return observed(ms_alloc(heap_of(ms), size, alignment <= MS_ALIGNMENT ? 0 : alignment), size);
}

EXPORT void mspace_free(mspace_t *ms, void *p) {
    if (p == NULL || ms_bootstrap_owns(p))
        return;
    int saved_errno = errno;
    if (MS_UNLIKELY(ms_observing))
        ms_observe_free(p);
    ms_free(p, "mspace_free");
    errno = saved_errno;
}

EXPORT void *mspace_realloc(mspace_t *ms, void *p, size_t size) {
    if (p == NULL)
        return mspace_malloc(ms, size);
    if (size == 0) {
        mspace_free(ms, p);
        return NULL;
    }
    if (ms_bootstrap_owns(p)) { /* the arena never takes blocks back */
        void *q = mspace_malloc(ms, size);
        size_t old = ms_bootstrap_usable(p);
        if (q)
            memcpy(q, p, old < size ? old : size);
        return q;
    }
    void *q = ms_realloc_as(heap_of(ms), p, size, "mspace_realloc");
    if (MS_UNLIKELY(ms_observing) && q)
        ms_observe_realloc(p, q, size);
    return q;
}

EXPORT void mspace_heap_stats_print(mspace_t *ms, FILE *out) {
    ms_explicit_heap_usage_t usage;
    ms_explicit_heap_usage(heap_of(ms), &usage);
    if (out == NULL)
        out = stderr;
    size_t small_blocks = 0;
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++)
        small_blocks += usage.blocks[c];
    fprintf(out,
            "mspace heap %p:\n"
            "  mapped %zu bytes: %zu small segments (%zu bytes), %zu large blocks (%zu bytes)\n"
            "  in use %zu bytes: %zu small blocks (%zu bytes), %zu large blocks\n"
            "  block size  blocks in use\n",
            (void *)ms, usage.small_mapped + usage.large_mapped, usage.segments,
            usage.small_mapped, usage.large_blocks, usage.large_mapped,
            usage.small_in_use + usage.large_mapped, small_blocks, usage.small_in_use,
            usage.large_blocks);
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++)
        if (usage.blocks[c])
            fprintf(out, "  %10zu  %13zu\n", ms_size_class_size(c), usage.blocks[c]);
}
