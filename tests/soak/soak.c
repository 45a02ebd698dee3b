/* Soak: everything at once, for minutes.
 *
 * WORKERS threads allocate, check, realloc and free blocks (mostly small,
 * some up to 256 KiB, one in a hundred up to 4 MiB) in a shared table, so
 * most frees cross threads, and in a private table of their own. A spawner
 * thread keeps starting short-lived threads that allocate a batch, leave
 * part of it in the shared table and exit. A forker thread keeps forking
 * children that allocate, check and free blocks of their own and exit 0.
 * The main thread samples RSS once a second.
 *
 * At the end it prints the operations done, forks and threads, peak RSS and
 * the RSS drift between the first and the last minute (thirds of the run if
 * it is shorter than two minutes), and fails (exit 1) if a block was
 * corrupted, an allocation returned NULL, a child failed or hung, or RSS in
 * the last window exceeds the first by more than half plus 64 MiB: the
 * table bounds the memory in use, so growth beyond that is a leak or
 * unbounded fragmentation.
 *
 * usage: soak [seconds = 180] [workers = 4] [seed = 1]
 *        make soak SOAK_SECONDS=600
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../faults/faults.h"
#include "../pattern.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define SHARED 8192
#define LOCKS 64
#define PRIVATE 512
#define MAX_WORKERS 64
#define MAX_SAMPLES 100000
#define CHECKED 256 /* bytes patterned at each end of a block */

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t tag;
} blk_t;

static blk_t shared[SHARED];
static pthread_mutex_t shared_lock[LOCKS];
static atomic_int stop;
static atomic_long ops, nulls, corrupt, threads_started, forks_done, child_failures;
static uint64_t seed = 1;

static size_t pick_size(uint64_t *s) {
    uint64_t r = rnd(s);
    if (r % 100 == 0)
        return 256 * KiB + r % (4 * MiB - 256 * KiB);
    if (r % 100 < 6)
        return 2 * KiB + r % (254 * KiB);
    return 8 + r % 2040;
}

/* Pattern at both ends only: big blocks stay cheap to check. */
static void stamp(blk_t *b) {
    if (b->size <= 2 * CHECKED) {
        fill(b->p, b->size, b->tag);
        return;
    }
    fill(b->p, CHECKED, b->tag);
    fill(b->p + b->size - CHECKED, CHECKED, b->tag + 1);
}

static int blk_ok(const blk_t *b) {
    if (b->size <= 2 * CHECKED)
        return intact(b->p, b->size, b->tag);
    return intact(b->p, CHECKED, b->tag) && intact(b->p + b->size - CHECKED, CHECKED, b->tag + 1);
}

static void blk_new(blk_t *b, uint64_t *s) {
    b->size = pick_size(s);
    b->tag = rnd(s);
    b->p = malloc(b->size);
    if (b->p == NULL) {
        atomic_fetch_add(&nulls, 1);
        return;
    }
    stamp(b);
}

static void blk_free(blk_t *b) {
    if (b->p && !blk_ok(b))
        atomic_fetch_add(&corrupt, 1);
    free(b->p);
    b->p = NULL;
}

static void blk_realloc(blk_t *b, uint64_t *s) {
    if (!blk_ok(b))
        atomic_fetch_add(&corrupt, 1);
    size_t n = pick_size(s);
    unsigned char *q = realloc(b->p, n);
    if (q == NULL) {
        atomic_fetch_add(&nulls, 1);
        return;
    }
    size_t keep = n < b->size ? n : b->size;
    if (!intact(q, keep < CHECKED ? keep : CHECKED, b->tag))
        atomic_fetch_add(&corrupt, 1);
    b->p = q;
    b->size = n;
    b->tag = rnd(s);
    stamp(b);
}

/* One operation on a shared slot: free (often another thread's block),
 * realloc, or allocate. */
static void shared_op(uint64_t *s) {
    unsigned i = (unsigned)(rnd(s) % SHARED);
    pthread_mutex_lock(&shared_lock[i % LOCKS]);
    blk_t *b = &shared[i];
    if (b->p == NULL)
        blk_new(b, s);
    else if (rnd(s) % 4 == 0)
        blk_realloc(b, s);
    else
        blk_free(b);
    pthread_mutex_unlock(&shared_lock[i % LOCKS]);
}

static void *worker(void *arg) {
    uint64_t s = seed * 1000 + (uintptr_t)arg + 1;
    blk_t mine[PRIVATE] = {{0}};
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 64; k++) {
            if (k & 1) {
                shared_op(&s);
            } else {
                blk_t *b = &mine[rnd(&s) % PRIVATE];
                if (b->p)
                    blk_free(b);
                else
                    blk_new(b, &s);
            }
        }
        atomic_fetch_add_explicit(&ops, 64, memory_order_relaxed);
    }
    for (int i = 0; i < PRIVATE; i++)
        blk_free(&mine[i]);
    return NULL;
}

