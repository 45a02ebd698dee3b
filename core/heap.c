#include "heap.h"
#include <errno.h>
#include "explicit_heap.h"
#include "host.h"
#include "large_cache.h"
#include "os.h"
#include "secure.h"
#include "span.h"
#include "stats.h"

span_t ms_span_empty;
heap_t ms_heap_empty = {
    .direct = {[0 ... MS_DIRECT_COUNT - 1] = &ms_span_empty},
    .direct_medium = {[0 ... MS_DIRECT_MEDIUM_COUNT - 1] = &ms_span_empty},
    .alloc_span = {[0 ... MS_CLASS_COUNT - 1] = &ms_span_empty},
};
__thread heap_t *ms_heap_tls = &ms_heap_empty;

/* Guards the pool, the list of all heaps, and any work done on a pooled
 * heap (which has no owner to do it). */
static ms_lock_t pool_lock = MS_LOCK_INIT;
static heap_t *pool, *all_heaps;

/* Hysteresis, so a program that allocates and frees the same blocks over
 * and over neither rebuilds spans nor maps, purges and faults memory in
 * every round. A span whose blocks are all free stays on its class's list;
 * a free slice keeps its pages; an empty segment stays mapped. A collection
 * runs at most every COLLECT_INTERVAL_MS, on the next span made or emptied,
 * and gives back what was already unused at the previous one (two
 * generations), or everything when the heap has been quiet for a whole
 * interval. Empty spans also go as soon as the heap would otherwise map a
 * new segment, and never more than RETAIN_EMPTY_MAX empty segments stay. */
#define RETAIN_EMPTY_MAX 16
#define COLLECT_INTERVAL_MS 100
/* The pages inside holes of spans still in use go back the same way
 * (span.c:ms_span_purge_holes), with each collection's work bounded: a
 * heap of many GiB of big holes costs a collection at most this many
 * reads and system calls, and the next one goes on from the next class. */
#define HOLE_VISITS_MAX 16384
#define HOLE_PURGES_MAX 4096
/* A heap quiet for a whole interval is not slowed by its collection, and
 * gets no other before it is busy again: it may do this many times the
 * work (bench/frag settles 9 MiB lower with its 48,000 holes all seen). */
#define HOLE_QUIET_FACTOR 4

/* The direct[] entries of each class: [first, end), filled once from the
 * class table (under pool_lock, before any heap exists). */
static uint8_t direct_first[MS_CLASS_COUNT], direct_end[MS_CLASS_COUNT];

static void direct_ranges_init(void) {
    for (unsigned i = MS_DIRECT_COUNT; i-- > 0;) {
        unsigned c = ms_class_table[i];
        direct_first[c] = (uint8_t)i;
        if (direct_end[c] == 0)
            direct_end[c] = (uint8_t)(i + 1);
    }
}

/* Set once, before the first heap, when every call must be observed
 * (ms_heap_observe_every_call): direct[] then always holds ms_span_empty and
 * no span has a local_key, so both fast paths decline everything and no
 * test is added to them. */
static bool observe_every_call;

void ms_heap_observe_every_call(void) { observe_every_call = true; }

static void set_alloc_span(heap_t *heap, unsigned size_class, span_t *span) {
    heap->alloc_span[size_class] = span;
    span_t *direct = observe_every_call ? &ms_span_empty : span;
    for (unsigned i = direct_first[size_class]; i < direct_end[size_class]; i++)
        heap->direct[i] = direct;
    if (size_class - MS_CLASS_TABLE_COUNT < MS_DIRECT_MEDIUM_COUNT)
        heap->direct_medium[size_class - MS_CLASS_TABLE_COUNT] = direct;
}

/* The local_key of the owner's listed spans: what free's fast path compares
 * with the calling thread. */
static uintptr_t fast_free_key(const heap_t *heap) {
    return observe_every_call ? 0 : heap->thread_id;
}

/* The local_key of a span of heap that is not full: free's fast path must
 * pass over a span with parked holes, whose marks are gone (span.c). */
static uintptr_t listed_key(const heap_t *heap, const segment_t *segment, const span_t *span) {
    return ms_span_has_parked(segment, span) ? 0 : fast_free_key(heap);
}

