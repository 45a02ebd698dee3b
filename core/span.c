#include "span.h"
#include <stdbool.h>
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

/* Carve about 16 KiB at a time: enough to amortise this slow path over many
 * mallocs, little enough that a program using a few blocks of a class does
 * not fault in a whole span (and less at first, see ms_span_carve). */
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
     * pages (a span never carved whole), start with one page's worth and
     * double: a class the program uses for a block or two costs one page,
     * not four. The hardened build keeps full batches to shuffle. */
    size_t bytes = CARVE_BYTES;
    if (span->whole)
        bytes = WHOLE_CARVE_BYTES;
    else if (!MS_SECURE && span->carved_end < CARVE_BYTES)
        bytes = span->carved_end > MS_OS_PAGE ? span->carved_end : MS_OS_PAGE;
    unsigned batch = (unsigned)(bytes / span->block_size);
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
