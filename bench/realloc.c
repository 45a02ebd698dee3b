/* Realloc growth: buffers built up to MAX bytes (default 32 MiB) the way
 * string builders and vectors grow them, every new byte written (memset)
 * so the work is real:
 *   doubling     realloc to 64 B, 128 B, ... MAX (20 reallocs), DOUBLING
 *                buffers (default 20)
 *   small steps  realloc to STEP (4 KiB), 2 STEP, ... MAX (8192 reallocs),
 *                STEPS buffers (default 8)
 * Each buffer is freed when it reaches MAX. An allocator that copies on
 * every growth step pays MAX^2 / (2 STEP) bytes of memcpy per small-step
 * buffer (128 GiB at 32 MiB / 4 KiB); one that grows in place or moves
 * pages with mremap pays about the same as for doubling.
 *
 *   realloc [DOUBLING [STEPS [MAX_MIB [STEP_KIB]]]]
 *
 * Prints:
 *   ms_doubling      wall ms per buffer grown by doubling
 *   ms_small_steps   wall ms per buffer grown by STEP
 *   moves_small_steps  reallocs per small-step buffer that returned a new
 *                    address (moved by copying or by mremap alike)
 *   peak_rss_kb      getrusage ru_maxrss
 * Build: gcc -O2 -o realloc bench/realloc.c */
#include "bench.h" /* first: it defines _GNU_SOURCE */
#include <string.h>

static char *grow(char *p, size_t old, size_t size, long *moves) {
    char *q = realloc(p, size);
    if (!q) {
        fprintf(stderr, "realloc(%zu) failed\n", size);
        exit(1);
    }
    if (q != p && p)
        ++*moves;
    memset(q + old, (int)(size >> 12) + 1, size - old);
    escape(q);
    return q;
}

int main(int argc, char **argv) {
    long doubling = arg_count(argc, argv, 1, 20);
    long steps = arg_count(argc, argv, 2, 8);
    size_t max = (size_t)arg_count(argc, argv, 3, 32) << 20;
    size_t step = (size_t)arg_count(argc, argv, 4, 4) << 10;
    long moves = 0;
    uint64_t sum = 0;

    double t0 = now_ns();
    for (long r = 0; r < doubling; r++) {
        char *p = NULL;
        size_t size = 0;
        for (size_t next = 64; next <= max; next *= 2) {
            p = grow(p, size, next, &moves);
            size = next;
        }
        sum += (unsigned char)p[size - 1];
        free(p);
    }
    double t1 = now_ns();
    moves = 0;
    for (long r = 0; r < steps; r++) {
        char *p = NULL;
        size_t size = 0;
        for (size_t next = step; next <= max; next += step) {
            p = grow(p, size, next, &moves);
            size = next;
        }
        sum += (unsigned char)p[size - 1];
        free(p);
    }
    double t2 = now_ns();

    printf("max_kb %zu\n", max >> 10);
    printf("step_kb %zu\n", step >> 10);
    printf("ms_doubling %.2f\n", (t1 - t0) / 1e6 / (double)doubling);
    printf("ms_small_steps %.2f\n", (t2 - t1) / 1e6 / (double)steps);
    printf("moves_small_steps %.1f\n", (double)moves / (double)steps);
    printf("peak_rss_kb %ld\n", peak_rss_kb());
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
