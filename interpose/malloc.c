/* The exported C allocation API. malloc and free are the core fast paths
 * plus one call to a slow path that handles everything else: the guard and
 * bootstrap arena, thread set-up, large and aligned blocks, misuse. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../core/alloc.h"
#include "../core/heap.h"
#include "../core/large.h"
#include "../core/stats.h"
#include "../core/text.h"
#include "../core/usage.h"
#include "bootstrap.h"
#include "guard.h"
#include "init.h"
#include "observe.h"

#define EXPORT __attribute__((visibility("default")))

static MS_NOINLINE void *alloc_slow(size_t size, size_t alignment) {
    if (MS_UNLIKELY(ms_guard_active()))
        return ms_bootstrap_alloc(size, alignment);
    bool temporary;
    heap_t *heap = ms_heap_for_call(&temporary);
    if (heap == NULL)
        return NULL;
    void *p = ms_alloc(heap, size, alignment);
    if (MS_UNLIKELY(ms_observing) && p)
        ms_observe_alloc(p, size);
    ms_heap_return(heap, temporary);
    return p;
}

static MS_NOINLINE void free_slow(void *p, const char *caller) {
    if (p == NULL || ms_bootstrap_owns(p))
        return;
    int saved_errno = errno;
    if (MS_UNLIKELY(ms_observing))
        ms_observe_free(p);
    ms_free(p, caller);
    errno = saved_errno;
}

EXPORT void *malloc(size_t size) {
    void *p = ms_alloc_fast(size);
    if (MS_LIKELY(p != NULL))
        return p;
    return alloc_slow(size, 0);
}

EXPORT void free(void *p) {
    if (MS_LIKELY(ms_free_fast(p)))
        return;
    free_slow(p, "free");
}

EXPORT void *calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (total > MS_SMALL_MAX && !ms_guard_active()) {
        void *p = ms_calloc_large(total);
        if (MS_UNLIKELY(ms_observing) && p)
            ms_observe_alloc(p, total);
        return p;
    }
    void *p = malloc(total);
    /* The bootstrap arena is never reused, so still zero. */
    if (p && !ms_bootstrap_owns(p))
        memset(p, 0, total);
    return p;
}

EXPORT void *realloc(void *p, size_t size) {
    if (p == NULL)
        return malloc(size);
    if (size == 0) { /* glibc: free and return NULL */
        free(p);
        return NULL;
    }
    if (ms_bootstrap_owns(p) || ms_guard_active()) {
        size_t old = ms_bootstrap_owns(p) ? ms_bootstrap_usable(p) : ms_usable_size(p, "realloc");
        void *q = malloc(size);
        if (q) {
            memcpy(q, p, old < size ? old : size);
            free(p);
        }
        return q;
    }
    bool temporary;
    heap_t *heap = ms_heap_for_call(&temporary);
    if (heap == NULL)
        return NULL;
    void *q = ms_realloc(heap, p, size);
    if (MS_UNLIKELY(ms_observing) && q)
        ms_observe_realloc(p, q, size);
    ms_heap_return(heap, temporary);
    return q;
}

EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

static bool power_of_two(size_t n) { return n && (n & (n - 1)) == 0; }

static void *aligned(size_t alignment, size_t size) {
    if (alignment <= MS_ALIGNMENT)
        return malloc(size);
    return alloc_slow(size, alignment);
}

EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || !power_of_two(alignment))
        return EINVAL;
    int saved_errno = errno;
    void *p = aligned(alignment, size);
    if (p == NULL) {
        int error = errno;
        errno = saved_errno;
        return error ? error : ENOMEM;
    }
    *out = p;
    return 0;
}

/* glibc accepts any alignment here and rounds it up to a power of two. */
EXPORT void *memalign(size_t alignment, size_t size) {
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!power_of_two(alignment))
        alignment = alignment <= MS_ALIGNMENT ? MS_ALIGNMENT : (size_t)1 << (64 - __builtin_clzll(alignment));
    return aligned(alignment, size);
}

EXPORT void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

EXPORT void *valloc(size_t size) { return aligned(MS_OS_PAGE, size); }

EXPORT void *pvalloc(size_t size) {
    size_t rounded = (size + MS_OS_PAGE - 1) & ~(size_t)(MS_OS_PAGE - 1);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned(MS_OS_PAGE, rounded ? rounded : MS_OS_PAGE);
}

EXPORT size_t malloc_usable_size(void *p) {
    if (p == NULL)
        return 0;
    if (ms_bootstrap_owns(p))
        return ms_bootstrap_usable(p);
    return ms_usable_size(p, "malloc_usable_size");
}

EXPORT int malloc_trim(size_t pad) { return ms_heap_trim_all() > 0; }

/* glibc's tunables do not apply; accept them so programs carry on. */
EXPORT int mallopt(int param, int value) { return 1; }

EXPORT struct mallinfo2 mallinfo2(void) {
    ms_usage_t usage;
    ms_usage_collect(&usage);
    struct mallinfo2 info = {0};
    info.arena = usage.small_mapped;
    info.ordblks = usage.small_segments;
    info.hblks = usage.large_blocks;
    info.hblkhd = usage.large_mapped;
    info.uordblks = usage.small_in_use + usage.large_mapped;
    info.fordblks = usage.small_mapped - usage.small_in_use;
    return info;
}

EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 wide = mallinfo2();
    struct mallinfo info = {
        .arena = (int)wide.arena, .ordblks = (int)wide.ordblks, .hblks = (int)wide.hblks,
        .hblkhd = (int)wide.hblkhd, .uordblks = (int)wide.uordblks, .fordblks = (int)wide.fordblks,
    };
    return info;
}

static void write_line(int fd, const char *label, uint64_t value) {
    ms_text_t t = {.len = 0};
    ms_text_str(&t, label);
    ms_text_dec(&t, value);
    ms_text_str(&t, "\n");
    ms_host_write(fd, t.buf, t.len);
}

/* glibc's layout of the totals, then mspace's own counters. */
EXPORT void malloc_stats(void) {
    ms_usage_t usage;
    ms_usage_collect(&usage);
    write_line(2, "Total (incl. mmap):\nsystem bytes     = ", usage.small_mapped + usage.large_mapped);
    write_line(2, "in use bytes     = ", usage.small_in_use + usage.large_mapped);
    write_line(2, "max mmap regions = ", usage.large_blocks);
    ms_stats_write(2);
}

EXPORT int malloc_info(int options, FILE *out) {
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    ms_usage_t usage;
    ms_usage_collect(&usage);
    ms_stats_t stats;
    ms_stats_read(&stats);
    fprintf(out,
            "<malloc version=\"1\">\n"
            "<heap nr=\"0\">\n<sizes>\n</sizes>\n"
            "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
            "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
            "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
            "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
            "</heap>\n"
            "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
            "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
            "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
            "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
            "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
            "</malloc>\n",
            usage.small_segments, usage.small_mapped - usage.small_in_use, usage.small_mapped,
            (unsigned long long)stats.bytes_mapped_peak, usage.small_mapped, usage.small_mapped,
            usage.small_segments, usage.small_mapped - usage.small_in_use, usage.large_blocks,
            usage.large_mapped, usage.small_mapped + usage.large_mapped,
            (unsigned long long)stats.bytes_mapped_peak, usage.small_mapped + usage.large_mapped,
            usage.small_mapped + usage.large_mapped);
    return 0;
}
