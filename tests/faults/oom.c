/* Out of memory: every entry point, run until the address space runs out.
 *
 * Each case runs in a forked child under RLIMIT_AS = address space in use +
 * HEADROOM (tests/faults/faults.h), so the limit does not leak. For each entry
 * point (malloc small and large, calloc small and large, realloc(NULL),
 * reallocarray(NULL), posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc, strdup) the child allocates blocks until one fails, filling each
 * with a pattern; then:
 *   - the failure is NULL with errno ENOMEM (posix_memalign: returns ENOMEM,
 *     leaves errno and *out alone), and so are a few more calls;
 *   - at that point every other entry point fails the same way or returns a
 *     block whose whole usable size is writable;
 *   - after freeing every other block, allocating as many again as a quarter
 *     of the freed ones succeeds, and every surviving block is intact.
 * Then: memory freed by one kind of block serves another as well as if the
 * first had never been there (all small blocks freed, large ones fit in
 * their place, and the other way round); realloc
 * that cannot grow a block (large in place/moved, small to large, small to a
 * new class, reallocarray) returns NULL with ENOMEM and leaves the block, its
 * whole usable size and its usable size unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../pattern.h"
#include "faults.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define HEADROOM (192 * MiB)
#define MAX_BLOCKS 40000000L /* far more than HEADROOM holds: the limit must bite */

enum kind {
    K_MALLOC_SMALL, K_MALLOC_LARGE, K_CALLOC_SMALL, K_CALLOC_LARGE, K_REALLOC_NULL,
    K_REALLOCARRAY, K_POSIX_MEMALIGN, K_ALIGNED_ALLOC, K_MEMALIGN, K_VALLOC, K_PVALLOC,
    K_STRDUP, K_COUNT
};
static const char *kind_name[K_COUNT] = {
    "malloc(16..64)", "malloc(300 KiB..1 MiB)", "calloc(1, 16..64)", "calloc(1, 300 KiB..1 MiB)",
    "realloc(NULL, 16..2000)", "reallocarray(NULL, n, 8)", "posix_memalign(64, ..)",
    "aligned_alloc(256, ..)", "memalign(4096, ..)", "valloc(..)", "pvalloc(..)", "strdup(..)",
};

/* Each block starts with this header; a pattern of its tag fills the rest
 * of the requested size. */
typedef struct node {
    struct node *next;
    size_t size;
    uint64_t tag;
} node_t;

static uint64_t rng = 0x51a7e;
static char strdup_source[1100 * 1024];

static size_t size_for(enum kind k, uint64_t r) {
    switch (k) {
    case K_MALLOC_SMALL:
    case K_CALLOC_SMALL:
        return 24 + r % 41; /* 24..64: the header fits */
    case K_MALLOC_LARGE:
    case K_CALLOC_LARGE:
        return 300 * KiB + r % (724 * KiB);
    case K_REALLOC_NULL:
        return 24 + r % 1977;
    default: /* one large block in eight, like a real mix */
        return r % 8 == 0 ? 300 * KiB + r % (724 * KiB) : 24 + r % 4000;
    }
}

/* One allocation of kind k and size n; NULL with *err the error seen (the
 * errno, or posix_memalign's result). *errno_kept: posix_memalign left errno
 * and *out alone. */
static void *alloc_kind(enum kind k, size_t n, int *err, int *errno_kept) {
    void *p = NULL;
    errno = 0;
    *errno_kept = 1;
    switch (k) {
    case K_MALLOC_SMALL:
    case K_MALLOC_LARGE:
        p = malloc(n);
        break;
    case K_CALLOC_SMALL:
    case K_CALLOC_LARGE:
        p = calloc(1, n);
        break;
    case K_REALLOC_NULL:
        p = realloc(NULL, n);
        break;
    case K_REALLOCARRAY:
        p = reallocarray(NULL, (n + 7) / 8, 8);
        break;
    case K_POSIX_MEMALIGN: {
        void *out = (void *)0x5a5a;
        errno = 4321;
        int rc = posix_memalign(&out, 64, n);
        *errno_kept = errno == 4321 && (rc == 0 || out == (void *)0x5a5a);
        *err = rc;
        return rc == 0 ? out : NULL;
    }
    case K_ALIGNED_ALLOC:
        p = aligned_alloc(256, (n + 255) & ~(size_t)255);
        break;
    case K_MEMALIGN:
        p = memalign(4096, n);
        break;
    case K_VALLOC:
        p = valloc(n);
        break;
    case K_PVALLOC:
        p = pvalloc(n);
        break;
    case K_STRDUP: {
        char saved = strdup_source[n - 1];
        strdup_source[n - 1] = '\0';
        p = strdup(strdup_source);
        strdup_source[n - 1] = saved;
        break;
    }
    default:
        break;
    }
    *err = p ? 0 : errno;
    return p;
}

