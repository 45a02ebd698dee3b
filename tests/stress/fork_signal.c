/* Signals that interrupt malloc in a single-threaded process.
 *
 * Part A: an ITIMER_REAL/SIGALRM handler calls fork() (fork is
 * async-signal-safe) while the main loop mallocs, reallocs and frees
 * continuously, so the fork often lands in the middle of a malloc.  The child,
 * still inside the handler, restores SIGALRM, sets alarm(5) as a deadlock
 * guard, verifies/frees/reallocs blocks allocated before the fork, mallocs and
 * frees a few blocks of its own, and _exit(0)s (or exits with a bit mask of
 * what went wrong).  The main loop reaps children with waitpid(WNOHANG) and
 * SIGKILLs any child still alive 15 s after its fork.  Default 200 forks.
 *
 * Part B: a SIGALRM handler that itself mallocs, callocs, reallocs and frees
 * (not async-signal-safe, but real programs do it) fires every 200 us while
 * the main loop runs malloc-heavy work.  The process must finish and all the
 * data of both the handler and the main loop must verify.  Part B runs only
 * when asked for (second argument > 0): neither glibc nor mspace survives it
 * today (issue 4, "Signals"), so it is not part of `make test` yet.
 *
 * A POSIX timer (SIGUSR1, no thread) acts as watchdog for hangs.
 *
 * usage: fork_signal [forks=200] [part B ops=0, e.g. 2000000] [seed=99]
 */
#define _GNU_SOURCE
#include "../harness.h"
#include "../pattern.h"
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXFORKS 100000
#define MAX_OUTSTANDING 8
#define CHILD_ALARM 5
#define CHILD_KILL_AFTER 15
#define NSTABLE 8
#define NSLOTS 512
#define WATCHDOG_SECONDS 150

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t tag;
} blk_t;

/* ---- async-signal-safe output for the watchdog ---- */
static void put_str(char *buf, size_t *n, const char *s)
{
    while (*s && *n < 255)
        buf[(*n)++] = *s++;
}
static void put_num(char *buf, size_t *n, long v)
{
    char t[24];
    int k = 0;
    if (v < 0) {
        put_str(buf, n, "-");
        v = -v;
    }
    do
        t[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < 23);
    while (k && *n < 255)
        buf[(*n)++] = t[--k];
}

static volatile sig_atomic_t phase; /* 1 = part A, 2 = part B */
static volatile long progress;

static void watchdog_handler(int sig)
{
    (void)sig;
    char buf[256];
    size_t n = 0;
    put_str(buf, &n, "FAIL fork_signal: watchdog: not finished after ");
    put_num(buf, &n, WATCHDOG_SECONDS);
    put_str(buf, &n, " s in part ");
    put_num(buf, &n, phase);
    put_str(buf, &n, " (progress ");
    put_num(buf, &n, progress);
    put_str(buf, &n, ") - hang in a signal handler interrupting malloc?\n");
    write(2, buf, n);
    n = 0;
    put_str(buf, &n, "fork_signal: ");
    put_num(buf, &n, harness_passed);
    put_str(buf, &n, " passed, ");
    put_num(buf, &n, harness_failed + 1);
    put_str(buf, &n, " failed\n");
    write(1, buf, n);
    _exit(1);
}

static void set_timer(long usec)
{
    struct itimerval it;
    it.it_interval.tv_sec = usec / 1000000;
    it.it_interval.tv_usec = usec % 1000000;
    it.it_value = it.it_interval;
    setitimer(ITIMER_REAL, &it, NULL);
}

/* ---------------- part A: fork in a signal handler ---------------- */
static int fork_target = 200;
static blk_t stable[NSTABLE]; /* allocated before the timer starts */
static pid_t pids[MAXFORKS];
static struct timespec fork_time[MAXFORKS];
static char reaped[MAXFORKS];
static volatile sig_atomic_t nforked, nreaped, fork_errors;

