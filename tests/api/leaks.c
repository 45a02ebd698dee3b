/* MSPACE_LEAKS: at exit, exactly the blocks the program never freed are
 * reported, grouped by the stack that allocated them, biggest first, with
 * the allocating functions named; the C library's own caches (stdio
 * buffers, the loader's thread data) are not. */
#include <pthread.h>
#include "../harness.h"
#include "../selfrun.h"

void *kept[64];
volatile int two = 2, three = 3, five = 5; /* so the loops stay loops, one stack each */

__attribute__((noinline)) void leak_a(void) {
    for (int i = 0; i < three; i++)
        kept[i] = malloc(100);
}

__attribute__((noinline)) void leak_b(void) {
    for (int i = 0; i < five; i++)
        kept[8 + i] = malloc(200);
}

/* Blocks above 1 KiB have a fast path of their own: it must decline while
 * every call is observed, or these would go unrecorded. One allocated and
 * freed first, so that the two leaked come from a span with a hole. */
__attribute__((noinline)) void leak_c(void) {
    free(malloc(6000));
    for (int i = 0; i < two; i++)
        kept[16 + i] = malloc(6000);
}

/* Allocated, resized, freed: nothing left. */
__attribute__((noinline)) void tidy(void) {
    for (int i = 0; i < 1000; i++) {
        char *p = malloc((size_t)i + 1);
        p = realloc(p, (size_t)i * 3 + 7);
        free(p);
    }
    char *copy = strdup("tidy");
    free(copy);
    void *big = calloc(1, 1 << 20);
    free(big);
}

static void *thread_body(void *arg) {
    tidy();
    return arg;
}

static int child(void) {
    printf("stdout is buffered by libc\n"); /* libc's stdio buffer: not a leak */
    pthread_t thread;
    pthread_create(&thread, NULL, thread_body, NULL);
    pthread_join(thread, NULL);
    leak_a();
    leak_b();
    leak_c();
    tidy();
    return 0;
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* The frame lines right after the group header that starts with header. */
static const char *frames_after(const char *text, const char *header) {
    const char *p = text ? strstr(text, header) : NULL;
    return p ? strchr(p, '\n') : NULL;
}

static bool first_frame_is(const char *frames, const char *function) {
    if (!frames)
        return false;
    char line[512];
    sscanf(frames + 1, "%511[^\n]", line);
    return strstr(line, "#0 ") && strstr(line, function);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child();
    TEST_BEGIN("leaks");
    const char *dir = selfrun_dir();
    char output[300];
    snprintf(output, sizeof output, "%s/output", dir ? dir : "/tmp");

    const char *on[] = {"MSPACE_LEAKS=1", NULL};
    CHECK("child exits normally", selfrun(on, "child", output, 60, NULL) == 0);
    char *report = selfrun_read(output);
    CHECK("three groups reported", count(report, "never freed, allocated at:") == 3);
    const char *c = frames_after(report, "mspace: 12000 bytes in 2 blocks never freed, allocated at:");
    const char *b = frames_after(report, "mspace: 1000 bytes in 5 blocks never freed, allocated at:");
    const char *a = frames_after(report, "mspace: 300 bytes in 3 blocks never freed, allocated at:");
    CHECK("leak_b's 5 blocks of 200 bytes", b != NULL);
    CHECK("leak_a's 3 blocks of 100 bytes", a != NULL);
    CHECK("leak_c's 2 blocks of 6000 bytes (malloc's path above 1 KiB)", c != NULL);
    CHECK("biggest group first", a && b && c && c < b && b < a);
    CHECK("leak_c named at #0", first_frame_is(c, " in leak_c+0x"));
    CHECK("leak_b named at #0", first_frame_is(b, " in leak_b+0x"));
    CHECK("leak_a named at #0", first_frame_is(a, " in leak_a+0x"));
    CHECK("callers follow", a && strstr(a, "#1 ") && strstr(a, " in main+0x"));
    CHECK("summary", report && strstr(report, "mspace: leak summary: 13300 bytes in 10 blocks never freed"));
    CHECK("tidy never reported", report && !strstr(report, "tidy"));
    CHECK("no mspace frames", report && !strstr(report, "libmspace"));
    if (harness_failed && report)
        fputs(report, stderr);
    free(report);

    const char *off[] = {NULL};
    CHECK("child without MSPACE_LEAKS exits normally", selfrun(off, "child", output, 60, NULL) == 0);
    report = selfrun_read(output);
    CHECK("no report without MSPACE_LEAKS", report && !strstr(report, "never freed"));
    free(report);
    return TEST_DONE();
}
