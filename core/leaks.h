/* Leak reports: every live block with the stack that allocated it, and at
 * exit the blocks never freed, grouped by stack, biggest first. */
#ifndef MS_LEAKS_H
#define MS_LEAKS_H
#include <stddef.h>
#include "stack.h"
#include "text.h"
#include "types.h"

/* A block of size bytes was allocated at stack. */
void ms_leaks_add(const void *address, size_t size, ms_stack_t *stack) MS_HIDDEN;
/* The block at address is being freed. */
void ms_leaks_remove(const void *address) MS_HIDDEN;

/* The size asked for when the live block at address was allocated. */
bool ms_leaks_requested(const void *address, size_t *size) MS_HIDDEN;

typedef struct {
    /* Appends " in func+0x12 (object)" or similar for a return address. */
    void (*describe)(ms_text_t *t, uintptr_t pc);
    /* Blocks from this stack are kept until exit on purpose by libc, the
     * loader or a library's initialiser: counted apart, not listed. */
    bool (*excluded)(const ms_stack_t *stack);
} ms_leaks_host_t;

/* To fd, one group per stack:
 *   mspace: <bytes> bytes in <n> blocks never freed, allocated at:
 *       #0 0x... in ...
 * then a summary line. Returns the number of blocks reported. */
size_t ms_leaks_report(int fd, const ms_leaks_host_t *host) MS_HIDDEN;

void ms_leaks_fork_prepare(void) MS_HIDDEN;
void ms_leaks_fork_parent(void) MS_HIDDEN;
void ms_leaks_fork_child(void) MS_HIDDEN;

#endif
