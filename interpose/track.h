/* Tracking blocks by the stack that allocated them: heap profiles
 * (MSPACE_PROF) and leak reports (MSPACE_LEAKS), fed by observe.c. */
#ifndef MS_TRACK_H
#define MS_TRACK_H
#include <stdbool.h>
#include <stddef.h>
#include "../core/types.h"

/* At start-up, under the guard: reads the options and loads the unwinder.
 * Whether any tracking is on (then every call must be observed). */
bool ms_track_init(void) MS_HIDDEN;

void ms_track_alloc(const void *p, size_t size) MS_HIDDEN;
void ms_track_free(const void *p) MS_HIDDEN;
void ms_track_realloc(const void *old, const void *new, size_t size) MS_HIDDEN;

/* The size asked for when the live block p was allocated, when known
 * (MSPACE_LEAKS records every block). */
bool ms_track_requested(const void *p, size_t *size) MS_HIDDEN;

/* Writes the heap profile to path (a pattern: %p is the pid); NULL: the
 * MSPACE_PROF_FILE one. 0, or -1 with errno (ENOTSUP: profiling is off). */
int ms_track_write_profile(const char *path) MS_HIDDEN;

void ms_track_fork_prepare(void) MS_HIDDEN;
void ms_track_fork_parent(void) MS_HIDDEN;
void ms_track_fork_child(void) MS_HIDDEN;

#endif
