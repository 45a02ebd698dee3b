/* Explicit heaps (mspace.h: mspace_create ... mspace_destroy), run under
 * LD_PRELOAD=libmspace.so: what each function returns, blocks of a heap
 * freed and resized with plain free()/realloc() from any thread, four
 * threads sharing one heap, a heap outliving the thread that made it, two
 * heaps interleaved, destroy giving the memory back (mapped bytes and RSS),
 * fork() while a heap is in use, and the call counts of MSPACE_STATS_FILE
 * staying balanced across a destroy.
 *
 * The functions are looked up as weak symbols: without the preload they are
 * missing and only a note is printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../interpose/mspace.h"
#include "../harness.h"
#include "../pattern.h"

#pragma weak mspace_create
#pragma weak mspace_destroy
#pragma weak mspace_malloc
#pragma weak mspace_calloc
#pragma weak mspace_memalign
#pragma weak mspace_realloc
#pragma weak mspace_free
#pragma weak mspace_heap_stats_print

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define WATCHDOG_SECONDS 120

static volatile size_t v_size_max = SIZE_MAX; /* the compiler must not fold huge requests */
static const char *volatile progress = "start";

static int aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* What mspace_heap_stats_print says about a heap. */
typedef struct {
    int parsed;
    size_t mapped, segments, small_mapped, large_blocks, large_mapped;
    size_t in_use, small_blocks, small_in_use;
    size_t class_size[64], class_blocks[64];
    int classes;
} info_t;

static info_t heap_info(mspace_t *ms) {
    info_t info = {0};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) return info;
    mspace_heap_stats_print(ms, f);
    fclose(f);
    const char *m = strstr(text, "  mapped "), *u = strstr(text, "  in use ");
    size_t large_again;
    info.parsed =
        m && u &&
        sscanf(m, "  mapped %zu bytes: %zu small segments (%zu bytes), %zu large blocks (%zu bytes)",
               &info.mapped, &info.segments, &info.small_mapped, &info.large_blocks,
               &info.large_mapped) == 5 &&
        sscanf(u, "  in use %zu bytes: %zu small blocks (%zu bytes), %zu large blocks",
               &info.in_use, &info.small_blocks, &info.small_in_use, &large_again) == 4 &&
        large_again == info.large_blocks;
    const char *line = strstr(text, "blocks in use\n");
    if (line) line = strchr(line, '\n') + 1;
    while (line && *line && info.classes < 64 &&
           sscanf(line, "%zu %zu", &info.class_size[info.classes],
                  &info.class_blocks[info.classes]) == 2) {
        info.classes++;
        line = strchr(line, '\n');
        if (line) line++;
    }
    free(text);
    return info;
}

static size_t blocks_of_size(const info_t *info, size_t size) {
    for (int i = 0; i < info->classes; i++)
        if (info->class_size[i] == size) return info->class_blocks[i];
    return 0;
}

/* Blocks in classes of size bytes or more (whatever class a request lands in). */
static size_t blocks_of_size_at_least(const info_t *info, size_t size) {
    size_t n = 0;
    for (int i = 0; i < info->classes; i++)
        if (info->class_size[i] >= size) n += info->class_blocks[i];
    return n;
}

/* Everything the process has mapped for blocks (small segments + large). */
static size_t process_mapped(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.arena + mi.hblkhd;
}

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- each function on its own ---- */

