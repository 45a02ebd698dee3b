/* Heaps (core/heap.[ch]): holes are reused before new spans are made, a span
 * emptied while not being carved gives its slices back, empty segments go
 * back to the OS (at most RETAIN_EMPTY_MAX stay cached, all on trim), blocks
 * freed by another thread return to the owner, and a heap left by an exiting
 * thread is adopted by the next one, with remote frees still processed while
 * it is pooled; a heap growing through fresh memory gets it populated ahead,
 * within bounds; a second round of the same mallocs faults in nothing, and
 * a class used for one block costs one page. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../harness.h"
#include "alloc.h"
#include "heap.h"
#include "span.h"
#include "stats.h"
#include "usage.h"

#define MiB ((size_t)1 << 20)

static heap_t *h; /* the main thread's heap */

static ms_stats_t stats(void) {
    ms_stats_t s;
    ms_stats_read(&s);
    return s;
}

static size_t in_use(void) {
    ms_usage_t u;
    ms_usage_collect(&u);
    return u.small_in_use;
}

static span_t *span_of(void *p) {
    segment_t *segment = ms_segment_of(p);
    return segment ? ms_span_head(ms_segment_slice_of(segment, p)) : NULL;
}

static unsigned slice_index(const void *p) {
    return (unsigned)(((uintptr_t)p >> MS_SLICE_SHIFT) & (MS_SLICES_PER_SEGMENT - 1));
}

static size_t capacity_of(size_t size) {
    unsigned c = ms_size_class_of(size);
    return (size_t)ms_size_class_slices(c) * MS_SLICE_SIZE / ms_size_class_size(c);
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int same_set(void **a, void **b, size_t n) {
    qsort(a, n, sizeof *a, cmp_ptr);
    qsort(b, n, sizeof *b, cmp_ptr);
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void run_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        perror("pthread_create");
        exit(2);
    }
    pthread_join(t, NULL);
}

/* ---- 1. holes are reused, no new span ---- */

static void test_reuse(void) {
    /* A whole span's worth, so the second round can only be satisfied by
     * the holes of the first. 64-byte class: one slice, 1024 blocks. */
    size_t n = capacity_of(64);
    void **a = calloc(n, sizeof *a), **b = calloc(n, sizeof *b);
    ms_stats_t s0 = stats();
    for (size_t i = 0; i < n; i++)
        a[i] = ms_alloc(h, 64, 0);
    ms_stats_t s1 = stats();
    CHECK("reuse: a fresh class makes exactly one span", s1.spans_created - s0.spans_created == 1);
    int one_span = 1;
    for (size_t i = 0; i < n; i++)
        if (a[i] == NULL || span_of(a[i]) != span_of(a[0]))
            one_span = 0;
    CHECK("reuse: all blocks from that span", one_span);
    size_t used = in_use();
    for (size_t i = 0; i < n; i++)
        ms_free(a[i], "free");
    CHECK("reuse: in_use drops by the blocks freed", used - in_use() == n * 64);
    CHECK("reuse: current span kept though empty", span_of(a[0]) && span_of(a[0])->used == 0);
    for (size_t i = 0; i < n; i++)
        b[i] = ms_alloc(h, 64, 0);
    ms_stats_t s2 = stats();
    CHECK("reuse: no new span for the second round", s2.spans_created == s1.spans_created);
    CHECK("reuse: same addresses come back", same_set(a, b, n));
    for (size_t i = 0; i < n; i++)
        ms_free(b[i], "free");

    /* The same through the inline fast paths, as malloc/free use them. */
    n = capacity_of(32);
    a = realloc(a, n * sizeof *a);
    b = realloc(b, n * sizeof *b);
    for (size_t i = 0; i < n; i++) {
        a[i] = ms_alloc_fast(32);
        if (a[i] == NULL)
            a[i] = ms_alloc(h, 32, 0);
    }
    s1 = stats();
    size_t fast_frees = 0, fast_allocs = 0;
    for (size_t i = 0; i < n; i++) {
        if (ms_free_fast(a[i]))
            fast_frees++;
        else
            ms_free(a[i], "free");
    }
    for (size_t i = 0; i < n; i++) {
        b[i] = ms_alloc_fast(32);
        if (b[i] != NULL)
            fast_allocs++;
        else
            b[i] = ms_alloc(h, 32, 0);
    }
    CHECK("reuse (fast): every owner free takes the fast path", fast_frees == n);
    CHECK("reuse (fast): nearly every malloc takes the fast path", fast_allocs + 1 >= n);
    CHECK("reuse (fast): no new span", stats().spans_created == s1.spans_created);
    CHECK("reuse (fast): same addresses come back", same_set(a, b, n));
    for (size_t i = 0; i < n; i++)
        if (!ms_free_fast(b[i]))
            ms_free(b[i], "free");
    free(a);
    free(b);
}

/* ---- 2. a span emptied while not current is kept for reuse (reset to
 * uncarved) until the heap collects, then retired ---- */

