#include "observe.h"
#include <stdatomic.h>
#include "../core/heap.h"
#include "../core/host.h"
#include "../core/options.h"
#include "../core/text.h"
#include "track.h"

bool ms_observing;

/* Calls made by threads without a heap (a free before any malloc, or after
 * the thread's heap was pooled). Rare, so one shared line is fine. */
static _Atomic uint64_t heapless_calls[MS_CALL_COUNT];

void ms_observe_init(void) {
    bool stats = ms_option_number(MS_OPTION_STATS) != 0 || *ms_option_text(MS_OPTION_STATS_FILE) != '\0' ||
                 *ms_option_text(MS_OPTION_STATS_JSON) != '\0';
    bool tracking = ms_track_init();
    if (!stats && !tracking)
        return;
    ms_observing = true;
    ms_heap_observe_every_call();
}

static void count(enum ms_call call) {
    heap_t *heap = ms_heap_tls;
    if (heap != &ms_heap_empty)
        heap->calls[call]++;
    else
        atomic_fetch_add_explicit(&heapless_calls[call], 1, memory_order_relaxed);
}

void ms_observe_alloc(void *p, size_t size) {
    count(MS_CALL_malloc);
    ms_track_alloc(p, size);
}

void ms_observe_free(void *p) {
    count(MS_CALL_free);
    ms_track_free(p);
}

void ms_observe_realloc(void *old, void *new, size_t size) {
    count(MS_CALL_realloc);
    ms_track_realloc(old, new, size);
}

static void add_heap_calls(heap_t *heap, void *out) {
    uint64_t *total = out;
    for (int i = 0; i < MS_CALL_COUNT; i++)
        total[i] += heap->calls[i];
}

void ms_observe_calls(uint64_t out[MS_CALL_COUNT]) {
    for (int i = 0; i < MS_CALL_COUNT; i++)
        out[i] = atomic_load_explicit(&heapless_calls[i], memory_order_relaxed);
    ms_heap_walk(add_heap_calls, out);
}

void ms_observe_write_calls(int fd) {
    static const char *const names[MS_CALL_COUNT] = {
#define MS_CALLS_NAME(name, help) #name,
        MS_CALLS_LIST(MS_CALLS_NAME)
#undef MS_CALLS_NAME
    };
    uint64_t calls[MS_CALL_COUNT];
    ms_observe_calls(calls);
    for (int i = 0; i < MS_CALL_COUNT; i++) {
        ms_text_t t = {.len = 0};
        ms_text_str(&t, "mspace: calls_");
        ms_text_str(&t, names[i]);
        ms_text_str(&t, " ");
        ms_text_dec(&t, calls[i]);
        ms_text_str(&t, "\n");
        ms_host_write(fd, t.buf, t.len);
    }
}