static void test_basics(void) {
    progress = "basics";
    mspace_t *ms = mspace_create();
    CHECK("create: returns a heap", ms != NULL);
    if (!ms) return;
    info_t info = heap_info(ms);
    CHECK("stats print: parsable", info.parsed);
    CHECK("stats print: a new heap holds nothing", info.in_use == 0 && info.small_blocks == 0);

    /* Clear of class edges, so the hardened build's trailer changes nothing. */
    static const size_t sizes[] = {0, 1, 15, 16, 24, 100, 900, 1000, 5000, 64 * KiB,
                                   200 * KiB, 300 * KiB, 3 * MiB};
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *p[N];
    int ok_align = 1, ok_usable = 1, ok_intact = 1, ok_nonnull = 1;
    for (int i = 0; i < N; i++) {
        p[i] = mspace_malloc(ms, sizes[i]);
        if (!p[i]) { ok_nonnull = 0; continue; }
        ok_align &= aligned_to(p[i], 16);
        ok_usable &= malloc_usable_size(p[i]) >= sizes[i];
        fill(p[i], sizes[i], 100 + i);
    }
    CHECK("malloc: every size from 0 to 3 MiB succeeds", ok_nonnull);
    CHECK("malloc: blocks are 16-byte aligned", ok_align);
    CHECK("malloc: malloc_usable_size covers the request", ok_usable);
    info = heap_info(ms);
    CHECK("stats print: one large block (3 MiB)", info.large_blocks == 1);
    CHECK("stats print: 12 blocks in spans live (300 KiB is a medium one)",
          info.small_blocks == N - 1);
    CHECK("stats print: two blocks of size 1024 (the 900 and 1000 requests share it)",
          blocks_of_size(&info, 1024) == 2);
    CHECK("stats print: mapped covers what is in use", info.mapped >= info.in_use &&
                                                           info.in_use >= 3 * MiB);
    for (int i = 0; i < N; i++) ok_intact &= p[i] && intact(p[i], sizes[i], 100 + i);
    CHECK("malloc: blocks do not overlap (patterns intact)", ok_intact);
    for (int i = 0; i < N; i++) mspace_free(ms, p[i]);
    info = heap_info(ms);
    CHECK("free: the heap holds no block afterwards",
          info.small_blocks == 0 && info.large_blocks == 0 && info.in_use == 0);

    /* calloc */
    unsigned char *c = mspace_calloc(ms, 100, 10);
    CHECK("calloc: small block zeroed", c && all_zero(c, 1000));
    unsigned char *cl = mspace_calloc(ms, 1, 2 * MiB);
    CHECK("calloc: large block zeroed", cl && all_zero(cl, 2 * MiB));
    mspace_free(ms, cl);
    cl = mspace_calloc(ms, 2, MiB); /* may reuse the cached block just freed */
    CHECK("calloc: reused large block zeroed", cl && all_zero(cl, 2 * MiB));
    mspace_free(ms, cl);
    memset(c, 0xAB, 1000);
    mspace_free(ms, c);
    c = mspace_calloc(ms, 1000, 1);
    CHECK("calloc: reused small block zeroed", c && all_zero(c, 1000));
    mspace_free(ms, c);
    errno = 0;
    CHECK("calloc: count * size overflowing gives NULL with ENOMEM",
          mspace_calloc(ms, v_size_max / 2, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK("malloc: SIZE_MAX gives NULL with ENOMEM",
          mspace_malloc(ms, v_size_max) == NULL && errno == ENOMEM);

    /* memalign */
    static const size_t aligns[] = {16, 32, 64, 256, 4096, 64 * KiB, MiB, 8 * MiB};
    int ok = 1;
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *a = mspace_memalign(ms, aligns[i], 100);
        void *b = mspace_memalign(ms, aligns[i], 300 * KiB);
        ok &= a && b && aligned_to(a, aligns[i]) && aligned_to(b, aligns[i]);
        if (a) memset(a, 1, 100);
        if (b) memset(b, 1, 300 * KiB);
        mspace_free(ms, a);
        mspace_free(ms, b);
    }
    CHECK("memalign: 16 B to 8 MiB alignments honoured, small and large", ok);
    errno = 0;
    CHECK("memalign: alignment 48 gives NULL with EINVAL",
          mspace_memalign(ms, 48, 10) == NULL && errno == EINVAL);
    info = heap_info(ms);
    CHECK("memalign: freed blocks leave nothing in use", info.in_use == 0);

    /* realloc */
    unsigned char *r = mspace_realloc(ms, NULL, 24);
    CHECK("realloc(NULL): allocates", r != NULL);
    fill(r, 24, 7);
    static const size_t steps[] = {1000, 100 * KiB, MiB, 20 * MiB, 300 * KiB, 100, 24};
    size_t kept = 24;
    uint64_t tag = 7;
    ok = 1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && r; i++) {
        r = mspace_realloc(ms, r, steps[i]);
        if (!r) break;
        ok &= intact(r, kept < steps[i] ? kept : steps[i], tag);
        fill(r, steps[i], tag = 70 + i);
        kept = steps[i];
        info_t at = heap_info(ms);
        ok &= at.small_blocks + at.large_blocks == 1; /* still in ms, nothing left behind */
    }
    CHECK("realloc: small -> 20 MiB -> small keeps contents and stays in the heap", r && ok);
    errno = 0;
    CHECK("realloc(p, 0): frees and returns NULL", mspace_realloc(ms, r, 0) == NULL);
    info = heap_info(ms);
    CHECK("realloc(p, 0): the heap is empty again", info.small_blocks == 0 && info.large_blocks == 0);
    r = mspace_malloc(ms, 64);
    errno = 0;
    CHECK("realloc: impossible size gives NULL with ENOMEM, block intact",
          mspace_realloc(ms, r, v_size_max) == NULL && errno == ENOMEM);
    mspace_free(ms, r);

    /* plain realloc keeps a block in its explicit heap */
    unsigned char *q = mspace_malloc(ms, 40);
    fill(q, 40, 9);
    q = realloc(q, 2 * MiB);
    info = heap_info(ms);
    CHECK("plain realloc: small -> large moves within the heap, contents kept",
          q && intact(q, 40, 9) && info.large_blocks == 1 && info.small_blocks == 0);
    q = realloc(q, 100);
    info = heap_info(ms);
    CHECK("plain realloc: large -> small stays in the heap, contents kept",
          q && intact(q, 40, 9) && info.large_blocks == 0 && info.small_blocks == 1);
    free(q);
    info = heap_info(ms);
    CHECK("plain free: takes the block out of the heap", info.small_blocks == 0);

    /* a block of the ordinary heap into mspace_realloc and mspace_free */
    unsigned char *m = malloc(100);
    fill(m, 100, 11);
    m = mspace_realloc(ms, m, 60 * KiB);
    info = heap_info(ms);
    CHECK("realloc: a malloc() block that must move moves into the heap",
          m && intact(m, 100, 11) && blocks_of_size_at_least(&info, 60 * KiB) == 1);
    mspace_free(ms, m);
    m = malloc(100);
    mspace_free(ms, m); /* a malloc() block: freed where it lives */
    void *again = malloc(100);
    CHECK("free: mspace_free of a malloc() block frees it (reused by malloc)", again == m);
    free(again);
    mspace_free(ms, NULL);
    mspace_destroy(NULL);
    CHECK("free(NULL), destroy(NULL): ignored", 1);

    size_t before = process_mapped();
    mspace_destroy(ms);
    CHECK("destroy: unmaps the heap's memory", process_mapped() < before);
}

