/* The C allocation API, checked against glibc's documented behaviour: every
 * exported function, alignment of results, zero-size and overflowing
 * requests, errno, realloc/calloc contents, aligned allocators, usable size,
 * introspection (mallinfo, malloc_stats, malloc_info), non-overlap of many
 * live blocks and reuse of freed memory.
 *
 * Passes on plain glibc; the checks that only hold for mspace (every symbol
 * resolved to libmspace.so, mallinfo reporting) run only when
 * LD_PRELOAD names libmspace. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static int under_mspace;

/* Sizes the compiler cannot see, so no -Walloc-size-larger-than and no
 * constant folding of a call that must really fail at run time. */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Hides a pointer's origin from -Wuse-after-free: a failed realloc leaves the
 * block live, which the compiler cannot know. */
static void *hide(void *p) {
    void *volatile v = p;
    return v;
}

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static void fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed + i * 7 + (i >> 8));
}
static int check_fill(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed + i * 7 + (i >> 8))) return 0;
    return 1;
}
static int all_bytes(const void *p, size_t n, unsigned char v) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v) return 0;
    return 1;
}

/* ---- every symbol comes from libmspace.so (only under preload) ---- */
static void test_symbols(void) {
    static const char *const names[] = {
        "malloc",        "free",           "calloc",       "realloc",
        "reallocarray",  "posix_memalign", "aligned_alloc", "memalign",
        "valloc",        "pvalloc",        "malloc_usable_size",
        "malloc_trim",   "mallopt",        "mallinfo",     "mallinfo2",
        "malloc_stats",  "malloc_info",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info info;
        int from_mspace = sym && dladdr(sym, &info) && info.dli_fname &&
                          strstr(info.dli_fname, "libmspace");
        if (!from_mspace)
            fprintf(stderr, "  %s resolves to %s\n", names[i],
                    sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "nothing");
        CHECK("allocation symbol is provided by libmspace.so", from_mspace);
    }
}

/* ---- alignment and writability over many sizes ---- */
static void test_alignment(void) {
    /* Every size 0..4096 (all small class boundaries), all live at once. */
    enum { N = 4097 };
    static void *p[N];
    int bad_align = 0, bad_null = 0, bad_usable = 0;
    for (size_t s = 0; s < N; s++) {
        p[s] = malloc(s);
        if (!p[s]) { bad_null++; continue; }
        if (!aligned(p[s], 16)) bad_align++;
        if (malloc_usable_size(p[s]) < s) bad_usable++;
        if (s) { ((char *)p[s])[0] = (char)s; ((char *)p[s])[s - 1] = (char)s; }
    }
    int bad_keep = 0;
    for (size_t s = 1; s < N; s++)
        if (p[s] && (((char *)p[s])[0] != (char)s || ((char *)p[s])[s - 1] != (char)s)) bad_keep++;
    for (size_t s = 0; s < N; s++) free(p[s]);
    CHECK("malloc(0..4096) never NULL", bad_null == 0);
    CHECK("malloc(0..4096) 16-byte aligned", bad_align == 0);
    CHECK("malloc(0..4096) usable >= requested", bad_usable == 0);
    CHECK("malloc(0..4096) first/last byte kept while all live", bad_keep == 0);

    /* Powers of two and their neighbours, 1 B .. 64 MiB, all live at once. */
    static void *q[27][3];
    bad_align = bad_null = bad_usable = 0;
    for (int k = 0; k <= 26; k++)
        for (int d = -1; d <= 1; d++) {
            size_t s = ((size_t)1 << k) + d;
            void *x = q[k][d + 1] = malloc(s);
            if (!x) { bad_null++; continue; }
            if (!aligned(x, 16)) bad_align++;
            if (malloc_usable_size(x) < s) bad_usable++;
            if (s) { ((char *)x)[0] = 1; ((char *)x)[s - 1] = 2; }
        }
    for (int k = 0; k <= 26; k++)
        for (int d = 0; d < 3; d++) free(q[k][d]);
    CHECK("malloc(2^k-1, 2^k, 2^k+1 up to 64 MiB) never NULL", bad_null == 0);
    CHECK("malloc(2^k+-1) 16-byte aligned", bad_align == 0);
    CHECK("malloc(2^k+-1) usable >= requested", bad_usable == 0);

    /* Quarter steps between powers of two (16 B .. 512 KiB) and their
     * neighbours, all live at once, each written over its whole usable size:
     * a class smaller than the request would clobber a neighbour. */
    static struct { unsigned char *p; size_t usable; } qs[16][4][3];
    bad_null = bad_usable = 0;
    int n = 0;
    for (int k = 4; k < 20; k++)
        for (int q = 4; q < 8; q++)
            for (int d = -1; d <= 1; d++) {
                size_t s = ((size_t)1 << k) / 4 * (size_t)q + (size_t)d;
                unsigned char *x = malloc(s);
                qs[k - 4][q - 4][d + 1].p = x;
                if (!x) { bad_null++; continue; }
                size_t u = qs[k - 4][q - 4][d + 1].usable = malloc_usable_size(x);
                if (u < s) bad_usable++;
                memset(x, (unsigned char)(n++ | 1), u);
            }
    n = 0;
    bad_keep = 0;
    for (int k = 4; k < 20; k++)
        for (int q = 4; q < 8; q++)
            for (int d = 0; d < 3; d++) {
                unsigned char *x = qs[k - 4][q - 4][d].p;
                if (x && !all_bytes(x, qs[k - 4][q - 4][d].usable, (unsigned char)(n | 1))) bad_keep++;
                n++;
                free(x);
            }
    CHECK("malloc at quarter steps 16 B..512 KiB (+-1) never NULL", bad_null == 0);
    CHECK("malloc at quarter steps: usable >= requested", bad_usable == 0);
    CHECK("malloc at quarter steps: whole usable sizes written, no neighbour clobbered",
          bad_keep == 0);

    /* Geometric and random sizes up to 4 MiB. */
    bad_align = bad_null = bad_usable = 0;
    for (double f = 1; f <= (double)(4 * MiB); f *= 1.07) {
        size_t s = (size_t)f;
        void *x = malloc(s);
        if (!x) { bad_null++; continue; }
        if (!aligned(x, 16)) bad_align++;
        if (malloc_usable_size(x) < s) bad_usable++;
        ((char *)x)[s - 1] = 1;
        free(x);
    }
    for (int i = 0; i < 2000; i++) {
        size_t s = rnd() % (4 * MiB + 1);
        void *x = malloc(s);
        if (!x) { bad_null++; continue; }
        if (!aligned(x, 16)) bad_align++;
        if (malloc_usable_size(x) < s) bad_usable++;
        if (s) ((char *)x)[s - 1] = 1;
        free(x);
    }
    CHECK("malloc(geometric/random sizes <= 4 MiB) never NULL", bad_null == 0);
    CHECK("malloc(geometric/random sizes) 16-byte aligned", bad_align == 0);
    CHECK("malloc(geometric/random sizes) usable >= requested", bad_usable == 0);
}

