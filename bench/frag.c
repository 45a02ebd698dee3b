/* Large blocks and fragmentation: a long-running mixed workload, then the
 * program frees most of its memory and we look at what the allocator gives
 * back to the OS.
 *
 * CYCLES times (default 3): a build phase, then the frees.
 *
 * Build phase, STEPS steps (default 200,000). Each step first frees the
 * blocks whose lifetime ends at this step, then mallocs one block and
 * writes all of it (blocks of 1 MiB and more: one byte per 4 KiB page):
 *   size      85% small 16..512 B, 14.9% medium 513 B..64 KiB (about
 *             log-uniform),
 *             0.1% large 1..4 MiB
 *   lifetime  50% short (1..64 steps), 25% medium (64..8192 steps),
 *             23% retained until the end of the build phase, 2% long-lived
 *             (small and medium blocks only: kept to the end of the program)
 * Then every block but the long-lived ones is freed (about 95% of the bytes
 * live at the end of the build phase); the long-lived blocks, allocated all
 * through the run, are scattered over the heap and pin whatever holds them.
 * The next cycle builds up again on that fragmented heap: peak RSS shows
 * how well freed memory is reused, RSS after the last cycle's frees (with
 * CYCLES x ~3% of one cycle's peak still live) what went back to the OS.
 * Fixed seed: every allocator gets the same requests. No malloc_trim.
 *
 *   frag [STEPS [CYCLES]]
 *
 * Prints (RSS from /proc/self/statm, KiB):
 *   ms_total                   wall time of all cycles (build phases and
 *                              frees)
 *   peak_live_kb               most bytes the program had live at once
 *   kept_kb                    bytes of the long-lived blocks still live
 *   rss_start_kb               RSS before the first block
 *   peak_rss_kb                getrusage ru_maxrss
 *   rss_after_free_kb          RSS right after the last cycle's frees
 *   rss_after_free_settled_kb  RSS after a further 0.3 s sleep and then a
 *                              burst of 1,000 small malloc/free pairs (lets
 *                              allocators that return memory after a delay,
 *                              on their next activity, do so)
 * Build: gcc -O2 -o frag bench/frag.c */
#include "bench.h" /* first: it defines _GNU_SOURCE */
#include <string.h>

#define WHEEL 16384 /* > longest timed lifetime */
#define PAGE 4096

/* A block with a timed lifetime is threaded through itself on the list of
 * the step it dies at: first word the next block, second word its size. */
struct block {
    struct block *next;
    size_t size;
};

static struct block *wheel[WHEEL];
static size_t live_bytes, peak_live;

static size_t pick_size(uint64_t *rng) {
    uint32_t u = rng_below(rng, 1000);
    if (u < 850)
        return 16 + rng_below(rng, 512 - 16 + 1);
    if (u < 999) {
        /* about log-uniform in [513, 65536]: a random octave, then a
         * uniform size within it */
        size_t lo = (size_t)513 << rng_below(rng, 7);
        size_t n = lo + rng_below(rng, (uint32_t)lo);
        return n > 65536 ? 65536 : n;
    }
    return ((size_t)1 << 20) + rng_below(rng, 3u << 20);
}

static void *get(size_t size) {
    char *p = xmalloc(size);
    if (size >= ((size_t)1 << 20)) {
        for (size_t i = 0; i < size; i += PAGE)
            p[i] = (char)i;
        p[size - 1] = 1;
    } else {
        memset(p, (int)size, size);
    }
    escape(p);
    live_bytes += size;
    if (live_bytes > peak_live)
        peak_live = live_bytes;
    return p;
}

static void put(void *p, size_t size) {
    live_bytes -= size;
    free(p);
}

int main(int argc, char **argv) {
    long steps = arg_count(argc, argv, 1, 200000);
    long cycles = arg_count(argc, argv, 2, 3);
    uint64_t rng = 0xf4a6;
    /* Bookkeeping for untimed blocks (retained, long-lived): allocated
     * before the start figure, touched only as it fills. */
    void **retained = xmalloc((size_t)steps * sizeof *retained);
    size_t *retained_size = xmalloc((size_t)steps * sizeof *retained_size);
    void **kept = xmalloc((size_t)(steps * cycles) * sizeof *kept);
    size_t *kept_size = xmalloc((size_t)(steps * cycles) * sizeof *kept_size);
    long n_kept = 0;
    long rss_start = rss_now_kb();

    double t0 = now_ns();
    for (long cycle = 0; cycle < cycles; cycle++) {
        long n_retained = 0;
        for (long step = 0; step < steps; step++) {
            struct block *b = wheel[step % WHEEL];
            wheel[step % WHEEL] = NULL;
            while (b) {
                struct block *next = b->next;
                put(b, b->size);
                b = next;
            }
            size_t size = pick_size(&rng);
            uint32_t life = rng_below(&rng, 100);
            void *p = get(size);
            if (life < 75) {
                long dies = step + (life < 50 ? 1 + (long)rng_below(&rng, 64)
                                              : 64 + (long)rng_below(&rng, 8192 - 64 + 1));
                b = p;
                b->size = size;
                b->next = wheel[dies % WHEEL];
                wheel[dies % WHEEL] = b;
            } else if (life < 98 || size >= ((size_t)1 << 20)) {
                retained[n_retained] = p;
                retained_size[n_retained++] = size;
            } else {
                kept[n_kept] = p;
                kept_size[n_kept++] = size;
            }
        }
        /* Free everything but the long-lived blocks. */
        for (long i = 0; i < WHEEL; i++) {
            struct block *b = wheel[i];
            wheel[i] = NULL;
            while (b) {
                struct block *next = b->next;
                put(b, b->size);
                b = next;
            }
        }
        for (long i = 0; i < n_retained; i++)
            put(retained[i], retained_size[i]);
    }
    double t1 = now_ns();
    long rss_after = rss_now_kb();
    size_t kept_bytes = live_bytes;

    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 1000; i++) {
        size_t size = 16 + rng_below(&rng, 512 - 16 + 1);
        char *p = xmalloc(size);
        p[0] = p[size - 1] = (char)i;
        escape(p);
        free(p);
    }
    long rss_settled = rss_now_kb();

    uint64_t sum = 0;
    for (long i = 0; i < n_kept; i++) {
        sum += ((unsigned char *)kept[i])[kept_size[i] - 1];
        put(kept[i], kept_size[i]);
    }
    free(retained);
    free(retained_size);
    free(kept);
    free(kept_size);

    printf("steps %ld\n", steps);
    printf("cycles %ld\n", cycles);
    printf("ms_total %.2f\n", (t1 - t0) / 1e6);
    printf("peak_live_kb %zu\n", peak_live >> 10);
    printf("kept_kb %zu\n", kept_bytes >> 10);
    printf("kept_blocks %ld\n", n_kept);
    printf("rss_start_kb %ld\n", rss_start);
    printf("peak_rss_kb %ld\n", peak_rss_kb());
    printf("rss_after_free_kb %ld\n", rss_after);
    printf("rss_after_free_settled_kb %ld\n", rss_settled);
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
