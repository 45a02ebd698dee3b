/* The glue between the observed calls, the unwinder and the core's tables.
 *
 * Re-entry: the unwinder and dladdr may allocate. A thread that is already
 * inside a hook has `busy` set; the allocations and frees it makes
 * meanwhile (and those of a signal handler that interrupts it) are served
 * as usual but not tracked, so the hooks never recurse and never wait on a
 * record lock the thread holds. Blocks allocated that way are never in a
 * table, so freeing them later finds nothing to forget. */
#define _GNU_SOURCE
#include "track.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "../core/leaks.h"
#include "../core/options.h"
#include "../core/profile.h"
#include "../core/sample.h"
#include "../core/stack.h"
#include "mspace.h"
#include "unwind.h"

static bool profiling, leak_checking;
static __thread bool busy;
/* Where the leak report goes if the program closed stderr before exit (as
 * coreutils do): a copy of fd 2 taken at start-up. */
static int stderr_copy = -1;

bool ms_track_init(void) {
    bool prof = ms_option_number(MS_OPTION_PROF) != 0;
    bool leaks = ms_option_number(MS_OPTION_LEAKS) != 0;
    if (!prof && !leaks)
        return false;
    if (!ms_unwind_load(prof && leaks ? "MSPACE_PROF and MSPACE_LEAKS"
                        : prof        ? "MSPACE_PROF"
                                      : "MSPACE_LEAKS"))
        return false;
    ms_sample_set_rate((uint64_t)ms_option_number(MS_OPTION_PROF_SAMPLE));
    profiling = prof;
    leak_checking = leaks;
    if (leaks)
        stderr_copy = fcntl(2, F_DUPFD_CLOEXEC, 10);
    return true;
}

void ms_track_alloc(const void *p, size_t size) {
    if (busy)
        return;
    bool sampled = profiling && ms_sample_take(size);
    if (!sampled && !leak_checking)
        return;
    busy = true;
    uintptr_t frames[MS_STACK_MAX];
    unsigned depth = ms_unwind_capture(frames, MS_STACK_MAX);
    ms_stack_t *stack = ms_stack_intern(frames, depth);
    if (stack) {
        if (sampled)
            ms_profile_add(p, size, stack);
        if (leak_checking)
            ms_leaks_add(p, size, stack);
    }
    busy = false;
}

void ms_track_free(const void *p) {
    if (busy || !(profiling || leak_checking))
        return;
    busy = true;
    if (profiling)
        ms_profile_remove(p);
    if (leak_checking)
        ms_leaks_remove(p);
    busy = false;
}

bool ms_track_requested(const void *p, size_t *size) {
    return leak_checking && ms_leaks_requested(p, size);
}

void ms_track_realloc(const void *old, const void *new, size_t size) {
    ms_track_free(old);
    ms_track_alloc(new, size);
}

/* ---- reports ---- */

static void copy_file(int to, const char *path) {
    int from = open(path, O_RDONLY | O_CLOEXEC);
    if (from < 0)
        return;
    char buf[4096];
    ssize_t n;
    while ((n = read(from, buf, sizeof buf)) > 0)
        ms_host_write(to, buf, (size_t)n);
    close(from);
}

int ms_track_write_profile(const char *path) {
    if (!profiling) {
        errno = ENOTSUP;
        return -1;
    }
    ms_text_t name = {.len = 0};
    ms_text_path(&name, path ? path : ms_option_text(MS_OPTION_PROF_FILE), (uint64_t)getpid());
    int fd = open(name.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    bool was_busy = busy;
    busy = true;
    ms_profile_write(fd);
    static const char maps[] = "\nMAPPED_LIBRARIES:\n";
    ms_host_write(fd, maps, sizeof maps - 1);
    copy_file(fd, "/proc/self/maps");
    busy = was_busy;
    return close(fd);
}

/* Blocks that stay reachable until the process ends by design, which
 * LeakSanitizer finds reachable from static storage and we recognise by
 * their stack: the stdio buffers libc allocates on first use (innermost
 * frame _IO_file_doallocate), and whatever is allocated with the dynamic
 * loader on the stack: its own link maps and thread data, and the static
 * data libraries set up in their initialisers while it runs them (such as
 * libstdc++'s emergency exception pool). The summary still counts them. */
static bool kept_by_libc(const ms_stack_t *stack) {
    for (unsigned i = 0; i < stack->depth; i++) {
        const char *object = ms_unwind_object(stack->frames[i]);
        if (object && strstr(object, "/ld-linux"))
            return true;
    }
    if (stack->depth == 0)
        return false;
    ms_text_t t = {.len = 0};
    ms_unwind_describe(&t, stack->frames[0]);
    t.buf[t.len < sizeof t.buf ? t.len : sizeof t.buf - 1] = '\0';
    return strstr(t.buf, " in _IO_file_doallocate+") != NULL;
}

__attribute__((destructor)) static void track_at_exit(void) {
    if (profiling && ms_track_write_profile(NULL) != 0) {
        static const char message[] = "mspace: cannot write the heap profile (MSPACE_PROF_FILE)\n";
        ms_host_write(2, message, sizeof message - 1);
    }
    if (leak_checking) {
        busy = true;
        ms_leaks_host_t host = {.describe = ms_unwind_describe, .excluded = kept_by_libc};
        ms_leaks_report(fcntl(2, F_GETFD) >= 0 || stderr_copy < 0 ? 2 : stderr_copy, &host);
        busy = false;
    }
}

/* ---- fork: unwinds first (they take no lock of ours), then the tables ---- */

void ms_track_fork_prepare(void) {
    if (!(profiling || leak_checking))
        return;
    ms_unwind_fork_prepare();
    ms_stack_fork_prepare();
    ms_profile_fork_prepare();
    ms_leaks_fork_prepare();
}

void ms_track_fork_parent(void) {
    if (!(profiling || leak_checking))
        return;
    ms_leaks_fork_parent();
    ms_profile_fork_parent();
    ms_stack_fork_parent();
    ms_unwind_fork_parent();
}

void ms_track_fork_child(void) {
    if (!(profiling || leak_checking))
        return;
    ms_leaks_fork_child();
    ms_profile_fork_child();
    ms_stack_fork_child();
    ms_unwind_fork_child();
}

__attribute__((visibility("default"))) int mspace_prof_dump(const char *path) {
    return ms_track_write_profile(path);
}
