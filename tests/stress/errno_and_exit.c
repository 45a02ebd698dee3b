/* errno, malloc_usable_size and blocks that outlive their thread or main().
 *
 *  1. free() leaves errno unchanged (tried with errno 0 and with an unusual
 *     value) for small, ~100 KiB and 8 MiB blocks and for NULL: on the
 *     allocating thread, on another thread while the allocating thread is
 *     alive, and after it has exited; also in bulk (many frees in a row, which
 *     may trigger returning memory to the OS).
 *  2. malloc_usable_size of a block made by thread A is >= the request, the
 *     whole usable size is writable, and the value is the same when queried by
 *     A, by thread B while A is alive, and by main after A has exited.
 *  3. Blocks made by a thread that has exited keep their contents and can be
 *     realloc'd (grown and shrunk) and freed by main and by another thread.
 *  4. After main returns: an atexit handler and then a destructor
 *     (__attribute__((destructor))) verify and free blocks made by exited
 *     threads and by main, and malloc/calloc/realloc/free new blocks, while a
 *     detached thread is still allocating.  Each prints an updated summary
 *     line (the last one counts).
 *
 * usage: errno_and_exit [rounds of parts 1-3 = 1]  (nothing random; one
 *        round takes well under a second)
 */
#define _GNU_SOURCE
#include "../harness.h"
#include "../pattern.h"
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ODD_ERRNO 12345

/* free p with errno set to v; returns 1 if errno is still v afterwards */
static int free_keeps(void *p, int v)
{
    errno = v;
    free(p);
    return errno == v;
}

/* ---------------- 1. errno ---------------- */
static const size_t esizes[3] = {24, 100 * 1024, 8 << 20};
static const char *ename[3] = {"small (24 B)", "medium (100 KiB)",
                               "large (8 MiB)"};

typedef struct {
    void *blk[3][2];   /* made by the thread */
    void *incoming[3][2]; /* made by main, to be freed by the thread */
    int kept[3];       /* errno results of freeing incoming */
    pthread_barrier_t *bar;
} ethr_t;

static void *errno_thread(void *arg)
{
    ethr_t *t = arg;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            t->blk[i][k] = malloc(esizes[i]);
            if (t->blk[i][k])
                memset(t->blk[i][k], 0x5a, esizes[i]);
        }
    pthread_barrier_wait(t->bar); /* blocks ready */
    pthread_barrier_wait(t->bar); /* main has freed the first set */
    for (int i = 0; i < 3; i++)
        t->kept[i] = free_keeps(t->incoming[i][0], 0) &
                     free_keeps(t->incoming[i][1], ODD_ERRNO);
    return NULL;
}

