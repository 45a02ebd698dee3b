/* What the fault tests share: RSS and address-space readings, a watchdog
 * thread, and running one test case in a forked child, optionally under an
 * address-space limit (RLIMIT_AS), so that neither the limit nor whatever
 * the case leaves behind (a full heap, a wedged lock) reaches the next case.
 * The child's CHECK counts come back through a pipe and are added to the
 * parent's; a child that crashes, is killed by its alarm or exits without
 * reporting counts as one failure, named after the case. Works from C and
 * C++. */
#ifndef MSPACE_TEST_FAULTS_H
#define MSPACE_TEST_FAULTS_H
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../harness.h"

/* Field `field` of /proc/self/statm (0 virtual size, 1 resident) in bytes. */
static inline size_t statm_bytes(int field) {
    unsigned long v[2] = {0, 0};
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &v[0], &v[1]) != 2)
            v[0] = v[1] = 0;
        fclose(f);
    }
    return v[field] * (size_t)sysconf(_SC_PAGESIZE);
}

/* A thread that ends the test as hung (harness_hung) after `seconds`,
 * naming *stage, which the test updates as it goes. */
static volatile const char *watchdog_stage = "start";
static int watchdog_seconds;
static inline void *watchdog_main(void *arg) {
    (void)arg;
    sleep((unsigned)watchdog_seconds);
    harness_hung(watchdog_seconds, (const char *)watchdog_stage);
    return NULL;
}
static inline void watchdog_start(int seconds) {
    pthread_t t;
    watchdog_seconds = seconds;
    if (pthread_create(&t, NULL, watchdog_main, NULL) == 0)
        pthread_detach(t);
}

/* The limit the current case runs under (0: none), for its messages. */
static size_t child_limit;

/* Runs fn in a child. headroom > 0: RLIMIT_AS = the address space in use
 * now + headroom. The child is killed by SIGALRM after timeout_s seconds. */
static inline void child_run(const char *what, size_t headroom, int timeout_s, void (*fn)(void)) {
    int fds[2];
    if (pipe(fds) != 0) {
        CHECK(what, 0);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        CHECK("fork for a test case", 0);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        alarm((unsigned)timeout_s);
        harness_passed = harness_failed = 0;
        if (headroom) {
            child_limit = statm_bytes(0) + headroom;
            struct rlimit rl = {child_limit, child_limit};
            CHECK("setrlimit(RLIMIT_AS)", setrlimit(RLIMIT_AS, &rl) == 0);
        }
        fn();
        fflush(stdout);
        fflush(stderr);
        int counts[2] = {harness_passed, harness_failed};
        if (write(fds[1], counts, sizeof counts) != (ssize_t)sizeof counts)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    int counts[2];
    ssize_t n = read(fds[0], counts, sizeof counts);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (n == (ssize_t)sizeof counts && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        harness_passed += counts[0];
        harness_failed += counts[1];
        return;
    }
    harness_failed++;
    if (WIFSIGNALED(status))
        fprintf(stderr, "FAIL %s: %s: child killed by signal %d%s\n", harness_program, what,
                WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (alarm: hung)" : "");
    else
        fprintf(stderr, "FAIL %s: %s: child exited %d without its counts\n", harness_program,
                what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

#endif /* MSPACE_TEST_FAULTS_H */
