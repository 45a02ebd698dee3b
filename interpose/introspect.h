/* The statistics report behind mspace_stats_print, for the other writers
 * of it (the MSPACE_STATS_SIGNAL dump). */
#ifndef MS_INTROSPECT_H
#define MS_INTROSPECT_H
#include "../core/types.h"

/* mspace_stats_print to a file descriptor. Not under any allocator lock:
 * it allocates (through mspace) for the verbose snapshot. */
int ms_introspect_write(int fd, int flags) MS_HIDDEN;

#endif
