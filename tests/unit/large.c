/* Large blocks (core/large.[ch] through ms_alloc/ms_realloc/ms_free): sizes
 * above MS_MEDIUM_MAX (and realloc above MS_SMALL_MAX) get a mapping of their own, fresh (zero) and fully
 * usable; realloc resizes the mapping with mremap (in place or moved, never
 * copied) and keeps the contents; any power-of-two alignment up to 2^45 is
 * honoured (from 4 MiB up the block sits one segment above its header) and
 * larger ones fail with ENOMEM; free unmaps. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../harness.h"
#include "alloc.h"
#include "large.h"
#include "stats.h"
#include "usage.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static heap_t *h;

static ms_stats_t stats(void) {
    ms_stats_t s;
    ms_stats_read(&s);
    return s;
}

static int all_zero(const unsigned char *p, size_t n) {
    static const unsigned char zero[64 * 1024];
    while (n > 0) {
        size_t k = n < sizeof zero ? n : sizeof zero;
        if (memcmp(p, zero, k) != 0)
            return 0;
        p += k;
        n -= k;
    }
    return 1;
}

/* Marks the first and last byte of each MiB (and of the block). */
static void mark(unsigned char *p, size_t size, unsigned salt) {
    for (size_t m = 0; m < size; m += MiB) {
        size_t last = (m + MiB <= size ? m + MiB : size) - 1;
        p[m] = (unsigned char)(m / MiB * 7 + salt);
        p[last] = (unsigned char)(m / MiB * 13 + salt + 1);
    }
}
static int marked(const unsigned char *p, size_t size, unsigned salt) {
    for (size_t m = 0; m < size; m += MiB) {
        size_t last = (m + MiB <= size ? m + MiB : size) - 1;
        if (p[m] != (unsigned char)(m / MiB * 7 + salt) ||
            p[last] != (unsigned char)(m / MiB * 13 + salt + 1))
            return 0;
    }
    return 1;
}

