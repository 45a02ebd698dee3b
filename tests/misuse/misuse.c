/* Misuse must be caught, reported and end in abort(), never in a segfault or
 * silent corruption. Each case runs in a forked child whose stderr goes to a
 * pipe; the parent checks that the child died of SIGABRT and that its stderr
 * holds the expected "mspace: <function>(): <problem> 0x<address>" text.
 *
 * The misuse cases are mspace-specific and run only under
 * LD_PRELOAD=...libmspace...; the driver self-checks (abort, segfault, clean
 * exit, timeout and stderr capture are told apart) always run. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../interpose/mspace.h"
#include "../harness.h"
#include "../quiet.h"

/* Explicit heaps exist only under the preload: weak, NULL without it. */
#pragma weak mspace_create
#pragma weak mspace_destroy
#pragma weak mspace_malloc
#pragma weak mspace_realloc
#pragma weak mspace_free

#define MiB ((size_t)1 << 20)

/* The compiler must not see through these (-Wfree-nonheap-object,
 * -Wuse-after-free, or folding a misuse into a trap). */
static void *launder(void *p) {
    void *volatile v = p;
    return v;
}

/* The address the child misused, reported to the parent through a second
 * pipe so the parent can build the expected message. */
static int addr_fd = -1;
static void report(const void *p) {
    uintptr_t v = (uintptr_t)p;
    if (write(addr_fd, &v, sizeof v) != (ssize_t)sizeof v) _exit(120);
}

struct outcome {
    int exited, code, signaled, sig, timed_out;
    uintptr_t addr[2];
    int naddr;
    char err[8192];
};

/* Runs fn in a child with stderr captured; waits at most timeout_s. */
static void run_child(void (*fn)(void), int timeout_s, struct outcome *o) {
    memset(o, 0, sizeof *o);
    int errp[2], addrp[2];
    if (pipe(errp) || pipe(addrp)) {
        perror("pipe");
        exit(2);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        close(errp[0]);
        close(addrp[0]);
        dup2(errp[1], 2);
        close(errp[1]);
        addr_fd = addrp[1];
        alarm((unsigned)timeout_s + 5); /* backstop if the parent dies */
        fn();
        _exit(0);
    }
    close(errp[1]);
    close(addrp[1]);

    size_t len = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ms = timeout_s * 1000L - ((now.tv_sec - start.tv_sec) * 1000L +
                                            (now.tv_nsec - start.tv_nsec) / 1000000L);
        if (left_ms <= 0) {
            o->timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pfd = {errp[0], POLLIN, 0};
        int r = poll(&pfd, 1, (int)left_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue; /* timeout is handled at the top */
        char tmp[1024];
        ssize_t n = read(errp[0], tmp, sizeof tmp);
        if (n <= 0) break; /* EOF: the child is gone */
        size_t room = sizeof o->err - 1 - len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(o->err + len, tmp, take);
        len += take;
    }
    o->err[len] = 0;
    close(errp[0]);

    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st)) {
        o->exited = 1;
        o->code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        o->signaled = 1;
        o->sig = WTERMSIG(st);
    }
    uintptr_t v;
    while (o->naddr < 2 && read(addrp[0], &v, sizeof v) == (ssize_t)sizeof v) o->addr[o->naddr++] = v;
    close(addrp[0]);
}

static void describe(const char *name, const struct outcome *o) {
    fprintf(stderr, "  case \"%s\": ", name);
    if (o->timed_out) fprintf(stderr, "timed out; ");
    if (o->exited) fprintf(stderr, "exited with status %d; ", o->code);
    if (o->signaled) fprintf(stderr, "killed by signal %d (%s); ", o->sig, strsignal(o->sig));
    fprintf(stderr, "stderr was:\n%s%s", o->err[0] ? o->err : "(empty)\n",
            o->err[0] && o->err[strlen(o->err) - 1] != '\n' ? "\n" : "");
}

/* Does text contain needle followed by something that does not extend the
 * hex number (so 0x12 does not match 0x123)? */
static int has_exact(const char *text, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) {
        char c = p[n];
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex) return 1;
    }
    return 0;
}

/* ---- the misuse cases (each runs in a child) ---- */
static char global_array[256];

static void double_free_small(void) {
    char *p = malloc(32);
    report(p);
    free(p);
    free(launder(p));
}
/* 16 KiB blocks come four to a slice: the last of eight made from a fresh
 * span starts in its second slice, where free finds the span's descriptor
 * from the slice's (alloc.h: ms_free_fast). */
