#include "large_cache.h"
#include "host.h"
#include "os.h"
#include "stats.h"

/* Sized for a program that frees a few hundred MiB of big buffers at once
 * and builds them again (bench/frag): refaulting them costs far more than
 * keeping them a moment. An idle heap still returns everything on its
 * next collection (heap.c), so this bounds memory only while busy. */
#define ENTRIES 64
#define BYTES_MAX ((size_t)256 << 20)
#define KEEP_MS 500

typedef struct {
    segment_t *segment;
    uint64_t since_ms;
} entry_t;

ms_lock_t ms_large_cache_lock = MS_LOCK_INIT;
static entry_t entries[ENTRIES];
static unsigned count;
static size_t bytes;

/* Loans (see large_cache.h): few at a time, since each holds a whole
 * cached mapping resident past its block's limit until it ends. */
#define LOANS 8
static entry_t loans[LOANS];
static unsigned loan_count;

static void remove_at(unsigned i, segment_t **out) {
    *out = entries[i].segment;
    bytes -= entries[i].segment->mapped_size;
    entries[i] = entries[--count];
}

static void unmap_all(segment_t **victims, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        ms_stats_add(MS_STAT_large_cached, -(int64_t)victims[i]->mapped_size);
        ms_os_unmap(victims[i], victims[i]->mapped_size);
    }
}

void ms_large_cache_put(segment_t *segment) {
    size_t size = segment->mapped_size;
    if (size > BYTES_MAX / 4) {
        ms_os_unmap(segment, size);
        return;
    }
    segment_t *victims[ENTRIES];
    unsigned n = 0;
    uint64_t now = ms_host_now_ms();
    ms_lock(&ms_large_cache_lock);
    /* Make room by dropping the oldest entries. */
    while (count == ENTRIES || bytes + size > BYTES_MAX) {
        unsigned oldest = 0;
        for (unsigned i = 1; i < count; i++)
            if (entries[i].since_ms < entries[oldest].since_ms)
                oldest = i;
        remove_at(oldest, &victims[n++]);
    }
    entries[count++] = (entry_t){segment, now};
    bytes += size;
    ms_unlock(&ms_large_cache_lock);
    ms_stats_add(MS_STAT_large_cached, (int64_t)size);
    unmap_all(victims, n); /* no system call under the lock */
}

/* Which entry serves a request: the smallest that fits with at most half
 * again to spare; else the biggest smaller one, which the caller grows
 * (its resident pages still save faults); else the smallest bigger one,
 * which the caller trims. */
static unsigned choose(size_t mapped) {
    unsigned fit = ENTRIES, smaller = ENTRIES, bigger = ENTRIES;
    for (unsigned i = 0; i < count; i++) {
        size_t size = entries[i].segment->mapped_size;
        if (size >= mapped && size - mapped <= mapped / 2) {
            if (fit == ENTRIES || size < entries[fit].segment->mapped_size)
                fit = i;
        } else if (size < mapped) {
            if (smaller == ENTRIES || size > entries[smaller].segment->mapped_size)
                smaller = i;
        } else if (bigger == ENTRIES || size < entries[bigger].segment->mapped_size) {
            bigger = i;
        }
    }
    return fit != ENTRIES ? fit : smaller != ENTRIES ? smaller : bigger;
}

/* A segment made from a much bigger block keeps only a segment's worth of
 * its pages and unmaps the rest, while the program that freed a buffer that
 * big is likely to want one again soon (a growing buffer, bench/realloc:
 * 3.6 MiB more at its peak when its 32 MiB block became a segment). */
#define SEGMENT_FROM_MAX (2 * MS_SEGMENT_SIZE)

/* The entry with the most bytes mapped, up to SEGMENT_FROM_MAX, or ENTRIES
 * if there is none. */
