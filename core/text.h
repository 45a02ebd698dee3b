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
/* A file name from a pattern: "%p" becomes pid; NUL-terminated, cut short
 * if it does not fit. */
void ms_text_path(ms_text_t *t, const char *pattern, uint64_t pid) MS_HIDDEN;
/* For output longer than one buffer: writes the text to fd and empties the
 * buffer when fewer than room bytes are left in it. */
void ms_text_spill(ms_text_t *t, int fd, size_t room) MS_HIDDEN;

#endif
