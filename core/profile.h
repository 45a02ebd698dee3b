/* The heap profile: the sampled blocks still live, by allocating stack,
 * written in the text format of gperftools' heap profiler so that pprof
 * (google-pprof) reads it. Sampling itself is sample.c's. */
#ifndef MS_PROFILE_H
#define MS_PROFILE_H
#include <stddef.h>
#include "stack.h"
#include "types.h"

/* A sampled block of size bytes was allocated at stack. */
void ms_profile_add(const void *address, size_t size, ms_stack_t *stack) MS_HIDDEN;
/* The block at address is being freed (sampled or not). */
void ms_profile_remove(const void *address) MS_HIDDEN;

/* Writes the header and one line per stack, weighted:
 *   heap profile: <live count>: <live bytes> [<total count>: <total bytes>] @ heapprofile
 *   <live count>: <live bytes> [<total count>: <total bytes>] @ 0x... 0x...
 * The caller appends the "MAPPED_LIBRARIES:" section. */
void ms_profile_write(int fd) MS_HIDDEN;

void ms_profile_fork_prepare(void) MS_HIDDEN;
void ms_profile_fork_parent(void) MS_HIDDEN;
void ms_profile_fork_child(void) MS_HIDDEN;

#endif
