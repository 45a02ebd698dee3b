/* The only door to the kernel's memory calls (mmap, munmap, madvise,
 * mremap, mprotect). Every function returns NULL / false on failure with errno set by
 * the kernel, and counts what it did in stats. */
#ifndef MS_OS_H
#define MS_OS_H
#include <stdbool.h>
#include <stddef.h>
#include "types.h"

void *ms_os_map(size_t size) MS_HIDDEN;
/* size bytes such that base + offset is a multiple of alignment (a power
 * of two, offset < size). */
void *ms_os_map_aligned(size_t size, size_t alignment, size_t offset) MS_HIDDEN;
void ms_os_unmap(void *base, size_t size) MS_HIDDEN;
/* Give the pages back; the range stays mapped and reads as zero. */
void ms_os_purge(void *base, size_t size) MS_HIDDEN;
/* Grow or shrink a mapping without moving it. */
bool ms_os_resize_in_place(void *base, size_t old_size, size_t new_size) MS_HIDDEN;
/* Move a mapping to a fresh base aligned to alignment, resizing it; the
 * pages move with it (no copy). NULL if no room. */
void *ms_os_move_aligned(void *base, size_t old_size, size_t new_size,
                         size_t alignment) MS_HIDDEN;
/* Fault in a fresh range (2 MiB aligned and sized for a huge page) ahead of
 * use, in one call instead of one fault per page. false, with nothing
 * changed but possibly some pages resident, when the kernel cannot; once
 * it has said it never can, later calls return false at once. */
bool ms_os_populate_huge(void *base, size_t size) MS_HIDDEN;
size_t ms_os_page_size(void) MS_HIDDEN;
/* Make a range inaccessible (guard pages); false if the kernel refused. */
bool ms_os_protect_none(void *base, size_t size) MS_HIDDEN;

#endif