enum {
    C_BAD_STABLE = 1, /* a block allocated before the fork was corrupted */
    C_BAD_OWN = 2,    /* a block allocated in the child was corrupted */
    C_NULL = 4,       /* malloc/realloc returned NULL */
};

static void child_in_handler(int n)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGALRM, &sa, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &m, NULL); /* blocked while in the handler */
    alarm(CHILD_ALARM);

    int err = 0;
    for (int i = 0; i < NSTABLE; i++) {
        if (!intact(stable[i].p, stable[i].size, stable[i].tag))
            err |= C_BAD_STABLE;
        if (i & 1) {
            unsigned char *q = realloc(stable[i].p, stable[i].size + 3000);
            if (!q) {
                err |= C_NULL;
                continue;
            }
            if (!intact(q, stable[i].size, stable[i].tag))
                err |= C_BAD_STABLE;
            free(q);
        } else {
            free(stable[i].p);
        }
    }
    static const size_t sizes[] = {16, 100, 1000, 5000, 70000, 1 << 20};
    blk_t b[6];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 6; i++) {
            b[i].size = sizes[i] + (size_t)round;
            b[i].tag = ((uint64_t)n << 16) | (uint64_t)(round * 8 + i);
            b[i].p = round == 2 ? calloc(1, b[i].size) : malloc(b[i].size);
            if (!b[i].p) {
                err |= C_NULL;
                continue;
            }
            if (round == 2)
                for (size_t k = 0; k < b[i].size; k += 64)
                    if (b[i].p[k])
                        err |= C_BAD_OWN;
            fill(b[i].p, b[i].size, b[i].tag);
        }
        for (int i = 5; i >= 0; i--)
            if (b[i].p) {
                if (!intact(b[i].p, b[i].size, b[i].tag))
                    err |= C_BAD_OWN;
                free(b[i].p);
            }
    }
    _exit(err);
}

static void fork_handler(int sig)
{
    (void)sig;
    int n = nforked;
    if (n >= fork_target || n - nreaped >= MAX_OUTSTANDING)
        return;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0)
        child_in_handler(n);
    if (pid > 0) {
        pids[n] = pid;
        clock_gettime(CLOCK_MONOTONIC, &fork_time[n]);
        nforked = n + 1;
    } else {
        fork_errors++;
    }
    errno = saved;
}

static double since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (b.tv_nsec - a->tv_nsec) / 1e9;
}

static int ok, alarmed, killed, crashed, bad_exit, reports;

static void record(int i, int st)
{
    reaped[i] = 1;
    nreaped++;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        ok++;
    } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
        alarmed++;
        if (reports++ < 10)
            fprintf(stderr,
                    "  detail: child %d (fork #%d) killed by SIGALRM after "
                    "%d s: deadlock in the child\n",
                    (int)pids[i], i, CHILD_ALARM);
    } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
        killed++;
    } else if (WIFSIGNALED(st)) {
        crashed++;
        if (reports++ < 10)
            fprintf(stderr, "  detail: child of fork #%d died of signal %d "
                            "(%s)\n",
                    i, WTERMSIG(st), strsignal(WTERMSIG(st)));
    } else {
        bad_exit++;
        if (reports++ < 10)
            fprintf(stderr,
                    "  detail: child of fork #%d exited %d (1 pre-fork "
                    "block corrupt, 2 own block corrupt, 4 NULL)\n",
                    i, WEXITSTATUS(st));
    }
}

static void reap(void)
{
    int st;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
        int n = nforked;
        for (int i = 0; i < n; i++)
            if (pids[i] == w && !reaped[i]) {
                record(i, st);
                break;
            }
    }
    int n = nforked;
    for (int i = 0; i < n; i++)
        if (!reaped[i] && since(&fork_time[i]) > CHILD_KILL_AFTER) {
            if (reports++ < 10)
                fprintf(stderr,
                        "  detail: child %d (fork #%d) alive %d s after "
                        "fork despite alarm(%d): SIGKILLed (stuck before "
                        "fork returned, e.g. in an atfork child handler?)\n",
                        (int)pids[i], i, CHILD_KILL_AFTER, CHILD_ALARM);
            kill(pids[i], SIGKILL);
            /* counted as killed when waitpid reports it */
        }
}

