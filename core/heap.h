/* Heaps: the per-thread allocator state. A thread's malloc and free touch
 * only its own heap without locks; a block freed by another thread comes
 * back through the heap's remote list. When a thread exits its heap is
 * trimmed and pooled, and the next new thread adopts it with everything it
 * still holds. Thread heaps are never unmapped, so a remote free can always
 * reach the heap named in a segment.
 *
 * An explicit heap (core/explicit_heap.c) is the same structure owned by no
 * thread: every call on it, from any thread, holds its lock, which
 * ms_heap_alloc and ms_heap_free take themselves, so it is never held
 * across a call into another heap. */
#ifndef MS_HEAP_H
#define MS_HEAP_H
#include <stdbool.h>
#include <stddef.h>
#include "host.h"
#include "segment.h"
#include "size_class.h"
#include "stats.h"
#include "types.h"

/* malloc's fast path indexes direct[] by (size + 15) / 16 for sizes up to
 * MS_DIRECT_MAX: entry i is alloc_span of the class of size 16 * i, so the
 * size-to-class lookup costs nothing there. Above, up to MS_SMALL_MAX (the
 * classes whose blocks share spans), it indexes direct_medium[] by class:
 * entry i is alloc_span of class MS_CLASS_TABLE_COUNT + i. Either holds
 * ms_span_empty instead while every call is observed (heap.c). heap.c:
 * set_alloc_span keeps them in step with alloc_span. */
#define MS_DIRECT_MAX MS_CLASS_TABLE_MAX
#define MS_DIRECT_COUNT (MS_DIRECT_MAX / 16 + 1)
#define MS_DIRECT_MEDIUM_MAX MS_SMALL_MAX
#define MS_DIRECT_MEDIUM_COUNT 64 /* eight classes per doubling, 1 KiB .. 256 KiB */

struct heap_s {
    span_t *direct[MS_DIRECT_COUNT];
    span_t *direct_medium[MS_DIRECT_MEDIUM_COUNT];
    span_t *alloc_span[MS_CLASS_COUNT]; /* never NULL: ms_span_empty when none */
    uintptr_t thread_id;                /* owner; 0 while pooled */
    _Atomic(block_t *) remote_free;     /* pushed by other threads, drained by the owner */
    _Atomic int abandoned;              /* 1 while pooled: remote frees drain it themselves */
    span_t *partial[MS_CLASS_COUNT];    /* spans other than alloc_span with holes or */
    span_t *partial_last[MS_CLASS_COUNT]; /* uncarved room, oldest first (partial_push) */
    segment_t *segments;                /* this heap's small segments */
    unsigned empty_segments;            /* segments kept mapped with every slice free */
    unsigned empty_spans;               /* listed spans with nothing in use, kept for reuse */
    unsigned current_emptied;           /* times the span being carved emptied (clock pacing) */
    ptrdiff_t streamed;                 /* bytes of small-block spans carved to their end
                                           since a span emptied, less bets (heap.c) */
    unsigned hole_cursor;               /* class where the next purge of holes starts */
    uint64_t last_collect_ms;
    uint64_t last_event_ms;             /* last span made or emptied */
    uint64_t clock_looked_ms;           /* when a malloc last looked at the clock because */
    bool clock_armed;                   /* the direct entries are blanked (heap.c: arm_clock) */
    bool freed_unsettled;               /* freed since the last collection of everything */
    heap_t *all_next;                   /* every heap ever made */
    heap_t *pool_next;                  /* pooled heaps */
    uint64_t calls[MS_CALL_COUNT];      /* see MS_CALLS_LIST; written by the owner only */
    /* Explicit heaps only (thread_id stays 0, remote_free stays empty). */
    bool is_explicit;
    bool fork_locked;                   /* its lock was taken for fork() */
    ms_lock_t lock;                     /* held by every call on the heap */
    segment_t *large;                   /* its large blocks, by heap_next/heap_prev */
    heap_t *explicit_next, *explicit_prev;
};

/* Each heap is mapped on its own, whole pages; heaps are never unmapped. */
#define MS_HEAP_MAPPED_SIZE ((sizeof(heap_t) + MS_OS_PAGE - 1) & ~(size_t)(MS_OS_PAGE - 1))

/* The heap of threads that have none yet: every alloc_span is ms_span_empty,
 * so the first malloc takes the slow path without a separate test. */
extern heap_t ms_heap_empty MS_HIDDEN;
extern span_t ms_span_empty MS_HIDDEN;
extern __thread heap_t *ms_heap_tls MS_HIDDEN;

/* Gives the calling thread a heap (adopted from the pool or new). */
heap_t *ms_heap_acquire(void) MS_HIDDEN;
/* The calling thread is done with its heap: trim it and pool it. Trim
 * everything at thread exit; a heap borrowed for one call after the
 * thread's teardown (interpose/init.h) gives back only what has aged, so a
 * destructor that allocates over and over does not unmap and refault. */
void ms_heap_release(heap_t *heap, bool everything) MS_HIDDEN;

/* Slow path of malloc for a small size class. NULL with ENOMEM. */
void *ms_heap_alloc(heap_t *heap, unsigned size_class) MS_HIDDEN;
/* Slow path of free for a block of a small segment, by any thread; a
 * double free is reported as "<caller>(): double free of ...". */
void ms_heap_free(segment_t *segment, span_t *span, block_t *block,
                  const char *caller) MS_HIDDEN;
/* The calling thread freed a large block (heap: its heap, or ms_heap_empty):
 * the large-block cache gives it back at one of the heap's collections. */
void ms_heap_large_freed(heap_t *heap) MS_HIDDEN;
/* The owner's free() just emptied span (its used count reached zero). */
void ms_heap_span_emptied(heap_t *heap, segment_t *segment, span_t *span) MS_HIDDEN;

/* Sets up a freshly mapped (zeroed) heap: every class without a span. */
void ms_heap_init(heap_t *heap) MS_HIDDEN;
/* Returns everything the heap does not use right now to the OS: empty
 * spans (the ones being carved too), empty segments, resident free slices.
 * For an explicit heap, under its lock; it may sit idle for long. */
size_t ms_heap_collect(heap_t *heap) MS_HIDDEN;

/* Returns cached empty segments and resident free slices to the OS, for the
 * calling thread's heap, every pooled heap and every explicit heap. Bytes
 * released. */
size_t ms_heap_trim_all(void) MS_HIDDEN;

/* fork(): hold every heap lock across it; in the child, pool the heaps of
 * threads that do not exist there. */
void ms_heap_fork_prepare(void) MS_HIDDEN;
void ms_heap_fork_parent(void) MS_HIDDEN;
void ms_heap_fork_child(void) MS_HIDDEN;

/* From now on malloc's and free's fast paths decline every call, so the
 * slow paths see (and can count, sample or record) each one. Call before
 * the first heap is made; there is no way back. */
void ms_heap_observe_every_call(void) MS_HIDDEN;

/* Calls visit(heap, arg) for every heap, under the pool lock. */
void ms_heap_walk(void (*visit)(heap_t *, void *), void *arg) MS_HIDDEN;

#endif
