/* The reentrancy guard. While a thread is setting the allocator up (first
 * call, a new thread's heap, registering fork and thread-exit hooks) the
 * libc functions it calls may call malloc again; those calls see the guard
 * and are served by the bootstrap arena instead of recursing or waiting on
 * a lock this thread already holds. */
#ifndef MS_GUARD_H
#define MS_GUARD_H
#include <stdbool.h>
#include "../core/types.h"

extern __thread int ms_guard_depth MS_HIDDEN;

static inline bool ms_guard_active(void) { return ms_guard_depth != 0; }
static inline void ms_guard_enter(void) { ms_guard_depth++; }
static inline void ms_guard_leave(void) { ms_guard_depth--; }

#endif
