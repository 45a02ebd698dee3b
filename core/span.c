#include "span.h"
#include <stdbool.h>
#include "os.h"
#include "secure.h"
#include "size_class.h"
#include "stats.h"

span_t *ms_span_init(segment_t *segment, unsigned first, unsigned count, unsigned size_class) {
    span_t *span = &segment->spans[first];
    size_t block_size = ms_size_class_size(size_class);
    *span = (span_t){0};
    span->block_size = (uint32_t)block_size;
    bool power_of_two = (block_size & (block_size - 1)) == 0;
    span->block_magic = UINT64_MAX / block_size + 1 + power_of_two;
    span->size_class = (uint8_t)size_class;
    span->slice_count = (uint8_t)count;
    for (unsigned i = 1; i < count; i++) {
        segment->spans[first + i] = (span_t){0};
        segment->spans[first + i].head_delta = (uint8_t)i;
    }
    ms_stats_add(MS_STAT_spans_created, 1);
    return span;
}

void ms_span_release(segment_t *segment, span_t *span) {
    unsigned first = (unsigned)(span - segment->spans), count = span->slice_count;
    for (unsigned i = 0; i < count; i++)
        segment->spans[first + i] = (span_t){0};
    ms_segment_give_slices(segment, first, count);
}

/* The hardened build carves about 16 KiB at a time, to shuffle (see
 * ms_span_carve for the default build). */
#define CARVE_BYTES (16 * 1024)
#define CARVE_MAX_BLOCKS 128
/* A span carved whole once (reused after it emptied) faults nothing in:
 * a slice at a time costs a quarter of the calls. */
#define WHOLE_CARVE_BYTES MS_SLICE_SIZE

/* Bytes of the span that can hold blocks: all of it, except the guard page
 * at the end of the segment in the secure build. */
static size_t capacity(const segment_t *segment, const span_t *span) {
    size_t bytes = (size_t)span->slice_count * MS_SLICE_SIZE;
    if (span + span->slice_count == segment->spans + MS_SLICES_PER_SEGMENT)
        bytes -= MS_SECURE_GUARD;
    return bytes;
}

/* The secure build threads the batch in random order: the addresses of
 * consecutive mallocs tell an attacker nothing about their neighbours. */
static block_t *thread_batch(char *first, unsigned batch, size_t block_size, span_t *span) {
    unsigned order[MS_SECURE ? CARVE_MAX_BLOCKS : 1];
    if (MS_SECURE)
        for (unsigned i = 0; i < batch; i++) {
            unsigned j = ms_secure_random_below(i + 1);
            order[i] = order[j];
            order[j] = i;
        }
    block_t *tail = span->free; /* normally NULL: carving happens when free is empty */
    for (unsigned i = batch; i-- > 0;) {
        block_t *b = (block_t *)(first + (size_t)(MS_SECURE ? order[i] : i) * block_size);
        if (MS_SECURE)
            ms_secure_poison(b, block_size);
        b->next = ms_link_code(tail, b);
        b->freed_mark = (uintptr_t)span;
        tail = b;
    }
    return tail;
}

unsigned ms_span_carve(segment_t *segment, span_t *span) {
    size_t span_bytes = capacity(segment, span);
    unsigned left = (unsigned)((span_bytes - span->carved_end) / span->block_size);
    /* Carving writes a link into every block of the batch. Into fresh
     * pages (a span never carved whole), carve the blocks that start in the
     * page where carving stands, no further: what a class carved and never
     * handed out then stays under a page, where batches doubling to 16 KiB
     * left half a batch on average in every class that stopped growing
     * (bench/threads: about 60 KiB per thread over the 16 classes it
     * uses). One slow path per page costs little beside faulting the page
     * in. The hardened build keeps full batches to shuffle. */
    size_t size = span->block_size;
    unsigned batch;
    if (span->whole)
        batch = (unsigned)(WHOLE_CARVE_BYTES / size);
    else if (!MS_SECURE)
        batch = (unsigned)((MS_OS_PAGE - (span->carved_end & (MS_OS_PAGE - 1)) + size - 1) / size);
    else
        batch = (unsigned)(CARVE_BYTES / size);
    if (batch == 0)
        batch = 1;
    if (batch > CARVE_MAX_BLOCKS)
        batch = CARVE_MAX_BLOCKS;
    if (batch > left)
        batch = left;
    if (batch == 0)
        return 0;
    char *first = ms_span_start(segment, span) + span->carved_end;
    span->free = thread_batch(first, batch, span->block_size, span);
    span->carved_end += batch * span->block_size;
    span->carved_limit += batch * (uint64_t)(span->block_size * span->block_magic);
    return batch;
}