static void test_retire(void) {
    const size_t size = 256;
    size_t cap = capacity_of(size), n = 2 * cap + 10;
    void **p = calloc(n, sizeof *p), **q = calloc(cap, sizeof *q);
    ms_heap_trim_all();
    ms_stats_t s0 = stats();
    for (size_t i = 0; i < n; i++)
        p[i] = ms_alloc(h, size, 0);
    CHECK("retire: three spans made", stats().spans_created - s0.spans_created == 3);
    span_t *first = span_of(p[0]), *second = span_of(p[cap]), *third = span_of(p[2 * cap]);
    CHECK("retire: blocks fill spans in order",
          first && second && third && first != second && second != third &&
              span_of(p[cap - 1]) == first && span_of(p[2 * cap - 1]) == second);
    CHECK("retire: exhausted spans are marked full", first && first->full && second->full);

    segment_t *segment = ms_segment_of(p[0]);
    unsigned slice = slice_index(p[0]);
    size_t before = in_use();
    unsigned empties = h->empty_spans;
    for (size_t i = 0; i < cap; i++)
        ms_free(p[i], "free");
    CHECK("retire: in_use drops by a whole span", before - in_use() == cap * size);
    CHECK("retire: the emptied span keeps its slice",
          (segment->used_slices & ((uint64_t)1 << slice)) != 0 &&
              segment->spans[slice].block_size == size);
    CHECK("retire: ... reset to uncarved, counted as empty",
          first->used == 0 && first->carved_end == 0 && first->free == NULL &&
              h->empty_spans == empties + 1);

    /* Its class reuses it without making a span: the current span's room
     * first, then the emptied one. */
    ms_stats_t s1 = stats();
    int in_first = 0;
    for (size_t i = 0; i < cap; i++) {
        q[i] = ms_alloc(h, size, 0);
        in_first += span_of(q[i]) == first;
    }
    CHECK("retire: the emptied span is reused, no new span",
          stats().spans_created == s1.spans_created && in_first > 0 &&
              h->empty_spans == empties);
    for (size_t i = 0; i < cap; i++)
        ms_free(q[i], "free");

    CHECK("retire: the reused span is now the one being carved",
          h->alloc_span[first->size_class] == first);

    /* The third span, no longer current, empties: a collection retires it
     * (slice back to the segment, pages purged). */
    unsigned third_slice = slice_index(p[2 * cap]);
    for (size_t i = 2 * cap; i < n; i++)
        ms_free(p[i], "free");
    CHECK("retire: the third span is kept, its holes too (carved part way)",
          third->used == 0 && third->carved_end != 0 && third->free != NULL);
    ms_stats_t s2 = stats();
    ms_heap_trim_all();
    CHECK("retire: after a collection its slice is free in the segment",
          (segment->used_slices & ((uint64_t)1 << third_slice)) == 0);
    CHECK("retire: its descriptor is cleared", segment->spans[third_slice].block_size == 0);
    CHECK("retire: its pages were purged", stats().bytes_purged - s2.bytes_purged >= MS_SLICE_SIZE);

    /* The next span made (another class) takes the lowest free slice of
     * the heap's first segment with room. */
    segment_t *room = h->segments;
    while (room && room->used_slices == ~(uint64_t)0)
        room = room->heap_next;
    unsigned expect = room ? (unsigned)__builtin_ctzll(~room->used_slices) : 0;
    void *other = ms_alloc(h, 500, 0);
    CHECK("retire: next new span takes the first free slice (first fit)",
          room != NULL && ms_segment_of(other) == room && slice_index(other) == expect);
    ms_free(other, "free");
    free(q);

    /* The current span emptied is kept for the next malloc, even through a
     * collection. */
    ms_heap_trim_all();
    ms_stats_t s3 = stats();
    CHECK("retire: current span kept when emptied", first->block_size == size && first->used == 0);
    void *again = ms_alloc(h, size, 0);
    CHECK("retire: current span serves the next malloc", span_of(again) == first &&
                                                            stats().spans_created == s3.spans_created);
    ms_free(again, "free");
    for (size_t i = cap; i < 2 * cap; i++)
        ms_free(p[i], "free");
    CHECK("retire: second span emptied too", in_use() == before - 2 * cap * size - 10 * size);
    free(p);
}

/* ---- 3. empty segments go back to the OS ---- */

