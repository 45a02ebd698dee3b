/* Blocks of 256 KiB .. 2 MiB from malloc share the ordinary segments.
 *
 * Each such block used to get a kernel mapping of its own, so a program with
 * thousands of them ran into vm.max_map_count. Now they live in 4 MiB
 * segments, one block per span: 1 MiB blocks must come several to a 4 MiB
 * region and add far fewer mappings than blocks, be fully usable without
 * overlapping, be reused after free, read zero from calloc even when the
 * memory was dirty, keep their contents through realloc, honour 64 KiB
 * alignment, and give their pages back (RSS) after malloc_trim.
 * Needs mspace: glibc maps 1 MiB blocks one by one.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "../pattern.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define N 64

static long count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int main(void) {
    TEST_BEGIN("api/medium_blocks");
    unsigned char *b[N];
    long maps0 = count_maps();
    for (int i = 0; i < N; i++)
        b[i] = malloc(MiB);
    long maps1 = count_maps();
    int got = 1, usable = 1;
    for (int i = 0; i < N; i++) {
        got &= b[i] != NULL;
        usable &= b[i] && malloc_usable_size(b[i]) >= MiB;
    }
    CHECK("64 blocks of 1 MiB", got);
    if (!got)
        return TEST_DONE();
    CHECK("usable size >= 1 MiB", usable);

    /* Several to a 4 MiB-aligned region: at most N / 2 regions for N blocks. */
    int regions = 0;
    for (int i = 0; i < N; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = ((uintptr_t)b[j] >> 22) == ((uintptr_t)b[i] >> 22);
        regions += !seen;
    }
    printf("  %d blocks of 1 MiB in %d 4 MiB regions; %ld mappings added\n", N, regions,
           maps1 - maps0);
    CHECK("1 MiB blocks share 4 MiB regions (at most one region per two blocks)",
          regions <= N / 2);
    /* The hardened build splits each segment into four mappings (two guard
     * pages); still per segment, not per block. */
    const char *preload = getenv("LD_PRELOAD");
    int hardened = preload && strstr(preload, "secure") != NULL;
    if (hardened)
        CHECK("hardened: at most four mappings per 4 MiB region", maps1 - maps0 <= 4 * regions);
    else
        CHECK("fewer mappings than blocks (not one mapping each)", maps1 - maps0 < N / 2);

    /* Every byte writable, no two blocks overlapping. */
    for (int i = 0; i < N; i++)
        fill(b[i], malloc_usable_size(b[i]), (uint64_t)i * 77 + 1);
    int kept = 1;
    for (int i = 0; i < N; i++)
        kept &= intact(b[i], malloc_usable_size(b[i]), (uint64_t)i * 77 + 1);
    CHECK("every byte of every block written and read back (no overlap)", kept);

    /* Freed blocks are reused; calloc of dirty memory still reads zero. */
    unsigned char *old[N];
    memcpy(old, b, sizeof old);
    for (int i = 0; i < N; i++)
        free(b[i]);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        b[i] = calloc(1, MiB);
        for (int j = 0; j < N && b[i]; j++)
            if (b[i] == old[j]) {
                reused++;
                break;
            }
    }
    int zero = 1;
    for (int i = 0; i < N; i++)
        zero &= b[i] && all_zero(b[i], MiB);
    CHECK("freed 1 MiB blocks are reused (at least half of them)", reused >= N / 2);
    CHECK("calloc of reused 1 MiB blocks reads zero", zero);

    /* realloc keeps the contents, growing (to a mapping of its own) and
     * shrinking. */
    fill(b[0], MiB, 4242);
    unsigned char *g = realloc(b[0], 3 * MiB / 2);
    CHECK("realloc 1 -> 1.5 MiB keeps the contents", g && intact(g, MiB, 4242));
    if (g) {
        fill(g, 3 * MiB / 2, 4343);
        b[0] = g;
    }
    unsigned char *s = realloc(b[0], 400 * KiB);
    CHECK("realloc 1.5 MiB -> 400 KiB keeps the contents", s && intact(s, 400 * KiB, 4343));
    if (s)
        b[0] = s;

    /* 64 KiB alignment is served from the segments too. */
    void *a = NULL;
    int rc = posix_memalign(&a, 64 * KiB, MiB);
    CHECK("posix_memalign(64 KiB, 1 MiB) aligned and usable",
          rc == 0 && ((uintptr_t)a & (64 * KiB - 1)) == 0 && malloc_usable_size(a) >= MiB);
    if (a)
        memset(a, 0x11, MiB);
    free(a);

    /* Touched, freed, trimmed: the pages go back to the kernel. */
    for (int i = 0; i < N; i++)
        memset(b[i], 0x5c, malloc_usable_size(b[i]));
    size_t rss_live = rss_bytes();
    for (int i = 0; i < N; i++)
        free(b[i]);
    malloc_trim(0);
    size_t rss_trimmed = rss_bytes();
    printf("  RSS %zu KiB with the blocks live, %zu KiB after free + malloc_trim\n",
           rss_live / KiB, rss_trimmed / KiB);
    CHECK("free + malloc_trim gives back at least 48 of the 64 MiB",
          rss_live > rss_trimmed && rss_live - rss_trimmed >= 48 * MiB);
    return TEST_DONE();
}
