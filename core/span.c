#include "span.h"
#include <stdbool.h>
#include <string.h>
#include "os.h"
#include "secure.h"
#include "size_class.h"
#include "stats.h"

span_t *ms_span_init(segment_t *segment, unsigned first, unsigned count, unsigned size_class) {
    span_t *span = &segment->spans[first];
    size_t block_size = ms_size_class_size(size_class);
    *span = (span_t){0};
    span->block_size = (uint32_t)block_size;
    bool power_of_two = (block_size & (block_size - 1)) == 0;
    span->block_magic = UINT64_MAX / block_size + 1 + power_of_two;
    span->size_class = (uint8_t)size_class;
    span->slice_count = (uint8_t)count;
    for (unsigned i = 1; i < count; i++) {
        segment->spans[first + i] = (span_t){0};
        segment->spans[first + i].head_delta = (uint8_t)i;
    }
    ms_stats_add(MS_STAT_spans_created, 1);
    return span;
}

void ms_span_release(segment_t *segment, span_t *span) {
    unsigned first = (unsigned)(span - segment->spans), count = span->slice_count;
    ms_span_forget_parked(segment, span);
    for (unsigned i = 0; i < count; i++)
        segment->spans[first + i] = (span_t){0};
    ms_segment_give_slices(segment, first, count);
}

/* The hardened build carves about 16 KiB at a time, to shuffle (see
 * ms_span_carve for the default build). */
#define CARVE_BYTES (16 * 1024)
#define CARVE_MAX_BLOCKS 128
/* A span carved whole once (reused after it emptied) faults nothing in:
 * a slice at a time costs a quarter of the calls. */
#define WHOLE_CARVE_BYTES MS_SLICE_SIZE

/* Bytes of the span that can hold blocks: all of it, except the guard page
 * at the end of the segment in the secure build. */
static size_t capacity(const segment_t *segment, const span_t *span) {
    size_t bytes = (size_t)span->slice_count * MS_SLICE_SIZE;
    if (span + span->slice_count == segment->spans + MS_SLICES_PER_SEGMENT)
        bytes -= MS_SECURE_GUARD;
    return bytes;
}

/* Threads blocks [0, batch) from first onto span's list, the first block at
 * the head. The hardened build threads them in random order: the addresses
 * of consecutive mallocs tell an attacker nothing about their neighbours.
 * The default build walks back to front with one pointer: a whole span is
 * carved again each time it empties, up to 128 blocks a call, and this
 * loop is most of what a warm malloc costs beyond its fast path. */
static block_t *thread_batch(char *first, unsigned batch, size_t block_size, span_t *span) {
    block_t *tail = span->free; /* normally NULL: carving happens when free is empty */
    if (MS_SECURE) {
        unsigned order[CARVE_MAX_BLOCKS];
        for (unsigned i = 0; i < batch; i++) {
            unsigned j = ms_secure_random_below(i + 1);
            order[i] = order[j];
            order[j] = i;
        }
        for (unsigned i = batch; i-- > 0;) {
            block_t *b = (block_t *)(first + (size_t)order[i] * block_size);
            ms_secure_poison(b, block_size);
            b->next = ms_link_code(tail, b);
            b->freed_mark = (uintptr_t)span;
            tail = b;
        }
        return tail;
    }
    for (char *b = first + (size_t)(batch - 1) * block_size;; b -= block_size) {
        block_t *block = (block_t *)b;
        block->next = tail;
        block->freed_mark = (uintptr_t)span;
        tail = block;
        if (b == first)
            return tail;
    }
}

unsigned ms_span_carve(segment_t *segment, span_t *span) {
    size_t span_bytes = capacity(segment, span);
    /* Asked of every span that runs out of holes, most often carved to its
     * end already: answered before the divisions below. */
    if (span->carved_end + span->block_size > span_bytes)
        return 0;
    unsigned left = (unsigned)((span_bytes - span->carved_end) / span->block_size);
    /* Carving writes a link into every block of the batch. Into fresh
     * pages (a span never carved whole), carve the blocks that start in the
     * page where carving stands, no further: what a class carved and never
     * handed out then stays under a page, where batches doubling to 16 KiB
     * left half a batch on average in every class that stopped growing
     * (bench/threads: about 60 KiB per thread over the 16 classes it
     * uses). One slow path per page costs little beside faulting the page
     * in. The hardened build keeps full batches to shuffle. */
    size_t size = span->block_size;
    unsigned batch;
    if (span->whole)
        batch = (unsigned)(WHOLE_CARVE_BYTES / size);
    else if (!MS_SECURE)
        batch = (unsigned)((MS_OS_PAGE - (span->carved_end & (MS_OS_PAGE - 1)) + size - 1) / size);
    else
        batch = (unsigned)(CARVE_BYTES / size);
    if (batch == 0)
        batch = 1;
    if (batch > CARVE_MAX_BLOCKS)
        batch = CARVE_MAX_BLOCKS;
    if (batch > left)
        batch = left;
    if (batch == 0)
        return 0;
    char *first = ms_span_start(segment, span) + span->carved_end;
    span->free = thread_batch(first, batch, span->block_size, span);
    span->carved_end += batch * span->block_size;
    span->carved_limit += batch * (uint64_t)(span->block_size * span->block_magic);
    return batch;
}

