/* MSPACE_STATS_SIGNAL: dump the statistics of a running process on demand.
 *
 * The handler only writes one byte to a pipe (write is async-signal-safe,
 * the pipe's write end never blocks). A helper thread, blocked in read()
 * on the other end, writes the report. Why a thread rather than a flag
 * tested on the next slow-path call: a program that is idle (waiting in
 * poll, or living on its fast paths) would never dump, and a dump from
 * inside an allocation would run with the caller's allocator state on the
 * stack, where the report's own allocation (the verbose snapshot) and
 * stdio must not go. The thread exists only when the option is set, holds
 * every signal blocked so it never steals one meant for the program, and
 * is started when the library is loaded (a constructor), not from inside
 * malloc, where pthread_create could wait on a lock its caller holds.
 * A child made by fork() gets a thread and a pipe of its own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../core/host.h"
#include "../core/options.h"
#include "../core/text.h"
#include "init.h"
#include "introspect.h"
#include "mspace.h"

static int wake_fds[2] = {-1, -1}; /* [0] read by the thread, [1] written by the handler */

static void on_signal(int signal) {
    int saved_errno = errno;
    char byte = 0;
    if (write(wake_fds[1], &byte, 1) < 0) {
        /* full: a dump is already pending */
    }
    errno = saved_errno;
}

static void dump(void) {
    int fd = ms_report_open();
    if (fd < 0)
        return;
    ms_introspect_write(fd, ms_option_number(MS_OPTION_VERBOSE) ? MSPACE_STATS_VERBOSE : 0);
    ms_report_close(fd);
}

static void *dump_thread(void *read_fd) {
    int fd = (int)(intptr_t)read_fd;
    char bytes[64];
    for (;;) {
        ssize_t n = read(fd, bytes, sizeof bytes); /* several signals: one dump */
        if (n > 0)
            dump();
        else if (n == 0 || errno != EINTR)
            return NULL;
    }
}

static bool start(void) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, dump_thread, (void *)(intptr_t)fds[0]);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    pthread_setname_np(thread, "mspace-stats");
    wake_fds[0] = fds[0];
    wake_fds[1] = fds[1];
    return true;
}

/* The parent's thread is not in the child: close its pipe, start anew. */
static void restart_in_child(void) {
    close(wake_fds[0]);
    close(wake_fds[1]);
    wake_fds[0] = wake_fds[1] = -1;
    start();
}

static const struct {
    const char *name;
    int number;
} signal_names[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT},     {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},     {"TERM", SIGTERM},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},   {"SYS", SIGSYS},
};

/* "SIGUSR2", "USR2", "12" or "SIGRTMIN+3"; 0 if it names no signal we can
 * catch. */
static int parse_signal(const char *text) {
    if (*text >= '0' && *text <= '9') {
        long n = ms_option_number(MS_OPTION_STATS_SIGNAL);
        return n > 0 && n <= SIGRTMAX ? (int)n : 0;
    }
    if (strncmp(text, "SIG", 3) == 0)
        text += 3;
    if (strncmp(text, "RTMIN+", 6) == 0) {
        int n = atoi(text + 6);
        return n >= 0 && SIGRTMIN + n <= SIGRTMAX ? SIGRTMIN + n : 0;
    }
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
        if (strcmp(text, signal_names[i].name) == 0)
            return signal_names[i].number;
    return 0;
}

static void warn(const char *problem, const char *value) {
    ms_text_t t = {.len = 0};
    ms_text_str(&t, "mspace: MSPACE_STATS_SIGNAL: ");
    ms_text_str(&t, problem);
    ms_text_str(&t, value);
    ms_text_str(&t, "\n");
    ms_host_write(2, t.buf, t.len);
}

extern char **environ;

/* Set-up stays lazy (first allocator call) unless this option asks for a
 * thread now: a glance at the environment decides, the option table reads
 * the value. */
static bool asked_for(void) {
    static const char prefix[] = "MSPACE_STATS_SIGNAL=";
    for (char **entry = environ; entry && *entry; entry++)
        if (strncmp(*entry, prefix, sizeof prefix - 1) == 0)
            return true;
    return false;
}

__attribute__((constructor)) static void install_at_load(void) {
    if (!asked_for())
        return;
    ms_init_ensure();
    const char *value = ms_option_text(MS_OPTION_STATS_SIGNAL);
    if (*value == '\0')
        return;
    int signal = parse_signal(value);
    if (signal == 0 || signal == SIGKILL || signal == SIGSTOP) {
        warn("not a signal that can be caught, ignored: ", value);
        return;
    }
    if (!start()) {
        warn("no dump thread, ignored: ", value);
        return;
    }
    struct sigaction action = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&action.sa_mask);
    sigaction(signal, &action, NULL);
    pthread_atfork(NULL, NULL, restart_in_child);
}
