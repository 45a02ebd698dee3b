/* Churn, one thread: a working set of LIVE blocks (default 4096) of
 * random sizes; PAIRS times (default 10,000,000) a random block is freed
 * (its first byte read first) and replaced by a new block of random size
 * (first and last byte written). Fixed seed: every allocator gets the same
 * sequence of requests. Sizes are uniform in 16..512 bytes, or with MIN
 * and OCTAVES a random one of OCTAVES doublings from MIN and uniform
 * within it (1024 6: 1 KiB to 64 KiB, each doubling as common).
 *
 *   churn [PAIRS [LIVE [MIN OCTAVES]]]
 *
 * Prints:
 *   pairs, live       the parameters
 *   ns_per_pair       wall time of the PAIRS loop / PAIRS (filling the
 *                     working set before and freeing it after not counted)
 *   peak_rss_kb       getrusage ru_maxrss
 * Build: gcc -O2 -o churn bench/churn.c */
#include "bench.h"

int main(int argc, char **argv) {
    long pairs = arg_count(argc, argv, 1, 10000000);
    uint32_t live = (uint32_t)arg_count(argc, argv, 2, 4096);
    if (argc > 3) {
        churn_min = (size_t)arg_count(argc, argv, 3, CHURN_MIN);
        churn_octaves = (unsigned)arg_count(argc, argv, 4, 1);
    }
    uint64_t rng = 0x5eed;
    char **slots = xmalloc(live * sizeof *slots);

    churn_fill(slots, live, &rng);
    double t0 = now_ns();
    uint64_t sum = churn_loop(slots, live, pairs, &rng);
    double t1 = now_ns();
    churn_drain(slots, live);
    free(slots);

    printf("pairs %ld\n", pairs);
    printf("live %u\n", live);
    printf("ns_per_pair %.2f\n", (t1 - t0) / (double)pairs);
    printf("peak_rss_kb %ld\n", peak_rss_kb());
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