static uintptr_t heap_owner(const heap_t *heap) {
    return __atomic_load_n(&heap->thread_id, __ATOMIC_RELAXED);
}

/* A pooled heap has no thread to reuse what it keeps, so it keeps nothing.
 * An explicit heap has no thread either, but its program keeps using it. */
static bool heap_pooled(const heap_t *heap) { return heap->thread_id == 0 && !heap->is_explicit; }

/* ---- the partial list of each class ----
 * First in, first out: a full span rejoins the list at its first free, so
 * the newest entry has one hole where the oldest has had longest to gather
 * them. Taking the oldest lets malloc run longer on each span it picks. */

static void partial_push(heap_t *heap, span_t *span) {
    unsigned c = span->size_class;
    span->next = NULL;
    span->prev = heap->partial_last[c];
    if (span->prev)
        span->prev->next = span;
    else
        heap->partial[c] = span;
    heap->partial_last[c] = span;
}

static void partial_remove(heap_t *heap, span_t *span) {
    unsigned c = span->size_class;
    if (span->prev)
        span->prev->next = span->next;
    else
        heap->partial[c] = span->next;
    if (span->next)
        span->next->prev = span->prev;
    else
        heap->partial_last[c] = span->prev;
    span->next = span->prev = NULL;
}

/* ---- the heap's segments: those with free slices first, so the search
 * for room stops at the first full one ---- */

static void segment_unlink(heap_t *heap, segment_t *segment) {
    if (segment->heap_prev)
        segment->heap_prev->heap_next = segment->heap_next;
    else
        heap->segments = segment->heap_next;
    if (segment->heap_next)
        segment->heap_next->heap_prev = segment->heap_prev;
    segment->heap_next = segment->heap_prev = NULL;
}

static void span_retire(heap_t *heap, segment_t *segment, span_t *span);

/* Retire the empty spans (all, or those already kept through one
 * collection, marking the others). */
static void retire_empty_spans(heap_t *heap, bool everything) {
    for (unsigned c = 0; c < MS_CLASS_COUNT && heap->empty_spans; c++)
        for (span_t *span = heap->partial[c], *next; span; span = next) {
            next = span->next;
            if (span->used != 0)
                continue;
            if (!everything && !span->aged) {
                span->aged = 1;
                continue;
            }
            partial_remove(heap, span);
            heap->empty_spans--;
            span_retire(heap, ms_segment_base(span), span);
        }
}

static void segment_push_front(heap_t *heap, segment_t *segment) {
    segment->heap_prev = NULL;
    segment->heap_next = heap->segments;
    if (heap->segments)
        heap->segments->heap_prev = segment;
    heap->segments = segment;
}

static void segment_push_back(heap_t *heap, segment_t *segment) {
    segment_t *last = heap->segments;
    if (last == NULL) {
        segment_push_front(heap, segment);
        return;
    }
    while (last->heap_next)
        last = last->heap_next;
    last->heap_next = segment;
    segment->heap_prev = last;
    segment->heap_next = NULL;
}

static bool segment_full(const segment_t *segment) { return segment->used_slices == ~(uint64_t)0; }

static size_t segment_release(heap_t *heap, segment_t *segment) {
    size_t bytes = segment->mapped_size;
    segment_unlink(heap, segment);
    heap->empty_segments--;
    ms_segment_destroy(segment);
    return bytes;
}

/* One span's holes (span.c:ms_span_purge_holes); a span left with parked
 * holes leaves free's fast path. */
static size_t purge_span(heap_t *heap, span_t *span, bool everything, ms_hole_budget_t *budget) {
    segment_t *segment = ms_segment_base(span);
    size_t purged = ms_span_purge_holes(segment, span, everything, budget);
    if (purged && !span->full) {
        span->local_key = listed_key(heap, segment, span);
        span->parked_frees = 0;
    }
    return purged;
}

/* The holes of every class, bigger classes first (a hole there is worth
 * more pages), starting after the class where the previous collection ran
 * out of budget; a quiet heap starts from the biggest. While the heap is
 * busy, only classes above a page, and not the span being carved: a span
 * with parked holes takes every free on the slow path until malloc has
 * threaded them back, and small blocks are freed too often for that
 * (bench/churn: 29% more instructions when its pages were parked). */
