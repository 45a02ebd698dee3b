#include "leaks.h"
#include "host.h"
#include "os.h"
#include "records.h"

static ms_records_t live;

void ms_leaks_add(const void *address, size_t size, ms_stack_t *stack) {
    ms_records_add(&live, address, stack, size);
}

void ms_leaks_remove(const void *address) {
    ms_record_t gone;
    ms_records_remove(&live, address, &gone);
}

bool ms_leaks_requested(const void *address, size_t *size) {
    ms_record_t record;
    if (!ms_records_find(&live, address, &record))
        return false;
    *size = record.size;
    return true;
}

static void add_block(const ms_record_t *r, void *arg) {
    r->stack->report_count += 1;
    r->stack->report_bytes += r->size;
}

typedef struct {
    const ms_leaks_host_t *host;
    ms_stack_t **groups; /* NULL while counting */
    size_t count, capacity;
    double excluded_blocks, excluded_bytes;
} collect_t;

static void collect(ms_stack_t *s, void *arg) {
    collect_t *c = arg;
    if (s->report_count == 0)
        return;
    if (c->groups == NULL) {
        c->count++;
        return;
    }
    if (c->host->excluded && c->host->excluded(s)) {
        c->excluded_blocks += s->report_count;
        c->excluded_bytes += s->report_bytes;
    } else if (c->count < c->capacity) {
        c->groups[c->count++] = s;
    }
}

/* Biggest first (heap sort: no recursion, no allocation). */
static bool smaller(const ms_stack_t *a, const ms_stack_t *b) {
    return a->report_bytes != b->report_bytes ? a->report_bytes < b->report_bytes
                                              : a->report_count < b->report_count;
}

static void sift_down(ms_stack_t **g, size_t root, size_t n) {
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && smaller(g[child + 1], g[child]))
            child++;
        if (!smaller(g[child], g[root]))
            return;
        ms_stack_t *t = g[root];
        g[root] = g[child];
        g[child] = t;
    }
}

static void sort_biggest_first(ms_stack_t **g, size_t n) {
    for (size_t i = n / 2; i-- > 0;)
        sift_down(g, i, n);
    for (size_t end = n; end > 1; end--) { /* min-heap: smallest goes last */
        ms_stack_t *t = g[0];
        g[0] = g[end - 1];
        g[end - 1] = t;
        sift_down(g, 0, end - 1);
    }
}

static void write_group(int fd, const ms_stack_t *s, const ms_leaks_host_t *host) {
    ms_text_t t = {.len = 0};
    ms_text_str(&t, "mspace: ");
    ms_text_dec(&t, (uint64_t)s->report_bytes);
    ms_text_str(&t, " bytes in ");
    ms_text_dec(&t, (uint64_t)s->report_count);
    ms_text_str(&t, s->report_count == 1 ? " block" : " blocks");
    ms_text_str(&t, " never freed, allocated at:\n");
    if (s->depth == 0)
        ms_text_str(&t, "    (no stack: it could not be taken then)\n");
    for (unsigned i = 0; i < s->depth; i++) {
        ms_text_spill(&t, fd, 300);
        ms_text_str(&t, "    #");
        ms_text_dec(&t, i);
        ms_text_str(&t, " ");
        ms_text_hex(&t, s->frames[i]);
        host->describe(&t, s->frames[i]);
        ms_text_str(&t, "\n");
    }
    ms_text_str(&t, "\n");
    ms_host_write(fd, t.buf, t.len);
}

size_t ms_leaks_report(int fd, const ms_leaks_host_t *host) {
    ms_lock(&ms_stack_report_lock);
    ms_stack_report_clear();
    ms_records_walk(&live, add_block, NULL);
    collect_t c = {.host = host};
    ms_stack_walk(collect, &c);
    size_t bytes = c.count * sizeof(ms_stack_t *);
    c.capacity = c.count;
    c.count = 0;
    c.groups = bytes ? ms_os_map(bytes) : NULL;
    if (bytes && c.groups == NULL) {
        ms_unlock(&ms_stack_report_lock);
        ms_host_write(fd, "mspace: no memory for the leak report\n", 38);
        return 0;
    }
    if (c.groups)
        ms_stack_walk(collect, &c);
    sort_biggest_first(c.groups, c.count);
    double blocks = 0, total = 0;
    for (size_t i = 0; i < c.count; i++) {
        write_group(fd, c.groups[i], host);
        blocks += c.groups[i]->report_count;
        total += c.groups[i]->report_bytes;
    }
    ms_text_t t = {.len = 0};
    ms_text_str(&t, "mspace: leak summary: ");
    ms_text_dec(&t, (uint64_t)total);
    ms_text_str(&t, " bytes in ");
    ms_text_dec(&t, (uint64_t)blocks);
    ms_text_str(&t, " blocks never freed");
    if (c.excluded_blocks > 0) {
        ms_text_str(&t, " (not counting ");
        ms_text_dec(&t, (uint64_t)c.excluded_bytes);
        ms_text_str(&t, " bytes in ");
        ms_text_dec(&t, (uint64_t)c.excluded_blocks);
        ms_text_str(&t, " blocks kept by libc, the loader and library initialisers)");
    }
    ms_text_str(&t, "\n");
    ms_host_write(fd, t.buf, t.len);
    if (c.groups)
        ms_os_unmap(c.groups, bytes);
    ms_unlock(&ms_stack_report_lock);
    return (size_t)blocks;
}

void ms_leaks_fork_prepare(void) { ms_records_fork_prepare(&live); }
void ms_leaks_fork_parent(void) { ms_records_fork_parent(&live); }
void ms_leaks_fork_child(void) { ms_records_fork_child(&live); }