/* ---- malloc(0), free(NULL) ---- */
static void test_zero(void) {
    enum { N = 200 };
    void *p[N];
    int nulls = 0, dups = 0;
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        if (!p[i]) nulls++;
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (p[i] && p[i] == p[j]) dups++;
    CHECK("malloc(0) returns non-NULL", nulls == 0);
    CHECK("malloc(0) pointers are unique while live", dups == 0);
    for (int i = 0; i < N; i++) free(p[i]);
    free(NULL); /* must simply return */

    void *c1 = calloc(0, 10), *c2 = calloc(10, 0), *c3 = calloc(0, 0);
    CHECK("calloc with a zero count or size returns non-NULL", c1 && c2 && c3);
    CHECK("calloc zero-size results are distinct", c1 != c2 && c2 != c3 && c1 != c3);
    free(c1); free(c2); free(c3);
}

/* ---- realloc ---- */
static void test_realloc(void) {
    /* realloc(NULL, n) behaves like malloc(n). */
    char *p = realloc(NULL, 100);
    CHECK("realloc(NULL,100) returns a block", p != NULL);
    CHECK("realloc(NULL,100) 16-aligned, usable >= 100",
          p && aligned(p, 16) && malloc_usable_size(p) >= 100);
    if (p) memset(p, 0x5a, 100);
    free(p);
    p = realloc(NULL, 0);
    CHECK("realloc(NULL,0) returns a freeable non-NULL block like malloc(0)", p != NULL);
    free(p);
    p = realloc(NULL, 3 * MiB);
    CHECK("realloc(NULL,3 MiB) returns a large block", p && malloc_usable_size(p) >= 3 * MiB);
    if (p) memset(p, 1, 3 * MiB);
    free(p);

    /* realloc(p, 0) frees p and returns NULL (glibc). */
    p = malloc(100);
    errno = 0;
    char *r = realloc(p, 0);
    CHECK("realloc(p,0) returns NULL (glibc: frees p)", r == NULL);
    free(r);
    p = malloc(5 * MiB);
    r = realloc(p, 0);
    CHECK("realloc(large,0) returns NULL", r == NULL);
    free(r);

    /* small -> small, growing and shrinking */
    p = malloc(24);
    fill(p, 24, 1);
    p = realloc(p, 40);
    CHECK("realloc small grow keeps contents", p && aligned(p, 16) && check_fill(p, 24, 1));
    p = realloc(p, 10);
    CHECK("realloc small shrink keeps prefix", p && check_fill(p, 10, 1));
    p = realloc(p, 10);
    CHECK("realloc to the same size keeps contents", p && check_fill(p, 10, 1));
    free(p);

    /* byte-by-byte growth through every small size */
    int bad = 0;
    p = NULL;
    for (size_t s = 1; s <= 4096; s++) {
        char *n = realloc(p, s);
        if (!n) { bad++; break; }
        p = n;
        p[s - 1] = (char)(s * 31);
        if (s % 97 == 0)
            for (size_t i = 0; i < s; i++)
                if (p[i] != (char)((i + 1) * 31)) { bad++; break; }
        if (!aligned(p, 16)) bad++;
    }
    CHECK("realloc growing 1..4096 byte by byte keeps every byte", bad == 0);
    free(p);

    /* small -> large (>= 1 MiB) */
    p = malloc(200);
    fill(p, 200, 2);
    p = realloc(p, MiB + 17);
    CHECK("realloc small -> 1 MiB keeps contents", p && aligned(p, 16) && check_fill(p, 200, 2));
    if (p) memset(p + 200, 0x11, MiB + 17 - 200);
    free(p);

    /* large -> larger (1 MiB -> 64 MiB) -> small */
    p = malloc(MiB);
    fill(p, MiB, 3);
    p = realloc(p, 64 * MiB);
    CHECK("realloc 1 MiB -> 64 MiB keeps contents", p && aligned(p, 16) && check_fill(p, MiB, 3));
    CHECK("realloc 1 MiB -> 64 MiB usable >= 64 MiB", p && malloc_usable_size(p) >= 64 * MiB);
    if (p) {
        memset(p + MiB, 0x22, 63 * MiB);
        p = realloc(p, 100);
        CHECK("realloc 64 MiB -> 100 keeps prefix", p && check_fill(p, 100, 3));
        CHECK("realloc 64 MiB -> 100 usable >= 100", p && malloc_usable_size(p) >= 100);
    }
    free(p);

    /* large shrink in place-able steps, and 1.5x growth ladder to 16 MiB */
    p = malloc(8 * MiB);
    fill(p, 8 * MiB, 4);
    p = realloc(p, 5 * MiB);
    CHECK("realloc 8 MiB -> 5 MiB keeps contents", p && check_fill(p, 5 * MiB, 4));
    p = realloc(p, 2 * MiB);
    CHECK("realloc 5 MiB -> 2 MiB keeps contents", p && check_fill(p, 2 * MiB, 4));
    free(p);
    bad = 0;
    p = NULL;
    size_t old = 0;
    for (size_t s = 64; s <= 16 * MiB; s = s * 3 / 2) {
        char *n = realloc(p, s);
        if (!n) { bad++; break; }
        p = n;
        if (!check_fill(p, old, 5)) bad++;
        fill(p, s, 5);
        old = s;
    }
    CHECK("realloc 1.5x growth ladder 64 B -> 16 MiB keeps contents", bad == 0);
    free(p);

    /* realloc of a block from an aligned allocator keeps its contents. */
    void *a = NULL;
    CHECK("posix_memalign(4096,100) for realloc", posix_memalign(&a, 4096, 100) == 0);
    if (a) {
        fill(a, 100, 6);
        a = realloc(a, 10000);
        CHECK("realloc of a 4096-aligned block keeps contents", a && check_fill(a, 100, 6));
        free(a);
    }
    a = memalign(64 * KiB, 3 * MiB);
    if (a) {
        fill(a, 3 * MiB, 7);
        a = realloc(a, 20);
        CHECK("realloc of a 64 KiB-aligned 3 MiB block down to 20 keeps prefix",
              a && check_fill(a, 20, 7));
        free(a);
    } else {
        CHECK("memalign(64 KiB, 3 MiB) succeeds", 0);
    }
}