static size_t purge_holes(heap_t *heap, bool everything) {
    unsigned factor = everything ? HOLE_QUIET_FACTOR : 1;
    ms_hole_budget_t budget = {HOLE_VISITS_MAX * factor, HOLE_PURGES_MAX * factor};
    size_t purged = 0;
    unsigned start = everything ? MS_CLASS_COUNT - 1 : heap->hole_cursor % MS_CLASS_COUNT;
    for (unsigned n = 0; n < MS_CLASS_COUNT; n++) {
        unsigned c = (start + MS_CLASS_COUNT - n) % MS_CLASS_COUNT;
        if (!everything && ms_size_class_size(c) <= MS_OS_PAGE)
            continue;
        span_t *current = heap->alloc_span[c];
        if (everything && current != &ms_span_empty)
            purged += purge_span(heap, current, true, &budget);
        for (span_t *span = heap->partial[c]; span; span = span->next)
            purged += purge_span(heap, span, everything, &budget);
        if (budget.visits == 0 || budget.purges == 0) {
            /* The next class first: a class with more holes than one
             * budget must not starve the others. */
            heap->hole_cursor = (c + MS_CLASS_COUNT - 1) % MS_CLASS_COUNT;
            break;
        }
    }
    return purged;
}

/* Retire empty spans, unmap empty segments, purge free slices of the
 * others and the pages inside holes: everything, or what has waited a
 * collection already. */
static size_t heap_collect(heap_t *heap, bool everything) {
    heap->freed_unsettled &= !everything;
    size_t released = ms_large_cache_collect(everything);
    retire_empty_spans(heap, everything);
    released += purge_holes(heap, everything);
    for (segment_t *segment = heap->segments, *next; segment; segment = next) {
        next = segment->heap_next;
        if (ms_segment_is_empty(segment) && (everything || ms_segment_aged(segment)))
            released += segment_release(heap, segment);
        else
            released += ms_segment_purge(segment, everything);
    }
    return released;
}

/* Span events (made, emptied) come at most once per span's worth of
 * mallocs, so reading the coarse clock on each costs little. */
static void note_span_event(heap_t *heap) {
    uint64_t now = ms_host_now_ms();
    if (now - heap->last_collect_ms >= COLLECT_INTERVAL_MS) {
        heap->last_collect_ms = now;
        heap_collect(heap, now - heap->last_event_ms >= COLLECT_INTERVAL_MS);
    }
    heap->last_event_ms = now;
}

/* A program that frees much and goes quiet gets its memory back at the
 * first collection after a quiet interval, which comes with a span event.
 * But it may then run only mallocs and frees that the fast paths take and
 * that empty no span: nothing would look at the clock again (the hardened
 * build kept bench/frag's 270 MiB after a single cycle's frees). So a span
 * emptied, or a large block freed into the cache, arms the clock: every
 * direct entry is blanked, and the next malloc of any class takes the slow
 * path, which puts them back and looks. While what was freed waits for a
 * quiet collection, that look arms the clock again, for the malloc after a
 * quiet spell. Not within CLOCK_REARM_MS of the previous look: a program
 * that mallocs and frees spans' worth of blocks in turn (bench/churn of
 * 1-64 KiB blocks) paid 11% more instructions when every emptied span
 * armed it. So a program that mallocs several times within that time after
 * its last frees, and then only takes fast paths, still waits for its next
 * span event. */
#define CLOCK_REARM_MS 2

static void blank_direct(heap_t *heap) {
    heap->clock_armed = true;
    for (unsigned i = 0; i < MS_DIRECT_COUNT; i++)
        heap->direct[i] = &ms_span_empty;
    for (unsigned i = 0; i < MS_DIRECT_MEDIUM_COUNT; i++)
        heap->direct_medium[i] = &ms_span_empty;
}

/* After note_span_event: last_event_ms is now. */
static void arm_clock(heap_t *heap) {
    if (!heap->clock_armed && heap->last_event_ms - heap->clock_looked_ms >= CLOCK_REARM_MS &&
        !heap->is_explicit && !heap_pooled(heap))
        blank_direct(heap);
}

