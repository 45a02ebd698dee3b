/* Under the chain lock a segment on the map stays mapped (it is taken off
 * the chain, under that lock, before it is unmapped), so reading its header
 * and the second word of its blocks is safe whatever other threads do; a
 * purged slice reads as zero.
 *
 * A block is a hole when its second word holds its span's freed mark. For
 * the caller's own heap that is confirmed by finding the block on the
 * span's free list or the heap's remote list (exact): only the owner pops
 * from them, so the walk cannot race. Other heaps' lists change under our
 * feet, so there the mark alone decides; a live block whose second word
 * happens to equal the mark would be misreported, and no program has a
 * reason to store a pointer into allocator metadata. */
#include "lookup.h"
#include "heap.h"
#include "secure.h"
#include "segment.h"
#include "size_class.h"
#include "span.h"

/* Remote lists can be long; stop before a corrupted one loops us. */
#define REMOTE_WALK_MAX (1u << 20)

/* A link is followed only to the start of a carved block of a span in a
 * mapped segment: memory that is safe to read (never a guard page). */
static bool plausible_hole(const block_t *b) {
    if (!ms_segment_mapped(b))
        return false;
    segment_t *segment = ms_segment_base(b);
    span_t *span = ms_span_head(ms_segment_slice_of(segment, b));
    return span && ms_span_is_block_start(segment, span, b);
}

static bool on_own_lists(heap_t *heap, span_t *span, const block_t *block) {
    size_t capacity = (size_t)span->slice_count * MS_SLICE_SIZE / span->block_size;
    const block_t *b = span->free;
    for (size_t n = 0; b && n <= capacity && plausible_hole(b); n++) {
        if (b == block)
            return true;
        b = ms_link_code(b->next, b);
    }
    b = atomic_load_explicit(&heap->remote_free, memory_order_acquire);
    for (unsigned n = 0; b && n < REMOTE_WALK_MAX && plausible_hole(b); n++) {
        if (b == block)
            return true;
        b = ms_link_code(b->next, b);
    }
    return false;
}

static void lookup_small(segment_t *segment, uintptr_t a, ms_lookup_t *out) {
    span_t *slice = ms_segment_slice_of(segment, (const void *)a);
    if (slice == &segment->spans[0]) {
        out->state = MS_LOOKUP_METADATA;
        return;
    }
    /* Another heap's span may be released or remade under our feet: read
     * its figures once, and never divide by a size that became zero. */
    span_t *span = slice - MS_PEEK(slice->head_delta);
    size_t size = MS_PEEK(span->block_size);
    unsigned slices = MS_PEEK(span->slice_count);
    if (size == 0 || span < &segment->spans[1] || slices == 0 ||
        slices > (unsigned)(&segment->spans[MS_SLICES_PER_SEGMENT] - span)) {
        out->state = MS_LOOKUP_UNCARVED;
        return;
    }
    uintptr_t start = (uintptr_t)ms_span_start(segment, span);
    unsigned first = (unsigned)(span - segment->spans);
    size_t bytes = ms_segment_room(first, slices);
    size_t k = (a - start) / size;
    if ((k + 1) * size > bytes) { /* the tail no block fits in, or a guard page */
        out->state = a - start < bytes ? MS_LOOKUP_UNCARVED : MS_LOOKUP_METADATA;
        return;
    }
    out->block = start + k * size;
    out->block_size = out->requested = size - MS_SECURE_TRAILER;
    out->size_class = (int)ms_size_class_of(size);
    if ((k + 1) * size > MS_PEEK(span->carved_end)) {
        out->state = MS_LOOKUP_UNCARVED;
        return;
    }
    block_t *block = (block_t *)out->block;
    /* A hole on a parked page is not on any list, and its page is gone. */
    bool parked = ms_span_block_parked(segment, span, block);
    bool marked = parked || MS_PEEK(block->freed_mark) == (uintptr_t)span;
    heap_t *mine = ms_heap_tls;
    out->exact = segment->heap == mine && mine != &ms_heap_empty;
    if (marked && !parked && out->exact)
        marked = on_own_lists(mine, span, block);
    out->state = marked ? MS_LOOKUP_FREE : MS_LOOKUP_IN_USE;
    /* The hardened build records the request in the block's trailer, and
     * malloc_usable_size answers with it. */
    if (MS_SECURE && !marked) {
        size_t requested = ms_secure_block_requested(block, size);
        if (requested <= out->block_size)
            out->block_size = out->requested = requested;
    }
}

static void lookup_large(segment_t *segment, uintptr_t a, ms_lookup_t *out) {
    uintptr_t block = (uintptr_t)segment->large_block;
    out->large = true;
    out->exact = true;
    if (a < block) {
        out->state = MS_LOOKUP_METADATA;
        return;
    }
    /* A tail on loan from the large-block cache is not the block's. */
    uintptr_t end = (uintptr_t)segment + MS_PEEK(segment->large_limit);
    out->state = a < end ? MS_LOOKUP_IN_USE : MS_LOOKUP_UNCARVED;
    out->block = block;
    out->block_size = out->requested = end - block;
    /* As for small blocks, the hardened build answers with the request. */
    size_t requested = MS_PEEK(segment->large_requested);
    if (MS_SECURE && requested <= out->block_size)
        out->block_size = out->requested = requested;
}

typedef struct {
    uintptr_t address;
    ms_lookup_t *out;
} search_t;

/* The segment map would find a small segment at once, but only a large
 * block's first 4 MiB are on it, and the walk holds the chain lock while
 * the segment is read (see the top of this file). */
static void search_segment(segment_t *segment, void *arg) {
    search_t *search = arg;
    uintptr_t base = (uintptr_t)segment, a = search->address;
    size_t size = MS_PEEK(segment->mapped_size);
    if (a - base >= size)
        return;
    search->out->region = base;
    search->out->region_size = size;
    if (segment->kind == SEGMENT_LARGE)
        lookup_large(segment, a, search->out);
    else
        lookup_small(segment, a, search->out);
}

bool ms_lookup(const void *p, ms_lookup_t *out) {
    *out = (ms_lookup_t){.state = MS_LOOKUP_FOREIGN, .size_class = -1};
    search_t search = {(uintptr_t)p, out};
    ms_segment_chain_walk(search_segment, &search);
    return out->state != MS_LOOKUP_FOREIGN;
}