/* ---- four threads share one heap ---- */

#define SLOTS 256
#define T_THREADS 4
#define T_ITER 30000

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t tag;
} blk_t;

static mspace_t *shared;
static blk_t slots[SLOTS];
static pthread_mutex_t slot_lock[SLOTS / 16];
static atomic_long bad, nulls;

static void check_and_free(blk_t b, int how) {
    if (!b.p) return;
    if (!intact(b.p, b.size, b.tag)) bad++;
    if (how == 0) free(b.p);
    else mspace_free(shared, b.p);
}

static void *hammer(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg, rng = 0x1234567 + id * 77;
    for (uint64_t i = 0; i < T_ITER; i++) {
        uint64_t r = rnd(&rng);
        size_t size = (r & 63) == 0 ? 200 * KiB + (r >> 40) % (400 * KiB) : (r >> 20) % 1500;
        blk_t b = {mspace_malloc(shared, size), size, (id << 40) | i};
        if (!b.p) {
            nulls++;
            continue;
        }
        fill(b.p, size, b.tag);
        if ((r >> 8 & 7) == 0) { /* resize with plain realloc */
            unsigned char *q = realloc(b.p, size * 2 + 1);
            if (!q || !intact(q, size, b.tag)) bad++;
            if (q) {
                b.p = q;
                b.size = size * 2 + 1;
                fill(b.p, b.size, b.tag);
            }
        }
        unsigned s = (unsigned)(r >> 32) % SLOTS;
        pthread_mutex_lock(&slot_lock[s / 16]);
        blk_t old = slots[s];
        slots[s] = b;
        pthread_mutex_unlock(&slot_lock[s / 16]);
        check_and_free(old, (int)(r >> 12 & 1)); /* often another thread's block */
    }
    return NULL;
}

