/* Profiling and leak tracking in a threaded program that forks: other
 * threads keep allocating (and so unwinding, under MSPACE_PROF_SAMPLE=512
 * nearly every few calls) while the main thread forks again and again.
 * Nothing may deadlock, and each child must be able to allocate and write
 * its own heap profile. */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "../harness.h"
#include "../selfrun.h"

#define THREADS 3
#define FORKS 40
#define CHILD_SECONDS 60

static atomic_bool stop;
static int (*prof_dump)(const char *path);

__attribute__((noinline)) static void *worker(void *arg) {
    void *slots[64] = {0};
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&stop)) {
        seed = seed * 1103515245u + 12345u;
        unsigned i = (seed >> 8) % 64;
        free(slots[i]);
        slots[i] = malloc(16 + (seed >> 16) % 3000);
    }
    for (int i = 0; i < 64; i++)
        free(slots[i]);
    return NULL;
}

static void *watchdog(void *arg) {
    sleep(CHILD_SECONDS - 20);
    harness_hung(CHILD_SECONDS - 20, "forking while other threads profile");
    return arg;
}

/* In the forked child: allocate, write a profile, report by exit status. */
static void grandchild(const char *dir, int round) {
    alarm(20); /* a hung child must not outlive the test */
    void *blocks[1000];
    for (int i = 0; i < 1000; i++)
        blocks[i] = malloc((size_t)i + 1);
    for (int i = 0; i < 1000; i++)
        free(blocks[i]);
    char path[300];
    snprintf(path, sizeof path, "%s/child.%d.heap", dir, round);
    _exit(prof_dump && prof_dump(path) == 0 ? 0 : 1);
}

static int child(const char *dir) {
    TEST_BEGIN("prof_fork (child)");
    pthread_t dog, threads[THREADS];
    pthread_create(&dog, NULL, watchdog, NULL);
    for (int t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, worker, (void *)(uintptr_t)(t + 1));
    int ok = 0;
    for (int round = 0; round < FORKS; round++) {
        pid_t pid = fork();
        if (pid == 0)
            grandchild(dir, round);
        int status = -1;
        waitpid(pid, &status, 0);
        ok += pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        free(malloc(100)); /* the parent goes on allocating too */
    }
    atomic_store(&stop, true);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    CHECK("every forked child allocated and wrote its profile", ok == FORKS);
    return TEST_DONE();
}

static int count_profiles(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = strncmp(e->d_name, "child.", 6) == 0 ? selfrun_read(path) : NULL;
        n += text && strncmp(text, "heap profile: ", 14) == 0 && strstr(text, "MAPPED_LIBRARIES:");
        free(text);
    }
    if (d)
        closedir(d);
    return n;
}

int main(int argc, char **argv) {
    prof_dump = (int (*)(const char *))dlsym(RTLD_DEFAULT, "mspace_prof_dump");
    const char *dir = getenv("PROF_TEST_DIR");
    if (argc > 1 && dir && strcmp(argv[1], "child") == 0)
        return child(dir);
    TEST_BEGIN("prof_fork");
    dir = selfrun_dir();
    char env_dir[300], env_file[300], output[300];
    snprintf(env_dir, sizeof env_dir, "PROF_TEST_DIR=%s", dir ? dir : "/tmp");
    snprintf(env_file, sizeof env_file, "MSPACE_PROF_FILE=%s/exit.%%p.heap", dir ? dir : "/tmp");
    snprintf(output, sizeof output, "%s/output", dir ? dir : "/tmp");
    const char *env[] = {"MSPACE_PROF=1", "MSPACE_PROF_SAMPLE=512", "MSPACE_LEAKS=1", env_file,
                         env_dir, NULL};
    int status = selfrun(env, "child", output, CHILD_SECONDS, NULL);
    char *said = selfrun_read(output);
    CHECK("threaded, forking, profiled child finished", status == 0);
    CHECK("its checks passed", said && strstr(said, "prof_fork (child): 1 passed, 0 failed"));
    CHECK("every forked child wrote a profile", count_profiles(dir) == FORKS);
    if (harness_failed && said)
        fputs(said, stderr);
    free(said);
    return TEST_DONE();
}