static void look_at_clock(heap_t *heap) {
    uint64_t previous = heap->clock_looked_ms;
    heap->clock_armed = false;
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++)
        set_alloc_span(heap, c, heap->alloc_span[c]);
    note_span_event(heap);
    heap->clock_looked_ms = heap->last_event_ms;
    if (heap->freed_unsettled && heap->clock_looked_ms - previous >= CLOCK_REARM_MS)
        blank_direct(heap);
}

/* A span emptied or a large block freed: memory a collection may give back. */
static void note_freed(heap_t *heap) {
    heap->freed_unsettled = true;
    note_span_event(heap);
    arm_clock(heap);
}

void ms_heap_large_freed(heap_t *heap) {
    if (heap != &ms_heap_empty)
        note_freed(heap);
}

/* ---- spans ---- */

/* A heap that has carved this much of small-block spans to the end, with no
 * span emptied on the way, is growing through fresh memory: the next span
 * that opens a pristine half segment gets the whole half faulted in at once
 * (one huge page costs about a quarter of its 512 page faults). The bet is
 * never larger than the growth that earned it: the half populated must be
 * carved, and as much again, before the next bet; so what is populated and
 * never used stays under what the heap has been using. Only for classes
 * whose carving writes every page anyway, and only for thread heaps: an
 * explicit heap would hold its lock through the call. */
#define STREAM_MIN ((ptrdiff_t)MS_SEGMENT_SIZE / 2)

static void maybe_populate(heap_t *heap, segment_t *segment, unsigned first, const span_t *span) {
    if (first == MS_SLICES_PER_SEGMENT / 2 && heap->streamed >= STREAM_MIN &&
        span->block_size <= MS_OS_PAGE && !heap->is_explicit &&
        ms_segment_populate_upper_half(segment))
        heap->streamed = -STREAM_MIN;
}

static span_t *span_new(heap_t *heap, unsigned size_class) {
    unsigned count = ms_size_class_slices(size_class);
    segment_t *segment;
    int first = -1;
    for (segment = heap->segments; segment && !segment_full(segment); segment = segment->heap_next) {
        bool was_empty = ms_segment_is_empty(segment);
        first = ms_segment_take_slices(segment, count);
        if (first >= 0) {
            if (was_empty)
                heap->empty_segments--;
            break;
        }
    }
    if (first < 0 && heap->empty_spans) {
        retire_empty_spans(heap, true);
        heap->empty_spans = 0; /* the count is a hint: never let it loop us */
        return span_new(heap, size_class);
    }
    if (first < 0) {
        /* A freed large block still cached is memory the program has not
         * needed since: turning it into the segment keeps the process from
         * growing (bench/frag: 65 MiB of its peak were such blocks). */
        segment_t *cached = ms_large_cache_take_biggest();
        segment = cached ? ms_segment_recycle(heap, cached) : NULL;
        if (segment == NULL)
            segment = ms_segment_create(heap);
        if (segment == NULL)
            return NULL;
        segment_push_front(heap, segment);
        first = ms_segment_take_slices(segment, count);
    }
    if (segment_full(segment)) {
        segment_unlink(heap, segment);
        segment_push_back(heap, segment);
    }
    span_t *span = ms_span_init(segment, (unsigned)first, count, size_class);
    span->local_key = fast_free_key(heap);
    /* Slices a span or a recycled large block may have left resident: what
     * carving does not reach again goes back with the holes
     * (span.c:ms_span_purge_holes). */
    uint64_t run = (count >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << count) - 1) << first;
    span->resident_tail = (segment->dirty_slices & run) != 0;
    maybe_populate(heap, segment, (unsigned)first, span);
    note_span_event(heap);
    return span;
}

/* span has no block in use and is not the one being carved: give its slices
 * back, and the segment too if it is now empty and the heap has enough. */
static void span_retire(heap_t *heap, segment_t *segment, span_t *span) {
    bool was_full = segment_full(segment);
    ms_span_release(segment, span);
    if (was_full) {
        segment_unlink(heap, segment);
        segment_push_front(heap, segment);
    }
    if (ms_segment_is_empty(segment)) {
        heap->empty_segments++;
        if (heap_pooled(heap) || heap->empty_segments > RETAIN_EMPTY_MAX)
            segment_release(heap, segment);
    }
}

