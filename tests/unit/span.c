/* Spans (core/span.[ch]): the pages that hold only holes go back to the OS
 * whole (ms_span_purge_holes), the holes on them parked off the free list,
 * on the second look unless everything is asked, within the budget, never
 * through a corrupted link; malloc's slow path threads them back
 * (ms_span_unpark), each once; a block handed out again for a smaller
 * request drops its pages past the request (ms_span_trim_block). The spans
 * are made directly in a segment, with no heap; residency is read with
 * mincore. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../harness.h"
#include "segment.h"
#include "size_class.h"
#include "span.h"
#include "stats.h"

#define PAGE ((uintptr_t)MS_OS_PAGE)

static ms_stats_t stats(void) {
    ms_stats_t s;
    ms_stats_read(&s);
    return s;
}

/* Resident pages in [from, to). */
static size_t resident(uintptr_t from, uintptr_t to) {
    static unsigned char vec[1024];
    size_t pages = (to - from) / PAGE;
    if (pages > sizeof vec || mincore((void *)from, to - from, vec) != 0)
        return (size_t)-1;
    size_t n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

enum { MAX = 4096 };
static block_t *block[MAX];

static int by_address(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(block_t *const *)a, y = (uintptr_t)*(block_t *const *)b;
    return (x > y) - (x < y);
}

/* A span of the class of `request`, carved whole, every block taken off
 * the list and written; n blocks, block[] in address order. */
static span_t *span_full(segment_t *segment, size_t request, unsigned *n) {
    unsigned size_class = ms_size_class_of(request);
    unsigned slices = ms_size_class_slices(size_class);
    int first = ms_segment_take_slices(segment, slices);
    span_t *span = ms_span_init(segment, (unsigned)first, slices, size_class);
    while (ms_span_carve(segment, span))
        ;
    *n = 0;
    while (span->free && *n < MAX) {
        block_t *b = span->free;
        span->free = ms_link_code(b->next, b);
        b->freed_mark = 0;
        memset(b, 0x33, span->block_size);
        block[(*n)++] = b;
    }
    qsort(block, *n, sizeof *block, by_address);
    span->used = *n;
    return span;
}

/* Frees the blocks i (address order) for which hole(i), as free() does. */
static void free_some(span_t *span, unsigned n, int (*hole)(unsigned)) {
    for (unsigned i = 0; i < n; i++)
        if (hole(i)) {
            block[i]->next = ms_link_code(span->free, block[i]);
            block[i]->freed_mark = (uintptr_t)span;
            span->free = block[i];
            span->used--;
        }
}

static unsigned list_length(const span_t *span) {
    unsigned count = 0;
    for (const block_t *b = span->free; b && count <= MAX; b = ms_link_code(b->next, b))
        count++;
    return count;
}

static int odd(unsigned i) { return i % 2; }
static int not_every_16th(unsigned i) { return i % 16 != 5; }
static int all_but_first(unsigned i) { return i != 0; }

/* 16 KiB blocks: page-aligned, four pages each. */
static void test_big_holes(segment_t *segment) {
    unsigned n;
    span_t *span = span_full(segment, 16384, &n);
    size_t size = span->block_size;
    CHECK("16 KiB: the span's blocks carved and written",
          n >= 8 && resident((uintptr_t)block[0], (uintptr_t)block[0] + size) == 4);
    free_some(span, n, odd);

    ms_hole_budget_t budget = {1000, 1000};
    size_t purged = ms_span_purge_holes(segment, span, false, &budget);
    size_t still = 0;
    for (unsigned i = 1; i < n; i += 2)
        still += resident((uintptr_t)block[i], (uintptr_t)block[i] + size);
    CHECK("first look: holes only noted, nothing purged", purged == 0 && still == (n / 2) * 4);
    CHECK("first look: every hole visited", budget.visits == 1000 - n / 2);

    ms_stats_t s0 = stats();
    purged = ms_span_purge_holes(segment, span, false, &budget);
    size_t gone = 0, live_kept = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t r = resident((uintptr_t)block[i], (uintptr_t)block[i] + size);
        if (i % 2)
            gone += r == 0;
        else
            live_kept += r == 4 && ((unsigned char *)block[i])[size - 1] == 0x33;
    }
    CHECK("second look: every page of every hole is purged, the first too",
          purged == (n / 2) * 4 * PAGE && gone == n / 2);
    CHECK("second look: the live blocks are untouched", live_kept == n - n / 2);
    CHECK("second look: counted in hole_bytes_purged and bytes_purged",
          stats().hole_bytes_purged - s0.hole_bytes_purged == purged &&
              stats().bytes_purged - s0.bytes_purged == purged);
    CHECK("the purged holes are off the free list, parked",
          span->free == NULL && ms_span_has_parked(segment, span) &&
              ms_span_block_parked(segment, span, block[1]) &&
              !ms_span_block_parked(segment, span, block[0]));
    CHECK("a parked hole counts as free, a live block not",
          ms_span_block_free(segment, span, block[3]) &&
              !ms_span_block_free(segment, span, block[2]));
    CHECK("parked pages are not purged again",
          ms_span_purge_holes(segment, span, true, &budget) == 0);

    unsigned threaded = ms_span_unpark(segment, span), calls = 1, got;
    int marked = 1, ascending = 1;
    const block_t *prev = NULL;
    for (const block_t *b = span->free; b; prev = b, b = ms_link_code(b->next, b)) {
        marked &= b->freed_mark == (uintptr_t)span && ms_span_is_block_start(segment, span, b);
        ascending &= prev == NULL || b > prev;
    }
    while ((got = ms_span_unpark(segment, span)) != 0 && calls < 100)
        threaded += got, calls++;
    CHECK("unpark threads every parked hole back, once",
          threaded == n / 2 && list_length(span) == n / 2 && !ms_span_has_parked(segment, span));
    CHECK("unpark: marked holes, in address order", marked && ascending);
    CHECK("unpark: a run at a time", calls > 1);
    ms_span_release(segment, span);
}