static void test_sizes(void) {
    const size_t sizes[] = {MS_MEDIUM_MAX + 1, MS_MEDIUM_MAX + 16, 3 * MiB - 5, 3 * MiB, 3 * MiB + 1,
                            4 * MiB - 8 * KiB, 4 * MiB, 5 * MiB + 3, 33 * MiB};
    int aligned = 1, fits = 1, tight = 1, kind = 1, zero = 1, writable = 1, mapped = 1,
        counted = 1, freed = 1, usage_ok = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t size = sizes[i];
        ms_heap_trim_all(); /* empty the large-block cache: a fresh mapping */
        ms_stats_t s0 = stats();
        ms_usage_t u0, u1;
        ms_usage_collect(&u0);
        unsigned char *p = ms_alloc(h, size, 0);
        if (p == NULL) {
            CHECK("large: allocation succeeds", 0);
            continue;
        }
        ms_stats_t s1 = stats();
        ms_usage_collect(&u1);
        size_t usable = ms_usable_size(p, "test");
        segment_t *segment = ms_segment_of(p);
        aligned &= ((uintptr_t)p % MS_OS_PAGE) == 0;
        fits &= usable >= size;
        tight &= usable - size < MS_OS_PAGE;
        kind &= segment != NULL && segment->kind == SEGMENT_LARGE && segment->large_block == p;
        counted &= s1.large_blocks == s0.large_blocks + 1 && s1.large_allocs == s0.large_allocs + 1 &&
                   s1.spans_created == s0.spans_created && s1.segments == s0.segments;
        mapped &= segment != NULL && s1.bytes_mapped - s0.bytes_mapped == segment->mapped_size &&
                  segment->mapped_size >= size;
        usage_ok &= segment != NULL && u1.large_blocks == u0.large_blocks + 1 &&
                    u1.large_mapped - u0.large_mapped == segment->mapped_size;
        zero &= all_zero(p, usable);
        memset(p, 0xcd, usable);
        writable &= p[0] == 0xcd && p[usable - 1] == 0xcd && p[usable / 2] == 0xcd;
        size_t block_mapped = segment ? segment->mapped_size : 0;
        ms_free(p, "free");
        ms_stats_t s2 = stats();
        /* Freed: unknown to free() at once; its mapping waits in the cache
         * (if small enough to be kept) until a collection unmaps it. */
        freed &= s2.large_blocks == s0.large_blocks && ms_segment_of(p) == NULL &&
                 (s2.large_cached - s0.large_cached == block_mapped ||
                  (block_mapped > 16 * MiB && s2.bytes_mapped == s0.bytes_mapped));
        ms_heap_trim_all();
        freed &= stats().bytes_mapped == s0.bytes_mapped && stats().large_cached == 0;
    }
    CHECK("large: page aligned (hence 16-aligned)", aligned);
    CHECK("large: usable >= size", fits);
    CHECK("large: usable < size + a page", tight);
    CHECK("large: a large segment holding exactly the block", kind);
    CHECK("large: counted as a large block, no span or small segment", counted);
    CHECK("large: bytes_mapped grows by the mapping", mapped);
    CHECK("large: usage sees the block", usage_ok);
    CHECK("large: fresh block reads zero (calloc relies on it)", zero);
    CHECK("large: whole usable size writable", writable);
    CHECK("large: free caches the mapping, a collection unmaps it (address unknown at once)",
          freed);

    /* Freed and allocated again: the cached mapping comes back with its
     * pages, dirty for malloc, zeroed for calloc. */
    unsigned char *a = ms_alloc(h, 3 * MiB, 0);
    memset(a, 0xee, 3 * MiB);
    ms_free(a, "free");
    ms_stats_t r0 = stats();
    unsigned char *b = ms_alloc(h, 3 * MiB, 0);
    CHECK("large: the cached block is reused (same address, nothing mapped)",
          b == a && stats().large_reused == r0.large_reused + 1 && stats().os_maps == r0.os_maps);
    ms_free(b, "free");
    unsigned char *c = ms_calloc_large(3 * MiB);
    CHECK("large: calloc of a reused block reads zero",
          c == a && all_zero(c, 3 * MiB) && stats().large_reused == r0.large_reused + 2);
    memset(c, 0x5a, 3 * MiB);
    ms_free(c, "free");
    ms_stats_t r1 = stats();
    unsigned char *d = ms_alloc(h, 16 * MiB, 0);
    int kept = 1;
    for (size_t i = 0; i < 2 * MiB; i += 4096)
        kept &= d[i] == 0x5a;
    memset(d, 1, 16 * MiB);
    CHECK("large: a bigger request grows a cached block, keeping its resident pages",
          stats().large_reused == r1.large_reused + 1 && kept &&
              ms_usable_size(d, "test") >= 16 * MiB);
    ms_free(d, "free");
    unsigned char *e = ms_alloc(h, 3 * MiB, 0);
    CHECK("large: a smaller request trims a bigger cached block",
          e == d && stats().large_reused == r1.large_reused + 2 &&
              stats().bytes_mapped < r1.bytes_mapped + 4 * MiB);
    ms_free(e, "free");
    ms_heap_trim_all();
}

