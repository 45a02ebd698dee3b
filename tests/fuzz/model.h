/* Shadow-model driver: reads a byte string as a sequence of allocation calls
 * over every C entry point and checks each result against a table of the
 * blocks it believes are live. Shared by the libFuzzer target
 * (tests/fuzz/fuzz_malloc.c, input = the fuzzer's bytes) and the seeded
 * stress test (tests/stress/model_random.c, input = a random stream).
 *
 * Checked after every step:
 *   - a sane request gives a non-NULL pointer aligned as asked;
 *   - the block [p, p + usable) overlaps no other live block of the table;
 *   - malloc_usable_size >= the request, and stays the same while it lives;
 *   - calloc memory is zero; every block carries a pattern derived from its
 *     slot and generation over its usable size (sampled above 64 KiB, see
 *     model_next_range), verified before it is freed or reallocated, and
 *     realloc keeps min(old, new) requested bytes;
 *   - impossible requests (SIZE_MAX, PTRDIFF_MAX, 2^48, calloc and
 *     reallocarray overflow) give NULL with errno ENOMEM and leave the old
 *     block of a realloc intact; bad posix_memalign alignments give EINVAL;
 *   - free leaves errno alone.
 * A failure prints what went wrong and aborts, so libFuzzer records a crash.
 *
 * Threads: each runs its own model_t; ops on a shared model_handoff_t swap a
 * block with another thread's, so frees and reallocs also happen away from
 * the allocating thread. Overlap between the tables of different threads is
 * the caller's to check (model_random.c does it after joining). */
#ifndef MSPACE_TEST_MODEL_H
#define MSPACE_TEST_MODEL_H
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "../pattern.h"

#define MODEL_SLOTS 256
#define MODEL_HANDOFF_SLOTS 64
/* Large requests become medium ones past this many live bytes, so any input
 * stays within a few hundred MiB. */
#define MODEL_LIVE_BUDGET ((size_t)64 << 20)
#define MODEL_KiB ((size_t)1 << 10)
#define MODEL_MiB ((size_t)1 << 20)

typedef struct {
    unsigned char *p; /* NULL: slot empty */
    size_t size;      /* requested bytes */
    size_t usable;    /* malloc_usable_size when it was made */
    size_t align;     /* alignment asked for (16 for plain malloc) */
    uint64_t tag;     /* pattern seed: (thread, slot, generation) */
} model_block_t;

typedef struct {
    pthread_mutex_t lock;
    model_block_t slot[MODEL_HANDOFF_SLOTS];
} model_handoff_t;

enum model_op {
    OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOC_GROW, OP_REALLOC_SHRINK,
    OP_REALLOC_ZERO, OP_REALLOC_NULL, OP_REALLOCARRAY, OP_FREE, OP_POSIX_MEMALIGN,
    OP_ALIGNED_ALLOC, OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_CHECK, OP_OVERFLOW,
    OP_HANDOFF, OP_COUNT
};

static const char *const model_op_name[OP_COUNT] = {
    "malloc", "calloc", "realloc", "realloc(grow)", "realloc(shrink)", "realloc(p, 0)",
    "realloc(NULL, n)", "reallocarray", "free", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "malloc_usable_size/verify", "overflow request",
    "handoff"};

/* Opcode byte -> operation: plain malloc and free weigh most, as in programs. */
static const uint8_t model_op_of[32] = {
    OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC,
    OP_CALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOC, OP_REALLOC_GROW, OP_REALLOC_GROW,
    OP_REALLOC_SHRINK, OP_REALLOC_ZERO, OP_REALLOC_NULL, OP_REALLOCARRAY,
    OP_FREE, OP_FREE, OP_FREE, OP_FREE, OP_FREE, OP_POSIX_MEMALIGN,
    OP_ALIGNED_ALLOC, OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_CHECK, OP_CHECK,
    OP_OVERFLOW, OP_HANDOFF, OP_HANDOFF, OP_MALLOC};