/* ---- failures: overflow and absurd sizes ---- */
static void test_failures(void) {
    size_t huge[] = {v_size_max, v_ptrdiff_max + (size_t)1, v_size_max - 15,
                     v_size_max - 4095, v_size_max - 4 * MiB + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        void *p = malloc(huge[i]);
        CHECK("malloc(huge) returns NULL", p == NULL);
        CHECK("malloc(huge) sets errno ENOMEM", errno == ENOMEM);
        free(p);
    }

    errno = 0;
    void *p = calloc(v_size_max / 2 + 1, 3);
    CHECK("calloc(SIZE_MAX/2+1, 3) overflow returns NULL", p == NULL);
    CHECK("calloc overflow sets ENOMEM", errno == ENOMEM);
    free(p);
    errno = 0;
    p = calloc(v_size_max >> 31, v_size_max >> 31); /* about 2^33 * 2^33 */
    CHECK("calloc(~2^33, ~2^33) overflow returns NULL with ENOMEM", p == NULL && errno == ENOMEM);
    free(p);
    errno = 0;
    p = calloc(1, v_size_max);
    CHECK("calloc(1, SIZE_MAX) returns NULL with ENOMEM", p == NULL && errno == ENOMEM);
    free(p);

    /* Failed realloc leaves the block alone. */
    char *q = malloc(1000);
    fill(q, 1000, 8);
    errno = 0;
    void *r = realloc(q, v_size_max);
    CHECK("realloc(p, SIZE_MAX) returns NULL", r == NULL);
    CHECK("realloc(p, SIZE_MAX) sets ENOMEM", errno == ENOMEM);
    errno = 0;
    r = realloc(q, v_ptrdiff_max + (size_t)1);
    CHECK("realloc(p, PTRDIFF_MAX+1) returns NULL with ENOMEM", r == NULL && errno == ENOMEM);
    CHECK("block unchanged after failed realloc", check_fill(q, 1000, 8));
    q = realloc(q, 2000);
    CHECK("block still reallocatable after failed realloc", q && check_fill(q, 1000, 8));
    free(q);

    q = malloc(6 * MiB);
    fill(q, 6 * MiB, 9);
    errno = 0;
    r = realloc(q, v_size_max - 4095);
    CHECK("realloc(large, SIZE_MAX-4095) returns NULL with ENOMEM", r == NULL && errno == ENOMEM);
    CHECK("large block unchanged after failed realloc", check_fill(q, 6 * MiB, 9));
    free(q);

    /* reallocarray */
    q = reallocarray(NULL, 10, 10);
    CHECK("reallocarray(NULL,10,10) allocates", q && malloc_usable_size(q) >= 100);
    fill(q, 100, 10);
    q = reallocarray(q, 100, 100);
    CHECK("reallocarray grow keeps contents", q && check_fill(q, 100, 10));
    errno = 0;
    r = reallocarray(hide(q), v_size_max / 2 + 1, 2);
    CHECK("reallocarray overflow returns NULL", r == NULL);
    CHECK("reallocarray overflow sets ENOMEM", errno == ENOMEM);
    CHECK("block unchanged after reallocarray overflow", check_fill(q, 100, 10));
    free(q);

    /* Aligned allocators with absurd sizes. */
    void *m = (void *)0x1234;
    int rc = posix_memalign(&m, 4096, v_size_max - 100);
    CHECK("posix_memalign(4096, SIZE_MAX-100) returns ENOMEM", rc == ENOMEM);
    errno = 0;
    p = aligned_alloc(64, v_size_max - 10);
    CHECK("aligned_alloc(64, SIZE_MAX-10) returns NULL with ENOMEM", p == NULL && errno == ENOMEM);
    errno = 0;
    p = memalign(MiB, v_ptrdiff_max);
    CHECK("memalign(1 MiB, PTRDIFF_MAX) returns NULL with ENOMEM", p == NULL && errno == ENOMEM);
    errno = 0;
    p = valloc(v_size_max - 1);
    CHECK("valloc(SIZE_MAX-1) returns NULL with ENOMEM", p == NULL && errno == ENOMEM);
    errno = 0;
    p = pvalloc(v_size_max - 1);
    CHECK("pvalloc(SIZE_MAX-1) returns NULL with ENOMEM", p == NULL && errno == ENOMEM);
}