/* Main-loop work shared by both parts: one random operation on a table. */
static blk_t slots[NSLOTS];
static long main_bad, main_null, main_ops;

static void main_op(uint64_t *s)
{
    blk_t *b = &slots[rnd(s) % NSLOTS];
    main_ops++;
    if (!b->p) {
        uint64_t r = rnd(s) % 1000;
        b->size = r < 900 ? 1 + rnd(s) % 512
                          : r < 998 ? 513 + rnd(s) % 20000
                                    : 200000 + rnd(s) % 400000;
        b->tag = (uint64_t)main_ops;
        b->p = malloc(b->size);
        if (!b->p) {
            main_null++;
            return;
        }
        fill(b->p, b->size, b->tag);
        return;
    }
    if (!intact(b->p, b->size, b->tag))
        main_bad++;
    if (rnd(s) % 3 == 0) {
        size_t ns = 1 + rnd(s) % (b->size * 2 + 64);
        unsigned char *q = realloc(b->p, ns);
        if (!q) {
            main_null++;
            return;
        }
        if (!intact(q, ns < b->size ? ns : b->size, b->tag))
            main_bad++;
        b->p = q;
        b->size = ns;
        b->tag = (uint64_t)main_ops;
        fill(q, ns, b->tag);
    } else {
        free(b->p);
        b->p = NULL;
    }
}

static void free_slots(void)
{
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].p) {
            if (!intact(slots[i].p, slots[i].size, slots[i].tag))
                main_bad++;
            free(slots[i].p);
            slots[i].p = NULL;
        }
}

/* ---------------- part B: malloc in a signal handler ---------------- */
#define HRING 16
static blk_t hring[HRING];
static volatile long h_calls, h_bad, h_null, h_dirty;
static uint64_t h_rng = 0x1234567;

static void malloc_handler(int sig)
{
    (void)sig;
    int saved = errno;
    long c = h_calls++;
    blk_t *b = &hring[c % HRING];
    if (b->p) {
        if (!intact(b->p, b->size, b->tag))
            h_bad++;
        if (c % 5 == 0) { /* realloc instead of free */
            size_t ns = 1 + rnd(&h_rng) % 3000;
            unsigned char *q = realloc(b->p, ns);
            if (!q) {
                h_null++;
            } else {
                if (!intact(q, ns < b->size ? ns : b->size, b->tag))
                    h_bad++;
                b->p = q;
                b->size = ns;
                b->tag = 0xabc0000000ULL + (uint64_t)c;
                fill(q, ns, b->tag);
            }
            errno = saved;
            return;
        }
        free(b->p);
        b->p = NULL;
    }
    b->size = c % 50 == 0 ? 100000 + rnd(&h_rng) % 100000
                          : 1 + rnd(&h_rng) % 4096;
    b->tag = 0xabc0000000ULL + (uint64_t)c;
    if (c % 3 == 0) {
        b->p = calloc(1, b->size);
        if (b->p)
            for (size_t k = 0; k < b->size; k++)
                if (b->p[k]) {
                    h_dirty++;
                    break;
                }
    } else {
        b->p = malloc(b->size);
    }
    if (!b->p)
        h_null++;
    else
        fill(b->p, b->size, b->tag);
    errno = saved;
}

