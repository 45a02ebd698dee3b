/* Many live blocks must not use up the kernel's mappings.
 *
 * A process may have at most vm.max_map_count mappings (65530 by default);
 * past that, mmap, mprotect and even munmap (which may split one) fail, and
 * thread creation and dlopen with them. An allocator that spends mappings
 * freely breaks a program long before memory runs out. Here 4 million small
 * blocks (16..64 B) and 3000 large ones (300 KiB..2 MiB) are live at once,
 * then every other large block is freed, the rest are grown and shrunk by
 * realloc, and more small blocks come and go. After each phase the lines of
 * /proc/self/maps are counted; the peak must stay below a tenth of
 * vm.max_map_count, leaving the rest to the program. Blocks up to 2 MiB from
 * malloc live in the ordinary 4 MiB segments, several to a segment, so the
 * 3000 live at once must add no more than a few hundred mappings (one per
 * block would be 3000). A block realloc grows past 128 KiB gets a mapping of
 * its own (mremap then resizes it without copying), so the realloc phase
 * adds about one per grown block. The counts are printed either way. Every
 * block is checked at the end.
 *
 * usage: maps [small blocks = 4000000] [large blocks = 3000]
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../pattern.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long n = 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < got; i++)
            n += buf[i] == '\n';
    fclose(f);
    return n;
}

static long read_number(const char *path, long fallback) {
    FILE *f = fopen(path, "r");
    long v = fallback;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = fallback;
        fclose(f);
    }
    return v;
}

static long peak, baseline;
static void note(const char *phase) {
    long n = count_lines("/proc/self/maps");
    if (n > peak)
        peak = n;
    printf("  %-46s %6ld mappings (%+ld)\n", phase, n, n - baseline);
    fflush(stdout);
}

/* A small block holds its tag in its first word (16 B: nothing else). */
static void stamp_small(unsigned char *p, size_t n, uint64_t tag) {
    *(pattern_word_t *)p = tag;
    fill(p + 8, n - 8, tag);
}
static int small_ok(const unsigned char *p, size_t n) {
    return intact(p + 8, n - 8, *(const pattern_word_t *)p);
}

/* Large blocks: the pattern at each end and in every 64 KiB, so growing and
 * moving are checked without touching every page. */
static void stamp_large(unsigned char *p, size_t n, uint64_t tag) {
    for (size_t off = 0; off + 128 <= n; off += 64 * KiB)
        fill(p + off, 64, tag + off);
    fill(p + n - 64, 64, tag + n);
}
/* The marks of a block of n bytes that lie within its first `kept` bytes. */
static int large_ok(const unsigned char *p, size_t n, uint64_t tag, size_t kept) {
    for (size_t off = 0; off + 128 <= n && off + 64 <= kept; off += 64 * KiB)
        if (!intact(p + off, 64, tag + off))
            return 0;
    return n > kept || intact(p + n - 64, 64, tag + n);
}

static long nulls;

static unsigned char *new_large(size_t *size, long i, uint64_t *rng) {
    size_t n = 300 * KiB + rnd(rng) % (2 * MiB - 300 * KiB + 1);
    unsigned char *p = malloc(n);
    *size = n;
    if (p == NULL)
        nulls++;
    else
        stamp_large(p, n, (uint64_t)i << 32);
    return p;
}

int main(int argc, char **argv) {
    TEST_BEGIN("faults/maps");
    long nsmall = argc > 1 ? atol(argv[1]) : 4000000;
    long nlarge = argc > 2 ? atol(argv[2]) : 3000;
    long max_maps = read_number("/proc/sys/vm/max_map_count", 65530);
    long bound = max_maps / 10;
    uint64_t rng = 2026;

    unsigned char **small = malloc((size_t)nsmall * sizeof *small);
    unsigned char *small_size = malloc((size_t)nsmall);
    unsigned char **large = malloc((size_t)nlarge * sizeof *large);
    size_t *large_size = malloc((size_t)nlarge * sizeof *large_size);
    CHECK("bookkeeping arrays", small && small_size && large && large_size);
    if (!small || !small_size || !large || !large_size)
        return TEST_DONE();
    baseline = count_lines("/proc/self/maps");
    peak = baseline;
    note("at start");

    for (long i = 0; i < nsmall; i++) {
        size_t n = 16 + rnd(&rng) % 49;
        small[i] = malloc(n);
        small_size[i] = (unsigned char)n;
        if (small[i] == NULL) {
            nulls++;
            continue;
        }
        stamp_small(small[i], n, (uint64_t)i);
    }
    note("small blocks live");
    for (long i = 0; i < nlarge; i++)
        large[i] = new_large(&large_size[i], i, &rng);
    note("and large blocks live");
    long with_large = count_lines("/proc/self/maps");

    for (long i = 0; i < nlarge; i += 2) {
        free(large[i]);
        large[i] = NULL;
    }
    note("every other large block freed");
    long bad = 0;
    for (long i = 1; i < nlarge; i += 2) {
        size_t n = i % 4 == 1 ? large_size[i] * 3 / 2 : large_size[i] / 2 + 1;
        unsigned char *q = realloc(large[i], n);
        if (q == NULL) {
            nulls++;
            continue;
        }
        bad += !large_ok(q, large_size[i], (uint64_t)i << 32, n);
        large[i] = q;
        large_size[i] = n;
        stamp_large(q, n, (uint64_t)i << 32);
    }
    note("the others grown x1.5 or shrunk to half");
    for (long i = 0; i < nlarge; i += 2)
        large[i] = new_large(&large_size[i], i, &rng);
    note("freed large blocks allocated again");
    for (long i = 0; i < nsmall; i += 3) {
        if (small[i] && !small_ok(small[i], small_size[i]))
            bad++;
        free(small[i]);
        size_t n = 16 + rnd(&rng) % 49;
        small[i] = malloc(n);
        small_size[i] = (unsigned char)n;
        if (small[i])
            stamp_small(small[i], n, (uint64_t)i);
        else
            nulls++;
    }
    note("a third of the small blocks replaced");

    for (long i = 0; i < nlarge; i++) {
        if (large[i] && !large_ok(large[i], large_size[i], (uint64_t)i << 32, large_size[i]))
            bad++;
        free(large[i]);
    }
    for (long i = 0; i < nsmall; i++) {
        if (small[i] && !small_ok(small[i], small_size[i]))
            bad++;
        free(small[i]);
    }
    note("everything freed");

    printf("faults/maps: %ld small + %ld large blocks: peak %ld mappings (%ld at start, %ld with "
           "all blocks live: %.2f per large block); bound %ld = vm.max_map_count %ld / 10\n",
           nsmall, nlarge, peak, baseline, with_large,
           (double)(with_large - baseline) / (double)nlarge, bound, max_maps);
    long live_bound = 300 + nlarge / 100;
    if (with_large - baseline >= live_bound)
        fprintf(stderr, "  detail: %ld mappings added by %ld live blocks of 300 KiB..2 MiB\n",
                with_large - baseline, nlarge);
    CHECK("blocks up to 2 MiB share segments: a few hundred mappings at most for all of them",
          with_large - baseline < live_bound);
    CHECK("no allocation returned NULL", nulls == 0);
    CHECK("every block intact", bad == 0);
    if (peak >= bound)
        fprintf(stderr, "  detail: %ld mappings at the peak\n", peak);
    CHECK("mappings stay below a tenth of vm.max_map_count", peak < bound);
    free(small);
    free(small_size);
    free(large);
    free(large_size);
    return TEST_DONE();
}
