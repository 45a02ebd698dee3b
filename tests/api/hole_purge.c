/* Freed blocks in spans that are still in use give their pages back.
 *
 * A program frees most of many 40 KiB blocks but keeps a few scattered
 * ones, so no span empties and the slices cannot go back whole. After the
 * heap has been quiet for a while and then does something again (here:
 * blocks of another class, which make new spans), the pages of the freed
 * blocks must no longer be resident (mincore), their first ones, which
 * held the free-list links, too; and the same for small blocks: a page
 * that holds no live block goes. The live blocks keep their
 * contents and their pages; the freed blocks are handed out again, read as
 * zero from calloc, hold new contents and free without complaint (the
 * hardened build checks its poison when they go out again).
 * Needs mspace: other allocators keep such pages.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../harness.h"
#include "../quiet.h"
#include "../pattern.h"

#define N 240
#define SIZE ((size_t)40000) /* one class, 10 pages a block */
#define PAGE ((uintptr_t)4096)
#define WATCHDOG_SECONDS 60

static const char *step = "start";

static void on_alarm(int sig) {
    (void)sig;
    harness_hung(WATCHDOG_SECONDS, step);
}

/* Every 7th block stays live: each span of 8 keeps one or two, at
 * different places. */
static int kept(int i) { return i % 7 == 3; }

/* The pages wholly inside p's block: [first, end). */
static void interior(const void *p, uintptr_t *first, uintptr_t *end) {
    *first = ((uintptr_t)p + PAGE - 1) & ~(PAGE - 1);
    *end = ((uintptr_t)p + SIZE) & ~(PAGE - 1);
}

/* Resident pages in [first, end), or -1 if mincore fails. */
static long resident(uintptr_t first, uintptr_t end) {
    unsigned char vec[16];
    size_t pages = (end - first) / PAGE;
    if (pages > sizeof vec || mincore((void *)first, end - first, vec) != 0)
        return -1;
    long n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}


/* 200-byte blocks, one in 64 kept: the pages that hold none of the kept
 * ones go back, the others keep their blocks. */
static int by_address(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* n blocks of size, each filled with the pattern of its index; 0 if one
 * could not be had. */
static int allocate_filled(unsigned char **blocks, int n, size_t size) {
    int allocated = 1;
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(size);
        allocated &= blocks[i] != NULL;
        if (blocks[i])
            fill(blocks[i], size, (uint64_t)i);
    }
    return allocated;
}

#define SMALL_N 16384
#define SMALL_SIZE 200
static void small_blocks(void) {
    static unsigned char *s[SMALL_N];
    int allocated = allocate_filled(s, SMALL_N, SMALL_SIZE);
    CHECK("small blocks allocated", allocated);
    if (!allocated)
        return;
    for (int i = 0; i < SMALL_N; i++)
        if (i % 64 != 7)
            free(s[i]);
    quiet_then_active(250);
    /* A page is "free" if no kept block touches it; each counted once
     * (the hardened build hands blocks out in shuffled order). */
    static uintptr_t pages[SMALL_N];
    long n_pages = 0, free_pages = 0, free_resident = 0;
    int intact_kept = 1;
    for (int i = 0; i < SMALL_N; i++) {
        if (i % 64 == 7) {
            intact_kept &= intact(s[i], SMALL_SIZE, (uint64_t)i);
            continue;
        }
        uintptr_t page = (uintptr_t)s[i] & ~(PAGE - 1);
        int touched = 0;
        for (int j = 7; j < SMALL_N; j += 64) {
            uintptr_t from = (uintptr_t)s[j] & ~(PAGE - 1);
            uintptr_t to = ((uintptr_t)s[j] + SMALL_SIZE - 1) & ~(PAGE - 1);
            touched |= page >= from && page <= to;
        }
        if (!touched)
            pages[n_pages++] = page;
    }
    qsort(pages, (size_t)n_pages, sizeof *pages, by_address);
    for (long k = 0; k < n_pages; k++)
        if (k == 0 || pages[k] != pages[k - 1]) {
            free_pages++;
            free_resident += resident(pages[k], pages[k] + PAGE) != 0;
        }
    CHECK("small: most of the pages are free of kept blocks", free_pages > SMALL_N / 40);
    /* Bar one: where the span being carved stops, blocks not carved yet
     * share the page with the holes. */
    CHECK("small: no page free of kept blocks is resident", free_resident <= 1);
    CHECK("small: the kept blocks keep their contents", intact_kept);
    int reused = 1;
    for (int i = 0; i < SMALL_N; i++)
        if (i % 64 != 7) {
            s[i] = malloc(SMALL_SIZE);
            reused &= s[i] != NULL;
            if (s[i])
                fill(s[i], SMALL_SIZE, (uint64_t)i + 7);
        }
    for (int i = 0; i < SMALL_N; i++)
        reused &= s[i] && intact(s[i], SMALL_SIZE, (uint64_t)i + (i % 64 == 7 ? 0 : 7));
    CHECK("small: the freed blocks come back, the kept ones intact beside them", reused);
    for (int i = 0; i < SMALL_N; i++)
        free(s[i]);
}