static char *second_slice_block(void) {
    char *last = NULL;
    for (int i = 0; i < 8; i++) {
        char *p = malloc(16384);
        if (p > last)
            last = p;
    }
    return last;
}
static void double_free_second_slice(void) {
    char *p = second_slice_block();
    report(p);
    free(p);
    free(launder(p));
}
static void free_interior_second_slice(void) {
    char *p = second_slice_block() + 16;
    report(p);
    free(p);
}
/* 16 KiB blocks, all but the first freed; after a quiet spell the next
 * span made collects, and the pages of the holes beside the first go back
 * to the OS with the holes' links and marks: a hole there, still a block
 * of a span in use, is what is misused. */
static char *parked_hole(void) {
    enum { N = 32 };
    char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(16384);
        if (p[i] == NULL) _exit(3);
        memset(p[i], 1, 16384);
    }
    /* A hole beside p[0]: in its span (8 blocks), which p[0] keeps. */
    char *hole = NULL;
    for (int i = 1; i < N && !hole; i++)
        if (p[i] > p[0] && p[i] < p[0] + 8 * 16384)
            hole = p[i];
    if (hole == NULL) _exit(5);
    for (int i = 1; i < N; i++)
        free(p[i]);
    quiet_then_active(250);
    return hole;
}
static void double_free_parked(void) {
    char *p = parked_hole();
    report(p);
    free(launder(p));
}
static void realloc_parked(void) {
    char *p = parked_hole();
    report(p);
    if (realloc(launder(p), 100)) _exit(4);
}
static void double_free_large(void) {
    char *p = malloc(8 * MiB);
    p[0] = 1;
    report(p);
    free(p);
    free(launder(p));
}
static void double_free_after_others(void) {
    char *a = malloc(48), *b = malloc(48), *c = malloc(48);
    report(a);
    free(a);
    free(b);
    char *d = malloc(200); /* unrelated traffic in between */
    free(d);
    free(launder(a));
    free(c);
}
static void double_free_after_realloc_zero(void) {
    char *p = malloc(40);
    report(p);
    void *r = realloc(p, 0); /* glibc semantics: frees p */
    if (r) _exit(3);
    free(launder(p));
}
static void free_stack(void) {
    char buf[64];
    memset(buf, 0, sizeof buf);
    report(buf);
    free(launder(buf));
}
static void free_global(void) {
    report(global_array);
    free(launder(global_array));
}
static void free_interior_small(void) {
    char *p = malloc(64);
    report(p + 16);
    free(launder(p + 16));
}
static void free_misaligned(void) {
    char *p = malloc(64);
    report(p + 1);
    free(launder(p + 1));
}
static void free_interior_large(void) {
    char *p = malloc(8 * MiB);
    p[0] = 1;
    report(p + 4096);
    free(launder(p + 4096));
}
static void free_unmapped(void) {
    char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(3);
    munmap(p, 65536);
    report(p);
    free(launder(p));
}
static void free_noncanonical(void) {
    void *p = (void *)(uintptr_t)0xdead000000001000ull;
    report(p);
    free(launder(p));
}
static void realloc_stack(void) {
    char buf[64];
    memset(buf, 1, sizeof buf);
    report(buf);
    void *r = realloc(launder(buf), 128);
    (void)r;
}
static void realloc_freed(void) {
    char *keep = malloc(64); /* keeps the span in use */
    char *p = malloc(64);
    report(p);
    free(p);
    void *r = realloc(launder(p), 100);
    (void)r;
    free(keep);
}
static void usable_size_stack(void) {
    char buf[64];
    memset(buf, 2, sizeof buf);
    report(buf);
    size_t n = malloc_usable_size(launder(buf));
    (void)n;
}
static void free_null(void) {
    free(NULL);
    free(launder(NULL));
}
static void valid_frees(void) {
    void *a = malloc(32), *b = malloc(8 * MiB), *c = aligned_alloc(4096, 100);
    free(a);
    free(b);
    free(c);
    free(realloc(malloc(10), 1000));
}