static void *watchdog(void *arg) {
    (void)arg;
    sleep(WATCHDOG_SECONDS);
    harness_hung(WATCHDOG_SECONDS, progress);
    return NULL;
}

static void test_shared_threads(void) {
    progress = "four threads on one heap";
    shared = mspace_create();
    for (int i = 0; i < SLOTS / 16; i++) pthread_mutex_init(&slot_lock[i], NULL);
    pthread_t t[T_THREADS];
    for (uintptr_t i = 0; i < T_THREADS; i++) pthread_create(&t[i], NULL, hammer, (void *)i);
    for (int i = 0; i < T_THREADS; i++) pthread_join(t[i], NULL);
    for (int s = 0; s < SLOTS; s++) check_and_free(slots[s], s & 1);
    CHECK("threads: no block corrupted or handed out twice", bad == 0);
    CHECK("threads: no allocation failed", nulls == 0);
    info_t info = heap_info(shared);
    CHECK("threads: every block freed (plain free or mspace_free) left the heap",
          info.small_blocks == 0 && info.large_blocks == 0 && info.in_use == 0);
    mspace_destroy(shared);
}

/* ---- free() by another thread ---- */

#define XN 2000
static unsigned char *xblocks[XN];

static void *free_all(void *arg) {
    (void)arg;
    for (int i = 0; i < XN; i++) free(xblocks[i]);
    return NULL;
}

static void test_free_by_other_thread(void) {
    progress = "free() by another thread";
    mspace_t *ms = mspace_create();
    for (int i = 0; i < XN; i++) xblocks[i] = mspace_malloc(ms, i == 7 ? 3 * MiB : 16 + (size_t)i % 700);
    info_t full = heap_info(ms);
    pthread_t t;
    pthread_create(&t, NULL, free_all, NULL);
    pthread_join(t, NULL);
    info_t after = heap_info(ms);
    CHECK("other thread: its free() empties the heap at once",
          full.small_blocks == XN - 1 && full.large_blocks == 1 && after.small_blocks == 0 &&
              after.large_blocks == 0);
    int ok = 1;
    for (int i = 0; i < XN; i++) {
        if (i == 7) continue;
        xblocks[i] = mspace_malloc(ms, 16 + (size_t)i % 700);
        ok &= xblocks[i] != NULL;
    }
    info_t again = heap_info(ms);
    CHECK("other thread: the freed room is reused, no new segment", ok &&
              again.small_mapped == full.small_mapped);
    mspace_destroy(ms);
}

/* ---- a heap outlives the thread that made it ---- */

static mspace_t *orphan;
static unsigned char *orphan_blocks[100];