static void test_collect(void) {
    const size_t size = 1024, n = 40 * MiB / size;
    void **p = calloc(n, sizeof *p);
    ms_heap_trim_all();
    ms_stats_t s0 = stats();
    size_t used0 = in_use();
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        if ((p[i] = ms_alloc(h, size, 0)) == NULL)
            ok = 0;
    ms_stats_t s1 = stats();
    CHECK("collect: 40 MiB allocated", ok && in_use() - used0 == n * size);
    CHECK("collect: mapped grew by >= 40 MiB", s1.bytes_mapped - s0.bytes_mapped >= 40 * MiB);
    CHECK("collect: ~10 segments made", s1.segments - s0.segments >= 10);
    for (size_t i = 0; i < n; i++)
        ms_free(p[i], "free");
    ms_stats_t s2 = stats();
    CHECK("collect: everything freed", in_use() == used0);
    /* At most RETAIN_EMPTY_MAX (16) empty segments stay cached, plus the
     * one holding the current 1 KiB span. */
    CHECK("collect: at most 16 empty segments cached", s2.segments <= s0.segments + 17);
    size_t retained = s2.segments - s0.segments;
    size_t released = ms_heap_trim_all();
    ms_stats_t s3 = stats();
    if (retained > 1)
        CHECK("collect: trim releases the cached segments",
              released >= (retained - 1) * MS_SEGMENT_SIZE);
    else
        fprintf(stderr, "note: timed collection already released the segments\n");
    CHECK("collect: trim reports bytes", released > 0 || retained <= 1);
    CHECK("collect: bytes_mapped back near the start",
          s3.bytes_mapped <= s0.bytes_mapped + MS_SEGMENT_SIZE);
    CHECK("collect: at most the current span's segment left", s3.segments <= s0.segments + 1);
    CHECK("collect: trim again has nothing to unmap", ms_heap_trim_all() < MS_SEGMENT_SIZE);

    /* Freed spans stay with their class until a collection, so allocating
     * the same amount again maps nothing; a collection then returns it all.
     * 64 KiB blocks only fault in one page each (carving writes a header). */
    const size_t big = 64 * 1024, m = 1600; /* 100 MiB in ~29 segments */
    p = realloc(p, m * sizeof *p);
    s0 = stats();
    for (size_t i = 0; i < m; i++)
        p[i] = ms_alloc(h, big, 0);
    s1 = stats();
    CHECK("collect: 100 MiB of 64 KiB blocks in > 20 segments", s1.segments - s0.segments > 20);
    for (size_t i = 0; i < m; i++)
        ms_free(p[i], "free");
    for (size_t i = 0; i < m; i++)
        p[i] = ms_alloc(h, big, 0);
    s2 = stats();
    CHECK("collect: allocating the same again reuses the freed spans (no new mapping)",
          s2.os_maps == s1.os_maps && s2.segments == s1.segments);
    for (size_t i = 0; i < m; i++)
        ms_free(p[i], "free");
    ms_heap_trim_all();
    CHECK("collect: trim returns the rest", stats().segments <= s0.segments + 1);
    free(p);
}

/* ---- 4. remote free ---- */

static void *remote_freer(void *arg) {
    heap_t *mine = ms_heap_acquire();
    CHECK("remote: B gets its own heap", mine != NULL && mine != h && ms_heap_tls == mine);
    ms_free(arg, "free");
    ms_heap_release(mine, true);
    CHECK("remote: release leaves B heapless", ms_heap_tls == &ms_heap_empty);
    return NULL;
}

static void test_remote(void) {
    /* 8 KiB class: one slice of 8 blocks, carved two at a time, so once
     * all eight are out the next malloc must look at the remote list. */
    const size_t size = 8 * 1024;
    enum { N = 8 };
    void *x[N];
    CHECK("remote: 8 KiB spans hold 8 blocks", capacity_of(size) == N);
    for (int i = 0; i < N; i++)
        x[i] = ms_alloc(h, size, 0);
    span_t *span = span_of(x[0]);
    CHECK("remote: one span, fully carved", span && span->carved_end == N * span->block_size && span->free == NULL &&
                                                span_of(x[N - 1]) == span);
    memset(x[1], 0xab, size);
    ms_stats_t s0 = stats();
    size_t used0 = in_use();
    run_thread(remote_freer, x[1]);
    ms_stats_t s1 = stats();
    CHECK("remote: block waits on the owner's remote list",
          atomic_load(&h->remote_free) == x[1] && span->used == N && in_use() == used0);
    void *y = ms_alloc(h, size, 0);
    CHECK("remote: owner's next malloc reuses the block", y == x[1]);
    CHECK("remote: counted once the owner takes it back", stats().remote_frees - s0.remote_frees == 1);
    CHECK("remote: no new span", stats().spans_created == s1.spans_created);
    CHECK("remote: remote list drained", atomic_load(&h->remote_free) == NULL && span->used == N);
    for (int i = 0; i < N; i++)
        ms_free(x[i], "free");
}

/* ---- 5. thread exit and adoption ---- */

enum { LEFT = 100 };
static void *leftover[LEFT];
enum { EXTRA_MAX = 256 };
static void *extra[EXTRA_MAX];
static int n_extra;
static heap_t *exited_heap;

