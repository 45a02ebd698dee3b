/* Observing every call. When an option asks for it (MSPACE_STATS counts
 * calls; profiling and leak reports build on the same hooks), start-up
 * switches the core's fast paths off (ms_heap_observe_every_call), so
 * every allocation and free reaches a slow path in malloc.c, which reports
 * it here. When nothing is observed the hooks cost one predictable branch
 * in the slow paths and nothing in the fast ones. */
#ifndef MS_OBSERVE_H
#define MS_OBSERVE_H
#include <stdbool.h>
#include <stddef.h>
#include "../core/stats.h"
#include "../core/types.h"

extern bool ms_observing MS_HIDDEN;

/* At start-up, after the options are read and before any heap exists. */
void ms_observe_init(void) MS_HIDDEN;

/* p was just handed out for a request of size bytes. */
void ms_observe_alloc(void *p, size_t size) MS_HIDDEN;
/* p (live, mspace's) is about to be freed. */
void ms_observe_free(void *p) MS_HIDDEN;
/* realloc moved or resized old to new, now size bytes. */
void ms_observe_realloc(void *old, void *new, size_t size) MS_HIDDEN;

/* The calls counted so far (all zero unless observing). */
void ms_observe_calls(uint64_t out[MS_CALL_COUNT]) MS_HIDDEN;

/* One "mspace: calls_<name> <count>" line per counter, to fd. */
void ms_observe_write_calls(int fd) MS_HIDDEN;

#endif