/* ---- the secure build's cases (libmspace-secure.so only) ---- */
static void overflow_one_byte(void) {
    char *p = malloc(24);
    report(p);
    memset(p, 'a', 25);
    free(p);
}
static void overflow_odd_size(void) {
    char *p = malloc(100);
    report(p);
    p[100] = 0;
    free(p);
}
static void overflow_whole_room(void) { /* malloc(40) fills its block up to the trailer */
    char *p = malloc(40);
    report(p);
    memset(p, 0, 41);
    free(p);
}
static void overflow_then_realloc(void) {
    char *p = malloc(24);
    report(p);
    /* Byte 30 is in the trailer's record of the request, kept xor a random
     * key: writing a fixed value left it unchanged for 1 key in 256. */
    p[30] = (char)~p[30];
    p = realloc(p, 4000);
}
static void overflow_large(void) { /* above 2 MiB: a mapping of its own */
    char *p = malloc(3 * MiB + 5);
    report(p);
    p[3 * MiB + 5] = 1;
    free(p);
}
static void overflow_grown_large(void) { /* grown by realloc, then overflowed */
    char *p = malloc(1000);
    p = realloc(p, 600 * 1024);
    report(p);
    p[600 * 1024 + 63] = 1;
    p = realloc(p, 900 * 1024);
}
static void write_after_free(void) {
    char *p = malloc(200);
    report(p);
    free(p);
    ((volatile char *)launder(p))[100] = 1;
    for (int i = 0; i < 100000; i++) /* until p comes round again */
        if (malloc(200) == NULL) _exit(4);
}
static void link_after_free(void) {
    void **p = malloc(64);
    report(p);
    free(p);
    *(void *volatile *)launder(p) = (void *)0x4141414141410000ull;
    for (int i = 0; i < 100000; i++)
        if (malloc(64) == NULL) _exit(4);
}

/* ---- explicit heaps ---- */
static void mspace_free_stack(void) {
    mspace_t *ms = mspace_create();
    char buf[64];
    memset(buf, 0, sizeof buf);
    report(buf);
    mspace_free(ms, launder(buf));
}
static void mspace_double_free_small(void) {
    mspace_t *ms = mspace_create();
    void *keep = mspace_malloc(ms, 32);
    char *p = mspace_malloc(ms, 32);
    report(p);
    mspace_free(ms, p);
    mspace_free(ms, launder(p));
    mspace_free(ms, keep);
}
static void mspace_double_free_large(void) {
    mspace_t *ms = mspace_create();
    char *p = mspace_malloc(ms, 8 * MiB);
    report(p);
    mspace_free(ms, p);
    mspace_free(ms, launder(p));
}
static void mspace_free_interior(void) {
    mspace_t *ms = mspace_create();
    char *p = mspace_malloc(ms, 100);
    report(p + 16);
    mspace_free(ms, launder(p + 16));
}
static void mspace_realloc_freed(void) {
    mspace_t *ms = mspace_create();
    void *keep = mspace_malloc(ms, 64);
    char *p = mspace_malloc(ms, 64);
    report(p);
    mspace_free(ms, p);
    void *r = mspace_realloc(ms, launder(p), 100);
    (void)r;
    mspace_free(ms, keep);
}
/* Plain free() on another thread than the allocating one: the block is
 * still checked exactly, under the heap's lock. */
static void *free_twice(void *p) {
    free(p);
    free(launder(p));
    return NULL;
}
static void free_explicit_twice_other_thread(void) {
    mspace_t *ms = mspace_create();
    void *keep = mspace_malloc(ms, 48);
    char *p = mspace_malloc(ms, 48);
    report(p);
    pthread_t t;
    pthread_create(&t, NULL, free_twice, p);
    pthread_join(t, NULL);
    mspace_free(ms, keep);
}
static void free_after_destroy(void) {
    mspace_t *ms = mspace_create();
    char *small = mspace_malloc(ms, 40);
    char *large = mspace_malloc(ms, 2 * MiB);
    (void)large;
    mspace_destroy(ms);
    report(small);
    free(launder(small));
}
static void realloc_after_destroy_large(void) {
    mspace_t *ms = mspace_create();
    char *large = mspace_malloc(ms, 2 * MiB);
    mspace_destroy(ms);
    report(large);
    void *r = realloc(launder(large), 10);
    (void)r;
}
static void mspace_valid_frees(void) {
    mspace_t *a = mspace_create(), *b = mspace_create();
    void *x = mspace_malloc(a, 100), *y = malloc(100), *z = mspace_malloc(b, 3 * MiB);
    mspace_free(b, x); /* another heap's block */
    mspace_free(a, y); /* a malloc() block */
    free(z);           /* plain free of an explicit block */
    mspace_free(a, NULL);
    mspace_destroy(a);
    mspace_destroy(b);
}