static void *exiting_thread(void *arg) {
    (void)arg;
    heap_t *mine = ms_heap_acquire();
    for (int i = 0; i < LEFT; i++) {
        leftover[i] = ms_alloc(mine, 200, 0);
        memset(leftover[i], i, 200);
    }
    /* The blocks carved with them go out too: a page of holes only would
     * be given back at the release, its holes parked, and the span kept
     * off free's fast path until malloc took them again (span.c). */
    span_t *span = mine->alloc_span[ms_size_class_of(200)];
    while (span->free && n_extra < EXTRA_MAX)
        extra[n_extra++] = ms_alloc(mine, 200, 0);
    exited_heap = mine;
    ms_heap_release(mine, true);
    return NULL;
}

static void *adopting_thread(void *arg) {
    (void)arg;
    ms_stats_t s0 = stats();
    heap_t *mine = ms_heap_acquire();
    ms_stats_t s1 = stats();
    CHECK("adopt: heaps_adopted increments", s1.heaps_adopted - s0.heaps_adopted == 1);
    CHECK("adopt: no heap made", s1.heaps == s0.heaps);
    CHECK("adopt: the exited thread's heap (pool is LIFO)", mine == exited_heap);
    CHECK("adopt: owned by me now", mine->thread_id == ms_thread_id() &&
                                        atomic_load(&mine->abandoned) == 0);
    int intact = 1;
    for (int i = 0; i < LEFT; i++)
        for (int k = 0; k < 200; k++)
            if (((unsigned char *)leftover[i])[k] != (unsigned char)i)
                intact = 0;
    CHECK("adopt: leftover blocks intact", intact);
    size_t used = in_use();
    CHECK("adopt: the fast path accepts the adopted blocks", ms_free_fast(leftover[0]));
    for (int i = 1; i < LEFT - 1; i++)
        ms_free(leftover[i], "free");
    CHECK("adopt: frees are local (not remote)", stats().remote_frees == s1.remote_frees);
    CHECK("adopt: in_use drops", used - in_use() == (LEFT - 1) * ms_size_class_size(ms_size_class_of(200)));
    /* The exited thread's span still has holes: malloc reuses them. */
    void *again[LEFT];
    int in_old_span = 1;
    for (int i = 0; i < LEFT - 1; i++) {
        again[i] = ms_alloc(mine, 200, 0);
        if (span_of(again[i]) != span_of(leftover[LEFT - 1]))
            in_old_span = 0;
    }
    CHECK("adopt: malloc reuses the exited thread's span", in_old_span);
    CHECK("adopt: no new span", stats().spans_created == s1.spans_created);
    for (int i = 0; i < LEFT - 1; i++)
        ms_free(again[i], "free");
    ms_free(leftover[LEFT - 1], "free");
    for (int i = 0; i < n_extra; i++)
        ms_free(extra[i], "free");
    ms_heap_release(mine, true);
    return NULL;
}

static void test_adopt(void) {
    size_t used0 = in_use();
    run_thread(exiting_thread, NULL);
    CHECK("adopt: released heap is pooled", exited_heap && exited_heap->thread_id == 0 &&
                                                atomic_load(&exited_heap->abandoned) == 1);
    int none = 1;
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++)
        if (exited_heap->alloc_span[c] != &ms_span_empty)
            none = 0;
    CHECK("adopt: released heap carves nothing", none);
    CHECK("adopt: its live blocks still count",
          in_use() - used0 == (LEFT + n_extra) * ms_size_class_size(ms_size_class_of(200)));
    run_thread(adopting_thread, NULL);
    CHECK("adopt: everything freed", in_use() == used0);
}

/* ---- 6. free into a pooled heap ---- */

static void *pair[2];
static heap_t *pooled_heap;

static void *short_thread(void *arg) {
    (void)arg;
    heap_t *mine = ms_heap_acquire();
    pair[0] = ms_alloc(mine, 300, 0);
    pair[1] = ms_alloc(mine, 300, 0);
    pooled_heap = mine;
    ms_heap_release(mine, true);
    return NULL;
}

static void test_pooled_free(void) {
    size_t used0 = in_use();
    run_thread(short_thread, NULL);
    size_t block = ms_size_class_size(ms_size_class_of(300));
    span_t *span = span_of(pair[0]);
    CHECK("pooled: both blocks live in one span", span && span_of(pair[1]) == span && span->used == 2);
    CHECK("pooled: counted in in_use", in_use() - used0 == 2 * block);
    ms_stats_t s0 = stats();
    ms_free(pair[0], "free"); /* main thread: not the owner; the heap has none */
    CHECK("pooled: counted as remote", stats().remote_frees - s0.remote_frees == 1);
    CHECK("pooled: processed at once (span used drops)", span->used == 1);
    CHECK("pooled: in_use drops at once", in_use() - used0 == block);
    CHECK("pooled: nothing left on the remote list", atomic_load(&pooled_heap->remote_free) == NULL);
    ms_free(pair[1], "free");
    CHECK("pooled: last free empties everything", in_use() == used0);
    /* The pooled heap keeps no empty segment: it was unmapped (or, if it
     * still holds other spans, the slice was given back). */
    CHECK("pooled: emptied span retired at once",
          ms_segment_of(pair[1]) == NULL || span->block_size == 0);
}

