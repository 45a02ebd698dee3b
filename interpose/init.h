/* Process and thread set-up for the exported functions. */
#ifndef MS_INIT_H
#define MS_INIT_H
#include <stdbool.h>
#include "../core/heap.h"

/* The heap the calling thread should use for a slow-path call, set up on
 * first use. *temporary is set when the thread has already been torn down
 * (a late free or malloc from another library's thread-exit code): the heap
 * is borrowed from the pool and must be handed back with ms_heap_return.
 * NULL (errno ENOMEM) if no heap can be had. Never called under the guard. */
heap_t *ms_heap_for_call(bool *temporary) MS_HIDDEN;

static inline void ms_heap_return(heap_t *heap, bool temporary) {
    if (temporary && heap)
        ms_heap_release(heap, false);
}

void ms_fork_install(void) MS_HIDDEN; /* fork.c */

/* Reads the options and sets the process up, if no call has yet. */
void ms_init_ensure(void) MS_HIDDEN;

/* Where reports go: MSPACE_STATS_FILE (truncated by the first report of
 * the process, appended to by the others) or stderr. -1 if the file cannot
 * be opened; hand the descriptor back with ms_report_close. */
int ms_report_open(void) MS_HIDDEN;
void ms_report_close(int fd) MS_HIDDEN;

#endif