void ms_heap_span_emptied(heap_t *heap, segment_t *segment, span_t *span) {
    if (heap->alloc_span[span->size_class] == span) {
        /* A malloc/free loop lands here on every free: look at the clock
         * now and then only, so memory freed just before the program went
         * quiet still goes back on its next activity. */
        if ((++heap->current_emptied & 63) == 0)
            note_freed(heap);
        return;
    }
    heap->streamed = 0; /* memory comes back: the heap is not only growing */
    /* Nobody will reuse it soon; or its one block is gone, and as free
     * slices its pages serve any class, not just the next block of this
     * one (bench/frag holds a few MiB less at its peak). */
    if (heap_pooled(heap) || span->block_size > MS_SMALL_MAX) {
        partial_remove(heap, span);
        span_retire(heap, segment, span);
        if (!heap_pooled(heap))
            note_freed(heap);
        return;
    }
    /* Forget the holes: carving again lays blocks out in address order, which
     * the next round walks faster than a list threaded in free order. Only
     * for a span carved whole: a span carved part way would keep pages
     * past where it carves again resident, where nothing finds them (the
     * holes of its pages go back with them, ms_span_purge_holes). */
    if (span->whole) {
        ms_span_reset(segment, span);
        span->local_key = fast_free_key(heap);
    }
    heap->empty_spans++;
    note_freed(heap);
}

/* A span with parked holes takes its frees on the slow path. One that the
 * program keeps freeing into is in use again: after this many, its parked
 * holes are threaded back at once, and free's fast path takes it again. */
#define PARKED_FREES_MAX 15

static void count_parked_free(heap_t *heap, segment_t *segment, span_t *span) {
    if (span->full || span->local_key != 0 || !ms_span_has_parked(segment, span))
        return;
    if (++span->parked_frees < PARKED_FREES_MAX)
        return;
    while (ms_span_unpark(segment, span))
        ;
    span->parked_frees = 0;
    span->local_key = listed_key(heap, segment, span);
}

/* Put a hole back on its span, as the owner (or, for a pooled heap, while
 * holding pool_lock). */
static void span_take_back(heap_t *heap, segment_t *segment, span_t *span, block_t *block) {
    count_parked_free(heap, segment, span);
    block->next = ms_link_code(span->free, block);
    block->freed_mark = (uintptr_t)span;
    span->free = block;
    if (span->full) {
        span->full = 0;
        span->local_key = listed_key(heap, segment, span);
        partial_push(heap, span);
    }
    if (--span->used == 0)
        ms_heap_span_emptied(heap, segment, span);
}

/* A hole's link must lead to a hole of the same heap: checked where it is
 * cheap (every link on the slow paths; every pop in the secure build), so
 * a write after free or past a block's end that hit a link is reported
 * instead of handing out memory that belongs to something else. */
__attribute__((noreturn, cold)) static void corrupt_link(const block_t *hole) {
    ms_host_fatal("malloc", "corrupted free-list link in the hole at", hole);
}

static block_t *next_hole(segment_t *segment, span_t *span, const block_t *hole) {
    block_t *next = ms_link_code(hole->next, hole);
    if (next && !ms_span_is_block_start(segment, span, next))
        corrupt_link(hole);
    return next;
}

static void drain_remote(heap_t *heap) {
    block_t *list = atomic_exchange_explicit(&heap->remote_free, NULL, memory_order_acquire);
    int64_t drained = 0;
    for (const block_t *from = NULL; list; drained++) {
        block_t *block = list;
        segment_t *segment = ms_segment_base(block);
        span_t *span;
        if (!ms_segment_mapped(block) || segment->heap != heap ||
            (span = ms_span_head(ms_segment_slice_of(segment, block))) == NULL ||
            !ms_span_is_block_start(segment, span, block))
            corrupt_link(from ? from : block);
        /* Freed by another thread while its page was parked with it: the
         * mark that would have told that thread went with the page. */
        if (ms_span_block_parked(segment, span, block))
            ms_host_fatal("free", "double free of", block);
        list = ms_link_code(block->next, block);
        from = block;
        span_take_back(heap, segment, span, block);
    }
    /* Counted here, a batch at a time: a shared counter bumped by every
     * remote free would bounce its cache line between the freeing threads. */
    if (drained)
        ms_stats_add(MS_STAT_remote_frees, drained);
}

