/* Thread churn: thousands of short-lived threads, and the memory they leave.
 *
 * Threads are started in waves (default 2000 threads, 8 at a time).  Most of
 * them allocate a few hundred blocks, free half of them and hand the other
 * half to the main thread, which verifies and frees them while the next wave
 * runs (so those frees reach a thread that has exited).  Others exit holding
 * nothing: one kind never allocates, one frees everything it made, and one
 * kind is detached.  Every allocating thread also sets two pthread keys whose
 * destructors run at thread exit:
 *   key_a: the value is a malloc'd block; the destructor verifies and frees it
 *          and then mallocs/frees a few more blocks during thread exit;
 *   key_b: the destructor frees its block and mallocs a new one that it stores
 *          back, twice, so glibc runs it for three destructor rounds.
 *
 * Leak check: RSS (/proc/self/statm) after the warm-up waves vs after all
 * waves, with every handed-back block freed, must not grow by more than
 * 64 MiB (a leak of 32 KiB per exited thread), and the virtual size must not
 * grow by more than 1 GiB (address space of exited threads never reused).
 *
 * usage: thread_churn [threads=2000] [wave=8] [seed=4242]
 */
#define _GNU_SOURCE
#include "../harness.h"
#include "../pattern.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_WAVES 4
#define RSS_BOUND (64L << 20)
#define VM_BOUND (1L << 30)
#define WATCHDOG_SECONDS 150

/* field 0 (virtual size) or 1 (resident) of /proc/self/statm, in bytes */
static long statm_bytes(int field)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long v[2] = {-1, -1};
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &v[0], &v[1]) != 2)
        v[field] = -1;
    fclose(f);
    return v[field] < 0 ? -1 : v[field] * sysconf(_SC_PAGESIZE);
}
static long rss_bytes(void) { return statm_bytes(1); }

/* ---- what threads hand back to main ---- */
typedef struct {
    size_t n;
    unsigned char **p;
    size_t *size;
    uint64_t *tag;
} handoff_t;

static uint64_t seed = 4242;
static atomic_long bad_blocks;     /* blocks found corrupted by a thread */
static atomic_long null_returns;   /* malloc returned NULL */
static atomic_long key_a_calls, key_a_bad, key_a_expected;
static atomic_long key_b_calls, key_b_bad, key_b_expected;
static atomic_long detached_done, detached_started;
static pthread_key_t key_a, key_b;
static volatile int cur_wave;

#define KEY_B_ROUNDS 3 /* within glibc's PTHREAD_DESTRUCTOR_ITERATIONS (4) */

typedef struct {
    int round;
    size_t size;
    uint64_t tag;
} kb_hdr;

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        atomic_fetch_add(&null_returns, 1);
    return p;
}

static void key_a_destructor(void *v)
{
    atomic_fetch_add(&key_a_calls, 1);
    unsigned char *p = v;
    size_t size;
    uint64_t tag;
    memcpy(&size, p, sizeof size);
    memcpy(&tag, p + 8, sizeof tag);
    if (!intact(p + 16, size - 16, tag))
        atomic_fetch_add(&key_a_bad, 1);
    free(p);
    /* malloc and free during thread exit, including a mmap-sized block */
    static const size_t sizes[] = {24, 200, 3000, 40000, 300000};
    void *q[5];
    for (int i = 0; i < 5; i++) {
        q[i] = xmalloc(sizes[i]);
        if (q[i])
            fill(q[i], sizes[i], tag + (uint64_t)i);
    }
    for (int i = 0; i < 5; i++)
        if (q[i]) {
            if (!intact(q[i], sizes[i], tag + (uint64_t)i))
                atomic_fetch_add(&key_a_bad, 1);
            free(q[i]);
        }
}

static void set_key_b(int round, uint64_t tag)
{
    size_t size = sizeof(kb_hdr) + 100 + (size_t)round * 700;
    kb_hdr *h = xmalloc(size);
    if (!h)
        return;
    h->round = round;
    h->size = size;
    h->tag = tag;
    fill((unsigned char *)(h + 1), size - sizeof *h, tag);
    pthread_setspecific(key_b, h);
}

static void key_b_destructor(void *v)
{
    atomic_fetch_add(&key_b_calls, 1);
    kb_hdr *h = v;
    int round = h->round;
    int detached = (h->tag >> 63) != 0;
    if (!intact((unsigned char *)(h + 1), h->size - sizeof *h, h->tag))
        atomic_fetch_add(&key_b_bad, 1);
    uint64_t tag = h->tag + 1;
    free(h);
    if (round < KEY_B_ROUNDS)
        set_key_b(round + 1, tag);
    else if (detached)
        atomic_fetch_add(&detached_done, 1);
}

