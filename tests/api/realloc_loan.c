/* A growing buffer takes over the pages of a big buffer freed just before,
 * instead of faulting them in again, until the loan ends.
 *
 * Programs that rebuild a big buffer (a string builder, a vector: see
 * bench/realloc) free one and grow the next by realloc. mspace keeps the
 * freed mapping for a moment and lends it whole to the next block that
 * realloc moves out of its span, so the growth steps that follow stay in
 * place and fault no page:
 *   - every step of the second buffer keeps its address, and the steps
 *     together take fewer minor faults than a tenth of the pages written
 *     (getrusage); without the loan they fault each page (4,096 faults);
 *   - the block may only use what it asked for: malloc_usable_size stays
 *     within a page of the request, mspace_get calls the rest of the
 *     mapping uncarved, not in use, and mspace_stats counts it as cached;
 *   - the loan ends after a quiet spell, at the heap's next collection:
 *     the tail is unmapped (mincore), the buffer keeps its contents and can
 *     still grow, shrink and be freed;
 *   - a loan grown into its whole mapping is over: once that mapping has
 *     left the cache, a collection must not reach for it (the fuzzer found
 *     that it did, and crashed).
 * Runs under both builds; needs mspace (others keep or drop pages as they
 * like), and skips the mspace_get checks when the symbol is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../../interpose/mspace.h"
#include "../harness.h"
#include "../quiet.h"

#pragma weak mspace_get
#pragma weak mspace_stats_get

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define PAGE ((uintptr_t)4096)
#define BIG (16 * MiB)
#define STEP (256 * KiB)
#define WATCHDOG_SECONDS 60

static const char *step = "start";

static void on_alarm(int sig) {
    (void)sig;
    harness_hung(WATCHDOG_SECONDS, step);
}

static long minor_faults(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

/* Resident pages in [first, first + length): 0 if none is mapped, -1 if
 * mincore fails otherwise. */
static long resident(uintptr_t first, size_t length) {
    size_t pages = length / PAGE;
    unsigned char *vec = malloc(pages);
    long n = -1;
    if (vec && mincore((void *)first, length, vec) == 0) {
        n = 0;
        for (size_t i = 0; i < pages; i++)
            n += vec[i] & 1;
    } else if (vec && errno == ENOMEM) {
        n = 0;
    }
    free(vec);
    return n;
}


/* Grows p from old to size, writing the new bytes with the pattern of
 * their offset. */
static unsigned char *grow(unsigned char *p, size_t old, size_t size) {
    p = realloc(p, size);
    if (p)
        for (size_t i = old; i < size; i++)
            p[i] = (unsigned char)(i * 7 + (i >> 12));
    return p;
}

static int intact(const unsigned char *p, size_t size) {
    for (size_t i = 0; i < size; i++)
        if (p[i] != (unsigned char)(i * 7 + (i >> 12)))
            return 0;
    return 1;
}

/* A buffer grown past its span into the mapping of a freed 16 MiB block:
 * it is on loan. *whole: the bytes from it to the mapping's end. */
static unsigned char *borrow(size_t *whole) {
    free(malloc(BIG)); /* cached */
    unsigned char *p = grow(grow(NULL, 0, 64 * KiB), 64 * KiB, 200 * KiB);
    mspace_block_info info;
    mspace_get(p, &info);
    *whole = (size_t)((unsigned char *)info.region + info.region_size - p);
    return p;
}

