#include "profile.h"
#include "records.h"
#include "sample.h"
#include "text.h"

static ms_records_t live;

void ms_profile_add(const void *address, size_t size, ms_stack_t *stack) {
    double weight = ms_sample_weight(size);
    atomic_fetch_add_explicit(&stack->sampled_count, (uint64_t)(weight + 0.5), memory_order_relaxed);
    atomic_fetch_add_explicit(&stack->sampled_bytes, (uint64_t)(weight * size + 0.5),
                              memory_order_relaxed);
    ms_records_add(&live, address, stack, size);
}

void ms_profile_remove(const void *address) {
    ms_record_t gone;
    ms_records_remove(&live, address, &gone);
}

typedef struct {
    int fd;
    ms_text_t text;
    double live_count, live_bytes, total_count, total_bytes;
} writer_t;

static void add_live(const ms_record_t *r, void *arg) {
    double weight = ms_sample_weight(r->size);
    r->stack->report_count += weight;
    r->stack->report_bytes += weight * r->size;
}

static uint64_t rounded(double x) { return (uint64_t)(x + 0.5); }

static void sum_stack(ms_stack_t *s, void *arg) {
    writer_t *w = arg;
    w->live_count += s->report_count;
    w->live_bytes += s->report_bytes;
    w->total_count += atomic_load_explicit(&s->sampled_count, memory_order_relaxed);
    w->total_bytes += atomic_load_explicit(&s->sampled_bytes, memory_order_relaxed);
}

/* "<count>: <bytes> [<count>: <bytes>]" with pprof's column widths. */
static void put_counts(ms_text_t *t, uint64_t live_count, uint64_t live_bytes, uint64_t total_count,
                       uint64_t total_bytes) {
    ms_text_dec(t, live_count);
    ms_text_str(t, ": ");
    ms_text_dec(t, live_bytes);
    ms_text_str(t, " [");
    ms_text_dec(t, total_count);
    ms_text_str(t, ": ");
    ms_text_dec(t, total_bytes);
    ms_text_str(t, "] @");
}

static void write_stack(ms_stack_t *s, void *arg) {
    writer_t *w = arg;
    uint64_t total_count = atomic_load_explicit(&s->sampled_count, memory_order_relaxed);
    if (total_count == 0 || s->depth == 0) /* not a profile stack, or no frames */
        return;
    put_counts(&w->text, rounded(s->report_count), rounded(s->report_bytes), total_count,
               atomic_load_explicit(&s->sampled_bytes, memory_order_relaxed));
    for (unsigned i = 0; i < s->depth; i++) {
        ms_text_spill(&w->text, w->fd, 24);
        ms_text_str(&w->text, " ");
        ms_text_hex(&w->text, s->frames[i]);
    }
    ms_text_str(&w->text, "\n");
    ms_text_spill(&w->text, w->fd, 200);
}

void ms_profile_write(int fd) {
    writer_t w = {.fd = fd, .text = {.len = 0}};
    ms_lock(&ms_stack_report_lock);
    ms_stack_report_clear();
    ms_records_walk(&live, add_live, NULL);
    ms_stack_walk(sum_stack, &w);
    ms_text_str(&w.text, "heap profile: ");
    put_counts(&w.text, rounded(w.live_count), rounded(w.live_bytes), rounded(w.total_count),
               rounded(w.total_bytes));
    ms_text_str(&w.text, " heapprofile\n");
    ms_stack_walk(write_stack, &w);
    ms_text_spill(&w.text, fd, sizeof w.text.buf);
    ms_unlock(&ms_stack_report_lock);
}

void ms_profile_fork_prepare(void) { ms_records_fork_prepare(&live); }
void ms_profile_fork_parent(void) { ms_records_fork_parent(&live); }
void ms_profile_fork_child(void) { ms_records_fork_child(&live); }