/* span has no hole left and would carve past where it was ever carved,
 * faulting in fresh pages: if the next listed span is empty and was carved
 * whole once, its pages are all resident, so it goes first. Otherwise a
 * program that frees everything and allocates as much again grows: it
 * starts on the span it ended in, whose untouched rest is faulted in while
 * the spans it filled before wait. span is set aside like a full one (a
 * free of one of its blocks lists it again); one with no block out would
 * never come back, so it stays. Only for empty spans: under churn, spans
 * with holes and blocks out would trade places on every batch, each trade
 * costing a slow free. */
/* A listed span, off its list to be malloc's next: it counts no longer as
 * an empty span kept for reuse, nor as aged. */
static span_t *partial_take(heap_t *heap, span_t *span) {
    partial_remove(heap, span);
    heap->empty_spans -= span->used == 0;
    span->aged = 0;
    return span;
}

static span_t *resident_first(heap_t *heap, span_t *span) {
    span_t *other = heap->partial[span->size_class];
    if (span->used == 0 || other == NULL || !other->whole || other->used != 0)
        return NULL;
    span->full = 1;
    span->local_key = 0;
    return partial_take(heap, other);
}

/* span has no hole left and would carve blocks it never had out, while the
 * span at the head of the list has holes: those go first, and span waits
 * at the end of the list with its uncarved rest (still the owner's: its
 * frees stay on the fast path). Carving first let each class grow past the
 * most blocks it ever had out, by the holes scattered over its other spans
 * (churn: 424 KiB of holes for 1.2 MiB in use). A span carved whole once
 * carves resident pages, so it carves on. */
static span_t *holes_first(heap_t *heap, span_t *span) {
    span_t *other = heap->partial[span->size_class];
    if (span->whole || other == NULL)
        return NULL;
    /* Parked holes count too, but not for a span that has its own: passing
     * the turn along a list of such spans would never end. */
    if (other->free == NULL && (!ms_span_has_parked(ms_segment_base(other), other) ||
                                ms_span_has_parked(ms_segment_base(span), span)))
        return NULL;
    partial_take(heap, other);
    heap->empty_spans += span->used == 0;
    partial_push(heap, span);
    return other;
}

static void *heap_alloc(heap_t *heap, unsigned size_class) {
    if (MS_UNLIKELY(heap->clock_armed))
        look_at_clock(heap);
    span_t *span = heap->alloc_span[size_class];
    for (;;) {
        if (span->free) {
            block_t *block = span->free;
            span->free = next_hole(ms_segment_base(span), span, block);
            block->freed_mark = 0;
            span->used++;
            return block;
        }
        if (atomic_load_explicit(&heap->remote_free, memory_order_relaxed)) {
            drain_remote(heap);
            span = heap->alloc_span[size_class];
            if (span->free)
                continue;
        }
        if (span != &ms_span_empty) {
            span_t *resident = span->whole ? NULL : resident_first(heap, span);
            if (resident == NULL)
                resident = holes_first(heap, span);
            if (resident) {
                set_alloc_span(heap, size_class, resident);
                span = resident;
                continue;
            }
            segment_t *segment = ms_segment_base(span);
            /* Parked holes before fresh pages: both fault, these keep the
             * span's blocks together. */
            if (ms_span_unpark(segment, span)) {
                if (!ms_span_has_parked(segment, span))
                    span->local_key = fast_free_key(heap);
                continue;
            }
            if (ms_span_carve(segment, span))
                continue;
            span->full = 1; /* every block is out: free() will relist it */
            span->whole = 1;
            span->local_key = 0;
            if (span->block_size <= MS_OS_PAGE)
                heap->streamed += (ptrdiff_t)span->slice_count * MS_SLICE_SIZE;
        }
        span = heap->partial[size_class];
        if (span) {
            partial_take(heap, span);
        } else if ((span = span_new(heap, size_class)) == NULL) {
            set_alloc_span(heap, size_class, &ms_span_empty); /* never a full span */
            return NULL;
        }
        set_alloc_span(heap, size_class, span);
    }
}