static void test_errno(void)
{
    char name[160];
    /* same thread */
    for (int i = 0; i < 3; i++) {
        void *a = malloc(esizes[i]), *b = malloc(esizes[i]);
        if (a)
            memset(a, 1, esizes[i]);
        if (b)
            memset(b, 2, esizes[i]);
        int ok = free_keeps(a, 0) & free_keeps(b, ODD_ERRNO);
        snprintf(name, sizeof name, "free(%s) keeps errno, same thread",
                 ename[i]);
        CHECK(name, a && b && ok);
    }
    CHECK("free(NULL) keeps errno",
          free_keeps(NULL, 0) && free_keeps(NULL, ODD_ERRNO));

    /* another thread, allocating thread alive / after it exited */
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    ethr_t t1 = {.bar = &bar}, t2 = {.bar = &bar};
    pthread_t th;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++)
            t1.incoming[i][k] = malloc(esizes[i]);
    int created = pthread_create(&th, NULL, errno_thread, &t1) == 0;
    CHECK("errno thread created", created);
    if (!created)
        return;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < 3; i++) {
        int ok = free_keeps(t1.blk[i][0], 0) &
                 free_keeps(t1.blk[i][1], ODD_ERRNO);
        snprintf(name, sizeof name,
                 "free(%s) keeps errno when another, live thread made it",
                 ename[i]);
        CHECK(name, t1.blk[i][0] && t1.blk[i][1] && ok);
    }
    pthread_barrier_wait(&bar);
    pthread_join(th, NULL);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name,
                 "free(%s) keeps errno on a thread other than the one that "
                 "made it (made by main)",
                 ename[i]);
        CHECK(name, t1.incoming[i][0] && t1.incoming[i][1] && t1.kept[i]);
    }

    /* allocating thread exited before the free */
    pthread_barrier_t bar1;
    pthread_barrier_init(&bar1, NULL, 1);
    t2.bar = &bar1;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++)
            t2.incoming[i][k] = NULL;
    if (pthread_create(&th, NULL, errno_thread, &t2) == 0)
        pthread_join(th, NULL);
    for (int i = 0; i < 3; i++) {
        int ok = free_keeps(t2.blk[i][0], 0) &
                 free_keeps(t2.blk[i][1], ODD_ERRNO);
        snprintf(name, sizeof name,
                 "free(%s) keeps errno after the thread that made it exited",
                 ename[i]);
        CHECK(name, t2.blk[i][0] && t2.blk[i][1] && ok);
    }
    pthread_barrier_destroy(&bar);
    pthread_barrier_destroy(&bar1);

    /* bulk: long runs of frees that can make the allocator give memory back */
    static void *many[4096];
    int bad = 0, nulls = 0;
    for (int round = 0; round < 3; round++) {
        size_t sz = round == 0 ? 48 : round == 1 ? 100 * 1024 : 8 << 20;
        int n = round == 0 ? 4096 : round == 1 ? 256 : 16;
        for (int i = 0; i < n; i++) {
            many[i] = malloc(sz);
            if (!many[i])
                nulls++;
            else
                memset(many[i], 3, sz < 4096 ? sz : 4096);
        }
        for (int i = 0; i < n; i++)
            if (!free_keeps(many[i], i & 1 ? ODD_ERRNO : 0))
                bad++;
    }
    CHECK("bulk frees (4096 x 48 B, 256 x 100 KiB, 16 x 8 MiB) keep errno",
          bad == 0 && nulls == 0);
}

/* ---------------- 2 + 3. usable size, exited owner ---------------- */
#define NUS 10
static const size_t usz[NUS] = {1,    13,    24,     100,     1000,
                                4000, 30000, 100000, 1 << 20, 8 << 20};

typedef struct {
    unsigned char *p[NUS];
    size_t us[NUS];
    pthread_barrier_t *bar;
} ustate_t;

static void *usable_owner(void *arg) /* thread A */
{
    ustate_t *u = arg;
    for (int i = 0; i < NUS; i++) {
        u->p[i] = malloc(usz[i]);
        u->us[i] = u->p[i] ? malloc_usable_size(u->p[i]) : 0;
        if (u->p[i])
            fill(u->p[i], u->us[i], 0x6100 + (uint64_t)i); /* all of it */
    }
    pthread_barrier_wait(u->bar); /* A's blocks are ready */
    pthread_barrier_wait(u->bar); /* B has looked at them */
    return NULL;
}

typedef struct {
    ustate_t *u;
    int same;
} uquery_t;

static void *usable_query(void *arg) /* thread B */
{
    uquery_t *q = arg;
    q->same = 1;
    for (int i = 0; i < NUS; i++)
        if (!q->u->p[i] || malloc_usable_size(q->u->p[i]) != q->u->us[i])
            q->same = 0;
    return NULL;
}

typedef struct {
    unsigned char *p;
    size_t n;
    uint64_t tag;
    int ok;
} rthr_t;

static void *realloc_other(void *arg) /* thread C: realloc + free A's block */
{
    rthr_t *r = arg;
    r->ok = intact(r->p, r->n, r->tag);
    unsigned char *q = realloc(r->p, r->n * 2 + 1000);
    if (!q) {
        r->ok = 0;
        free(r->p);
        return NULL;
    }
    r->ok &= intact(q, r->n, r->tag);
    q = realloc(q, r->n / 2 + 1);
    if (!q) {
        r->ok = 0;
        return NULL;
    }
    r->ok &= intact(q, r->n / 2 + 1, r->tag);
    free(q);
    return NULL;
}