static void test_grow(void) {
    size_t size = 3 * MiB; /* realloc would move a smaller (medium) block out first */
    unsigned char *p = ms_alloc(h, size, 0);
    mark(p, size, 1);
    ms_stats_t s0 = stats();
    int kept = 1, remapped = 1, usable_ok = 1, mapped_ok = 1;
    for (size_t target = 4 * MiB; target <= 64 * MiB; target += MiB) {
        uint64_t remaps = stats().large_remaps;
        unsigned char *q = ms_realloc(h, p, target);
        if (q == NULL) {
            kept = 0;
            break;
        }
        remapped &= stats().large_remaps <= remaps + 1; /* 0 when slack from a move fits */
        kept &= marked(q, size, 1);
        usable_ok &= ms_usable_size(q, "test") >= target;
        segment_t *segment = ms_segment_of(q);
        mapped_ok &= segment && segment->kind == SEGMENT_LARGE && segment->large_block == q;
        p = q;
        size = target;
        mark(p, size, 1); /* the new MiB gets its marks too */
    }
    ms_stats_t s1 = stats();
    CHECK("grow 3 -> 64 MiB: contents kept (first/last byte of each MiB)", kept);
    CHECK("grow: each step takes at most one mremap", remapped);
    CHECK("grow: usable follows", usable_ok);
    CHECK("grow: the block stays a registered large block", mapped_ok);
    CHECK("grow: no extra large block made (no malloc+copy)",
          s1.large_allocs == s0.large_allocs && s1.large_blocks == s0.large_blocks);
    CHECK("grow: bytes_mapped ~ 61 MiB more", s1.bytes_mapped - s0.bytes_mapped >= 61 * MiB &&
                                                 s1.bytes_mapped - s0.bytes_mapped <= 70 * MiB);

    /* Shrink in place: same address, contents kept, the tail unmapped. */
    unsigned char *q = ms_realloc(h, p, 2 * MiB);
    ms_stats_t s2 = stats();
    CHECK("shrink 64 -> 2 MiB: same address", q == p);
    CHECK("shrink: contents kept", q && marked(q, 2 * MiB, 1));
    CHECK("shrink: tail unmapped", s1.bytes_mapped - s2.bytes_mapped >= 61 * MiB);
    CHECK("shrink: usable follows", q && ms_usable_size(q, "test") >= 2 * MiB &&
                                        ms_usable_size(q, "test") < 3 * MiB);
    p = q;

    /* Same size: nothing to do. */
    uint64_t remaps = stats().large_remaps;
    CHECK("realloc to the same size: same block, no mremap",
          ms_realloc(h, p, 2 * MiB) == p && stats().large_remaps == remaps);

    /* Shrink into a small class: contents copied, the mapping released. */
    memset(p, 0x3c, 100 * KiB);
    ms_stats_t s3 = stats();
    q = ms_realloc(h, p, 100 * KiB);
    ms_stats_t s4 = stats();
    int small_ok = q != NULL && ms_segment_of(q) && ms_segment_of(q)->kind == SEGMENT_SMALL;
    CHECK("shrink to 100 KiB: becomes a small block", small_ok);
    CHECK("shrink to small: contents kept", q && q[0] == 0x3c && q[100 * KiB - 1] == 0x3c);
    CHECK("shrink to small: large block released", s4.large_blocks == s3.large_blocks - 1);

    /* And back up: small -> large copies the small block's bytes. */
    p = ms_realloc(h, q, 3 * MiB);
    CHECK("grow small -> large: contents kept", p && p[0] == 0x3c && p[100 * KiB - 1] == 0x3c);
    CHECK("grow small -> large: a large block again",
          p && ms_segment_of(p) && ms_segment_of(p)->kind == SEGMENT_LARGE);
    ms_free(p, "free");
}

/* Growth when the pages after the block are taken: the mapping moves (the
 * pages go with it), the old address is forgotten, the contents stay. */