void *ms_heap_alloc(heap_t *heap, unsigned size_class) {
    if (MS_LIKELY(!heap->is_explicit))
        return heap_alloc(heap, size_class);
    ms_lock(&heap->lock);
    void *block = heap_alloc(heap, size_class);
    ms_unlock(&heap->lock);
    return block;
}

static bool remote_list_has(heap_t *heap, const block_t *block) {
    for (const block_t *b = atomic_load_explicit(&heap->remote_free, memory_order_acquire); b;
         b = ms_link_code(b->next, b))
        if (b == block)
            return true;
    return false;
}

/* By the owner, or under the heap's lock: the mark can be confirmed. */
static void free_owned(heap_t *heap, segment_t *segment, span_t *span, block_t *block,
                       const char *caller) {
    if ((block->freed_mark == (uintptr_t)span &&
         (ms_span_has_hole(span, block) || remote_list_has(heap, block))) ||
        ms_span_block_parked(segment, span, block))
        ms_host_fatal(caller, "double free of", block);
    span_take_back(heap, segment, span, block);
}

void ms_heap_free(segment_t *segment, span_t *span, block_t *block, const char *caller) {
    heap_t *heap = segment->heap;
    uintptr_t self = ms_thread_id();
    if (heap_owner(heap) == self) {
        free_owned(heap, segment, span, block, caller);
        return;
    }
    /* No call on an explicit heap holds its lock while freeing elsewhere,
     * so taking it here cannot deadlock, and the block is reusable at once. */
    if (heap->is_explicit) {
        ms_lock(&heap->lock);
        free_owned(heap, segment, span, block, caller);
        ms_unlock(&heap->lock);
        return;
    }
    /* Another thread's block. The mark cannot be confirmed without racing
     * the owner, but it is a pointer into allocator metadata that no live
     * block can legitimately hold in its second word. */
    if (block->freed_mark == (uintptr_t)span)
        ms_host_fatal(caller, "double free of", block);
    block->freed_mark = (uintptr_t)span;
    block_t *head = atomic_load_explicit(&heap->remote_free, memory_order_relaxed);
    do
        block->next = ms_link_code(head, block);
    while (!atomic_compare_exchange_weak_explicit(&heap->remote_free, &head, block,
                                                  memory_order_seq_cst, memory_order_relaxed));
    /* Pairs with ms_heap_release: either it drains our block after marking
     * the heap abandoned, or we see the mark and drain it ourselves. */
    if (atomic_load_explicit(&heap->abandoned, memory_order_seq_cst)) {
        ms_lock(&pool_lock);
        if (atomic_load_explicit(&heap->abandoned, memory_order_relaxed))
            drain_remote(heap);
        ms_unlock(&pool_lock);
    }
}

/* ---- acquire, release, pool ---- */

static void set_local_keys(heap_t *heap) {
    uintptr_t key = fast_free_key(heap);
    for (segment_t *segment = heap->segments; segment; segment = segment->heap_next)
        for (unsigned i = 1; i < MS_SLICES_PER_SEGMENT; i++) {
            span_t *span = &segment->spans[i];
            if (span->block_size)
                span->local_key = span->full || ms_span_has_parked(segment, span) ? 0 : key;
        }
}

void ms_heap_init(heap_t *heap) {
    ms_lock(&pool_lock);
    if (direct_end[0] == 0) {
        direct_ranges_init();
        ms_secure_init();
    }
    ms_unlock(&pool_lock);
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++)
        set_alloc_span(heap, c, &ms_span_empty);
    heap->last_collect_ms = heap->last_event_ms = ms_host_now_ms();
}

heap_t *ms_heap_acquire(void) {
    uintptr_t self = ms_thread_id();
    ms_lock(&pool_lock);
    heap_t *heap = pool;
    if (heap) {
        pool = heap->pool_next;
        heap->pool_next = NULL;
        __atomic_store_n(&heap->thread_id, self, __ATOMIC_RELAXED);
        atomic_store(&heap->abandoned, 0);
        set_local_keys(heap);
        ms_stats_add(MS_STAT_heaps_adopted, 1);
    }
    ms_unlock(&pool_lock);
    if (heap == NULL) {
        heap = ms_os_map(MS_HEAP_MAPPED_SIZE);
        if (heap == NULL)
            return NULL;
        ms_heap_init(heap);
        __atomic_store_n(&heap->thread_id, self, __ATOMIC_RELAXED);
        ms_lock(&pool_lock);
        heap->all_next = all_heaps;
        all_heaps = heap;
        ms_unlock(&pool_lock);
        ms_stats_add(MS_STAT_heaps, 1);
    }
    heap->last_collect_ms = heap->last_event_ms = ms_host_now_ms();
    ms_heap_tls = heap;
    return heap;
}

