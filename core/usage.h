/* What the heap holds right now, by walking the segment chain: the figures
 * behind mallinfo2, malloc_stats and malloc_info. Reads other threads' span
 * counters without synchronisation, so a busy heap gives a near snapshot. */
#ifndef MS_USAGE_H
#define MS_USAGE_H
#include <stddef.h>
#include "types.h"

typedef struct {
    size_t small_segments, small_mapped, small_in_use; /* in_use: live blocks x class size */
    size_t large_blocks, large_mapped;
} ms_usage_t;

void ms_usage_collect(ms_usage_t *out) MS_HIDDEN;

#endif