static int is_calloc(enum kind k) { return k == K_CALLOC_SMALL || k == K_CALLOC_LARGE; }

static void stamp(node_t *b, size_t size, uint64_t tag) {
    b->size = size;
    b->tag = tag;
    fill((unsigned char *)(b + 1), size - sizeof *b, tag);
}

static int block_ok(const node_t *b) {
    return intact((const unsigned char *)(b + 1), b->size - sizeof *b, b->tag);
}

/* Allocates kind k onto *list until a call fails or `limit` blocks; counts
 * the blocks and bytes. Returns the failure's error (0: none). */
static int fill_until(enum kind k, node_t **list, long limit, long *blocks, size_t *bytes,
                      int *bad_first, int *errno_kept_all) {
    for (long i = 0; i < limit; i++) {
        size_t n = size_for(k, rnd(&rng));
        int err, kept;
        node_t *b = alloc_kind(k, n, &err, &kept);
        if (!kept)
            *errno_kept_all = 0;
        if (b == NULL)
            return err ? err : -1;
        if (is_calloc(k)) { /* zero: look at both ends and a word in the middle */
            unsigned char *c = (unsigned char *)b;
            if (c[0] || c[n - 1] || c[n / 2])
                (*bad_first)++;
        }
        if (k == K_STRDUP && ((char *)b)[n - 2] != 'x')
            (*bad_first)++;
        stamp(b, n, rnd(&rng));
        b->next = *list;
        *list = b;
        (*blocks)++;
        *bytes += n;
    }
    return 0;
}

static long free_list(node_t **list, int *bad) {
    long n = 0;
    for (node_t *b = *list, *next; b; b = next) {
        next = b->next;
        if (!block_ok(b))
            (*bad)++;
        free(b);
        n++;
    }
    *list = NULL;
    return n;
}

/* Every entry point once, at the exhaustion point: NULL with ENOMEM, or a
 * block that is really usable. */
static void try_every_entry(enum kind exhausted, int *wrong) {
    for (int k = 0; k < K_COUNT; k++) {
        size_t n = size_for((enum kind)k, rnd(&rng));
        int err, kept;
        void *p = alloc_kind((enum kind)k, n, &err, &kept);
        if (p == NULL ? err != ENOMEM || !kept : malloc_usable_size(p) < n) {
            fprintf(stderr, "  detail: after %s ran out, %s(%zu) gave %p, error %d%s\n",
                    kind_name[exhausted], kind_name[k], n, p, err, kept ? "" : ", errno touched");
            (*wrong)++;
        }
        if (p) {
            memset(p, 0xee, malloc_usable_size(p));
            free(p);
        }
    }
}

static enum kind current;

