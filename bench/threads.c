/* Small churn in 1, 2 and 4 threads: each thread runs the churn of churn.c
 * (its own working set of LIVE blocks, default 4096, sizes 16..512 bytes,
 * its own fixed seed) for PAIRS free+malloc pairs (default 2,000,000), all
 * threads released together by a barrier. Throughput is total pairs / wall
 * time from the release until the last thread finished its loop (thread
 * start, filling and freeing the working sets not counted). The machine's
 * core count bounds the scaling: on 2 cores, 4 threads cannot beat 2.
 *
 *   threads [PAIRS [LIVE]]
 *
 * Prints:
 *   ops_per_sec_1t, ops_per_sec_2t, ops_per_sec_4t   pairs per second
 *   scaling_2t, scaling_4t   ops_per_sec_Nt / ops_per_sec_1t
 *   cores_2t, cores_4t       CPU time / wall time of that phase: how many
 *                            cores the threads really got (on a shared
 *                            machine, below 2 means they did not have two)
 *   peak_rss_kb              getrusage ru_maxrss (whole process)
 * Build: gcc -O2 -pthread -o threads bench/threads.c */
#include "bench.h" /* first: it defines _GNU_SOURCE */
#include <pthread.h>

static long pairs;
static uint32_t live;
static pthread_barrier_t start, stop;

struct worker {
    pthread_t thread;
    uint64_t seed, sum;
};

static void *work(void *arg) {
    struct worker *w = arg;
    uint64_t rng = w->seed;
    char **slots = xmalloc(live * sizeof *slots);
    churn_fill(slots, live, &rng);
    pthread_barrier_wait(&start);
    w->sum = churn_loop(slots, live, pairs, &rng);
    pthread_barrier_wait(&stop);
    churn_drain(slots, live);
    free(slots);
    return NULL;
}

static double run(int nthreads, uint64_t *sum, double *cores) {
    struct worker w[8];
    pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        w[i].seed = 0x5eed + 977 * (uint64_t)i;
        if (pthread_create(&w[i].thread, NULL, work, &w[i])) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&start);
    double t0 = now_ns(), c0 = cpu_ns();
    pthread_barrier_wait(&stop);
    double t1 = now_ns(), c1 = cpu_ns();
    *cores = (c1 - c0) / (t1 - t0);
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].thread, NULL);
        *sum += w[i].sum;
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    return (double)pairs * nthreads / ((t1 - t0) / 1e9);
}

int main(int argc, char **argv) {
    pairs = arg_count(argc, argv, 1, 2000000);
    live = (uint32_t)arg_count(argc, argv, 2, 4096);
    uint64_t sum = 0;
    double cores1, cores2, cores4;
    double ops1 = run(1, &sum, &cores1), ops2 = run(2, &sum, &cores2), ops4 = run(4, &sum, &cores4);
    printf("pairs_per_thread %ld\n", pairs);
    printf("live %u\n", live);
    printf("ops_per_sec_1t %.0f\n", ops1);
    printf("ops_per_sec_2t %.0f\n", ops2);
    printf("ops_per_sec_4t %.0f\n", ops4);
    printf("scaling_2t %.2f\n", ops2 / ops1);
    printf("scaling_4t %.2f\n", ops4 / ops1);
    printf("cores_1t %.2f\n", cores1);
    printf("cores_2t %.2f\n", cores2);
    printf("cores_4t %.2f\n", cores4);
    printf("peak_rss_kb %ld\n", peak_rss_kb());
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