/* Stop carving: each class's current span joins the partial list, or is
 * retired if nothing in it is in use. */
static void drop_alloc_spans(heap_t *heap) {
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++) {
        span_t *span = heap->alloc_span[c];
        if (span == &ms_span_empty)
            continue;
        set_alloc_span(heap, c, &ms_span_empty);
        segment_t *segment = ms_segment_base(span);
        if (span->used == 0)
            span_retire(heap, segment, span);
        else
            partial_push(heap, span);
    }
}

static void pool_locked(heap_t *heap) {
    __atomic_store_n(&heap->thread_id, 0, __ATOMIC_RELAXED);
    atomic_store_explicit(&heap->abandoned, 1, memory_order_seq_cst);
    set_local_keys(heap);
    heap->pool_next = pool;
    pool = heap;
}

void ms_heap_release(heap_t *heap, bool everything) {
    if (heap == &ms_heap_empty)
        return;
    ms_heap_tls = &ms_heap_empty;
    drain_remote(heap);
    drop_alloc_spans(heap);
    heap_collect(heap, everything);
    ms_lock(&pool_lock);
    pool_locked(heap);
    drain_remote(heap); /* blocks pushed before the abandoned mark was visible */
    heap_collect(heap, everything);
    ms_unlock(&pool_lock);
}

size_t ms_heap_collect(heap_t *heap) {
    drop_alloc_spans(heap);
    return heap_collect(heap, true);
}

size_t ms_heap_trim_all(void) {
    size_t released = ms_large_cache_collect(true);
    heap_t *mine = ms_heap_tls;
    if (mine != &ms_heap_empty) {
        drain_remote(mine);
        released += heap_collect(mine, true);
    }
    ms_lock(&pool_lock);
    for (heap_t *heap = pool; heap; heap = heap->pool_next) {
        drain_remote(heap);
        released += heap_collect(heap, true);
    }
    ms_unlock(&pool_lock);
    return released + ms_explicit_heap_trim_all();
}

void ms_heap_walk(void (*visit)(heap_t *, void *), void *arg) {
    ms_lock(&pool_lock);
    for (heap_t *heap = all_heaps; heap; heap = heap->all_next)
        visit(heap, arg);
    ms_unlock(&pool_lock);
}

/* ---- fork ---- */

static bool locked_for_fork[3];

void ms_heap_fork_prepare(void) {
    ms_lock_for_fork(&pool_lock, &locked_for_fork[0]);
    ms_lock_for_fork(&ms_segment_chain_lock, &locked_for_fork[1]);
    ms_lock_for_fork(&ms_large_cache_lock, &locked_for_fork[2]);
}

void ms_heap_fork_parent(void) {
    ms_unlock_after_fork(&ms_large_cache_lock, locked_for_fork[2]);
    ms_unlock_after_fork(&ms_segment_chain_lock, locked_for_fork[1]);
    ms_unlock_after_fork(&pool_lock, locked_for_fork[0]);
}

void ms_heap_fork_child(void) {
    ms_lock_reset(&ms_large_cache_lock);
    ms_lock_reset(&ms_segment_chain_lock);
    ms_lock_reset(&pool_lock);
    /* Only the forking thread exists here; every other owned heap is an
     * orphan. Pool them so their memory is reused instead of lost. */
    heap_t *mine = ms_heap_tls;
    for (heap_t *heap = all_heaps; heap; heap = heap->all_next) {
        if (heap == mine || heap->thread_id == 0)
            continue;
        for (unsigned c = 0; c < MS_CLASS_COUNT; c++) {
            span_t *span = heap->alloc_span[c];
            set_alloc_span(heap, c, &ms_span_empty);
            if (span != &ms_span_empty) {
                partial_push(heap, span);
                heap->empty_spans += span->used == 0;
            }
        }
        pool_locked(heap);
    }
}
