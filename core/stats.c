#include "stats.h"
#include <stdatomic.h>
#include "host.h"
#include "text.h"

static _Atomic uint64_t counters[MS_STAT_COUNT];

static const char *const names[MS_STAT_COUNT] = {
#define MS_STATS_NAME(name, help) #name,
    MS_STATS_LIST(MS_STATS_NAME)
#undef MS_STATS_NAME
};

void ms_stats_add(enum ms_stat which, int64_t delta) {
    atomic_fetch_add_explicit(&counters[which], (uint64_t)delta, memory_order_relaxed);
}

void ms_stats_mapped(ptrdiff_t delta) {
    if (delta > 0)
        ms_stats_add(MS_STAT_os_maps, 1);
    else if (delta < 0)
        ms_stats_add(MS_STAT_os_unmaps, 1);
    uint64_t now = atomic_fetch_add_explicit(&counters[MS_STAT_bytes_mapped], (uint64_t)delta,
                                             memory_order_relaxed) + (uint64_t)delta;
    uint64_t peak = atomic_load_explicit(&counters[MS_STAT_bytes_mapped_peak], memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&counters[MS_STAT_bytes_mapped_peak], &peak,
                                                  now, memory_order_relaxed, memory_order_relaxed))
        ;
}

void ms_stats_purged(size_t bytes) { ms_stats_add(MS_STAT_bytes_purged, (int64_t)bytes); }

void ms_stats_read(ms_stats_t *out) {
    uint64_t *field = (uint64_t *)out;
    for (int i = 0; i < MS_STAT_COUNT; i++)
        field[i] = atomic_load_explicit(&counters[i], memory_order_relaxed);
}

void ms_stats_write(int fd) {
    for (int i = 0; i < MS_STAT_COUNT; i++) {
        ms_text_t t = {.len = 0};
        ms_text_str(&t, "mspace: ");
        ms_text_str(&t, names[i]);
        ms_text_str(&t, " ");
        ms_text_dec(&t, atomic_load_explicit(&counters[i], memory_order_relaxed));
        ms_text_str(&t, "\n");
        ms_host_write(fd, t.buf, t.len);
    }
}