static void exhaust_case(void) {
    enum kind k = current;
    char name[200];
    node_t *list = NULL;
    long blocks = 0;
    size_t bytes = 0;
    int bad_first = 0, kept_all = 1, bad = 0;
    int err = fill_until(k, &list, MAX_BLOCKS, &blocks, &bytes, &bad_first, &kept_all);
    printf("  %-26s %9ld blocks, %6.1f MiB before the first failure (limit %zu MiB)\n",
           kind_name[k], blocks, bytes / (double)MiB, child_limit / MiB);
    snprintf(name, sizeof name, "%s: fails once the address space is used up", kind_name[k]);
    CHECK(name, err != 0);
    snprintf(name, sizeof name, "%s: the failure is ENOMEM", kind_name[k]);
    CHECK(name, err == ENOMEM);
    snprintf(name, sizeof name, "%s: used at least half the headroom first", kind_name[k]);
    CHECK(name, bytes >= HEADROOM / 2);
    if (k == K_POSIX_MEMALIGN) {
        CHECK("posix_memalign: errno and *out untouched, also when it fails", kept_all);
    }
    snprintf(name, sizeof name, "%s: fresh blocks zeroed / copied", kind_name[k]);
    CHECK(name, bad_first == 0);

    int again = 0;
    for (int i = 0; i < 5; i++) {
        int e, kept;
        void *p = alloc_kind(k, size_for(k, rnd(&rng)), &e, &kept);
        if (p == NULL && e == ENOMEM)
            again++;
        else if (p)
            free(p), again++; /* something got freed meanwhile: fine */
    }
    snprintf(name, sizeof name, "%s: further calls keep failing cleanly", kind_name[k]);
    CHECK(name, again == 5);
    int wrong = 0;
    try_every_entry(k, &wrong);
    snprintf(name, sizeof name, "%s exhausted: every entry point fails with ENOMEM or works",
             kind_name[k]);
    CHECK(name, wrong == 0);

    /* Free every other block. */
    long freed = 0;
    for (node_t *b = list; b && b->next; b = b->next) {
        node_t *gone = b->next;
        b->next = gone->next;
        if (!block_ok(gone))
            bad++;
        free(gone);
        freed++;
    }
    long more = 0;
    size_t more_bytes = 0;
    int bad_again = 0;
    err = fill_until(k, &list, freed / 4, &more, &more_bytes, &bad_again, &kept_all);
    snprintf(name, sizeof name, "%s: after freeing half, allocation works again", kind_name[k]);
    CHECK(name, err == 0 && more == freed / 4 && bad_again == 0);
    if (more != freed / 4)
        fprintf(stderr, "  detail: freed %ld blocks, then only %ld of %ld allocations worked\n",
                freed, more, freed / 4);
    free_list(&list, &bad);
    snprintf(name, sizeof name, "%s: every block intact until freed", kind_name[k]);
    CHECK(name, bad == 0);
}

/* All blocks of one kind freed: the memory must serve the other kind as
 * well as it did before the first kind was there (measured first, so block
 * overheads, which differ between builds, cancel out). */
static enum kind cross_from, cross_to;

static void cross_case(void) {
    node_t *list = NULL;
    long blocks = 0;
    size_t alone = 0, first = 0, after = 0;
    int bad = 0, kept = 1;
    fill_until(cross_to, &list, MAX_BLOCKS, &blocks, &alone, &bad, &kept);
    free_list(&list, &bad);
    fill_until(cross_from, &list, MAX_BLOCKS, &blocks, &first, &bad, &kept);
    free_list(&list, &bad);
    fill_until(cross_to, &list, MAX_BLOCKS, &blocks, &after, &bad, &kept);
    free_list(&list, &bad);
    printf("  %s: %.1f MiB alone; %.1f MiB after %s took %.1f MiB and freed it\n",
           kind_name[cross_to], alone / (double)MiB, after / (double)MiB, kind_name[cross_from],
           first / (double)MiB);
    char name[200];
    snprintf(name, sizeof name, "memory freed by %s serves %s (>= 90%% of what it got alone)",
             kind_name[cross_from], kind_name[cross_to]);
    CHECK(name, after >= alone / 10 * 9);
    CHECK("blocks intact in the cross-kind case", bad == 0);
}

/* realloc that cannot grow: NULL, ENOMEM, block untouched. */
static int realloc_fails_cleanly(unsigned char **p, size_t new_size, int array, const char *what) {
    size_t usable = malloc_usable_size(*p);
    fill(*p, usable, usable);
    errno = 0;
    unsigned char *q = array ? reallocarray(*p, new_size / 16, 16) : realloc(*p, new_size);
    if (q) { /* it fitted after all: not this test's business */
        *p = q;
        return -1;
    }
    int ok = errno == ENOMEM && malloc_usable_size(*p) == usable && intact(*p, usable, usable);
    if (!ok)
        fprintf(stderr, "  detail: %s: errno %d, usable %zu -> %zu, contents %s\n", what, errno,
                usable, malloc_usable_size(*p), intact(*p, usable, usable) ? "kept" : "CHANGED");
    return ok;
}

