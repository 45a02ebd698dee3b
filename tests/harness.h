/* Minimal test harness: CHECK(name, expr) records a pass or a failure with
 * its location; TEST_DONE() prints "<program>: N passed, N failed" (the line
 * tests/run.sh adds up) and returns the exit status for main. */
#ifndef MSPACE_TEST_HARNESS_H
#define MSPACE_TEST_HARNESS_H
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int harness_passed, harness_failed;
static const char *harness_program = "test";

#define TEST_BEGIN(name) (harness_program = (name))

#define CHECK(name, expr)                                                  \
    do {                                                                   \
        if (expr) {                                                        \
            harness_passed++;                                              \
        } else {                                                           \
            harness_failed++;                                              \
            fprintf(stderr, "FAIL %s: %s (%s:%d: %s)\n", harness_program,  \
                    (name), __FILE__, __LINE__, #expr);                    \
        }                                                                  \
    } while (0)

#define TEST_DONE()                                                        \
    (printf("%s: %d passed, %d failed\n", harness_program, harness_passed, \
            harness_failed),                                               \
     fflush(stdout), harness_failed ? 1 : 0)

/* For a watchdog thread: the test has run `seconds` without finishing.
 * Writes its FAIL line (where: what it was doing) and the summary with one
 * more failure straight to the descriptors, since the hung threads may hold
 * stdio's locks, and exits. */
static inline void harness_hung(int seconds, const char *where) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "FAIL %s: watchdog: not finished after %d s (%s) - hang?\n",
                     harness_program, seconds, where);
    write(2, buf, (size_t)n);
    n = snprintf(buf, sizeof buf, "%s: %d passed, %d failed\n", harness_program, harness_passed,
                 harness_failed + 1);
    write(1, buf, (size_t)n);
    _exit(1);
}

#endif
