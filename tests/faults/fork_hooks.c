/* fork() with atfork handlers that allocate, and popen()/system() from many
 * threads at once.
 *
 * Two sets of pthread_atfork handlers malloc, check and free small (48 B),
 * medium (20 KiB) and large (1 MiB and 6 MiB) blocks: one set registered in a
 * constructor before the program's first allocation (so before mspace's own
 * handlers, if mspace registers at its first use), one registered in main
 * after allocating. glibc runs prepare handlers in reverse order of
 * registration and parent/child handlers in order, so one of the two sets
 * always runs on the far side of mspace's own fork handlers: an allocator
 * that holds its locks across those calls deadlocks there.
 * The prepare handler's blocks are checked and freed by the parent and by
 * the child handler. The main thread forks FORKS times while three threads
 * allocate; each child allocates, frees the parent's blocks and exits 0.
 * Then four threads run popen("echo ...") and system("exit N") while two
 * threads allocate. fork_threads.c covers one popen thread and children that
 * create threads; fork_signal.c covers fork from a signal handler.
 * A watchdog thread ends a hang; each child has alarm(10).
 *
 * usage: fork_hooks [forks = 200] [popen/system rounds per thread = 25]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../pattern.h"
#include "faults.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define WATCHDOG_SECONDS 120

static const size_t hook_sizes[4] = {48, 20 * KiB, MiB, 6 * MiB};

/* One set of handlers: what its prepare allocated, and what went wrong. */
typedef struct {
    unsigned char *held[4];
    atomic_int prepares, parents, children, bad;
    uint64_t tag;
} hook_set_t;
static hook_set_t early = {.tag = 0xea1e}, late = {.tag = 0x1a7e};

/* Allocate and free one block of each size: exercises every path that could
 * take an allocator lock (span, segment, large cache, fresh mapping). */
static int churn(uint64_t tag) {
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char *p = malloc(hook_sizes[i]);
        if (p == NULL)
            return 1;
        fill(p, hook_sizes[i] < 4096 ? hook_sizes[i] : 4096, tag + i);
        bad += !intact(p, hook_sizes[i] < 4096 ? hook_sizes[i] : 4096, tag + i);
        free(p);
    }
    return bad;
}

static void prepare(hook_set_t *h) {
    atomic_fetch_add(&h->prepares, 1);
    for (int i = 0; i < 4; i++) {
        h->held[i] = malloc(hook_sizes[i]);
        if (h->held[i])
            fill(h->held[i], hook_sizes[i] < 8192 ? hook_sizes[i] : 8192, h->tag + i);
        else
            atomic_fetch_add(&h->bad, 1);
    }
    atomic_fetch_add(&h->bad, churn(h->tag));
}

static void release(hook_set_t *h, atomic_int *counter) {
    atomic_fetch_add(counter, 1);
    for (int i = 0; i < 4; i++) {
        if (h->held[i] && !intact(h->held[i], hook_sizes[i] < 8192 ? hook_sizes[i] : 8192, h->tag + i))
            atomic_fetch_add(&h->bad, 1);
        free(h->held[i]);
        h->held[i] = NULL;
    }
    atomic_fetch_add(&h->bad, churn(h->tag + 100));
}

static void early_prepare(void) { prepare(&early); }
static void early_parent(void) { release(&early, &early.parents); }
static void early_child(void) { release(&early, &early.children); }
static void late_prepare(void) { prepare(&late); }
static void late_parent(void) { release(&late, &late.parents); }
static void late_child(void) { release(&late, &late.children); }

/* Before main and before any allocation of ours: the first thing run. */
__attribute__((constructor(101))) static void register_early(void) {
    pthread_atfork(early_prepare, early_parent, early_child);
}