bool ms_span_has_hole(const span_t *span, const block_t *block) {
    for (const block_t *b = span->free; b; b = ms_link_code(b->next, b))
        if (b == block)
            return true;
    return false;
}

void ms_span_trim_block(void *block, size_t block_size, size_t size) {
    uintptr_t from = ((uintptr_t)block + size + MS_OS_PAGE - 1) & ~(uintptr_t)(MS_OS_PAGE - 1);
    uintptr_t to = ((uintptr_t)block + block_size) & ~(uintptr_t)(MS_OS_PAGE - 1);
    if (from < to)
        ms_os_purge((void *)from, to - from);
}

/* ---- parked holes: the pages only holes lie on ----
 *
 * A page that no block in use and no uncarved byte overlaps holds nothing
 * but holes, and their links and marks. It goes back to the OS whole: the
 * holes on it leave the free list first ("parked"), and its bit in
 * segment->parked_pages says so. A parked hole may reach into a page that
 * stays resident (a block in use or a listed hole shares it); one parked
 * page is enough to find it again. malloc threads the parked holes back
 * (ms_span_unpark) before it carves further, a run of pages at a time, and
 * they read as zero past what threading writes, which calloc clears anyway.
 *
 * While a span has parked pages its local_key is 0 (heap.c), so every free
 * into it takes the slow path, which calls a block on a parked page a
 * double free: its mark went with the page. */
#define PAGES_PER_SLICE (MS_SLICE_SIZE / MS_OS_PAGE)
#define SPAN_PAGES_MAX (MS_SEGMENT_SIZE / MS_OS_PAGE)
#define SPAN_WORDS_MAX (SPAN_PAGES_MAX / 64)

static unsigned first_page(const segment_t *segment, const span_t *span) {
    return (unsigned)(span - segment->spans) * PAGES_PER_SLICE;
}

static bool bit_test(const uint64_t *map, unsigned i) { return (map[i / 64] >> (i % 64)) & 1; }
static void bit_set(uint64_t *map, unsigned i) { map[i / 64] |= (uint64_t)1 << (i % 64); }

static bool any_bit(const uint64_t *map, unsigned from, unsigned to) {
    for (unsigned i = from; i < to;) {
        uint64_t word = map[i / 64] >> (i % 64);
        unsigned n = 64 - i % 64 < to - i ? 64 - i % 64 : to - i;
        if (n < 64)
            word &= ((uint64_t)1 << n) - 1;
        if (word)
            return true;
        i += n;
    }
    return false;
}

static void clear_bits(uint64_t *map, unsigned from, unsigned to) {
    while (from < to) { /* a word at a time: every span reset clears its pages */
        unsigned n = 64 - from % 64 < to - from ? 64 - from % 64 : to - from;
        uint64_t mask = n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1) << (from % 64);
        map[from / 64] &= ~mask;
        from += n;
    }
}

/* parked_pages through these, which keep parked_count: most segments never
 * park a page, and the slow paths that ask about parked holes on every
 * call (malloc's, free's) then need one load to learn it. */
static void parked_set(segment_t *segment, unsigned i) {
    segment->parked_count += !bit_test(segment->parked_pages, i);
    bit_set(segment->parked_pages, i);
}

static void parked_clear(segment_t *segment, unsigned from, unsigned to) {
    for (unsigned i = from; i < to; i++)
        segment->parked_count -= bit_test(segment->parked_pages, i);
    clear_bits(segment->parked_pages, from, to);
}

static bool none_parked(const segment_t *segment) { return !ms_segment_has_parked(segment); }

static unsigned span_pages(const segment_t *segment, const span_t *span) {
    return (unsigned)(capacity(segment, span) / MS_OS_PAGE);
}

bool ms_span_has_parked_pages(const segment_t *segment, const span_t *span) {
    unsigned first = first_page(segment, span);
    return any_bit(segment->parked_pages, first, first + span->slice_count * PAGES_PER_SLICE);
}

/* Also for lookups of another heap's span, which may change meanwhile:
 * the size is read once and the pages stay within the segment. */
