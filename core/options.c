#include "options.h"
#include "host.h"
#include "text.h"

typedef struct {
    const char *name; /* without the MSPACE_ prefix */
    const char *value;
} option_t;

static option_t options[MS_OPTION_COUNT] = {
#define MS_OPTION_ENTRY(name, def, help) {#name, def},
    MS_OPTIONS_LIST(MS_OPTION_ENTRY)
#undef MS_OPTION_ENTRY
};

static const char *after_prefix(const char *s, const char *prefix) {
    while (*prefix)
        if (*s++ != *prefix++)
            return NULL;
    return s;
}

static void warn_unknown(const char *entry) {
    ms_text_t t = {.len = 0};
    ms_text_str(&t, "mspace: unknown option ignored: ");
    size_t start = t.len;
    ms_text_str(&t, entry);
    for (size_t i = start; i < t.len; i++)
        if (t.buf[i] == '=') {
            t.len = i;
            break;
        }
    ms_text_str(&t, "\n");
    ms_host_write(2, t.buf, t.len);
}

void ms_options_load(char **environment, bool secure) {
    if (secure || environment == NULL)
        return;
    for (char **entry = environment; *entry; entry++) {
        const char *rest = after_prefix(*entry, "MSPACE_");
        if (rest == NULL)
            continue;
        bool known = false;
        for (int i = 0; i < MS_OPTION_COUNT && !known; i++) {
            const char *value = after_prefix(rest, options[i].name);
            if (value && *value == '=') {
                options[i].value = value + 1;
                known = true;
            }
        }
        if (!known)
            warn_unknown(*entry);
    }
}

const char *ms_option_text(ms_option_t option) { return options[option].value; }

/* The leading decimal digits of the value, saturating at LONG_MAX. */
long ms_option_number(ms_option_t option) {
    long n = 0;
    for (const char *s = options[option].value; *s >= '0' && *s <= '9'; s++) {
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *s - '0', &n))
            return __LONG_MAX__;
    }
    return n;
}
