/* The statistics and lookup API (mspace.h) and glibc's reporting functions
 * under LD_PRELOAD: the totals add up to what is mapped, the counts follow
 * a known sequence of calls, the verbose report lists exactly the regions
 * the test made and the runs of blocks in a span, mspace_get resolves
 * in-use, freed, interior, uncarved and foreign addresses, the JSON and
 * malloc_info's XML parse and agree with mspace_stats_get, a report never
 * crashes while another thread churns, and MSPACE_STATS_SIGNAL dumps a
 * running (even idle) process and its forked child.
 *
 * The API is looked up in the preloaded library (weak references). Phases
 * that need options at start-up re-run this program with them set. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../interpose/mspace.h"
#include "../harness.h"

#pragma weak mspace_stats_get
#pragma weak mspace_stats_print
#pragma weak mspace_get
#pragma weak mspace_create
#pragma weak mspace_malloc
#pragma weak mspace_destroy

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define WATCHDOG_SECONDS 120

static const char *step = "start";

static void *watchdog(void *arg) {
    (void)arg;
    sleep(WATCHDOG_SECONDS);
    harness_hung(WATCHDOG_SECONDS, step);
    return NULL;
}

static int adds_up(const mspace_stats *s) {
    return s->in_use + s->free + s->overhead == s->mapped &&
           s->free == s->free_holes + s->free_uncarved + s->free_slices + s->free_cached &&
           s->pages * 4096 == s->mapped;
}

/* The whole of a stdio stream, NUL-terminated (caller frees). */
static char *slurp(FILE *f) {
    fflush(f);
    long n = lseek(fileno(f), 0, SEEK_END);
    char *text = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = n > 0 ? (size_t)pread(fileno(f), text, (size_t)n, 0) : 0;
    text[got] = '\0';
    return text;
}

static char *report(int flags) {
    FILE *f = tmpfile();
    int rc = mspace_stats_print(f, flags);
    char *text = rc == 0 ? slurp(f) : NULL;
    fclose(f);
    return text;
}

/* A block's size class, and the class's block size (its stride in the
 * span: the hardened build keeps a trailer past what the block can hold). */
static unsigned class_of(const void *p) {
    mspace_block_info info;
    mspace_get(p, &info);
    return info.size_class > 0 ? (unsigned)info.size_class : 0;
}

static size_t stride_of(const void *p) { return mspace_stats_get().classes[class_of(p)].block_size; }