/* ---- calloc zeroes, including recycled dirty memory ---- */
static void test_calloc(void) {
    enum { PER = 8 };
    static const size_t big[] = {2000, 4096, 10000, 65536, 100000, 262144,
                                 MiB, 4 * MiB, 8 * MiB + 13};
    size_t nsizes = 1024 + sizeof big / sizeof big[0];
    int dirty = 0, nulls = 0;
    for (size_t k = 0; k < nsizes; k++) {
        size_t s = k < 1024 ? k + 1 : big[k - 1024];
        void *p[PER];
        for (int i = 0; i < PER; i++) {
            p[i] = malloc(s);
            if (p[i]) memset(p[i], 0xAA, malloc_usable_size(p[i]));
        }
        for (int i = 0; i < PER; i++) free(p[i]);
        for (int i = 0; i < PER; i++) {
            p[i] = calloc(1, s);
            if (!p[i]) { nulls++; continue; }
            if (!all_bytes(p[i], s, 0)) dirty++;
        }
        for (int i = 0; i < PER; i++) free(p[i]);
    }
    CHECK("calloc never NULL for sizes 1..1024 and up to 8 MiB", nulls == 0);
    CHECK("calloc returns zeroed memory even when reusing 0xAA-filled blocks", dirty == 0);

    /* count * size form, and the whole usable size of a calloc'd block */
    unsigned *u = calloc(1000, sizeof *u);
    CHECK("calloc(1000, 4) zeroed", u && all_bytes(u, 4000, 0));
    free(u);

    /* Large calloc after a dirty large free at the same size. */
    char *d = malloc(16 * MiB);
    memset(d, 0xAA, 16 * MiB);
    free(d);
    d = calloc(16, MiB);
    CHECK("calloc(16, 1 MiB) after a dirty 16 MiB free is zeroed", d && all_bytes(d, 16 * MiB, 0));
    free(d);
}

