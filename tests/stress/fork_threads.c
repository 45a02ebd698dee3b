/* fork() from a multi-threaded process that is busy allocating.
 *
 * Three background threads allocate, verify and free continuously, write to
 * their own FILE on /dev/null (and fopen/fclose new ones), and put blocks into
 * a lock-protected handoff table.  Meanwhile the main thread forks repeatedly
 * (default 200 times).  Each child, with alarm(10) as a deadlock guard:
 *   - verifies and frees/reallocs the blocks in the handoff table (allocated
 *     by threads that do not exist in the child) and blocks the main thread
 *     allocated before the fork;
 *   - mallocs/frees ~1500 blocks of various sizes, including 1-4 MiB;
 *   - creates a thread that allocates, and frees blocks across the two threads;
 *   - uses stdio (fopen/fprintf/fclose);
 *   - _exit(0)s, or exits with a bit mask of what went wrong.
 * The parent waits up to 20 s per child (then SIGKILLs it) and checks every
 * child exited 0.
 *
 * Second part: a thread runs popen("echo hi") and system("true") 50 times
 * while the background threads keep allocating; output and status are checked.
 *
 * usage: fork_threads [forks=200] [popen/system rounds=50] [seed=777]
 */
#define _GNU_SOURCE
#include "../harness.h"
#include "../pattern.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NBG 3
#define BG_SLOTS 64
#define HANDOFF 32
#define NPARENT 12
#define CHILD_ALARM 10
#define CHILD_KILL_AFTER 20
#define WATCHDOG_SECONDS 160

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t tag;
} blk_t;

static uint64_t seed = 777;
static atomic_int stop_bg;
static atomic_long bg_bad, bg_null, bg_stdio_fail, bg_ops;
static blk_t handoff[HANDOFF];
static pthread_mutex_t handoff_mtx = PTHREAD_MUTEX_INITIALIZER;
static blk_t parent_blk[NPARENT];
static volatile int progress_fork, progress_popen;

/* Our own lock must not be held across fork by a background thread. */
static void atfork_prepare(void) { pthread_mutex_lock(&handoff_mtx); }
static void atfork_parent(void) { pthread_mutex_unlock(&handoff_mtx); }
static void atfork_child(void) { pthread_mutex_init(&handoff_mtx, NULL); }

static size_t bg_size(uint64_t *s)
{
    uint64_t r = rnd(s) % 10000;
    if (r < 9000)
        return 1 + rnd(s) % 1024;
    if (r < 9995)
        return 1025 + rnd(s) % 65536;
    return (1u << 20) + rnd(s) % (1u << 20);
}

/* Large blocks freed and allocated back to back keep the allocator's
 * large-block bookkeeping (its cache and its lock) busy while main forks,
 * so a lock not handled across fork() shows up as a hung child. */
