/* A real program as a workload: runs it with its standard input from a file
 * and its output thrown away, under whatever allocator this process was
 * started with (LD_PRELOAD is inherited), and reports what a user of that
 * program would see: how long it took and how much memory it held.
 *
 *   spawn INPUT PROGRAM [ARGS...]
 *
 * Prints:
 *   ms_total     wall time from starting the program to its exit
 *   peak_rss_kb  the program's peak resident set (wait4's ru_maxrss)
 * Exits 1 if the program cannot be started or does not exit with 0.
 * Build: gcc -O2 -o spawn bench/spawn.c */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: spawn INPUT PROGRAM [ARGS...]\n");
        return 2;
    }
    int in = open(argv[1], O_RDONLY);
    int out = open("/dev/null", O_WRONLY);
    if (in < 0 || out < 0) {
        perror(argv[1]);
        return 1;
    }
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        dup2(in, 0);
        dup2(out, 1);
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("wait4");
        return 1;
    }
    double t1 = now_ms();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "spawn: %s failed (status 0x%x)\n", argv[2], status);
        return 1;
    }
    printf("ms_total %.1f\n", t1 - t0);
    printf("peak_rss_kb %ld\n", ru.ru_maxrss);
    return 0;
}
