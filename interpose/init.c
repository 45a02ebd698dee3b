/* Lazy initialisation from whichever entry point runs first, the thread
 * exit hook, and the statistics report at exit. The first-call path calls
 * nothing that may allocate or be interposed without the guard up. */
#define _GNU_SOURCE
#include "init.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <unistd.h>
#include "../core/options.h"
#include "../core/stats.h"
#include "../core/text.h"
#include "guard.h"
#include "introspect.h"
#include "mspace.h"
#include "observe.h"

extern char **environ;

__thread int ms_guard_depth;
static __thread bool thread_torn_down;

static ms_lock_t init_lock = MS_LOCK_INIT;
static _Atomic bool initialised;
static bool options_loaded; /* under init_lock */
static pthread_key_t thread_key;

static void thread_exit(void *heap) {
    thread_torn_down = true;
    ms_heap_release((heap_t *)heap, true);
}

/* Called under init_lock. A first allocation from a .preinit_array function
 * (libFuzzer's runtime makes one) comes before libc has set environ; the
 * options are then read by load_options_late instead. */
static void load_options(void) {
    if (!options_loaded && environ != NULL) {
        ms_options_load(environ, getauxval(AT_SECURE) != 0);
        ms_observe_init();
        options_loaded = true;
    }
}

/* Runs after libc's own initialisation, which sets environ. */
__attribute__((constructor)) static void load_options_late(void) {
    /* Under the guard: observing may load libunwind, whose allocations must
     * not come back to init_process for init_lock, held here. */
    ms_guard_enter();
    ms_lock(&init_lock);
    load_options();
    ms_unlock(&init_lock);
    ms_guard_leave();
}

static void init_process(void) {
    ms_lock(&init_lock);
    if (!atomic_load_explicit(&initialised, memory_order_relaxed)) {
        load_options();
        pthread_key_create(&thread_key, thread_exit);
        ms_fork_install(); /* may allocate: served by the bootstrap arena */
        atomic_store_explicit(&initialised, true, memory_order_release);
    }
    ms_unlock(&init_lock);
}

heap_t *ms_heap_for_call(bool *temporary) {
    heap_t *heap = ms_heap_tls;
    *temporary = false;
    if (MS_LIKELY(heap != &ms_heap_empty))
        return heap;
    ms_guard_enter();
    /* A signal handler that ran a malloc between the test above and the
     * guard has set this thread up already: taking a second heap would
     * orphan the first. Once the guard is up, a handler's malloc is served
     * by the bootstrap arena instead, so the test cannot go stale. */
    if (ms_heap_tls != &ms_heap_empty) {
        ms_guard_leave();
        return ms_heap_tls;
    }
    if (!atomic_load_explicit(&initialised, memory_order_acquire))
        init_process();
    heap = ms_heap_acquire();
    ms_guard_leave();
    if (heap == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (thread_torn_down)
        *temporary = true;
    else
        pthread_setspecific(thread_key, heap); /* may allocate: the heap is ready */
    return heap;
}

void ms_init_ensure(void) {
    if (atomic_load_explicit(&initialised, memory_order_acquire))
        return;
    ms_guard_enter();
    init_process();
    ms_guard_leave();
}

/* Reports after the first in this process append, so signal dumps and the
 * report at exit all stay in the file. A forked child starts afresh. */
static _Atomic pid_t report_file_pid;

int ms_report_open(void) {
    const char *path = ms_option_text(MS_OPTION_STATS_FILE);
    if (*path == '\0')
        return 2;
    ms_text_t name = {.len = 0};
    pid_t self = getpid();
    ms_text_path(&name, path, (uint64_t)self);
    bool again = atomic_exchange(&report_file_pid, self) == self;
    int fd = open(name.buf, O_WRONLY | O_CREAT | O_CLOEXEC | (again ? O_APPEND : O_TRUNC), 0644);
    return fd;
}

void ms_report_close(int fd) {
    if (fd > 2)
        close(fd);
}

/* The report runs when the library is unloaded at exit, after main and the
 * program's own destructors that were registered later. */
__attribute__((destructor)) static void report_at_exit(void) {
    const char *json = ms_option_text(MS_OPTION_STATS_JSON);
    if (*json) {
        ms_text_t name = {.len = 0};
        ms_text_path(&name, json, (uint64_t)getpid());
        int fd = open(name.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ms_introspect_write(fd, MSPACE_STATS_JSON);
            close(fd);
        }
    }
    if (*ms_option_text(MS_OPTION_STATS_FILE) == '\0' && !ms_option_number(MS_OPTION_STATS))
        return;
    int fd = ms_report_open();
    if (fd >= 0) {
        ms_stats_write(fd);
        ms_observe_write_calls(fd);
        ms_report_close(fd);
    }
}