/* 256-byte blocks, 16 a page: only pages with no live block go. */
static void test_small_holes(segment_t *segment) {
    unsigned n;
    span_t *span = span_full(segment, 256, &n);
    free_some(span, n, not_every_16th);
    /* The pages of blocks 16k..16k+15: one live block each, except where
     * the test frees that one too. */
    block[5]->next = ms_link_code(span->free, block[5]);
    block[5]->freed_mark = (uintptr_t)span;
    span->free = block[5];
    span->used--;
    ms_hole_budget_t budget = {MAX, 1000};
    size_t purged = ms_span_purge_holes(segment, span, true, &budget);
    CHECK("256 B: only the page without a live block is purged",
          purged == PAGE && resident((uintptr_t)block[0], (uintptr_t)block[0] + PAGE) == 0 &&
              resident((uintptr_t)block[16], (uintptr_t)block[n - 1] + 256) == n / 16 - 1);
    CHECK("256 B: its 16 holes parked, the others still listed",
          list_length(span) == n - n / 16 - 15 && ms_span_block_parked(segment, span, block[5]) &&
              !ms_span_block_parked(segment, span, block[16]));
    int live = 1;
    for (unsigned i = 21; i < n; i += 16)
        live &= ((unsigned char *)block[i])[255] == 0x33;
    CHECK("256 B: the live blocks keep their contents", live);
    ms_span_release(segment, span);
    CHECK("release forgets the parked pages", !ms_span_block_parked(segment, span, block[5]));
}

/* 6 KiB blocks straddle pages: a block half on a parked page comes back
 * once, however the runs are cut. */
static void test_straddling(segment_t *segment) {
    unsigned n;
    span_t *span = span_full(segment, 6144, &n);
    free_some(span, n, all_but_first);
    ms_hole_budget_t budget = {MAX, 1000};
    size_t purged = ms_span_purge_holes(segment, span, true, &budget);
    CHECK("6 KiB: every page past the live block's goes, the dead end too",
          purged == (size_t)span->slice_count * MS_SLICE_SIZE - 2 * PAGE &&
              list_length(span) == 0);
    unsigned threaded = 0, got, calls = 0;
    while ((got = ms_span_unpark(segment, span)) != 0 && calls < 100)
        threaded += got, calls++;
    int twice = 0;
    for (const block_t *b = span->free; b; b = ms_link_code(b->next, b))
        for (const block_t *c = ms_link_code(b->next, b); c; c = ms_link_code(c->next, c))
            twice |= b == c;
    CHECK("6 KiB: each hole back once", threaded == n - 1 && list_length(span) == n - 1 && !twice);
    ms_span_release(segment, span);
}

