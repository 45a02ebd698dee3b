#include "alloc.h"
#include <errno.h>
#include <string.h>
#include "explicit_heap.h"
#include "large.h"
#include "span.h"

/* Largest request a block in a span serves (the secure build keeps a
 * trailer in every such block). */
#define SPAN_REQUEST_MAX (MS_MEDIUM_MAX - MS_SECURE_TRAILER)
/* realloc moves a growing block above this into a mapping of its own: a
 * buffer that grew past it is likely to grow on, and mremap resizes a
 * mapping without copying where a block in a span is copied at every class
 * step, and leaves the class it left behind resident. 128 KiB, glibc's
 * default mmap threshold: bench/realloc (buffers grown in 4 KiB steps) peaks
 * at 35.7 MiB, against 37.3 with 256 KiB and 33.3 for glibc. */
#define REALLOC_SPAN_MAX ((size_t)128 * 1024 - MS_SECURE_TRAILER)

/* Inline in alloc_once, as before the trim was added: the slow path of
 * malloc for sizes above 1 KiB pays no call for it. */
static inline __attribute__((always_inline)) void *small_alloc(heap_t *heap, unsigned size_class,
                                                               size_t size) {
    void *p = ms_heap_alloc(heap, size_class);
    /* A block with a span of its own (before the hardened build writes its
     * trailer); tested on the size, which costs nothing on smaller ones. */
    if (MS_UNLIKELY(size + MS_SECURE_TRAILER > MS_SMALL_MAX) && p)
        ms_span_trim_block(p, ms_size_class_size(size_class), size);
    if (MS_SECURE && p)
        ms_secure_block_out(p, ms_size_class_size(size_class), size);
    return p;
}

/* Mapping failed: what mspace keeps for reuse (cached large blocks, empty
 * spans and segments) may be exactly the address space or commit charge
 * that is missing, as under RLIMIT_AS or overcommit limits. Give it all back;
 * true if there was something, so the caller tries once more. */
static bool released_for_retry(void) {
    if (errno != ENOMEM)
        return false;
    bool released = ms_heap_trim_all() > 0;
    errno = ENOMEM; /* whatever the trim's system calls left there */
    return released;
}

/* The hardened build's record of a large block's request, and its check
 * (see MS_SECURE_LARGE_SLACK); nothing in the default build. */
static void large_mark(segment_t *segment, void *p, size_t size) {
    segment->large_requested = size;
    ms_secure_fill_slack(p, size, ms_large_usable(segment));
}

static void large_check(const segment_t *segment, const void *p, const char *caller) {
    if (MS_SECURE)
        ms_secure_check_slack(p, segment->large_requested, ms_large_usable(segment), caller);
}

static size_t large_usable(const segment_t *segment) {
    return MS_SECURE ? segment->large_requested : ms_large_usable(segment);
}

static void *large_resize(segment_t *segment, size_t size) {
    size_t mapped = size + MS_SECURE_LARGE_SLACK;
    void *q = ms_large_resize(segment, mapped < size ? SIZE_MAX : mapped);
    if (MS_SECURE && q)
        large_mark(ms_segment_of(q), q, size);
    return q;
}

/* A block mapped alone, for a request of size bytes. The hardened build
 * maps MS_SECURE_LARGE_SLACK more and fills that much past the request. */
static void *large_alloc(size_t size, size_t alignment, bool zero, bool growing) {
    size_t mapped = size + MS_SECURE_LARGE_SLACK;
    void *p = ms_large_alloc(mapped < size ? SIZE_MAX : mapped, alignment, zero, growing);
    if (MS_SECURE && p)
        large_mark(ms_segment_of(p), p, size);
    return p;
}

/* growing: realloc is moving a block that outgrew its place. */
static void *alloc_once(heap_t *heap, size_t size, size_t alignment, bool growing) {
    size_t span_max = growing ? REALLOC_SPAN_MAX : SPAN_REQUEST_MAX;
    if (alignment <= MS_ALIGNMENT) {
        if (size <= span_max)
            return small_alloc(heap, ms_size_class_of(size + MS_SECURE_TRAILER), size);
        return ms_explicit_heap_track(heap, large_alloc(size, 0, false, growing));
    }
    /* Spans start on 64 KiB boundaries, so blocks of a class whose size is a
     * multiple of the alignment are all aligned. */
    if (size <= span_max && alignment <= MS_SLICE_SIZE) {
        size_t need = size + MS_SECURE_TRAILER < alignment ? alignment : size + MS_SECURE_TRAILER;
        for (unsigned c = ms_size_class_of(need); c < MS_CLASS_COUNT; c++)
            if ((ms_size_class_size(c) & (alignment - 1)) == 0)
                return small_alloc(heap, c, size);
    }
    return ms_explicit_heap_track(heap, large_alloc(size, alignment, false, false));
}

static void *alloc_retry(heap_t *heap, size_t size, size_t alignment, bool growing) {
    void *p = alloc_once(heap, size, alignment, growing);
    if (MS_UNLIKELY(p == NULL) && released_for_retry())
        p = alloc_once(heap, size, alignment, growing);
    return p;
}