int main(void) {
    TEST_BEGIN("api/realloc_loan");
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG_SECONDS);

    step = "first buffer";
    unsigned char *first = NULL;
    size_t size = 0;
    for (size_t next = KiB; next <= BIG; next *= 2, size = next / 2)
        first = grow(first, size, next);
    CHECK("first buffer grew to 16 MiB", first != NULL && intact(first, BIG));
    free(first);

    step = "second buffer, into a block of its own";
    unsigned char *p = grow(NULL, 0, 64 * KiB);
    p = grow(p, 64 * KiB, 200 * KiB);
    CHECK("realloc to 200 KiB", p != NULL);
    if (p == NULL)
        return TEST_DONE();
    unsigned char *home = p;
    size = 200 * KiB;
    CHECK("usable size within a page of the request",
          malloc_usable_size(p) >= size && malloc_usable_size(p) < size + PAGE);

    if (mspace_get) {
        mspace_block_info info;
        mspace_get(p + MiB, &info);
        CHECK("past the request: the lent tail is not in use", info.state == MSPACE_UNCARVED);
        mspace_get(p, &info);
        CHECK("mspace_get agrees with malloc_usable_size",
              info.state == MSPACE_IN_USE && info.usable_size == malloc_usable_size(p));
        /* The tail is still the cache's memory, and the totals add up. It
         * starts within a page past the usable bytes (the hardened build's
         * slack). */
        size_t tail = (size_t)((char *)info.region + info.region_size - (char *)p) - info.usable_size;
        mspace_stats s = mspace_stats_get();
        CHECK("mspace_stats: the lent tail counts as cached",
              tail > MiB && s.free_cached + PAGE >= tail && s.large_bytes >= info.usable_size &&
                  s.large_bytes < s.large_mapped && s.large_mapped - s.large_bytes < tail);
        CHECK("mspace_stats: mapped = in use + free + overhead",
              s.mapped == s.in_use + s.free + s.overhead);
    }

    step = "second buffer, growing";
    long faults_before = minor_faults();
    int moved = 0;
    for (size_t next = 2 * STEP; next <= BIG - MiB; next += STEP) {
        p = grow(p, size, next);
        size = next;
        moved += p != home;
    }
    long faults = minor_faults() - faults_before;
    CHECK("every growth step in place", moved == 0);
    CHECK("growth took fewer faults than a tenth of its pages",
          faults < (long)((BIG - MiB) / PAGE / 10));
    CHECK("contents intact after growing", intact(p, size));
    fprintf(stderr, "realloc_loan: %ld minor faults while growing %zu KiB to %zu KiB\n", faults,
            200 * KiB / KiB, size / KiB);

    step = "quiet spell, then other work";
    quiet_then_active(600); /* longer than a loan lasts */
    uintptr_t tail = ((uintptr_t)p + size + PAGE - 1) & ~(PAGE - 1);
    tail += PAGE; /* past the hardened build's slack */
    CHECK("after a quiet spell the lent tail is gone", resident(tail, 2 * PAGE * 64) == 0);
    CHECK("contents intact after the loan ended", intact(p, size));

    step = "after the loan";
    p = grow(p, size, BIG + MiB);
    CHECK("grows past the mapping", p != NULL && intact(p, BIG + MiB));
    size = BIG + MiB;
    p = realloc(p, 300 * KiB);
    CHECK("shrinks", p != NULL && intact(p, 300 * KiB));
    free(p);

    /* A request no mapping can meet fails, and the block stays as it was,
     * its usable size included, though the loan ended on the way. */
    step = "an impossible growth of a block on loan";
    if (mspace_get) {
        size_t whole;
        p = borrow(&whole);
        CHECK("on loan: a mapping bigger than asked", p != NULL && whole > 2 * MiB);
        size_t usable = malloc_usable_size(p);
        errno = 0;
        void *none = realloc(p, (size_t)1 << 48);
        CHECK("realloc to 256 TiB fails: NULL, ENOMEM", none == NULL && errno == ENOMEM);
        CHECK("the block as it was: usable size and contents",
              malloc_usable_size(p) == usable && intact(p, 200 * KiB));
        free(p);
    }

    /* A loan grown into the whole mapping is over: the mapping may then go
     * back to the cache and out of it (here: pushed out by big frees), and
     * nothing may touch it afterwards. */
    step = "a loan grown to its whole mapping";
    if (mspace_get) {
        size_t whole;
        p = borrow(&whole);
        CHECK("borrowed a mapping bigger than asked", p != NULL && whole > 2 * MiB);
        p = grow(p, 200 * KiB, whole);
        CHECK("grown to the whole mapping", p != NULL && intact(p, whole));
        free(p);
        for (int i = 0; i < 5; i++)
            free(malloc(60 * MiB)); /* fills the cache: the mapping goes */
        quiet_then_active(600); /* a collection: it must not reach for the old mapping */
        p = grow(NULL, 0, BIG);
        CHECK("a big block after the collection is whole", p != NULL && intact(p, BIG));
        free(p);
    }
    return TEST_DONE();
}
