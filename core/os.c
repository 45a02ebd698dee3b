#define _GNU_SOURCE
#include "os.h"
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include "stats.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

size_t ms_os_page_size(void) { return MS_OS_PAGE; }

void *ms_os_map(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    ms_stats_mapped((ptrdiff_t)size);
    return p;
}

/* Over-map by the alignment and trim both ends: two extra munmaps, but the
 * result never depends on where the kernel happens to place mappings. The
 * address `offset` bytes into the result is the aligned one. */
static void *reserve_aligned(size_t size, size_t alignment, size_t offset, int prot) {
    size_t span = size + alignment;
    if (span < size)
        return NULL;
    /* Only a reservation that is never written may skip the commit charge:
     * a usable mapping made with MAP_NORESERVE could later be grown by
     * mremap past what the kernel's overcommit policy allows. */
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (prot == PROT_NONE ? MAP_NORESERVE : 0);
    char *raw = mmap(NULL, span, prot, flags, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *aligned = (char *)(((uintptr_t)raw + offset + alignment - 1) & ~(uintptr_t)(alignment - 1));
    char *base = aligned - offset;
    if (base > raw)
        munmap(raw, (size_t)(base - raw));
    if (base + size < raw + span)
        munmap(base + size, (size_t)(raw + span - (base + size)));
    return base;
}

void *ms_os_map_aligned(size_t size, size_t alignment, size_t offset) {
    void *hint = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (hint != MAP_FAILED && (((uintptr_t)hint + offset) & (alignment - 1)) != 0) {
        munmap(hint, size);
        hint = reserve_aligned(size, alignment, offset, PROT_READ | PROT_WRITE);
    } else if (hint == MAP_FAILED) {
        hint = NULL;
    }
    if (hint == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ms_stats_mapped((ptrdiff_t)size);
    return hint;
}

void ms_os_unmap(void *base, size_t size) {
    munmap(base, size);
    ms_stats_mapped(-(ptrdiff_t)size);
}

void ms_os_purge(void *base, size_t size) {
    madvise(base, size, MADV_DONTNEED);
    ms_stats_purged(size);
}

bool ms_os_resize_in_place(void *base, size_t old_size, size_t new_size) {
    if (mremap(base, old_size, new_size, 0) == MAP_FAILED)
        return false;
    ms_stats_mapped((ptrdiff_t)new_size - (ptrdiff_t)old_size);
    return true;
}

void *ms_os_move_aligned(void *base, size_t old_size, size_t new_size, size_t alignment) {
    void *dest = reserve_aligned(new_size, alignment, 0, PROT_NONE);
    if (dest == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    void *moved = mremap(base, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
    if (moved == MAP_FAILED) {
        munmap(dest, new_size);
        errno = ENOMEM;
        return NULL;
    }
    ms_stats_mapped((ptrdiff_t)new_size - (ptrdiff_t)old_size);
    return moved;
}

bool ms_os_protect_none(void *base, size_t size) { return mprotect(base, size, PROT_NONE) == 0; }

/* Set once the kernel has said it does not know MADV_POPULATE_WRITE (before
 * Linux 5.14): the refusal would come back on every later call. */
static atomic_bool populate_unknown;

bool ms_os_populate_huge(void *base, size_t size) {
    if (atomic_load_explicit(&populate_unknown, memory_order_relaxed))
        return false;
    int saved = errno;
    /* The advice only has to hold while populating: set back to "no huge
     * pages", khugepaged never collapses the range again after a purge has
     * given part of it back. A kernel without THP refuses the advice and
     * populates small pages, which still beats faulting them one by one. */
    madvise(base, size, MADV_HUGEPAGE);
    bool done = madvise(base, size, MADV_POPULATE_WRITE) == 0;
    if (!done && errno == EINVAL)
        atomic_store_explicit(&populate_unknown, true, memory_order_relaxed);
    madvise(base, size, MADV_NOHUGEPAGE);
    errno = saved;
    if (done)
        ms_stats_add(MS_STAT_bytes_populated, (int64_t)size);
    return done;
}
