/* Memory faulted in ahead of use must stay a small bet.
 *
 * A heap that keeps carving fresh 1 KiB..4 KiB blocks gets the next half
 * segment (2 MiB) populated in one call (core/heap.c:maybe_populate), a
 * huge page where the kernel has one. What a program sees of that: its
 * resident size. A program that mallocs big blocks and touches one page of
 * each must stay small; a stream of small blocks may run ahead of what it
 * was handed by at most half of it (plus one bet); calloc still hands out
 * zeros; and on a kernel that refuses MADV_POPULATE_WRITE (before Linux
 * 5.14, played here by a seccomp filter that fails the call with EINVAL)
 * mspace asks once, then never again, and the streams are served as usual.
 * Each case runs in a child of its own (faults.h) so the resident size it
 * measures is its own doing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <ucontext.h>
#if defined(__x86_64__)
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#endif

#include "faults.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Slack for what the checks themselves and mspace's metadata make
 * resident: segment headers, stdio buffers, the block pointer arrays. */
#define SLACK (768 * KiB)
#define STREAM_BLOCKS (14 * 1024) /* 14 MiB of 1 KiB blocks: four segments */

static char *blocks[STREAM_BLOCKS];

static void big_blocks_touched_once(void) {
    size_t before = statm_bytes(1);
    char *one = malloc(MiB);
    CHECK("one 1 MiB block", one != NULL);
    if (one)
        one[0] = 1;
    CHECK("one 1 MiB block, one page written: resident grows by far less than 1 MiB",
          statm_bytes(1) - before < 256 * KiB);
    char *more[12];
    for (int i = 0; i < 12; i++) {
        more[i] = malloc(MiB + (size_t)i * 4096);
        if (more[i])
            more[i][(size_t)i * 4096] = 1;
    }
    CHECK("thirteen 1 MiB blocks, a page each: resident grows by under 1 MiB",
          statm_bytes(1) - before < MiB);
    for (int i = 0; i < 12; i++)
        free(more[i]);
    free(one);
}

/* Streams blocks of 1 KiB (calloc'd when `zeroed`), writing one byte of
 * each; checks after every 256 blocks that the resident growth is within
 * `ahead(handed)` of the usable bytes handed out (the hardened build's
 * blocks are larger than asked). The reading itself mallocs and frees a
 * FILE, as a program's other work would. */
static void stream(const char *what, int zeroed, size_t (*ahead)(size_t)) {
    size_t before = statm_bytes(1), worst_excess = 0, handed = 0;
    int ok = 1, zero = 1, within = 1;
    for (size_t i = 0; i < STREAM_BLOCKS; i++) {
        char *b = blocks[i] = zeroed ? calloc(1, KiB) : malloc(KiB);
        if (b == NULL) {
            ok = 0;
            break;
        }
        if (zeroed)
            for (size_t k = 0; k < KiB; k += 8)
                zero &= *(uint64_t *)(b + k) == 0;
        b[KiB / 2] = (char)i;
        handed += malloc_usable_size(b);
        if ((i + 1) % 256 == 0) {
            size_t grown = statm_bytes(1) - before;
            if (grown > handed && grown - handed > worst_excess)
                worst_excess = grown - handed;
            if (grown > handed + ahead(handed))
                within = 0;
        }
    }
    char name[160];
    snprintf(name, sizeof name, "%s: every block handed out", what);
    CHECK(name, ok);
    if (zeroed) {
        snprintf(name, sizeof name, "%s: calloc's blocks read as zero", what);
        CHECK(name, zero);
    }
    snprintf(name, sizeof name, "%s: resident runs ahead of what was handed out by %zu KiB at most",
             what, worst_excess / KiB);
    CHECK(name, within);
    int intact = 1;
    for (size_t i = 0; i < STREAM_BLOCKS && blocks[i]; i++)
        intact &= blocks[i][KiB / 2] == (char)i;
    snprintf(name, sizeof name, "%s: every block kept its byte", what);
    CHECK(name, intact);
    for (size_t i = 0; i < STREAM_BLOCKS; i++)
        free(blocks[i]);
}

/* Populated: at most half of what was handed out, plus one bet of 2 MiB. */
static size_t bet_bound(size_t handed) { return handed / 2 + 2 * MiB + SLACK; }

static void small_stream(void) { stream("malloc stream", 0, bet_bound); }
static void calloc_stream(void) { stream("calloc stream", 1, bet_bound); }

#if defined(__x86_64__)
/* The filter turns madvise(..., MADV_POPULATE_WRITE) into SIGSYS; the
 * handler makes it fail with EINVAL, as an old kernel would, and counts. */
static volatile sig_atomic_t refusals;

static void refuse(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)info;
    ucontext_t *uc = context;
    uc->uc_mcontext.gregs[REG_RAX] = -EINVAL;
    refusals++;
}

static int refuse_populate(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = refuse;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &sa, NULL) != 0)
        return 0;
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_WRITE, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof code / sizeof code[0], code};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

static void refused_stream(void) {
    if (!refuse_populate()) {
        fprintf(stderr, "%s: no seccomp here; the refusal case is skipped\n", harness_program);
        return;
    }
    char probe[64];
    errno = 0;
    CHECK("the filter refuses population with EINVAL",
          madvise((void *)((uintptr_t)probe & ~(uintptr_t)4095), 4096, MADV_POPULATE_WRITE) != 0 &&
              errno == EINVAL && refusals == 1);
    refusals = 0;
    stream("refused: malloc stream", 0, bet_bound);
    stream("refused: calloc stream", 1, bet_bound);
    /* The normal build asks once (the streams would have earned bets), the
     * hardened one never (its guard pages rule out the huge page). */
    CHECK("refused: asked at most once, then never again", refusals <= 1);
}
#endif

int main(void) {
    TEST_BEGIN("populate");
    watchdog_start(120);
    child_run("big blocks touched once", 0, 60, big_blocks_touched_once);
    child_run("small stream", 0, 60, small_stream);
    child_run("calloc stream", 0, 60, calloc_stream);
#if defined(__x86_64__)
    child_run("population refused", 0, 60, refused_stream);
#endif
    return TEST_DONE();
}