/* ---- posix_memalign, aligned_alloc, memalign, valloc, pvalloc ---- */
static void test_aligned(void) {
    static const size_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 100, 1000, 4095, 4096, 4097,
                                   65536, 100000, MiB, MiB + 1, 3 * MiB};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    int bad_rc = 0, bad_align = 0, bad_usable = 0, bad_keep = 0;
    for (size_t a = sizeof(void *); a <= 2 * MiB; a *= 2) {
        void *p[NS];
        for (int i = 0; i < NS; i++) {
            p[i] = NULL;
            if (posix_memalign(&p[i], a, sizes[i]) != 0 || !p[i]) { bad_rc++; p[i] = NULL; continue; }
            if (!aligned(p[i], a)) bad_align++;
            size_t u = malloc_usable_size(p[i]);
            if (u < sizes[i]) bad_usable++;
            memset(p[i], (int)(i + a), u);
        }
        for (int i = 0; i < NS; i++)
            if (p[i] && sizes[i] && !all_bytes(p[i], sizes[i], (unsigned char)(i + a))) bad_keep++;
        for (int i = 0; i < NS; i++) free(p[i]);
    }
    CHECK("posix_memalign(8..2 MiB, many sizes) returns 0", bad_rc == 0);
    CHECK("posix_memalign result aligned", bad_align == 0);
    CHECK("posix_memalign usable >= requested", bad_usable == 0);
    CHECK("posix_memalign blocks writable to usable size without clobbering others", bad_keep == 0);

    /* Alignments of a whole segment and beyond (glibc supports any power of
     * two): 4, 8 and 64 MiB. */
    static const size_t huge_align[] = {4 * MiB, 8 * MiB, 64 * MiB};
    for (size_t i = 0; i < sizeof huge_align / sizeof huge_align[0]; i++) {
        size_t a = huge_align[i];
        char name[128];
        void *p = NULL;
        int rc = posix_memalign(&p, a, 100);
        snprintf(name, sizeof name, "posix_memalign(%zu MiB alignment, 100) succeeds, aligned (rc %d)",
                 a / MiB, rc);
        CHECK(name, rc == 0 && p && aligned(p, a));
        if (rc == 0) { memset(p, 1, 100); free(p); }
        errno = 0;
        p = aligned_alloc(a, 3 * MiB);
        snprintf(name, sizeof name, "aligned_alloc(%zu MiB alignment, 3 MiB) succeeds, aligned (errno %d)",
                 a / MiB, p ? 0 : errno);
        CHECK(name, p && aligned(p, a) && malloc_usable_size(p) >= 3 * MiB);
        if (p) { memset(p, 2, 3 * MiB); free(p); }
    }

    /* A 2 MiB-aligned large block keeps its contents through realloc. */
    void *big = NULL;
    if (posix_memalign(&big, 2 * MiB, 3 * MiB) == 0) {
        fill(big, 3 * MiB, 13);
        char *g = realloc(big, 20 * MiB);
        CHECK("realloc of a 2 MiB-aligned 3 MiB block to 20 MiB keeps contents",
              g && check_fill(g, 3 * MiB, 13));
        if (g) {
            memset(g + 3 * MiB, 0x12, 17 * MiB);
            g = realloc(g, MiB);
            CHECK("and back down to 1 MiB keeps the prefix", g && check_fill(g, MiB, 13));
            free(g);
        }
    } else {
        CHECK("posix_memalign(2 MiB, 3 MiB) succeeds", 0);
    }

    static const size_t bad_align_values[] = {0, 3, 24, sizeof(void *) / 2, 1, 48, 4097};
    for (size_t i = 0; i < sizeof bad_align_values / sizeof bad_align_values[0]; i++) {
        void *m = (void *)0x5555;
        int rc = posix_memalign(&m, bad_align_values[i], 64);
        CHECK("posix_memalign with a bad alignment returns EINVAL", rc == EINVAL);
        CHECK("posix_memalign with a bad alignment leaves *memptr untouched", m == (void *)0x5555);
    }

    /* aligned_alloc: powers of two from 1 to 1 MiB */
    bad_rc = bad_align = bad_usable = 0;
    for (size_t a = 1; a <= MiB; a *= 2)
        for (int i = 0; i < NS; i++) {
            void *p = aligned_alloc(a, sizes[i]);
            if (!p) { bad_rc++; continue; }
            if (!aligned(p, a)) bad_align++;
            if (malloc_usable_size(p) < sizes[i]) bad_usable++;
            if (sizes[i]) memset(p, 0x33, sizes[i]);
            free(p);
        }
    CHECK("aligned_alloc(1..1 MiB, many sizes) non-NULL", bad_rc == 0);
    CHECK("aligned_alloc result aligned", bad_align == 0);
    CHECK("aligned_alloc usable >= requested", bad_usable == 0);

    /* memalign: powers of two, then non-powers (glibc rounds the alignment up). */
    bad_rc = bad_align = 0;
    for (size_t a = 1; a <= MiB; a *= 2) {
        void *p = memalign(a, 5000);
        if (!p) { bad_rc++; continue; }
        if (!aligned(p, a)) bad_align++;
        memset(p, 0x44, 5000);
        free(p);
    }
    CHECK("memalign(power of two) non-NULL", bad_rc == 0);
    CHECK("memalign(power of two) aligned", bad_align == 0);
    static const size_t odd[] = {24, 48, 100, 3000, 5000, 65537};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        size_t next = 1;
        while (next < odd[i]) next *= 2;
        errno = 0;
        void *p = memalign(odd[i], 300);
        CHECK("memalign(non power of two) aligned to the next power of two, or EINVAL",
              p ? aligned(p, next) && malloc_usable_size(p) >= 300 : errno == EINVAL);
        free(p);
        errno = 0;
        p = aligned_alloc(odd[i], 300);
        CHECK("aligned_alloc(non power of two) aligned to the next power of two, or EINVAL",
              p ? aligned(p, next) : errno == EINVAL);
        free(p);
    }

    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t vsizes[] = {0, 1, 100, 4095, 4096, 4097, 100000, 3 * MiB + 5};
    for (size_t i = 0; i < sizeof vsizes / sizeof vsizes[0]; i++) {
        size_t s = vsizes[i];
        void *p = valloc(s);
        CHECK("valloc non-NULL", p != NULL);
        CHECK("valloc page aligned, usable >= requested",
              p && aligned(p, page) && malloc_usable_size(p) >= s);
        if (p && s) memset(p, 0x55, s);
        free(p);
        p = pvalloc(s);
        size_t rounded = (s + page - 1) / page * page;
        CHECK("pvalloc non-NULL", p != NULL);
        CHECK("pvalloc page aligned, usable >= size rounded up to a page",
              p && aligned(p, page) && malloc_usable_size(p) >= rounded);
        if (p && rounded) memset(p, 0x66, rounded);
        free(p);
    }
}

