/* The entry points (core/alloc.[ch]): the inline fast paths, ms_alloc for
 * every size and power-of-two alignment, ms_usable_size, ms_realloc, and
 * misuse: each bad free/realloc must abort with
 * "mspace: <caller>(): <problem> 0x<address>" (checked in forked children).
 * free() here is what interpose/malloc.c does: the fast path, then ms_free. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
/* Blocks a span can hold: its slices divided into its class size. */
#define SPAN_CAPACITY(span) ((span)->slice_count * MS_SLICE_SIZE / (span)->block_size)
#include "alloc.h"
#include "large.h"
#include "span.h"
#include "stats.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static heap_t *h;

/* malloc and free as interpose/malloc.c composes them. */
static void *user_malloc(size_t size) {
    void *p = ms_alloc_fast(size);
    return p ? p : ms_alloc(h, size, 0);
}
static void user_free(void *p) {
    if (!ms_free_fast(p) && p != NULL)
        ms_free(p, "free");
}

/* The compiler must not see through misuse. */
static void *launder(void *p) {
    void *volatile v = p;
    return v;
}

/* ---- forked children ---- */

typedef void (*child_fn)(void *arg);

/* Runs fn(arg) in a child with stderr on a pipe; checks that it died of
 * SIGABRT and printed `expected` (formatted with the address). */
static void expect_abort(const char *name, child_fn fn, void *arg, const char *format,
                         const void *address) {
    char expected[256], err[4096];
    snprintf(expected, sizeof expected, format, (unsigned long)(uintptr_t)address);
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        alarm(10);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], err + len, sizeof err - 1 - len)) > 0)
        len += (size_t)n;
    err[len] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    int said = strstr(err, expected) != NULL;
    if (!aborted || !said) {
        if (WIFEXITED(status))
            fprintf(stderr, "%s: child exited %d (no abort)", name, WEXITSTATUS(status));
        else
            fprintf(stderr, "%s: child killed by signal %d", name, WTERMSIG(status));
        fprintf(stderr, "; expected \"%s\", stderr: \"%s\"\n", expected, err);
    }
    CHECK(name, aborted && said);
}

static void child_free(void *p) { ms_free(launder(p), "free"); }
static void child_user_free(void *p) { user_free(launder(p)); }
static void child_double_free(void *p) {
    ms_free(p, "free");
    ms_free(launder(p), "free");
}
static void child_user_double_free(void *p) {
    user_free(p);
    user_free(launder(p));
}
static void child_realloc(void *p) { ms_realloc(h, launder(p), 100); }
static void child_usable(void *p) { ms_usable_size(launder(p), "malloc_usable_size"); }

/* A block freed by another thread, then by its owner (still on the owner's
 * remote list) or again by that thread. */
static void *thread_free(void *p) {
    heap_t *mine = ms_heap_acquire();
    ms_free(p, "free");
    ms_heap_release(mine, true);
    return NULL;
}
static void *thread_free_twice(void *p) {
    heap_t *mine = ms_heap_acquire();
    ms_free(p, "free");
    ms_free(launder(p), "free");
    ms_heap_release(mine, true);
    return NULL;
}
static void child_remote_then_owner(void *p) {
    pthread_t t;
    pthread_create(&t, NULL, thread_free, p);
    pthread_join(t, NULL);
    user_free(launder(p));
}
static void child_remote_twice(void *p) {
    pthread_t t;
    pthread_create(&t, NULL, thread_free_twice, p);
    pthread_join(t, NULL);
}

