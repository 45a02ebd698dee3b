/* Which block an address belongs to: behind mspace_get. Any address may be
 * asked about (interior, foreign, freed), so nothing here trusts the
 * address or the lists it reads. */
#ifndef MS_LOOKUP_H
#define MS_LOOKUP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "types.h"

enum ms_lookup_state {
    MS_LOOKUP_FOREIGN,  /* not in a region mspace has mapped */
    MS_LOOKUP_IN_USE,   /* in a block handed out and not freed */
    MS_LOOKUP_FREE,     /* in a hole */
    MS_LOOKUP_UNCARVED, /* in a span's uncarved rest, a slice no span uses or a large
                           block's tail on loan from the cache */
    MS_LOOKUP_METADATA, /* in a segment header, the pages before a large block or a
                           guard page */
};

typedef struct {
    enum ms_lookup_state state;
    bool exact;           /* state confirmed on the caller's own lists (see lookup.c) */
    bool large;           /* the region is a large block's */
    uintptr_t block;      /* start of the block (or would-be block); 0 if none */
    size_t block_size;    /* its usable bytes (what malloc_usable_size says) */
    size_t requested;     /* bytes asked for if recorded (hardened build), else block_size */
    int size_class;       /* -1 for large blocks and for no block */
    uintptr_t region;     /* the segment's base */
    size_t region_size;
} ms_lookup_t;

/* Fills *out for p; false (state FOREIGN) when mspace does not manage p. */
bool ms_lookup(const void *p, ms_lookup_t *out) MS_HIDDEN;

#endif
