/* The hardened build (make builds it as libmspace-secure.so, with
 * -DMS_SECURE=1). What it adds, all off in the default build where these
 * helpers compile to nothing:
 *   - free-list links stored xor'ed with a per-process secret and their own
 *     address (safe-linking), and checked to point into their span;
 *   - blocks handed out in random order within each carved batch;
 *   - a trailer at the end of every small block: the requested size and a
 *     canary, and the start of the slack before it filled, all checked at
 *     free, so a write past the end is reported with the block's address
 *     and size;
 *   - the start of freed and never-used blocks filled with a poison byte
 *     that is checked when the block is handed out again (writes after
 *     free);
 *   - PROT_NONE guard pages after each segment's header and at its end.
 * The fast paths (alloc.h) do the hand-out and take-back work and check
 * the link they pop; the slow paths check every link they follow. */
#ifndef MS_SECURE_H
#define MS_SECURE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "types.h"

#ifndef MS_SECURE
#define MS_SECURE 0
#endif

/* Bytes a small block gives up for its trailer: the canary, then the
 * requested size. */
#define MS_SECURE_TRAILER (MS_SECURE ? 8u : 0u)
/* Bytes after a hole's link and mark that the hardened build poisons (at
 * most; fewer in a smaller block) and checks when the block goes out. */
#define MS_SECURE_POISON_MAX 256u
/* Bytes at the end of a segment (and after its header) that are guard
 * pages rather than blocks. */
#define MS_SECURE_GUARD (MS_SECURE ? (size_t)MS_OS_PAGE : 0u)

extern uint64_t ms_secure_key MS_HIDDEN;

/* Once, at start-up, before any block is carved. */
void ms_secure_init(void) MS_HIDDEN;

/* A free-list link as stored in the block at `at` (and back: the mapping is
 * its own inverse). */
static inline block_t *ms_link_code(const block_t *link, const void *at) {
    if (!MS_SECURE)
        return (block_t *)link;
    return (block_t *)((uintptr_t)link ^ ms_secure_key ^ ((uintptr_t)at >> 12));
}

/* The secure build's work when a block of span (block_size bytes) is handed
 * out for a request of size bytes, and when it comes back; both abort with
 * a report naming caller if the block was written where it should not
 * have been. */
void ms_secure_block_out(void *block, size_t block_size, size_t size) MS_HIDDEN;
void ms_secure_block_in(void *block, size_t block_size, const char *caller) MS_HIDDEN;
/* Blocks mapped alone keep no trailer: their requested size is in the
 * segment header and MS_SECURE_LARGE_SLACK bytes past it are filled and
 * checked like a small block's slack. */
#define MS_SECURE_LARGE_SLACK (MS_SECURE ? 64u : 0u)
void ms_secure_fill_slack(void *block, size_t size, size_t room) MS_HIDDEN;
void ms_secure_check_slack(const void *block, size_t size, size_t room,
                           const char *caller) MS_HIDDEN;
/* The requested size recorded in a live block's trailer. */
size_t ms_secure_block_requested(const void *block, size_t block_size) MS_HIDDEN;
/* Fills a never-used block with poison, as if freed. */
void ms_secure_poison(void *block, size_t block_size) MS_HIDDEN;
/* A random number below n, for the carving order. */
unsigned ms_secure_random_below(unsigned n) MS_HIDDEN;

#endif
