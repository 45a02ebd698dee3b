/* MSPACE_PROF: a heap profile of a program with a known heap is read by
 * google-pprof and attributes the right bytes to the right functions; a
 * program that does not profile never maps libunwind. */
#include <dlfcn.h>
#include <errno.h>
#include "../harness.h"
#include "../selfrun.h"

#define BIG_BLOCKS 65536 /* 64 MiB in 1 KiB blocks */
void *big[BIG_BLOCKS];
void *kept_noise[2048];

static int (*prof_dump)(const char *path);

static bool maps_mention(const char *what) {
    char *maps = selfrun_read("/proc/self/maps");
    bool found = maps && strstr(maps, what);
    free(maps);
    return found;
}

__attribute__((noinline)) void alloc_big(void) {
    for (int i = 0; i < BIG_BLOCKS; i++)
        big[i] = malloc(1024);
}

/* 32 MiB allocated and all of it freed again: nothing live. */
__attribute__((noinline)) void churn(void) {
    for (int i = 0; i < 8192; i++)
        free(malloc(4096));
}

/* Mixed sizes, freed; and 2048 blocks of 2 KiB (4 MiB) kept. */
__attribute__((noinline)) void noise(void) {
    for (int i = 0; i < 100000; i++)
        free(malloc(16 + (size_t)(i * 7919) % 5000));
    for (int i = 0; i < 2048; i++)
        kept_noise[i] = calloc(1, 2048);
}

static int child(const char *dir) {
    noise();
    alloc_big();
    churn();
    printf("libunwind mapped: %s\n", maps_mention("libunwind") ? "yes" : "no");
    char path[256];
    snprintf(path, sizeof path, "%s/explicit.heap", dir);
    printf("mspace_prof_dump: %d\n", prof_dump ? prof_dump(path) : -2);
    return 0;
}

/* google-pprof --text's flat in-use megabytes for function, -1 if absent. */
static double pprof_flat_mb(const char *profile, const char *function) {
    char exe[4096], command[8400], line[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(command, sizeof command, "env -u LD_PRELOAD google-pprof --text '%s' '%s' 2>/dev/null",
             exe, profile);
    FILE *out = popen(command, "r");
    double mb = -1;
    while (out && fgets(line, sizeof line, out)) {
        double flat;
        char name[256];
        if (sscanf(line, " %lf %*f%% %*f%% %*f %*f%% %255s", &flat, name) == 2 &&
            strcmp(name, function) == 0)
            mb = flat;
    }
    if (out)
        pclose(out);
    return mb;
}

int main(int argc, char **argv) {
    prof_dump = (int (*)(const char *))dlsym(RTLD_DEFAULT, "mspace_prof_dump");
    const char *dir = getenv("PROF_TEST_DIR");
    if (argc > 1 && dir && strcmp(argv[1], "child") == 0)
        return child(dir);
    TEST_BEGIN("prof_heap");
    dir = selfrun_dir();
    CHECK("temporary directory", dir != NULL);
    if (!dir)
        return TEST_DONE();

    CHECK("no libunwind when not profiling", !maps_mention("libunwind"));
    CHECK("mspace_prof_dump is exported", prof_dump != NULL);
    if (prof_dump) {
        errno = 0;
        CHECK("mspace_prof_dump fails with ENOTSUP when profiling is off",
              prof_dump("/tmp/never") == -1 && errno == ENOTSUP);
    }

    char env_dir[300], env_file[300], output[300], profile[300], explicit_path[300];
    snprintf(env_dir, sizeof env_dir, "PROF_TEST_DIR=%s", dir);
    snprintf(env_file, sizeof env_file, "MSPACE_PROF_FILE=%s/exit.%%p.heap", dir);
    snprintf(output, sizeof output, "%s/output", dir);
    const char *env[] = {"MSPACE_PROF=1", "MSPACE_PROF_SAMPLE=65536", env_file, env_dir, NULL};
    pid_t pid;
    CHECK("profiled child exits normally", selfrun(env, "child", output, 120, &pid) == 0);
    char *said = selfrun_read(output);
    CHECK("libunwind loaded when profiling", said && strstr(said, "libunwind mapped: yes"));
    CHECK("mspace_prof_dump returns 0 when profiling", said && strstr(said, "mspace_prof_dump: 0"));

    snprintf(profile, sizeof profile, "%s/exit.%d.heap", dir, (int)pid);
    char *text = selfrun_read(profile);
    CHECK("profile written at exit, named by pid", text != NULL);
    CHECK("gperftools header", text && strncmp(text, "heap profile: ", 14) == 0 &&
                                   strstr(text, "] @ heapprofile\n"));
    CHECK("maps appended", text && strstr(text, "\nMAPPED_LIBRARIES:\n"));
    snprintf(explicit_path, sizeof explicit_path, "%s/explicit.heap", dir);
    char *explicit_text = selfrun_read(explicit_path);
    CHECK("mspace_prof_dump wrote its file", explicit_text &&
                                                 strncmp(explicit_text, "heap profile: ", 14) == 0);

    double big_mb = pprof_flat_mb(profile, "alloc_big");
    double noise_mb = pprof_flat_mb(profile, "noise");
    double churn_mb = pprof_flat_mb(profile, "churn");
    printf("pprof: alloc_big %.1f MB, noise %.1f MB, churn %.1f MB\n", big_mb, noise_mb, churn_mb);
    CHECK("alloc_big holds 64 MiB (+-15%)", big_mb > 64 * 0.85 && big_mb < 64 * 1.15);
    CHECK("noise holds 4 MiB (+-50%)", noise_mb > 2 && noise_mb < 6);
    CHECK("churn holds nothing (freed)", churn_mb < 0.5);
    free(said);
    free(text);
    free(explicit_text);
    return TEST_DONE();
}