static void set_keys(uint64_t tag, int detached)
{
    size_t size = 16 + 64 + (size_t)(tag % 4000);
    unsigned char *p = xmalloc(size);
    if (p) {
        memcpy(p, &size, sizeof size);
        memcpy(p + 8, &tag, sizeof tag);
        fill(p + 16, size - 16, tag);
        pthread_setspecific(key_a, p);
        atomic_fetch_add(&key_a_expected, 1);
    }
    atomic_fetch_add(&key_b_expected, KEY_B_ROUNDS);
    set_key_b(1, tag | ((uint64_t)detached << 63));
}

static size_t pick_size(uint64_t *s)
{
    uint64_t r = rnd(s) % 100;
    if (r < 80)
        return 1 + rnd(s) % 512;
    if (r < 98)
        return 513 + rnd(s) % (16384 - 512);
    return 16385 + rnd(s) % (256 * 1024);
}

enum { K_WORKER, K_EMPTY, K_BALANCED, K_DETACHED };

static int kind_of(long i)
{
    switch (i % 10) {
    case 9: return K_EMPTY;
    case 8: return K_BALANCED;
    case 7: return K_DETACHED;
    default: return K_WORKER;
    }
}

/* Allocate n blocks; free all of them (keep == 0) or every other one and
 * return the rest in a handoff (itself malloc'd by this thread). */
static handoff_t *churn(long idx, int keep)
{
    uint64_t s = mix(seed * 7919 + (uint64_t)idx) | 1;
    size_t n = 200 + rnd(&s) % 200;
    unsigned char **p = xmalloc(n * sizeof *p);
    size_t *size = xmalloc(n * sizeof *size);
    uint64_t *tag = xmalloc(n * sizeof *tag);
    if (!p || !size || !tag) {
        free(p);
        free(size);
        free(tag);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size[i] = pick_size(&s);
        tag[i] = ((uint64_t)idx << 20) | i;
        p[i] = xmalloc(size[i]);
        if (p[i])
            fill(p[i], size[i], tag[i]);
    }
    handoff_t *h = keep ? xmalloc(sizeof *h) : NULL;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (!p[i])
            continue;
        if (h && (i & 1)) {
            p[kept] = p[i];
            size[kept] = size[i];
            tag[kept] = tag[i];
            kept++;
            continue;
        }
        if (!intact(p[i], size[i], tag[i]))
            atomic_fetch_add(&bad_blocks, 1);
        free(p[i]);
    }
    if (!h) {
        free(p);
        free(size);
        free(tag);
        return NULL;
    }
    h->n = kept;
    h->p = p;
    h->size = size;
    h->tag = tag;
    return h;
}

static void *thread_main(void *arg)
{
    long idx = (long)arg;
    switch (kind_of(idx)) {
    case K_EMPTY:
        return NULL; /* never allocates anything */
    case K_BALANCED:
        churn(idx, 0);
        set_keys((uint64_t)idx, 0);
        pthread_exit(NULL); /* exits through pthread_exit, holding nothing */
    case K_DETACHED:
        churn(idx, 0);
        set_keys((uint64_t)idx, 1);
        return NULL;
    default: {
        handoff_t *h = churn(idx, 1);
        set_keys((uint64_t)idx, 0);
        return h;
    }
    }
}

static long handed, freed_by_main, main_bad;

static void free_handoffs(handoff_t **hs, int n)
{
    for (int k = 0; k < n; k++) {
        handoff_t *h = hs[k];
        if (!h)
            continue;
        for (size_t i = 0; i < h->n; i++) {
            if (!intact(h->p[i], h->size[i], h->tag[i]))
                main_bad++;
            free(h->p[i]);
            freed_by_main++;
        }
        free(h->p);
        free(h->size);
        free(h->tag);
        free(h);
        hs[k] = NULL;
    }
}

static void *watchdog(void *arg)
{
    (void)arg;
    sleep(WATCHDOG_SECONDS);
    char where[64];
    snprintf(where, sizeof where, "in wave %d", cur_wave);
    harness_hung(WATCHDOG_SECONDS, where);
    return NULL;
}