static void test_misuse(void) {
    int local = 0;
    const char *inv = "mspace: free(): invalid pointer 0x%lx";
    const char *dbl = "mspace: free(): double free of 0x%lx";

    /* Small blocks; a neighbour keeps each span in use. */
    char *a = user_malloc(64), *keep = user_malloc(64);
    expect_abort("double free (ms_free twice)", child_double_free, a, dbl, a);
    expect_abort("double free (free twice: fast then slow path)", child_user_double_free, a, dbl, a);
    expect_abort("interior pointer (+16)", child_free, a + 16, inv, a + 16);
    expect_abort("interior pointer (+16) via free", child_user_free, a + 16, inv, a + 16);
    expect_abort("misaligned pointer (+1)", child_free, a + 1, inv, a + 1);
    expect_abort("misaligned pointer (+8) via free", child_user_free, a + 8, inv, a + 8);
    expect_abort("stack pointer", child_free, &local, inv, &local);
    void *glibc = malloc(64);
    expect_abort("glibc malloc pointer", child_free, glibc, inv, glibc);
    free(glibc);
    char *big = ms_alloc(h, 100 * KiB, 0); /* 112 KiB class: 14-slice span */
    expect_abort("interior pointer in a multi-slice span", child_user_free, big + MS_SLICE_SIZE,
                 inv, big + MS_SLICE_SIZE);

    /* Holes that were never handed out. */
    span_t *span = ms_span_head(ms_segment_slice_of(ms_segment_of(a), a));
    char *start = ms_span_start(ms_segment_of(a), span);
    char *carved_hole = start + (size_t)span->carved_end - span->block_size;
    expect_abort("free of a carved, never allocated block", child_user_free, carved_hole, dbl,
                 carved_hole);
    CHECK("setup: the 64-byte span still has an uncarved part", span->carved_end < SPAN_CAPACITY(span) * span->block_size);
    char *uncarved = start + (size_t)span->carved_end;
    expect_abort("free of an uncarved block (ms_free)", child_free, uncarved, inv, uncarved);
    expect_abort("free of an uncarved block (fast then slow path)", child_user_free, uncarved, inv,
                 uncarved);
    /* 48-byte class: 1365 blocks use 65520 bytes; offset 65520 is a
     * multiple of 48 but no block (it would overrun the slice). */
    char *b48 = user_malloc(48);
    span_t *s48 = ms_span_head(ms_segment_slice_of(ms_segment_of(b48), b48));
    char *slack = ms_span_start(ms_segment_of(b48), s48) + (size_t)SPAN_CAPACITY(s48) * 48;
    CHECK("48-byte span leaves a 16-byte tail", SPAN_CAPACITY(s48) == 1365 &&
                                                   ((uintptr_t)slack & (MS_SLICE_SIZE - 1)) == 65520);
    expect_abort("free of the span's tail past its last block", child_user_free, slack, inv, slack);

    /* Large blocks. */
    char *large = ms_alloc(h, 8 * MiB, 0);
    expect_abort("interior pointer in a large block (+4096)", child_user_free, large + 4096, inv,
                 large + 4096);
    expect_abort("interior pointer past the first 4 MiB of a large block", child_user_free,
                 large + 5 * MiB, inv, large + 5 * MiB);
    ms_free(large, "free");
    expect_abort("pointer into a freed large block", child_user_free, large, inv, large);
    expect_abort("double free of a large block", child_free, large, inv, large);

    /* A block aligned to 8 MiB sits one segment above its header. */
    char *over = ms_alloc(h, MiB, 8 * MiB);
    expect_abort("pointer between an 8 MiB-aligned block and its header", child_user_free,
                 over - MS_OS_PAGE, inv, over - MS_OS_PAGE);
    expect_abort("interior pointer in an 8 MiB-aligned block", child_user_free, over + 4096, inv,
                 over + 4096);
    ms_free(over, "free");
    expect_abort("double free of an 8 MiB-aligned block", child_user_free, over, inv, over);

    /* realloc and usable size of things that are not live blocks. */
    char *freed = user_malloc(100);
    char *keep2 = user_malloc(100);
    user_free(freed);
    expect_abort("realloc of a freed block", child_realloc, freed, "mspace: realloc(): invalid pointer 0x%lx",
                 freed);
    expect_abort("realloc of a freed large block", child_realloc, large,
                 "mspace: realloc(): invalid pointer 0x%lx", large);
    expect_abort("realloc of an interior pointer", child_realloc, keep2 + 16,
                 "mspace: realloc(): invalid pointer 0x%lx", keep2 + 16);
    expect_abort("usable size of a stack pointer", child_usable, &local,
                 "mspace: malloc_usable_size(): invalid pointer 0x%lx", &local);

    /* Across threads. */
    char *r = user_malloc(64);
    expect_abort("double free: remote free, then the owner", child_remote_then_owner, r, dbl, r);
    expect_abort("double free by a non-owner thread", child_remote_twice, r, dbl, r);

    /* The parent is unharmed by all that. */
    CHECK("misuse: parent's blocks still live", ms_usable_size(a, "x") == 64 &&
                                                    ms_usable_size(keep, "x") == 64);
    user_free(a);
    user_free(keep);
    user_free(keep2);
    user_free(big);
    user_free(b48);
    user_free(r);
}

/* ---- fast paths ---- */