/* ---- driver self-checks (also run without mspace) ---- */
static void child_abort(void) {
    fputs("about to abort\n", stderr);
    abort();
}
static void child_segv(void) { raise(SIGSEGV); }
static void child_exit7(void) {
    fputs("bye", stderr);
    _exit(7);
}
static void child_hang(void) {
    for (;;) pause();
}
static void child_report_abort(void) {
    static char x;
    report(&x);
    fprintf(stderr, "mspace: free(): invalid pointer 0x%lx\n", (unsigned long)(uintptr_t)&x);
    abort();
}

static void driver_self_checks(void) {
    struct outcome o;
    run_child(child_abort, 10, &o);
    CHECK("driver: a child calling abort() is seen as SIGABRT with its stderr",
          o.signaled && o.sig == SIGABRT && strstr(o.err, "about to abort"));
    run_child(child_segv, 10, &o);
    CHECK("driver: a segfaulting child is seen as SIGSEGV, not SIGABRT",
          o.signaled && o.sig == SIGSEGV);
    run_child(child_exit7, 10, &o);
    CHECK("driver: a child exiting 7 is seen as exit 7 with its stderr",
          o.exited && o.code == 7 && !strcmp(o.err, "bye"));
    run_child(child_hang, 1, &o);
    CHECK("driver: a hanging child is killed after the timeout", o.timed_out && !o.exited);
    run_child(child_report_abort, 10, &o);
    char want[128];
    snprintf(want, sizeof want, "mspace: free(): invalid pointer 0x%lx", (unsigned long)o.addr[0]);
    char shorter[128];
    snprintf(shorter, sizeof shorter, "mspace: free(): invalid pointer 0x%lx",
             (unsigned long)(o.addr[0] >> 4));
    CHECK("driver: address reported by the child and its message are matched exactly",
          o.naddr == 1 && has_exact(o.err, want) && !has_exact(o.err, shorter));
}

/* ---- mspace cases ---- */
struct mcase {
    const char *name;
    void (*fn)(void);
    const char *prefix; /* expected text before 0x<addr>; NULL: must not abort */
    int loose;          /* instead: prefix, 0x<addr> and "double free" or
                           "invalid pointer" anywhere in stderr */
};

static void run_case(const struct mcase *c) {
    struct outcome o;
    run_child(c->fn, 10, &o);
    char name[200];
    int ok;
    if (!c->prefix) {
        ok = o.exited && o.code == 0;
        snprintf(name, sizeof name, "%s: does not abort, exits 0", c->name);
        CHECK(name, ok);
        if (!ok || o.err[0]) describe(c->name, &o);
        snprintf(name, sizeof name, "%s: nothing on stderr", c->name);
        CHECK(name, o.err[0] == 0);
        return;
    }
    int aborted = o.signaled && o.sig == SIGABRT;
    snprintf(name, sizeof name, "%s: child dies of SIGABRT (not SIGSEGV, not exit)", c->name);
    CHECK(name, aborted);
    char want[256];
    if (c->loose) {
        char addr[64];
        snprintf(addr, sizeof addr, "0x%lx", (unsigned long)o.addr[0]);
        ok = o.naddr == 1 && strstr(o.err, c->prefix) && has_exact(o.err, addr) &&
             (strstr(o.err, "double free") || strstr(o.err, "invalid pointer"));
        snprintf(name, sizeof name,
                 "%s: stderr has \"%s\", \"%s\" and double free/invalid pointer", c->name,
                 c->prefix, addr);
    } else {
        snprintf(want, sizeof want, "%s0x%lx", c->prefix, (unsigned long)o.addr[0]);
        ok = o.naddr == 1 && has_exact(o.err, want);
        snprintf(name, sizeof name, "%s: stderr has \"%s\"", c->name, want);
    }
    CHECK(name, ok);
    if (!aborted || !ok) describe(c->name, &o);
}

