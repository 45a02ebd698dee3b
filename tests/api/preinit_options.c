/* MSPACE_* options must be honoured even when the process's first
 * allocation comes from a .preinit_array function, before libc has set
 * environ (libFuzzer's runtime does this). The program re-runs itself with
 * --child and MSPACE_STATS_FILE / an unknown MSPACE_ option set; the child
 * must write the statistics file at exit and warn about the unknown option
 * exactly once. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"

static void *preinit_block;

static void preinit_malloc(void) { preinit_block = malloc(100); }
__attribute__((section(".preinit_array"), used)) static void (*preinit_entry)(void) = preinit_malloc;

/* Reads what fd gives until EOF into buf (NUL-terminated). */
static void read_all(int fd, char *buf, size_t size) {
    size_t n = 0;
    ssize_t got;
    while (n + 1 < size && (got = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = '\0';
}

static size_t count(const char *haystack, const char *needle) {
    size_t n = 0;
    for (const char *s = haystack; (s = strstr(s, needle)) != NULL; s++)
        n++;
    return n;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) {
        free(preinit_block);
        return preinit_block ? 0 : 3;
    }
    TEST_BEGIN("preinit_options");
    CHECK("malloc in .preinit_array works", preinit_block != NULL);
    free(preinit_block);

    char path[] = "/tmp/mspace-preinit-XXXXXX";
    int fd = mkstemp(path);
    CHECK("temporary file", fd >= 0);
    close(fd);
    unlink(path); /* the child must create it */
    int err[2];
    if (pipe(err) != 0)
        return 2;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(err[1], 2);
        close(err[0]);
        setenv("MSPACE_STATS_FILE", path, 1);
        setenv("MSPACE_NO_SUCH_OPTION", "1", 1);
        execl("/proc/self/exe", argv[0], "--child", (char *)NULL);
        _exit(127);
    }
    close(err[1]);
    char messages[4096], stats[4096];
    read_all(err[0], messages, sizeof messages);
    close(err[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK("child ran and exited 0", WIFEXITED(status) && WEXITSTATUS(status) == 0);

    fd = open(path, O_RDONLY);
    CHECK("MSPACE_STATS_FILE written at exit despite a .preinit_array malloc", fd >= 0);
    if (fd >= 0) {
        read_all(fd, stats, sizeof stats);
        close(fd);
        CHECK("statistics file has the counters", strstr(stats, "mspace: heaps ") != NULL);
        unlink(path);
    }
    CHECK("unknown MSPACE_ option warned about exactly once",
          count(messages, "unknown option ignored: MSPACE_NO_SUCH_OPTION") == 1);
    return TEST_DONE();
}