static unsigned biggest_entry(void) {
    unsigned biggest = ENTRIES;
    for (unsigned i = 0; i < count; i++) {
        size_t size = entries[i].segment->mapped_size;
        if (size <= SEGMENT_FROM_MAX &&
            (biggest == ENTRIES || size > entries[biggest].segment->mapped_size))
            biggest = i;
    }
    return biggest;
}

/* The chosen entry (by choose(mapped), or the biggest), out of the cache. */
static segment_t *take(bool biggest, size_t mapped) {
    segment_t *found = NULL;
    ms_lock(&ms_large_cache_lock);
    unsigned best = biggest ? biggest_entry() : choose(mapped);
    if (best < ENTRIES)
        remove_at(best, &found);
    ms_unlock(&ms_large_cache_lock);
    if (found)
        ms_stats_add(MS_STAT_large_cached, -(int64_t)found->mapped_size);
    return found;
}

segment_t *ms_large_cache_take(size_t mapped) { return take(false, mapped); }

static unsigned loan_index(const segment_t *segment) {
    unsigned i = 0;
    while (i < loan_count && loans[i].segment != segment)
        i++;
    return i;
}

bool ms_large_cache_lend(segment_t *segment, size_t limit) {
    uint64_t now = ms_host_now_ms();
    ms_lock(&ms_large_cache_lock);
    bool lent = loan_count < LOANS;
    if (lent) {
        loans[loan_count++] = (entry_t){segment, now};
        segment->large_limit = limit;
    }
    ms_unlock(&ms_large_cache_lock);
    return lent;
}

bool ms_large_cache_loan_extend(segment_t *segment, size_t limit) {
    ms_lock(&ms_large_cache_lock);
    /* A loan always leaves a tail (ms_large_on_loan tells by it), so one
     * grown into the whole mapping is over. */
    bool standing = loan_index(segment) < loan_count && limit < segment->mapped_size;
    if (standing)
        segment->large_limit = limit;
    ms_unlock(&ms_large_cache_lock);
    return standing;
}

void ms_large_cache_loan_end(segment_t *segment) {
    ms_lock(&ms_large_cache_lock);
    unsigned i = loan_index(segment);
    if (i < loan_count)
        loans[i] = loans[--loan_count];
    ms_unlock(&ms_large_cache_lock);
    segment->large_limit = segment->mapped_size;
}

/* Unmaps the tails of the loans that have lasted a collection interval (all
 * of them if `all`). Unlike the cache's unmaps, under the lock: an owner
 * could otherwise move its limit into the tail between the two. Owners
 * find their mapping ending at the limit at their next resize or free. */
static size_t end_old_loans(uint64_t now, bool all) {
    size_t released = 0;
    for (unsigned i = 0; i < loan_count;) {
        segment_t *segment = loans[i].segment;
        if (all || now - loans[i].since_ms >= KEEP_MS) {
            size_t tail = segment->mapped_size - segment->large_limit;
            if (tail > 0)
                ms_os_unmap((char *)segment + segment->large_limit, tail);
            /* Release: pairs with the owner's look in ms_large_on_loan. */
            __atomic_store_n(&segment->mapped_size, segment->large_limit, __ATOMIC_RELEASE);
            released += tail;
            loans[i] = loans[--loan_count];
        } else {
            i++;
        }
    }
    return released;
}

segment_t *ms_large_cache_take_biggest(void) { return take(true, 0); }

size_t ms_large_cache_collect(bool all) {
    segment_t *victims[ENTRIES];
    unsigned n = 0;
    size_t released = 0;
    uint64_t now = ms_host_now_ms();
    ms_lock(&ms_large_cache_lock);
    released += end_old_loans(now, all);
    for (unsigned i = 0; i < count;) {
        if (all || now - entries[i].since_ms >= KEEP_MS) {
            released += entries[i].segment->mapped_size;
            remove_at(i, &victims[n++]);
        } else {
            i++;
        }
    }
    ms_unlock(&ms_large_cache_lock);
    unmap_all(victims, n);
    return released;
}
