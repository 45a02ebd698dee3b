/* The shadow model of tests/fuzz/model.h driven by a seeded random stream
 * instead of the fuzzer, against the shipped libmspace.so (LD_PRELOAD):
 *   1. one thread runs the model for `ops` steps, then frees everything;
 *   2. `threads` threads each run their own model for `ops` / 2 steps,
 *      trading blocks through a shared handoff table, so blocks are freed
 *      and reallocated by threads that did not make them; afterwards the
 *      live blocks of all tables must not overlap, hold their patterns, and
 *      are freed by the main thread.
 * Any wrong result aborts with the model's FAIL line; the CHECKs below say
 * that every entry point was exercised and that blocks did cross threads.
 *
 * usage: model_random [threads=3] [ops=200000] [seed=20241130]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "../fuzz/model.h"
#include "../harness.h"

#define WATCHDOG_SECONDS 150
#define MAX_THREADS 8

static model_t single, models[MAX_THREADS];
static model_handoff_t handoff = {.lock = PTHREAD_MUTEX_INITIALIZER};
static uint64_t ops = 200000;

static void *watchdog(void *arg) {
    sleep(WATCHDOG_SECONDS);
    harness_hung(WATCHDOG_SECONDS, (const char *)arg);
    return NULL;
}

static void *run_thread(void *arg) {
    model_run(arg, ops / 2);
    return NULL;
}

typedef struct {
    const unsigned char *p;
    size_t usable;
    int owner;
} range_t;

static int by_address(const void *a, const void *b) {
    const range_t *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

static range_t ranges[MAX_THREADS * MODEL_SLOTS + MODEL_HANDOFF_SLOTS];

/* Overlapping pairs among the live blocks of every table and the handoff. */
static int overlaps_across_threads(int threads) {
    size_t n = 0;
    for (int t = 0; t < threads; t++)
        for (unsigned i = 0; i < MODEL_SLOTS; i++)
            if (models[t].slot[i].p)
                ranges[n++] = (range_t){models[t].slot[i].p, models[t].slot[i].usable, t};
    for (unsigned i = 0; i < MODEL_HANDOFF_SLOTS; i++)
        if (handoff.slot[i].p)
            ranges[n++] = (range_t){handoff.slot[i].p, handoff.slot[i].usable, -1};
    qsort(ranges, n, sizeof ranges[0], by_address);
    int bad = 0;
    for (size_t i = 1; i < n; i++)
        if (ranges[i - 1].p + model_span(ranges[i - 1].usable) > ranges[i].p) {
            fprintf(stderr, "overlap: %p+%zu (thread %d) and %p (thread %d)\n",
                    (void *)ranges[i - 1].p, ranges[i - 1].usable, ranges[i - 1].owner,
                    (void *)ranges[i].p, ranges[i].owner);
            bad++;
        }
    return bad;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 3;
    ops = argc > 2 ? strtoull(argv[2], NULL, 0) : ops;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 20241130;
    if (threads < 1 || threads > MAX_THREADS)
        threads = 3;
    TEST_BEGIN("model_random");
    pthread_t dog;
    pthread_create(&dog, NULL, watchdog, "model steps");

    model_init(&single, 0, NULL, 0, seed, NULL);
    model_run(&single, ops);
    model_free_all(&single);
    CHECK("single thread: every step ran", single.ops == ops);
    int unused = 0;
    for (int k = 0; k < OP_COUNT; k++)
        if (single.op_count[k] == 0) {
            fprintf(stderr, "never ran: %s\n", model_op_name[k]);
            unused++;
        }
    CHECK("single thread: every entry point and case was exercised", unused == 0);

    pthread_t tid[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        model_init(&models[t], t + 1, NULL, 0, mix(seed + (uint64_t)t + 1), &handoff);
        pthread_create(&tid[t], NULL, run_thread, &models[t]);
    }
    uint64_t steps = 0, foreign = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        steps += models[t].ops;
        foreign += models[t].foreign;
    }
    CHECK("threads: every step ran", steps == (uint64_t)threads * (ops / 2));
    CHECK("threads: blocks crossed threads through the handoff", threads == 1 || foreign > 0);
    CHECK("threads: no two live blocks of different threads overlap",
          overlaps_across_threads(threads) == 0);
    /* The main thread frees the rest: all of it made by other threads. */
    for (int t = 0; t < threads; t++)
        model_free_all(&models[t]);
    for (unsigned i = 0; i < MODEL_HANDOFF_SLOTS; i++) {
        models[0].slot[0] = handoff.slot[i];
        model_release(&models[0], 0);
    }
    printf("model_random: %llu single-thread steps, %d threads x %llu steps, %llu blocks taken "
           "from another thread\n",
           (unsigned long long)single.ops, threads, (unsigned long long)(ops / 2),
           (unsigned long long)foreign);
    return TEST_DONE();
}
