/* realloc keeps every usable byte, and usable sizes hold still.
 *
 * malloc_usable_size promises the caller may use that many bytes, so realloc
 * must carry all of them, not just the size first asked for. For blocks
 * from every entry point (malloc, calloc, realloc(NULL), posix_memalign,
 * aligned_alloc, memalign, valloc) and sizes across every size class
 * boundary and into large blocks, the whole usable size is written, then the
 * block goes through a chain of reallocs: growing by one byte past the
 * usable size (the next class), doubling, jumping to a large block, growing
 * a large block by small and big steps (in place or moved), shrinking to
 * half and to a few bytes. After each step every byte that was usable
 * before (up to the new size) must be intact, and the new usable size at
 * least what was asked. Meanwhile a set of live blocks of all sizes keeps
 * its usable sizes and contents, checked after every chain
 * (api/semantics.c checks that under malloc/free churn; here realloc moves
 * and remaps neighbours). Runs in about a second; passes on glibc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../pattern.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { E_MALLOC, E_CALLOC, E_REALLOC_NULL, E_POSIX_MEMALIGN, E_ALIGNED_ALLOC, E_MEMALIGN,
       E_VALLOC, E_COUNT };
static const char *entry_name[E_COUNT] = {"malloc", "calloc", "realloc(NULL)", "posix_memalign",
                                          "aligned_alloc", "memalign", "valloc"};

static unsigned char *make(int e, size_t n) {
    void *p = NULL;
    switch (e) {
    case E_MALLOC: p = malloc(n); break;
    case E_CALLOC: p = calloc(1, n); break;
    case E_REALLOC_NULL: p = realloc(NULL, n); break;
    case E_POSIX_MEMALIGN:
        if (posix_memalign(&p, 64, n) != 0)
            p = NULL;
        break;
    case E_ALIGNED_ALLOC: p = aligned_alloc(256, (n + 255) & ~(size_t)255); break;
    case E_MEMALIGN: p = memalign(32 * KiB, n); break;
    case E_VALLOC: p = valloc(n); break;
    }
    return p;
}

/* Live bystanders: their usable size and contents must not change. */
#define BYSTANDERS 120
static unsigned char *by[BYSTANDERS];
static size_t by_usable[BYSTANDERS];

static void bystanders_make(void) {
    for (int i = 0; i < BYSTANDERS; i++) {
        size_t n = i < 100 ? (size_t)(i * i * 13 + 1) : (size_t)(i - 99) * 150 * KiB;
        by[i] = malloc(n);
        by_usable[i] = malloc_usable_size(by[i]);
        fill(by[i], by_usable[i], 0xb000 + (uint64_t)i);
    }
}

static int bystanders_bad(void) {
    int bad = 0;
    for (int i = 0; i < BYSTANDERS; i++)
        bad += malloc_usable_size(by[i]) != by_usable[i] ||
               !intact(by[i], by_usable[i], 0xb000 + (uint64_t)i);
    return bad;
}

/* One realloc step: p's usable bytes carry pattern `tag`; returns the new
 * block (its whole usable size refilled with tag + 1) or NULL on a failure,
 * counted in *bad with a message. */
static unsigned char *step(unsigned char *p, size_t to, uint64_t *tag, int *bad, const char *what,
                           size_t from) {
    size_t usable = malloc_usable_size(p);
    unsigned char *q = realloc(p, to);
    if (q == NULL) {
        fprintf(stderr, "  detail: %s: realloc to %zu failed (errno %d)\n", what, to, errno);
        (*bad)++;
        return p;
    }
    size_t kept = usable < to ? usable : to;
    long at = pattern_first_bad(q, kept, *tag);
    size_t now = malloc_usable_size(q);
    if (at >= 0 || now < to) {
        if (*bad < 5)
            fprintf(stderr,
                    "  detail: %s (from %zu B): realloc %zu -> %zu (usable %zu -> %zu): %s%ld\n",
                    what, from, usable, to, usable, now,
                    at >= 0 ? "first changed byte at " : "usable below request, ", at);
        (*bad)++;
    }
    (*tag)++;
    fill(q, now, *tag);
    return q;
}

int main(void) {
    TEST_BEGIN("api/realloc_usable");
    bystanders_make();
    /* Sizes around class boundaries (16 B steps, then quarter steps) and
     * past the largest class into large blocks. */
    size_t sizes[200];
    int nsizes = 0;
    for (size_t s = 1; s <= 144; s += 15)
        sizes[nsizes++] = s;
    for (size_t base = 128; base <= 256 * KiB && nsizes < 180; base *= 2)
        for (int q = 1; q <= 4; q++) {
            size_t b = base + base / 4 * (size_t)q;
            sizes[nsizes++] = b;
            sizes[nsizes++] = b + 1;
        }
    sizes[nsizes++] = 256 * KiB + 1;
    sizes[nsizes++] = 700 * KiB;
    sizes[nsizes++] = 3 * MiB + 5;

    int bad = 0, chains = 0, by_bad = 0;
    for (int e = 0; e < E_COUNT; e++)
        for (int i = 0; i < nsizes; i++) {
            size_t n = sizes[i];
            unsigned char *p = make(e, n);
            if (p == NULL) {
                bad++;
                continue;
            }
            uint64_t tag = ((uint64_t)e << 40) | ((uint64_t)i << 20);
            fill(p, malloc_usable_size(p), tag);
            const char *what = entry_name[e];
            p = step(p, malloc_usable_size(p) + 1, &tag, &bad, what, n); /* next class */
            p = step(p, malloc_usable_size(p) * 2, &tag, &bad, what, n);
            p = step(p, malloc_usable_size(p) + 300 * KiB, &tag, &bad, what, n); /* large */
            p = step(p, malloc_usable_size(p) + 4096, &tag, &bad, what, n);     /* a page */
            size_t far = i % 8 ? 1 * MiB : 5 * MiB; /* moved, most likely */
            p = step(p, malloc_usable_size(p) + far, &tag, &bad, what, n);
            p = step(p, malloc_usable_size(p) / 2, &tag, &bad, what, n);
            p = step(p, 100 * KiB, &tag, &bad, what, n); /* back to a small class */
            p = step(p, 33, &tag, &bad, what, n);
            p = step(p, 5000, &tag, &bad, what, n);
            free(p);
            chains++;
            if (i % 16 == 0)
                by_bad += bystanders_bad();
        }
    by_bad += bystanders_bad();
    printf("api/realloc_usable: %d realloc chains (%d sizes x %d entry points, 9 steps each)\n",
           chains, nsizes, E_COUNT);
    CHECK("realloc keeps every usable byte (up to the new size) in every step", bad == 0);
    CHECK("live blocks keep their usable size and contents throughout", by_bad == 0);
    for (int i = 0; i < BYSTANDERS; i++)
        free(by[i]);
    return TEST_DONE();
}
