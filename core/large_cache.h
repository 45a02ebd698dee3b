/* Recently freed large blocks, kept mapped with their pages resident for a
 * short while, so a program that frees and allocates big buffers in turn
 * does not fault every page in again (a 2 MiB block is 512 page faults).
 * Bounded in count and bytes; an entry older than one collection interval
 * goes back to the OS at the next collection, and a heap that needs a new
 * segment makes it from a cached block (segment.c:ms_segment_recycle). A
 * cached block is off the segment map, so freeing it again is still
 * reported. */
#ifndef MS_LARGE_CACHE_H
#define MS_LARGE_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include "host.h"
#include "types.h"

/* Keeps segment (already unregistered), or unmaps it if it does not fit. */
void ms_large_cache_put(segment_t *segment) MS_HIDDEN;
/* The cached segment best placed to serve a block mapping `mapped` bytes,
 * taken out of the cache; it may be smaller or bigger (the caller resizes
 * it). NULL if the cache is empty. */
segment_t *ms_large_cache_take(size_t mapped) MS_HIDDEN;
/* The biggest entry of at most two segments' size (the least to grow into
 * a segment, and little to unmap), taken out of the cache; NULL if there is
 * none. */
segment_t *ms_large_cache_take_biggest(void) MS_HIDDEN;
/* Loans. A growing block (realloc) served from a cached mapping much bigger
 * than it needs keeps the whole mapping instead of trimming it, so its next
 * growth steps find their pages resident rather than faulting them in
 * again. What lies past segment->large_limit stays the cache's: a loan ends
 * like an entry, by age at a collection, which unmaps that tail. The owner
 * moves the limit only through these calls, under the cache lock, so that
 * never takes pages the block may use. lend: false if too many loans stand (then trim instead). */
bool ms_large_cache_lend(segment_t *segment, size_t limit) MS_HIDDEN;
/* Moves the limit of a standing loan, short of the mapping's end; false if
 * a collection ended it or the limit would reach the end (then end it). */
bool ms_large_cache_loan_extend(segment_t *segment, size_t limit) MS_HIDDEN;
/* Ends the loan if it stands; the whole mapping is the block's again. */
void ms_large_cache_loan_end(segment_t *segment) MS_HIDDEN;
/* Unmaps the entries that have waited a collection interval (all of them
 * if `all`) and ends such loans; bytes released. */
size_t ms_large_cache_collect(bool all) MS_HIDDEN;
/* Held across fork() with the other core locks (heap.c). */
extern ms_lock_t ms_large_cache_lock MS_HIDDEN;

#endif
