/* Segments (core/segment.[ch]): the slice bitmap (first fit, runs of 1..63,
 * slice 0 never given), the address-to-segment map, purging of free slices
 * and the global chain. Segments here are made directly, with no heap. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../harness.h"
#include "segment.h"
#include "stats.h"

#define ALL ~(uint64_t)0

static uint64_t bits(unsigned first, unsigned count) {
    uint64_t run = count >= 64 ? ALL : (((uint64_t)1 << count) - 1);
    return run << first;
}

/* ---- chain walk ---- */
#define SEEN_MAX 4096
static segment_t *seen[SEEN_MAX];
static size_t seen_count;
static void collect(segment_t *segment, void *arg) {
    (void)arg;
    if (seen_count < SEEN_MAX)
        seen[seen_count++] = segment;
}
static int on_chain(const segment_t *segment) {
    seen_count = 0;
    ms_segment_chain_walk(collect, NULL);
    for (size_t i = 0; i < seen_count; i++)
        if (seen[i] == segment)
            return 1;
    return 0;
}

static void test_create(void) {
    ms_stats_t before, after;
    ms_stats_read(&before);
    segment_t *s = ms_segment_create(NULL);
    ms_stats_read(&after);
    CHECK("create: mapped", s != NULL);
    if (s == NULL)
        return;
    CHECK("create: 4 MiB aligned", ((uintptr_t)s & MS_SEGMENT_MASK) == 0);
    CHECK("create: small, 4 MiB", s->kind == SEGMENT_SMALL && s->mapped_size == MS_SEGMENT_SIZE);
    CHECK("create: only the header slice used", s->used_slices == 1 && ms_segment_is_empty(s));
    CHECK("create: nothing dirty", s->dirty_slices == 0);
    CHECK("create: counted", after.segments == before.segments + 1 &&
                                 after.bytes_mapped == before.bytes_mapped + MS_SEGMENT_SIZE);
    int zero = 1;
    for (unsigned i = 0; i < MS_SLICES_PER_SEGMENT; i++)
        if (s->spans[i].block_size || s->spans[i].local_key)
            zero = 0;
    CHECK("create: span descriptors start empty", zero);
    char *last = (char *)s + MS_SEGMENT_SIZE - 1;
    *last = 1; /* the whole 4 MiB is writable */
    CHECK("create: last byte writable", *last == 1);
    ms_segment_destroy(s);
    ms_stats_read(&after);
    CHECK("destroy: uncounted", after.segments == before.segments &&
                                    after.bytes_mapped == before.bytes_mapped);
}

static void test_bitmap(void) {
    segment_t *s = ms_segment_create(NULL);
    if (s == NULL) {
        CHECK("bitmap: segment", 0);
        return;
    }
    /* Every run length on an empty segment starts right after the header. */
    int runs_ok = 1;
    for (unsigned n = 1; n <= 63; n++) {
        int first = ms_segment_take_slices(s, n);
        if (first != 1 || s->used_slices != (1 | bits(1, n))) {
            runs_ok = 0;
            fprintf(stderr, "run %u: first %d used %#llx\n", n, first,
                    (unsigned long long)s->used_slices);
        }
        if (first >= 0)
            ms_segment_give_slices(s, (unsigned)first, n);
        if (!ms_segment_is_empty(s))
            runs_ok = 0;
    }
    CHECK("runs of 1..63 fit an empty segment at slice 1", runs_ok);
    CHECK("64 slices never fit (slice 0 is the header)", ms_segment_take_slices(s, 64) == -1);
    CHECK("failed take changes nothing", s->used_slices == 1);

    /* First fit: consecutive takes are packed in address order. */
    CHECK("first fit: 1 -> slice 1", ms_segment_take_slices(s, 1) == 1);
    CHECK("first fit: 3 -> slice 2", ms_segment_take_slices(s, 3) == 2);
    CHECK("first fit: 1 -> slice 5", ms_segment_take_slices(s, 1) == 5);
    ms_segment_give_slices(s, 2, 3);
    CHECK("give clears exactly the run", s->used_slices == (1 | bits(1, 1) | bits(5, 1)));
    CHECK("give marks the run dirty", (s->dirty_slices & bits(2, 3)) == bits(2, 3));
    CHECK("given run reused by a smaller take", ms_segment_take_slices(s, 2) == 2);
    CHECK("3-run skips the 1-slice hole", ms_segment_take_slices(s, 2) == 6);
    CHECK("1 fills the hole at 4", ms_segment_take_slices(s, 1) == 4);
    CHECK("then slices 1..7 used", s->used_slices == bits(0, 8));

    /* Fill to the end: exactly 56 free slices remain. */
    CHECK("57 do not fit in 56", ms_segment_take_slices(s, 57) == -1);
    CHECK("56 fit exactly", ms_segment_take_slices(s, 56) == 8);
    CHECK("full segment", s->used_slices == ALL);
    CHECK("nothing fits a full segment", ms_segment_take_slices(s, 1) == -1);

    /* Fragmentation: free every odd slice: singles fit, pairs don't. */
    for (unsigned i = 1; i < 64; i += 2)
        ms_segment_give_slices(s, i, 1);
    CHECK("no run of 2 among single holes", ms_segment_take_slices(s, 2) == -1);
    CHECK("lowest single hole first", ms_segment_take_slices(s, 1) == 1);
    CHECK("next single hole", ms_segment_take_slices(s, 1) == 3);
    ms_segment_give_slices(s, 4, 1); /* 3 taken, 4 and 5 now free */
    CHECK("adjacent holes merge into a run", ms_segment_take_slices(s, 2) == 4);
    /* The last slice is a valid run end. */
    ms_segment_give_slices(s, 62, 1); /* 61, 62 and 63 free */
    CHECK("run ending at slice 63", ms_segment_take_slices(s, 3) == 61);
    CHECK("a run never wraps past slice 63", ms_segment_take_slices(s, 2) == -1);

    /* Back to empty: give everything but the header. */
    s->used_slices = ALL;
    ms_segment_give_slices(s, 1, 63);
    CHECK("give 63 empties the segment", ms_segment_is_empty(s));
    CHECK("header slice never marked dirty", (s->dirty_slices & 1) == 0);
    ms_segment_destroy(s);
}

