/* Sizes and alignments at the edge of size_t, for every entry point.
 *
 * api/semantics.c tries one absurd size per function; here every entry point
 * meets every edge size: SIZE_MAX and a few bytes, a page, a segment and
 * 64 MiB below it, PTRDIFF_MAX +1/-1/-4095 and 2^47 (the size of user
 * address space) and 2^46 (more than any test machine has). Each call must
 * return NULL with errno ENOMEM (posix_memalign: return ENOMEM, errno and
 * *out untouched); calloc and reallocarray also with products that overflow
 * by one and products that fit in size_t but exceed PTRDIFF_MAX. realloc and
 * reallocarray are tried on a small, a large and a 1 MiB-aligned block, and
 * each block must keep its usable size and every usable byte. Alignments:
 * every power of two up to 2^63 with small sizes (success and aligned, or
 * NULL with ENOMEM), and invalid ones (0, 3, 24, SIZE_MAX, 2^63+1) with
 * EINVAL where POSIX and glibc say so. Runs in about a second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../pattern.h"
#include "faults.h"

#define MiB ((size_t)1 << 20)

/* The compiler must not see these (no -Walloc-size-larger-than, no folding). */
static volatile size_t v_size_max = SIZE_MAX, v_ptrdiff_max = PTRDIFF_MAX;

static void *launder(void *p) {
    void *volatile v = p;
    return v;
}

enum entry {
    E_MALLOC, E_CALLOC_1N, E_CALLOC_N1, E_REALLOC_NULL, E_REALLOCARRAY_NULL, E_POSIX_MEMALIGN_16,
    E_POSIX_MEMALIGN_4096, E_POSIX_MEMALIGN_2M, E_ALIGNED_ALLOC_64, E_ALIGNED_ALLOC_8M,
    E_MEMALIGN_32, E_MEMALIGN_1M, E_VALLOC, E_PVALLOC, E_COUNT
};
static const char *entry_name[E_COUNT] = {
    "malloc(n)", "calloc(1, n)", "calloc(n, 1)", "realloc(NULL, n)", "reallocarray(NULL, 1, n)",
    "posix_memalign(16, n)", "posix_memalign(4096, n)", "posix_memalign(2 MiB, n)",
    "aligned_alloc(64, n)", "aligned_alloc(8 MiB, n)", "memalign(32, n)", "memalign(1 MiB, n)",
    "valloc(n)", "pvalloc(n)",
};

/* Calls entry e with size n; returns the block and sets *err to the error
 * seen (errno, or posix_memalign's result) and *quiet to whether
 * posix_memalign left errno and *out alone. */
static void *call(enum entry e, size_t n, int *err, int *quiet) {
    void *p = NULL;
    *quiet = 1;
    errno = 0;
    switch (e) {
    case E_MALLOC: p = malloc(n); break;
    case E_CALLOC_1N: p = calloc(1, n); break;
    case E_CALLOC_N1: p = calloc(n, 1); break;
    case E_REALLOC_NULL: p = realloc(NULL, n); break;
    case E_REALLOCARRAY_NULL: p = reallocarray(NULL, 1, n); break;
    case E_POSIX_MEMALIGN_16:
    case E_POSIX_MEMALIGN_4096:
    case E_POSIX_MEMALIGN_2M: {
        size_t a = e == E_POSIX_MEMALIGN_16 ? 16 : e == E_POSIX_MEMALIGN_4096 ? 4096 : 2 * MiB;
        void *out = (void *)0x7777;
        errno = 4321;
        int rc = posix_memalign(&out, a, n);
        *quiet = errno == 4321 && (rc == 0 || out == (void *)0x7777);
        *err = rc;
        return rc == 0 ? out : NULL;
    }
    case E_ALIGNED_ALLOC_64: p = aligned_alloc(64, n); break;
    case E_ALIGNED_ALLOC_8M: p = aligned_alloc(8 * MiB, n); break;
    case E_MEMALIGN_32: p = memalign(32, n); break;
    case E_MEMALIGN_1M: p = memalign(MiB, n); break;
    case E_VALLOC: p = valloc(n); break;
    case E_PVALLOC: p = pvalloc(n); break;
    default: break;
    }
    *err = p ? 0 : errno;
    return p;
}

static size_t edge[16];
static int edges;

/* 2^46 bytes exceed RAM + swap, which the kernel refuses unless told to
 * overcommit always (vm.overcommit_memory = 1). */
static int overcommit_always(void) {
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = 0;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = 0;
        fclose(f);
    }
    return mode == 1;
}