int main(void) {
    TEST_BEGIN("misuse/misuse");
    driver_self_checks();

    const char *pre = getenv("LD_PRELOAD");
    if (!(pre && strstr(pre, "libmspace"))) {
        printf("misuse: not running under LD_PRELOAD=libmspace.so; "
               "only the driver self-checks ran\n");
        return TEST_DONE();
    }

    static const struct mcase cases[] = {
        {"double free of a small block", double_free_small, "mspace: free(): double free of ", 0},
        {"double free of an 8 MiB block", double_free_large, "mspace: free(): ", 1},
        {"double free of a block past its span's first slice", double_free_second_slice,
         "mspace: free(): double free of ", 0},
        {"free of malloc(16 KiB)+16 past its span's first slice", free_interior_second_slice,
         "mspace: free(): invalid pointer ", 0},
        {"double free after other frees", double_free_after_others,
         "mspace: free(): double free of ", 0},
        {"double free of a hole whose pages went back", double_free_parked,
         "mspace: free(): double free of ", 0},
        {"realloc of a hole whose pages went back", realloc_parked,
         "mspace: realloc(): invalid pointer ", 0},
        {"free after realloc(p, 0)", double_free_after_realloc_zero,
         "mspace: free(): double free of ", 0},
        {"free of a stack address", free_stack, "mspace: free(): invalid pointer ", 0},
        {"free of a global array", free_global, "mspace: free(): invalid pointer ", 0},
        {"free of malloc(64)+16", free_interior_small, "mspace: free(): invalid pointer ", 0},
        {"free of malloc(64)+1", free_misaligned, "mspace: free(): invalid pointer ", 0},
        {"free of malloc(8 MiB)+4096", free_interior_large, "mspace: free(): invalid pointer ", 0},
        {"free of an unmapped address", free_unmapped, "mspace: free(): invalid pointer ", 0},
        {"free of a non-canonical address", free_noncanonical,
         "mspace: free(): invalid pointer ", 0},
        {"realloc of a stack address", realloc_stack, "mspace: realloc(): invalid pointer ", 0},
        {"realloc of a freed block", realloc_freed, "mspace: realloc(): ", 1},
        {"malloc_usable_size of a stack address", usable_size_stack,
         "mspace: malloc_usable_size(): invalid pointer ", 0},
        {"free(NULL)", free_null, NULL, 0},
        {"valid frees", valid_frees, NULL, 0},
        {"mspace_free of a stack address", mspace_free_stack,
         "mspace: mspace_free(): invalid pointer ", 0},
        {"mspace_free twice, small block", mspace_double_free_small,
         "mspace: mspace_free(): double free of ", 0},
        {"mspace_free twice, 8 MiB block", mspace_double_free_large,
         "mspace: mspace_free(): invalid pointer ", 0},
        {"mspace_free of mspace_malloc(100)+16", mspace_free_interior,
         "mspace: mspace_free(): invalid pointer ", 0},
        {"mspace_realloc of a freed block", mspace_realloc_freed,
         "mspace: mspace_realloc(): invalid pointer ", 0},
        {"free() twice of an explicit heap's block, other thread", free_explicit_twice_other_thread,
         "mspace: free(): double free of ", 0},
        {"free() after mspace_destroy", free_after_destroy, "mspace: free(): invalid pointer ", 0},
        {"realloc() of a large block after mspace_destroy", realloc_after_destroy_large,
         "mspace: realloc(): invalid pointer ", 0},
        {"mspace_free of other heaps' blocks, free() of an explicit one", mspace_valid_frees, NULL,
         0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);

    if (strstr(pre, "libmspace-secure")) {
        static const struct mcase secure_cases[] = {
            {"malloc(24), 25 bytes written", overflow_one_byte,
             "mspace: free(): heap buffer overflow past the end of the 24-byte block at ", 0},
            {"malloc(100), p[100] written", overflow_odd_size,
             "mspace: free(): heap buffer overflow past the end of the 100-byte block at ", 0},
            {"malloc(40) (block full to its trailer), 41 bytes written", overflow_whole_room,
             "mspace: free(): heap buffer overflow past the end of the 40-byte block at ", 0},
            {"overflow found by realloc", overflow_then_realloc,
             "mspace: realloc(): heap buffer overflow past the end of the 24-byte block at ", 0},
            {"malloc(3 MiB + 5), one byte past it written", overflow_large,
             "mspace: free(): heap buffer overflow past the end of the 3145733-byte block at ", 0},
            {"realloc'd to 600 KiB, byte 63 past it written, realloc again", overflow_grown_large,
             "mspace: realloc(): heap buffer overflow past the end of the 614400-byte block at ", 0},
            {"write after free, then mallocs", write_after_free,
             "mspace: malloc(): write after free to the block at ", 0},
            {"free-list link overwritten after free", link_after_free,
             "mspace: malloc(): corrupted free-list link in the hole at ", 0},
        };
        for (size_t i = 0; i < sizeof secure_cases / sizeof secure_cases[0]; i++)
            run_case(&secure_cases[i]);
    }
    return TEST_DONE();
}