static void test_grow_moved(void) {
    ms_heap_trim_all(); /* a fresh mapping, so the grown part must read zero */
    unsigned char *p = ms_alloc(h, 3 * MiB, 0);
    segment_t *segment = ms_segment_of(p);
    char *end = (char *)segment + segment->mapped_size;
    void *blocker = mmap(end, MS_OS_PAGE, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (blocker == MAP_FAILED || blocker != end) {
        /* Something else already sits there: in-place growth fails anyway. */
        if (blocker != MAP_FAILED)
            munmap(blocker, MS_OS_PAGE);
        blocker = NULL;
    }
    memset(p, 0x42, 3 * MiB);
    size_t old_mapped = segment->mapped_size; /* the header moves with the block */
    ms_stats_t s0 = stats();
    unsigned char *q = ms_realloc(h, p, 5 * MiB);
    ms_stats_t s1 = stats();
    CHECK("moved: realloc succeeds", q != NULL);
    if (q == NULL)
        return;
    segment_t *moved = ms_segment_of(q);
    CHECK("moved: block moved", q != p);
    CHECK("moved: contents kept", q[0] == 0x42 && q[3 * MiB - 1] == 0x42 && all_zero(q + 3 * MiB, 2 * MiB));
    CHECK("moved: by mremap, not malloc+copy", s1.large_remaps == s0.large_remaps + 1 &&
                                                   s1.large_allocs == s0.large_allocs);
    CHECK("moved: new segment 4 MiB aligned, registered",
          moved && ((uintptr_t)moved & MS_SEGMENT_MASK) == 0 && moved->large_block == q &&
              moved->kind == SEGMENT_LARGE);
    CHECK("moved: old address forgotten", ms_segment_of(p) == NULL);
    CHECK("moved: usable >= 5 MiB", ms_usable_size(q, "test") >= 5 * MiB);
    CHECK("moved: bytes_mapped follows the mapping",
          moved && s1.bytes_mapped - s0.bytes_mapped == moved->mapped_size - old_mapped);
    if (blocker)
        munmap(blocker, MS_OS_PAGE);
    size_t now_mapped = moved ? moved->mapped_size : 0;
    ms_stats_t s2 = stats();
    ms_free(q, "free");
    ms_heap_trim_all();
    CHECK("moved: free and a collection unmap all of it",
          stats().bytes_mapped == s2.bytes_mapped - now_mapped);
}

/* The largest alignment ms_alloc accepts (large.c); above it: ENOMEM. */
#define ALIGN_LIMIT ((size_t)1 << (MS_ADDRESS_BITS - 2))

static void test_alignment(void) {
    /* Up to 1 GiB: from 4 MiB up the block sits one segment above its
     * header (the MS_MAP_TAIL slot), below that inside the first segment. */
    int ok = 1, usable_ok = 1, found = 1, unmapped = 1;
    for (size_t align = 32; align <= ((size_t)1 << 30); align <<= 1) {
        const size_t sizes[] = {1,       100,           MS_SMALL_MAX, MS_SMALL_MAX + 1,
                                MiB + 5, MS_MEDIUM_MAX, MS_MEDIUM_MAX + 1, 5 * MiB};
        enum { N = sizeof sizes / sizeof *sizes };
        void *live[N];
        ms_stats_t s0 = stats();
        for (int i = 0; i < N; i++) {
            unsigned char *p = live[i] = ms_alloc(h, sizes[i], align);
            if (p == NULL || ((uintptr_t)p & (align - 1)) != 0) {
                ok = 0;
                fprintf(stderr, "align %zu size %zu: %p\n", align, sizes[i], (void *)p);
                continue;
            }
            size_t usable = ms_usable_size(p, "test");
            usable_ok &= usable >= sizes[i];
            p[0] = 1;
            p[usable - 1] = 2;
            segment_t *segment = ms_segment_of(p);
            /* Only block starts need finding (the map marks the header's
             * slot, and the block's own slot when it is a segment above). */
            found &= segment != NULL &&
                     (segment->kind == SEGMENT_SMALL || segment->large_block == p);
        }
        for (int i = 0; i < N; i++) {
            ms_free(live[i], "free");
            if (align > MS_SLICE_SIZE || sizes[i] > MS_MEDIUM_MAX)
                unmapped &= ms_segment_of(live[i]) == NULL;
        }
        ms_heap_trim_all();
        unmapped &= stats().large_blocks == s0.large_blocks;
    }
    CHECK("alignment 32 .. 1 GiB honoured", ok);
    CHECK("aligned blocks: usable >= size", usable_ok);
    CHECK("aligned blocks found from their start", found);
    CHECK("aligned large blocks unmapped and forgotten on free", unmapped);

    /* A 16 MiB-aligned block: header one segment below, interior lookups. */
    unsigned char *p = ms_alloc(h, 6 * MiB, 16 * MiB);
    segment_t *segment = p ? ms_segment_of(p) : NULL;
    CHECK("16 MiB alignment: header one segment below the block",
          segment && (unsigned char *)segment + MS_SEGMENT_SIZE == p &&
              segment->kind == SEGMENT_LARGE && segment->large_block == p);
    CHECK("16 MiB alignment: the fast free declines it", p && !ms_free_fast(p));
    CHECK("16 MiB alignment: lookups in its first 4 MiB find the header",
          p && ms_segment_of(p + 4 * MiB - 1) == segment);
    CHECK("16 MiB alignment: not the header's own slot for the block",
          p && ms_segment_of(p) != ms_segment_base(p));
    /* Grow it (in place or moved): contents kept, still found. */
    if (p) {
        mark(p, 6 * MiB, 9);
        unsigned char *q = ms_realloc(h, p, 20 * MiB);
        CHECK("16 MiB-aligned block grows, contents kept", q && marked(q, 6 * MiB, 9));
        CHECK("grown aligned block still registered", q && ms_segment_of(q) &&
                                                         ms_segment_of(q)->large_block == q);
        q = ms_realloc(h, q, 5 * MiB);
        CHECK("aligned block shrinks, contents kept", q && marked(q, 5 * MiB, 9));
        ms_free(q, "free");
        CHECK("aligned block freed: header and tail slots cleared",
              ms_segment_of(q) == NULL && ms_segment_of(q - MS_SEGMENT_SIZE) == NULL);
    }

    /* Move a tail block: its old slots are cleared, its new ones set. */
    p = ms_alloc(h, MiB, 8 * MiB);
    segment = ms_segment_of(p);
    void *blocker = MAP_FAILED;
    if (segment) {
        char *end = (char *)segment + segment->mapped_size;
        blocker = mmap(end, MS_OS_PAGE, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        mark(p, MiB, 3);
        unsigned char *q = ms_realloc(h, p, 3 * MiB);
        CHECK("aligned block moved by realloc keeps its contents", q && marked(q, MiB, 3));
        CHECK("moved aligned block: new slots found", q && ms_segment_of(q) &&
                                                          ms_segment_of(q)->large_block == q);
        if (q != p)
            CHECK("moved aligned block: old slots cleared",
                  ms_segment_of(p) == NULL && ms_segment_of(segment) == NULL);
        ms_free(q, "free");
        if (blocker != MAP_FAILED)
            munmap(blocker, MS_OS_PAGE);
    }

    ms_stats_t s0 = stats();
    errno = 0;
    void *v = ms_alloc(h, MiB, ALIGN_LIMIT * 2);
    CHECK("alignment above 2^45: NULL, ENOMEM", v == NULL && errno == ENOMEM);
    errno = 0;
    v = ms_alloc(h, 100, (size_t)1 << 63);
    CHECK("alignment 2^63: NULL, ENOMEM", v == NULL && errno == ENOMEM);
    CHECK("failed aligned allocation maps nothing", stats().bytes_mapped == s0.bytes_mapped &&
                                                       stats().large_allocs == s0.large_allocs);
}

static void test_enomem(void) {
    ms_stats_t s0 = stats();
    const size_t huge[] = {SIZE_MAX, SIZE_MAX - MS_OS_PAGE, (size_t)PTRDIFF_MAX,
                           (size_t)PTRDIFF_MAX - MS_SEGMENT_SIZE, (size_t)1 << 48};
    int ok = 1;
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        errno = 0;
        void *p = ms_alloc(h, huge[i], 0);
        if (p != NULL || errno != ENOMEM) {
            ok = 0;
            fprintf(stderr, "ms_alloc(%#zx) = %p errno %d\n", huge[i], p, errno);
        }
    }
    CHECK("impossible sizes: NULL with ENOMEM", ok);
    CHECK("impossible sizes: nothing mapped", stats().bytes_mapped == s0.bytes_mapped);

    /* A failed realloc leaves the block as it was, still freeable. */
    unsigned char *p = ms_alloc(h, 3 * MiB, 0);
    mark(p, 3 * MiB, 5);
    size_t usable = ms_usable_size(p, "test");
    ms_stats_t s1 = stats();
    int realloc_ok = 1;
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        errno = 0;
        void *q = ms_realloc(h, p, huge[i]);
        if (q != NULL || errno != ENOMEM) {
            realloc_ok = 0;
            fprintf(stderr, "ms_realloc(%#zx) = %p errno %d\n", huge[i], q, errno);
        }
    }
    CHECK("realloc to impossible sizes: NULL with ENOMEM", realloc_ok);
    CHECK("failed realloc: block intact", marked(p, 3 * MiB, 5) && ms_usable_size(p, "test") == usable);
    CHECK("failed realloc: still registered", ms_segment_of(p) && ms_segment_of(p)->large_block == p);
    CHECK("failed realloc: nothing mapped", stats().bytes_mapped == s1.bytes_mapped);
    ms_free(p, "free");
    ms_heap_trim_all();
    CHECK("failed realloc: block still frees", stats().bytes_mapped < s1.bytes_mapped &&
                                                 ms_segment_of(p) == NULL);
}

int main(void) {
    TEST_BEGIN("large");
    h = ms_heap_acquire();
    test_sizes();
    test_grow();
    test_grow_moved();
    test_alignment();
    test_enomem();
    ms_heap_release(h, true);
    ms_heap_trim_all();
    ms_stats_t s = stats();
    CHECK("end: no large block left", s.large_blocks == 0);
    return TEST_DONE();
}
