/* Threads that end: their memory, their keys' destructors, and mspace's own
 * thread teardown. stress/thread_churn.c covers threads handing blocks to
 * main and keys created after mspace's; this adds:
 *
 *  1. Hand-over rounds: a producer thread allocates ROUND_BLOCKS blocks
 *     (16 B .. 4 KiB, one in 64 of 64..512 KiB: about 145 MiB) and exits;
 *     a consumer thread checks and frees every one of them and exits. In
 *     half of the rounds the consumer starts freeing while the producer is
 *     still exiting. RSS (/proc/self/statm) after each round, when nothing
 *     is in use, must stay within RSS_GROWTH_MAX of its value after the
 *     warm-up rounds. What mspace may legitimately keep resident is capped
 *     and reached within the warm-up, so growth after it is a leak: memory
 *     freed to a dead thread's heap and never reused or returned. 64 MiB is
 *     less than half of one round, and a leak of 1% of each round (1.45 MiB)
 *     crosses it within the 52 rounds after the warm-up.
 *  2. Key destructors: one key created in a constructor before the
 *     program's first allocation (its destructor runs before mspace's own
 *     thread-exit hook) and one created in main afterwards (runs after it,
 *     with the thread already torn down). Each destructor checks and frees
 *     its value, mallocs and frees blocks of several sizes, keeps one block
 *     for main to check and free later, and re-arms its key once with a new
 *     block, so glibc runs it a second time, after mspace's teardown for
 *     both keys. THREADS threads, WAVE at a time, each allocating a little.
 *
 * usage: thread_teardown [rounds = 60] [threads = 5000] [wave = 8]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "../pattern.h"
#include "faults.h"

#define KiB ((size_t)1 << 10)
#define ROUND_BLOCKS 20000
#define WARMUP_ROUNDS 8
#define RSS_GROWTH_MAX ((size_t)64 << 20)
#define WATCHDOG_SECONDS 150

/* ---- 1. hand-over rounds ---- */

typedef struct {
    unsigned char *p[ROUND_BLOCKS];
    size_t size[ROUND_BLOCKS];
    size_t bytes;
    uint64_t seed;
    atomic_int ready; /* the producer has filled the table */
    long bad;
} round_t;

static void *producer(void *arg) {
    round_t *r = arg;
    uint64_t s = r->seed;
    r->bytes = 0;
    for (int i = 0; i < ROUND_BLOCKS; i++) {
        uint64_t x = rnd(&s);
        size_t n = x % 64 == 0 ? 64 * KiB + x % (448 * KiB) : 16 + x % 4080;
        r->p[i] = malloc(n);
        r->size[i] = n;
        if (r->p[i] == NULL) {
            r->bad++;
            continue;
        }
        fill(r->p[i], n < 256 ? n : 256, r->seed + (uint64_t)i);
        r->bytes += n;
    }
    atomic_store(&r->ready, 1);
    return NULL;
}

static void *consumer(void *arg) {
    round_t *r = arg;
    while (!atomic_load(&r->ready))
        sched_yield();
    for (int i = 0; i < ROUND_BLOCKS; i++) {
        if (r->p[i] && !intact(r->p[i], r->size[i] < 256 ? r->size[i] : 256, r->seed + (uint64_t)i))
            r->bad++;
        free(r->p[i]);
    }
    return NULL;
}

static void test_handover(int rounds) {
    static round_t r;
    size_t rss_warm = 0, rss_max = 0, rss_last = 0, round_bytes = 0;
    long bad = 0;
    watchdog_stage = "hand-over rounds";
    for (int k = 0; k < rounds; k++) {
        pthread_t p, c;
        atomic_store(&r.ready, 0);
        r.seed = 1000003ULL * (uint64_t)k + 17;
        r.bad = 0;
        pthread_create(&p, NULL, producer, &r);
        if (k % 2) { /* the consumer frees while the producer is exiting */
            pthread_create(&c, NULL, consumer, &r);
            pthread_join(p, NULL);
        } else {
            pthread_join(p, NULL);
            pthread_create(&c, NULL, consumer, &r);
        }
        pthread_join(c, NULL);
        bad += r.bad;
        if (r.bytes > round_bytes)
            round_bytes = r.bytes;
        rss_last = statm_bytes(1);
        if (k == WARMUP_ROUNDS - 1)
            rss_warm = rss_last;
        if (k >= WARMUP_ROUNDS && rss_last > rss_max)
            rss_max = rss_last;
    }
    printf("  %d hand-over rounds of %d blocks (%.1f MiB a round): RSS %.1f MiB after warm-up, "
           "at most %.1f MiB later, %.1f MiB at the end\n",
           rounds, ROUND_BLOCKS, round_bytes / 1048576.0, rss_warm / 1048576.0,
           rss_max / 1048576.0, rss_last / 1048576.0);
    CHECK("hand-over: every block intact when another thread freed it, no NULL", bad == 0);
    CHECK("hand-over: RSS after warm-up grows by less than 64 MiB",
          rss_warm > 0 && rss_max < rss_warm + RSS_GROWTH_MAX);
}

/* ---- 2. key destructors around mspace's thread teardown ---- */

static pthread_key_t key_early, key_late;
static atomic_long calls_early, calls_late, destructor_bad;

