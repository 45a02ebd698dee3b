#include "text.h"
#include "host.h"

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

void ms_text_spill(ms_text_t *t, int fd, size_t room) {
    if (sizeof t->buf - t->len < room) {
        ms_host_write(fd, t->buf, t->len);
        t->len = 0;
    }
}

void ms_text_path(ms_text_t *t, const char *pattern, uint64_t pid) {
    for (; *pattern; pattern++) {
        if (pattern[0] == '%' && pattern[1] == 'p') {
            ms_text_dec(t, pid);
            pattern++;
        } else if (t->len < sizeof t->buf - 1) {
            t->buf[t->len++] = *pattern;
        }
    }
    t->buf[t->len < sizeof t->buf ? t->len : sizeof t->buf - 1] = '\0';
}
