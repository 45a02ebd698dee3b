#include "segment.h"
#include <stdbool.h>
#include <string.h>
#include "os.h"
#include "secure.h"
#include "stats.h"

uint8_t ms_segment_map[MS_MAP_ENTRIES];
ms_lock_t ms_segment_chain_lock = MS_LOCK_INIT;
static segment_t *chain_head;

static uintptr_t tail_slot(const segment_t *segment) {
    uintptr_t block = (uintptr_t)segment->large_block;
    if (segment->kind == SEGMENT_LARGE && block - (uintptr_t)segment >= MS_SEGMENT_SIZE)
        return block >> MS_SEGMENT_SHIFT;
    return 0;
}

/* Relaxed atomic stores: another thread may test the same byte in free()
 * (the kernel reuses addresses), and only the value itself must be whole. */
static void set_map(const segment_t *segment, uint8_t head, uint8_t tail) {
    __atomic_store_n(&ms_segment_map[(uintptr_t)segment >> MS_SEGMENT_SHIFT], head, __ATOMIC_RELAXED);
    if (tail_slot(segment))
        __atomic_store_n(&ms_segment_map[tail_slot(segment)], tail, __ATOMIC_RELAXED);
}

void ms_segment_register(segment_t *segment) {
    set_map(segment, MS_MAP_SEGMENT, MS_MAP_TAIL);
    ms_lock(&ms_segment_chain_lock);
    segment->chain_prev = NULL;
    segment->chain_next = chain_head;
    if (chain_head)
        chain_head->chain_prev = segment;
    chain_head = segment;
    ms_unlock(&ms_segment_chain_lock);
}

void ms_segment_unregister(segment_t *segment) {
    ms_lock(&ms_segment_chain_lock);
    if (segment->chain_prev)
        segment->chain_prev->chain_next = segment->chain_next;
    else
        chain_head = segment->chain_next;
    if (segment->chain_next)
        segment->chain_next->chain_prev = segment->chain_prev;
    ms_unlock(&ms_segment_chain_lock);
    set_map(segment, MS_MAP_NONE, MS_MAP_NONE);
}

/* The header is zero: every span descriptor says "not in use". */
static segment_t *segment_init(segment_t *segment, heap_t *heap) {
    segment->heap = heap;
    segment->kind = SEGMENT_SMALL;
    segment->mapped_size = MS_SEGMENT_SIZE;
    segment->used_slices = 1;
    if (MS_SECURE) {
        /* A linear overflow out of the previous mapping, or out of the
         * header into the first span, faults instead of corrupting. Best
         * effort: a refused mprotect only loses the guard. */
        ms_os_protect_none((char *)segment + MS_SEGMENT_HEADER_SIZE,
                           MS_SLICE_SIZE - MS_SEGMENT_HEADER_SIZE);
        ms_os_protect_none((char *)segment + MS_SEGMENT_SIZE - MS_SECURE_GUARD, MS_SECURE_GUARD);
    }
    ms_segment_register(segment);
    ms_stats_add(MS_STAT_segments, 1);
    return segment;
}

segment_t *ms_segment_create(heap_t *heap) {
    segment_t *segment = ms_os_map_aligned(MS_SEGMENT_SIZE, MS_SEGMENT_SIZE, 0);
    if (segment == NULL)
        return NULL;
    return segment_init(segment, heap); /* fresh pages are zero */
}

segment_t *ms_segment_recycle(heap_t *heap, segment_t *old) {
    size_t size = old->mapped_size;
    segment_t *segment = old;
    if (size != MS_SEGMENT_SIZE && !ms_os_resize_in_place(old, size, MS_SEGMENT_SIZE))
        segment = ms_os_move_aligned(old, size, MS_SEGMENT_SIZE, MS_SEGMENT_SIZE);
    if (segment == NULL) {
        ms_os_unmap(old, size);
        return NULL;
    }
    memset(segment, 0, MS_SEGMENT_HEADER_SIZE);
    /* The rest of slice 0 never holds blocks; the others keep whatever the
     * old block left resident until a span takes them or a purge. */
    ms_os_purge((char *)segment + MS_SEGMENT_HEADER_SIZE, MS_SLICE_SIZE - MS_SEGMENT_HEADER_SIZE);
    segment = segment_init(segment, heap);
    segment->dirty_slices = ~(uint64_t)1;
    return segment;
}

void ms_segment_destroy(segment_t *segment) {
    ms_segment_unregister(segment);
    if (segment->kind == SEGMENT_SMALL)
        ms_stats_add(MS_STAT_segments, -1);
    ms_os_unmap(segment, segment->mapped_size);
}

static uint64_t run_mask(unsigned count) {
    return count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
}

int ms_segment_take_slices(segment_t *segment, unsigned count) {
    /* Bit i of `starts` survives only if slices i..i+count-1 are all free. */
    uint64_t free_slices = ~segment->used_slices;
    uint64_t starts = free_slices;
    for (unsigned k = 1; k < count && starts; k++)
        starts &= free_slices >> k;
    if (starts == 0)
        return -1;
    unsigned first = (unsigned)__builtin_ctzll(starts);
    segment->used_slices |= run_mask(count) << first;
    segment->aging_slices &= ~(run_mask(count) << first);
    return (int)first;
}

void ms_segment_give_slices(segment_t *segment, unsigned first, unsigned count) {
    uint64_t run = run_mask(count) << first;
    segment->used_slices &= ~run;
    segment->dirty_slices |= run;
}

size_t ms_segment_purge(segment_t *segment, bool everything) {
    uint64_t chosen = segment->dirty_slices & ~segment->used_slices;
    if (!everything)
        chosen &= segment->aging_slices;
    uint64_t dirty = chosen;
    size_t purged = 0;
    while (dirty) {
        unsigned first = (unsigned)__builtin_ctzll(dirty);
        uint64_t rest = ~(dirty >> first);
        unsigned count = rest ? (unsigned)__builtin_ctzll(rest) : 64 - first;
        ms_os_purge((char *)segment + (size_t)first * MS_SLICE_SIZE, (size_t)count * MS_SLICE_SIZE);
        purged += (size_t)count * MS_SLICE_SIZE;
        dirty &= ~(run_mask(count) << first);
    }
    segment->dirty_slices &= ~chosen;
    segment->aging_slices = segment->dirty_slices & ~segment->used_slices;
    return purged;
}

bool ms_segment_populate_upper_half(segment_t *segment) {
    enum { HALF = MS_SLICES_PER_SEGMENT / 2 };
    uint64_t taken = segment->used_slices >> HALF; /* the new span: a run from bit 0 */
    if (MS_SECURE || (taken & 1) == 0 || (taken & (taken + 1)) != 0 ||
        (segment->dirty_slices >> HALF) != 0)
        return false;
    return ms_os_populate_huge((char *)segment + MS_SEGMENT_SIZE / 2, MS_SEGMENT_SIZE / 2);
}

void ms_segment_chain_walk(void (*visit)(segment_t *, void *), void *arg) {
    ms_lock(&ms_segment_chain_lock);
    for (segment_t *s = chain_head; s; s = s->chain_next)
        visit(s, arg);
    ms_unlock(&ms_segment_chain_lock);
}