static void *no_heap_thread(void *arg) {
    (void)arg;
    /* A thread that has not acquired a heap: every fast path declines. */
    void *p = ms_alloc_fast(16);
    CHECK("fast: a thread with no heap gets NULL", p == NULL && ms_heap_tls == &ms_heap_empty);
    return NULL;
}

static void *foreign_free_thread(void *p) {
    heap_t *mine = ms_heap_acquire();
    CHECK("fast: another thread's block is declined", !ms_free_fast(p));
    ms_free(p, "free"); /* the slow path takes it (remote) */
    ms_heap_release(mine, true);
    return NULL;
}

static void test_fast(void) {
    int local;
    pthread_t t;
    pthread_create(&t, NULL, no_heap_thread, NULL);
    pthread_join(t, NULL);

    /* Each size freed before the next is asked for, so the class's span
     * has a hole for every size but the first of each class. */
    int sized = 1, accepted = 1, fast_hits = 0, medium_hits = 0, medium_sizes = 0;
    for (size_t size = 0; size <= MS_DIRECT_MEDIUM_MAX; size += size < MS_CLASS_TABLE_MAX ? 1 : 509) {
        unsigned char *p = ms_alloc_fast(size);
        if (p != NULL)
            size <= MS_CLASS_TABLE_MAX ? fast_hits++ : medium_hits++;
        else
            p = ms_alloc(h, size, 0);
        medium_sizes += size > MS_CLASS_TABLE_MAX;
        size_t want = ms_size_class_size(ms_size_class_of(size));
        sized &= ms_usable_size(p, "x") == want && ((uintptr_t)p & 15) == 0;
        memset(p, 0x5a, want);
        /* Blocks of classes up to 8 KiB: the span is one slice, and free's
         * fast path takes all of its blocks (see ms_free_fast for longer). */
        if (want <= 8192)
            accepted &= ms_free_fast(p);
        else if (!ms_free_fast(p))
            ms_free(p, "free");
    }
    CHECK("fast: blocks of the right class", sized);
    CHECK("fast: owner's free takes the fast path", accepted);
    CHECK("fast: most mallocs up to 1 KiB take the fast path", fast_hits > 900);
    CHECK("fast: most mallocs from 1 KiB to MS_SMALL_MAX take the fast path",
          medium_hits > medium_sizes * 3 / 4);
    CHECK("fast: malloc above MS_SMALL_MAX declines",
          ms_alloc_fast(MS_DIRECT_MEDIUM_MAX + 1) == NULL && ms_alloc_fast(SIZE_MAX) == NULL);

    /* A block past the first slice of its span (16 KiB blocks: four to a
     * slice, the eighth of a fresh span in its second slice): free's fast
     * path finds the span from the slice's descriptor, and takes the block
     * once. */
    char *eight[8], *far = NULL;
    for (int i = 0; i < 8; i++) {
        eight[i] = ms_alloc(h, 16384, 0);
        if (eight[i] > far)
            far = eight[i];
    }
    CHECK("far: the last block starts in its span's second slice",
          ms_segment_slice_of(ms_segment_base(far), far)->head_delta == 1);
    CHECK("far: an interior address declined", !ms_free_fast(far + 16));
    CHECK("far: the fast path takes it", ms_free_fast(far));
    CHECK("far: a second free declined (the slow path reports it)", !ms_free_fast(far));
    for (int i = 0; i < 8; i++)
        if (eight[i] != far)
            ms_free(eight[i], "free");

    char *p = user_malloc(64);
    CHECK("fast: NULL declined", !ms_free_fast(NULL));
    CHECK("fast: stack declined", !ms_free_fast(&local));
    void *g = malloc(32);
    CHECK("fast: glibc block declined", !ms_free_fast(g));
    free(g);
    CHECK("fast: interior pointer declined", !ms_free_fast(p + 16));
    CHECK("fast: misaligned pointer declined", !ms_free_fast(p + 1));
    void *large = ms_alloc(h, MS_MEDIUM_MAX + 1, 0);
    CHECK("fast: large block declined", !ms_free_fast(large));
    ms_free(large, "free");
    char *big = ms_alloc(h, 100 * KiB, 0); /* 2+ slices */
    CHECK("fast: block in a later slice of a span declined", !ms_free_fast(big + 2 * MS_SLICE_SIZE));
    ms_free(big, "free");
    CHECK("fast: live block accepted", ms_free_fast(p));
    CHECK("fast: the same block again declined (slow path reports it)", !ms_free_fast(p));

    /* Round trip: the fast malloc hands back what the fast free took. */
    const size_t size = 208; /* a class no other test here uses much */
    void *first = user_malloc(size);
    span_t *span = ms_span_head(ms_segment_slice_of(ms_segment_of(first), first));
    void *blocks[4096];
    size_t n = 0;
    blocks[n++] = first;
    while (n < SPAN_CAPACITY(span))
        blocks[n++] = user_malloc(size);
    for (size_t i = 0; i < n; i++)
        user_free(blocks[i]);
    int round_trip = 1;
    for (size_t i = 0; i < n; i++) {
        void *q = user_malloc(size);
        if (ms_span_head(ms_segment_slice_of(ms_segment_of(q), q)) != span)
            round_trip = 0;
        blocks[i] = q;
    }
    CHECK("fast: freed blocks of a span come back to malloc", round_trip);
    for (size_t i = 0; i < n; i++)
        user_free(blocks[i]);

    void *other = user_malloc(80);
    pthread_create(&t, NULL, foreign_free_thread, other);
    pthread_join(t, NULL);
}

