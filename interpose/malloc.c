/* The exported C allocation API. malloc and free are the core fast paths
 * plus one call to a slow path that handles everything else: the guard and
 * bootstrap arena, thread set-up, large and aligned blocks, misuse. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
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
#include "bootstrap.h"
#include "guard.h"
#include "init.h"
#include "introspect.h"
#include "mspace.h"
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
    if (total > MS_MEDIUM_MAX && !ms_guard_active()) {
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

/* The glibc reporting functions tell the same truth as mspace_stats_get,
 * mapped onto glibc's fields:
 *   arena + hblkhd = mapped, hblkhd = bytes of large-block regions,
 *   uordblks = in use (large blocks included), fordblks = free,
 *   ordblks = free blocks (holes), hblks = large blocks,
 *   keepcost = what malloc_trim could give back (free slices, cached large
 *   blocks), usmblks = the most bytes mapped at once;
 * the overhead (mapped - uordblks - fordblks) has no field of its own. */
static struct mallinfo2 info_from(const mspace_stats *s) {
    size_t holes = 0;
    for (unsigned c = 0; c < s->class_count; c++)
        holes += s->classes[c].blocks_free;
    struct mallinfo2 info = {0};
    info.hblks = s->large_blocks;
    info.hblkhd = s->large_mapped;
    info.arena = s->mapped - s->large_mapped;
    info.ordblks = holes;
    info.uordblks = s->in_use;
    info.fordblks = s->free;
    info.keepcost = s->free_slices + s->free_cached;
    info.usmblks = s->mapped_peak;
    return info;
}

EXPORT struct mallinfo2 mallinfo2(void) {
    mspace_stats s = mspace_stats_get();
    return info_from(&s);
}

/* The old int fields saturate rather than wrap past 2 GiB. */
static int narrow(size_t n) { return n > INT_MAX ? INT_MAX : (int)n; }

EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 wide = mallinfo2();
    struct mallinfo info = {
        .arena = narrow(wide.arena), .ordblks = narrow(wide.ordblks), .hblks = narrow(wide.hblks),
        .hblkhd = narrow(wide.hblkhd), .usmblks = narrow(wide.usmblks),
        .uordblks = narrow(wide.uordblks), .fordblks = narrow(wide.fordblks),
        .keepcost = narrow(wide.keepcost),
    };
    return info;
}

static void write_line(int fd, const char *label, uint64_t value) {
    ms_text_t t = {.len = 0};
    ms_text_str(&t, label);
    for (uint64_t v = value, digits = 1; digits < 10; digits++, v /= 10)
        if (v < 10)
            ms_text_str(&t, " "); /* glibc's %10u */
    ms_text_dec(&t, value);
    ms_text_str(&t, "\n");
    ms_host_write(fd, t.buf, t.len);
}

/* glibc's layout (one arena: all of mspace), then mspace's own report. */
EXPORT void malloc_stats(void) {
    mspace_stats s = mspace_stats_get();
    struct mallinfo2 info = info_from(&s);
    ms_host_write(2, "Arena 0:\n", 9);
    write_line(2, "system bytes     = ", info.arena);
    write_line(2, "in use bytes     = ", info.uordblks - s.large_bytes);
    write_line(2, "Total (incl. mmap):\nsystem bytes     = ", s.mapped);
    write_line(2, "in use bytes     = ", s.in_use);
    write_line(2, "max mmap regions = ", s.large_blocks);
    write_line(2, "max mmap bytes   = ", s.large_mapped);
    ms_introspect_write(2, 0);
}

/* glibc's XML: <sizes> lists the free blocks of each size class, "rest"
 * every free byte (holes, uncarved, free slices, cached large blocks),
 * "mmap" the large blocks, "current" all that is mapped. */
EXPORT int malloc_info(int options, FILE *out) {
    if (options != 0 || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    mspace_stats s = mspace_stats_get();
    size_t holes = 0;
    fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", out);
    for (unsigned c = 0; c < s.class_count; c++) {
        const mspace_class_stats *k = &s.classes[c];
        holes += k->blocks_free;
        if (k->blocks_free)
            fprintf(out, "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n",
                    c ? s.classes[c - 1].block_size + 1 : 1, k->block_size,
                    k->blocks_free * k->block_size, k->blocks_free);
    }
    for (int part = 0; part < 2; part++) { /* the heap, then the totals */
        fprintf(out,
                "%s<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n",
                part ? "" : "</sizes>\n", holes, s.free);
        if (part)
            fprintf(out, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", s.large_blocks,
                    s.large_mapped);
        fprintf(out,
                "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
                "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
                "%s",
                part ? s.mapped : s.mapped - s.large_mapped, s.mapped_peak,
                part ? s.mapped : s.mapped - s.large_mapped,
                part ? s.mapped : s.mapped - s.large_mapped, part ? "</malloc>\n" : "</heap>\n");
    }
    return ferror(out) ? -1 : 0;
}