typedef struct {
    model_block_t slot[MODEL_SLOTS];
    const uint8_t *data; /* input bytes, or NULL to draw from rng */
    size_t len, pos;
    uint64_t rng;
    model_handoff_t *handoff; /* NULL: OP_HANDOFF frees instead */
    int id;                   /* thread number in messages and tags */
    uint64_t generation;
    uint64_t ops, op_count[OP_COUNT];
    uint64_t foreign; /* blocks taken from the handoff that another thread made */
    size_t live_bytes;
    /* what the current step is doing, for the failure message */
    enum model_op op;
    unsigned cur_slot;
} model_t;

static void model_init(model_t *m, int id, const uint8_t *data, size_t len, uint64_t seed,
                       model_handoff_t *handoff) {
    *m = (model_t){.data = data, .len = len, .rng = seed ? seed : 1, .handoff = handoff, .id = id};
}

static void model_fail(const model_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void model_fail(const model_t *m, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "FAIL model: thread %d, step %llu (%s, slot %u): ", m->id,
            (unsigned long long)m->ops, model_op_name[m->op], m->cur_slot);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static int model_more(const model_t *m) { return m->data == NULL || m->pos < m->len; }

/* The next input byte; 0 once the input is used up. */
static uint8_t model_u8(model_t *m) {
    if (m->data == NULL)
        return (uint8_t)(rnd(&m->rng) >> 56);
    return m->pos < m->len ? m->data[m->pos++] : 0;
}

static uint32_t model_u24(model_t *m) {
    uint32_t v = model_u8(m);
    v |= (uint32_t)model_u8(m) << 8;
    return v | (uint32_t)model_u8(m) << 16;
}

/* A request size: tiny (0-64), small (to 1 KiB), medium (to 256 KiB),
 * large (to 4 MiB), or an edge: 2^k - 1, 2^k, 2^k + 1 and whole pages. */
static size_t model_size(model_t *m) {
    uint8_t kind = model_u8(m) & 15;
    uint32_t v = model_u24(m);
    if (kind == 13 && m->live_bytes > MODEL_LIVE_BUDGET)
        kind = 11;
    switch (kind) {
    case 0: case 1: case 2: case 3: case 4: case 5:
        return v % 65;
    case 6: case 7: case 8: case 9:
        return v % (MODEL_KiB + 1);
    case 10: case 11: case 12:
        return v % (256 * MODEL_KiB + 1);
    case 13:
        return v % (4 * MODEL_MiB + 1);
    case 14:
        return ((size_t)1 << (v % 23)) + (v >> 8) % 3 - 1;
    default:
        return (1 + (size_t)(v % 1024)) * 4096 + (v >> 10) % 3 - 1;
    }
}

/* A power-of-two alignment from 2^lo to 64 KiB. */
static size_t model_align(model_t *m, unsigned lo) {
    return (size_t)1 << (lo + model_u8(m) % (17 - lo));
}

/* Which bytes carry the pattern. Filling and checking all of a 4 MiB block
 * at every step would make the large blocks cost nearly all the run time, so
 * a block above 64 KiB has its first 16 KiB, its last 4 KiB and 64 bytes at
 * every 16 KiB between: overlaps and lost copies still show, and most of its
 * pages are never touched. Sets [*a, *b) to the next patterned range at or
 * after *b (start with *b = 0); 0 when there is none. */
#define MODEL_DENSE (64 * MODEL_KiB)
#define MODEL_HEAD (16 * MODEL_KiB)
#define MODEL_TAIL (4 * MODEL_KiB)
#define MODEL_STRIDE (16 * MODEL_KiB)
#define MODEL_SAMPLE 64
static int model_next_range(size_t n, size_t *a, size_t *b) {
    size_t at = *b;
    if (at >= n)
        return 0;
    *a = at;
    *b = n;
    if (n <= MODEL_DENSE)
        return 1;
    if (at < MODEL_HEAD) {
        *b = MODEL_HEAD;
        return 1;
    }
    size_t tail = n - MODEL_TAIL;
    size_t sample = (at + MODEL_STRIDE - 1) / MODEL_STRIDE * MODEL_STRIDE;
    if (sample + MODEL_SAMPLE <= tail) {
        *a = sample;
        *b = sample + MODEL_SAMPLE;
    } else if (at < tail) {
        *a = tail;
    }
    return 1;
}

static unsigned char model_byte(uint64_t base, size_t j) {
    return (unsigned char)(pattern_word(base, j & ~(size_t)7) >> (8 * (j & 7)));
}

/* Writes the pattern of fill(p, to, tag) over bytes [from, to) of p. */
static void model_fill_range(unsigned char *p, size_t from, size_t to, uint64_t base) {
    size_t j = from;
    for (; j < to && (j & 7); j++)
        p[j] = model_byte(base, j);
    for (; j + 8 <= to; j += 8)
        *(pattern_word_t *)(p + j) = pattern_word(base, j);
    for (; j < to; j++)
        p[j] = model_byte(base, j);
}

/* First offset in [from, to) that differs from the pattern, or -1. */
static long model_check_range(const unsigned char *p, size_t from, size_t to, uint64_t base) {
    size_t j = from;
    for (; j < to && (j & 7); j++)
        if (p[j] != model_byte(base, j))
            return (long)j;
    for (; j + 8 <= to; j += 8)
        if (*(const pattern_word_t *)(p + j) != pattern_word(base, j))
            break;
    for (; j < to; j++)
        if (p[j] != model_byte(base, j))
            return (long)j;
    return -1;
}

/* Patterns the block of `usable` bytes at p with tag. */
static void model_fill(unsigned char *p, size_t usable, uint64_t tag) {
    uint64_t base = mix(tag);
    for (size_t a, b = 0; model_next_range(usable, &a, &b);)
        model_fill_range(p, a, b, base);
}

/* First patterned offset below `upto` of a block of `usable` bytes that does
 * not hold the pattern, or -1. */
static long model_first_bad(const unsigned char *p, size_t usable, size_t upto, uint64_t tag) {
    uint64_t base = mix(tag);
    for (size_t a, b = 0; model_next_range(usable, &a, &b) && a < upto;) {
        long bad = model_check_range(p, a, b < upto ? b : upto, base);
        if (bad >= 0)
            return bad;
    }
    return -1;
}

/* First byte of [0, size) that is not zero, or -1 (same sampling). */
static long model_first_nonzero(const unsigned char *p, size_t size) {
    for (size_t a, b = 0; model_next_range(size, &a, &b);)
        for (size_t j = a; j < b; j++)
            if (p[j])
                return (long)j;
    return -1;
}

static size_t model_span(size_t usable) { return usable ? usable : 1; }

/* Does [p, p + usable) meet a live block other than slot `except`? */
static void model_check_overlap(const model_t *m, const unsigned char *p, size_t usable,
                                unsigned except) {
    const unsigned char *end = p + model_span(usable);
    for (unsigned i = 0; i < MODEL_SLOTS; i++) {
        const model_block_t *b = &m->slot[i];
        if (i == except || b->p == NULL)
            continue;
        if (p < b->p + model_span(b->usable) && b->p < end)
            model_fail(m, "new block %p+%zu overlaps live slot %u %p+%zu", (void *)p, usable, i,
                       (void *)b->p, b->usable);
    }
}

/* The block still has its usable size and the pattern over all of it. */
static void model_verify(const model_t *m, const model_block_t *b, const char *when) {
    size_t usable = malloc_usable_size(b->p);
    if (usable != b->usable)
        model_fail(m, "%s: malloc_usable_size(%p) is %zu, was %zu when made (request %zu)", when,
                   (void *)b->p, usable, b->usable, b->size);
    long bad = model_first_bad(b->p, b->usable, b->usable, b->tag);
    if (bad >= 0)
        model_fail(m, "%s: block %p (request %zu, usable %zu) overwritten at offset %ld", when,
                   (void *)b->p, b->size, b->usable, bad);
}

static uint64_t model_tag(model_t *m, unsigned slot) {
    return ((uint64_t)m->id << 56) ^ ((uint64_t)slot << 40) ^ ++m->generation;
}

/* Checks a block just handed out for request `size` at alignment `align`,
 * records it in `slot` and fills it. `zeroed`: calloc's promise. */
static void model_adopt(model_t *m, unsigned slot, void *ptr, size_t size, size_t align,
                        int zeroed) {
    unsigned char *p = ptr;
    if (p == NULL)
        model_fail(m, "NULL (errno %d) for a request of %zu bytes, alignment %zu", errno, size,
                   align);
    if ((uintptr_t)p % align)
        model_fail(m, "%p is not aligned to %zu (request %zu)", (void *)p, align, size);
    size_t usable = malloc_usable_size(p);
    if (usable < size)
        model_fail(m, "malloc_usable_size(%p) = %zu < request %zu", (void *)p, usable, size);
    model_check_overlap(m, p, usable, slot);
    long dirty = zeroed ? model_first_nonzero(p, size) : -1;
    if (dirty >= 0)
        model_fail(m, "calloc block %p of %zu bytes has %#x at offset %ld", (void *)p, size,
                   p[dirty], dirty);
    model_block_t *b = &m->slot[slot];
    *b = (model_block_t){.p = p, .size = size, .usable = usable, .align = align,
                         .tag = model_tag(m, slot)};
    model_fill(p, usable, b->tag);
    m->live_bytes += size;
}

/* Verifies and frees the block in `slot`, if any; free must keep errno. */
static void model_release(model_t *m, unsigned slot) {
    model_block_t *b = &m->slot[slot];
    if (b->p == NULL)
        return;
    model_verify(m, b, "before free");
    errno = 12345;
    free(b->p);
    if (errno != 12345)
        model_fail(m, "free(%p) changed errno to %d", (void *)b->p, errno);
    m->live_bytes -= b->size;
    b->p = NULL;
}

/* realloc of a live block (or of NULL when the slot is empty) to `size`. */
static void model_realloc(model_t *m, unsigned slot, size_t size) {
    model_block_t *b = &m->slot[slot];
    if (b->p == NULL) {
        model_adopt(m, slot, realloc(NULL, size), size, 16, 0);
        return;
    }
    model_verify(m, b, "before realloc");
    unsigned char *q = realloc(b->p, size);
    if (q == NULL && size == 0) { /* glibc's behaviour: the block is freed */
        m->live_bytes -= b->size;
        b->p = NULL;
        return;
    }
    if (q == NULL)
        model_fail(m, "realloc(%p, %zu) gave NULL (errno %d)", (void *)b->p, size, errno);
    size_t keep = b->size < size ? b->size : size;
    long bad = model_first_bad(q, b->usable, keep, b->tag);
    if (bad >= 0)
        model_fail(m, "realloc %p+%zu -> %p+%zu lost the contents at offset %ld", (void *)b->p,
                   b->size, (void *)q, size, bad);
    if ((uintptr_t)q % 16)
        model_fail(m, "realloc gave %p, not 16-byte aligned", (void *)q);
    size_t usable = malloc_usable_size(q);
    if (usable < size)
        model_fail(m, "after realloc, malloc_usable_size(%p) = %zu < request %zu", (void *)q,
                   usable, size);
    model_check_overlap(m, q, usable, slot);
    m->live_bytes += size - b->size;
    b->p = q;
    b->size = size;
    b->usable = usable;
    b->align = 16;
    model_fill(q, usable, b->tag); /* the kept bytes get the same values again */
}

/* Hides a value from the compiler, which would otherwise warn about (or
 * fold) the impossible requests below. */
static size_t model_opaque(size_t v) {
    volatile size_t hidden = v;
    return hidden;
}

/* Requests that cannot be met: NULL with ENOMEM, and nothing else changes. */
static void model_overflow(model_t *m, unsigned slot) {
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096, PTRDIFF_MAX,
                                  (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX - 4095,
                                  (size_t)1 << 48, ((size_t)1 << 62) + 1};
    uint8_t how = model_u8(m);
    size_t size = model_opaque(huge[model_u8(m) % (sizeof huge / sizeof huge[0])]);
    size_t half = model_opaque(((size_t)1 << 32) + model_u8(m)); /* half * half overflows */
    model_block_t *b = &m->slot[slot];
    void *p = NULL, *out = &out;
    int rc = 0;
    const char *call;
    errno = 0;
    switch (how % 10) {
    case 0: call = "malloc"; p = malloc(size); break;
    case 1: call = "calloc(huge, 1)"; p = calloc(size, 1); break;
    case 2: call = "calloc(a, b) with a*b overflowing"; p = calloc(half, half); break;
    case 3: call = "calloc(2, SIZE_MAX/2+1)"; p = calloc(2, model_opaque(SIZE_MAX / 2 + 1)); break;
    case 4: call = "realloc"; p = realloc(b->p, size); break;
    case 5: call = "reallocarray overflowing"; p = reallocarray(b->p, half, half); break;
    case 6: call = "aligned_alloc"; p = aligned_alloc(model_align(m, 4), size); break;
    case 7: call = "memalign"; p = memalign(model_align(m, 4), size); break;
    case 8: call = "valloc/pvalloc"; p = how & 0x80 ? valloc(size) : pvalloc(size); break;
    default:
        call = "posix_memalign";
        rc = posix_memalign(&out, model_align(m, 3), size);
        if (rc != ENOMEM || out != &out)
            model_fail(m, "posix_memalign(size %zu) returned %d and %s *out", size, rc,
                       out != &out ? "changed" : "kept");
        break;
    }
    if (p != NULL || (rc == 0 && errno != ENOMEM))
        model_fail(m, "%s of %zu bytes: %p, errno %d; expected NULL, ENOMEM", call, size, p,
                   errno);
    if (b->p != NULL)
        model_verify(m, b, "after a failed realloc");
}

/* Swaps this slot with a handoff slot, so another thread frees or reallocs
 * what this one made. The block is verified as it passes either way. */
static void model_handoff(model_t *m, unsigned slot) {
    model_block_t *b = &m->slot[slot];
    if (m->handoff == NULL) {
        model_release(m, slot);
        return;
    }
    unsigned h = model_u8(m) % MODEL_HANDOFF_SLOTS;
    if (b->p)
        model_verify(m, b, "before handing off");
    pthread_mutex_lock(&m->handoff->lock);
    model_block_t mine = *b;
    *b = m->handoff->slot[h];
    m->handoff->slot[h] = mine;
    pthread_mutex_unlock(&m->handoff->lock);
    m->live_bytes -= mine.p ? mine.size : 0;
    if (b->p) {
        m->live_bytes += b->size;
        m->foreign += (int)(b->tag >> 56) != m->id;
        model_verify(m, b, "taken from the handoff");
    }
}

/* One operation from the input. */
static void model_step(model_t *m) {
    enum model_op op = (enum model_op)model_op_of[model_u8(m) & 31];
    unsigned slot = model_u8(m) % MODEL_SLOTS;
    model_block_t *b = &m->slot[slot];
    m->op = op;
    m->cur_slot = slot;
    m->ops++;
    m->op_count[op]++;
    switch (op) {
    case OP_MALLOC: {
        size_t size = model_size(m);
        model_release(m, slot);
        model_adopt(m, slot, malloc(size), size, 16, 0);
        break;
    }
    case OP_CALLOC: {
        size_t n = model_size(m), each = 1 + model_u8(m) % 16;
        if (n > 64 * MODEL_KiB) /* keep n * each within the large range */
            n /= each;
        model_release(m, slot);
        model_adopt(m, slot, calloc(n, each), n * each, 16, 1);
        break;
    }
    case OP_REALLOC:
        model_realloc(m, slot, model_size(m));
        break;
    case OP_REALLOC_GROW: { /* by a little or by a lot (from NULL: a new block) */
        size_t old = b->p ? b->size : 0;
        size_t by = (model_u8(m) & 1) || m->live_bytes > MODEL_LIVE_BUDGET ? model_u8(m)
                                                                          : model_size(m);
        model_realloc(m, slot, old + by);
        break;
    }
    case OP_REALLOC_SHRINK: { /* by 1/1 .. 1/8 of the size, or to the same size */
        size_t old = b->p ? b->size : 0, by = old / (1 + model_u8(m) % 8);
        model_realloc(m, slot, old - (model_u8(m) & 1 ? by : 0));
        break;
    }
    case OP_REALLOC_ZERO:
        model_realloc(m, slot, b->p ? 0 : model_size(m));
        break;
    case OP_REALLOC_NULL: {
        size_t size = model_size(m);
        model_release(m, slot);
        model_adopt(m, slot, realloc(NULL, size), size, 16, 0);
        break;
    }
    case OP_REALLOCARRAY: {
        size_t each = 1 + model_u8(m) % 32, n = model_size(m) / each;
        if (b->p)
            model_verify(m, b, "before reallocarray");
        unsigned char *q = reallocarray(b->p, n, each);
        if (b->p == NULL) {
            model_adopt(m, slot, q, n * each, 16, 0);
        } else if (q == NULL) {
            if (n * each != 0)
                model_fail(m, "reallocarray(%p, %zu, %zu) gave NULL", (void *)b->p, n, each);
            m->live_bytes -= b->size;
            b->p = NULL;
        } else {
            size_t keep = b->size < n * each ? b->size : n * each;
            long bad = model_first_bad(q, b->usable, keep, b->tag);
            if (bad >= 0)
                model_fail(m, "reallocarray lost the contents at offset %ld", bad);
            m->live_bytes -= b->size;
            b->p = NULL; /* already moved or resized: adopt it anew */
            model_adopt(m, slot, q, n * each, 16, 0);
        }
        break;
    }
    case OP_FREE:
        model_release(m, slot);
        break;
    case OP_POSIX_MEMALIGN: {
        size_t align = model_align(m, 3), size = model_size(m);
        void *p = NULL;
        model_release(m, slot);
        if (model_u8(m) % 16 == 0) { /* not a power of two, or below sizeof(void *) */
            static const size_t bad_align[] = {0, 4, 24, 48, 4097, (size_t)3 << 20};
            size_t bad = bad_align[model_u8(m) % 6];
            int rc = posix_memalign(&p, bad, size);
            if (rc != EINVAL || p != NULL)
                model_fail(m, "posix_memalign(alignment %zu) gave %d, expected EINVAL", bad, rc);
            break;
        }
        int rc = posix_memalign(&p, align, size);
        if (rc != 0)
            model_fail(m, "posix_memalign(%zu, %zu) returned %d", align, size, rc);
        model_adopt(m, slot, p, size, align, 0);
        break;
    }
    case OP_ALIGNED_ALLOC: {
        size_t align = model_align(m, 0), size = model_size(m);
        model_release(m, slot);
        model_adopt(m, slot, aligned_alloc(align, size), size, align, 0);
        break;
    }
    case OP_MEMALIGN: {
        size_t align = model_align(m, 0), size = model_size(m);
        model_release(m, slot);
        model_adopt(m, slot, memalign(align, size), size, align, 0);
        break;
    }
    case OP_VALLOC: {
        size_t size = model_size(m);
        model_release(m, slot);
        model_adopt(m, slot, valloc(size), size, 4096, 0);
        break;
    }
    case OP_PVALLOC: { /* rounds the request up to whole pages */
        size_t size = model_size(m), rounded = (size + 4095) & ~(size_t)4095;
        model_release(m, slot);
        model_adopt(m, slot, pvalloc(size), rounded, 4096, 0);
        break;
    }
    case OP_CHECK:
        if (b->p)
            model_verify(m, b, "check");
        if (malloc_usable_size(NULL) != 0)
            model_fail(m, "malloc_usable_size(NULL) is not 0");
        break;
    case OP_OVERFLOW:
        model_overflow(m, slot);
        break;
    case OP_HANDOFF:
        model_handoff(m, slot);
        break;
    default:
        break;
    }
}

/* Runs steps until the input is used up or max_steps have run. */
static void model_run(model_t *m, uint64_t max_steps) {
    for (uint64_t i = 0; i < max_steps && model_more(m); i++)
        model_step(m);
}

/* Verifies and frees every block of the table. */
static void model_free_all(model_t *m) {
    m->op = OP_FREE;
    for (unsigned i = 0; i < MODEL_SLOTS; i++) {
        m->cur_slot = i;
        model_release(m, i);
    }
}

#endif
