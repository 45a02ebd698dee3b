/* Freed medium blocks in spans that are still in use give their pages back.
 *
 * A program frees most of many 40 KiB blocks but keeps a few scattered
 * ones, so no span empties and the slices cannot go back whole. After the
 * heap has been quiet for a while and then does something again (here:
 * blocks of another class, which make new spans), the pages inside the
 * freed blocks must no longer be resident (mincore), except the first
 * one of each, which holds the free-list link. The live blocks keep their
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

/* The pages of p's block past its first page and a safe margin for the
 * link, mark and poison: [first, end). */
static void interior(const void *p, uintptr_t *first, uintptr_t *end) {
    *first = ((uintptr_t)p + 512 + PAGE - 1) & ~(PAGE - 1);
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


int main(void) {
    TEST_BEGIN("api/hole_purge");
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG_SECONDS);

    static unsigned char *b[N];
    int allocated = 1;
    step = "allocating";
    for (int i = 0; i < N; i++) {
        b[i] = malloc(SIZE);
        allocated &= b[i] != NULL;
        if (b[i])
            fill(b[i], SIZE, (uint64_t)i);
    }
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

    step = "freeing everything";
    for (int i = 0; i < N; i++)
        if (kept(i))
            free(b[i]);
    CHECK("freeing everything leaves the allocator working", malloc(SIZE) != NULL);
    return TEST_DONE();
}
