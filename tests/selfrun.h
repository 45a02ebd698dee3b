/* For tests of options read at start-up: the test runs itself again as a
 * child with MSPACE_* settings in its environment and a role argument, and
 * looks at what the child wrote. The child runs under a watchdog: one that
 * hangs is killed and reported as an exit status of -1. */
#ifndef MSPACE_TEST_SELFRUN_H
#define MSPACE_TEST_SELFRUN_H
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Runs "/proc/self/exe role" with env (NULL-terminated "NAME=value"s)
 * added, stdout and stderr to output_path. Its exit status, or -1 if it
 * crashed or ran longer than seconds. *pid_out (if not NULL) gets its pid. */
static int selfrun(const char *const env[], const char *role, const char *output_path, int seconds,
                   pid_t *pid_out) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; env[i]; i++)
            putenv((char *)env[i]);
        if (!freopen(output_path, "w", stdout) || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            _exit(127);
        exe[n] = '\0';
        execl(exe, exe, role, (char *)NULL);
        _exit(127);
    }
    if (pid_out)
        *pid_out = pid;
    if (pid < 0)
        return -1;
    int status;
    for (int waited_ms = 0;; waited_ms += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (waited_ms >= seconds * 1000) {
            fprintf(stderr, "selfrun: %s still running after %d s: killed (hang?)\n", role, seconds);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
}

/* The whole file, NUL-terminated (malloc'd), or NULL. */
static char *selfrun_read(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* A fresh directory for the test's files. */
static const char *selfrun_dir(void) {
    static char dir[] = "/tmp/mspace-test.XXXXXX";
    return mkdtemp(dir);
}

#endif