static int by_address(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- totals ---- */
static void test_totals(void) {
    step = "totals";
    mspace_stats s = mspace_stats_get();
    CHECK("not counted without MSPACE_STATS", s.calls_counted == 0 && s.mallocs == 0 &&
                                                 s.frees == 0 && s.reallocs == 0);
    char *text = report(0);
    CHECK("the report says the calls were not counted",
          text && strstr(text, "not counted (start the program with MSPACE_STATS=1)"));
    free(text);
    CHECK("in_use + free + overhead == mapped", adds_up(&s));
    CHECK("something is mapped and in use", s.mapped > 0 && s.in_use > 0 && s.heaps >= 1 &&
                                                s.small_regions >= 1 && s.mmaps >= 2);
    double expect = (double)s.free / (double)(s.in_use + s.free);
    CHECK("fragmentation is free / (in_use + free)",
          s.fragmentation > expect - 1e-9 && s.fragmentation < expect + 1e-9);
    CHECK("the peak is at least what is mapped", s.mapped_peak >= s.mapped);

    /* Size class figures follow blocks exactly: a class nothing else uses. */
    void *blocks[20];
    for (int i = 0; i < 20; i++)
        blocks[i] = malloc(3000);
    unsigned c = class_of(blocks[0]);
    mspace_stats s1 = mspace_stats_get();
    size_t size = s1.classes[c].block_size;
    for (int i = 1; i < 20; i += 2)
        free(blocks[i]);
    mspace_stats s2 = mspace_stats_get();
    CHECK("3000-byte blocks have their class", c > 0 && size >= 3000 && size < 4096);
    CHECK("a class counts its blocks in use", s1.classes[c].blocks_in_use >= 20 &&
                                                  s1.classes[c].bytes_in_use ==
                                                      s1.classes[c].blocks_in_use * size);
    CHECK("freeing 10 moves 10 blocks from in use to free",
          s1.classes[c].blocks_in_use - s2.classes[c].blocks_in_use == 10 &&
              s2.classes[c].blocks_free - s1.classes[c].blocks_free == 10);
    CHECK("in use drops by exactly the freed blocks", s1.in_use - s2.in_use == 10 * size);
    CHECK("still adds up", adds_up(&s1) && adds_up(&s2));
    for (int i = 0; i < 20; i += 2)
        free(blocks[i]);

    malloc_trim(0); /* empty the large-block cache: the next blocks are fresh mappings */
    mspace_stats before = mspace_stats_get();
    char *big = malloc(5 * MiB);
    mspace_stats after = mspace_stats_get();
    CHECK("a large block: one more region and mapping",
          after.large_blocks == before.large_blocks + 1 && after.mmaps == before.mmaps + 1 &&
              after.regions == before.regions + 1);
    CHECK("a large block: its bytes in use and mapped",
          after.large_bytes - before.large_bytes == malloc_usable_size(big) &&
              after.mapped - before.mapped == after.large_mapped - before.large_mapped &&
              after.in_use - before.in_use == malloc_usable_size(big));
    free(big);
    malloc_trim(0);
    mspace_stats freed = mspace_stats_get();
    CHECK("freed and trimmed: unmapped", freed.large_blocks == before.large_blocks &&
                                             freed.munmaps > after.munmaps &&
                                             freed.mapped == before.mapped && adds_up(&freed));
}

/* ---- the verbose report: regions and runs ---- */
static void test_verbose(void) {
    step = "verbose";
    malloc_trim(0);
    char *large[3];
    for (int i = 0; i < 3; i++)
        large[i] = malloc((size_t)(i + 3) * MiB); /* above 2 MiB: mapped alone */
    /* Eight blocks of a class of their own, the first eight carved (in
     * address order, or shuffled in pairs by the hardened build); free the
     * third and fourth: PROCESS 2, HOLE 2, PROCESS 4. */
    char *b[8];
    for (int i = 0; i < 8; i++)
        b[i] = malloc(7000);
    qsort(b, 8, sizeof b[0], by_address);
    size_t bs = stride_of(b[0]);
    free(b[2]);
    free(b[3]);
    mspace_stats s = mspace_stats_get();
    char *text = report(MSPACE_STATS_VERBOSE);
    CHECK("verbose report written", text != NULL);
    if (text == NULL)
        return;

    int large_lines = 0, matched = 0, region_lines = 0;
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        unsigned long start, end, pages;
        char kind[8];
        if (sscanf(line, " region 0x%lx-0x%lx %lu pages %5[a-z]", &start, &end, &pages, kind) != 4)
            continue;
        region_lines++;
        if (strcmp(kind, "large") != 0)
            continue;
        large_lines++;
        for (int i = 0; i < 3; i++) {
            mspace_block_info info;
            mspace_get(large[i], &info);
            if ((uintptr_t)info.region == start && start + info.region_size == end &&
                pages * 4096 == end - start)
                matched++;
        }
    }
    CHECK("the chain lists every region", (size_t)region_lines == s.regions && s.regions <= 32);
    CHECK("exactly the 3 large regions made, with their address ranges",
          large_lines == 3 && matched == 3);

    char want[256];
    snprintf(want, sizeof want, "PROCESS  %p-%p 2 blocks\n      HOLE     %p-%p 2 blocks\n"
                                "      PROCESS  %p-%p 4 blocks\n",
             (void *)b[0], (void *)(b[0] + 2 * bs), (void *)b[2], (void *)(b[2] + 2 * bs),
             (void *)b[4], (void *)(b[4] + 4 * bs));
    CHECK("the span shows its runs of PROCESS and HOLE blocks", strstr(text, want) != NULL);
    if (!strstr(text, want))
        fprintf(stderr, "  wanted:\n%s  in:\n%s\n", want, text);
    snprintf(want, sizeof want, "span %p-", (void *)b[0]);
    char *span_line = strstr(text, want);
    CHECK("the span's summary counts 6 in use and 2 free",
          span_line && strstr(span_line, "): 6 in use, 2 free, "));
    free(text);

    /* JSON: the same content, parsed by Python's json module. */
    FILE *f = tmpfile();
    mspace_stats_print(f, MSPACE_STATS_VERBOSE | MSPACE_STATS_JSON);
    fflush(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(sys.stdin); "
             "assert d[\"in_use\"]+d[\"free\"]+d[\"overhead\"]==d[\"mapped\"]; "
             "assert d[\"calls_counted\"] is False and d[\"mallocs\"] is None; "
             "assert len([r for r in d[\"chain\"] if r[\"kind\"]==\"large\"])==3; "
             "assert d[\"chain_regions\"]==len(d[\"chain\"])' < /proc/%d/fd/%d",
             getpid(), fileno(f));
    CHECK("JSON parses and adds up", system(cmd) == 0);
    fclose(f);

    for (int i = 0; i < 3; i++)
        free(large[i]);
    for (int i = 0; i < 8; i++)
        if (i != 2 && i != 3)
            free(b[i]);
    CHECK("unknown flags: EINVAL", mspace_stats_print(stdout, 4) == -1 && errno == EINVAL);
    CHECK("NULL stream: EINVAL", mspace_stats_print(NULL, 0) == -1 && errno == EINVAL);
}

