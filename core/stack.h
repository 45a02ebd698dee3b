/* Call stacks, interned: heap profiles and leak reports key their records
 * by stack, and a program allocates from few distinct stacks many times,
 * so each distinct stack is stored once and never freed. The table lives
 * in mapped memory (never malloc: it is filled from inside malloc). */
#ifndef MS_STACK_H
#define MS_STACK_H
#include <stdbool.h>
#include <stdint.h>
#include "host.h"
#include "types.h"

#define MS_STACK_MAX 64 /* frames kept; deeper stacks are cut at the root end */

typedef struct ms_stack_s {
    struct ms_stack_s *_Atomic next; /* bucket chain; published with release */
    uint64_t hash;
    unsigned depth;
    /* Weighted totals of the samples ever taken here (profile.c). */
    _Atomic uint64_t sampled_count, sampled_bytes;
    /* Scratch for the report being written, under ms_stack_report_lock. */
    double report_count, report_bytes;
    uintptr_t frames[]; /* return addresses, innermost first */
} ms_stack_t;

/* The stack with these frames, added on first sight. NULL when out of
 * memory. Lock-free when the stack is already known. */
ms_stack_t *ms_stack_intern(const uintptr_t *frames, unsigned depth) MS_HIDDEN;

/* Calls visit for every stack (stacks added meanwhile may be missed). */
void ms_stack_walk(void (*visit)(ms_stack_t *, void *), void *arg) MS_HIDDEN;

/* Held by whoever fills and reads the report_* scratch fields. */
extern ms_lock_t ms_stack_report_lock MS_HIDDEN;

/* Zeroes every stack's report_* fields (caller holds the report lock). */
void ms_stack_report_clear(void) MS_HIDDEN;

void ms_stack_fork_prepare(void) MS_HIDDEN;
void ms_stack_fork_parent(void) MS_HIDDEN;
void ms_stack_fork_child(void) MS_HIDDEN;

#endif