/* ---- malloc_usable_size ---- */
static void test_usable(void) {
    CHECK("malloc_usable_size(NULL) == 0", malloc_usable_size(NULL) == 0);
    enum { N = 64 };
    void *p[N];
    size_t u[N], req[N];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        req[i] = i < 48 ? (size_t)(i * 37 + 1) : (size_t)(i - 47) * 300 * KiB;
        p[i] = malloc(req[i]);
        u[i] = malloc_usable_size(p[i]);
        if (u[i] < req[i]) bad++;
        memset(p[i], i, u[i]); /* the whole usable size is ours */
    }
    CHECK("usable size >= requested", bad == 0);
    /* Churn in between. */
    for (int k = 0; k < 2000; k++) {
        void *x = malloc(rnd() % 3000);
        void *y = malloc(rnd() % 300000);
        free(x);
        free(y);
    }
    int changed = 0, clobbered = 0;
    for (int i = 0; i < N; i++) {
        if (malloc_usable_size(p[i]) != u[i]) changed++;
        if (!all_bytes(p[i], u[i], (unsigned char)i)) clobbered++;
    }
    CHECK("usable size of a live block never changes", changed == 0);
    CHECK("writing the whole usable size clobbers nothing", clobbered == 0);
    for (int i = 0; i < N; i++) free(p[i]);
}

/* ---- free preserves errno ---- */
static void test_errno(void) {
    void *small = malloc(40), *mid = malloc(50000), *large = malloc(8 * MiB);
    void *al = aligned_alloc(4096, 10000);
    memset(large, 1, 8 * MiB);
    errno = 1234;
    free(small);
    CHECK("free(small) preserves errno", errno == 1234);
    free(mid);
    CHECK("free(medium) preserves errno", errno == 1234);
    free(large);
    CHECK("free(8 MiB) preserves errno", errno == 1234);
    free(al);
    CHECK("free(aligned) preserves errno", errno == 1234);
    free(NULL);
    CHECK("free(NULL) preserves errno", errno == 1234);
    /* A batch of large frees (may return memory to the OS). */
    void *b[8];
    for (int i = 0; i < 8; i++) b[i] = malloc((size_t)(i + 1) * 3 * MiB);
    errno = 1234;
    for (int i = 0; i < 8; i++) free(b[i]);
    CHECK("many large frees preserve errno", errno == 1234);
    errno = 0;
}

/* ---- malloc_trim, mallopt ---- */
static void test_trim_mallopt(void) {
    enum { N = 32 };
    char *keep[N];
    void *junk[400];
    for (int i = 0; i < N; i++) {
        size_t s = (size_t)(i + 1) * 5000;
        keep[i] = malloc(s);
        fill(keep[i], s, (unsigned)i);
    }
    for (int i = 0; i < 400; i++) junk[i] = malloc((size_t)(i % 40 + 1) * 1000);
    for (int i = 0; i < 400; i++) free(junk[i]);
    int r = malloc_trim(0);
    CHECK("malloc_trim(0) returns 0 or 1", r == 0 || r == 1);
    r = malloc_trim(64 * KiB);
    CHECK("malloc_trim(64 KiB) returns 0 or 1", r == 0 || r == 1);
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (!check_fill(keep[i], (size_t)(i + 1) * 5000, (unsigned)i)) bad++;
    CHECK("live blocks intact after malloc_trim", bad == 0);
    /* Freed-and-trimmed memory is usable again. */
    for (int i = 0; i < 400; i++) {
        junk[i] = malloc((size_t)(i % 40 + 1) * 1000);
        memset(junk[i], 0x77, (size_t)(i % 40 + 1) * 1000);
    }
    for (int i = 0; i < 400; i++) free(junk[i]);
    bad = 0;
    for (int i = 0; i < N; i++)
        if (!check_fill(keep[i], (size_t)(i + 1) * 5000, (unsigned)i)) bad++;
    CHECK("live blocks intact after reusing trimmed memory", bad == 0);
    for (int i = 0; i < N; i++) free(keep[i]);

    static const int params[][2] = {{M_MMAP_THRESHOLD, 1 << 20}, {M_TRIM_THRESHOLD, 1 << 21},
                                    {M_TOP_PAD, 1 << 16},        {M_ARENA_MAX, 4},
                                    {M_MMAP_MAX, 65536},         {M_PERTURB, 0}};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        r = mallopt(params[i][0], params[i][1]);
        CHECK("mallopt returns 0 or 1", r == 0 || r == 1);
    }
    r = mallopt(-12345, 1);
    CHECK("mallopt(unknown parameter) returns 0 or 1", r == 0 || r == 1);
    char *p = malloc(2 * MiB);
    fill(p, 2 * MiB, 11);
    char *s = malloc(100);
    fill(s, 100, 12);
    CHECK("allocations work after mallopt", check_fill(p, 2 * MiB, 11) && check_fill(s, 100, 12));
    free(p);
    free(s);
}