static void *make_and_exit(void *arg) {
    (void)arg;
    free(malloc(10)); /* this thread has a heap of its own, pooled at exit */
    orphan = mspace_create();
    for (int i = 0; i < 100; i++) {
        orphan_blocks[i] = mspace_malloc(orphan, 64 + (size_t)i);
        fill(orphan_blocks[i], 64 + (size_t)i, 3000 + i);
    }
    return NULL;
}

static unsigned char *scribbled[2000];

static void *adopt_and_scribble(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) { /* takes over the pooled heap, if any */
        scribbled[i] = malloc(64 + (size_t)i % 100);
        memset(scribbled[i], 0xEE, 64 + (size_t)i % 100);
    }
    return NULL;
}

static void test_outlives_thread(void) {
    progress = "heap outlives its thread";
    pthread_t t;
    pthread_create(&t, NULL, make_and_exit, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, adopt_and_scribble, NULL);
    pthread_join(t, NULL);
    int ok = 1;
    for (int i = 0; i < 100; i++) ok &= intact(orphan_blocks[i], 64 + (size_t)i, 3000 + i);
    info_t info = heap_info(orphan);
    CHECK("thread exit: the heap and its blocks survive the thread that made them",
          ok && info.small_blocks == 100);
    void *more = mspace_malloc(orphan, 100);
    CHECK("thread exit: the heap is still usable from another thread", more != NULL);
    mspace_destroy(orphan);
    for (int i = 0; i < 2000; i++) free(scribbled[i]);
}

/* ---- two heaps interleaved ---- */

static void test_two_heaps(void) {
    progress = "two heaps";
    enum { N = 3000 };
    static unsigned char *a[N], *b[N];
    mspace_t *ha = mspace_create(), *hb = mspace_create();
    for (int i = 0; i < N; i++) {
        size_t size = 8 + (size_t)(i * 37) % 3000;
        a[i] = mspace_malloc(ha, size);
        b[i] = mspace_malloc(hb, size);
        fill(a[i], size, 1000000 + i);
        fill(b[i], size, 2000000 + i);
    }
    /* Half of A's blocks freed through B's handle: they still leave A. */
    for (int i = 0; i < N; i += 2) mspace_free(hb, a[i]);
    info_t ia = heap_info(ha), ib = heap_info(hb);
    CHECK("two heaps: mspace_free with the wrong handle frees in the right heap",
          ia.small_blocks == N / 2 && ib.small_blocks == N);
    size_t before = process_mapped();
    mspace_destroy(ha);
    size_t after = process_mapped();
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= intact(b[i], 8 + (size_t)(i * 37) % 3000, 2000000 + i);
    CHECK("two heaps: destroying one leaves the other's blocks intact", ok);
    CHECK("two heaps: destroying one unmaps about what it held",
          before - after >= ia.mapped && before - after <= ia.mapped + 64 * KiB);
    info_t ib2 = heap_info(hb);
    CHECK("two heaps: the other heap's figures are unchanged",
          ib2.small_blocks == N && ib2.mapped == ib.mapped);
    for (int i = 0; i < N; i++) free(b[i]);
    mspace_destroy(hb);
}

/* ---- destroy gives the memory back ---- */