static void *short_lived(void *arg) {
    uint64_t s = (uintptr_t)arg * 7 + seed;
    blk_t batch[64];
    for (int i = 0; i < 64; i++)
        blk_new(&batch[i], &s);
    for (int i = 0; i < 64; i++) {
        if (batch[i].p == NULL)
            continue;
        if (i % 4 == 0) { /* leave it in the table for the workers to free */
            unsigned slot = (unsigned)(rnd(&s) % SHARED);
            pthread_mutex_lock(&shared_lock[slot % LOCKS]);
            blk_free(&shared[slot]);
            shared[slot] = batch[i];
            pthread_mutex_unlock(&shared_lock[slot % LOCKS]);
        } else {
            blk_free(&batch[i]);
        }
    }
    atomic_fetch_add(&ops, 64 + 64);
    return NULL;
}

static void *spawner(void *arg) {
    (void)arg;
    for (uintptr_t n = 1; !atomic_load(&stop); n++) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, (void *)n) == 0) {
            pthread_join(t, NULL);
            atomic_fetch_add(&threads_started, 1);
        }
        usleep(2000);
    }
    return NULL;
}

static int child_work(uint64_t s) {
    alarm(10);
    blk_t b[200];
    int bad = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 200; i++)
            blk_new(&b[i], &s);
        for (int i = 0; i < 200; i++) {
            if (b[i].p == NULL || !blk_ok(&b[i]))
                bad++;
            free(b[i].p);
        }
    }
    return bad ? 1 : 0;
}

static void *forker(void *arg) {
    (void)arg;
    uint64_t s = seed + 99;
    while (!atomic_load(&stop)) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_work(rnd(&s)));
        if (pid < 0) {
            atomic_fetch_add(&child_failures, 1);
        } else {
            int st = 0;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                atomic_fetch_add(&child_failures, 1);
            atomic_fetch_add(&forks_done, 1);
        }
        rnd(&s);
        usleep(50000);
    }
    return NULL;
}

static long samples[MAX_SAMPLES];

static double mean(const long *v, int from, int to) {
    double sum = 0;
    for (int i = from; i < to; i++)
        sum += (double)v[i];
    return to > from ? sum / (to - from) : 0;
}

int main(int argc, char **argv) {
    TEST_BEGIN("soak");
    int seconds = argc > 1 ? atoi(argv[1]) : 180;
    int workers = argc > 2 ? atoi(argv[2]) : 4;
    if (argc > 3)
        seed = strtoull(argv[3], NULL, 0);
    if (seconds < 1)
        seconds = 1;
    if (seconds > MAX_SAMPLES - 1)
        seconds = MAX_SAMPLES - 1;
    if (workers < 1 || workers > MAX_WORKERS)
        workers = 4;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&shared_lock[i], NULL);
    pthread_t w[MAX_WORKERS], sp, fk;
    watchdog_stage = "soak did not wind down";
    watchdog_start(seconds + 60);
    for (long i = 0; i < workers; i++)
        pthread_create(&w[i], NULL, worker, (void *)i);
    pthread_create(&sp, NULL, spawner, NULL);
    pthread_create(&fk, NULL, forker, NULL);

    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = 0;
    long peak = 0;
    for (;;) {
        sleep(1);
        long r = (long)statm_bytes(1);
        samples[n++] = r;
        if (r > peak)
            peak = r;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= seconds)
            break;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < workers; i++)
        pthread_join(w[i], NULL);
    pthread_join(sp, NULL);
    pthread_join(fk, NULL);
    for (int i = 0; i < SHARED; i++)
        blk_free(&shared[i]);

    int window = n >= 120 ? 60 : (n + 2) / 3;
    double first = mean(samples, 0, window), last = mean(samples, n - window, n);
    printf("soak: %d s, %d workers: %ld operations, %ld short-lived threads, %ld forks; "
           "peak RSS %.1f MiB; mean RSS %.1f MiB in the first %d s, %.1f MiB in the last %d s "
           "(drift %+.1f MiB)\n",
           n, workers, (long)ops, (long)threads_started, (long)forks_done, peak / 1048576.0,
           first / 1048576.0, window, last / 1048576.0, window, (last - first) / 1048576.0);
    CHECK("every block intact when freed or reallocated", corrupt == 0);
    CHECK("no allocation returned NULL", nulls == 0);
    CHECK("every child allocated, checked, freed and exited 0", child_failures == 0);
    CHECK("threads and forks kept coming", threads_started > 0 && forks_done > 0);
    CHECK("RSS in the last window at most 1.5 x the first + 64 MiB",
          last <= first * 1.5 + 64.0 * 1048576.0);
    return TEST_DONE();
}