static void init_edges(void) {
    size_t m = v_size_max, d = v_ptrdiff_max;
    size_t list[] = {m, m - 1, m - 15, m - 4095, m - 4 * MiB + 1, m - 64 * MiB,
                     d + 1, d, d - 1, d - 4095, d - 4 * MiB, (size_t)1 << 47,
                     (size_t)1 << 46};
    edges = (int)(sizeof list / sizeof list[0]) - overcommit_always();
    for (int i = 0; i < edges; i++)
        edge[i] = list[i];
}

static int every_entry_fails(const char **what, size_t *which) {
    int wrong = 0;
    for (int e = 0; e < E_COUNT; e++)
        for (int i = 0; i < edges; i++) {
            int err, quiet;
            void *p = call((enum entry)e, edge[i], &err, &quiet);
            if (p != NULL || err != ENOMEM || !quiet) {
                if (!wrong)
                    fprintf(stderr, "  detail: %s with n = %#zx: %p, error %d%s\n",
                            entry_name[e], edge[i], p, err, quiet ? "" : ", errno touched");
                *what = entry_name[e];
                *which = edge[i];
                wrong++;
            }
            free(p);
        }
    return wrong;
}

static void test_edge_sizes(void) {
    const char *what = "";
    size_t which = 0;
    int wrong = every_entry_fails(&what, &which);
    printf("  %d entry points x %d edge sizes: %d did not fail cleanly\n", E_COUNT, edges, wrong);
    CHECK("every entry point x every size near SIZE_MAX / PTRDIFF_MAX / 2^46-2^47: NULL, ENOMEM",
          wrong == 0);
}

static void test_products(void) {
    size_t m = v_size_max, d = v_ptrdiff_max;
    struct { size_t a, b; } pr[] = {
        {m / 2 + 1, 2},       /* overflows by one */
        {2, m / 2 + 1},
        {(size_t)1 << 32, (size_t)1 << 32}, /* exactly 2^64 */
        {m, m},
        {(d + 1) / 2, 2},     /* PTRDIFF_MAX + 1: fits size_t */
        {2, (d + 1) / 2},
        {(size_t)1 << 23, (size_t)1 << 24}, /* 2^47 */
        {3, (d / 3) + 1},
    };
    int wrong = 0, kept = 1;
    unsigned char *small = malloc(200), *large = malloc(3 * MiB), *aligned = memalign(MiB, 300000);
    unsigned char *blocks[3] = {small, large, aligned};
    size_t usable[3];
    for (int k = 0; k < 3; k++) {
        usable[k] = malloc_usable_size(blocks[k]);
        fill(blocks[k], usable[k], 100 + k);
    }
    for (size_t i = 0; i < sizeof pr / sizeof pr[0]; i++) {
        errno = 0;
        void *p = calloc(pr[i].a, pr[i].b);
        wrong += p != NULL || errno != ENOMEM;
        free(p);
        errno = 0;
        p = reallocarray(NULL, pr[i].a, pr[i].b);
        wrong += p != NULL || errno != ENOMEM;
        free(p);
        for (int k = 0; k < 3; k++) {
            errno = 0;
            p = reallocarray(launder(blocks[k]), pr[i].a, pr[i].b);
            if (p != NULL || errno != ENOMEM) {
                fprintf(stderr, "  detail: reallocarray(block %d, %#zx, %#zx): %p errno %d\n", k,
                        pr[i].a, pr[i].b, p, errno);
                wrong++;
            }
            if (p != NULL)
                blocks[k] = realloc(p, usable[k]);
        }
    }
    CHECK("calloc and reallocarray: products that overflow or exceed PTRDIFF_MAX give ENOMEM",
          wrong == 0);
    /* realloc of live blocks to every edge size */
    wrong = 0;
    for (int i = 0; i < edges; i++)
        for (int k = 0; k < 3; k++) {
            errno = 0;
            void *p = realloc(launder(blocks[k]), edge[i]);
            if (p != NULL || errno != ENOMEM) {
                fprintf(stderr, "  detail: realloc(block %d, %#zx): %p errno %d\n", k, edge[i], p,
                        errno);
                wrong++;
            }
            if (p != NULL) /* it moved: shrink it back and carry on */
                blocks[k] = realloc(p, usable[k]);
        }
    CHECK("realloc of a small, a large and an aligned block to every edge size: NULL, ENOMEM",
          wrong == 0);
    for (int k = 0; k < 3; k++)
        kept &= malloc_usable_size(blocks[k]) == usable[k] && intact(blocks[k], usable[k], 100 + k);
    CHECK("the blocks keep their usable size and every usable byte after all those failures",
          kept);
    for (int k = 0; k < 3; k++) {
        unsigned char *q = realloc(blocks[k], usable[k] * 2);
        CHECK("and they still grow normally", q && intact(q, usable[k], 100 + k));
        free(q ? q : blocks[k]);
    }
}