static void test_destroy_returns_memory(void) {
    progress = "destroy returns memory";
    enum { N = 100000, LARGE = 4 };
    unsigned char **p = malloc(N * sizeof *p), *big[LARGE];
    uint64_t rng = 99;
    rss_bytes(); /* its first fopen may grow the thread's heap */
    size_t mapped0 = process_mapped(), rss0 = rss_bytes();
    mspace_t *ms = mspace_create();
    for (int i = 0; i < N; i++) {
        size_t size = 16 + rnd(&rng) % 240;
        p[i] = mspace_malloc(ms, size);
        memset(p[i], 0x5A, size);
    }
    for (int i = 0; i < LARGE; i++) {
        big[i] = mspace_malloc(ms, (size_t)(i + 3) * MiB); /* above 2 MiB: mapped alone */
        memset(big[i], 0x5A, (size_t)(i + 3) * MiB);
    }
    /* Some freed again, so the heap holds holes as well as blocks. */
    for (int i = 0; i < N; i += 3) mspace_free(ms, p[i]);
    size_t mapped1 = process_mapped(), rss1 = rss_bytes();
    info_t info = heap_info(ms);
    CHECK("destroy: the heap's own figures match the process's growth",
          info.mapped + 256 * KiB >= mapped1 - mapped0 && info.mapped <= mapped1 - mapped0);
    CHECK("destroy: 10 MiB of large blocks held", info.large_mapped >= 10 * MiB);
    mspace_destroy(ms);
    size_t mapped2 = process_mapped(), rss2 = rss_bytes();
    size_t grew = mapped1 - mapped0, rss_grew = rss1 > rss0 ? rss1 - rss0 : 0;
    CHECK("destroy: mapped bytes fall back (>= 99% of the growth)",
          mapped1 > mapped0 + 10 * MiB && mapped2 <= mapped0 + grew / 100);
    /* Measured against what the heap had in use rather than the whole
     * growth, which includes the leak tracker's tables when it is on. */
    CHECK("destroy: RSS falls by at least 90% of the bytes the heap had in use",
          rss_grew > 10 * MiB && rss1 - rss2 >= info.in_use / 10 * 9);
    if (rss1 - rss2 < info.in_use / 10 * 9)
        fprintf(stderr, "  rss: %zu -> %zu -> %zu, in use %zu\n", rss0, rss1, rss2, info.in_use);
    free(p);

    /* Heaps made and destroyed in a loop leave nothing behind. mallinfo2
     * counts freed large blocks kept for reuse as mapped (they are), and a
     * heap may take one of those and unmap it at destroy: start with none. */
    malloc_trim(0);
    size_t mapped3 = process_mapped();
    for (int round = 0; round < 200; round++) {
        mspace_t *h = mspace_create();
        for (int i = 0; i < 50; i++) mspace_malloc(h, (size_t)(i * 97) % 5000);
        mspace_malloc(h, 300 * KiB);
        mspace_destroy(h);
    }
    CHECK("destroy: 200 heaps made and destroyed leave no mapping behind",
          process_mapped() == mapped3);
}

/* ---- fork while another thread uses a heap ---- */

static mspace_t *forked;
static atomic_int stop_bg;
static atomic_long bg_rounds;

static void *background(void *arg) {
    (void)arg;
    uint64_t rng = 5;
    unsigned char *keep[64] = {0};
    size_t sizes[64] = {0};
    while (!stop_bg) {
        uint64_t r = rnd(&rng);
        unsigned k = (unsigned)(r % 64);
        if (keep[k]) {
            if (!intact(keep[k], sizes[k], k)) bad++;
            mspace_free(forked, keep[k]);
        }
        sizes[k] = (r & 255) == 0 ? 300 * KiB : (r >> 16) % 2000;
        keep[k] = mspace_malloc(forked, sizes[k]);
        if (keep[k]) fill(keep[k], sizes[k], k);
        bg_rounds++;
    }
    for (int k = 0; k < 64; k++) mspace_free(forked, keep[k]);
    return NULL;
}

static void fork_child(unsigned char *before, size_t before_size) {
    alarm(10);
    int status = 0;
    if (!intact(before, before_size, 4242)) status |= 1;
    unsigned char *p[500];
    for (int i = 0; i < 500; i++) {
        p[i] = mspace_malloc(forked, i == 3 ? MiB : (size_t)(i * 13) % 2000 + 1);
        if (!p[i]) status |= 2;
        else fill(p[i], i == 3 ? MiB : (size_t)(i * 13) % 2000 + 1, i);
    }
    for (int i = 0; i < 500; i++) {
        if (p[i] && !intact(p[i], i == 3 ? MiB : (size_t)(i * 13) % 2000 + 1, i)) status |= 4;
        if (i & 1) free(p[i]);
    }
    mspace_free(forked, before);
    size_t mapped = process_mapped();
    mspace_destroy(forked);
    if (process_mapped() >= mapped) status |= 8;
    void *m = malloc(100); /* the ordinary heap still works */
    if (!m) status |= 16;
    free(m);
    _exit(status);
}

