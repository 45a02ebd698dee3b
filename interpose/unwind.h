/* Call stacks for heap profiles and leak reports, taken by libunwind.
 * libunwind is loaded with dlopen only when one of those is on, so other
 * programs never map it. */
#ifndef MS_UNWIND_H
#define MS_UNWIND_H
#include <stdbool.h>
#include <stdint.h>
#include "../core/text.h"
#include "../core/types.h"

/* At start-up, under the guard (dlopen allocates). On failure writes one
 * line naming `wanted` (the options that needed it) and returns false. */
bool ms_unwind_load(const char *wanted) MS_HIDDEN;

/* The caller's stack, innermost first, without mspace's own frames: up to
 * max return addresses. 0 while another thread forks (see unwind.c). */
unsigned ms_unwind_capture(uintptr_t *frames, unsigned max) MS_HIDDEN;

/* Appends " in func+0x12 (/path/object)" for a return address. */
void ms_unwind_describe(ms_text_t *t, uintptr_t pc) MS_HIDDEN;

/* The file name of the object holding pc, or NULL. */
const char *ms_unwind_object(uintptr_t pc) MS_HIDDEN;

void ms_unwind_fork_prepare(void) MS_HIDDEN;
void ms_unwind_fork_parent(void) MS_HIDDEN;
void ms_unwind_fork_child(void) MS_HIDDEN;

#endif
