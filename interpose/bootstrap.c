#include "bootstrap.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#define ARENA_SIZE (256 * 1024)
#define HEADER 16 /* the block's usable size, just before it */

static _Alignas(4096) char arena[ARENA_SIZE];
static _Atomic size_t arena_used;

void *ms_bootstrap_alloc(size_t size, size_t alignment) {
    if (alignment < 16)
        alignment = 16;
    if (size > ARENA_SIZE || alignment > ARENA_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + 15) & ~(size_t)15;
    size_t start = atomic_load_explicit(&arena_used, memory_order_relaxed), block, end;
    do {
        block = (start + HEADER + alignment - 1) & ~(alignment - 1);
        end = block + rounded;
        if (end > ARENA_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
    } while (!atomic_compare_exchange_weak_explicit(&arena_used, &start, end,
                                                    memory_order_relaxed, memory_order_relaxed));
    *(size_t *)(arena + block - HEADER) = rounded;
    return arena + block; /* never handed out before, so still zero */
}

bool ms_bootstrap_owns(const void *p) {
    return (uintptr_t)p - (uintptr_t)arena < ARENA_SIZE;
}

size_t ms_bootstrap_usable(const void *p) { return *(const size_t *)((const char *)p - HEADER); }

/* Blocks lie in address order, each after its size word; the padding that
 * alignment leaves before a size word was never written, so it reads zero.
 * A zero-size block looks like padding, and nothing can point into it. */
bool ms_bootstrap_find(const void *p, void **block, size_t *usable) {
    uintptr_t target = (uintptr_t)p - (uintptr_t)arena;
    size_t used = atomic_load_explicit(&arena_used, memory_order_acquire);
    if (target >= used)
        return false;
    for (size_t at = 0; at + HEADER <= used;) {
        size_t size = *(const size_t *)(arena + at);
        if (size == 0) {
            at += HEADER;
            continue;
        }
        size_t start = at + HEADER;
        if (target < start)
            return false;
        if (target < start + size) {
            *block = arena + start;
            *usable = size;
            return true;
        }
        at = start + size;
    }
    return false;
}
