/* Explicit heaps: heaps a program makes and destroys itself (MeMS's
 * mems_init and mems_finish, one per use instead of one per process).
 * Any thread may use one; every call holds the heap's lock. The heap knows
 * all its memory: its small segments, like a thread heap, and its large
 * blocks, on a list of their own, so destroying it unmaps everything at
 * once, whatever the program still holds there. Its spans have local_key 0,
 * so free() from any thread takes the slow path, which takes the lock. An
 * explicit heap is never pooled, adopted, or touched by thread exit. */
#ifndef MS_EXPLICIT_HEAP_H
#define MS_EXPLICIT_HEAP_H
#include <stddef.h>
#include "heap.h"
#include "segment.h"
#include "size_class.h"
#include "types.h"

/* A new, empty explicit heap; NULL with errno ENOMEM. */
heap_t *ms_explicit_heap_create(void) MS_HIDDEN;
/* Unmaps every segment and large block of heap, and heap itself. No other
 * call on heap may run at the same time or come after. If live is not NULL
 * it is first called for every block still in use (for observers), with no
 * lock held, so it may allocate and take its own locks. */
void ms_explicit_heap_destroy(heap_t *heap, void (*live)(void *block, void *arg),
                              void *arg) MS_HIDDEN;

/* A large block just allocated for heap joins its list. The inline form is
 * for any heap and any result (NULL included), and returns it. */
void ms_explicit_heap_adopt_large(heap_t *heap, segment_t *segment) MS_HIDDEN;
static inline void *ms_explicit_heap_track(heap_t *heap, void *large_block) {
    if (MS_UNLIKELY(heap->is_explicit) && large_block)
        ms_explicit_heap_adopt_large(heap, ms_segment_of(large_block));
    return large_block;
}
/* A large segment leaves its explicit heap's list (segment->heap is set):
 * freed, or about to move. */
void ms_explicit_heap_forget_large(segment_t *segment) MS_HIDDEN;

/* The heap a block of segment should move within when it is resized: its
 * explicit heap, or else the caller's. */
static inline heap_t *ms_explicit_heap_of(const segment_t *segment, heap_t *fallback) {
    heap_t *owner = segment->heap;
    return owner && owner->is_explicit ? owner : fallback;
}

/* What one explicit heap holds, read under its lock. */
typedef struct {
    size_t segments, small_mapped; /* small segments and the bytes they map */
    size_t small_in_use;           /* live small blocks x their class size */
    size_t large_blocks, large_mapped;
    size_t blocks[MS_CLASS_COUNT]; /* live small blocks of each class */
} ms_explicit_heap_usage_t;
void ms_explicit_heap_usage(heap_t *heap, ms_explicit_heap_usage_t *out) MS_HIDDEN;

/* Explicit heaps alive now (each maps MS_HEAP_MAPPED_SIZE bytes). */
size_t ms_explicit_heap_count(void) MS_HIDDEN;

/* malloc_trim: ms_heap_collect on every explicit heap. Bytes released. */
size_t ms_explicit_heap_trim_all(void) MS_HIDDEN;

/* fork(): every explicit heap's lock is held across it (taken before the
 * thread heaps' locks); the child keeps the heaps with their locks free. */
void ms_explicit_heap_fork_prepare(void) MS_HIDDEN;
void ms_explicit_heap_fork_parent(void) MS_HIDDEN;
void ms_explicit_heap_fork_child(void) MS_HIDDEN;

#endif
