/* Growing buffers on loan while other threads' collections end loans.
 *
 * Two builder threads each rebuild a buffer over and over: grow it by
 * realloc from 100 KiB to a size between 2 and 12 MiB in steps of 64 KiB to
 * 1 MiB, writing every new byte with a pattern of its offset, check all of
 * it, sometimes shrink it, then free it. Each freed buffer waits in
 * mspace's large-block cache and the next one grown out of a span borrows
 * it (realloc_loan.c). Meanwhile a collector thread ends loans, unmapping
 * their tails, while their owners may be extending them: every 2 ms with
 * malloc_trim, and now and then by waiting past a loan's lifetime and
 * making new spans, so that its heap collects. A builder that lost a byte, or a crash, fails the test.
 * Runs SECONDS (default 3); passes on any allocator.
 *
 * usage: realloc_loans [seconds=3] [seed=7]
 */
#define _GNU_SOURCE
#include "../harness.h"
#include "../quiet.h"
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define WATCHDOG_SECONDS 120

static _Atomic int stop;
static _Atomic long rebuilds, lost;

static uint64_t next_random(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static unsigned char pattern(size_t i, uint64_t salt) {
    return (unsigned char)((i >> 9) * 131 + i + salt);
}

static void *builder(void *arg) {
    uint64_t rng = (uintptr_t)arg;
    while (!atomic_load(&stop)) {
        uint64_t salt = next_random(&rng);
        size_t target = 2 * MiB + next_random(&rng) % (10 * MiB);
        size_t size = 0;
        unsigned char *p = NULL;
        for (size_t next = 100 * KiB; size < target;) {
            unsigned char *q = realloc(p, next);
            if (q == NULL)
                break;
            p = q;
            for (size_t i = size; i < next; i++)
                p[i] = pattern(i, salt);
            size = next;
            next += 64 * KiB + next_random(&rng) % MiB;
        }
        if (next_random(&rng) % 4 == 0) { /* done growing: shrink to fit */
            size /= 3;
            unsigned char *q = realloc(p, size);
            if (q)
                p = q;
        }
        for (size_t i = 0; i < size; i++)
            if (p[i] != pattern(i, salt)) {
                atomic_fetch_add(&lost, 1);
                break;
            }
        free(p);
        atomic_fetch_add(&rebuilds, 1);
    }
    return NULL;
}

/* Ends loans both ways: malloc_trim ends them all at once, a collection
 * after a quiet spell the old ones. */
static void *collector(void *arg) {
    (void)arg;
    for (unsigned round = 0; !atomic_load(&stop); round++) {
        if (round % 200 == 199) {
            quiet_then_active(550); /* past a loan's 500 ms */
        } else {
            struct timespec t = {0, 2 * 1000 * 1000};
            nanosleep(&t, NULL);
            malloc_trim(0);
        }
    }
    return NULL;
}

static void on_alarm(int sig) {
    (void)sig;
    harness_hung(WATCHDOG_SECONDS, "builders and collector");
}

int main(int argc, char **argv) {
    TEST_BEGIN("stress/realloc_loans");
    int seconds = argc > 1 ? atoi(argv[1]) : 3;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 7;
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG_SECONDS);

    pthread_t threads[3];
    pthread_create(&threads[0], NULL, builder, (void *)(uintptr_t)(seed * 2 + 1));
    pthread_create(&threads[1], NULL, builder, (void *)(uintptr_t)(seed * 6 + 5));
    pthread_create(&threads[2], NULL, collector, NULL);
    struct timespec t = {seconds, 0};
    while (nanosleep(&t, &t) != 0)
        ;
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);

    long n = atomic_load(&rebuilds);
    CHECK("the builders rebuilt their buffers many times", n >= 20);
    CHECK("no buffer lost a byte", atomic_load(&lost) == 0);
    printf("stress/realloc_loans: %ld buffers rebuilt in %d s\n", n, seconds);
    return TEST_DONE();
}