static atomic_long large_ops;
static void *large_thread(void *arg)
{
    (void)arg;
    uint64_t s = mix(seed ^ 0x1a26e) | 1;
    while (!atomic_load_explicit(&stop_bg, memory_order_relaxed)) {
        size_t n = (1u << 20) + rnd(&s) % (1u << 20);
        unsigned char *p = malloc(n);
        if (p) {
            p[0] = p[n - 1] = 1;
            free(p);
        }
        atomic_fetch_add_explicit(&large_ops, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *bg_thread(void *arg)
{
    long id = (long)arg;
    uint64_t s = mix(seed + 100 + (uint64_t)id) | 1, ctr = 0;
    blk_t slot[BG_SLOTS];
    memset(slot, 0, sizeof slot);
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        atomic_fetch_add(&bg_stdio_fail, 1);
    long ops = 0;
    while (!atomic_load_explicit(&stop_bg, memory_order_relaxed)) {
        blk_t *b = &slot[rnd(&s) % BG_SLOTS];
        uint64_t r = rnd(&s) % 100;
        if (++ops % 64 == 0) /* leave the children some CPU */
            usleep(100);
        if (!b->p) {
            b->size = bg_size(&s);
            b->tag = ((uint64_t)id << 48) | ctr++;
            b->p = malloc(b->size);
            if (!b->p) {
                atomic_fetch_add(&bg_null, 1);
                continue;
            }
            fill(b->p, b->size, b->tag);
        } else if (r < 50) {
            if (!intact(b->p, b->size, b->tag))
                atomic_fetch_add(&bg_bad, 1);
            free(b->p);
            b->p = NULL;
        } else if (r < 75) {
            if (!intact(b->p, b->size, b->tag))
                atomic_fetch_add(&bg_bad, 1);
            size_t ns = bg_size(&s);
            unsigned char *q = realloc(b->p, ns);
            if (!q) {
                atomic_fetch_add(&bg_null, 1);
                continue;
            }
            if (!intact(q, ns < b->size ? ns : b->size, b->tag))
                atomic_fetch_add(&bg_bad, 1);
            b->p = q;
            b->size = ns;
            b->tag = ((uint64_t)id << 48) | ctr++;
            fill(q, ns, b->tag);
        } else if (r < 90) { /* swap with the handoff table */
            size_t j = rnd(&s) % HANDOFF;
            pthread_mutex_lock(&handoff_mtx);
            blk_t t = handoff[j];
            handoff[j] = *b;
            *b = t;
            pthread_mutex_unlock(&handoff_mtx);
        } else if (f) {
            if (fprintf(f, "bg %ld op %ld: %s %.3f %p\n", id, ops,
                        "some text that is long enough to fill the buffer",
                        ops / 7.0, (void *)b->p) <= 0)
                atomic_fetch_add(&bg_stdio_fail, 1);
            if (r == 99 && ops % 16 == 0) { /* fresh FILE: malloc'd struct */
                if (fclose(f) != 0)
                    atomic_fetch_add(&bg_stdio_fail, 1);
                f = fopen("/dev/null", "w");
                if (!f)
                    atomic_fetch_add(&bg_stdio_fail, 1);
            }
        }
    }
    for (int i = 0; i < BG_SLOTS; i++)
        if (slot[i].p) {
            if (!intact(slot[i].p, slot[i].size, slot[i].tag))
                atomic_fetch_add(&bg_bad, 1);
            free(slot[i].p);
        }
    if (f)
        fclose(f);
    atomic_fetch_add(&bg_ops, ops);
    return NULL;
}

/* ---------------- child side ---------------- */
enum {
    C_BAD_INHERITED = 1,  /* a block from before the fork was corrupted */
    C_BAD_OWN = 2,        /* a block allocated in the child was corrupted */
    C_NULL = 4,           /* malloc/realloc returned NULL */
    C_THREAD = 8,         /* pthread_create/join failed */
    C_STDIO = 16,         /* fopen/fprintf/fclose failed */
    C_THREAD_BAD = 32,    /* corruption seen by the child's thread */
};

typedef struct {
    blk_t give[64]; /* allocated by the child's main thread, freed by T */
    blk_t back[64]; /* allocated by T, freed by the child's main thread */
    int err;
    uint64_t s;
} child_shared_t;

static void *child_thread(void *arg)
{
    child_shared_t *cs = arg;
    uint64_t s = cs->s;
    blk_t tmp[32];
    memset(tmp, 0, sizeof tmp);
    for (int i = 0; i < 1000; i++) {
        blk_t *b = &tmp[rnd(&s) % 32];
        if (b->p) {
            if (!intact(b->p, b->size, b->tag))
                cs->err |= C_THREAD_BAD;
            free(b->p);
            b->p = NULL;
        } else {
            b->size = 1 + rnd(&s) % (rnd(&s) % 16 ? 2048 : 100000);
            b->tag = 0x7700000000ULL + (uint64_t)i;
            b->p = malloc(b->size);
            if (!b->p)
                cs->err |= C_NULL;
            else
                fill(b->p, b->size, b->tag);
        }
    }
    for (int i = 0; i < 32; i++)
        if (tmp[i].p)
            free(tmp[i].p);
    for (int i = 0; i < 64; i++) {
        blk_t *g = &cs->give[i];
        if (g->p) {
            if (!intact(g->p, g->size, g->tag))
                cs->err |= C_THREAD_BAD;
            free(g->p);
        }
        blk_t *b = &cs->back[i];
        b->size = 8 + (size_t)i * 97;
        b->tag = 0x8800000000ULL + (uint64_t)i;
        b->p = malloc(b->size);
        if (!b->p)
            cs->err |= C_NULL;
        else
            fill(b->p, b->size, b->tag);
    }
    return NULL;
}

static int child_work(int n)
{
    int err = 0;
    uint64_t s = mix(seed * 31 + (uint64_t)n) | 1;
    /* 1. blocks from threads that do not exist here (the lock was
     *    re-initialised by our atfork child handler) */
    for (int i = 0; i < HANDOFF; i++) {
        blk_t *b = &handoff[i];
        if (!b->p)
            continue;
        if (!intact(b->p, b->size, b->tag))
            err |= C_BAD_INHERITED;
        if (i & 1) {
            unsigned char *q = realloc(b->p, b->size * 2 + 100);
            if (!q) {
                err |= C_NULL;
                free(b->p);
            } else {
                if (!intact(q, b->size, b->tag))
                    err |= C_BAD_INHERITED;
                free(q);
            }
        } else {
            free(b->p);
        }
        b->p = NULL;
    }
    /* 2. blocks the forking thread allocated before the fork */
    for (int i = 0; i < NPARENT; i++) {
        if (!intact(parent_blk[i].p, parent_blk[i].size, parent_blk[i].tag))
            err |= C_BAD_INHERITED;
        free(parent_blk[i].p);
    }
    /* 3. a few thousand blocks of various sizes */
    blk_t live[128];
    memset(live, 0, sizeof live);
    for (int i = 0; i < 3000; i++) {
        blk_t *b = &live[rnd(&s) % 128];
        if (b->p) {
            if (!intact(b->p, b->size, b->tag))
                err |= C_BAD_OWN;
            free(b->p);
            b->p = NULL;
            continue;
        }
        uint64_t r = rnd(&s) % 1000;
        b->size = r < 850   ? 1 + rnd(&s) % 512
                  : r < 990 ? 513 + rnd(&s) % 32768
                  : r < 997 ? 33000 + rnd(&s) % 200000
                            : (1u << 20) + rnd(&s) % (3u << 20);
        b->tag = 0x9900000000ULL + (uint64_t)i;
        b->p = r % 5 == 0 ? calloc(1, b->size) : malloc(b->size);
        if (!b->p) {
            err |= C_NULL;
            continue;
        }
        fill(b->p, b->size, b->tag);
    }
    /* 4. a thread, with blocks crossing between it and this thread */
    child_shared_t *cs = calloc(1, sizeof *cs);
    if (!cs)
        return err | C_NULL;
    cs->s = s;
    for (int i = 0; i < 64; i++) {
        cs->give[i].size = 16 + (size_t)i * 211;
        cs->give[i].tag = 0xaa00000000ULL + (uint64_t)i;
        cs->give[i].p = malloc(cs->give[i].size);
        if (cs->give[i].p)
            fill(cs->give[i].p, cs->give[i].size, cs->give[i].tag);
        else
            err |= C_NULL;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, child_thread, cs) != 0 ||
        pthread_join(t, NULL) != 0) {
        err |= C_THREAD;
    } else {
        err |= cs->err;
        for (int i = 0; i < 64; i++)
            if (cs->back[i].p) {
                if (!intact(cs->back[i].p, cs->back[i].size, cs->back[i].tag))
                    err |= C_THREAD_BAD;
                free(cs->back[i].p);
            }
    }
    free(cs);
    for (int i = 0; i < 128; i++)
        if (live[i].p) {
            if (!intact(live[i].p, live[i].size, live[i].tag))
                err |= C_BAD_OWN;
            free(live[i].p);
        }
    /* 5. stdio (FILE and its buffer come from malloc) */
    FILE *f = fopen("/dev/null", "w");
    if (!f || fprintf(f, "child %d %s\n", n, "hello") <= 0 || fclose(f) != 0)
        err |= C_STDIO;
    return err;
}

/* ---------------- popen/system part ---------------- */
static int popen_rounds = 50;
static int popen_ok, popen_status_ok, system_ok;

static void *popen_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < popen_rounds; i++) {
        progress_popen = i;
        char line[64] = "";
        FILE *p = popen("echo hi", "r");
        if (p) {
            if (fgets(line, sizeof line, p) && strcmp(line, "hi\n") == 0)
                popen_ok++;
            int st = pclose(p);
            if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                popen_status_ok++;
        }
        int st = system("true");
        if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            system_ok++;
    }
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    sleep(WATCHDOG_SECONDS);
    char where[128];
    snprintf(where, sizeof where, "forks done %d, popen rounds %d, in the parent",
             progress_fork, progress_popen);
    harness_hung(WATCHDOG_SECONDS, where);
    return NULL;
}

