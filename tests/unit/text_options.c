/* The bounded text builder (core/text.[ch]), the MSPACE_* options
 * (core/options.[ch]) read from an environment array, and the statistics
 * printer built on both (ms_stats_write). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "options.h"
#include "stats.h"
#include "text.h"

static int text_is(const ms_text_t *t, const char *want) {
    return t->len == strlen(want) && memcmp(t->buf, want, t->len) == 0;
}

static void test_text(void) {
    ms_text_t t = {.len = 0};
    ms_text_dec(&t, 0);
    CHECK("dec 0", text_is(&t, "0"));
    t.len = 0;
    ms_text_dec(&t, 1234567890);
    CHECK("dec 1234567890", text_is(&t, "1234567890"));
    t.len = 0;
    ms_text_dec(&t, UINT64_MAX);
    CHECK("dec UINT64_MAX", text_is(&t, "18446744073709551615"));
    t.len = 0;
    ms_text_hex(&t, 0);
    CHECK("hex 0", text_is(&t, "0x0"));
    t.len = 0;
    ms_text_hex(&t, 0xdeadbeef);
    CHECK("hex lowercase, 0x-prefixed", text_is(&t, "0xdeadbeef"));
    t.len = 0;
    ms_text_hex(&t, 0x7f0012345670);
    CHECK("hex of an address, no leading zeros", text_is(&t, "0x7f0012345670"));
    t.len = 0;
    ms_text_hex(&t, UINT64_MAX);
    CHECK("hex UINT64_MAX", text_is(&t, "0xffffffffffffffff"));
    t.len = 0;
    ms_text_str(&t, "mspace: ");
    ms_text_str(&t, "");
    ms_text_str(&t, "free(): x ");
    ms_text_dec(&t, 42);
    ms_text_str(&t, " ");
    ms_text_hex(&t, 255);
    CHECK("pieces concatenate", text_is(&t, "mspace: free(): x 42 0xff"));

    /* Truncation: fill to 510, then a number; nothing past buf[511], and
     * the length never exceeds the buffer. The struct around it catches a
     * write past the end (len sits right after buf; the canary after it). */
    struct {
        ms_text_t t;
        uint64_t canary;
    } guarded;
    memset(&guarded, 0, sizeof guarded);
    guarded.canary = 0x1122334455667788ull;
    char fill[511];
    memset(fill, 'a', 510);
    fill[510] = 0;
    ms_text_str(&guarded.t, fill);
    ms_text_dec(&guarded.t, 12345);
    CHECK("dec truncated at the buffer size",
          guarded.t.len == sizeof guarded.t.buf && memcmp(guarded.t.buf + 510, "12", 2) == 0);
    ms_text_str(&guarded.t, "more");
    ms_text_hex(&guarded.t, 0xabc);
    ms_text_dec(&guarded.t, 7);
    CHECK("full buffer stays full", guarded.t.len == sizeof guarded.t.buf &&
                                        guarded.t.buf[511] == '2');
    CHECK("no write past the buffer", guarded.canary == 0x1122334455667788ull);

    ms_text_t u = {.len = 0};
    memset(fill, 'b', 510);
    ms_text_str(&u, fill);
    ms_text_hex(&u, 0xff);
    CHECK("hex truncated: prefix kept first", u.len == 512 && memcmp(u.buf + 510, "0x", 2) == 0);

    ms_text_t w = {.len = 0};
    char longer[2000];
    memset(longer, 'c', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    ms_text_str(&w, longer);
    CHECK("long string truncated to 512", w.len == 512 && w.buf[511] == 'c');
}

/* Runs ms_options_load with stderr captured; returns what it printed. */
static char captured[4096];
static const char *load_capture(char **environment, bool secure) {
    int fds[2];
    if (pipe(fds) != 0)
        return "pipe failed";
    fflush(stderr);
    int saved = dup(2);
    dup2(fds[1], 2);
    close(fds[1]);
    ms_options_load(environment, secure);
    dup2(saved, 2);
    close(saved);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(fds[0], captured, sizeof captured - 1);
    captured[n > 0 ? n : 0] = 0;
    close(fds[0]);
    return captured;
}

