/* Process-wide counters, declared once: the X-macro makes the struct, the
 * reader and the printer. Only slow paths touch them (relaxed atomics). */
#ifndef MS_STATS_H
#define MS_STATS_H
#include <stddef.h>
#include <stdint.h>
#include "types.h"

#define MS_STATS_LIST(X)                                                        \
    X(os_maps, "mappings made (mmap)")                                          \
    X(os_unmaps, "mappings released (munmap)")                                  \
    X(bytes_mapped, "bytes mapped now")                                         \
    X(bytes_mapped_peak, "most bytes mapped at once")                           \
    X(bytes_purged, "bytes handed back with madvise")                           \
    X(hole_bytes_purged, "of those, pages of holes in spans in use")            \
    X(bytes_populated, "bytes faulted in ahead of use (huge pages where given)") \
    X(segments, "small segments live")                                          \
    X(large_blocks, "large blocks live")                                        \
    X(large_allocs, "large blocks allocated")                                   \
    X(large_remaps, "large blocks resized with mremap")                         \
    X(large_cached, "bytes of freed large blocks kept mapped for reuse")        \
    X(large_reused, "large blocks served from that cache")                      \
    X(spans_created, "spans carved from segments")                              \
    X(heaps, "thread heaps created")                                            \
    X(heaps_adopted, "heaps taken over from exited threads")                    \
    X(remote_frees, "blocks freed by another thread, taken back by the owner")

/* Calls to the allocation API, counted only while every call is observed
 * (interpose/observe.c); each heap keeps its own (heap_t.calls) so counting
 * threads share no cache line. "malloc" is every call that returns a new
 * block (calloc, memalign, operator new...), "realloc" every realloc of a
 * live block to a non-zero size. */
#define MS_CALLS_LIST(X)                                                        \
    X(malloc, "blocks allocated by any entry point")                           \
    X(free, "blocks freed")                                                    \
    X(realloc, "blocks resized by realloc")

enum ms_call {
#define MS_CALLS_ENUM(name, help) MS_CALL_##name,
    MS_CALLS_LIST(MS_CALLS_ENUM)
#undef MS_CALLS_ENUM
    MS_CALL_COUNT
};

typedef struct {
#define MS_STATS_FIELD(name, help) uint64_t name;
    MS_STATS_LIST(MS_STATS_FIELD)
#undef MS_STATS_FIELD
} ms_stats_t;

enum ms_stat {
#define MS_STATS_ENUM(name, help) MS_STAT_##name,
    MS_STATS_LIST(MS_STATS_ENUM)
#undef MS_STATS_ENUM
    MS_STAT_COUNT
};

void ms_stats_add(enum ms_stat which, int64_t delta) MS_HIDDEN;
void ms_stats_mapped(ptrdiff_t delta) MS_HIDDEN;
void ms_stats_purged(size_t bytes) MS_HIDDEN;
void ms_stats_read(ms_stats_t *out) MS_HIDDEN;
/* One "mspace: <name> <value>" line per counter, to fd; allocates nothing. */
void ms_stats_write(int fd) MS_HIDDEN;

#endif
