/* Memory a program freed before going quiet goes back when it is active
 * again, even if that activity takes only fast paths.
 *
 * A program frees 64 MiB of small blocks, mallocs one (too soon for a
 * collection to give anything back), sleeps past two collection intervals,
 * and then mallocs and frees blocks of that one's class: its span keeps a
 * block in use, so no span is made or emptied and no span event looks at
 * the clock. The first of those mallocs must (heap.c: arm_clock), and the
 * 64 MiB must be gone from the RSS after them. The hardened build kept it
 * all before (bench/frag with one cycle: 270 MiB settled). The same for
 * 64 MiB of 4 MiB blocks, which wait in the large-block cache.
 * Needs mspace: other allocators may keep such memory.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"

#define BLOCKS (256 * 1024)
#define SIZE 256 /* 64 MiB in all */
#define BURST_SIZE 48
#define WATCHDOG_SECONDS 60

static void on_alarm(int sig) {
    (void)sig;
    harness_hung(WATCHDOG_SECONDS, "quiet_return");
}

static long resident_kib(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    long pages = 0;
    sscanf(buf, "%*ld %ld", &pages);
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *keep(void *p) {
    __asm__ volatile("" : : "r"(p) : "memory"); /* the compiler may not drop the pair */
    return p;
}

/* A quiet spell past two collection intervals, then 1,000 pairs of a class
 * whose span keeps the anchor in use: fast paths, no span made or emptied. */
static void quiet_then_fast_pairs(void) {
    struct timespec quiet = {0, 300 * 1000 * 1000};
    while (nanosleep(&quiet, &quiet) != 0)
        ;
    for (int i = 0; i < 1000; i++) {
        char *p = keep(malloc(BURST_SIZE));
        p[0] = (char)i;
        free(p);
    }
}

int main(void) {
    TEST_BEGIN("api/quiet_return");
    const char *pre = getenv("LD_PRELOAD");
    if (!(pre && strstr(pre, "libmspace"))) {
        printf("api/quiet_return: not under LD_PRELOAD=libmspace.so; nothing to check\n");
        return TEST_DONE();
    }
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG_SECONDS);

    free(keep(malloc(BURST_SIZE))); /* the burst's class has its span from now on */
    char **blocks = malloc(BLOCKS * sizeof *blocks);
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = keep(malloc(SIZE));
        memset(blocks[i], i, SIZE);
    }
    long full = resident_kib();
    for (int i = 0; i < BLOCKS; i++)
        free(blocks[i]);
    long freed = resident_kib();

    void *anchor = keep(malloc(BURST_SIZE)); /* from here on its span never empties */
    quiet_then_fast_pairs();
    long after = resident_kib();
    fprintf(stderr, "quiet_return: RSS %ld KiB full, %ld after the frees, %ld after quiet and a burst\n",
            full, freed, after);
    CHECK("64 MiB of blocks were resident", full > 64 * 1024);
    CHECK("after a quiet spell, fast-path activity gives back the freed 64 MiB",
          after >= 0 && after < full - 48 * 1024);
    free(blocks);

    enum { LARGE = 16 };
    char *large[LARGE];
    long before_large = resident_kib();
    for (int i = 0; i < LARGE; i++) {
        large[i] = keep(malloc((size_t)4 << 20));
        memset(large[i], i, (size_t)4 << 20);
    }
    long full_large = resident_kib();
    for (int i = 0; i < LARGE; i++)
        free(large[i]);
    quiet_then_fast_pairs();
    long after_large = resident_kib();
    fprintf(stderr, "quiet_return: RSS %ld KiB before 64 MiB of 4 MiB blocks, %ld with them, "
            "%ld after quiet and a burst\n", before_large, full_large, after_large);
    CHECK("4 MiB blocks: 64 MiB resident", full_large - before_large > 60 * 1024);
    CHECK("after a quiet spell, fast-path activity gives back the large blocks' 64 MiB",
          after_large >= 0 && after_large < full_large - 48 * 1024);
    free(anchor);
    return TEST_DONE();
}