int main(void) {
    TEST_BEGIN("api/hole_purge");
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG_SECONDS);

    static unsigned char *b[N];
    step = "allocating";
    int allocated = allocate_filled(b, N, SIZE);
    CHECK("medium blocks allocated", allocated);
    if (!allocated)
        return TEST_DONE();

    step = "freeing most";
    for (int i = 0; i < N; i++)
        if (!kept(i))
            free(b[i]);
    step = "activity after a quiet spell";
    quiet_then_active(250); /* longer than a collection interval */

    long in_holes = 0, in_live = 0, live_pages = 0, bad = 0;
    int live_intact = 1;
    for (int i = 0; i < N; i++) {
        uintptr_t first, end;
        interior(b[i], &first, &end);
        long r = resident(first, end);
        if (r < 0)
            bad++;
        else if (kept(i))
            in_live += r, live_pages += (long)((end - first) / PAGE);
        else
            in_holes += r;
        if (kept(i))
            live_intact &= intact(b[i], SIZE, (uint64_t)i);
    }
    CHECK("mincore answers for every block", bad == 0);
    CHECK("no page inside a freed block is resident", in_holes == 0);
    CHECK("the live blocks' pages stay resident", in_live == live_pages);
    CHECK("the live blocks keep their contents", live_intact);

    /* Reuse: the holes come back (at their old addresses, since nothing
     * else of this class was freed), half of them from calloc. */
    step = "reusing the holes";
    static unsigned char *c[N];
    int reused = 0, zero = 1, written = 1, all = 1;
    for (int i = 0; i < N; i++) {
        if (kept(i))
            continue;
        int by_calloc = i & 1;
        c[i] = by_calloc ? calloc(1, SIZE) : malloc(SIZE);
        if (c[i] == NULL) {
            all = 0;
            continue;
        }
        for (int j = 0; j < N; j++)
            if (!kept(j) && c[i] == b[j]) {
                reused++;
                break;
            }
        if (by_calloc)
            for (size_t k = 0; k < SIZE; k++)
                zero &= c[i][k] == 0;
        fill(c[i], SIZE, (uint64_t)i + 1000);
    }
    CHECK("the freed blocks are allocated again", all);
    CHECK("the holes are handed out again", reused >= (N - N / 7) / 2);
    CHECK("calloc from a purged hole reads zero", zero);
    for (int i = 0; i < N; i++)
        if (!kept(i) && c[i])
            written &= intact(c[i], SIZE, (uint64_t)i + 1000);
    for (int i = 0; i < N; i++)
        if (kept(i))
            written &= intact(b[i], SIZE, (uint64_t)i);
    CHECK("new and old contents side by side stay intact", written);

    /* A second round: purged holes freed again purge again. */
    step = "second round";
    for (int i = 0; i < N; i++)
        if (!kept(i))
            free(c[i]);
    quiet_then_active(250);
    in_holes = 0;
    for (int i = 0; i < N; i++) {
        uintptr_t first, end;
        interior(c[i] ? c[i] : b[i], &first, &end);
        if (!kept(i) && c[i])
            in_holes += resident(first, end);
    }
    CHECK("holes freed again give their pages back again", in_holes == 0);

    step = "small blocks";
    small_blocks();

    step = "freeing everything";
    for (int i = 0; i < N; i++)
        if (kept(i))
            free(b[i]);
    CHECK("freeing everything leaves the allocator working", malloc(SIZE) != NULL);
    return TEST_DONE();
}
