/* Explicit heaps (core/explicit_heap.[ch]): their spans never take free()'s
 * fast path, their large blocks stay listed in the heap through frees and
 * mremap moves (and leave it when cached), realloc keeps a block in its
 * heap, trim empties them, fork holds their locks, and destroy shows its
 * observer exactly the live blocks, unmaps every byte and takes every
 * address off the segment map. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../harness.h"
#include "alloc.h"
#include "explicit_heap.h"
#include "heap.h"
#include "large.h"
#include "span.h"
#include "stats.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static uint64_t mapped_now(void) {
    ms_heap_trim_all(); /* the large-block cache and kept segments too */
    ms_stats_t s;
    ms_stats_read(&s);
    return s.bytes_mapped;
}

static int listed(heap_t *heap, segment_t *segment) {
    for (segment_t *s = heap->large; s; s = s->heap_next)
        if (s == segment) return 1;
    return 0;
}

static size_t list_length(heap_t *heap) {
    size_t n = 0;
    for (segment_t *s = heap->large; s; s = s->heap_next) n++;
    return n;
}

static void *free_on_thread(void *p) {
    ms_free(p, "free");
    return NULL;
}

static void test_small_blocks(heap_t *e) {
    void *p = ms_alloc(e, 100, 0);
    segment_t *segment = ms_segment_of(p);
    span_t *span = ms_span_head(ms_segment_slice_of(segment, p));
    CHECK("small: the segment belongs to the explicit heap", segment->heap == e);
    CHECK("small: its span has local_key 0 (no thread's free fast path)", span->local_key == 0);
    CHECK("small: free's fast path declines it", !ms_free_fast(p));
    ms_free(p, "free");
    CHECK("small: the slow path takes it back", span->used == 0);

    /* Freed by a thread that has no heap of its own: straight back too. */
    p = ms_alloc(e, 100, 0);
    pthread_t t;
    pthread_create(&t, NULL, free_on_thread, p);
    pthread_join(t, NULL);
    CHECK("small: free by another thread takes it back at once", span->used == 0);
    CHECK("small: the heap's remote list stays empty", e->remote_free == NULL);

    ms_explicit_heap_usage_t usage;
    void *blocks[10];
    for (int i = 0; i < 10; i++) blocks[i] = ms_alloc(e, 48, 0);
    ms_explicit_heap_usage(e, &usage);
    CHECK("usage: ten blocks of 48 bytes, 480 bytes in use",
          usage.blocks[ms_size_class_of(48)] == 10 && usage.small_in_use == 480);
    for (int i = 0; i < 10; i++) ms_free(blocks[i], "free");
}