/* ---- mspace_get ---- */
static int global_variable;

/* Does the kernel show this process its page frame numbers (it does to
 * CAP_SYS_ADMIN only)? Asked of a page surely resident: our stack. */
static int frames_visible(void) {
    volatile char here = 1;
    uint64_t entry = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0)
        return 0;
    pread(fd, &entry, sizeof entry, (off_t)((uintptr_t)&here / 4096 * sizeof entry));
    close(fd);
    return (entry >> 63) && (entry & (((uint64_t)1 << 55) - 1)) != 0;
}

static void *other_thread_block(void *arg) {
    (void)arg;
    return malloc(200);
}

static void test_get(void) {
    step = "mspace_get";
    mspace_block_info info;
    char *p = malloc(100);
    memset(p, 1, 100);
    int r = mspace_get(p, &info);
    CHECK("in use: found", r == 1 && info.state == MSPACE_IN_USE && info.block == p &&
                               info.exact == 1 && info.large == 0 && info.bootstrap == 0);
    CHECK("in use: usable and requested size",
          info.usable_size == malloc_usable_size(p) && info.requested_size == info.usable_size);
    CHECK("in use: size class and region", info.size_class >= 0 &&
                                               (char *)info.region <= p &&
                                               p < (char *)info.region + info.region_size &&
                                               info.region_size == 4 * MiB);
    r = mspace_get(p + 77, &info);
    CHECK("interior pointer resolves to its block", r == 1 && info.block == p &&
                                                        info.state == MSPACE_IN_USE);
    if (frames_visible()) {
        /* Another address in the page of p + 77 (the hardened build's
         * random order may hand out a block that straddles two pages). */
        char *near = p + 3;
        if ((uintptr_t)near / 4096 != (uintptr_t)(p + 77) / 4096)
            near = (char *)((uintptr_t)(p + 77) & ~(uintptr_t)4095);
        mspace_block_info other;
        mspace_get(near, &other);
        CHECK("physical address of a touched page (frames visible here)",
              info.physical_known && other.physical_known &&
                  other.physical_address + (uint64_t)(p + 77 - near) == info.physical_address &&
                  info.physical_address % 4096 == (uintptr_t)(p + 77) % 4096);
    } else {
        CHECK("no physical address where the kernel hides frames", info.physical_known == 0);
    }
    if (geteuid() == 0) { /* and once as nobody, to whom the kernel shows no frames */
        pid_t child = fork();
        if (child == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(2);
            mspace_block_info mine;
            _exit(mspace_get(p, &mine) == 1 && mine.state == MSPACE_IN_USE &&
                          !mine.physical_known ? 0 : 1);
        }
        int status = -1;
        waitpid(child, &status, 0);
        CHECK("an unprivileged process gets no physical address, and the rest",
              WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    char *q = malloc(100);
    free(q);
    r = mspace_get(q + 8, &info);
    CHECK("freed: a hole, confirmed on our own lists",
          r == 1 && info.state == MSPACE_FREE && info.block == q && info.exact == 1);

    char *big = malloc(9 * MiB);
    big[0] = 1;
    r = mspace_get(big + 7 * MiB + 5, &info);
    CHECK("large block, past its first 4 MiB: resolves to its block",
          r == 1 && info.state == MSPACE_IN_USE && info.block == big && info.large == 1 &&
              info.size_class == -1 && info.usable_size == malloc_usable_size(big));
    CHECK("an untouched page has no physical address", info.physical_known == 0);
    r = mspace_get((char *)info.region + 16, &info);
    CHECK("the large block's header is metadata", r == 1 && info.state == MSPACE_METADATA);
    free(big);
    malloc_trim(0);

    r = mspace_get(&r, &info);
    CHECK("stack: foreign", r == 0 && info.state == MSPACE_FOREIGN && info.block == NULL);
    r = mspace_get(&global_variable, &info);
    CHECK("global: foreign", r == 0 && info.state == MSPACE_FOREIGN);
    r = mspace_get((void *)strerror(EINVAL), &info);
    CHECK("glibc's own memory: foreign", r == 0 && info.state == MSPACE_FOREIGN);
    r = mspace_get(NULL, &info);
    CHECK("NULL: foreign", r == 0 && info.state == MSPACE_FOREIGN);
    CHECK("no output: EINVAL", mspace_get(p, NULL) == -1 && errno == EINVAL);

    mspace_get(p, &info);
    r = mspace_get(info.region, &info);
    CHECK("a small segment's header is metadata", r == 1 && info.state == MSPACE_METADATA);

    /* A class of its own: the first block carved, the rest of the span not. */
    char *lone = malloc(40000);
    size_t bs = stride_of(lone);
    r = mspace_get(lone + 5 * bs + 1, &info);
    CHECK("past the carved blocks: uncarved, with the block it would be",
          r == 1 && info.state == MSPACE_UNCARVED && info.block == lone + 5 * bs);
    free(lone);

    pthread_t t;
    void *theirs = NULL;
    pthread_create(&t, NULL, other_thread_block, NULL);
    pthread_join(t, &theirs);
    r = mspace_get(theirs, &info);
    CHECK("another thread's block: in use, read as a snapshot",
          r == 1 && info.state == MSPACE_IN_USE && info.exact == 0);
    free(theirs);
    free(p);
}

/* ---- explicit heaps are counted like thread heaps ---- */
static void test_explicit_heap(void) {
    step = "explicit heap";
    malloc_trim(0);
    mspace_stats before = mspace_stats_get();
    mspace_t *ms = mspace_create();
    char *small = mspace_malloc(ms, 100), *big = mspace_malloc(ms, 3 * MiB);
    mspace_stats during = mspace_stats_get();
    CHECK("an explicit heap: one more heap, its segment and its large block",
          during.heaps == before.heaps + 1 && during.small_regions == before.small_regions + 1 &&
              during.large_blocks == before.large_blocks + 1 && adds_up(&during));
    mspace_block_info info;
    CHECK("its blocks are found", mspace_get(small + 1, &info) == 1 && info.block == small &&
                                      info.state == MSPACE_IN_USE &&
                                      mspace_get(big + MiB, &info) == 1 && info.block == big);
    char *text = report(MSPACE_STATS_VERBOSE);
    char want[64];
    snprintf(want, sizeof want, "block %p usable", (void *)big);
    char *line = text ? strstr(text, want) : NULL;
    CHECK("the verbose report names the large block's explicit heap",
          line && strstr(line, ", explicit heap 0x") &&
              strstr(line, ", explicit heap 0x") < strchr(line, '\n'));
    free(text);
    mspace_destroy(ms);
    mspace_stats after = mspace_stats_get();
    CHECK("destroyed: all of it unmapped", after.heaps == before.heaps &&
                                              after.mapped == before.mapped && adds_up(&after));
}

/* ---- glibc's reports agree with mspace_stats_get ---- */
static size_t xml_value(const char *xml, const char *tag, const char *attr) {
    const char *last = NULL;
    for (const char *at = strstr(xml, tag); at; at = strstr(at + 1, tag))
        last = at; /* the totals come after the heap's figures */
    const char *v = last ? strstr(last, attr) : NULL;
    return v ? strtoull(v + strlen(attr), NULL, 10) : (size_t)-1;
}

static void test_glibc_reports(void) {
    step = "glibc reports";
    char *keep = malloc(3 * MiB), *small = malloc(50);
    FILE *f = tmpfile();
    fputs("warm", f); /* stdio's buffer now exists: malloc_info allocates nothing */
    fflush(f);
    ftruncate(fileno(f), 0);
    rewind(f);
    int rc = malloc_info(0, f);
    mspace_stats s = mspace_stats_get();
    struct mallinfo2 mi = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
    char *xml = slurp(f);
    CHECK("malloc_info returns 0", rc == 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "xmllint --noout /proc/%d/fd/%d", getpid(), fileno(f));
    CHECK("malloc_info's XML parses (xmllint)", system(cmd) == 0);
    CHECK("malloc_info: current system bytes == mapped",
          xml_value(xml, "<system type=\"current\"", "size=\"") == s.mapped);
    CHECK("malloc_info: rest == free bytes",
          xml_value(xml, "<total type=\"rest\"", "size=\"") == s.free);
    CHECK("malloc_info: mmap == large blocks",
          xml_value(xml, "<total type=\"mmap\"", "count=\"") == s.large_blocks &&
              xml_value(xml, "<total type=\"mmap\"", "size=\"") == s.large_mapped);
    CHECK("malloc_info: max == peak",
          xml_value(xml, "<system type=\"max\"", "size=\"") == s.mapped_peak);
    free(xml);
    fclose(f);
    CHECK("malloc_info(1, f): EINVAL", malloc_info(1, stdout) == -1 && errno == EINVAL);

    CHECK("mallinfo2: arena + hblkhd == mapped", mi.arena + mi.hblkhd == s.mapped);
    CHECK("mallinfo2: uordblks == in use, fordblks == free",
          mi.uordblks == s.in_use && mi.fordblks == s.free);
    CHECK("mallinfo2: hblks == large blocks", mi.hblks == s.large_blocks && mi.hblks >= 1);
    CHECK("mallinfo agrees while it fits an int", (size_t)old.uordblks == s.in_use &&
                                                     (size_t)old.arena == mi.arena);

    fflush(stderr);
    FILE *cap = tmpfile();
    int saved = dup(2);
    dup2(fileno(cap), 2);
    malloc_stats();
    mspace_stats after = mspace_stats_get();
    dup2(saved, 2);
    close(saved);
    char *text = slurp(cap);
    fclose(cap);
    size_t total = 0;
    char *at = strstr(text, "Total (incl. mmap):\nsystem bytes     =");
    if (at)
        total = strtoull(at + strlen("Total (incl. mmap):\nsystem bytes     ="), NULL, 10);
    CHECK("malloc_stats: glibc's layout, total system bytes == mapped",
          at && strstr(text, "Arena 0:\n") && total == after.mapped);
    CHECK("malloc_stats: then mspace's report", strstr(text, "fragmentation") != NULL);
    free(text);
    free(keep);
    free(small);
}

/* ---- reports while another thread churns ---- */
static _Atomic int churn_stop;

static void *churn(void *arg) {
    void *slots[256] = {0};
    uint64_t x = 88172645463325252ull;
    while (!churn_stop) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned i = x % 256;
        free(slots[i]);
        size_t size = (x >> 8) % 4 == 0 ? 300 * KiB + (x >> 20) % MiB : 1 + (x >> 20) % 5000;
        slots[i] = malloc(size);
        if (slots[i])
            memset(slots[i], 0xab, size < 64 ? size : 64);
        ((void *volatile *)arg)[0] = slots[(x >> 32) % 256];
    }
    for (unsigned i = 0; i < 256; i++)
        free(slots[i]);
    return NULL;
}

static void test_racing(void) {
    step = "racing";
    void *volatile seen = NULL;
    pthread_t t;
    pthread_create(&t, NULL, churn, (void *)&seen);
    int sums = 1, states = 1, reports = 1;
    for (int round = 0; round < 300; round++) {
        mspace_stats s = mspace_stats_get();
        sums &= adds_up(&s);
        mspace_block_info info;
        void *p = seen;
        if (p) {
            mspace_get((char *)p + 3, &info);
            /* the block may have been freed (or unmapped) meanwhile */
            states &= info.state <= MSPACE_METADATA;
        }
        if (round % 30 == 0) {
            char *text = report(MSPACE_STATS_VERBOSE | (round % 60 ? MSPACE_STATS_JSON : 0));
            reports &= text != NULL && strstr(text, "mapped") != NULL;
            free(text);
        }
    }
    churn_stop = 1;
    pthread_join(t, NULL);
    CHECK("racing: every snapshot adds up", sums);
    CHECK("racing: lookups of another thread's blocks give a state", states);
    CHECK("racing: verbose reports complete", reports);
}

/* ---- phases re-run with options set ---- */
static void phase_counted(void) {
    TEST_BEGIN("introspect(counted)");
    mspace_stats s0 = mspace_stats_get();
    void *a[10], *c[3], *r, *m = NULL;
    for (int i = 0; i < 10; i++)
        a[i] = malloc(100 + (size_t)i);
    for (int i = 0; i < 3; i++)
        c[i] = calloc(4, 50);
    r = realloc(NULL, 300);                 /* a malloc */
    posix_memalign(&m, 64, 200);            /* a malloc */
    a[0] = realloc(a[0], 5000);             /* moves */
    a[1] = realloc(a[1], 100);              /* stays */
    void *gone = realloc(a[2], 0);          /* a free */
    for (int i = 0; i < 10; i++)
        if (i != 2)
            free(a[i]);
    for (int i = 0; i < 3; i++)
        free(c[i]);
    free(r);
    free(m);
    mspace_stats s1 = mspace_stats_get();
    CHECK("counted with MSPACE_STATS_FILE set", s1.calls_counted == 1 && gone == NULL);
    CHECK("mallocs: 10 malloc + 3 calloc + realloc(NULL) + posix_memalign",
          s1.mallocs - s0.mallocs == 15);
    CHECK("frees: 14 free + realloc(p, 0)", s1.frees - s0.frees == 15);
    CHECK("reallocs: 2", s1.reallocs - s0.reallocs == 2);
    char *text = report(MSPACE_STATS_JSON);
    CHECK("the JSON says counted", text && strstr(text, "\"calls_counted\": true") &&
                                       !strstr(text, "null"));
    free(text);
    text = report(0);
    CHECK("the text has the counts", text && strstr(text, "  mallocs ") &&
                                         !strstr(text, "not counted"));
    free(text);
}

static void phase_leaks(void) {
    TEST_BEGIN("introspect(leaks)");
    char *p = malloc(1234), *big = malloc(MiB + 5);
    mspace_block_info info;
    mspace_get(p + 1000, &info);
    CHECK("MSPACE_LEAKS: the requested size of a small block",
          info.state == MSPACE_IN_USE && info.block == p && info.requested_size == 1234 &&
              info.usable_size >= 1234);
    mspace_get(big, &info);
    CHECK("MSPACE_LEAKS: the requested size of a large block",
          info.requested_size == MiB + 5 && info.usable_size >= MiB + 5);
    free(p);
    free(big);
}

static int file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char *text = slurp(f);
    fclose(f);
    int found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* Waits (bounded) for the dump thread to have written needle. */
static int wait_for(const char *path, const char *needle) {
    for (int i = 0; i < 2000; i++) {
        if (file_has(path, needle))
            return 1;
        usleep(10000);
    }
    return 0;
}

static void phase_signal(const char *dir) {
    TEST_BEGIN("introspect(signal)");
    char *big = malloc(3 * MiB);
    char path[256], block[64];
    snprintf(path, sizeof path, "%s/dump.%d", dir, getpid());
    snprintf(block, sizeof block, "block %p usable", (void *)big);
    CHECK("no dump before the signal", !file_has(path, "mspace statistics"));
    raise(SIGUSR2); /* the default action would kill us */
    CHECK("the signal dumps the statistics while we wait idle", wait_for(path, block));
    CHECK("MSPACE_VERBOSE=1: the dump lists the chain", file_has(path, "chain of mapped regions"));
    pid_t child = fork();
    if (child == 0) {
        char mine[256];
        snprintf(mine, sizeof mine, "%s/dump.%d", dir, getpid());
        raise(SIGUSR2);
        _exit(wait_for(mine, "chain of mapped regions") ? 0 : 1);
    }
    int status = -1;
    waitpid(child, &status, 0);
    CHECK("a forked child dumps too", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(big);
}

static int run_phase(const char *self, const char *phase, const char *dir, char **env_set,
                     const char *stderr_path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (stderr_path) {
            int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 2);
        }
        for (char **e = env_set; *e; e += 2)
            setenv(e[0], e[1], 1);
        execl(self, self, phase, dir, (char *)NULL);
        _exit(127);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) | (pid << 8) : -1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "counted") == 0) {
        phase_counted();
        return TEST_DONE();
    }
    if (argc == 3 && strcmp(argv[1], "signal") == 0) {
        phase_signal(argv[2]);
        return TEST_DONE();
    }
    if (argc == 3 && strcmp(argv[1], "bogus") == 0)
        return 0;
    if (argc == 3 && strcmp(argv[1], "leaks") == 0) {
        phase_leaks();
        return TEST_DONE();
    }
    TEST_BEGIN("introspect");
    int api = mspace_stats_get && mspace_stats_print && mspace_get;
    CHECK("the API is exported by the preloaded libmspace.so", api);
    if (!api)
        return TEST_DONE();
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);

    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    char dir[] = "/tmp/mspace-introspect-XXXXXX";
    CHECK("scratch directory", mkdtemp(dir) != NULL);

    step = "phase counted";
    char *counted_env[] = {"MSPACE_STATS_FILE", "/dev/null", NULL};
    int rc = run_phase(self, "counted", dir, counted_env, NULL);
    CHECK("phase: counts of a known sequence of calls (MSPACE_STATS_FILE set)",
          rc != -1 && (rc & 0xff) == 0);

    step = "phase signal";
    char file[300];
    snprintf(file, sizeof file, "%s/dump.%%p", dir);
    char *signal_env[] = {"MSPACE_STATS_SIGNAL", "SIGUSR2", "MSPACE_STATS_FILE", file,
                          "MSPACE_VERBOSE", "1", NULL};
    rc = run_phase(self, "signal", dir, signal_env, NULL);
    CHECK("phase: MSPACE_STATS_SIGNAL dumps", rc != -1 && (rc & 0xff) == 0);
    if (rc != -1) {
        char path[300];
        snprintf(path, sizeof path, "%s/dump.%d", dir, rc >> 8);
        CHECK("the report at exit is appended after the dump",
              file_has(path, "chain of mapped regions") && file_has(path, "mspace: os_maps"));
    }
    step = "phase bogus signal";
    char *bogus_env[] = {"MSPACE_STATS_SIGNAL", "SIGBOGUS", NULL};
    char err[300];
    snprintf(err, sizeof err, "%s/stderr", dir);
    rc = run_phase(self, "bogus", dir, bogus_env, err);
    CHECK("an unknown signal name is reported and ignored",
          rc != -1 && (rc & 0xff) == 0 &&
              file_has(err, "mspace: MSPACE_STATS_SIGNAL: not a signal that can be caught, "
                            "ignored: SIGBOGUS\n"));
    step = "phase leaks";
    char *leaks_env[] = {"MSPACE_LEAKS", "1", NULL};
    snprintf(err, sizeof err, "%s/leaks.stderr", dir); /* the leak summary */
    rc = run_phase(self, "leaks", dir, leaks_env, err);
    CHECK("phase: requested sizes known with MSPACE_LEAKS", rc != -1 && (rc & 0xff) == 0);

    char cleanup[400];
    snprintf(cleanup, sizeof cleanup, "rm -rf %s", dir);
    system(cleanup);

    test_totals();
    test_verbose();
    test_get();
    if (mspace_create)
        test_explicit_heap();
    test_glibc_reports();
    test_racing();
    return TEST_DONE();
}
