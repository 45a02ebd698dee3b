/* Everything core/ needs from the world outside the allocator: a lock, the
 * calling thread's id, a clock and a way to die with a message. A standalone
 * build replaces host.c and nothing else. Nothing here allocates. */
#ifndef MS_HOST_H
#define MS_HOST_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "types.h"

/* A futex lock that remembers its holder, so fork() from a signal handler
 * that interrupted the allocator can tell which locks it already owns.
 * While fork() holds it (reentrant set), its holder may take it again: the
 * program's own atfork handlers run inside that window and may allocate. */
typedef struct {
    _Atomic int state; /* 0 free, 1 held, 2 held with waiters */
    _Atomic uintptr_t holder;
    int nested;        /* re-entries by the holder not yet unlocked */
    int reentrant;     /* written and read by the holder only */
} ms_lock_t;
#define MS_LOCK_INIT {0, 0, 0, 0}

/* The thread pointer: unique among live threads, free to read, and its low
 * bits are zero (it is at least 16-byte aligned). */
static inline uintptr_t ms_thread_id(void) {
    return (uintptr_t)__builtin_thread_pointer();
}

void ms_lock_slow(ms_lock_t *lock) MS_HIDDEN;
void ms_unlock_slow(ms_lock_t *lock) MS_HIDDEN;

static inline void ms_lock(ms_lock_t *lock) {
    int expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        ms_lock_slow(lock);
    atomic_store_explicit(&lock->holder, ms_thread_id(), memory_order_relaxed);
}

static inline void ms_unlock(ms_lock_t *lock) {
    if (MS_UNLIKELY(lock->nested)) { /* only the holder unlocks: no race */
        lock->nested--;
        return;
    }
    atomic_store_explicit(&lock->holder, 0, memory_order_relaxed);
    if (atomic_exchange_explicit(&lock->state, 0, memory_order_release) == 2)
        ms_unlock_slow(lock);
}

static inline int ms_lock_held_by_me(ms_lock_t *lock) {
    return atomic_load_explicit(&lock->holder, memory_order_relaxed) == ms_thread_id();
}

/* fork()'s prepare handler takes every lock so no other thread is inside a
 * critical section when the child is made. A signal handler that forks may
 * have interrupted this very thread while it held the lock: then *taken is
 * false, the parent handler must not release it, and nobody may re-enter it
 * mid-update. Otherwise the lock is lent to its holder until the parent or
 * child handler: glibc runs the atfork handlers registered before ours
 * inside that window (prepare after ours, parent and child before), and
 * they may allocate. */
static inline void ms_lock_for_fork(ms_lock_t *lock, bool *taken) {
    *taken = !ms_lock_held_by_me(lock);
    if (*taken) {
        ms_lock(lock);
        lock->reentrant = 1;
    }
}

/* The parent's side of ms_lock_for_fork (the child resets its locks). */
static inline void ms_unlock_after_fork(ms_lock_t *lock, bool taken) {
    if (taken) {
        lock->reentrant = 0;
        ms_unlock(lock);
    }
}

/* Forget any holder: the only thread left after fork() is the child's. */
static inline void ms_lock_reset(ms_lock_t *lock) {
    lock->nested = lock->reentrant = 0;
    atomic_store(&lock->state, 0);
    atomic_store(&lock->holder, 0);
}

uint64_t ms_host_now_ms(void) MS_HIDDEN;

/* 64 unpredictable bits from the kernel (for secrets, not speed). */
uint64_t ms_host_random(void) MS_HIDDEN;

/* "mspace: <function>(): <problem> 0x<address>" on stderr, then abort(). */
__attribute__((noreturn, cold)) void ms_host_fatal(const char *function, const char *problem,
                                                   const void *address) MS_HIDDEN;

/* Writes a message to stderr (or fd) without allocating. */
void ms_host_write(int fd, const char *text, size_t length) MS_HIDDEN;

/* The physical address backing p, from /proc/self/pagemap; false when the
 * page is not resident (never touched, purged, swapped out) or the kernel
 * hides frame numbers (readers without CAP_SYS_ADMIN see zeros). */
bool ms_host_physical_address(const void *p, uint64_t *out) MS_HIDDEN;

#endif