/* ---- sizes and alignments ---- */

static const size_t sizes[] = {0,     1,     15,    16,     17,     31,     32,          33,
                               48,    63,    64,    65,     100,    127,    128,         129,
                               255,   256,   257,   500,    1000,   1023,   1024,        1025,
                               2000,  4095,  4096,  4097,   8191,   8192,   8193,        10000,
                               30000, 65535, 65536, 65537,  100000, 200000, MS_SMALL_MAX, MS_SMALL_MAX + 1,
                               300000, MiB,   MS_MEDIUM_MAX, MS_MEDIUM_MAX + 1};

static void test_alignment(void) {
    int aligned = 1, fits = 1, disjoint = 1;
    for (size_t align = 32; align <= 65536; align <<= 1) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t size = sizes[i];
            unsigned char *p[3];
            size_t usable[3];
            for (int k = 0; k < 3; k++) {
                p[k] = ms_alloc(h, size, align);
                if (p[k] == NULL || ((uintptr_t)p[k] & (align - 1)) != 0) {
                    if (aligned)
                        fprintf(stderr, "align %zu size %zu: %p\n", align, size, (void *)p[k]);
                    aligned = 0;
                    usable[k] = 0;
                    continue;
                }
                usable[k] = ms_usable_size(p[k], "x");
                fits &= usable[k] >= size;
                memset(p[k], 0x10 + k, usable[k]);
            }
            /* Writing each whole usable size disturbed no other block. */
            for (int k = 0; k < 3; k++)
                if (p[k] && usable[k] &&
                    (p[k][0] != 0x10 + k || p[k][usable[k] - 1] != 0x10 + k))
                    disjoint = 0;
            for (int k = 0; k < 3; k++)
                ms_free(p[k], "free");
        }
    }
    CHECK("alignment 32..65536 for every size", aligned);
    CHECK("aligned blocks: usable >= size", fits);
    CHECK("aligned blocks do not overlap", disjoint);

    /* Alignment 16 or less is the natural alignment. */
    int natural = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t align = 0; align <= 16; align = align ? align * 2 : 1) {
            void *p = ms_alloc(h, sizes[i], align);
            natural &= p != NULL && ((uintptr_t)p & 15) == 0;
            ms_free(p, "free");
        }
    CHECK("alignment <= 16: 16-aligned", natural);
}

static void test_usable(void) {
    int ok = 1, exact = 1;
    for (size_t size = 0; size <= MS_MEDIUM_MAX; size += size < 4096 ? 1 : 61) {
        void *p = user_malloc(size);
        size_t usable = p ? ms_usable_size(p, "x") : 0;
        ok &= p != NULL && usable >= size;
        exact &= usable == ms_size_class_size(ms_size_class_of(size));
        user_free(p);
    }
    CHECK("usable size >= requested, 0..MS_MEDIUM_MAX", ok);
    CHECK("usable size is the class size", exact);
}

/* ---- realloc of small blocks ---- */