int main(int argc, char **argv)
{
    TEST_BEGIN("fork_signal");
    fork_target = argc > 1 ? atoi(argv[1]) : 200;
    long b_ops = argc > 2 ? atol(argv[2]) : 0;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 99;
    if (fork_target > MAXFORKS)
        fork_target = MAXFORKS;
    uint64_t s = mix(seed) | 1;

    /* watchdog: a POSIX timer delivering SIGUSR1 (no helper thread) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_handler;
    sigaction(SIGUSR1, &sa, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    timer_t wd;
    CHECK("watchdog timer created", timer_create(CLOCK_MONOTONIC, &sev, &wd) == 0);
    struct itimerspec its = {{0, 0}, {WATCHDOG_SECONDS, 0}};
    timer_settime(wd, 0, &its, NULL);

    /* ---- part A ---- */
    phase = 1;
    for (int i = 0; i < NSTABLE; i++) {
        stable[i].size = (size_t)16 << (2 * i); /* 16 B .. 256 KiB */
        stable[i].tag = 0x51000ULL + (uint64_t)i;
        stable[i].p = malloc(stable[i].size);
        if (stable[i].p)
            fill(stable[i].p, stable[i].size, stable[i].tag);
        else
            main_null++;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fork_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    set_timer(1000);
    while ((nforked < fork_target || nreaped < nforked) && since(&t0) < 90) {
        for (int k = 0; k < 256; k++)
            main_op(&s);
        reap();
        progress = nforked;
    }
    set_timer(0);
    double ta = since(&t0);
    long a_ops = main_ops;
    /* the stable blocks must still be intact in the parent */
    int stable_bad = 0;
    for (int i = 0; i < NSTABLE; i++)
        if (stable[i].p) {
            if (!intact(stable[i].p, stable[i].size, stable[i].tag))
                stable_bad++;
            free(stable[i].p);
        }
    free_slots();
    long a_bad = main_bad, a_null = main_null;
    printf("fork_signal: part A: %d forks from the SIGALRM handler in %.2f s "
           "(%ld malloc-loop ops); %d exited 0\n",
           (int)nforked, ta, a_ops, ok);
    fflush(stdout); /* keep part A's result visible if part B crashes */
    CHECK("A: the handler forked every time (no fork error, not stuck)",
          nforked == fork_target && fork_errors == 0);
    CHECK("A: every child was reaped", nreaped == nforked);
    CHECK("A: no child deadlocked (SIGALRM after 5 s)", alarmed == 0);
    CHECK("A: no child stuck past the alarm (SIGKILLed after 15 s)",
          killed == 0);
    CHECK("A: no child crashed", crashed == 0);
    CHECK("A: no child found corrupt blocks or got NULL", bad_exit == 0);
    CHECK("A: parent's main-loop blocks intact", a_bad == 0 && a_null == 0);
    CHECK("A: parent's pre-fork blocks intact", stable_bad == 0);

    if (b_ops <= 0) {
        timer_delete(wd);
        return TEST_DONE();
    }

    /* ---- part B ---- */
    phase = 2;
    main_ops = 0;
    main_bad = 0;
    main_null = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = malloc_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    set_timer(200);
    for (long i = 0; i < b_ops; i++) {
        main_op(&s);
        if ((i & 4095) == 0)
            progress = i;
    }
    set_timer(0);
    signal(SIGALRM, SIG_IGN);
    double tb = since(&t0);
    free_slots();
    for (int i = 0; i < HRING; i++)
        if (hring[i].p) {
            if (!intact(hring[i].p, hring[i].size, hring[i].tag))
                h_bad++;
            free(hring[i].p);
        }
    printf("fork_signal: part B: %ld malloc-loop ops in %.2f s, handler ran "
           "%ld times\n",
           b_ops, tb, (long)h_calls);
    CHECK("B: main-loop blocks intact", main_bad == 0);
    CHECK("B: main loop got no NULL", main_null == 0);
    CHECK("B: handler's blocks intact", h_bad == 0);
    CHECK("B: handler got no NULL", h_null == 0);
    CHECK("B: handler's calloc memory zero", h_dirty == 0);
    timer_delete(wd);
    return TEST_DONE();
}
