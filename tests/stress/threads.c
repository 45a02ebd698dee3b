/* Multi-threaded malloc/calloc/realloc/aligned/free stress with cross-thread
 * frees.
 *
 * N threads (default 4) each keep a private table of blocks and run random
 * operations on it: allocate (malloc, calloc, aligned_alloc), verify+free,
 * verify+realloc, or swap the block with one of the shared lock-protected
 * slots, so blocks migrate between threads and many frees and reallocs happen
 * on a thread other than the allocating one.  Every block carries a pattern
 * derived from (thread, index); it is verified before every free/realloc, the
 * preserved prefix is verified after realloc, and calloc memory must be zero.
 *
 * The run is split into phases; between phases all threads stop at a barrier
 * and one thread verifies every live block and checks, over the sorted address
 * ranges of all live blocks, that no two blocks overlap.
 *
 * usage: threads [threads=4] [iterations per thread=1000000] [seed=12345]
 */
#define _GNU_SOURCE
#include "../harness.h"
#include "../pattern.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NLOCAL 512  /* blocks kept by each thread */
#define NSHARED 1024 /* slots shared by all threads */
#define NLOCKS 64    /* shared slot i is protected by lock i % NLOCKS */
#define NPHASES 8
#define WATCHDOG_SECONDS 150

typedef struct {
    unsigned char *p;
    size_t size;  /* requested size: the bytes that carry the pattern */
    uint64_t tag; /* (thread << 40) | index of the allocation */
    int owner;    /* thread that made the current allocation */
} blk_t;

typedef struct {
    uint64_t mismatch, calloc_dirty, null_ret, misaligned;
    uint64_t allocs, frees, frees_cross, reallocs, reallocs_cross, swaps,
        large;
} stats_t;

typedef struct {
    int id;
    uint64_t rng;
    uint64_t counter;
    blk_t local[NLOCAL];
    stats_t st;
} thr_t;

static int nthreads = 4;
static long iterations = 1000000;
static uint64_t seed = 12345;

