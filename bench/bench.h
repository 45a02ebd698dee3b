/* Helpers shared by the benchmark programs in bench/. Each program is plain
 * malloc/free/realloc (and pthreads), run under LD_PRELOAD of the allocator
 * being measured, and prints one "name value" line per figure.
 *
 * Nothing here allocates: RSS is read from /proc with open/read into a stack
 * buffer, so measuring does not disturb what is measured. */
#ifndef MSPACE_BENCH_H
#define MSPACE_BENCH_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* splitmix64: a fixed seed gives the same sequence on every run, so every
 * allocator sees exactly the same requests in the same order. */
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) from the high bits (no division on the hot path). */
static inline uint32_t rng_below(uint64_t *state, uint32_t n) {
    return (uint32_t)(((rng_next(state) >> 32) * (uint64_t)n) >> 32);
}

/* The compiler must assume p escapes and its memory is read and written:
 * keeps every malloc, write and free in place (no elided pairs). */
static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* Peak resident set of the whole process so far (getrusage), KiB. */
static inline long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* CPU time (user + system) of all the process's threads so far, ns. Over
 * a phase's wall time it says how many cores the process really had: on a
 * shared machine, a 2-thread phase that got ~1.0 ran on one core. */
static inline double cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
}

/* Resident set now, from /proc/self/statm (second field, in pages), KiB. */
static inline long rss_now_kb(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = buf;
    strtol(p, &p, 10);                 /* size */
    long resident = strtol(p, NULL, 10); /* resident */
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* argv[i] as a positive count, or the default. */
static inline long arg_count(int argc, char **argv, int i, long def) {
    if (argc <= i)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v <= 0) {
        fprintf(stderr, "%s: argument %d must be a positive number, not '%s'\n", argv[0], i, argv[i]);
        exit(2);
    }
    return v;
}

static inline void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        exit(1);
    }
    return p;
}

/* The churn kernel shared by churn.c and threads.c: a working set of
 * `live` blocks of random sizes; each pair frees a random one (after
 * reading its first byte) and puts a new random-size block in its place,
 * writing its first and last byte. Sizes are uniform in 16..512 bytes
 * (small churn), unless churn_octaves is set: then a random one of that
 * many doublings from churn_min, and a uniform size within it (medium
 * churn: buffers, strings and pages, where each doubling is as common). */
#define CHURN_MIN 16
#define CHURN_MAX 512
static size_t churn_min = CHURN_MIN;
static unsigned churn_octaves;

static inline size_t churn_size(uint64_t r) {
    if (churn_octaves == 0)
        return CHURN_MIN + (uint32_t)r % (CHURN_MAX - CHURN_MIN + 1);
    size_t low = churn_min << ((uint32_t)(r >> 16) % churn_octaves);
    return low + (uint32_t)r % low;
}

static inline char *churn_new(uint64_t r) {
    size_t n = churn_size(r);
    char *p = malloc(n);
    if (__builtin_expect(p == NULL, 0)) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        exit(1);
    }
    p[0] = (char)n;
    p[n - 1] = (char)r;
    return p;
}

static inline void churn_fill(char **slots, uint32_t live, uint64_t *rng) {
    for (uint32_t i = 0; i < live; i++)
        slots[i] = churn_new(rng_next(rng));
    escape(slots);
}

/* `pairs` free+malloc pairs; returns a checksum so the reads stay. */
static inline uint64_t churn_loop(char **slots, uint32_t live, long pairs, uint64_t *rng) {
    uint64_t sum = 0;
    for (long i = 0; i < pairs; i++) {
        uint64_t r = rng_next(rng);
        uint32_t k = (uint32_t)(((r >> 32) * live) >> 32);
        sum += (unsigned char)slots[k][0];
        free(slots[k]);
        slots[k] = churn_new(r);
        escape(slots[k]);
    }
    return sum;
}

static inline void churn_drain(char **slots, uint32_t live) {
    for (uint32_t i = 0; i < live; i++)
        free(slots[i]);
}

#endif