bool ms_span_block_on_parked_page(const segment_t *segment, const span_t *span,
                                  const void *block) {
    size_t size = __atomic_load_n(&span->block_size, __ATOMIC_RELAXED);
    size_t offset = (size_t)((uintptr_t)block & MS_SEGMENT_MASK);
    size_t end = offset + (size ? size : 1);
    if (end > MS_SEGMENT_SIZE)
        end = MS_SEGMENT_SIZE;
    return any_bit(segment->parked_pages, (unsigned)(offset / MS_OS_PAGE),
                   (unsigned)((end - 1) / MS_OS_PAGE) + 1);
}

void ms_span_forget_parked(segment_t *segment, span_t *span) {
    unsigned first = first_page(segment, span), end = first + span->slice_count * PAGES_PER_SLICE;
    if (!none_parked(segment))
        parked_clear(segment, first, end);
    clear_bits(segment->quiet_pages, first, end);
}

/* The lowest run of parked pages, cut where no block straddles the cut
 * once it holds a carving batch's worth, so that no block is left half in
 * a run still parked (it would be threaded twice): its holes back on the
 * free list. How many; 0 if there was no run, or the run held none (the
 * dead end of a span past its last block). */
static unsigned unpark_run(segment_t *segment, span_t *span, bool *found) {
    unsigned base = first_page(segment, span), pages = span_pages(segment, span);
    size_t size = span->block_size;
    unsigned p = 0;
    while (p < pages) { /* a word at a time: a span may have 1,024 pages */
        uint64_t word = segment->parked_pages[(base + p) / 64] >> ((base + p) % 64);
        if (word) {
            p += (unsigned)__builtin_ctzll(word);
            break;
        }
        p += 64 - (base + p) % 64;
    }
    *found = p < pages;
    if (!*found)
        return 0;
    unsigned end = p + 1;
    while (end < pages && bit_test(segment->parked_pages, base + end) &&
           ((size_t)(end - p) * MS_OS_PAGE < CARVE_BYTES || ((size_t)end * MS_OS_PAGE) % size))
        end++;
    parked_clear(segment, base + p, base + end);
    size_t carved = span->carved_end / size;
    size_t k = (size_t)p * MS_OS_PAGE / size, stop = ((size_t)end * MS_OS_PAGE - 1) / size + 1;
    if (stop > carved)
        stop = carved;
    if (k >= stop)
        return 0;
    char *start = ms_span_start(segment, span);
    block_t *tail = span->free;
    for (size_t i = stop; i-- > k;) {
        block_t *b = (block_t *)(start + i * size);
        if (MS_SECURE)
            ms_secure_poison(b, size);
        b->next = ms_link_code(tail, b);
        b->freed_mark = (uintptr_t)span;
        tail = b;
    }
    span->free = tail;
    return (unsigned)(stop - k);
}

unsigned ms_span_unpark(segment_t *segment, span_t *span) {
    if (none_parked(segment))
        return 0;
    bool found = true;
    unsigned threaded = 0;
    while (threaded == 0 && found)
        threaded = unpark_run(segment, span, &found);
    return threaded;
}

/* The pages of span that hold only holes, from the first `walked` holes of
 * its free list (a lower bound when the walk stops early: a page all of
 * whose bytes are holes seen is free whatever the rest of the list holds). */
static void free_pages(const segment_t *segment, const span_t *span, unsigned walked,
                       uint64_t *out) {
    uint16_t cover[SPAN_PAGES_MAX];
    memset(cover, 0, span_pages(segment, span) * sizeof cover[0]); /* most spans: 16 pages */
    const char *start = ms_span_start((segment_t *)segment, span);
    size_t size = span->block_size;
    const block_t *hole = span->free;
    for (unsigned n = 0; n < walked; n++, hole = ms_link_code(hole->next, hole)) {
        size_t from = (size_t)((const char *)hole - start), to = from + size;
        while (from < to) {
            size_t page_end = (from & ~(size_t)(MS_OS_PAGE - 1)) + MS_OS_PAGE;
            size_t stop = page_end < to ? page_end : to;
            cover[from / MS_OS_PAGE] += (uint16_t)(stop - from);
            from = stop;
        }
    }
    /* Past the last block that fits, the span's end holds none. */
    size_t end = capacity(segment, span);
    for (size_t from = span->carved_end; end - span->carved_end < size && from < end;) {
        size_t page_end = (from & ~(size_t)(MS_OS_PAGE - 1)) + MS_OS_PAGE;
        cover[from / MS_OS_PAGE] += (uint16_t)(page_end - from);
        from = page_end;
    }
    for (unsigned p = 0; p < span_pages(segment, span); p++)
        if (cover[p] == MS_OS_PAGE)
            bit_set(out, p);
}

/* Takes the holes that overlap a page in `parking` (span-relative bits) off
 * the first `walked` entries of the free list. */
