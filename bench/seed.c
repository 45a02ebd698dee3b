/* The original mspace benchmark: N = 10,000 allocations of 1024 bytes (one
 * byte of each written), then the N frees in allocation order, each phase
 * timed with CLOCK_MONOTONIC; R rounds (argv[1], default 200) in one
 * process. Plain malloc/free only: run it under LD_PRELOAD of the allocator
 * to measure. Prints one "name value" line per figure:
 *   cold_malloc_ns  ns per malloc in round 1 (fresh process)
 *   cold_free_ns    ns per free in round 1
 *   warm_malloc_ns  median over rounds 2..R of ns per malloc
 *   warm_free_ns    median over rounds 2..R of ns per free
 *   warm_pair_ns    median over rounds 2..R of (malloc + free phase) / N
 *   peak_rss_kb     getrusage ru_maxrss
 * Build: gcc -O2 -o seed bench/seed.c */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define N 10000
#define SIZE 1024

static char *blocks[N];

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    if (rounds < 2) {
        fprintf(stderr, "usage: %s [rounds >= 2, default 200]\n", argv[0]);
        return 2;
    }
    /* Per-round figures; allocated before any timing. */
    double *mal = calloc((size_t)rounds * 3, sizeof *mal);
    if (!mal) {
        perror("calloc");
        return 1;
    }
    double *fre = mal + rounds, *pair = mal + 2 * rounds;

    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (int i = 0; i < N; i++) {
            char *p = malloc(SIZE);
            if (!p) {
                fprintf(stderr, "malloc(%d) failed in round %d\n", SIZE, r + 1);
                return 1;
            }
            p[0] = (char)i;
            blocks[i] = p;
        }
        /* The compiler must assume the blocks escape and are read: keeps
         * every malloc, write and free in place. */
        __asm__ volatile("" : : "r"(blocks) : "memory");
        double t1 = now_ns();
        for (int i = 0; i < N; i++)
            free(blocks[i]);
        double t2 = now_ns();
        mal[r] = (t1 - t0) / N;
        fre[r] = (t2 - t1) / N;
        pair[r] = (t2 - t0) / N;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("rounds %d\n", rounds);
    printf("cold_malloc_ns %.2f\n", mal[0]);
    printf("cold_free_ns %.2f\n", fre[0]);
    printf("warm_malloc_ns %.2f\n", median(mal + 1, rounds - 1));
    printf("warm_free_ns %.2f\n", median(fre + 1, rounds - 1));
    printf("warm_pair_ns %.2f\n", median(pair + 1, rounds - 1));
    printf("peak_rss_kb %ld\n", ru.ru_maxrss);
    free(mal);
    return 0;
}
