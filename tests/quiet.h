/* mspace gives memory back at a heap's collections, which come with its
 * span events once a collection interval (100 ms) has passed. A test that
 * wants one waits, then makes such events the way a program would. */
#ifndef MSPACE_TEST_QUIET_H
#define MSPACE_TEST_QUIET_H
#include <stdlib.h>
#include <time.h>

/* A quiet spell of ms milliseconds, then enough blocks of a class few
 * tests use (7000 bytes) to need new spans, all freed again. */
static inline void quiet_then_active(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
    void *q[64];
    for (int i = 0; i < 64; i++)
        q[i] = malloc(7000);
    for (int i = 0; i < 64; i++)
        free(q[i]);
}

#endif
