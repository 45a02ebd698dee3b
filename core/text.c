#include "text.h"

void ms_text_str(ms_text_t *t, const char *s) {
    while (*s && t->len < sizeof t->buf)
        t->buf[t->len++] = *s++;
}

static void put_digits(ms_text_t *t, uint64_t value, unsigned base) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    while (n > 0 && t->len < sizeof t->buf)
        t->buf[t->len++] = digits[--n];
}

void ms_text_dec(ms_text_t *t, uint64_t value) { put_digits(t, value, 10); }

void ms_text_hex(ms_text_t *t, uint64_t value) {
    ms_text_str(t, "0x");
    put_digits(t, value, 16);
}