int main(int argc, char **argv)
{
    TEST_BEGIN("fork_threads");
    int nforks = argc > 1 ? atoi(argv[1]) : 200;
    if (argc > 2)
        popen_rounds = atoi(argv[2]);
    if (argc > 3)
        seed = strtoull(argv[3], NULL, 0);

    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);

    static const size_t psz[NPARENT] = {1,     8,      24,     100,
                                        1000,  4096,   10000,  65536,
                                        70000, 200000, 300000, 1 << 20};
    for (int i = 0; i < NPARENT; i++) {
        parent_blk[i].size = psz[i];
        parent_blk[i].tag = 0x5500000000ULL + (uint64_t)i;
        parent_blk[i].p = malloc(psz[i]);
        if (!parent_blk[i].p) {
            CHECK("parent blocks allocated", 0);
            return TEST_DONE();
        }
        fill(parent_blk[i].p, psz[i], parent_blk[i].tag);
    }

    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t bg[NBG];
    int bg_started = 0;
    for (long i = 0; i < NBG; i++)
        if (pthread_create(&bg[i], NULL, bg_thread, (void *)i) == 0)
            bg_started++;
    pthread_t large;
    CHECK("background threads created",
          bg_started == NBG && pthread_create(&large, NULL, large_thread, NULL) == 0);
    if (bg_started != NBG)
        return TEST_DONE();

    int fork_fail = 0, ok = 0, bad_exit = 0, alarmed = 0, killed = 0,
        crashed = 0, reports = 0;
    uint64_t s = mix(seed) | 1;
    for (int i = 0; i < nforks; i++) {
        progress_fork = i;
        /* fork at a random point of the background threads' work, with the
         * forking thread itself allocating too */
        void *mine = malloc(1 + rnd(&s) % 5000);
        usleep((useconds_t)(rnd(&s) % 1000));
        pid_t pid = fork();
        if (pid == 0) {
            alarm(CHILD_ALARM);
            free(mine);
            _exit(child_work(i));
        }
        free(mine);
        if (pid < 0) {
            fork_fail++;
            continue;
        }
        int st = 0, waited = 0;
        pid_t w;
        for (;;) {
            w = waitpid(pid, &st, WNOHANG);
            if (w != 0 || waited >= CHILD_KILL_AFTER * 1000)
                break;
            usleep(1000);
            waited++;
        }
        if (w == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            killed++;
            if (reports++ < 10)
                fprintf(stderr,
                        "  detail: child %d (fork %d) still running after "
                        "%d s despite alarm(%d): killed (deadlock with "
                        "SIGALRM blocked, or in fork's child handlers?)\n",
                        (int)pid, i, CHILD_KILL_AFTER, CHILD_ALARM);
        } else if (w < 0) {
            crashed++;
            if (reports++ < 10)
                fprintf(stderr, "  detail: waitpid(%d): %s\n", (int)pid,
                        strerror(errno));
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            alarmed++;
            if (reports++ < 10)
                fprintf(stderr,
                        "  detail: child of fork %d killed by SIGALRM after "
                        "%d s: deadlock in the child\n",
                        i, CHILD_ALARM);
        } else if (WIFSIGNALED(st)) {
            crashed++;
            if (reports++ < 10)
                fprintf(stderr, "  detail: child of fork %d died of signal "
                                "%d (%s)\n",
                        i, WTERMSIG(st), strsignal(WTERMSIG(st)));
        } else {
            bad_exit++;
            if (reports++ < 10)
                fprintf(stderr,
                        "  detail: child of fork %d exited %d (1 inherited "
                        "block corrupt, 2 own block corrupt, 4 NULL, 8 "
                        "thread, 16 stdio, 32 corrupt in child's thread)\n",
                        i, WEXITSTATUS(st));
        }
    }
    progress_fork = nforks;
    clock_gettime(CLOCK_MONOTONIC, &t1);

    pthread_t pt;
    int pt_ok = pthread_create(&pt, NULL, popen_thread, NULL) == 0;
    if (pt_ok)
        pthread_join(pt, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t2);

    atomic_store(&stop_bg, 1);
    for (int i = 0; i < NBG; i++)
        pthread_join(bg[i], NULL);
    pthread_join(large, NULL);
    CHECK("the large-block thread ran during the forks", atomic_load(&large_ops) > 100);
    int parent_bad = 0;
    for (int i = 0; i < NPARENT; i++) {
        if (!intact(parent_blk[i].p, parent_blk[i].size, parent_blk[i].tag))
            parent_bad++;
        free(parent_blk[i].p);
    }
    for (int i = 0; i < HANDOFF; i++)
        if (handoff[i].p) {
            if (!intact(handoff[i].p, handoff[i].size, handoff[i].tag))
                bg_bad++;
            free(handoff[i].p);
        }

    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("fork_threads: %d forks in %.2f s (%d exited 0; children's CPU "
           "%.2f s), %d popen/system rounds in %.2f s, background ops %ld\n",
           nforks,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           ok,
           (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
           popen_rounds,
           (double)(t2.tv_sec - t1.tv_sec) + (t2.tv_nsec - t1.tv_nsec) / 1e9,
           (long)bg_ops);
    CHECK("fork() never failed", fork_fail == 0);
    CHECK("no child deadlocked (SIGALRM after 10 s)", alarmed == 0);
    CHECK("no child hung with the alarm not firing (killed after 20 s)",
          killed == 0);
    CHECK("no child crashed", crashed == 0);
    CHECK("no child reported corruption/NULL/thread/stdio errors",
          bad_exit == 0);
    CHECK("popen thread created", pt_ok);
    CHECK("popen(\"echo hi\") read \"hi\" every time", popen_ok == popen_rounds);
    CHECK("pclose status 0 every time", popen_status_ok == popen_rounds);
    CHECK("system(\"true\") returned 0 every time", system_ok == popen_rounds);
    CHECK("parent's blocks intact after all the forks", parent_bad == 0);
    CHECK("background threads' blocks intact", atomic_load(&bg_bad) == 0);
    CHECK("background threads: no NULL from malloc/realloc",
          atomic_load(&bg_null) == 0);
    CHECK("background threads: stdio worked",
          atomic_load(&bg_stdio_fail) == 0);
    return TEST_DONE();
}