static void test_usable_and_dead_owner(void)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    ustate_t u = {.bar = &bar};
    pthread_t a, b;
    if (pthread_create(&a, NULL, usable_owner, &u) != 0) {
        CHECK("usable-size thread created", 0);
        return;
    }
    pthread_barrier_wait(&bar);
    int ge = 1;
    for (int i = 0; i < NUS; i++)
        if (!u.p[i] || u.us[i] < usz[i])
            ge = 0;
    CHECK("malloc_usable_size >= requested size (sizes 1 B .. 8 MiB)", ge);
    uquery_t q = {.u = &u};
    if (pthread_create(&b, NULL, usable_query, &q) == 0)
        pthread_join(b, NULL);
    CHECK("malloc_usable_size same from another thread while the owner "
          "lives",
          q.same);
    pthread_barrier_wait(&bar);
    pthread_join(a, NULL);
    pthread_barrier_destroy(&bar);

    int same = 1, contents = 1;
    for (int i = 0; i < NUS; i++) {
        if (!u.p[i])
            continue;
        if (malloc_usable_size(u.p[i]) != u.us[i])
            same = 0;
        if (!intact(u.p[i], u.us[i], 0x6100 + (uint64_t)i))
            contents = 0;
    }
    CHECK("malloc_usable_size unchanged after the owner thread exited", same);
    CHECK("whole usable size of an exited thread's blocks intact", contents);
    CHECK("malloc_usable_size(NULL) == 0", malloc_usable_size(NULL) == 0);

    /* main reallocs (grow, then shrink) and frees the even blocks; thread C
     * does the same with the odd ones */
    int grow_ok = 1, shrink_ok = 1, nulls = 0;
    rthr_t r[NUS];
    pthread_t c[NUS];
    int started[NUS] = {0};
    for (int i = 0; i < NUS; i++) {
        if (!u.p[i])
            continue;
        uint64_t tag = 0x6100 + (uint64_t)i;
        if (i & 1) {
            r[i] = (rthr_t){u.p[i], u.us[i], tag, 0};
            started[i] = pthread_create(&c[i], NULL, realloc_other, &r[i]) == 0;
            if (!started[i])
                nulls++;
            continue;
        }
        unsigned char *g = realloc(u.p[i], u.us[i] * 3 + 17);
        if (!g) {
            nulls++;
            free(u.p[i]);
            continue;
        }
        if (!intact(g, u.us[i], tag))
            grow_ok = 0;
        unsigned char *s = realloc(g, u.us[i] / 2 + 1);
        if (!s) {
            nulls++;
            free(g);
            continue;
        }
        if (!intact(s, u.us[i] / 2 + 1, tag))
            shrink_ok = 0;
        free(s);
    }
    int other_ok = 1;
    for (int i = 0; i < NUS; i++)
        if (started[i]) {
            pthread_join(c[i], NULL);
            other_ok &= r[i].ok;
        }
    CHECK("main can realloc (grow) an exited thread's block, contents kept",
          grow_ok);
    CHECK("main can realloc (shrink) an exited thread's block, contents kept",
          shrink_ok);
    CHECK("another thread can realloc/free an exited thread's block", other_ok);
    CHECK("no NULL from realloc of an exited thread's blocks", nulls == 0);
}

/* ---------------- 4. after main returns ---------------- */
#define NLATE 6
static const size_t late_sz[NLATE] = {8, 200, 5000, 70000, 300000, 4 << 20};
static unsigned char *late_dead[NLATE]; /* made by a thread that exited */
static unsigned char *late_main[NLATE]; /* made by main */
static int main_ran;
static atomic_long runner_bad;