static void test_purge(void) {
    segment_t *s = ms_segment_create(NULL);
    if (s == NULL) {
        CHECK("purge: segment", 0);
        return;
    }
    char *base = (char *)s;
    CHECK("purge: fresh segment has nothing to purge", ms_segment_purge(s, true) == 0);
    int a = ms_segment_take_slices(s, 4);  /* 1..4 */
    int b = ms_segment_take_slices(s, 2);  /* 5..6 */
    int c = ms_segment_take_slices(s, 1);  /* 7 */
    CHECK("purge: setup", a == 1 && b == 5 && c == 7);
    memset(base + 1 * MS_SLICE_SIZE, 0x5a, 7 * MS_SLICE_SIZE);
    ms_segment_give_slices(s, 1, 4);
    ms_segment_give_slices(s, 7, 1);

    ms_stats_t before, after;
    ms_stats_read(&before);
    size_t purged = ms_segment_purge(s, true);
    ms_stats_read(&after);
    CHECK("purge returns the bytes of the dirty free slices", purged == 5 * MS_SLICE_SIZE);
    CHECK("purge counted in bytes_purged", after.bytes_purged - before.bytes_purged == purged);
    CHECK("purge leaves the mapping", after.bytes_mapped == before.bytes_mapped);
    CHECK("purge clears the dirty bits", s->dirty_slices == 0);
    CHECK("purge keeps used slices used", s->used_slices == (1 | bits(5, 2)));
    CHECK("purged pages read as zero", base[1 * MS_SLICE_SIZE] == 0 &&
                                           base[5 * MS_SLICE_SIZE - 1] == 0 &&
                                           base[7 * MS_SLICE_SIZE + 100] == 0);
    CHECK("used slices keep their contents", base[5 * MS_SLICE_SIZE] == 0x5a &&
                                                 base[7 * MS_SLICE_SIZE - 1] == 0x5a);
    CHECK("second purge has nothing to do", ms_segment_purge(s, true) == 0);

    /* A dirty slice taken again before the purge is not purged. */
    ms_segment_give_slices(s, 5, 2);
    CHECK("retake dirty slice", ms_segment_take_slices(s, 1) == 1); /* first fit: 1 (clean) */
    s->used_slices |= bits(5, 1); /* slice 5 back in use while still marked dirty */
    base[5 * MS_SLICE_SIZE] = 0x77;
    CHECK("only the free dirty slice is purged", ms_segment_purge(s, true) == MS_SLICE_SIZE);
    CHECK("in-use slice untouched by purge", base[5 * MS_SLICE_SIZE] == 0x77);

    /* Every slice at once: one run of 63 (the run reaching bit 63). */
    s->used_slices = ALL;
    ms_segment_give_slices(s, 1, 63);
    CHECK("purge of a whole empty segment", ms_segment_purge(s, true) == 63 * MS_SLICE_SIZE);
    CHECK("header survives the purge", s->kind == SEGMENT_SMALL && s->used_slices == 1);
    ms_segment_destroy(s);
}