static blk_t shared_slots[NSHARED];
static pthread_mutex_t shared_lock[NLOCKS];
static pthread_barrier_t barrier;
static thr_t *thr;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int reports;
/* results of the phase checks (written by thread 0 only) */
static uint64_t phase_mismatch, phase_overlap, phase_blocks;
static volatile int phase_done;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    pthread_mutex_lock(&report_lock);
    if (reports++ < 20) {
        va_list ap;
        va_start(ap, fmt);
        fputs("  detail: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    pthread_mutex_unlock(&report_lock);
}

static int verify_blk(thr_t *t, const blk_t *b, size_t n, const char *when)
{
    long off = pattern_first_bad(b->p, n, b->tag);
    if (off >= 0) {
        t->st.mismatch++;
        report("thread %d, %s: block %p size %zu (made by thread %d, tag "
               "%#llx) wrong byte at offset %ld",
               t->id, when, (void *)b->p, b->size, b->owner,
               (unsigned long long)b->tag, off);
        return 0;
    }
    return 1;
}

static size_t pick_size(uint64_t *s, thr_t *t)
{
    uint64_t r = rnd(s) % 10000;
    if (r < 9000)
        return 1 + rnd(s) % 1024;
    if (r < 9995)
        return 1025 + rnd(s) % (65536 - 1024);
    t->st.large++;
    return (1u << 20) + rnd(s) % (3u << 20) + 1; /* 1..4 MiB */
}

static void new_block(thr_t *t, blk_t *b)
{
    uint64_t *s = &t->rng;
    size_t size = pick_size(s, t);
    uint64_t kind = rnd(s) % 100;
    size_t align = 16;
    unsigned char *p;
    if (kind < 25) { /* calloc with a random element size */
        static const size_t el[] = {1, 2, 4, 8, 12, 16, 24, 100};
        size_t e = el[rnd(s) % 8], n = (size + e - 1) / e;
        size = n * e;
        p = calloc(n, e);
        if (p) {
            size_t k;
            for (k = 0; k < size && p[k] == 0; k++)
                ;
            if (k < size) {
                t->st.calloc_dirty++;
                report("thread %d: calloc(%zu, %zu) = %p not zero at offset "
                       "%zu (byte %#x)",
                       t->id, n, e, (void *)p, k, p[k]);
            }
        }
    } else if (kind < 30) { /* aligned_alloc, size rounded to alignment */
        align = (size_t)32 << (rnd(s) % 8); /* 32 .. 4096 */
        size = (size + align - 1) / align * align;
        p = aligned_alloc(align, size);
    } else {
        p = malloc(size);
    }
    t->st.allocs++;
    if (!p) {
        t->st.null_ret++;
        report("thread %d: allocation of %zu bytes returned NULL", t->id, size);
        return;
    }
    if ((uintptr_t)p % align) {
        t->st.misaligned++;
        report("thread %d: %p (size %zu) not aligned to %zu", t->id,
               (void *)p, size, align);
    }
    b->p = p;
    b->size = size;
    b->owner = t->id;
    b->tag = ((uint64_t)t->id << 40) | t->counter++;
    fill(p, size, b->tag);
}

static void free_block(thr_t *t, blk_t *b)
{
    verify_blk(t, b, b->size, "before free");
    t->st.frees++;
    if (b->owner != t->id)
        t->st.frees_cross++;
    free(b->p);
    b->p = NULL;
}

static void realloc_block(thr_t *t, blk_t *b)
{
    uint64_t *s = &t->rng;
    verify_blk(t, b, b->size, "before realloc");
    size_t nsize;
    uint64_t r = rnd(s) % 4;
    if (r == 0) /* shrink */
        nsize = 1 + rnd(s) % b->size;
    else if (r == 1) /* small growth, often in place */
        nsize = b->size + 1 + rnd(s) % 64;
    else
        nsize = pick_size(s, t);
    unsigned char *q = realloc(b->p, nsize);
    t->st.reallocs++;
    if (b->owner != t->id)
        t->st.reallocs_cross++;
    if (!q) {
        t->st.null_ret++;
        report("thread %d: realloc(%p, %zu) returned NULL", t->id,
               (void *)b->p, nsize);
        return; /* old block is still valid and still in the table */
    }
    if ((uintptr_t)q % 16) {
        t->st.misaligned++;
        report("thread %d: realloc result %p not 16-byte aligned", t->id,
               (void *)q);
    }
    blk_t nb = *b;
    nb.p = q;
    size_t keep = nsize < b->size ? nsize : b->size;
    if (!verify_blk(t, &nb, keep, "after realloc (kept prefix)"))
        report("   (realloc %p size %zu -> %p size %zu)", (void *)b->p,
               b->size, (void *)q, nsize);
    b->p = q;
    b->size = nsize;
    b->owner = t->id;
    b->tag = ((uint64_t)t->id << 40) | t->counter++;
    fill(q, nsize, b->tag);
}

static void swap_shared(thr_t *t, blk_t *b)
{
    size_t j = rnd(&t->rng) % NSHARED;
    pthread_mutex_t *m = &shared_lock[j % NLOCKS];
    pthread_mutex_lock(m);
    blk_t tmp = shared_slots[j];
    shared_slots[j] = *b;
    *b = tmp;
    pthread_mutex_unlock(m);
    t->st.swaps++;
}

typedef struct {
    uintptr_t a;
    size_t n;
    int owner;
} range_t;

static int cmp_range(const void *x, const void *y)
{
    const range_t *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

/* Runs on thread 0 while every other thread waits at the barrier. */
static void phase_check(void)
{
    size_t cap = (size_t)nthreads * NLOCAL + NSHARED, n = 0;
    range_t *r = malloc(cap * sizeof *r);
    if (!r) {
        phase_mismatch++;
        report("phase check: malloc of the range table failed");
        return;
    }
    for (int i = 0; i < nthreads; i++)
        for (int k = 0; k < NLOCAL; k++) {
            blk_t *b = &thr[i].local[k];
            if (!b->p)
                continue;
            if (pattern_first_bad(b->p, b->size, b->tag) >= 0) {
                phase_mismatch++;
                report("phase check: block %p size %zu held by thread %d "
                       "(made by %d) corrupted",
                       (void *)b->p, b->size, i, b->owner);
            }
            r[n++] = (range_t){(uintptr_t)b->p, b->size, b->owner};
        }
    for (int k = 0; k < NSHARED; k++) {
        blk_t *b = &shared_slots[k];
        if (!b->p)
            continue;
        if (pattern_first_bad(b->p, b->size, b->tag) >= 0) {
            phase_mismatch++;
            report("phase check: shared block %p size %zu (made by %d) "
                   "corrupted",
                   (void *)b->p, b->size, b->owner);
        }
        r[n++] = (range_t){(uintptr_t)b->p, b->size, b->owner};
    }
    qsort(r, n, sizeof *r, cmp_range);
    for (size_t k = 0; k + 1 < n; k++)
        if (r[k].a + r[k].n > r[k + 1].a) {
            phase_overlap++;
            report("overlap: [%#lx, +%zu) (thread %d) and [%#lx, +%zu) "
                   "(thread %d)",
                   (unsigned long)r[k].a, r[k].n, r[k].owner,
                   (unsigned long)r[k + 1].a, r[k + 1].n, r[k + 1].owner);
        }
    phase_blocks += n;
    free(r);
}

static void *worker(void *arg)
{
    thr_t *t = arg;
    long per_phase = iterations / NPHASES;
    for (int ph = 0; ph < NPHASES; ph++) {
        for (long it = 0; it < per_phase; it++) {
            blk_t *b = &t->local[rnd(&t->rng) % NLOCAL];
            if (!b->p) {
                new_block(t, b);
                continue;
            }
            uint64_t r = rnd(&t->rng) % 100;
            if (r < 40)
                free_block(t, b);
            else if (r < 60)
                realloc_block(t, b);
            else
                swap_shared(t, b);
        }
        pthread_barrier_wait(&barrier);
        if (t->id == 0) {
            phase_check();
            phase_done++;
        }
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    sleep(WATCHDOG_SECONDS);
    char where[128];
    snprintf(where, sizeof where, "phases done: %d of %d", phase_done, NPHASES);
    harness_hung(WATCHDOG_SECONDS, where);
    return NULL;
}

int main(int argc, char **argv)
{
    TEST_BEGIN("threads");
    if (argc > 1)
        nthreads = atoi(argv[1]);
    if (argc > 2)
        iterations = atol(argv[2]);
    if (argc > 3)
        seed = strtoull(argv[3], NULL, 0);
    if (nthreads < 1)
        nthreads = 1;
    if (iterations < NPHASES)
        iterations = NPHASES;

    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);

    for (int i = 0; i < NLOCKS; i++)
        pthread_mutex_init(&shared_lock[i], NULL);
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    thr = calloc((size_t)nthreads, sizeof *thr);
    CHECK("calloc of the thread table", thr != NULL);
    if (!thr)
        return TEST_DONE();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t *tid = malloc((size_t)nthreads * sizeof *tid);
    int created = 0;
    for (int i = 0; i < nthreads; i++) {
        thr[i].id = i;
        thr[i].rng = mix(seed * 1000003 + (uint64_t)i + 1) | 1;
        if (pthread_create(&tid[i], NULL, worker, &thr[i]) == 0)
            created++;
    }
    CHECK("all worker threads created", created == nthreads);
    if (created != nthreads) /* the barrier would never open */
        return TEST_DONE();
    for (int i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    /* Final pass on the main thread: verify everything that survived and free
     * it (none of these blocks was allocated by the main thread). */
    thr_t fin;
    memset(&fin, 0, sizeof fin);
    fin.id = -1;
    for (int i = 0; i < nthreads; i++)
        for (int k = 0; k < NLOCAL; k++)
            if (thr[i].local[k].p)
                free_block(&fin, &thr[i].local[k]);
    for (int k = 0; k < NSHARED; k++)
        if (shared_slots[k].p)
            free_block(&fin, &shared_slots[k]);

    stats_t sum = {0};
    for (int i = 0; i < nthreads; i++) {
        stats_t *s = &thr[i].st;
        sum.mismatch += s->mismatch;
        sum.calloc_dirty += s->calloc_dirty;
        sum.null_ret += s->null_ret;
        sum.misaligned += s->misaligned;
        sum.allocs += s->allocs;
        sum.frees += s->frees;
        sum.frees_cross += s->frees_cross;
        sum.reallocs += s->reallocs;
        sum.reallocs_cross += s->reallocs_cross;
        sum.swaps += s->swaps;
        sum.large += s->large;
    }
    printf("threads: %d threads x %ld ops in %.2f s: %llu allocs (%llu of 1-4 "
           "MiB), %llu frees (%llu cross-thread), %llu reallocs (%llu "
           "cross-thread), %llu handoffs, %llu live blocks range-checked, "
           "%llu freed at the end\n",
           nthreads, iterations,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           (unsigned long long)sum.allocs, (unsigned long long)sum.large,
           (unsigned long long)sum.frees,
           (unsigned long long)sum.frees_cross,
           (unsigned long long)sum.reallocs,
           (unsigned long long)sum.reallocs_cross,
           (unsigned long long)sum.swaps,
           (unsigned long long)phase_blocks,
           (unsigned long long)fin.st.frees);

    CHECK("no pattern mismatch before free/realloc or after realloc",
          sum.mismatch == 0);
    CHECK("every live block intact at the phase checks", phase_mismatch == 0);
    CHECK("no two live blocks overlap", phase_overlap == 0);
    CHECK("calloc memory is zero", sum.calloc_dirty == 0);
    CHECK("no allocation returned NULL", sum.null_ret + fin.st.null_ret == 0);
    CHECK("results are aligned (16, or the aligned_alloc alignment)",
          sum.misaligned == 0);
    CHECK("surviving blocks intact when freed by the main thread",
          fin.st.mismatch == 0);
    free(tid);
    free(thr);
    return TEST_DONE();
}
