/* The allocator's data layout, shared by every core/ file.
 *
 * Glossary (one word per idea across the tree):
 *   OS page   4 KiB, the kernel's unit; we only speak of it when faulting or
 *             purging memory.
 *   segment   a 4 MiB-aligned region mapped from the OS (MeMS's "main chain"
 *             node). Every segment is on the global chain (segment.c). A small
 *             segment is cut into 64 slices; a large segment holds one block.
 *   slice     a 64 KiB, 64 KiB-aligned part of a small segment. Slice 0 holds
 *             the segment header and is never given to a span.
 *   span      one or more consecutive slices holding blocks of one size class
 *             (MeMS's "sub-chain": each block is in use or a hole on a free
 *             list). Its descriptor lives in the segment header, indexed by
 *             slice, so free() finds it from the address alone.
 *   block     what malloc returns. A free block holds the free-list link in
 *             its first word and a "freed" mark in its second word.
 *   hole      a free block (MeMS's word): on its span's free list, on a
 *             heap's remote list, or parked: off the list, its pages given
 *             back to the OS (span.c).
 *   size class  a block size; classes grow in quarter steps (size_class.c).
 *   heap      the per-thread allocator state (heap.c): the span being carved
 *             for each class and the spans that still have holes. A heap
 *             outlives its thread: it is pooled and adopted by a later one.
 *             An explicit heap (explicit_heap.c) is one the program makes,
 *             shares between threads under a lock, and destroys whole.
 */
#ifndef MS_TYPES_H
#define MS_TYPES_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MS_LIKELY(x) __builtin_expect(!!(x), 1)
#define MS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MS_HIDDEN __attribute__((visibility("hidden")))
#define MS_NOINLINE __attribute__((noinline))
/* One whole read of a field another thread may be writing (statistics and
 * lookups read other heaps without their owners' consent). */
#define MS_PEEK(lvalue) __atomic_load_n(&(lvalue), __ATOMIC_RELAXED)

#define MS_ALIGNMENT 16
#define MS_OS_PAGE 4096
#define MS_SEGMENT_SHIFT 22
#define MS_SEGMENT_SIZE ((size_t)1 << MS_SEGMENT_SHIFT)
#define MS_SEGMENT_MASK (MS_SEGMENT_SIZE - 1)
#define MS_SLICE_SHIFT 16
#define MS_SLICE_SIZE ((size_t)1 << MS_SLICE_SHIFT)
#define MS_SLICES_PER_SEGMENT (MS_SEGMENT_SIZE / MS_SLICE_SIZE)
/* User space ends below 2^47 on x86-64 (2^48 on aarch64) unless a program
 * asks the kernel for higher addresses, which mspace never does. */
#if defined(__x86_64__)
#define MS_ADDRESS_BITS 47
#else
#define MS_ADDRESS_BITS 48
#endif
#define MS_MAP_ENTRIES ((size_t)1 << (MS_ADDRESS_BITS - MS_SEGMENT_SHIFT))

typedef struct block_s {
    struct block_s *next; /* link while the block is a hole */
    uintptr_t freed_mark; /* == span address while a hole: double-free check */
} block_t;

typedef struct heap_s heap_t;

/* A span descriptor: exactly 64 bytes so free() reaches it with a shift and
 * a mask. Invariant while the span is in use, seen by its owning heap:
 *   used + holes on free + blocks on the heap's remote list that belong here
 *     == carved_end / block_size   (the blocks carved so far).
 *
 * "Is p the start of a carved block?" is one multiply and one compare
 * (after Lemire, Kaser & Kurz, "Faster remainder by direct computation",
 * 2019): with M = block_magic = ceil(2^64 / size), plus one when size is a
 * power of two, and e = size * M mod 2^64 (1 <= e <= size), the product
 * offset * M mod 2^64 is exactly k * e at the start of block k and at least
 * M anywhere else (for the offsets a span can have). So
 *   offset * M < carved_limit = (blocks carved) * e
 * rejects interior, misaligned and never-carved addresses at once. */
typedef struct span_s {
    block_t *free;           /* malloc pops here; the owner's free() pushes here */
    uintptr_t local_key;     /* owner thread id when free() may push directly; 0 otherwise */
    uint64_t block_magic;    /* M above */
    uint64_t carved_limit;   /* (blocks carved) * e, see above */
    uint32_t used;           /* blocks handed out and not yet freed */
    uint32_t block_size;     /* 0: slice not the head of a span in use */
    uint8_t size_class;
    uint8_t slice_count;     /* slices in this span (head only) */
    uint8_t head_delta;      /* slices back to the head; 0 for the head */
    uint8_t full : 1;        /* unlinked from the partial list: no holes seen */
    uint8_t aged : 1;        /* empty and kept through one collection already */
    uint8_t whole : 1;       /* carved to its end once: every page has been written
                                (set when carving found no room: heap.c:heap_alloc) */
    uint8_t resident_tail : 1; /* pages past carved_end may be resident (made on
                                  slices something else left resident: heap.c) */
    uint8_t parked_frees : 4; /* frees taken slowly since holes were parked (heap.c) */
    uint32_t carved_end;     /* bytes from the span start carved into blocks */
    struct span_s *next, *prev; /* heap's partial list of this class */
} span_t;
_Static_assert(sizeof(span_t) == 64, "span_t must stay 64 bytes");

enum segment_kind { SEGMENT_SMALL = 1, SEGMENT_LARGE = 2 };

/* The segment header sits at the segment's base; spans[] comes first so the
 * descriptor of any address is base + ((addr >> 16) & 63) * 64. */
typedef struct segment_s {
    span_t spans[MS_SLICES_PER_SEGMENT];
    struct segment_s *chain_next, *chain_prev; /* global chain (segment.c) */
    struct segment_s *heap_next, *heap_prev;   /* owning heap's segments (or large blocks) */
    heap_t *heap;                 /* owner; for a large block, its explicit heap or NULL */
    size_t mapped_size;           /* bytes mapped at the base */
    uint64_t used_slices;         /* bit i: slice i belongs to a span (bit 0: header) */
    uint64_t dirty_slices;        /* bit i: free slice whose pages may be resident */
    uint64_t aging_slices;        /* bit i: free and resident at the last collection */
    /* Small segments, one bit per OS page (span.c): pages given back whole
     * with the holes on them off their span's free list, and pages found
     * free at the previous collection of holes. */
    uint64_t parked_pages[MS_SEGMENT_SIZE / MS_OS_PAGE / 64];
    uint64_t quiet_pages[MS_SEGMENT_SIZE / MS_OS_PAGE / 64];
    uint32_t parked_count;        /* bits set in parked_pages */
    void *large_block;            /* large segments: the one block */
    size_t large_limit;           /* where the block must end: mapped_size, or less while the
                                     rest is on loan from the large-block cache */
    size_t large_requested;       /* its requested size (hardened build only) */
    uint8_t kind;
} segment_t;

#define MS_SEGMENT_HEADER_SIZE                                                 \
    ((sizeof(segment_t) + MS_OS_PAGE - 1) & ~(size_t)(MS_OS_PAGE - 1))
_Static_assert(MS_SEGMENT_HEADER_SIZE <= MS_SLICE_SIZE, "header fits slice 0");

#endif
