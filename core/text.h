/* A bounded text builder on the stack, for messages and stats written while
 * malloc may be unusable: no stdio, no allocation, truncates instead of
 * overflowing. */
#ifndef MS_TEXT_H
#define MS_TEXT_H
#include <stddef.h>
#include <stdint.h>
#include "types.h"

typedef struct {
    char buf[512];
    size_t len;
} ms_text_t;

void ms_text_str(ms_text_t *t, const char *s) MS_HIDDEN;
void ms_text_dec(ms_text_t *t, uint64_t value) MS_HIDDEN;
void ms_text_hex(ms_text_t *t, uint64_t value) MS_HIDDEN; /* 0x-prefixed, lowercase */

#endif
