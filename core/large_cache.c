#include "large_cache.h"
#include "host.h"
#include "os.h"
#include "stats.h"

#define ENTRIES 16
#define BYTES_MAX ((size_t)64 << 20)
#define KEEP_MS 100

typedef struct {
    segment_t *segment;
    uint64_t since_ms;
} entry_t;

ms_lock_t ms_large_cache_lock = MS_LOCK_INIT;
static entry_t entries[ENTRIES];
static unsigned count;
static size_t bytes;

static void remove_at(unsigned i, segment_t **out) {
    *out = entries[i].segment;
    bytes -= entries[i].segment->mapped_size;
    entries[i] = entries[--count];
}

static void unmap_all(segment_t **victims, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        ms_stats_add(MS_STAT_large_cached, -(int64_t)victims[i]->mapped_size);
        ms_os_unmap(victims[i], victims[i]->mapped_size);
    }
}

void ms_large_cache_put(segment_t *segment) {
    size_t size = segment->mapped_size;
    if (size > BYTES_MAX / 4) {
        ms_os_unmap(segment, size);
        return;
    }
    segment_t *victims[ENTRIES];
    unsigned n = 0;
    uint64_t now = ms_host_now_ms();
    ms_lock(&ms_large_cache_lock);
    /* Make room by dropping the oldest entries. */
    while (count == ENTRIES || bytes + size > BYTES_MAX) {
        unsigned oldest = 0;
        for (unsigned i = 1; i < count; i++)
            if (entries[i].since_ms < entries[oldest].since_ms)
                oldest = i;
        remove_at(oldest, &victims[n++]);
    }
    entries[count++] = (entry_t){segment, now};
    bytes += size;
    ms_unlock(&ms_large_cache_lock);
    ms_stats_add(MS_STAT_large_cached, (int64_t)size);
    unmap_all(victims, n); /* no system call under the lock */
}

segment_t *ms_large_cache_take(size_t mapped) {
    segment_t *found = NULL;
    ms_lock(&ms_large_cache_lock);
    unsigned best = ENTRIES;
    for (unsigned i = 0; i < count; i++) {
        size_t size = entries[i].segment->mapped_size;
        /* Reuse at most half again the size: the rest is trimmed, and a
         * much bigger block is worth keeping for a bigger request. */
        if (size >= mapped && size - mapped <= mapped / 2 &&
            (best == ENTRIES || size < entries[best].segment->mapped_size))
            best = i;
    }
    if (best < ENTRIES)
        remove_at(best, &found);
    ms_unlock(&ms_large_cache_lock);
    if (found)
        ms_stats_add(MS_STAT_large_cached, -(int64_t)found->mapped_size);
    return found;
}

size_t ms_large_cache_collect(bool all) {
    segment_t *victims[ENTRIES];
    unsigned n = 0;
    size_t released = 0;
    uint64_t now = ms_host_now_ms();
    ms_lock(&ms_large_cache_lock);
    for (unsigned i = 0; i < count;) {
        if (all || now - entries[i].since_ms >= KEEP_MS) {
            released += entries[i].segment->mapped_size;
            remove_at(i, &victims[n++]);
        } else {
            i++;
        }
    }
    ms_unlock(&ms_large_cache_lock);
    unmap_all(victims, n);
    return released;
}