/* ---- mallinfo, mallinfo2, malloc_stats, malloc_info ---- */
static void test_introspection(void) {
    struct mallinfo2 before = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo before1 = mallinfo();
#pragma GCC diagnostic pop
    char *p = malloc(10 * MiB);
    memset(p, 1, 10 * MiB);
    struct mallinfo2 after = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo after1 = mallinfo();
#pragma GCC diagnostic pop
    size_t grow_u = after.uordblks - before.uordblks;
    size_t grow_h = after.hblkhd - before.hblkhd;
    size_t grow_a = after.arena - before.arena;
    int grew = (after.uordblks >= before.uordblks && grow_u >= 10 * MiB) ||
               (after.hblkhd >= before.hblkhd && grow_h >= 10 * MiB) ||
               (after.arena >= before.arena && grow_a >= 10 * MiB);
    if (!grew)
        fprintf(stderr, "  mallinfo2 before: arena %zu uord %zu hblkhd %zu; after: %zu %zu %zu\n",
                before.arena, before.uordblks, before.hblkhd, after.arena, after.uordblks,
                after.hblkhd);
    CHECK("mallinfo2 uordblks/hblkhd/arena grows by >= 10 MiB with 10 MiB live", grew);
    long g1 = (long)after1.uordblks - before1.uordblks, g2 = (long)after1.hblkhd - before1.hblkhd,
         g3 = (long)after1.arena - before1.arena;
    CHECK("mallinfo uordblks/hblkhd/arena grows by >= 10 MiB with 10 MiB live",
          g1 >= (long)(10 * MiB) || g2 >= (long)(10 * MiB) || g3 >= (long)(10 * MiB));
    free(p);

    /* malloc_stats writes to stderr: capture fd 2 in a temp file. */
    fflush(stderr);
    FILE *cap = tmpfile();
    int saved = dup(2);
    dup2(fileno(cap), 2);
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = lseek(fileno(cap), 0, SEEK_END);
    CHECK("malloc_stats prints something to stderr", n > 0);
    fclose(cap);

    FILE *f = tmpfile();
    int rc = malloc_info(0, f);
    CHECK("malloc_info(0, f) returns 0", rc == 0);
    fflush(f);
    rewind(f);
    char buf[64] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    CHECK("malloc_info output starts with \"<malloc\"", got >= 7 && strncmp(buf, "<malloc", 7) == 0);
    fclose(f);
}

/* ---- many live blocks do not overlap ---- */
struct blk { char *p; size_t size, usable; unsigned seed; };
static int by_addr(const void *a, const void *b) {
    const struct blk *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}