/* Pages of [p, p + size) resident now. */
static size_t resident_pages(const void *p, size_t size) {
    unsigned char vec[MS_SEGMENT_SIZE / MS_OS_PAGE];
    size_t n = size / MS_OS_PAGE, count = 0;
    if (n > sizeof vec || mincore((void *)p, size, vec) != 0)
        return (size_t)-1;
    for (size_t i = 0; i < n; i++)
        count += vec[i] & 1;
    return count;
}

/* Can this kernel populate at all (MADV_POPULATE_WRITE, Linux 5.14)? */
static int kernel_populates(void) {
    void *p = mmap(NULL, MS_OS_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok = p != MAP_FAILED && madvise(p, MS_OS_PAGE, 23 /* MADV_POPULATE_WRITE */) == 0;
    if (p != MAP_FAILED)
        munmap(p, MS_OS_PAGE);
    return ok;
}

/* The upper half is populated only when the span just taken opens it and
 * nothing else there is taken or possibly resident; then all of it is
 * resident at once and reads as zero. */
static void test_populate(void) {
    segment_t *s = ms_segment_create(NULL);
    if (s == NULL) {
        CHECK("populate: segment", 0);
        return;
    }
    enum { HALF = MS_SLICES_PER_SEGMENT / 2 };
    char *upper = (char *)s + MS_SEGMENT_SIZE / 2;
    CHECK("populate: not before a span opens the half", !ms_segment_populate_upper_half(s));
    s->used_slices = ~(uint64_t)0 >> HALF; /* the lower half is all taken */
    CHECK("populate: first fit opens the upper half", ms_segment_take_slices(s, 1) == HALF);
    s->dirty_slices = bits(HALF + 5, 1);
    CHECK("populate: not over a slice that may be resident", !ms_segment_populate_upper_half(s));
    s->dirty_slices = 0;
    s->used_slices |= bits(HALF + 3, 1);
    CHECK("populate: not when another span is in the half", !ms_segment_populate_upper_half(s));
    s->used_slices &= ~bits(HALF + 3, 1);
    CHECK("populate: the half was not resident", resident_pages(upper, MS_SEGMENT_SIZE / 2) == 0);

    ms_stats_t before, after;
    ms_stats_read(&before);
    bool done = ms_segment_populate_upper_half(s);
    ms_stats_read(&after);
    if (kernel_populates()) {
        CHECK("populate: done", done);
        CHECK("populate: the whole half is resident",
              resident_pages(upper, MS_SEGMENT_SIZE / 2) == MS_SEGMENT_SIZE / 2 / MS_OS_PAGE);
        CHECK("populate: counted in bytes_populated",
              after.bytes_populated - before.bytes_populated == MS_SEGMENT_SIZE / 2);
    } else {
        CHECK("populate: refused by this kernel, nothing counted",
              !done && after.bytes_populated == before.bytes_populated);
    }
    CHECK("populate: the half reads as zero",
          upper[0] == 0 && upper[MS_SLICE_SIZE + 17] == 0 && upper[MS_SEGMENT_SIZE / 2 - 1] == 0);
    CHECK("populate: the header is intact", s->kind == SEGMENT_SMALL && s->used_slices & 1);
    /* A purge gives populated slices back like any others. */
    ms_segment_give_slices(s, HALF, 1);
    CHECK("populate: purge after populate", ms_segment_purge(s, true) == MS_SLICE_SIZE);
    CHECK("populate: the purged slice is not resident", resident_pages(upper, MS_SLICE_SIZE) == 0);
    ms_segment_destroy(s);
}

static int global_object;

static void test_lookup(void) {
    segment_t *s = ms_segment_create(NULL);
    if (s == NULL) {
        CHECK("lookup: segment", 0);
        return;
    }
    char *base = (char *)s;
    CHECK("segment_of(base)", ms_segment_of(base) == s);
    CHECK("segment_of(base + 1)", ms_segment_of(base + 1) == s);
    CHECK("segment_of(slice 1)", ms_segment_of(base + MS_SLICE_SIZE) == s);
    CHECK("segment_of(last byte)", ms_segment_of(base + MS_SEGMENT_SIZE - 1) == s);
    /* The neighbours may be other segments, but never this one. */
    CHECK("segment_of(end) is not this segment", ms_segment_of(base + MS_SEGMENT_SIZE) != s);
    CHECK("segment_of(base - 1) is not this segment", ms_segment_of(base - 1) != s);
    CHECK("ms_owns inside", ms_segment_mapped(base + 12345));

    int slices_ok = 1;
    for (unsigned i = 0; i < MS_SLICES_PER_SEGMENT; i++) {
        char *p = base + (size_t)i * MS_SLICE_SIZE;
        if (ms_segment_slice_of(s, p) != &s->spans[i] ||
            ms_segment_slice_of(s, p + MS_SLICE_SIZE - 1) != &s->spans[i] ||
            ms_segment_slice_base(s, &s->spans[i]) != p)
            slices_ok = 0;
    }
    CHECK("slice_of / slice_base round trip for all 64 slices", slices_ok);

    int local = 0;
    void *glibc = malloc(100);
    void *glibc_big = malloc(8 << 20); /* glibc mmaps this one */
    void *mapping = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("segment_of(NULL) == NULL", ms_segment_of(NULL) == NULL);
    CHECK("segment_of(stack) == NULL", ms_segment_of(&local) == NULL);
    CHECK("segment_of(global) == NULL", ms_segment_of(&global_object) == NULL);
    CHECK("segment_of(code) == NULL", ms_segment_of((void *)(uintptr_t)&test_lookup) == NULL);
    CHECK("segment_of(glibc malloc) == NULL", ms_segment_of(glibc) == NULL);
    CHECK("segment_of(glibc mmapped malloc) == NULL", ms_segment_of(glibc_big) == NULL);
    CHECK("segment_of(foreign mmap) == NULL",
          mapping != MAP_FAILED && ms_segment_of(mapping) == NULL);
    CHECK("segment_of(2^47 - 1) == NULL",
          ms_segment_of((void *)(((uintptr_t)1 << MS_ADDRESS_BITS) - 1)) == NULL);
    CHECK("segment_of(2^47) == NULL", ms_segment_of((void *)((uintptr_t)1 << 47)) == NULL);
    CHECK("segment_of(2^48) == NULL", ms_segment_of((void *)((uintptr_t)1 << 48)) == NULL);
    CHECK("segment_of(kernel half) == NULL",
          ms_segment_of((void *)(uintptr_t)0xffff800000000000ull) == NULL);
    CHECK("segment_of(UINTPTR_MAX) == NULL", ms_segment_of((void *)UINTPTR_MAX) == NULL);
    free(glibc);
    free(glibc_big);
    if (mapping != MAP_FAILED)
        munmap(mapping, 1 << 20);

    ms_segment_destroy(s);
    CHECK("segment_of(destroyed segment) == NULL", ms_segment_of(base) == NULL &&
                                                       ms_segment_of(base + 5000) == NULL);
}

static void test_chain(void) {
    enum { N = 5 };
    segment_t *s[N];
    for (int i = 0; i < N; i++)
        s[i] = ms_segment_create(NULL);
    int all = 1;
    for (int i = 0; i < N; i++)
        if (s[i] == NULL || !on_chain(s[i]))
            all = 0;
    CHECK("chain: every created segment is walked", all);
    size_t walked = seen_count;

    /* Distinct segments on the chain (no segment visited twice). */
    int dup = 0;
    for (size_t i = 0; i < seen_count; i++)
        for (size_t j = i + 1; j < seen_count; j++)
            if (seen[i] == seen[j])
                dup = 1;
    CHECK("chain: no segment twice", !dup);

    /* Destroy the middle, the head (last created) and the tail. */
    segment_t *gone[3] = {s[2], s[N - 1], s[0]};
    for (int i = 0; i < 3; i++)
        if (gone[i])
            ms_segment_destroy(gone[i]);
    int none = 1;
    for (int i = 0; i < 3; i++)
        if (gone[i] && on_chain(gone[i]))
            none = 0;
    CHECK("chain: destroyed segments are not walked", none);
    CHECK("chain: survivors still walked", s[1] && on_chain(s[1]) && s[3] && on_chain(s[3]));
    CHECK("chain: walk shrank by three", seen_count == walked - 3);
    if (s[1])
        ms_segment_destroy(s[1]);
    if (s[3])
        ms_segment_destroy(s[3]);
    seen_count = 0;
    ms_segment_chain_walk(collect, NULL);
    CHECK("chain: all gone", seen_count == walked - N);
}

int main(void) {
    TEST_BEGIN("segment");
    test_create();
    test_bitmap();
    test_purge();
    test_populate();
    test_lookup();
    test_chain();
    return TEST_DONE();
}