/* ---- 7. release racing remote frees; many threads ---- */

enum { PAIRS = 2, ROUNDS = 40, BLOCKS = 3000 };
typedef struct {
    void *blocks[BLOCKS];
    _Atomic int ready;
} handoff_t;

static void *producer(void *arg) {
    handoff_t *ho = arg;
    heap_t *mine = ms_heap_acquire();
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < BLOCKS; i++) {
        size_t size = 16 + (rand_r(&seed) % 2048);
        ho->blocks[i] = ms_alloc(mine, size, 0);
        memset(ho->blocks[i], 0x11, 16);
    }
    /* Free a few locally too, so spans mix local and remote holes. */
    for (int i = 0; i < BLOCKS; i += 7) {
        ms_free(ho->blocks[i], "free");
        ho->blocks[i] = NULL;
    }
    atomic_store(&ho->ready, 1);
    ms_heap_release(mine, true); /* races the consumer's frees */
    return NULL;
}

static void *consumer(void *arg) {
    handoff_t *ho = arg;
    heap_t *mine = ms_heap_acquire();
    while (!atomic_load(&ho->ready))
        sched_yield();
    for (int i = 0; i < BLOCKS; i++)
        ms_free(ho->blocks[i], "free");
    ms_heap_release(mine, true);
    return NULL;
}

static void test_release_race(void) {
    size_t used0 = in_use();
    ms_stats_t s0 = stats();
    handoff_t *ho = calloc(PAIRS, sizeof *ho);
    int balanced = 1;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t t[2 * PAIRS];
        for (int i = 0; i < PAIRS; i++) {
            atomic_store(&ho[i].ready, 0);
            pthread_create(&t[2 * i], NULL, consumer, &ho[i]);
            pthread_create(&t[2 * i + 1], NULL, producer, &ho[i]);
        }
        for (int i = 0; i < 2 * PAIRS; i++)
            pthread_join(t[i], NULL);
        if (in_use() != used0) {
            balanced = 0;
            fprintf(stderr, "round %d: in_use %zu, expected %zu\n", round, in_use(), used0);
            break;
        }
    }
    ms_stats_t s1 = stats();
    CHECK("race: every remote free reaches its heap (in_use balanced)", balanced);
    CHECK("race: threads adopt pooled heaps instead of making new ones",
          s1.heaps - s0.heaps <= 2 * PAIRS);
    CHECK("race: remote frees counted", s1.remote_frees - s0.remote_frees >= (uint64_t)ROUNDS * PAIRS);
    free(ho);
    ms_heap_trim_all();
    CHECK("race: trim leaves at most a few segments", stats().segments <= s0.segments + 2);
}

/* ---- the walk over all heaps ---- */
static void count_heap(heap_t *heap, void *arg) {
    (void)heap;
    ++*(size_t *)arg;
}

/* ---- 8. a heap growing through fresh memory gets it faulted in ahead,
 * never more than it has been using; one that is not, never ---- */

/* Can this kernel populate at all (MADV_POPULATE_WRITE, Linux 5.14)? */
static int kernel_populates(void) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok = p != MAP_FAILED && madvise(p, 4096, 23 /* MADV_POPULATE_WRITE */) == 0;
    if (p != MAP_FAILED)
        munmap(p, 4096);
    return ok;
}

#define STREAM_BLOCKS (12 * 1024) /* 12 MiB of 1 KiB blocks: three segments */
static void *streamed[STREAM_BLOCKS];

static void test_populate(void) {
    /* Medium blocks the program barely touches earn no bet. */
    void *big[16];
    uint64_t p0 = stats().bytes_populated;
    for (int i = 0; i < 16; i++) {
        big[i] = ms_alloc(h, MiB, 0);
        if (big[i])
            *(char *)big[i] = 1;
    }
    CHECK("populate: 1 MiB blocks are never populated", stats().bytes_populated == p0);
    for (int i = 0; i < 16; i++)
        ms_free(big[i], "free");

    /* Nor do a few blocks of many classes. */
    void *few[40];
    for (int i = 0; i < 40; i++)
        few[i] = ms_alloc(h, 64 + (size_t)i * 100, 0);
    CHECK("populate: a few blocks of many classes are not populated",
          stats().bytes_populated == p0);
    for (int i = 0; i < 40; i++)
        ms_free(few[i], "free");

    /* A stream of 1 KiB blocks is, after its first 2 MiB, by at most half
     * of what it carved. Trimmed first, the heap has no resident free
     * memory to serve it from. */
    ms_heap_trim_all();
    p0 = stats().bytes_populated;
    int all = 1;
    for (size_t i = 0; i < STREAM_BLOCKS; i++) {
        char *b = streamed[i] = ms_alloc(h, 1024, 0);
        if (b == NULL)
            all = 0;
        else
            b[1023] = 1;
    }
    uint64_t populated = stats().bytes_populated - p0;
    CHECK("populate: the stream is served", all);
    CHECK("populate: a long stream is populated ahead (or the kernel cannot)",
          populated > 0 || !kernel_populates());
    CHECK("populate: never more than half of what was handed out",
          populated <= (size_t)STREAM_BLOCKS * 1024 / 2);
    for (size_t i = 0; i < STREAM_BLOCKS; i++)
        ms_free(streamed[i], "free");

    /* The second round runs over resident memory: nothing to populate. */
    p0 = stats().bytes_populated;
    for (size_t i = 0; i < STREAM_BLOCKS; i++)
        streamed[i] = ms_alloc(h, 1024, 0);
    CHECK("populate: reused memory is not populated again", stats().bytes_populated == p0);
    for (size_t i = 0; i < STREAM_BLOCKS; i++)
        ms_free(streamed[i], "free");
}

