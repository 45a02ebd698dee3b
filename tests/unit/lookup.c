/* Address lookup (core/lookup.[ch]): any address resolves to the block
 * holding it and its state, interior pointers and large blocks past their
 * first 4 MiB included; foreign addresses say so; a corrupted free list
 * (a cycle, a wild pointer) never loops or faults the walk. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../harness.h"
#include "alloc.h"
#include "heap.h"
#include "lookup.h"
#include "span.h"

#define MiB ((size_t)1 << 20)

static heap_t *h;
static int global_variable;

static ms_lookup_t look(const void *p) {
    ms_lookup_t out;
    ms_lookup(p, &out);
    return out;
}

static void *other_thread(void *arg) {
    (void)arg;
    ms_heap_acquire();
    return ms_alloc(ms_heap_tls, 100, 0);
}

int main(void) {
    TEST_BEGIN("lookup");
    h = ms_heap_acquire();
    char *p = ms_alloc(h, 100, 0);
    ms_lookup_t l = look(p + 50);
    CHECK("interior: its block, in use, exact", ms_lookup(p + 50, &l) && l.state == MS_LOOKUP_IN_USE &&
                                                   l.block == (uintptr_t)p && l.exact &&
                                                   l.block_size == 112 &&
                                                   l.size_class == (int)ms_size_class_of(100));
    CHECK("region: the segment", l.region == (uintptr_t)ms_segment_base(p) &&
                                     l.region_size == MS_SEGMENT_SIZE && !l.large);
    char *q = ms_alloc(h, 100, 0);
    ms_free(q, "test");
    l = look(q);
    CHECK("freed: a hole, found on the span's list", l.state == MS_LOOKUP_FREE && l.exact);
    l = look(q + 112 * 3);
    CHECK("carved, never handed out: a hole", l.state == MS_LOOKUP_FREE &&
                                                  l.block == (uintptr_t)q + 112 * 3);
    span_t *span = ms_span_head(ms_segment_slice_of(ms_segment_base(p), p));
    char *end = ms_span_start(ms_segment_base(p), span) + span->carved_end;
    l = look(end + 1);
    CHECK("past the carved blocks: uncarved", l.state == MS_LOOKUP_UNCARVED &&
                                                  l.block == (uintptr_t)end);
    l = look(ms_segment_base(p));
    CHECK("the segment header: metadata", l.state == MS_LOOKUP_METADATA && l.block == 0);
    l = look((char *)ms_segment_base(p) + 40 * MS_SLICE_SIZE);
    CHECK("a free slice: uncarved, no block", l.state == MS_LOOKUP_UNCARVED && l.block == 0);

    char *big = ms_alloc(h, 9 * MiB, 0);
    l = look(big + 8 * MiB);
    CHECK("a large block past its first 4 MiB", l.state == MS_LOOKUP_IN_USE && l.large &&
                                                    l.block == (uintptr_t)big &&
                                                    l.block_size == ms_usable_size(big, "t"));
    ms_free(big, "test");
    ms_heap_trim_all();
    CHECK("a freed (unmapped) large block: foreign", !ms_lookup(big + 8, &l) &&
                                                       l.state == MS_LOOKUP_FOREIGN);
    CHECK("stack and globals: foreign", !ms_lookup(&l, &l) && !ms_lookup(&global_variable, &l) &&
                                            !ms_lookup(NULL, &l) && !ms_lookup((void *)-1, &l));

    pthread_t t;
    void *theirs;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, &theirs);
    l = look(theirs);
    CHECK("another heap's block: in use, not exact", l.state == MS_LOOKUP_IN_USE && !l.exact);

    /* Corrupt the span's free list: a cycle, then a wild pointer. The mark
     * says "hole"; the walk must end, and finds no such block. */
    char *r = ms_alloc(h, 100, 0), *s = ms_alloc(h, 100, 0);
    ms_free(r, "test");
    block_t *head = span->free, saved = *head;
    ((block_t *)s)->freed_mark = (uintptr_t)span; /* a live block that looks free */
    head->next = head;
    l = look(s);
    CHECK("a cycle in the free list: the walk ends", l.state == MS_LOOKUP_IN_USE && l.exact);
    head->next = (block_t *)(uintptr_t)0x10;
    l = look(s);
    CHECK("a wild pointer in the free list: not followed", l.state == MS_LOOKUP_IN_USE);
    *head = saved;
    ((block_t *)s)->freed_mark = 0;
    ms_free(s, "test");
    ms_free(p, "test");
    return TEST_DONE();
}