void *ms_alloc(heap_t *heap, size_t size, size_t alignment) {
    return alloc_retry(heap, size, alignment, false);
}

/* Where realloc moves a block that grew out of its place. */
static void *realloc_alloc(heap_t *heap, size_t size) { return alloc_retry(heap, size, 0, true); }

void *ms_calloc_large(size_t size) {
    void *p = large_alloc(size, 0, true, false);
    if (MS_UNLIKELY(p == NULL) && released_for_retry())
        p = large_alloc(size, 0, true, false);
    return p;
}

typedef struct {
    segment_t *segment;
    span_t *span; /* NULL for a large block */
} block_home_t;

/* Where p lives, if p is exactly a block mspace handed out. */
static bool find_block(const void *p, block_home_t *home) {
    segment_t *segment = ms_segment_of(p);
    if (segment == NULL)
        return false;
    home->segment = segment;
    home->span = NULL;
    if (segment->kind == SEGMENT_LARGE)
        return p == segment->large_block;
    span_t *span = ms_span_head(ms_segment_slice_of(segment, p));
    if (span == NULL || !ms_span_is_block_start(segment, span, p))
        return false;
    home->span = span;
    return true;
}

bool ms_free_far(void *p, segment_t *segment, span_t *slice) {
    if (slice->head_delta == 0) /* a span's first slice, or no span's */
        return false;
    span_t *span = slice - slice->head_delta;
    return ms_free_into(segment, span, (block_t *)p,
                        (uintptr_t)p - (uintptr_t)ms_span_start(segment, span));
}

void ms_free(void *p, const char *caller) {
    if (p == NULL)
        return;
    block_home_t home;
    if (!find_block(p, &home))
        ms_host_fatal(caller, "invalid pointer", p);
    if (home.span == NULL) {
        large_check(home.segment, p, caller);
        ms_large_free(home.segment);
        ms_heap_large_freed(ms_heap_tls);
        return;
    }
    /* A block already marked free is left for ms_heap_free to call a double
     * free; checking its trailer would report an overflow instead. */
    if (MS_SECURE && ((block_t *)p)->freed_mark != (uintptr_t)home.span)
        ms_secure_block_in(p, home.span->block_size, caller);
    ms_heap_free(home.segment, home.span, (block_t *)p, caller);
}

/* What a live small block can hold for its owner. */
static size_t small_usable(const span_t *span, const void *p) {
    if (MS_SECURE)
        return ms_secure_block_requested(p, span->block_size);
    return span->block_size;
}

size_t ms_usable_size(const void *p, const char *caller) {
    block_home_t home;
    if (!find_block(p, &home))
        ms_host_fatal(caller, "invalid pointer", p);
    if (home.span == NULL)
        return large_usable(home.segment);
    return small_usable(home.span, p);
}

/* A large block could not be resized by remapping. Moving a mapping costs
 * more address space than copying: the kernel checks RLIMIT_AS for a
 * growing mremap while the aligned reservation it is about to replace still
 * counts (old + 2 x new at once), where a copy needs old + new. */
static void *large_resize_slow(heap_t *heap, segment_t *segment, void *p, size_t size) {
    if (released_for_retry()) {
        void *q = large_resize(segment, size);
        if (q)
            return q;
    }
    void *q = realloc_alloc(heap, size);
    if (q == NULL)
        return NULL;
    size_t usable = large_usable(segment);
    memcpy(q, p, size < usable ? size : usable);
    ms_large_free(segment);
    return q;
}

void *ms_realloc_as(heap_t *heap, void *p, size_t size, const char *caller) {
    block_home_t home;
    if (!find_block(p, &home) ||
        (home.span && ms_span_block_free(home.segment, home.span, (block_t *)p)))
        ms_host_fatal(caller, "invalid pointer", p);
    heap = ms_explicit_heap_of(home.segment, heap); /* a block stays in its explicit heap */
    size_t usable;
    if (home.span == NULL) {
        large_check(home.segment, p, caller);
        if (size > REALLOC_SPAN_MAX) {
            void *q = large_resize(home.segment, size);
            return MS_LIKELY(q != NULL) ? q : large_resize_slow(heap, home.segment, p, size);
        }
        usable = large_usable(home.segment);
    } else {
        usable = small_usable(home.span, p);
        /* Stay put unless the block would be mostly empty. The secure build
         * always moves, so the trailer is checked and rewritten. */
        if (!MS_SECURE && size <= usable && (size >= usable / 2 || usable <= 64))
            return p;
    }
    /* Growing may go on (a mapping of its own above MS_SMALL_MAX); a block
     * shrunk out of its class is done growing and may take a medium one. */
    void *moved = size > usable ? realloc_alloc(heap, size) : ms_alloc(heap, size, 0);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, size < usable ? size : usable);
    ms_free(p, caller);
    return moved;
}

void *ms_realloc(heap_t *heap, void *p, size_t size) { return ms_realloc_as(heap, p, size, "realloc"); }