static size_t resident_pages(const void *p, size_t size) {
    unsigned char vec[MS_SLICE_SIZE / 4096];
    size_t count = 0;
    if (size > sizeof vec * 4096 || mincore((void *)p, size, vec) != 0)
        return (size_t)-1;
    for (size_t i = 0; i < size / 4096; i++)
        count += vec[i] & 1;
    return count;
}

/* ---- 9. a second round of the same mallocs faults in nothing: the span
 * the first round ended in, carved only in part, does not carve on into
 * fresh pages while the spans filled before wait ---- */

static void test_same_round_twice(void) {
    size_t size = 1536, per_span = capacity_of(size);
    size_t n = 3 * per_span + per_span / 4;
    void **a = calloc(n, sizeof *a), **b = calloc(n, sizeof *b);
    ms_heap_trim_all(); /* no resident free slices: the spans start fresh */
    for (size_t i = 0; i < n; i++)
        a[i] = ms_alloc(h, size, 0);
    char *last = ms_span_start(ms_segment_of(a[n - 1]), span_of(a[n - 1]));
    size_t resident = resident_pages(last, MS_SLICE_SIZE);
    for (size_t i = 0; i < n; i++)
        ms_free(a[i], "free");
    ms_stats_t s0 = stats();
    for (size_t i = 0; i < n; i++)
        b[i] = ms_alloc(h, size, 0);
    CHECK("round twice: the last span was carved in part", resident < MS_SLICE_SIZE / 4096);
    CHECK("round twice: no new span", stats().spans_created == s0.spans_created);
    CHECK("round twice: no page of the last span faulted in afresh",
          resident_pages(last, MS_SLICE_SIZE) == resident);
    for (size_t i = 0; i < n; i++)
        ms_free(b[i], "free");
    free(a);
    free(b);
}

/* ---- 10. a class used for one block costs one page of fresh memory ---- */

static void test_first_carve(void) {
    ms_heap_trim_all(); /* no resident free slices: the span starts fresh */
    char *one = ms_alloc(h, 7000, 0); /* 7 KiB: a class no other test uses */
    span_t *span = one ? span_of(one) : NULL;
    CHECK("first carve: a fresh span", span && span->used == 1 && span->whole == 0);
    if (span)
        CHECK("first carve: one block written, one page resident",
              resident_pages(ms_span_start(ms_segment_of(one), span), MS_SLICE_SIZE) == 1);
    void *more[5];
    for (int i = 0; i < 5; i++)
        more[i] = ms_alloc(h, 7000, 0);
    CHECK("first carve: more blocks from the same span", span && span->used == 6);
    for (int i = 0; i < 5; i++)
        ms_free(more[i], "free");
    ms_free(one, "free");
}

/* When the heap needs a new segment while a freed large block sits in the
 * large-block cache, the cached mapping becomes the segment: the process
 * does not grow by a fresh segment while holding memory nobody uses. */
static void test_recycle_cached_large(void) {
    ms_heap_trim_all();
    unsigned char *big = ms_alloc(h, 3 * MiB, 0);
    segment_t *old = big ? ms_segment_of(big) : NULL;
    size_t old_mapped = old ? old->mapped_size : 0;
    if (big)
        memset(big, 0x5a, 3 * MiB);
    ms_free(big, "test");
    /* No collection for a while: it would unmap the cached block. */
    h->last_collect_ms = ms_host_now_ms();
    ms_stats_t s0 = stats();
    CHECK("recycle: the freed large block is cached", big && s0.large_cached == old_mapped);
    enum { N = 64 };
    unsigned char *blocks[N];
    int n = 0, grew = 0, written = 1;
    ms_stats_t s1 = s0;
    while (n < N && !grew) {
        blocks[n] = ms_alloc(h, MiB, 0);
        if (blocks[n] == NULL)
            break;
        memset(blocks[n], n + 1, MiB);
        n++;
        s1 = stats();
        grew = s1.segments > s0.segments;
    }
    CHECK("recycle: the heap needed a new segment", grew);
    CHECK("recycle: the cached block went into it, not back to the OS",
          s1.large_cached == 0 && s1.os_unmaps == s0.os_unmaps);
    CHECK("recycle: mapped grew only by what the mapping lacked of a segment",
          s1.bytes_mapped - s0.bytes_mapped == MS_SEGMENT_SIZE - old_mapped);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < MiB; k += 4096)
            written &= blocks[i][k] == (unsigned char)(i + 1);
    CHECK("recycle: blocks from every segment hold their contents", written);
    for (int i = 0; i < n; i++)
        ms_free(blocks[i], "test");
    ms_heap_trim_all();
}

