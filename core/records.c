#include "records.h"
#include "os.h"

#define FIRST_BUCKETS 512
#define CHUNK_SIZE ((size_t)64 * 1024)

/* Block addresses are 16-byte aligned and clustered: mix before use. The
 * low bits pick the stripe, the high bits the bucket in it. */
static uint64_t mix(uintptr_t address) {
    uint64_t h = (uint64_t)address * 0x9e3779b97f4a7c15u;
    return h ^ (h >> 29);
}

static ms_record_stripe_t *stripe_of(ms_records_t *records, uint64_t hash) {
    return &records->stripes[hash % MS_RECORD_STRIPES];
}

static size_t bucket_of(const ms_record_stripe_t *stripe, uint64_t hash) {
    return (hash >> 6) & stripe->mask;
}

/* Only the lock holder writes count: a plain store, no locked add. */
static void count_add(ms_record_stripe_t *stripe, int delta) {
    size_t n = atomic_load_explicit(&stripe->count, memory_order_relaxed);
    atomic_store_explicit(&stripe->count, n + delta, memory_order_relaxed);
}

static ms_record_t *new_record(ms_record_stripe_t *stripe) {
    ms_record_t *r = stripe->spare;
    if (r) {
        stripe->spare = r->next;
        return r;
    }
    if ((size_t)(stripe->chunk_end - stripe->chunk) < sizeof *r) {
        char *fresh = ms_os_map(CHUNK_SIZE);
        if (fresh == NULL)
            return NULL;
        stripe->chunk = fresh;
        stripe->chunk_end = fresh + CHUNK_SIZE;
    }
    r = (ms_record_t *)stripe->chunk;
    stripe->chunk += sizeof *r;
    return r;
}

/* Doubles the stripe's table once it holds two records per bucket; if the
 * mapping fails the chains just grow longer. Returns the old table for the
 * caller to unmap after unlocking. */
static ms_record_t **grow(ms_record_stripe_t *stripe, size_t *old_bytes) {
    size_t old_count = stripe->buckets ? stripe->mask + 1 : 0;
    *old_bytes = old_count * sizeof(ms_record_t *);
    if (old_count && stripe->count <= 2 * old_count)
        return NULL;
    size_t count = old_count ? 2 * old_count : FIRST_BUCKETS;
    ms_record_t **fresh = ms_os_map(count * sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    ms_record_t **old = stripe->buckets;
    stripe->buckets = fresh;
    stripe->mask = count - 1;
    for (size_t i = 0; i < old_count; i++) {
        for (ms_record_t *r = old[i], *next; r; r = next) {
            next = r->next;
            ms_record_t **head = &fresh[bucket_of(stripe, mix(r->address))];
            r->next = *head;
            *head = r;
        }
    }
    return old;
}

bool ms_records_add(ms_records_t *records, const void *address, ms_stack_t *stack, size_t size) {
    uint64_t hash = mix((uintptr_t)address);
    ms_record_stripe_t *stripe = stripe_of(records, hash);
    size_t old_bytes = 0;
    bool added = false;
    ms_lock(&stripe->lock);
    ms_record_t **old = grow(stripe, &old_bytes);
    if (stripe->buckets) {
        ms_record_t **head = &stripe->buckets[bucket_of(stripe, hash)];
        ms_record_t *r = *head;
        while (r && r->address != (uintptr_t)address)
            r = r->next;
        if (r == NULL && (r = new_record(stripe)) != NULL) {
            r->address = (uintptr_t)address;
            r->next = *head;
            *head = r;
            count_add(stripe, 1);
        }
        if (r) {
            r->stack = stack;
            r->size = size;
            added = true;
        }
    }
    ms_unlock(&stripe->lock);
    if (old)
        ms_os_unmap(old, old_bytes);
    return added;
}

/* The link that holds the record of address in its stripe's table (the
 * stripe locked), or NULL. */
static ms_record_t **find_link(ms_record_stripe_t *stripe, uint64_t hash, const void *address) {
    if (stripe->buckets == NULL)
        return NULL;
    for (ms_record_t **link = &stripe->buckets[bucket_of(stripe, hash)]; *link;
         link = &(*link)->next)
        if ((*link)->address == (uintptr_t)address)
            return link;
    return NULL;
}

static bool take(ms_records_t *records, const void *address, ms_record_t *out, bool remove) {
    uint64_t hash = mix((uintptr_t)address);
    ms_record_stripe_t *stripe = stripe_of(records, hash);
    if (atomic_load_explicit(&stripe->count, memory_order_relaxed) == 0)
        return false; /* nothing here to find: skip the lock */
    ms_lock(&stripe->lock);
    ms_record_t **link = find_link(stripe, hash, address);
    if (link) {
        ms_record_t *r = *link;
        *out = *r;
        if (remove) {
            *link = r->next;
            r->next = stripe->spare;
            stripe->spare = r;
            count_add(stripe, -1);
        }
    }
    ms_unlock(&stripe->lock);
    return link != NULL;
}

bool ms_records_remove(ms_records_t *records, const void *address, ms_record_t *out) {
    return take(records, address, out, true);
}

bool ms_records_find(ms_records_t *records, const void *address, ms_record_t *out) {
    return take(records, address, out, false);
}

void ms_records_walk(ms_records_t *records, void (*visit)(const ms_record_t *, void *), void *arg) {
    for (int s = 0; s < MS_RECORD_STRIPES; s++) {
        ms_record_stripe_t *stripe = &records->stripes[s];
        ms_lock(&stripe->lock);
        if (stripe->buckets)
            for (size_t i = 0; i <= stripe->mask; i++)
                for (ms_record_t *r = stripe->buckets[i]; r; r = r->next)
                    visit(r, arg);
        ms_unlock(&stripe->lock);
    }
}

void ms_records_fork_prepare(ms_records_t *records) {
    for (int s = 0; s < MS_RECORD_STRIPES; s++)
        ms_lock_for_fork(&records->stripes[s].lock, &records->stripes[s].taken_for_fork);
}

void ms_records_fork_parent(ms_records_t *records) {
    for (int s = MS_RECORD_STRIPES - 1; s >= 0; s--)
        ms_unlock_after_fork(&records->stripes[s].lock, records->stripes[s].taken_for_fork);
}

void ms_records_fork_child(ms_records_t *records) {
    for (int s = 0; s < MS_RECORD_STRIPES; s++)
        ms_lock_reset(&records->stripes[s].lock);
}
