/* Spans (core/span.[ch]): the pages inside holes go back to the OS
 * (ms_span_purge_holes): past each hole's first page only, on the second
 * look unless everything is asked, once per hole, within the budget, never
 * through a corrupted link; a block handed out again for a smaller request
 * drops its pages past the request (ms_span_trim_block). The span is made
 * directly in a segment, with no heap; residency is read with mincore. */
#define _GNU_SOURCE
#include <stdint.h>
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

/* The pages of a block past its first one. */
static size_t resident_past_first(const void *block, size_t size) {
    return resident((uintptr_t)block + PAGE, (uintptr_t)block + size);
}

int main(void) {
    TEST_BEGIN("span");
    segment_t *segment = ms_segment_create(NULL);
    CHECK("a segment to work in", segment != NULL);
    if (segment == NULL)
        return TEST_DONE();

    /* 16 KiB blocks (page-aligned, four pages each), all carved, all
     * written, then every other one a hole again. */
    unsigned size_class = ms_size_class_of(16384);
    size_t size = ms_size_class_size(size_class);
    unsigned slices = ms_size_class_slices(size_class);
    int first = ms_segment_take_slices(segment, slices);
    span_t *span = ms_span_init(segment, (unsigned)first, slices, size_class);
    while (ms_span_carve(segment, span))
        ;
    enum { MAX = 64 };
    block_t *block[MAX];
    unsigned n = 0;
    while (span->free && n < MAX) {
        block[n] = span->free;
        span->free = ms_link_code(span->free->next, span->free);
        block[n]->freed_mark = 0;
        memset(block[n], 0x33, size);
        n++;
    }
    CHECK("the span's blocks carved and written", n >= 8 && span->free == NULL &&
                                                     resident_past_first(block[0], size) == 3);
    block_t *tail = NULL;
    for (unsigned i = n; i-- > 0;)
        if (i % 2) {
            block[i]->next = ms_link_code(tail, block[i]);
            block[i]->freed_mark = (uintptr_t)span;
            tail = block[i];
        }
    span->free = tail;

    ms_hole_budget_t budget = {1000, 1000};
    size_t purged = ms_span_purge_holes(segment, span, false, &budget);
    size_t still = 0;
    for (unsigned i = 1; i < n; i += 2)
        still += resident_past_first(block[i], size);
    CHECK("first look: holes only noted, nothing purged", purged == 0 && still == (n / 2) * 3);
    CHECK("first look: every hole visited", budget.visits == 1000 - n / 2);

    ms_stats_t s0 = stats();
    purged = ms_span_purge_holes(segment, span, false, &budget);
    size_t gone = 0, kept_first = 0, live_kept = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t r = resident_past_first(block[i], size);
        if (i % 2) {
            gone += r == 0;
            kept_first += resident((uintptr_t)block[i], (uintptr_t)block[i] + PAGE) == 1;
        } else {
            live_kept += r == 3 && ((unsigned char *)block[i])[size - 1] == 0x33;
        }
    }
    CHECK("second look: the pages past each hole's first are purged",
          purged == (n / 2) * 3 * PAGE && gone == n / 2);
    CHECK("second look: each hole's first page (its link) stays", kept_first == n / 2);
    CHECK("second look: the live blocks are untouched", live_kept == n - n / 2);
    CHECK("second look: counted in hole_bytes_purged and bytes_purged",
          stats().hole_bytes_purged - s0.hole_bytes_purged == purged &&
              stats().bytes_purged - s0.bytes_purged == purged);
    int links = 1;
    unsigned count = 0;
    for (block_t *b = span->free; b; b = ms_link_code(b->next, b), count++)
        links &= b->freed_mark == (uintptr_t)span;
    CHECK("second look: the free list is intact", links && count == n / 2);

    /* Written again (as a program would after malloc), freed again: the mark
     * is overwritten, so the hole is purged again. */
    memset((char *)block[1] + sizeof(block_t), 0x44, size - sizeof(block_t));
    CHECK("a purged hole already purged is skipped",
          ms_span_purge_holes(segment, span, true, &budget) == 3 * PAGE);
    CHECK("and everything purges at once", resident_past_first(block[1], size) == 0);

    ms_hole_budget_t one = {1, 1000};
    memset((char *)block[3] + sizeof(block_t), 0x44, size - sizeof(block_t));
    memset((char *)block[5] + sizeof(block_t), 0x44, size - sizeof(block_t));
    ms_span_purge_holes(segment, span, true, &one);
    CHECK("the visit budget bounds the walk", one.visits == 0);
    ms_hole_budget_t purges = {1000, 1};
    ms_span_purge_holes(segment, span, true, &purges);
    CHECK("the purge budget bounds the madvise calls",
          purges.purges == 0 && (resident_past_first(block[3], size) == 0) +
                                        (resident_past_first(block[5], size) == 0) == 1);

    /* A corrupted link: the walk stops before it, writes nothing there. */
    block_t *victim = block[n - 2]; /* a live block */
    memset((char *)victim + sizeof(block_t), 0x55, size - sizeof(block_t));
    block[1]->next = ms_link_code((block_t *)((char *)victim + 8), block[1]);
    ms_hole_budget_t b2 = {1000, 1000};
    ms_span_purge_holes(segment, span, true, &b2);
    int untouched = 1;
    for (size_t k = sizeof(block_t); k < size; k++)
        untouched &= ((unsigned char *)victim)[k] == 0x55;
    CHECK("a corrupted link stops the walk without writing through it", untouched);

    /* Trim: pages past a request go, the request's stay. */
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