/* Blocks above MS_SMALL_MAX have a span each: freed, its slices go back
 * at once for any class to use (unless it is the span being carved), and
 * a block handed out again for a smaller request keeps no resident pages
 * past the request. */
static void test_single_block_spans(void) {
    unsigned char *a = ms_alloc(h, 2 * MiB, 0);
    unsigned char *b = ms_alloc(h, 2 * MiB, 0);
    CHECK("single: two 2 MiB blocks from spans", a && b && span_of(a) && span_of(b) &&
                                                     span_of(a) != span_of(b));
    ms_free(a, "test");
    CHECK("single: a freed block's span is retired at once", span_of(a) == NULL);
    memset(b, 0x42, 2 * MiB);
    ms_free(b, "test"); /* the span being carved: kept for the next one */
    /* The smallest request of the 2 MiB class, a page-aligned one. */
    size_t smaller = (ms_size_class_size(ms_size_class_of(2 * MiB) - 1) + 4096) & ~(size_t)4095;
    size_t pages = (2 * MiB - smaller) / 4096;
    unsigned char *c = ms_alloc(h, smaller, 0);
    unsigned char vec[256];
    int gone = c == b && pages > 0 && pages <= sizeof vec &&
               mincore(c + smaller, pages * 4096, vec) == 0;
    for (size_t i = 0; gone && i < pages; i++)
        gone = !(vec[i] & 1);
    CHECK("single: reused for a smaller request, its pages past the request go", gone);
    CHECK("single: the request's own pages are left alone", c && c[4096] == 0x42 &&
                                                              c[smaller - 1] == 0x42);
    ms_free(c, "test");
}

/* ---- 11. a span that fills up rejoins its class's list at the end: the
 * next span malloc picks is the one that has gathered holes longest, not
 * the one that just got its first (which would send malloc back to the
 * slow path after a single block) ---- */
#define FIFO_SIZE 3000 /* a class no other test uses: 21 blocks per span */
#define FIFO_BLOCKS 400
static void *fifo_blocks[FIFO_BLOCKS];

static uintptr_t slice_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(MS_SLICE_SIZE - 1); }

static void test_partial_fifo(void) {
    for (int i = 0; i < FIFO_BLOCKS; i++)
        fifo_blocks[i] = ms_alloc(h, FIFO_SIZE, 0);
    /* Two spans filled before the one being carved now: the first block
     * allocated lies in one, the block after its span's last in another. */
    void *last = fifo_blocks[FIFO_BLOCKS - 1];
    int a = 0, b = -1;
    for (int i = 1; i < FIFO_BLOCKS && b < 0; i++)
        if (slice_of(fifo_blocks[i]) != slice_of(fifo_blocks[a]) &&
            slice_of(fifo_blocks[i]) != slice_of(last))
            b = i;
    CHECK("fifo: blocks fill two spans before the current one",
          b > 0 && slice_of(fifo_blocks[a]) != slice_of(last));
    if (b < 0)
        return;
    void *first_freed = fifo_blocks[a], *second_freed = fifo_blocks[b];
    ms_free(first_freed, "free"); /* its span rejoins the list first */
    ms_free(second_freed, "free");
    /* Use up the span being carved; the next block comes from a listed one. */
    static void *held[FIFO_BLOCKS];
    void *seen = NULL;
    int n = 0;
    while (n < FIFO_BLOCKS && seen == NULL) {
        void *p = held[n++] = ms_alloc(h, FIFO_SIZE, 0);
        if (p == first_freed || p == second_freed)
            seen = p;
    }
    CHECK("fifo: malloc takes the span relisted first", seen == first_freed);
    for (int i = 0; i < n; i++)
        ms_free(held[i], "free");
    for (int i = 0; i < FIFO_BLOCKS; i++)
        if (i != a && i != b)
            ms_free(fifo_blocks[i], "free");
}

/* ---- 12. a freed block of its class is handed out again before the span
 * being carved carves more: a class does not grow past the most blocks it
 * ever had out while holes wait in its other spans ---- */
#define HOLES_SIZE 2600 /* a class of its own: 2816 bytes, 23 blocks per span */
#define HOLES_BLOCKS 40 /* one full span and part of a second */