static void realloc_case(void) {
    /* A large block grown by half each time until it cannot grow. */
    unsigned char *p = malloc(MiB);
    size_t size = MiB;
    int grew = 0, kept = 1;
    fill(p, MiB, 1);
    for (;;) {
        size_t usable = malloc_usable_size(p);
        fill(p, usable, 7 + usable);
        size_t next = size + size / 2;
        errno = 0;
        unsigned char *q = realloc(p, next);
        if (q == NULL) {
            CHECK("realloc growing a large block: fails with ENOMEM", errno == ENOMEM);
            kept = malloc_usable_size(p) == usable && intact(p, usable, 7 + usable);
            break;
        }
        if (!intact(q, usable, 7 + usable))
            kept = 0;
        p = q;
        size = next;
        grew++;
    }
    printf("  realloc grew 1 MiB x1.5 %d times, up to %.1f MiB, then failed\n", grew,
           size / (double)MiB);
    /* Old and new may coexist for a moment (a copy, or a move to a 4 MiB-
     * aligned place), so in x1.5 steps the block reaches at least half the
     * headroom; glibc's plain mremap reaches nearly all of it. */
    CHECK("realloc growing a large block: grew past half the headroom first",
          size >= HEADROOM / 2);
    CHECK("realloc growing a large block: every usable byte kept, also on failure", kept);
    free(p);

    /* Large blocks use up the address space; then small blocks try to grow. */
    unsigned char *small = malloc(100), *mid = malloc(3000);
    unsigned char *big = malloc(2 * MiB);
    node_t *list = NULL;
    long blocks = 0;
    size_t bytes = 0;
    int bad = 0, errno_kept = 1;
    fill_until(K_MALLOC_LARGE, &list, MAX_BLOCKS, &blocks, &bytes, &bad, &errno_kept);
    /* and the small classes too, so no new span fits */
    fill_until(K_MALLOC_SMALL, &list, MAX_BLOCKS, &blocks, &bytes, &bad, &errno_kept);
    int r;
    r = realloc_fails_cleanly(&small, 4 * MiB, 0, "realloc(100 B -> 4 MiB)");
    CHECK("realloc small -> large at the limit: NULL, ENOMEM, block unchanged", r != 0);
    r = realloc_fails_cleanly(&big, 64 * MiB, 0, "realloc(2 MiB -> 64 MiB)");
    CHECK("realloc large -> larger at the limit: NULL, ENOMEM, block unchanged", r != 0);
    r = realloc_fails_cleanly(&mid, 40000, 0, "realloc(3000 B -> 40000 B)");
    CHECK("realloc small -> new small class at the limit: NULL, ENOMEM or moved, block unchanged",
          r != 0);
    r = realloc_fails_cleanly(&big, 128 * MiB, 1, "reallocarray(2 MiB -> 128 MiB)");
    CHECK("reallocarray growing at the limit: NULL, ENOMEM, block unchanged", r != 0);
    free_list(&list, &bad);
    /* Room again: the same blocks now grow. */
    unsigned char *q = realloc(big, 64 * MiB);
    CHECK("after freeing, realloc grows the block it could not grow before", q != NULL);
    if (q)
        big = q;
    free(small);
    free(mid);
    free(big);
    CHECK("blocks intact in the realloc case", bad == 0);
}

int main(void) {
    TEST_BEGIN("faults/oom");
    memset(strdup_source, 'x', sizeof strdup_source);
    for (int k = 0; k < K_COUNT; k++) {
        current = (enum kind)k;
        child_run(kind_name[k], HEADROOM, 60, exhaust_case);
    }
    cross_from = K_MALLOC_SMALL, cross_to = K_MALLOC_LARGE;
    child_run("small blocks freed, large ones allocated", HEADROOM, 60, cross_case);
    cross_from = K_MALLOC_LARGE, cross_to = K_MALLOC_SMALL;
    child_run("large blocks freed, small ones allocated", HEADROOM, 60, cross_case);
    cross_from = K_CALLOC_LARGE, cross_to = K_MEMALIGN;
    child_run("large blocks freed, aligned ones allocated", HEADROOM, 60, cross_case);
    child_run("realloc at the limit", HEADROOM, 60, realloc_case);
    return TEST_DONE();
}
