/* What the heap holds (core/usage.[ch]): every mapped byte is in use, free
 * or overhead, and the three add up to exactly what the OS counters say
 * is mapped; per-class counts follow blocks; torn readings of a racing
 * span still add up; the region view lists regions, spans and runs. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "../harness.h"
#include "alloc.h"
#include "heap.h"
#include "large.h"
#include "span.h"
#include "stats.h"
#include "usage.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static heap_t *h;

static ms_usage_t usage(void) {
    ms_usage_t u;
    ms_usage_collect(&u);
    return u;
}

static uint64_t os_mapped(void) {
    ms_stats_t s;
    ms_stats_read(&s);
    return s.bytes_mapped;
}

static int adds_up(const ms_usage_t *u) {
    return u->in_use + u->free + u->overhead == u->mapped &&
           u->free == u->free_holes + u->free_uncarved + u->free_slices + u->free_cached &&
           u->overhead == u->overhead_segments + u->overhead_large + u->overhead_heaps;
}

static void test_totals(void) {
    ms_usage_t u = usage();
    CHECK("one heap: its struct is all that is mapped",
          u.heaps == 1 && u.mapped == MS_HEAP_MAPPED_SIZE && u.overhead == u.mapped &&
              u.mapped == os_mapped());

    void *blocks[100];
    for (int i = 0; i < 100; i++)
        blocks[i] = ms_alloc(h, 48, 0);
    unsigned c = ms_size_class_of(48);
    u = usage();
    CHECK("100 blocks of 48 bytes in use", u.classes[c].blocks_in_use == 100 &&
                                               u.small_in_use == 4800 && u.in_use == 4800);
    CHECK("the rest of what was carved is holes",
          u.classes[c].blocks_free * 48 == u.free_holes && u.holes == u.classes[c].blocks_free);
    CHECK("one segment: its first slice is overhead",
          u.small_segments == 1 && u.overhead_segments == MS_SLICE_SIZE &&
              u.free_slices == (MS_SLICES_PER_SEGMENT - 2) * MS_SLICE_SIZE);
    CHECK("adds up, and equals what the OS counters say is mapped",
          adds_up(&u) && u.mapped == os_mapped());
    for (int i = 0; i < 100; i += 2)
        ms_free(blocks[i], "test");
    ms_usage_t v = usage();
    CHECK("50 freed: 50 more holes", v.classes[c].blocks_free == u.classes[c].blocks_free + 50 &&
                                         v.in_use == 2400 && adds_up(&v));

    void *large = ms_alloc(h, 3 * MiB, 0);
    u = usage();
    CHECK("a large block: in use, its header overhead",
          u.large_blocks == 1 && u.large_in_use == ms_usable_size(large, "test") &&
              u.overhead_large == u.large_mapped - u.large_in_use && adds_up(&u) &&
              u.mapped == os_mapped());
    ms_free(large, "test");
    u = usage();
    CHECK("a freed large block kept for reuse is free, still mapped",
          u.large_blocks == 0 && u.free_cached >= 3 * MiB && adds_up(&u) &&
              u.mapped == os_mapped());
    ms_heap_trim_all();
    u = usage();
    CHECK("trimmed: the cache is gone", u.free_cached == 0 && u.mapped == os_mapped());

    /* A reading torn by a racing owner: counts beyond the span's capacity. */
    span_t *span = ms_span_head(ms_segment_slice_of(ms_segment_base(blocks[1]), blocks[1]));
    uint32_t used = span->used, carved_end = span->carved_end;
    span->used = 1u << 30;
    span->carved_end = 1u << 30;
    u = usage();
    span->used = used;
    span->carved_end = carved_end;
    CHECK("impossible counts are clamped and still add up", adds_up(&u) && u.mapped == os_mapped());
    for (int i = 1; i < 100; i += 2)
        ms_free(blocks[i], "test");
}

static void test_regions(void) {
    char *b[10];
    for (int i = 0; i < 10; i++)
        b[i] = ms_alloc(h, 3000, 0);
    ms_free(b[2], "test");
    void *large = ms_alloc(h, 3 * MiB, 0);
    ms_region_view_t views[8];
    size_t n = ms_usage_regions(views, 8);
    ms_usage_t u = usage();
    CHECK("every region on the chain is counted", n == u.small_segments + u.large_blocks);
    const ms_region_view_t *small = NULL, *big = NULL;
    for (size_t i = 0; i < n && i < 8; i++) {
        if (views[i].kind == SEGMENT_LARGE && views[i].block == (uintptr_t)large)
            big = &views[i];
        if (views[i].kind == SEGMENT_SMALL && views[i].base == (uintptr_t)ms_segment_base(b[0]))
            small = &views[i];
    }
    CHECK("the large region, with its block", big && big->block_size == ms_usable_size(large, "t"));
    const ms_span_view_t *span = NULL;
    for (unsigned i = 0; small && i < small->span_count && i < MS_VIEW_SPANS_MAX; i++)
        if (small->spans[i].start == (uintptr_t)b[0])
            span = &small->spans[i];
    size_t bs = ms_usable_size(b[0], "t");
    CHECK("the span of the 3000-byte blocks", span && span->block_size == bs &&
                                                  small->heap == h);
    /* Carved in batches (ms_span_carve), so past the ten blocks there may
     * be carved holes before the uncarved rest. */
    size_t capacity = MS_SLICE_SIZE / bs;
    CHECK("runs: 2 in use, 1 hole, 7 in use, then holes or the uncarved rest",
          span && span->run_count >= 4 && span->runs[0].state == MS_RUN_IN_USE &&
              span->runs[0].blocks == 2 && span->runs[1].state == MS_RUN_HOLE &&
              span->runs[1].blocks == 1 && span->runs[2].state == MS_RUN_IN_USE &&
              span->runs[2].blocks == 7 && span->runs[span->run_count - 1].state == MS_RUN_UNCARVED);
    CHECK("span totals from the marks", span && span->in_use == 9 && span->holes >= 1 &&
                                            span->holes + span->uncarved == capacity - 9);
    CHECK("asking for no views still counts", ms_usage_regions(views, 0) == n);

    /* Alternating blocks: more runs than are kept, all counted. */
    char *c[16];
    for (int i = 0; i < 16; i++)
        c[i] = ms_alloc(h, 2000, 0);
    for (int i = 1; i < 16; i += 2)
        ms_free(c[i], "test");
    n = ms_usage_regions(views, 8);
    span = NULL;
    for (size_t i = 0; i < n && i < 8; i++)
        for (unsigned k = 0; k < views[i].span_count && k < MS_VIEW_SPANS_MAX; k++)
            if (views[i].spans[k].start == (uintptr_t)c[0])
                span = &views[i].spans[k];
    CHECK("16 alternating runs and the uncarved rest: 17 runs, 6 kept",
          span && span->run_count == 17 && span->runs[5].state == MS_RUN_HOLE &&
              span->runs[5].blocks == 1 && span->in_use == 8 && span->holes == 8);
    for (int i = 0; i < 16; i += 2)
        ms_free(c[i], "test");
    for (int i = 0; i < 10; i++)
        if (i != 2)
            ms_free(b[i], "test");
    ms_free(large, "test");
}

int main(void) {
    TEST_BEGIN("usage");
    h = ms_heap_acquire();
    test_totals();
    test_regions();
    return TEST_DONE();
}
