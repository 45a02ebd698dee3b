#include "usage.h"
#include "segment.h"

static void add_segment(segment_t *segment, void *arg) {
    ms_usage_t *usage = arg;
    if (segment->kind == SEGMENT_LARGE) {
        usage->large_blocks++;
        usage->large_mapped += segment->mapped_size;
        return;
    }
    usage->small_segments++;
    usage->small_mapped += segment->mapped_size;
    for (unsigned i = 1; i < MS_SLICES_PER_SEGMENT; i++) {
        const span_t *span = &segment->spans[i];
        if (span->block_size)
            usage->small_in_use += (size_t)span->used * span->block_size;
    }
}

void ms_usage_collect(ms_usage_t *out) {
    *out = (ms_usage_t){0};
    ms_segment_chain_walk(add_segment, out);
}