static void test_fork(void) {
    progress = "fork with a heap in use";
    forked = mspace_create();
    unsigned char *before = mspace_malloc(forked, 777);
    fill(before, 777, 4242);
    stop_bg = 0;
    pthread_t t;
    pthread_create(&t, NULL, background, NULL);
    int children_ok = 1;
    for (int i = 0; i < 30; i++) {
        while (bg_rounds < (long)(i + 1) * 200) usleep(100); /* the heap is busy */
        pid_t pid = fork();
        if (pid == 0) fork_child(before, 777);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            children_ok = 0;
            fprintf(stderr, "  fork %d: child status %#x\n", i, st);
        }
    }
    stop_bg = 1;
    pthread_join(t, NULL);
    CHECK("fork: each child uses, frees into and destroys the heap, exit 0", children_ok);
    CHECK("fork: the parent's heap is untouched by the children", intact(before, 777, 4242));
    CHECK("fork: the background thread saw no corruption", bad == 0);
    mspace_free(forked, before);
    info_t info = heap_info(forked);
    CHECK("fork: the parent's heap empties normally", info.small_blocks == 0 &&
                                                          info.large_blocks == 0);
    mspace_destroy(forked);
}

/* ---- observed calls (MSPACE_STATS_FILE) ---- */

/* Run in a re-executed copy with the option set: blocks left in a heap
 * count as freed when it is destroyed, so the report stays balanced. */
static void observed_child(void) {
    mspace_t *ms = mspace_create();
    for (int i = 0; i < 5000; i++) mspace_malloc(ms, (size_t)i % 3000);
    mspace_malloc(ms, MiB);
    mspace_destroy(ms);
}

static long report_value(const char *text, const char *name) {
    const char *at = strstr(text, name);
    return at ? atol(at + strlen(name)) : -1;
}

static void test_observed(void) {
    progress = "observed calls";
    char path[64];
    snprintf(path, sizeof path, "/tmp/mspace-explicit-%d.stats", (int)getpid());
    pid_t pid = fork();
    if (pid == 0) {
        setenv("MSPACE_STATS_FILE", path, 1);
        execl("/proc/self/exe", "explicit_heaps", "observed-child", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    char text[4096] = "";
    FILE *f = fopen(path, "r");
    if (f) {
        text[fread(text, 1, sizeof text - 1, f)] = 0;
        fclose(f);
    }
    unlink(path);
    long mallocs = report_value(text, "calls_malloc "), frees = report_value(text, "calls_free ");
    CHECK("observed: the child ran and wrote its report", WIFEXITED(st) && mallocs >= 5001);
    CHECK("observed: blocks a destroyed heap held count as freed (calls balance)",
          frees >= 0 && mallocs - frees >= 0 && mallocs - frees < 100);
    if (!(mallocs - frees < 100)) fprintf(stderr, "  calls_malloc %ld calls_free %ld\n", mallocs, frees);
}

int main(int argc, char **argv) {
    TEST_BEGIN("api/explicit_heaps");
    if (argc > 1 && strcmp(argv[1], "observed-child") == 0 && mspace_create) {
        observed_child();
        return 0;
    }
    if (!mspace_create) {
        printf("explicit_heaps: mspace_create not found (not under LD_PRELOAD=libmspace.so)\n");
        return TEST_DONE();
    }
    pthread_t dog;
    pthread_create(&dog, NULL, watchdog, NULL);
    test_basics();
    test_shared_threads();
    test_free_by_other_thread();
    test_outlives_thread();
    test_two_heaps();
    test_destroy_returns_memory();
    test_fork();
    test_observed();
    return TEST_DONE();
}
