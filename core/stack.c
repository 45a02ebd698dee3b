#include "stack.h"
#include "os.h"

#define BUCKET_BITS 16
#define BUCKETS ((size_t)1 << BUCKET_BITS)
#define CHUNK_SIZE ((size_t)1 << 20)

/* Readers walk the chains without a lock: an entry is complete before it
 * is linked, and entries are never removed. Insertions take add_lock. */
static ms_stack_t *_Atomic *_Atomic buckets;
static ms_lock_t add_lock = MS_LOCK_INIT;
static char *chunk, *chunk_end; /* bump allocation of entries, under add_lock */
static bool add_lock_taken_for_fork, report_lock_taken_for_fork;

ms_lock_t ms_stack_report_lock = MS_LOCK_INIT;

static uint64_t hash_frames(const uintptr_t *frames, unsigned depth) {
    uint64_t h = 0x9e3779b97f4a7c15u ^ depth;
    for (unsigned i = 0; i < depth; i++) {
        h ^= frames[i];
        h *= 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    return h;
}

static bool same(const ms_stack_t *s, uint64_t hash, const uintptr_t *frames, unsigned depth) {
    if (s->hash != hash || s->depth != depth)
        return false;
    for (unsigned i = 0; i < depth; i++)
        if (s->frames[i] != frames[i])
            return false;
    return true;
}

static ms_stack_t *find(ms_stack_t *s, uint64_t hash, const uintptr_t *frames, unsigned depth) {
    for (; s; s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (same(s, hash, frames, depth))
            return s;
    return NULL;
}

static void *carve(size_t size) {
    size = (size + 15) & ~(size_t)15;
    if ((size_t)(chunk_end - chunk) < size) {
        char *fresh = ms_os_map(CHUNK_SIZE);
        if (fresh == NULL)
            return NULL;
        chunk = fresh;
        chunk_end = fresh + CHUNK_SIZE;
    }
    void *p = chunk;
    chunk += size;
    return p;
}

ms_stack_t *ms_stack_intern(const uintptr_t *frames, unsigned depth) {
    if (depth > MS_STACK_MAX)
        depth = MS_STACK_MAX;
    uint64_t hash = hash_frames(frames, depth);
    ms_stack_t *_Atomic *table = atomic_load_explicit(&buckets,
                                                       memory_order_acquire);
    if (table) {
        ms_stack_t *known = find(atomic_load_explicit(&table[hash & (BUCKETS - 1)],
                                                      memory_order_acquire),
                                 hash, frames, depth);
        if (known)
            return known;
    }
    ms_lock(&add_lock);
    ms_stack_t *result = NULL;
    if (buckets == NULL) {
        ms_stack_t *_Atomic *fresh = ms_os_map(BUCKETS * sizeof *fresh);
        if (fresh == NULL)
            goto out;
        atomic_store_explicit(&buckets, fresh, memory_order_release);
    }
    ms_stack_t *_Atomic *head = &buckets[hash & (BUCKETS - 1)];
    ms_stack_t *first = atomic_load_explicit(head, memory_order_relaxed);
    result = find(first, hash, frames, depth); /* added since we looked */
    if (result == NULL) {
        result = carve(sizeof(ms_stack_t) + depth * sizeof(uintptr_t));
        if (result == NULL)
            goto out;
        result->hash = hash;
        result->depth = depth;
        for (unsigned i = 0; i < depth; i++)
            result->frames[i] = frames[i];
        atomic_store_explicit(&result->next, first, memory_order_relaxed);
        atomic_store_explicit(head, result, memory_order_release);
    }
out:
    ms_unlock(&add_lock);
    return result;
}

void ms_stack_walk(void (*visit)(ms_stack_t *, void *), void *arg) {
    ms_stack_t *_Atomic *table = atomic_load_explicit(&buckets,
                                                       memory_order_acquire);
    if (table == NULL)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        for (ms_stack_t *s = atomic_load_explicit(&table[i], memory_order_acquire); s;
             s = atomic_load_explicit(&s->next, memory_order_acquire))
            visit(s, arg);
}

static void clear_report(ms_stack_t *s, void *arg) {
    s->report_count = 0;
    s->report_bytes = 0;
}

void ms_stack_report_clear(void) { ms_stack_walk(clear_report, NULL); }

void ms_stack_fork_prepare(void) {
    ms_lock_for_fork(&ms_stack_report_lock, &report_lock_taken_for_fork);
    ms_lock_for_fork(&add_lock, &add_lock_taken_for_fork);
}

void ms_stack_fork_parent(void) {
    ms_unlock_after_fork(&add_lock, add_lock_taken_for_fork);
    ms_unlock_after_fork(&ms_stack_report_lock, report_lock_taken_for_fork);
}

void ms_stack_fork_child(void) {
    ms_lock_reset(&add_lock);
    ms_lock_reset(&ms_stack_report_lock);
}