static void test_holes_before_carving(void) {
    static void *b[HOLES_BLOCKS];
    for (int i = 0; i < HOLES_BLOCKS; i++)
        b[i] = ms_alloc(h, HOLES_SIZE, 0);
    span_t *current = h->alloc_span[ms_size_class_of(HOLES_SIZE)];
    void *freed = b[0];
    CHECK("holes: the first block's span is full, another is being carved",
          slice_of(freed) != slice_of(b[HOLES_BLOCKS - 1]) &&
              ms_span_start(ms_segment_base(current), current) == (char *)slice_of(b[HOLES_BLOCKS - 1]));
    ms_free(freed, "free");
    uint32_t carved = current->carved_end;
    static void *more[HOLES_BLOCKS];
    int n = 0, back = 0;
    while (n < HOLES_BLOCKS && !back) {
        more[n] = ms_alloc(h, HOLES_SIZE, 0);
        back = more[n++] == freed;
    }
    CHECK("holes: the freed block comes back before the current span carves more",
          back && current->carved_end == carved);
    for (int i = 0; i < n; i++)
        ms_free(more[i], "free");
    for (int i = 1; i < HOLES_BLOCKS; i++)
        ms_free(b[i], "free");
}

/* ---- 13. a page of holes only goes back to the OS with its holes parked
 * off the list; free's fast path passes over the span (a parked hole's
 * mark went with its page) until the program has freed into it often
 * enough to show it is in use again: then the holes come back at once ---- */
#define PARK_SIZE 512 /* a class of its own: 8 blocks a page */
#define PARK_BLOCKS 64 /* carved a page at a time: every carved block out */

static void test_parked_holes(void) {
    static void *b[PARK_BLOCKS];
    for (int i = 0; i < PARK_BLOCKS; i++) {
        b[i] = ms_alloc(h, PARK_SIZE, 0);
        memset(b[i], 0x5a, PARK_SIZE);
    }
    span_t *span = span_of(b[0]);
    segment_t *segment = ms_segment_of(b[0]);
    CHECK("parked: every block carved is out", span && span->free == NULL &&
                                                   span->carved_end == PARK_BLOCKS * PARK_SIZE);
    if (!span || span->carved_end != PARK_BLOCKS * PARK_SIZE)
        return;
    uintptr_t page = (uintptr_t)b[0];
    for (int i = 0; i < 8; i++) /* the span's first page, all of it */
        ms_free(b[i], "free");
    ms_heap_trim_all();
    unsigned char vec;
    CHECK("parked: the page of holes is given back",
          mincore((void *)page, 4096, &vec) == 0 && (vec & 1) == 0);
    CHECK("parked: its holes are off the free list, the span off the fast path",
          ms_span_has_parked(segment, span) && !ms_span_has_hole(span, b[0]) &&
              span->local_key == 0 && !ms_free_fast(b[8]));
    for (int i = 8; i < 8 + 14; i++)
        ms_free(b[i], "free");
    CHECK("parked: 14 slow frees later, still parked", ms_span_has_parked(segment, span));
    ms_free(b[22], "free");
    CHECK("parked: the 15th threads the holes back",
          !ms_span_has_parked(segment, span) && ms_span_has_hole(span, b[0]) &&
              ms_span_has_hole(span, b[7]));
    CHECK("parked: and free's fast path takes the span again", ms_free_fast(b[23]));
    int intact = 1;
    for (int i = 24; i < PARK_BLOCKS; i++)
        for (int k = 0; k < PARK_SIZE; k++)
            intact &= ((unsigned char *)b[i])[k] == 0x5a;
    CHECK("parked: the live blocks keep their contents", intact);
    for (int i = 24; i < PARK_BLOCKS; i++)
        ms_free(b[i], "free");
}

int main(void) {
    TEST_BEGIN("heap");
    h = ms_heap_acquire();
    CHECK("acquire: a heap, installed for the thread", h != NULL && ms_heap_tls == h &&
                                                          h->thread_id == ms_thread_id());
    int empty = 1;
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++)
        if (h->alloc_span[c] != &ms_span_empty || h->partial[c] != NULL)
            empty = 0;
    CHECK("acquire: fresh heap holds nothing", empty && h->segments == NULL);
    CHECK("acquire: fast path declines before the first slow malloc", ms_alloc_fast(64) == NULL);

    test_retire();
    test_reuse();
    test_collect();
    test_remote();
    test_adopt();
    test_pooled_free();
    test_release_race();
    test_partial_fifo();
    test_holes_before_carving();
    test_populate();
    test_same_round_twice();
    test_first_carve();
    test_recycle_cached_large();
    test_single_block_spans();
    test_parked_holes();

    size_t heaps = 0;
    ms_heap_walk(count_heap, &heaps);
    CHECK("walk: visits every heap made", heaps == stats().heaps);
    ms_heap_release(h, true);
    CHECK("release: main thread heapless", ms_heap_tls == &ms_heap_empty);
    ms_heap_trim_all();
    ms_usage_t u;
    ms_usage_collect(&u);
    CHECK("end: nothing in use", u.small_in_use == 0);
    CHECK("end: no segments left after release and trim", stats().segments == 0);
    return TEST_DONE();
}