static atomic_int stop;
static atomic_long bg_ops, bg_bad;
static void *allocator(void *arg) {
    uint64_t s = (uintptr_t)arg * 7919 + 1;
    unsigned char *keep[64] = {0};
    size_t size[64] = {0};
    while (!atomic_load(&stop)) {
        int k = (int)(rnd(&s) % 64);
        if (keep[k]) {
            if (!intact(keep[k], size[k], (uint64_t)k + size[k]))
                atomic_fetch_add(&bg_bad, 1);
            free(keep[k]);
        }
        uint64_t r = rnd(&s);
        size[k] = r % 16 == 0 ? 256 * KiB + r % MiB : 16 + r % 3000;
        keep[k] = malloc(size[k]);
        if (keep[k])
            fill(keep[k], size[k], (uint64_t)k + size[k]);
        else
            atomic_fetch_add(&bg_bad, 1);
        atomic_fetch_add(&bg_ops, 1);
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
    return NULL;
}

static int child_body(void) {
    alarm(10);
    int bad = churn(0xc41d);
    for (int i = 0; i < 200; i++) {
        void *p = malloc(16 + (size_t)i * 40);
        bad += p == NULL;
        free(p);
    }
    bad += atomic_load(&early.bad) != 0 || atomic_load(&late.bad) != 0;
    bad += early.children != 1 || late.children != 1; /* this child's, once each */
    return bad ? 1 : 0;
}

static int popen_rounds = 25;
static atomic_int popen_ok, system_ok;
static void *spawner(void *arg) {
    long id = (long)arg;
    for (int r = 0; r < popen_rounds; r++) {
        char cmd[64], want[64], line[64] = "";
        snprintf(cmd, sizeof cmd, "echo spawn-%ld-%d", id, r);
        snprintf(want, sizeof want, "spawn-%ld-%d\n", id, r);
        FILE *f = popen(cmd, "r");
        if (f) {
            if (!fgets(line, sizeof line, f))
                line[0] = '\0';
            if (pclose(f) == 0 && strcmp(line, want) == 0)
                atomic_fetch_add(&popen_ok, 1);
        }
        snprintf(cmd, sizeof cmd, "exit %d", (int)((id + r) % 7));
        int st = system(cmd);
        if (WIFEXITED(st) && WEXITSTATUS(st) == (int)((id + r) % 7))
            atomic_fetch_add(&system_ok, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    TEST_BEGIN("faults/fork_hooks");
    int forks = argc > 1 ? atoi(argv[1]) : 200;
    if (argc > 2)
        popen_rounds = atoi(argv[2]);
    watchdog_start(WATCHDOG_SECONDS);
    void *first = malloc(100);
    free(first);
    pthread_atfork(late_prepare, late_parent, late_child);

    pthread_t bg[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&bg[i], NULL, allocator, (void *)i);
    int fork_fail = 0, child_bad = 0, child_killed = 0;
    watchdog_stage = "forking while three threads allocate";
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fork_fail++;
            continue;
        }
        if (pid == 0)
            _exit(child_body());
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFSIGNALED(st))
            child_killed++;
        else if (WEXITSTATUS(st) != 0)
            child_bad++;
    }
    watchdog_stage = "popen/system from four threads while two allocate";
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(bg[i], NULL);
    atomic_store(&stop, 0);
    for (long i = 0; i < 2; i++)
        pthread_create(&bg[i], NULL, allocator, (void *)(i + 10));
    pthread_t sp[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&sp[i], NULL, spawner, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(sp[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(bg[i], NULL);
    watchdog_stage = "checks";

    printf("faults/fork_hooks: %d forks with allocating atfork handlers, %ld background "
           "operations, %d popen + %d system calls from 4 threads\n",
           forks, (long)bg_ops, 4 * popen_rounds, 4 * popen_rounds);
    CHECK("fork never failed", fork_fail == 0);
    CHECK("no child was killed (crash or alarm: deadlock)", child_killed == 0);
    CHECK("every child allocated, freed the handlers' blocks and exited 0", child_bad == 0);
    CHECK("early (pre-first-malloc) handlers ran around every fork in the parent",
          early.prepares == forks && early.parents == forks);
    CHECK("late handlers ran around every fork in the parent",
          late.prepares == forks && late.parents == forks);
    CHECK("handlers' blocks intact in the parent", early.bad == 0 && late.bad == 0);
    CHECK("background threads' blocks intact, no NULL", bg_bad == 0);
    CHECK("popen from four threads read its line every time", popen_ok == 4 * popen_rounds);
    CHECK("system from four threads returned each exit status", system_ok == 4 * popen_rounds);
    return TEST_DONE();
}