static void *late_maker(void *arg)
{
    (void)arg;
    for (int i = 0; i < NLATE; i++) {
        late_dead[i] = malloc(late_sz[i]);
        if (late_dead[i])
            fill(late_dead[i], late_sz[i], 0x7100 + (uint64_t)i);
    }
    return NULL;
}

/* A detached thread that never stops allocating: the process exits under
 * it, so the exit-time handlers and the allocator's own teardown (if any)
 * run while it is still inside malloc/free. */
static void *runner(void *arg)
{
    (void)arg;
    void *keep[64] = {0};
    unsigned i = 0;
    for (;;) {
        unsigned k = i % 64;
        if (keep[k]) {
            if (*(unsigned *)keep[k] != (i - 64))
                atomic_fetch_add(&runner_bad, 1);
            free(keep[k]);
        }
        size_t sz = 8 + (i * 2654435761u) % (i % 97 ? 3000 : 300000);
        keep[k] = malloc(sz);
        if (keep[k])
            *(unsigned *)keep[k] = i;
        i++;
    }
    return NULL;
}

/* verify+free the given blocks, then malloc/calloc/realloc/free new ones;
 * returns the number of problems */
static int late_work(int from, int to, uint64_t salt)
{
    int bad = 0;
    for (int i = from; i < to; i++) {
        if (!late_dead[i] || !intact(late_dead[i], late_sz[i], 0x7100 + (uint64_t)i))
            bad++;
        free(late_dead[i]);
        if (!late_main[i] || !intact(late_main[i], late_sz[i], 0x7200 + (uint64_t)i))
            bad++;
        free(late_main[i]);
    }
    for (int i = 0; i < NLATE; i++) {
        unsigned char *p = malloc(late_sz[i]);
        unsigned char *z = calloc(late_sz[i], 1);
        if (!p || !z) {
            bad++;
            free(p);
            free(z);
            continue;
        }
        for (size_t k = 0; k < late_sz[i]; k++)
            if (z[k]) {
                bad++;
                break;
            }
        fill(p, late_sz[i], salt + (uint64_t)i);
        unsigned char *q = realloc(p, late_sz[i] * 2 + 1);
        if (!q) {
            bad++;
            free(p);
        } else {
            if (!intact(q, late_sz[i], salt + (uint64_t)i))
                bad++;
            free(q);
        }
        errno = ODD_ERRNO;
        free(z);
        if (errno != ODD_ERRNO)
            bad++;
    }
    return bad;
}

static void at_exit_handler(void)
{
    CHECK("atexit handler: old blocks intact and freeable, malloc/calloc/"
          "realloc/free work, free keeps errno",
          late_work(0, NLATE / 2, 0x8100) == 0);
    if (TEST_DONE())
        _exit(1);
}

__attribute__((destructor)) static void late_destructor(void)
{
    if (!main_ran)
        return;
    CHECK("destructor: old blocks intact and freeable, malloc/calloc/"
          "realloc/free work, free keeps errno",
          late_work(NLATE / 2, NLATE, 0x8200) == 0);
    CHECK("detached thread allocating during exit saw no corruption",
          atomic_load(&runner_bad) == 0);
    if (TEST_DONE())
        _exit(1);
}

int main(int argc, char **argv)
{
    TEST_BEGIN("errno_and_exit");
    int rounds = argc > 1 ? atoi(argv[1]) : 1;
    for (int r = 0; r < rounds; r++) {
        test_errno();
        test_usable_and_dead_owner();
    }

    pthread_t t;
    if (pthread_create(&t, NULL, late_maker, NULL) == 0)
        pthread_join(t, NULL);
    for (int i = 0; i < NLATE; i++) {
        late_main[i] = malloc(late_sz[i]);
        if (late_main[i])
            fill(late_main[i], late_sz[i], 0x7200 + (uint64_t)i);
    }
    CHECK("atexit registered", atexit(at_exit_handler) == 0);
    main_ran = 1;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    CHECK("detached allocating thread created",
          pthread_create(&t, &at, runner, NULL) == 0);
    usleep(20000); /* let it get going */
    return TEST_DONE();
}
