#include "usage.h"
#include "explicit_heap.h"
#include "heap.h"
#include "large.h"
#include "secure.h"
#include "segment.h"
#include "span.h"
#include "stats.h"

typedef struct {
    uintptr_t start;
    size_t bytes, block_size, carved, used; /* carved, used: blocks */
    unsigned slices;
} span_reading_t;

/* Reads the span headed at segment->spans[first], clamped so that the
 * figures are consistent with each other and with the slices the span
 * claims, whatever a racing owner is doing. false: no span starts here. */
static bool read_span(segment_t *segment, unsigned first, span_reading_t *r) {
    span_t *span = &segment->spans[first];
    size_t block_size = MS_PEEK(span->block_size);
    unsigned slices = MS_PEEK(span->slice_count);
    if (block_size == 0 || MS_PEEK(span->head_delta) != 0)
        return false;
    if (slices == 0 || slices > MS_SLICES_PER_SEGMENT - first)
        slices = 1;
    r->start = (uintptr_t)ms_segment_slice_base(segment, span);
    r->bytes = ms_segment_room(first, slices);
    r->slices = slices;
    r->block_size = block_size;
    size_t carved_end = MS_PEEK(span->carved_end);
    r->carved = (carved_end < r->bytes ? carved_end : r->bytes) / block_size;
    size_t used = MS_PEEK(span->used);
    r->used = used < r->carved ? used : r->carved;
    return true;
}

static void add_small(ms_usage_t *u, segment_t *segment) {
    u->small_segments++;
    u->small_mapped += MS_SEGMENT_SIZE;
    /* The header's slice, and the hardened build's guard at the end. */
    u->overhead_segments += MS_SEGMENT_SIZE - ms_segment_room(1, MS_SLICES_PER_SEGMENT - 1);
    for (unsigned i = 1; i < MS_SLICES_PER_SEGMENT;) {
        span_reading_t r;
        if (!read_span(segment, i, &r)) {
            u->free_slices += ms_segment_room(i, 1);
            i++;
            continue;
        }
        ms_class_usage_t *c = &u->classes[ms_size_class_of(r.block_size) % MS_CLASS_COUNT];
        c->spans++;
        c->blocks_in_use += r.used;
        c->blocks_free += r.carved - r.used;
        c->bytes_uncarved += r.bytes - r.carved * r.block_size;
        u->small_in_use += r.used * r.block_size;
        u->free_holes += (r.carved - r.used) * r.block_size;
        u->free_uncarved += r.bytes - r.carved * r.block_size;
        u->holes += r.carved - r.used;
        i += r.slices;
    }
}

static void add_segment(segment_t *segment, void *arg) {
    ms_usage_t *u = arg;
    if (segment->kind != SEGMENT_LARGE) {
        add_small(u, segment);
        return;
    }
    size_t mapped = MS_PEEK(segment->mapped_size);
    size_t header = (size_t)((char *)segment->large_block - (char *)segment);
    if (header > mapped)
        header = mapped;
    /* The hardened build's slack past the request is overhead, as its
     * guard pages are: in use is what malloc_usable_size says. */
    /* A tail on loan (past the limit) is still the cache's memory. */
    size_t limit = MS_PEEK(segment->large_limit);
    if (limit < mapped && limit >= header) {
        u->free_cached += mapped - limit;
        mapped = limit;
    }
    size_t in_use = mapped - header, requested = MS_PEEK(segment->large_requested);
    if (MS_SECURE && requested <= in_use)
        in_use = requested;
    u->large_blocks++;
    u->large_mapped += mapped;
    u->large_in_use += in_use;
    u->overhead_large += mapped - in_use;
}

static void count_heap(heap_t *heap, void *arg) { ++*(size_t *)arg; }

void ms_usage_collect(ms_usage_t *out) {
    *out = (ms_usage_t){0};
    ms_segment_chain_walk(add_segment, out);
    ms_heap_walk(count_heap, &out->heaps);
    out->heaps += ms_explicit_heap_count();
    ms_stats_t stats;
    ms_stats_read(&stats);
    out->free_cached += stats.large_cached; /* with the tails on loan, from the walk */
    out->overhead_heaps = out->heaps * MS_HEAP_MAPPED_SIZE;

    out->in_use = out->small_in_use + out->large_in_use;
    out->free = out->free_holes + out->free_uncarved + out->free_slices + out->free_cached;
    out->overhead = out->overhead_segments + out->overhead_large + out->overhead_heaps;
    out->mapped = out->small_mapped + out->large_mapped + out->overhead_heaps + out->free_cached;
}

/* ---- the region view ---- */

typedef struct {
    ms_region_view_t *out;
    size_t max, count;
} view_walk_t;

/* Appends n blocks in state; a run past the kept ones is only counted. */
static void run_add(ms_span_view_t *v, uint32_t *last, uint32_t state, uint32_t n) {
    if (n == 0)
        return;
    if (v->run_count && *last == state) {
        if (v->run_count <= MS_VIEW_RUNS_MAX)
            v->runs[v->run_count - 1].blocks += n;
        return;
    }
    *last = state;
    if (v->run_count < MS_VIEW_RUNS_MAX)
        v->runs[v->run_count] = (ms_run_t){state, n};
    v->run_count++;
}

static void view_span(segment_t *segment, const span_reading_t *r, ms_span_view_t *v) {
    const span_t *head = ms_segment_slice_of(segment, (const void *)r->start);
    *v = (ms_span_view_t){.start = r->start, .bytes = r->bytes,
                          .block_size = (uint32_t)r->block_size,
                          .size_class = ms_size_class_of(r->block_size)};
    uint32_t last = 0;
    for (size_t k = 0; k < r->carved; k++) {
        block_t *block = (block_t *)(r->start + k * r->block_size);
        bool hole = ms_span_block_free(segment, head, block);
        hole ? v->holes++ : v->in_use++;
        run_add(v, &last, hole ? MS_RUN_HOLE : MS_RUN_IN_USE, 1);
    }
    v->uncarved = (uint32_t)((r->bytes - r->carved * r->block_size) / r->block_size);
    run_add(v, &last, MS_RUN_UNCARVED, v->uncarved);
}

static void view_segment(segment_t *segment, void *arg) {
    view_walk_t *walk = arg;
    if (walk->count++ >= walk->max)
        return;
    ms_region_view_t *v = &walk->out[walk->count - 1];
    *v = (ms_region_view_t){.base = (uintptr_t)segment, .size = MS_PEEK(segment->mapped_size),
                            .kind = segment->kind};
    if (segment->kind == SEGMENT_LARGE) {
        v->heap = MS_PEEK(segment->heap); /* an explicit heap's, or NULL */
        v->block = (uintptr_t)segment->large_block;
        v->block_size = v->base + v->size > v->block ? v->base + v->size - v->block : 0;
        return;
    }
    v->heap = MS_PEEK(segment->heap);
    for (unsigned i = 1; i < MS_SLICES_PER_SEGMENT;) {
        span_reading_t r;
        if (!read_span(segment, i, &r)) {
            v->free_slices++;
            i++;
            continue;
        }
        if (v->span_count < MS_VIEW_SPANS_MAX)
            view_span(segment, &r, &v->spans[v->span_count]);
        v->span_count++;
        i += r.slices;
    }
}

size_t ms_usage_regions(ms_region_view_t *out, size_t max) {
    view_walk_t walk = {out, max, 0};
    ms_segment_chain_walk(view_segment, &walk);
    return walk.count;
}
