/* The two reports built on the records: the heap profile's text
 * (core/profile.c), in gperftools' format, and the leak report
 * (core/leaks.c), grouped by stack, biggest first, with the host's
 * exclusions counted apart. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "../harness.h"
#include "leaks.h"
#include "profile.h"
#include "sample.h"

/* What fn wrote to a descriptor, NUL-terminated (static buffer). */
static const char *captured(void (*fn)(int)) {
    static char buf[1 << 16];
    int fd = memfd_create("report", 0);
    fn(fd);
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

static void write_profile(int fd) { ms_profile_write(fd); }

static void describe(ms_text_t *t, uintptr_t pc) {
    ms_text_str(t, pc == 0xa1 ? " in leak_a" : pc == 0xb1 ? " in leak_b" : " in other");
}

static bool excluded(const ms_stack_t *stack) { return stack->frames[0] == 0xc1; }

static void write_leaks(int fd) {
    ms_leaks_host_t host = {.describe = describe, .excluded = excluded};
    ms_leaks_report(fd, &host);
}

int main(void) {
    TEST_BEGIN("unit/report");
    ms_sample_set_rate(1); /* weight 1 for blocks this big: exact numbers */
    uintptr_t fa[2] = {0xa1, 0xa2}, fb[1] = {0xb1}, fc[1] = {0xc1};
    ms_stack_t *a = ms_stack_intern(fa, 2), *b = ms_stack_intern(fb, 1), *c = ms_stack_intern(fc, 1);

    ms_profile_add((void *)0x1000, 4096, a);
    ms_profile_add((void *)0x2000, 4096, a);
    ms_profile_add((void *)0x3000, 100, b);
    ms_profile_remove((void *)0x2000);
    ms_profile_remove((void *)0x9000); /* never sampled: ignored */
    const char *text = captured(write_profile);
    CHECK("profile header: live and total",
          strncmp(text, "heap profile: 2: 4196 [3: 8292] @ heapprofile\n", 46) == 0);
    CHECK("line per stack, frames in hex", strstr(text, "\n1: 4096 [2: 8192] @ 0xa1 0xa2\n"));
    CHECK("second stack", strstr(text, "\n1: 100 [1: 100] @ 0xb1\n"));
    CHECK("leak-only stacks are not in the profile", !strstr(text, "0xc1"));

    for (int i = 0; i < 3; i++)
        ms_leaks_add((void *)(uintptr_t)(0x10000 + 16 * i), 100, a);
    for (int i = 0; i < 5; i++)
        ms_leaks_add((void *)(uintptr_t)(0x20000 + 16 * i), 200, b);
    ms_leaks_add((void *)0x30000, 4096, c);
    ms_leaks_add((void *)0x40000, 7, b);
    ms_leaks_remove((void *)0x40000);
    text = captured(write_leaks);
    const char *first = strstr(text, "mspace: 1000 bytes in 5 blocks never freed, allocated at:\n"
                                     "    #0 0xb1 in leak_b\n");
    const char *second = strstr(text, "mspace: 300 bytes in 3 blocks never freed, allocated at:\n"
                                      "    #0 0xa1 in leak_a\n    #1 0xa2 in other\n");
    CHECK("leak_b's group", first != NULL);
    CHECK("leak_a's group", second != NULL);
    CHECK("biggest first", first && second && first < second);
    CHECK("excluded stack not listed", !strstr(text, "0xc1"));
    CHECK("summary counts the exclusions apart",
          strstr(text, "mspace: leak summary: 1300 bytes in 8 blocks never freed (not counting "
                       "4096 bytes in 1 blocks kept by libc, the loader and library initialisers)\n"));
    if (harness_failed)
        fputs(text, stderr);
    return TEST_DONE();
}
