/* The host side of core/host.h for Linux: futex locks, a coarse clock,
 * messages to stderr and the fatal-error exit. */
#define _GNU_SOURCE
#include "host.h"
#include <fcntl.h>
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "text.h"

/* A contended lock must not leave EAGAIN or EINTR in errno: a malloc that
 * fails sets ENOMEM before it unwinds through locks, and free keeps errno. */
static void futex_wait(_Atomic int *word, int expected) {
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
    errno = saved;
}

static void futex_wake_one(_Atomic int *word) {
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved;
}

/* Spin briefly (the critical sections are short), then sleep on the futex
 * with state 2 so the unlocker knows to wake someone. */
void ms_lock_slow(ms_lock_t *lock) {
    /* The holder test first: other threads never read `reentrant`. */
    if (ms_lock_held_by_me(lock) && lock->reentrant) {
        lock->nested++;
        return;
    }
    for (int spin = 0; spin < 100; spin++) {
        int expected = 0;
        if (atomic_load_explicit(&lock->state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&lock->state, &expected, 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        __builtin_ia32_pause();
    }
    while (atomic_exchange_explicit(&lock->state, 2, memory_order_acquire) != 0)
        futex_wait(&lock->state, 2);
}

void ms_unlock_slow(ms_lock_t *lock) { futex_wake_one(&lock->state); }

uint64_t ms_host_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t ms_host_random(void) {
    uint64_t value = 0;
    if (getrandom(&value, sizeof value, GRND_NONBLOCK) != (ssize_t)sizeof value) {
        /* Too early in boot for the pool: still differ per process. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        value = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32 ^
                (uintptr_t)&value;
    }
    return value;
}

void ms_host_write(int fd, const char *text, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n <= 0)
            return;
        text += n;
        length -= (size_t)n;
    }
}

void ms_host_fatal(const char *function, const char *problem, const void *address) {
    ms_text_t t = {.len = 0};
    ms_text_str(&t, "mspace: ");
    ms_text_str(&t, function);
    ms_text_str(&t, "(): ");
    ms_text_str(&t, problem);
    ms_text_str(&t, " ");
    ms_text_hex(&t, (uintptr_t)address);
    ms_text_str(&t, "\n");
    ms_host_write(2, t.buf, t.len);
    abort();
}

bool ms_host_physical_address(const void *p, uint64_t *out) {
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uint64_t entry = 0;
    off_t at = (off_t)((uintptr_t)p / MS_OS_PAGE * sizeof entry);
    ssize_t n = pread(fd, &entry, sizeof entry, at);
    close(fd);
    /* Bit 63: present; bits 0-54: the page frame number. */
    uint64_t frame = entry & (((uint64_t)1 << 55) - 1);
    if (n != (ssize_t)sizeof entry || !(entry >> 63) || frame == 0)
        return false;
    *out = frame * MS_OS_PAGE + (uintptr_t)p % MS_OS_PAGE;
    return true;
}