static void test_overlap(void) {
    enum { N = 10000 };
    static struct blk b[N];
    int nulls = 0;
    for (int i = 0; i < N; i++) {
        uint64_t r = rnd() % 1000;
        size_t s;
        if (r < 700) s = rnd() % 257;
        else if (r < 950) s = 257 + rnd() % (16 * KiB);
        else if (r < 999) s = 16 * KiB + rnd() % (112 * KiB);
        else s = MiB + rnd() % (3 * MiB);
        b[i].p = malloc(s);
        b[i].size = s;
        b[i].seed = (unsigned)(i * 2654435761u >> 7);
        if (!b[i].p) { nulls++; b[i].usable = 0; continue; }
        b[i].usable = malloc_usable_size(b[i].p);
        fill(b[i].p, s, b[i].seed);
    }
    CHECK("10,000 random mallocs succeed", nulls == 0);
    int corrupt = 0;
    for (int i = 0; i < N; i++)
        if (b[i].p && !check_fill(b[i].p, b[i].size, b[i].seed)) corrupt++;
    CHECK("10,000 live blocks keep their own pattern (no overlap)", corrupt == 0);

    static struct blk s[N];
    memcpy(s, b, sizeof s);
    qsort(s, N, sizeof s[0], by_addr);
    int overlaps = 0;
    for (int i = 1; i < N; i++)
        if (s[i - 1].p && s[i].p && s[i - 1].p + (s[i - 1].usable ? s[i - 1].usable : 1) > s[i].p)
            overlaps++;
    CHECK("live blocks' usable ranges are disjoint", overlaps == 0);

    /* free in random order, re-verifying a sample of survivors */
    int order[N];
    for (int i = 0; i < N; i++) order[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(rnd() % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    corrupt = 0;
    for (int k = 0; k < N; k++) {
        int i = order[k];
        if (!check_fill(b[i].p, b[i].size, b[i].seed)) corrupt++;
        free(b[i].p);
        b[i].p = NULL;
    }
    CHECK("blocks intact until freed in random order", corrupt == 0);
}

/* Many large blocks (each its own mapping) live at once. */
static void test_many_large(void) {
    enum { N = 300 };
    static unsigned char *p[N];
    static size_t sz[N];
    int nulls = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        sz[i] = 256 * KiB + 1 + rnd() % (6 * MiB);
        p[i] = malloc(sz[i]);
        if (!p[i]) { nulls++; continue; }
        if (!aligned(p[i], 16) || malloc_usable_size(p[i]) < sz[i]) bad++;
        for (size_t off = 0; off < sz[i]; off += 64 * KiB) p[i][off] = (unsigned char)i;
        p[i][sz[i] - 1] = (unsigned char)(i + 1);
    }
    CHECK("300 large blocks (256 KiB..6 MiB) live at once: all allocated", nulls == 0);
    CHECK("300 large blocks: aligned, usable >= requested", bad == 0);
    bad = 0;
    for (int i = 0; i < N; i += 2) {
        if (!p[i]) continue;
        for (size_t off = 0; off < sz[i]; off += 64 * KiB)
            if (p[i][off] != (unsigned char)i) bad++;
        if (p[i][sz[i] - 1] != (unsigned char)(i + 1)) bad++;
        free(p[i]);
        p[i] = NULL;
    }
    for (int i = 1; i < N; i += 2) { /* realloc the survivors */
        if (!p[i]) continue;
        unsigned char *q = realloc(p[i], sz[i] * 2);
        if (!q) { bad++; continue; }
        p[i] = q;
        for (size_t off = 0; off < sz[i]; off += 64 * KiB)
            if (q[off] != (unsigned char)i) bad++;
        if (q[sz[i] - 1] != (unsigned char)(i + 1)) bad++;
        free(q);
    }
    CHECK("300 large blocks keep their contents through free of neighbours and realloc x2",
          bad == 0);
}

/* ---- freed memory is reused ---- */
static size_t vm_size_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}
static void test_reuse(void) {
    static const size_t sizes[] = {100, 3000, 40000};
    static const int iters[] = {100000, 10000, 1000};
    for (int k = 0; k < 3; k++) {
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        for (int i = 0; i < iters[k]; i++) {
            char *p = malloc(sizes[k]);
            p[0] = 1;
            if ((uintptr_t)p < lo) lo = (uintptr_t)p;
            if ((uintptr_t)p > hi) hi = (uintptr_t)p;
            free(p);
        }
        /* Without reuse the addresses would spread over >= 10 MB. */
        CHECK("malloc/free of one size reuses memory (addresses within 4 MiB)", hi - lo < 4 * MiB);
    }
    char *a = malloc(100);
    uintptr_t first = (uintptr_t)a;
    free(a);
    a = malloc(100);
    uintptr_t dist = (uintptr_t)a > first ? (uintptr_t)a - first : first - (uintptr_t)a;
    CHECK("malloc(100) after free(malloc(100)) comes from the same region (within 4 MiB)",
          dist < 4 * MiB);
    free(a);

    /* realloc(p, 0) really frees: 64 x 256 MiB would be 16 GiB if leaked. */
    free(realloc(malloc(256 * MiB), 0)); /* warm-up: lets a cache or reservation settle */
    size_t vm0 = vm_size_bytes();
    for (int i = 0; i < 64; i++) {
        char *p = malloc(256 * MiB);
        if (!p) break;
        p[0] = 1;
        p[256 * MiB - 1] = 1;
        free(realloc(p, 0));
    }
    size_t vm1 = vm_size_bytes();
    CHECK("realloc(p,0) releases the block (VmSize grows < 4 GiB over 64 x 256 MiB)",
          vm0 && vm1 < vm0 + ((size_t)4 << 30));
    /* free of large blocks releases too */
    for (int i = 0; i < 64; i++) {
        char *p = malloc(256 * MiB);
        if (!p) break;
        p[0] = 1;
        free(p);
    }
    size_t vm2 = vm_size_bytes();
    CHECK("free(large) releases address space (VmSize grows < 4 GiB over 64 x 256 MiB)",
          vm0 && vm2 < vm0 + ((size_t)4 << 30));
}

int main(void) {
    TEST_BEGIN("api/semantics");
    const char *pre = getenv("LD_PRELOAD");
    under_mspace = pre && strstr(pre, "libmspace");
    if (under_mspace) test_symbols();
    test_alignment();
    test_zero();
    test_realloc();
    test_failures();
    test_calloc();
    test_aligned();
    test_usable();
    test_errno();
    test_trim_mallopt();
    test_introspection();
    test_overlap();
    test_many_large();
    test_reuse();
    return TEST_DONE();
}