/* Blocks the destructors keep, for main: a lock-free stack. */
typedef struct kept {
    struct kept *next;
    uint64_t tag;
    size_t size;
} kept_t;
static _Atomic(kept_t *) kept_head;
static atomic_long kept_count;

static void keep_block(uint64_t tag, size_t size) {
    kept_t *k = malloc(size);
    if (k == NULL) {
        atomic_fetch_add(&destructor_bad, 1);
        return;
    }
    k->tag = tag;
    k->size = size;
    fill((unsigned char *)(k + 1), size - sizeof *k, tag);
    k->next = atomic_load(&kept_head);
    while (!atomic_compare_exchange_weak(&kept_head, &k->next, k))
        ;
    atomic_fetch_add(&kept_count, 1);
}

/* The key's value: a block with its tag and the round it was set for. */
typedef struct {
    uint64_t tag;
    int round;
    unsigned char data[100];
} value_t;

static value_t *make_value(uint64_t tag, int round) {
    value_t *v = malloc(sizeof *v);
    if (v) {
        v->tag = tag;
        v->round = round;
        fill(v->data, sizeof v->data, tag);
    }
    return v;
}

static void destructor_work(pthread_key_t key, void *arg) {
    value_t *v = arg;
    if (!intact(v->data, sizeof v->data, v->tag))
        atomic_fetch_add(&destructor_bad, 1);
    static const size_t sizes[] = {24, 700, 9000, 200 * KiB};
    for (int i = 0; i < 4; i++) {
        unsigned char *p = malloc(sizes[i]);
        if (p == NULL) {
            atomic_fetch_add(&destructor_bad, 1);
            continue;
        }
        fill(p, sizes[i] < 512 ? sizes[i] : 512, v->tag + (uint64_t)i);
        p = realloc(p, sizes[i] * 2);
        if (p == NULL || !intact(p, sizes[i] < 512 ? sizes[i] : 512, v->tag + (uint64_t)i))
            atomic_fetch_add(&destructor_bad, 1);
        free(p);
    }
    keep_block(v->tag, v->round == 0 ? 64 : 5000);
    if (v->round == 0) /* once more, after mspace's own hook has run */
        pthread_setspecific(key, make_value(v->tag + 1, 1));
    free(v);
}

static void early_destructor(void *v) {
    atomic_fetch_add(&calls_early, 1);
    destructor_work(key_early, v);
}
static void late_destructor(void *v) {
    atomic_fetch_add(&calls_late, 1);
    destructor_work(key_late, v);
}

/* Runs before main and before the program's first allocation. */
__attribute__((constructor(101))) static void create_early_key(void) {
    pthread_key_create(&key_early, early_destructor);
}

static void *short_lived(void *arg) {
    uint64_t tag = (uint64_t)(uintptr_t)arg << 8;
    void *a = malloc(40), *b = malloc(3000);
    pthread_setspecific(key_early, make_value(tag, 0));
    pthread_setspecific(key_late, make_value(tag + 0x80, 0));
    free(a);
    free(b);
    return NULL;
}

static void test_key_destructors(int threads, int wave) {
    watchdog_stage = "short-lived threads with key destructors";
    CHECK("late key created", pthread_key_create(&key_late, late_destructor) == 0);
    pthread_t *t = calloc((size_t)wave, sizeof *t);
    int create_fail = 0, started = 0;
    for (int i = 0; i < threads; i += wave) {
        int n = 0;
        for (int k = 0; k < wave && i + k < threads; k++, n++)
            if (pthread_create(&t[k], NULL, short_lived, (void *)(uintptr_t)(i + k + 1)) != 0)
                create_fail++, t[k] = 0;
            else
                started++;
        for (int k = 0; k < n; k++)
            if (t[k])
                pthread_join(t[k], NULL);
    }
    free(t);
    long bad = 0, count = 0;
    for (kept_t *k = atomic_exchange(&kept_head, NULL), *next; k; k = next) {
        next = k->next;
        bad += !intact((unsigned char *)(k + 1), k->size - sizeof *k, k->tag);
        free(k);
        count++;
    }
    printf("  %d short-lived threads, %d at a time: destructor calls %ld (early key) + %ld (late "
           "key), %ld blocks kept by destructors\n",
           started, wave, (long)calls_early, (long)calls_late, count);
    CHECK("every thread could be created", create_fail == 0);
    CHECK("each key's destructor ran twice per thread (re-armed once)",
          calls_early == 2L * started && calls_late == 2L * started);
    CHECK("destructors could malloc, realloc and free, before and after mspace's teardown",
          destructor_bad == 0);
    CHECK("blocks allocated in destructors are intact in main and freeable",
          bad == 0 && count == 4L * started);
}

int main(int argc, char **argv) {
    TEST_BEGIN("faults/thread_teardown");
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    int threads = argc > 2 ? atoi(argv[2]) : 5000;
    int wave = argc > 3 ? atoi(argv[3]) : 8;
    if (rounds <= WARMUP_ROUNDS)
        rounds = WARMUP_ROUNDS + 1;
    if (wave < 1)
        wave = 1;
    watchdog_start(WATCHDOG_SECONDS);
    test_handover(rounds);
    test_key_destructors(threads, wave);
    return TEST_DONE();
}