static void unlink_parked(segment_t *segment, span_t *span, unsigned walked,
                          const uint64_t *parking) {
    const char *start = ms_span_start(segment, span);
    size_t size = span->block_size;
    block_t *prev = NULL, *hole = span->free;
    for (unsigned n = 0; n < walked; n++) {
        block_t *next = ms_link_code(hole->next, hole);
        size_t from = (size_t)((const char *)hole - start);
        if (any_bit(parking, (unsigned)(from / MS_OS_PAGE),
                    (unsigned)((from + size - 1) / MS_OS_PAGE) + 1)) {
            if (prev)
                prev->next = ms_link_code(next, prev);
            else
                span->free = next;
        } else {
            prev = hole;
        }
        hole = next;
    }
}

size_t ms_span_purge_holes(segment_t *segment, span_t *span, bool everything,
                           ms_hole_budget_t *budget) {
    if (budget->purges == 0)
        return 0;
    /* Without holes, only a span whose pages were written past where it
     * carves has any to give; none of its pages is free at this look. */
    if (span->free == NULL && !span->whole && !span->resident_tail) {
        unsigned base = first_page(segment, span);
        clear_bits(segment->quiet_pages, base, base + span_pages(segment, span));
        return 0;
    }
    unsigned walked = 0;
    for (const block_t *hole = span->free; hole && walked < budget->visits;
         hole = ms_link_code(hole->next, hole), walked++)
        /* A corrupted link is left for malloc to report (heap.c:next_hole);
         * never read or write through it. */
        if (!ms_span_is_block_start(segment, span, hole))
            break;
    budget->visits -= walked;
    unsigned base = first_page(segment, span), pages = span_pages(segment, span);
    uint64_t holes[SPAN_WORDS_MAX] = {0}, tail[SPAN_WORDS_MAX] = {0};
    free_pages(segment, span, walked, holes);
    /* Past the carved blocks, a span carved whole before (and emptied and
     * carved again since), or made on slices left resident, may still have
     * old pages. */
    if (span->whole || span->resident_tail)
        for (unsigned p = (unsigned)((span->carved_end + MS_OS_PAGE - 1) / MS_OS_PAGE); p < pages; p++)
            bit_set(tail, p);
    /* Which pages go: runs of pages free now and not parked already, each
     * run whole if any of its pages may go (everything asked, or free at
     * the previous look too). A run is the unit because a hole on two
     * pages must be parked with both or neither: half parked, unpark would
     * thread it twice. */
    uint64_t going[SPAN_WORDS_MAX] = {0};
    for (unsigned p = 0; p < pages; p++) {
        unsigned end = p;
        bool aged = false;
        while (end < pages && (bit_test(holes, end) || bit_test(tail, end)) &&
               !bit_test(segment->parked_pages, base + end)) {
            aged |= everything || bit_test(segment->quiet_pages, base + end);
            end++;
        }
        if (aged)
            for (unsigned q = p; q < end; q++)
                bit_set(going, q);
        p = end;
    }
    /* Runs of going pages, one madvise each, while the budget lasts. */
    unsigned runs_end = 0;
    for (unsigned p = 0, runs = 0; p < pages; p++) {
        if (!bit_test(going, p))
            continue;
        if (runs == budget->purges) {
            clear_bits(going, p, pages);
            break;
        }
        while (p + 1 < pages && bit_test(going, p + 1))
            p++;
        runs++;
        runs_end = p + 1;
    }
    uint64_t parking[SPAN_WORDS_MAX];
    for (unsigned w = 0; w < SPAN_WORDS_MAX; w++)
        parking[w] = going[w] & holes[w];
    unlink_parked(segment, span, walked, parking);
    size_t purged = 0;
    for (unsigned p = 0; p < runs_end; p++) {
        if (!bit_test(going, p))
            continue;
        unsigned from = p;
        while (p + 1 < runs_end && bit_test(going, p + 1))
            p++;
        ms_os_purge(ms_span_start(segment, span) + (size_t)from * MS_OS_PAGE,
                    (size_t)(p + 1 - from) * MS_OS_PAGE);
        budget->purges--;
        purged += (size_t)(p + 1 - from) * MS_OS_PAGE;
    }
    bool tail_purged = false;
    for (unsigned p = 0; p < pages; p++) {
        bool free = bit_test(holes, p) || bit_test(tail, p);
        clear_bits(segment->quiet_pages, base + p, base + p + 1);
        if (bit_test(parking, p))
            parked_set(segment, base + p);
        else if (bit_test(going, p))
            tail_purged = true;
        else if (free)
            bit_set(segment->quiet_pages, base + p);
    }
    if (tail_purged) {
        span->whole = 0; /* carving faults pages in again */
        span->resident_tail = 0;
    }
    if (purged)
        ms_stats_add(MS_STAT_hole_bytes_purged, (int64_t)purged);
    return purged;
}