static void test_realloc(void) {
    unsigned char *p = user_malloc(1000); /* class 1024 */
    for (int i = 0; i < 1000; i++)
        p[i] = (unsigned char)i;
    CHECK("realloc: shrink by less than half stays", ms_realloc(h, p, 600) == p);
    CHECK("realloc: grow within the class stays", ms_realloc(h, p, 1024) == p);
    unsigned char *q = ms_realloc(h, p, 5000);
    int kept = q != NULL && q != p;
    for (int i = 0; q && i < 1000; i++)
        kept &= q[i] == (unsigned char)i;
    CHECK("realloc: grow moves and keeps the contents", kept);
    CHECK("realloc: old block freed", q && ms_segment_of(p) &&
                                          ((block_t *)p)->freed_mark ==
                                              (uintptr_t)ms_span_head(ms_segment_slice_of(ms_segment_of(p), p)));
    unsigned char *r = ms_realloc(h, q, 100);
    kept = r != NULL && r != q && ms_usable_size(r, "x") < 1024;
    for (int i = 0; r && i < 100; i++)
        kept &= r[i] == (unsigned char)i;
    CHECK("realloc: shrink below half moves to a smaller class, keeps the prefix", kept);
    unsigned char *s = ms_realloc(h, r, 1);
    CHECK("realloc: blocks of 64 bytes or less never move on shrink",
          s == r || ms_usable_size(r, "x") > 64);
    errno = 0;
    CHECK("realloc: impossible size fails with ENOMEM", ms_realloc(h, s, SIZE_MAX) == NULL &&
                                                            errno == ENOMEM);
    CHECK("realloc: failed realloc leaves the block", s[0] == 0 && ms_usable_size(s, "x") > 0);
    user_free(s);

    errno = 0;
    CHECK("alloc: impossible size fails with ENOMEM", ms_alloc(h, SIZE_MAX, 0) == NULL &&
                                                          errno == ENOMEM);
    ms_free(NULL, "free"); /* ignored */
    CHECK("free(NULL) is harmless", 1);
}

static int in_span(const void *p) {
    return p && ms_segment_of(p) && ms_segment_of(p)->kind == SEGMENT_SMALL;
}
static int mapped_alone(const void *p) {
    return p && ms_segment_of(p) && ms_segment_of(p)->kind == SEGMENT_LARGE;
}

/* Medium blocks (256 KiB .. 2 MiB) come from spans when asked for fresh;
 * realloc growing past 128 KiB gives a mapping of its own (mremap grows it
 * on without copying), shrinking out of its class stays in the spans. */
static void test_realloc_medium(void) {
    unsigned char *p = ms_alloc(h, MiB, 0);
    CHECK("medium: a fresh 1 MiB block lives in a span, usable 1 MiB",
          in_span(p) && ms_usable_size(p, "x") == MiB);
    CHECK("medium: a fresh 300 KiB block gets the 320 KiB class",
          in_span(p) && ms_size_class_size(ms_size_class_of(300 * KiB)) == 320 * KiB);
    memset(p, 0x6b, MiB);
    CHECK("medium: realloc within the class stays", ms_realloc(h, p, MiB - 1000) == p);
    unsigned char *q = ms_realloc(h, p, MiB + 1);
    CHECK("medium: realloc growing it moves to a block mapped alone, contents kept",
          mapped_alone(q) && q[0] == 0x6b && q[MiB - 1001] == 0x6b);
    unsigned char *r = ms_realloc(h, q, 300 * KiB);
    CHECK("large: realloc shrinking above 128 KiB stays mapped alone", mapped_alone(r));
    ms_free(r, "free");

    unsigned char *m = ms_alloc(h, 2 * MiB, 0);
    memset(m, 0x2d, 2 * MiB);
    unsigned char *n = ms_realloc(h, m, 300 * KiB);
    CHECK("medium: realloc shrinking below half stays in the spans, contents kept",
          in_span(n) && n != m && ms_usable_size(n, "x") == 320 * KiB && n[0] == 0x2d &&
              n[300 * KiB - 1] == 0x2d);
    ms_free(n, "free");

    unsigned char *b = ms_alloc(h, 100 * KiB, 0);
    memset(b, 0x11, 100 * KiB);
    unsigned char *w = ms_realloc(h, b, 120 * KiB);
    CHECK("small: realloc growing to 120 KiB stays in the spans", in_span(w) && w[0] == 0x11);
    unsigned char *g = ms_realloc(h, w, 130 * KiB);
    CHECK("small: realloc growing past 128 KiB gets a block mapped alone, contents kept",
          mapped_alone(g) && g[0] == 0x11 && g[100 * KiB - 1] == 0x11);
    ms_free(g, "free");
}

int main(void) {
    TEST_BEGIN("alloc");
    h = ms_heap_acquire();
    test_fast();
    test_alignment();
    test_usable();
    test_realloc();
    test_realloc_medium();
    test_misuse();
    return TEST_DONE();
}
