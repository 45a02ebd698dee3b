/* Cross-thread frees: a producer thread mallocs BLOCKS (default 4,000,000)
 * 64-byte blocks, writes a sequence number into each and hands it over
 * through a bounded single-producer/single-consumer ring of QUEUE slots
 * (default 1024); a consumer thread reads the number and frees the block.
 * Every free is of a block another thread allocated, which allocators with
 * per-thread caches handle in very different ways (remote free lists,
 * returning blocks to a shared pool, or letting the consumer's cache grow).
 * Each side publishes its ring index every 64 blocks and before it waits;
 * a full or empty ring is waited on by spinning a little, then yielding.
 * With two or more CPUs allowed, the two threads are pinned to two different
 * ones: every hand-over then crosses cores, as it does when both run at once.
 * Left to the scheduler on a busy machine, they sometimes share one core,
 * the ring fills and empties in turns, and the run is several times faster
 * for reasons that have nothing to do with the allocator.
 *
 *   xthread [BLOCKS [QUEUE]]
 *
 * Prints:
 *   ms_per_million   wall time from start to both threads done / millions of
 *                    blocks handed over
 *   ring_fill        blocks in the ring on average (sampled by the producer
 *                    every 256 blocks): which side is the slower one. Low,
 *                    the consumer keeps up and waits for blocks (malloc is
 *                    the bottleneck); near QUEUE, the producer waits for room
 *                    (the cross-thread frees are)
 *   pinned           1 if the threads were pinned to two CPUs
 *   cores            CPU time / wall time: ~2 when producer and consumer
 *                    both ran all the time (the waiting side spins); less
 *                    when other work on the machine took one of the cores
 *   rss_end_kb       resident set after both threads finished
 *   peak_rss_kb      getrusage ru_maxrss
 * Build: gcc -O2 -pthread -o xthread bench/xthread.c */
#include "bench.h" /* first: it defines _GNU_SOURCE */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define SIZE 64
/* Each side makes its index visible every PUBLISH blocks, and before it
 * waits: the hand-over costs a cache-line transfer per batch rather than
 * per block, so the allocator's share of the time is larger and steadier. */
#define PUBLISH 64

static long blocks;
static size_t queue_size, mask;
static char **ring;
/* Producer and consumer indices on their own cache lines. */
static _Alignas(64) _Atomic size_t tail; /* next slot the producer fills */
static _Alignas(64) _Atomic size_t head; /* next slot the consumer empties */
static _Alignas(64) uint64_t consumer_sum;

static void wait_a_little(unsigned *spins) {
    if (++*spins < 64)
        __builtin_ia32_pause();
    else {
        sched_yield();
        *spins = 0;
    }
}

/* The CPUs this process may run on, or -1s. */
static int cpu_a = -1, cpu_b = -1;

static void pick_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set))
        return;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        if (cpu_a < 0)
            cpu_a = c;
        else {
            cpu_b = c;
            return;
        }
    }
    cpu_a = -1; /* only one: leave placement to the scheduler */
}

static uint64_t fill_sum, fill_samples; /* the producer's samples of t - head */

static void *produce(void *arg) {
    size_t t = 0, h = 0, published = 0;
    for (long i = 0; i < blocks; i++) {
        char *p = malloc(SIZE);
        if (!p) {
            fprintf(stderr, "malloc(%d) failed\n", SIZE);
            exit(1);
        }
        *(uint64_t *)p = (uint64_t)i;
        p[SIZE - 1] = (char)i;
        unsigned spins = 0;
        while (t - h >= queue_size) {
            if (published != t)
                atomic_store_explicit(&tail, published = t, memory_order_release);
            h = atomic_load_explicit(&head, memory_order_acquire);
            if (t - h >= queue_size)
                wait_a_little(&spins);
        }
        if ((i & 255) == 0) {
            fill_sum += t - atomic_load_explicit(&head, memory_order_relaxed);
            fill_samples++;
        }
        ring[t & mask] = p;
        if ((++t & (PUBLISH - 1)) == 0)
            atomic_store_explicit(&tail, published = t, memory_order_release);
    }
    atomic_store_explicit(&tail, t, memory_order_release);
    return arg;
}

static void *consume(void *arg) {
    size_t h = 0, t = 0, published = 0;
    uint64_t sum = 0;
    for (long i = 0; i < blocks; i++) {
        unsigned spins = 0;
        while (h == t) {
            if (published != h)
                atomic_store_explicit(&head, published = h, memory_order_release);
            t = atomic_load_explicit(&tail, memory_order_acquire);
            if (h == t)
                wait_a_little(&spins);
        }
        char *p = ring[h & mask];
        sum += *(uint64_t *)p + (unsigned char)p[SIZE - 1];
        free(p);
        if ((++h & (PUBLISH - 1)) == 0)
            atomic_store_explicit(&head, published = h, memory_order_release);
    }
    consumer_sum = sum;
    return arg;
}

int main(int argc, char **argv) {
    blocks = arg_count(argc, argv, 1, 4000000);
    queue_size = (size_t)arg_count(argc, argv, 2, 1024);
    if (queue_size & (queue_size - 1)) {
        fprintf(stderr, "%s: QUEUE must be a power of two\n", argv[0]);
        return 2;
    }
    mask = queue_size - 1;
    ring = xmalloc(queue_size * sizeof *ring);

    pthread_t producer, consumer;
    pthread_attr_t attr_a, attr_b;
    pick_cpus();
    pthread_attr_init(&attr_a);
    pthread_attr_init(&attr_b);
    int pinned = 0;
    if (cpu_a >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu_a, &set);
        pinned = pthread_attr_setaffinity_np(&attr_a, sizeof set, &set) == 0;
        CPU_ZERO(&set);
        CPU_SET(cpu_b, &set);
        pinned &= pthread_attr_setaffinity_np(&attr_b, sizeof set, &set) == 0;
    }
    double t0 = now_ns(), c0 = cpu_ns();
    if (pthread_create(&consumer, &attr_a, consume, NULL) || pthread_create(&producer, &attr_b, produce, NULL)) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(producer, NULL);
    pthread_join(consumer, NULL);
    double t1 = now_ns(), c1 = cpu_ns();
    long rss_end = rss_now_kb();
    free(ring);

    printf("blocks %ld\n", blocks);
    printf("queue %zu\n", queue_size);
    printf("ms_per_million %.2f\n", (t1 - t0) / 1e6 / ((double)blocks / 1e6));
    printf("ring_fill %.0f\n", fill_samples ? (double)fill_sum / (double)fill_samples : 0.0);
    printf("pinned %d\n", pinned);
    printf("cores %.2f\n", (c1 - c0) / (t1 - t0));
    printf("rss_end_kb %ld\n", rss_end);
    printf("peak_rss_kb %ld\n", peak_rss_kb());
    printf("checksum %llu\n", (unsigned long long)consumer_sum);
    return 0;
}
