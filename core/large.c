#include "large.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "explicit_heap.h"
#include "large_cache.h"
#include "os.h"
#include "segment.h"
#include "stats.h"

static size_t page_round(size_t n) { return (n + MS_OS_PAGE - 1) & ~(size_t)(MS_OS_PAGE - 1); }

static void set_mapped(segment_t *segment, size_t mapped) {
    segment->mapped_size = segment->large_limit = mapped;
}

/* The block sits past the header, at the alignment if that is larger. From
 * 4 MiB up the block would be a segment boundary itself, so it goes exactly
 * one segment above the header and the map marks its slot MS_MAP_TAIL. */
static size_t block_offset(size_t alignment) {
    if (alignment >= MS_SEGMENT_SIZE)
        return MS_SEGMENT_SIZE;
    return alignment > MS_SEGMENT_HEADER_SIZE ? alignment : MS_SEGMENT_HEADER_SIZE;
}

/* A cached segment resized to map `mapped` bytes; its resident pages come
 * along, so only the growth faults. NULL (segment unmapped) if it cannot
 * grow. */
static segment_t *fit_cached(segment_t *segment, size_t mapped) {
    size_t old = segment->mapped_size;
    if (old >= mapped) {
        if (old > mapped + mapped / 8 && ms_os_resize_in_place(segment, old, mapped))
            set_mapped(segment, mapped);
        return segment;
    }
    segment_t *grown = segment;
    if (!ms_os_resize_in_place(segment, old, mapped))
        grown = ms_os_move_aligned(segment, old, mapped, MS_SEGMENT_SIZE);
    if (grown == NULL) {
        ms_os_unmap(segment, old);
        return NULL;
    }
    set_mapped(grown, mapped);
    grown->large_block = (char *)grown + MS_SEGMENT_HEADER_SIZE;
    return grown;
}

/* A growing block borrows the rest of a much bigger mapping rather than
 * trimming it (see ms_large_cache_lend). */
static void *take_cached(size_t mapped, size_t size, bool zero, bool growing) {
    segment_t *segment = ms_large_cache_take(mapped);
    if (segment == NULL)
        return NULL;
    bool borrow = growing && segment->mapped_size > mapped + mapped / 8;
    if (!(borrow && ms_large_cache_lend(segment, mapped)) &&
        (segment = fit_cached(segment, mapped)) == NULL)
        return NULL;
    ms_segment_register(segment);
    ms_stats_add(MS_STAT_large_blocks, 1);
    ms_stats_add(MS_STAT_large_allocs, 1);
    ms_stats_add(MS_STAT_large_reused, 1);
    if (zero) /* its pages are resident and dirty, unlike fresh ones */
        memset(segment->large_block, 0, size);
    return segment->large_block;
}

void *ms_large_alloc(size_t size, size_t alignment, bool zero, bool growing) {
    size_t offset = block_offset(alignment);
    if (alignment > ((size_t)1 << (MS_ADDRESS_BITS - 2)) ||
        size > (size_t)PTRDIFF_MAX - offset - alignment - MS_SEGMENT_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t mapped = page_round(offset + size);
    if (offset == MS_SEGMENT_HEADER_SIZE) { /* cached blocks all have this layout */
        void *block = take_cached(mapped, size, zero, growing);
        if (block)
            return block;
    }
    segment_t *segment = alignment >= MS_SEGMENT_SIZE
                             ? ms_os_map_aligned(mapped, alignment, offset)
                             : ms_os_map_aligned(mapped, MS_SEGMENT_SIZE, 0);
    if (segment == NULL)
        return NULL;
    /* The span descriptors stay zero, so free()'s fast path never accepts an
     * address here and the slow path checks it against large_block. */
    segment->kind = SEGMENT_LARGE;
    set_mapped(segment, mapped);
    segment->large_block = (char *)segment + offset;
    ms_segment_register(segment);
    ms_stats_add(MS_STAT_large_blocks, 1);
    ms_stats_add(MS_STAT_large_allocs, 1);
    return segment->large_block;
}

void ms_large_free(segment_t *segment) {
    if (ms_large_on_loan(segment))
        ms_large_cache_loan_end(segment);
    if (segment->heap)
        ms_explicit_heap_forget_large(segment);
    if ((char *)segment->large_block - (char *)segment != (ptrdiff_t)MS_SEGMENT_HEADER_SIZE) {
        ms_large_discard(segment);
        return;
    }
    ms_stats_add(MS_STAT_large_blocks, -1);
    ms_segment_unregister(segment);
    ms_large_cache_put(segment);
}

void ms_large_discard(segment_t *segment) {
    if (ms_large_on_loan(segment))
        ms_large_cache_loan_end(segment);
    ms_stats_add(MS_STAT_large_blocks, -1);
    ms_segment_unregister(segment);
    ms_os_unmap(segment, segment->mapped_size);
}

void *ms_large_resize(segment_t *segment, size_t size) {
    size_t offset = (size_t)((char *)segment->large_block - (char *)segment);
    if (size > (size_t)PTRDIFF_MAX - offset - MS_SEGMENT_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t mapped = page_round(offset + size);
    /* Growth within a loan is free. Past it, the loan ends first: the
     * collector could otherwise unmap the tail under the resize. */
    size_t loan_limit = 0;
    if (ms_large_on_loan(segment)) {
        if (mapped >= segment->large_limit && ms_large_cache_loan_extend(segment, mapped))
            return segment->large_block;
        loan_limit = segment->large_limit;
        ms_large_cache_loan_end(segment);
    }
    size_t old_mapped = segment->mapped_size;
    /* Already big enough, and not so much bigger that shrinking would pay:
     * keeps the slack left by an earlier move for the next growth step. */
    if (mapped <= old_mapped && old_mapped - mapped <= old_mapped / 8)
        return segment->large_block;
    ms_stats_add(MS_STAT_large_remaps, 1);
    /* A buffer that grows a little at a time would cost a system call per
     * step: grow by an eighth more than asked. The extra is address space
     * only until the program writes there. */
    if (mapped > old_mapped) {
        size_t roomy = mapped + page_round(mapped / 8);
        if (ms_os_resize_in_place(segment, old_mapped, roomy)) {
            set_mapped(segment, roomy);
            return segment->large_block;
        }
    }
    if (ms_os_resize_in_place(segment, old_mapped, mapped)) {
        set_mapped(segment, mapped);
        return segment->large_block;
    }
    if (mapped > old_mapped) /* moving costs several system calls: room too */
        mapped += page_round(mapped / 8);
    /* An explicit heap's list is linked through the header, which moves. */
    heap_t *owner = segment->heap;
    if (owner)
        ms_explicit_heap_forget_large(segment);
    ms_segment_unregister(segment);
    segment_t *moved = ms_os_move_aligned(segment, old_mapped, mapped, MS_SEGMENT_SIZE);
    if (moved) {
        set_mapped(moved, mapped);
        moved->large_block = (char *)moved + offset;
    }
    segment_t *now = moved ? moved : segment; /* a failed move leaves it as it was */
    ms_segment_register(now);
    if (owner)
        ms_explicit_heap_adopt_large(owner, now);
    if (moved == NULL && loan_limit != 0 && old_mapped > loan_limit) {
        /* Failed realloc leaves the block as it was, usable size included:
         * the tail goes, as when the collector ends a loan. */
        ms_os_unmap((char *)segment + loan_limit, old_mapped - loan_limit);
        set_mapped(segment, loan_limit);
    }
    return moved ? moved->large_block : NULL;
}