int main(int argc, char **argv)
{
    TEST_BEGIN("thread_churn");
    long total = argc > 1 ? atol(argv[1]) : 2000;
    int wave = argc > 2 ? atoi(argv[2]) : 8;
    if (argc > 3)
        seed = strtoull(argv[3], NULL, 0);
    if (wave < 1)
        wave = 1;
    long waves = (total + wave - 1) / wave;
    if (waves <= WARMUP_WAVES)
        waves = WARMUP_WAVES + 1;

    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);
    CHECK("pthread_key_create", pthread_key_create(&key_a, key_a_destructor) ==
                                        0 &&
                                    pthread_key_create(&key_b,
                                                       key_b_destructor) == 0);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t *tid = calloc((size_t)wave, sizeof *tid);
    char *joinable = calloc((size_t)wave, 1);
    handoff_t **prev = calloc((size_t)wave, sizeof *prev);
    handoff_t **cur = calloc((size_t)wave, sizeof *cur);
    long rss0 = -1, vm0 = -1, rss_max = 0, create_fail = 0, started = 0;
    pthread_attr_t det;
    pthread_attr_init(&det);
    pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);

    for (long w = 0; w < waves; w++) {
        cur_wave = (int)w;
        for (int k = 0; k < wave; k++) {
            long idx = w * wave + k;
            int d = kind_of(idx) == K_DETACHED;
            joinable[k] = 0;
            int rc = pthread_create(&tid[k], d ? &det : NULL, thread_main,
                                    (void *)idx);
            if (rc != 0) {
                create_fail++;
                continue;
            }
            started++;
            if (d)
                atomic_fetch_add(&detached_started, 1);
            else
                joinable[k] = 1;
        }
        /* free what the previous wave handed back while this one runs */
        free_handoffs(prev, wave);
        for (int k = 0; k < wave; k++) {
            void *ret = NULL;
            if (joinable[k])
                pthread_join(tid[k], &ret);
            cur[k] = ret;
            if (ret)
                handed += (long)((handoff_t *)ret)->n;
        }
        handoff_t **t = prev;
        prev = cur;
        cur = t;
        long r = rss_bytes();
        if (r > rss_max)
            rss_max = r;
        if (w == WARMUP_WAVES - 1) {
            free_handoffs(prev, wave);
            rss0 = rss_bytes();
            vm0 = statm_bytes(0);
        }
    }
    free_handoffs(prev, wave);

    /* wait (bounded) for the detached threads to finish their destructors */
    long want = atomic_load(&detached_started);
    for (int i = 0; i < 3000 && atomic_load(&detached_done) < want; i++)
        usleep(10000);
    usleep(50000);
    long rss1 = rss_bytes(), vm1 = statm_bytes(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    printf("thread_churn: %ld threads in %ld waves of %d in %.2f s; %ld "
           "blocks handed to main; RSS after warm-up %.1f MiB, at end %.1f "
           "MiB, max %.1f MiB; virtual size %.1f -> %.1f MiB; key_a "
           "destructor calls %ld, key_b %ld\n",
           started, waves, wave,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           handed, rss0 / 1048576.0, rss1 / 1048576.0, rss_max / 1048576.0,
           vm0 / 1048576.0, vm1 / 1048576.0,
           (long)key_a_calls, (long)key_b_calls);

    CHECK("every thread could be created", create_fail == 0);
    CHECK("no malloc returned NULL", atomic_load(&null_returns) == 0);
    CHECK("blocks intact when freed by the allocating thread",
          atomic_load(&bad_blocks) == 0);
    CHECK("handed-back blocks intact when main frees them after their "
          "thread exited",
          main_bad == 0);
    CHECK("detached threads all ran their destructors",
          atomic_load(&detached_done) == want);
    CHECK("key_a destructor ran once per thread",
          atomic_load(&key_a_calls) == atomic_load(&key_a_expected));
    CHECK("key_a destructor: value intact, malloc/free during exit work",
          atomic_load(&key_a_bad) == 0);
    CHECK("key_b destructor re-armed by mallocing in the destructor ran "
          "3 rounds per thread",
          atomic_load(&key_b_calls) == atomic_load(&key_b_expected));
    CHECK("key_b destructor values intact", atomic_load(&key_b_bad) == 0);
    CHECK("RSS readable", rss0 > 0 && rss1 > 0);
    if (rss1 - rss0 > RSS_BOUND)
        fprintf(stderr,
                "  detail: RSS grew by %.1f MiB over %ld threads (%.1f KiB "
                "per thread) - memory of exited threads not reused?\n",
                (rss1 - rss0) / 1048576.0, started,
                (rss1 - rss0) / 1024.0 / (double)started);
    CHECK("RSS growth after warm-up <= 64 MiB", rss1 - rss0 <= RSS_BOUND);
    if (vm1 - vm0 > VM_BOUND)
        fprintf(stderr,
                "  detail: virtual size grew by %.1f MiB over %ld threads - "
                "address space of exited threads not reused?\n",
                (vm1 - vm0) / 1048576.0, started);
    CHECK("virtual size growth after warm-up <= 1 GiB", vm1 - vm0 <= VM_BOUND);
    free(tid);
    free(joinable);
    free(prev);
    free(cur);
    return TEST_DONE();
}
