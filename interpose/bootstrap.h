/* The bootstrap arena: a static bump allocator for calls made before the
 * allocator can serve them (see guard.h). Its blocks are never reused;
 * free() recognises and ignores them. */
#ifndef MS_BOOTSTRAP_H
#define MS_BOOTSTRAP_H
#include <stdbool.h>
#include <stddef.h>
#include "../core/types.h"

void *ms_bootstrap_alloc(size_t size, size_t alignment) MS_HIDDEN; /* zeroed; NULL+ENOMEM when full */
bool ms_bootstrap_owns(const void *p) MS_HIDDEN;
size_t ms_bootstrap_usable(const void *p) MS_HIDDEN;
/* The arena block holding p (interior pointers too): its start and size.
 * false if p is in the arena but in no block (padding, unused room). */
bool ms_bootstrap_find(const void *p, void **block, size_t *usable) MS_HIDDEN;

#endif