static void test_alignments(void) {
    int wrong = 0, granted = 0;
    for (int s = 4; s < 64; s++) {
        size_t a = (size_t)1 << s;
        for (int e = 0; e < 3; e++) {
            void *p = NULL;
            int err = 0, quiet = 1;
            errno = 0;
            if (e == 0) {
                p = aligned_alloc(a, 64);
                err = p ? 0 : errno;
            } else if (e == 1) {
                p = memalign(a, 1);
                err = p ? 0 : errno;
            } else {
                void *out = (void *)0x7777;
                errno = 4321;
                err = posix_memalign(&out, a, 100);
                quiet = errno == 4321 && (err == 0 || out == (void *)0x7777);
                p = err ? NULL : out;
            }
            if (p) {
                granted++;
                if (((uintptr_t)p & (a - 1)) != 0)
                    wrong++;
                memset(p, 0x3c, 64 < malloc_usable_size(p) ? 64 : malloc_usable_size(p));
                free(p);
            } else if (err != ENOMEM || !quiet) {
                fprintf(stderr, "  detail: alignment 2^%d, entry %d: error %d%s\n", s, e, err,
                        quiet ? "" : ", errno touched");
                wrong++;
            }
        }
    }
    printf("  power-of-two alignments 2^4..2^63: %d of 180 granted, %d wrong\n", granted, wrong);
    CHECK("alignments 2^4..2^63: an aligned block or NULL with ENOMEM, never a crash", wrong == 0);
    CHECK("alignments up to 1 GiB are granted", granted >= 3 * (30 - 4 + 1));

    /* Invalid alignments. */
    void *out = (void *)0x7777;
    int bad = 0;
    size_t inval[] = {0, 3, 24, 4097, v_size_max, v_size_max / 2 + 2};
    for (size_t i = 0; i < sizeof inval / sizeof inval[0]; i++) {
        errno = 4321;
        int rc = posix_memalign(&out, inval[i], 64);
        bad += rc != EINVAL || errno != 4321 || out != (void *)0x7777;
    }
    CHECK("posix_memalign with alignment 0, 3, 24, 4097, SIZE_MAX, 2^63+1: EINVAL, nothing touched",
          bad == 0);
    bad = 0;
    size_t huge_inval[] = {v_size_max, v_size_max / 2 + 2, v_size_max - 4095};
    for (size_t i = 0; i < 3; i++) {
        errno = 0;
        void *p = memalign(huge_inval[i], 16);
        bad += p != NULL || errno != EINVAL;
        free(p);
        errno = 0;
        p = aligned_alloc(huge_inval[i], 16);
        bad += p != NULL || errno != EINVAL;
        free(p);
    }
    CHECK("memalign / aligned_alloc with an alignment above 2^63: NULL, EINVAL", bad == 0);
    bad = 0;
    for (int s = 12; s < 64; s += 3) { /* valid alignment, impossible size */
        errno = 0;
        void *p = aligned_alloc((size_t)1 << s, v_size_max - 4095);
        bad += p != NULL || errno != ENOMEM;
        free(p);
        errno = 0;
        p = memalign((size_t)1 << s, v_ptrdiff_max);
        bad += p != NULL || errno != ENOMEM;
        free(p);
    }
    CHECK("huge alignment with a huge size: NULL, ENOMEM", bad == 0);
}

/* Same matrix with the address space nearly used up (RLIMIT_AS), so the
 * failures come from the kernel as well as from the size checks. */
static void limited_case(void) {
    const char *what = "";
    size_t which = 0;
    int wrong = every_entry_fails(&what, &which);
    errno = 0;
    void *p = malloc(512 * MiB);
    CHECK("under RLIMIT_AS: malloc beyond the limit gives ENOMEM", p == NULL && errno == ENOMEM);
    free(p);
    CHECK("under RLIMIT_AS: every entry point x edge size fails cleanly", wrong == 0);
    p = malloc(MiB);
    CHECK("under RLIMIT_AS: a modest block still works", p != NULL);
    free(p);
}

int main(void) {
    TEST_BEGIN("faults/limits");
    init_edges();
    test_edge_sizes();
    test_products();
    test_alignments();
    child_run("edge sizes under RLIMIT_AS", 64 * MiB, 30, limited_case);
    return TEST_DONE();
}