bool ms_span_has_hole(const span_t *span, const block_t *block) {
    for (const block_t *b = span->free; b; b = ms_link_code(b->next, b))
        if (b == block)
            return true;
    return false;
}

void ms_span_trim_block(void *block, size_t block_size, size_t size) {
    uintptr_t from = ((uintptr_t)block + size + MS_OS_PAGE - 1) & ~(uintptr_t)(MS_OS_PAGE - 1);
    uintptr_t to = ((uintptr_t)block + block_size) & ~(uintptr_t)(MS_OS_PAGE - 1);
    if (from < to)
        ms_os_purge((void *)from, to - from);
}

/* ---- the pages inside holes ----
 *
 * A hole keeps its link and freed mark (and the hardened build's poison,
 * checked when it goes out again) in its first bytes; past them a word
 * records what the collections did with the hole. The pages past that
 * word's page are unused until the block goes out again, and then read as
 * zero, which calloc wants anyway. Only this file writes the word; a live
 * block that happens to hold the "purged" value keeps its pages, which
 * costs memory, never correctness. The value depends on the hole's address
 * and size, so a block of another class laid over an old hole does not
 * inherit its mark. */
#define HOLE_MARK_AT (sizeof(block_t) + (MS_SECURE ? MS_SECURE_POISON_MAX : 0))
#define HOLE_SEEN 0x5ee1c0ffee5ee1c1ull
#define HOLE_PURGED 0x9b1d0dd5a5a5e11dull

static uintptr_t hole_mark(const block_t *hole, size_t block_size, uint64_t state) {
    return ((uintptr_t)hole ^ state) * 0x9e3779b97f4a7c15ull + block_size;
}

size_t ms_span_purge_holes(segment_t *segment, span_t *span, bool everything,
                           ms_hole_budget_t *budget) {
    size_t block_size = span->block_size, purged = 0;
    for (block_t *hole = span->free; hole && budget->visits && budget->purges;
         hole = ms_link_code(hole->next, hole)) {
        /* A corrupted link is left for malloc to report (heap.c:next_hole);
         * never write through it. */
        if (!ms_span_is_block_start(segment, span, hole))
            break;
        budget->visits--;
        uintptr_t *mark = (uintptr_t *)((char *)hole + HOLE_MARK_AT);
        uintptr_t from = ((uintptr_t)(mark + 1) + MS_OS_PAGE - 1) & ~(uintptr_t)(MS_OS_PAGE - 1);
        uintptr_t to = ((uintptr_t)hole + block_size) & ~(uintptr_t)(MS_OS_PAGE - 1);
        if (from >= to || *mark == hole_mark(hole, block_size, HOLE_PURGED))
            continue;
        if (!everything && *mark != hole_mark(hole, block_size, HOLE_SEEN)) {
            *mark = hole_mark(hole, block_size, HOLE_SEEN);
            continue;
        }
        ms_os_purge((void *)from, to - from);
        *mark = hole_mark(hole, block_size, HOLE_PURGED);
        budget->purges--;
        purged += to - from;
    }
    if (purged)
        ms_stats_add(MS_STAT_hole_bytes_purged, (int64_t)purged);
    return purged;
}