static void test_large_list(heap_t *e) {
    unsigned char *a = ms_alloc(e, 3 * MiB, 0), *b = ms_alloc(e, 3 * MiB, 0), *c = ms_alloc(e, 3 * MiB, 0);
    segment_t *sb = ms_segment_of(b);
    CHECK("large: three blocks listed in the heap", list_length(e) == 3 && listed(e, sb) &&
                                                        sb->heap == e);
    /* Pages right after b taken, so growing it must move the mapping. */
    char *end = (char *)sb + sb->mapped_size;
    void *blocker = mmap(end, MS_OS_PAGE, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    memset(b, 0x42, 3 * MiB);
    unsigned char *moved = ms_realloc(e, b, 6 * MiB);
    segment_t *sm = ms_segment_of(moved);
    CHECK("large: realloc moved the block", moved && moved != b);
    CHECK("large: the moved block is listed, the old header is not",
          sm && listed(e, sm) && sm->heap == e && list_length(e) == 3);
    CHECK("large: contents moved along", moved && moved[0] == 0x42 && moved[3 * MiB - 1] == 0x42);
    if (blocker != MAP_FAILED) munmap(blocker, MS_OS_PAGE);

    /* Freed: off the list, and cached with no owner, so whoever takes it
     * next from the cache does not hand it back to this heap. */
    segment_t *sa = ms_segment_of(a);
    ms_free(a, "free");
    CHECK("large: a freed block leaves the list", list_length(e) == 2 && !listed(e, sa));
    heap_t *mine = ms_heap_acquire();
    unsigned char *reused = ms_alloc(mine, 3 * MiB, 0);
    CHECK("large: a block cached by an explicit heap is reused without an owner",
          reused && ms_segment_of(reused)->heap == NULL && list_length(e) == 2);
    ms_free(reused, "free");

    /* Small -> large and back: the block stays in the explicit heap. */
    unsigned char *s = ms_alloc(e, 200, 0);
    s = ms_realloc(mine, s, 2 * MiB);
    CHECK("realloc small -> large: listed in its explicit heap, not the caller's",
          s && ms_segment_of(s)->heap == e && list_length(e) == 3);
    s = ms_realloc(mine, s, 200);
    CHECK("realloc large -> small: still the explicit heap's",
          s && ms_segment_of(s)->heap == e && list_length(e) == 2);
    ms_free(s, "free");
    ms_free(c, "free");
    ms_free(moved, "free");
    CHECK("large: all freed, the list is empty", e->large == NULL);
}

static void test_trim_and_fork(heap_t *e) {
    void *p = ms_alloc(e, 5000, 0);
    ms_free(p, "free");
    ms_heap_trim_all();
    ms_explicit_heap_usage_t usage;
    ms_explicit_heap_usage(e, &usage);
    CHECK("trim: an explicit heap with nothing in use keeps no segment", usage.segments == 0);

    ms_explicit_heap_fork_prepare();
    int held = ms_lock_held_by_me(&e->lock);
    ms_explicit_heap_fork_parent();
    CHECK("fork: prepare holds the heap's lock, parent releases it",
          held && !ms_lock_held_by_me(&e->lock) && e->lock.state == 0);
}

static void count_block(void *block, void *arg) {
    void **expect = arg;
    for (int i = 0; i < 301; i++)
        if (expect[i] == block) {
            expect[i] = NULL; /* each one once */
            return;
        }
    expect[301] = block; /* a block that is not live */
}

static void test_walk_live(void) {
    heap_t *e = ms_explicit_heap_create();
    void *all[300], *expect[302] = {0};
    for (int i = 0; i < 300; i++) all[i] = ms_alloc(e, 16 + (size_t)(i % 7) * 100, 0);
    for (int i = 0; i < 300; i += 3) ms_free(all[i], "free");
    int n = 0;
    for (int i = 0; i < 300; i++)
        if (i % 3) expect[n++] = all[i];
    expect[n++] = ms_alloc(e, 3 * MiB, 0);
    ms_explicit_heap_destroy(e, count_block, expect);
    int all_seen = 1;
    for (int i = 0; i < n; i++) all_seen &= expect[i] == NULL;
    CHECK("destroy: shows each live block, small and large, once", all_seen);
    CHECK("destroy: shows no hole and no never-used block", expect[301] == NULL);
}

static void test_destroy(void) {
    uint64_t before = mapped_now();
    heap_t *e = ms_explicit_heap_create();
    void *small[1000], *large[3];
    for (int i = 0; i < 1000; i++) small[i] = ms_alloc(e, 16 + (size_t)i * 40 % 4000, 0);
    for (int i = 0; i < 3; i++) large[i] = ms_alloc(e, (size_t)(i + 1) * MiB, 4096);
    large[1] = ms_realloc(e, large[1], 9 * MiB); /* resized in place or moved */
    uint64_t during = mapped_now();
    ms_explicit_heap_destroy(e, NULL, NULL);
    uint64_t after = mapped_now();
    CHECK("destroy: the heap had mapped over 13 MiB", during - before > 13 * MiB);
    CHECK("destroy: bytes mapped back to where they were", after == before);
    int gone = 1;
    for (int i = 0; i < 1000; i++) gone &= ms_segment_of(small[i]) == NULL;
    for (int i = 0; i < 3; i++) gone &= ms_segment_of(large[i]) == NULL;
    CHECK("destroy: no former block is on the segment map", gone);
}

int main(void) {
    TEST_BEGIN("unit/explicit_heap");
    heap_t *e = ms_explicit_heap_create();
    CHECK("create: a heap marked explicit, owned by no thread",
          e && e->is_explicit && e->thread_id == 0);
    test_small_blocks(e);
    test_large_list(e);
    test_trim_and_fork(e);
    ms_explicit_heap_destroy(e, NULL, NULL);
    test_walk_live();
    test_destroy();
    return TEST_DONE();
}
