/* The unwinder is libunwind's unw_backtrace, loaded with dlopen at
 * start-up. It runs inside malloc, and it takes locks of its own and the
 * dynamic loader's (dl_iterate_phdr): track.c calls it holding no
 * allocator lock, with nested allocations served but not observed.
 *
 * fork() must not copy those locks held: the prepare handler closes a
 * gate that new unwinds do not pass (they return no frames instead of
 * waiting, so nothing can wait on fork) and waits for the unwinds in
 * flight to finish. If one does not finish in time, the child does not
 * unwind at all rather than risk a lock copied held. */
#define _GNU_SOURCE
#include "unwind.h"
#include <dlfcn.h>
#include <link.h>
#include <sched.h>
#include <stdatomic.h>
#include "../core/host.h"
#include "../core/stack.h"

#define LIBUNWIND "libunwind.so.8"
#define FORK_WAIT_MS 1000
#define RAW_MAX (MS_STACK_MAX + 16) /* room for mspace's own frames */

static int (*backtrace_fn)(void **buffer, int size);
static uintptr_t self_start, self_end; /* libmspace's loaded range */

static _Atomic int in_flight;
static _Atomic bool gate_closed;
static bool child_must_not_unwind;
static bool fork_found_unwinds;
static __thread int unwinding; /* this thread's share of in_flight */

static int find_self(struct dl_phdr_info *info, size_t size, void *arg) {
    uintptr_t probe = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (start < lo)
            lo = start;
        if (start + ph->p_memsz > hi)
            hi = start + ph->p_memsz;
    }
    if (probe < lo || probe >= hi)
        return 0;
    self_start = lo;
    self_end = hi;
    return 1;
}

bool ms_unwind_load(const char *wanted) {
    void *lib = dlopen(LIBUNWIND, RTLD_NOW | RTLD_LOCAL);
    if (lib)
        backtrace_fn = (int (*)(void **, int))dlsym(lib, "unw_backtrace");
    if (backtrace_fn == NULL) {
        ms_text_t t = {.len = 0};
        ms_text_str(&t, "mspace: ");
        ms_text_str(&t, wanted);
        ms_text_str(&t, " ignored: cannot load " LIBUNWIND " (install libunwind8)\n");
        ms_host_write(2, t.buf, t.len);
        return false;
    }
    dl_iterate_phdr(find_self, (void *)(uintptr_t)ms_unwind_load);
    return true;
}

unsigned ms_unwind_capture(uintptr_t *frames, unsigned max) {
    void *raw[RAW_MAX];
    if (backtrace_fn == NULL || child_must_not_unwind)
        return 0;
    atomic_fetch_add(&in_flight, 1);
    int n = 0;
    if (!atomic_load(&gate_closed)) {
        unwinding++;
        n = backtrace_fn(raw, RAW_MAX);
        unwinding--;
    }
    atomic_fetch_sub(&in_flight, 1);
    int first = 0;
    while (first < n && (uintptr_t)raw[first] - self_start < self_end - self_start)
        first++;
    unsigned depth = 0;
    for (int i = first; i < n && depth < max; i++)
        frames[depth++] = (uintptr_t)raw[i];
    return depth;
}

const char *ms_unwind_object(uintptr_t pc) {
    Dl_info info;
    if (dladdr((void *)(pc - 1), &info) == 0)
        return NULL;
    return info.dli_fname;
}

void ms_unwind_describe(ms_text_t *t, uintptr_t pc) {
    Dl_info info;
    /* pc - 1: the call, not what follows it (which may be another function). */
    if (dladdr((void *)(pc - 1), &info) == 0) {
        ms_text_str(t, " (unknown object)");
        return;
    }
    if (info.dli_sname) {
        ms_text_str(t, " in ");
        ms_text_str(t, info.dli_sname);
        ms_text_str(t, "+");
        ms_text_hex(t, pc - (uintptr_t)info.dli_saddr);
        ms_text_str(t, " (");
        ms_text_str(t, info.dli_fname);
    } else {
        ms_text_str(t, " (");
        ms_text_str(t, info.dli_fname);
        ms_text_str(t, "+");
        ms_text_hex(t, pc - (uintptr_t)info.dli_fbase);
    }
    ms_text_str(t, ")");
}

void ms_unwind_fork_prepare(void) {
    if (backtrace_fn == NULL)
        return;
    atomic_store(&gate_closed, true);
    uint64_t start = ms_host_now_ms();
    /* A fork from a signal handler may interrupt this thread's own unwind. */
    while (atomic_load(&in_flight) > unwinding) {
        if (ms_host_now_ms() - start > FORK_WAIT_MS) {
            fork_found_unwinds = true;
            return;
        }
        sched_yield();
    }
    fork_found_unwinds = unwinding != 0;
}

void ms_unwind_fork_parent(void) {
    fork_found_unwinds = false;
    atomic_store(&gate_closed, false);
}

void ms_unwind_fork_child(void) {
    if (fork_found_unwinds && !child_must_not_unwind) {
        static const char message[] =
            "mspace: fork() interrupted a stack unwind: no stacks in this child\n";
        ms_host_write(2, message, sizeof message - 1);
        child_must_not_unwind = true;
    }
    atomic_store(&in_flight, unwinding); /* the other threads are gone */
    atomic_store(&gate_closed, false);
}