static void test_budget_and_tail(segment_t *segment) {
    unsigned n;
    span_t *span = span_full(segment, 16384, &n);
    free_some(span, n, odd);
    ms_hole_budget_t one = {1, 1000};
    ms_span_purge_holes(segment, span, true, &one);
    CHECK("the visit budget bounds the walk", one.visits == 0 && list_length(span) == n / 2 - 1);
    ms_hole_budget_t purges = {1000, 1};
    ms_span_purge_holes(segment, span, true, &purges);
    CHECK("the purge budget bounds the madvise calls",
          purges.purges == 0 && list_length(span) == n / 2 - 2);

    /* A corrupted link: the walk stops before it, writes nothing there. */
    block_t *victim = block[n - 2]; /* a live block */
    block_t *hole = span->free;
    hole->next = ms_link_code((block_t *)((char *)victim + 8), hole);
    ms_hole_budget_t b2 = {1000, 1000};
    ms_span_purge_holes(segment, span, true, &b2);
    int untouched = 1;
    for (size_t k = 0; k < span->block_size; k++)
        untouched &= ((unsigned char *)victim)[k] == 0x33;
    CHECK("a corrupted link stops the walk without writing through it", untouched);
    ms_span_release(segment, span);

    /* Carved whole once, then emptied and carved again part way: the pages
     * past the blocks carved go, and the span is no longer "whole". */
    span = span_full(segment, 1024, &n);
    span->used = 0;
    ms_span_reset(segment, span);
    ms_span_carve(segment, span);
    span->whole = 1;
    uintptr_t start = (uintptr_t)ms_span_start(segment, span);
    size_t carved = span->carved_end;
    ms_hole_budget_t b3 = {MAX, 1000};
    size_t purged = ms_span_purge_holes(segment, span, true, &b3);
    uintptr_t tail = (start + carved + PAGE - 1) & ~(PAGE - 1);
    CHECK("the old pages past the carved blocks go",
          purged >= start + MS_SLICE_SIZE - tail && resident(tail, start + MS_SLICE_SIZE) == 0 &&
              !span->whole);
    ms_span_release(segment, span);
}

int main(void) {
    TEST_BEGIN("span");
    segment_t *segment = ms_segment_create(NULL);
    CHECK("a segment to work in", segment != NULL);
    if (segment == NULL)
        return TEST_DONE();
    test_big_holes(segment);
    test_small_holes(segment);
    test_straddling(segment);
    test_budget_and_tail(segment);

    /* Trim: pages past a request go, the request's stay. */
    unsigned n;
    span_t *span = span_full(segment, 16384, &n);
    size_t size = span->block_size;
    memset(block[0], 0x66, size);
    ms_span_trim_block(block[0], size, PAGE + 100);
    CHECK("trim: the pages past the request go, the request's stay",
          resident((uintptr_t)block[0], (uintptr_t)block[0] + 2 * PAGE) == 2 &&
              resident((uintptr_t)block[0] + 2 * PAGE, (uintptr_t)block[0] + size) == 0 &&
              ((unsigned char *)block[0])[PAGE + 99] == 0x66);

    /* Carving fresh pages: a class that stops growing holds no page that
     * only carving touched. For blocks handed out one by one (and never
     * written here, so only carving's links make pages resident), the
     * span's resident pages are exactly those where handed-out blocks
     * start: each batch ends at the page where it began. 448-byte blocks
     * straddle page ends; 16-byte blocks come half a page at a time. */
    static const size_t sizes[] = {448, 16, 1024 + 128};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned c = ms_size_class_of(sizes[i]);
        int at = ms_segment_take_slices(segment, ms_size_class_slices(c));
        span_t *fresh = ms_span_init(segment, (unsigned)at, ms_size_class_slices(c), c);
        uintptr_t start = (uintptr_t)ms_span_start(segment, fresh);
        size_t bytes = (size_t)fresh->slice_count * MS_SLICE_SIZE;
        int exact = 1;
        unsigned handed = 0;
        for (; (handed + 1) * fresh->block_size <= 16 * PAGE; handed++) {
            if (fresh->free == NULL && ms_span_carve(segment, fresh) == 0)
                break;
            block_t *b = fresh->free;
            fresh->free = ms_link_code(b->next, b);
            size_t want = ((uintptr_t)b - start) / PAGE + 1;
            exact &= resident(start, start + bytes) == want;
        }
        char name[96];
        snprintf(name, sizeof name, "carving %zu-byte blocks faults in only pages where blocks go out",
                 (size_t)fresh->block_size);
        CHECK(name, exact && handed * fresh->block_size >= 15 * PAGE);
    }

    ms_segment_destroy(segment);
    return TEST_DONE();
}