static void test_options(void) {
    CHECK("default MSPACE_STATS is 0", ms_option_number(MS_OPTION_STATS) == 0 &&
                                           strcmp(ms_option_text(MS_OPTION_STATS), "0") == 0);
    CHECK("default MSPACE_STATS_FILE is empty", strcmp(ms_option_text(MS_OPTION_STATS_FILE), "") == 0);

    char *env1[] = {"PATH=/usr/bin", "MSPACE_STATS=1", "HOME=/root", NULL};
    const char *err = load_capture(env1, false);
    CHECK("MSPACE_STATS=1 sets the number", ms_option_number(MS_OPTION_STATS) == 1);
    CHECK("known option: no warning", err[0] == 0);

    char *env2[] = {"MSPACE_STATS_FILE=/tmp/stats.%p", NULL};
    err = load_capture(env2, false);
    CHECK("MSPACE_STATS_FILE (a prefix of another name) is its own option",
          strcmp(ms_option_text(MS_OPTION_STATS_FILE), "/tmp/stats.%p") == 0 &&
              ms_option_number(MS_OPTION_STATS) == 1 && err[0] == 0);

    char *env3[] = {"MSPACE_FOO=1", NULL};
    err = load_capture(env3, false);
    CHECK("unknown MSPACE_FOO=1 warns on stderr",
          strcmp(err, "mspace: unknown option ignored: MSPACE_FOO\n") == 0);
    if (strcmp(err, "mspace: unknown option ignored: MSPACE_FOO\n") != 0)
        fprintf(stderr, "got: \"%s\"\n", err);

    char *env4[] = {"MSPACE_STATSX=3", "MSPACE_STATS", "MSPACE_=1", NULL};
    err = load_capture(env4, false);
    CHECK("near misses warn once each, option unchanged",
          strcmp(err, "mspace: unknown option ignored: MSPACE_STATSX\n"
                      "mspace: unknown option ignored: MSPACE_STATS\n"
                      "mspace: unknown option ignored: MSPACE_\n") == 0 &&
              ms_option_number(MS_OPTION_STATS) == 1);

    char *env5[] = {"mspace_stats=9", "XMSPACE_STATS=9", "MSPACESTATS=9", NULL};
    err = load_capture(env5, false);
    CHECK("other variables ignored silently", err[0] == 0 && ms_option_number(MS_OPTION_STATS) == 1);

    char *env6[] = {"MSPACE_STATS=7", "MSPACE_FOO=1", "MSPACE_STATS_FILE=/etc/passwd", NULL};
    err = load_capture(env6, true);
    CHECK("secure: options untouched", ms_option_number(MS_OPTION_STATS) == 1 &&
                                           strcmp(ms_option_text(MS_OPTION_STATS_FILE),
                                                  "/tmp/stats.%p") == 0);
    CHECK("secure: no warning either", err[0] == 0);

    err = load_capture(NULL, false);
    CHECK("NULL environment is harmless", err[0] == 0);

    char *env7[] = {"MSPACE_STATS=2", "MSPACE_STATS=12abc", NULL};
    load_capture(env7, false);
    CHECK("last setting wins; number stops at a non-digit", ms_option_number(MS_OPTION_STATS) == 12);
    char *env8[] = {"MSPACE_STATS=", NULL};
    load_capture(env8, false);
    CHECK("empty value is 0", ms_option_number(MS_OPTION_STATS) == 0);
    char *env9[] = {"MSPACE_STATS=yes", NULL};
    load_capture(env9, false);
    CHECK("non-numeric value is 0", ms_option_number(MS_OPTION_STATS) == 0);

    /* A very long unknown name: the warning is cut at the buffer, no more. */
    static char longname[1200];
    memcpy(longname, "MSPACE_", 7);
    memset(longname + 7, 'Z', sizeof longname - 10);
    memcpy(longname + sizeof longname - 3, "=1", 3);
    char *env10[] = {longname, NULL};
    err = load_capture(env10, false);
    CHECK("long unknown name: warning bounded", strlen(err) <= 512 &&
                                                    strncmp(err, "mspace: unknown option ignored: MSPACE_ZZ", 41) == 0);
}

static void test_stats_write(void) {
    int fds[2];
    if (pipe(fds) != 0) {
        CHECK("stats: pipe", 0);
        return;
    }
    ms_stats_add(MS_STAT_remote_frees, 3);
    ms_stats_t s;
    ms_stats_read(&s);
    ms_stats_write(fds[1]);
    close(fds[1]);
    static char out[8192];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(fds[0]);
    int lines = 0, well_formed = 1;
    for (char *line = out, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        if (end == NULL) {
            well_formed = 0;
            break;
        }
        lines++;
        if (strncmp(line, "mspace: ", 8) != 0)
            well_formed = 0;
    }
    CHECK("stats: one line per counter", lines == MS_STAT_COUNT);
    CHECK("stats: lines are \"mspace: <name> <value>\"", well_formed);
    char want[64];
    snprintf(want, sizeof want, "mspace: remote_frees %llu\n", (unsigned long long)s.remote_frees);
    CHECK("stats: value matches ms_stats_read", s.remote_frees == 3 && strstr(out, want) != NULL);
    CHECK("stats: first and last counters named", strstr(out, "mspace: os_maps ") == out &&
                                                      strstr(out, "mspace: remote_frees ") != NULL);
}

int main(void) {
    TEST_BEGIN("text_options");
    test_text();
    test_options();
    test_stats_write();
    return TEST_DONE();
}
