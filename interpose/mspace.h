/* mspace's public API, for programs that link with -lmspace or look the
 * functions up in a preloaded libmspace.so. Everything here is safe to call
 * from any thread. */
#ifndef MSPACE_H
#define MSPACE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- statistics and address lookup ----
 *
 * Every figure is a snapshot taken while the program runs on: the list of
 * mapped regions is read under its lock, but other threads' heaps are read
 * without stopping them, so a count may be off by the blocks those threads
 * allocated or freed meanwhile. The totals always add up (see mspace_stats).
 * A block freed by a thread other than the one that allocated it counts as
 * in use until its owner takes it back (on one of its next allocations);
 * the verbose listing already shows it as a HOLE. */

/* The size classes (108 today) fit in mspace_stats.classes. */
#define MSPACE_CLASSES_MAX 128

/* One size class: blocks of block_size bytes cut from spans (runs of
 * 64 KiB slices). Blocks are cut lazily, so part of a span may be uncarved. */
typedef struct {
    size_t block_size;
    size_t spans;
    size_t blocks_in_use;
    size_t blocks_free;     /* holes: freed or never handed out, ready for reuse */
    size_t bytes_in_use;    /* blocks_in_use * block_size */
    size_t bytes_free;      /* blocks_free * block_size + bytes_uncarved */
    size_t bytes_uncarved;  /* span bytes not cut into blocks yet */
} mspace_class_stats;

typedef struct {
    /* Everything mspace has mapped from the OS (MeMS: "pages utilised"):
     * small segments, large blocks, heap structs, freed large blocks kept
     * for reuse. mapped == in_use + free + overhead, exactly. */
    size_t mapped;
    size_t pages;           /* mapped / 4096: OS pages of address space
                               (mapped, not necessarily resident) */
    size_t in_use;          /* live small blocks x their class size, plus the
                               usable bytes of large blocks */
    size_t free;            /* MeMS's "unused memory": the sum of the four below */
    size_t free_holes;      /* free blocks inside spans */
    size_t free_uncarved;   /* the rest of spans, not cut into blocks yet */
    size_t free_slices;     /* 64 KiB slices no span uses */
    size_t free_cached;     /* freed large blocks kept mapped for reuse, and the
                               parts of them lent to a block realloc grows */
    size_t overhead;        /* metadata: each small segment's first slice (its
                               header), the pages before each large block,
                               the per-thread heap structs */
    double fragmentation;   /* free / (in_use + free); 0 when both are 0 */
    size_t mapped_peak;     /* the most bytes mapped at once */
    size_t regions;         /* small segments + large blocks */
    size_t small_regions;   /* 4 MiB small segments */
    size_t large_blocks;    /* blocks above 256 KiB, each in its own region */
    size_t large_bytes;     /* their usable bytes (part of in_use) */
    size_t large_mapped;    /* their regions' bytes: large_bytes + the pages
                               before each block (part of overhead) */
    size_t heaps;           /* per-thread heaps (pooled ones included) and
                               explicit heaps */
    /* Calls, counted only when the process started with MSPACE_STATS=1 (or
     * MSPACE_STATS_FILE, MSPACE_PROF, MSPACE_LEAKS) set: observing every
     * call turns the fast paths off. When
     * calls_counted is 0 the three counts are 0 and mean "not counted".
     * mallocs: blocks returned by any allocating call (calloc, memalign,
     * operator new...); reallocs: realloc of a live block to a new size. */
    int calls_counted;
    uint64_t mallocs, frees, reallocs;
    uint64_t mmaps, munmaps; /* mappings made and released (always counted) */
    unsigned class_count;   /* entries used in classes[] */
    mspace_class_stats classes[MSPACE_CLASSES_MAX];
} mspace_stats;

/* The figures above, gathered now. Costs a walk over every mapped region
 * (a few microseconds per 4 MiB); allocates nothing. */
mspace_stats mspace_stats_get(void);

/* Flags for mspace_stats_print. */
#define MSPACE_STATS_VERBOSE 1 /* also every mapped region (MeMS's main chain)
                                  with its spans and their runs of in-use
                                  (PROCESS) and free (HOLE) blocks (MeMS's
                                  sub-chain); bounded: at most 32 regions,
                                  8 spans per region and 6 runs per span are
                                  shown, then "... N more" */
#define MSPACE_STATS_JSON 2    /* the same content as one JSON object */

/* Writes the statistics to out, as text or (MSPACE_STATS_JSON) JSON. Call
 * it from ordinary code, not from a signal handler (see MSPACE_STATS_SIGNAL
 * for that). Returns 0, or -1 with errno set (EINVAL: out is NULL or flags
 * unknown; ENOMEM: no memory for a verbose snapshot; or a write error). */
int mspace_stats_print(FILE *out, int flags);

/* What mspace_get says about an address. */
enum mspace_block_state {
    MSPACE_FOREIGN = 0,  /* not mspace's memory: stack, globals, another allocator */
    MSPACE_IN_USE,       /* inside a block handed out and not freed */
    MSPACE_FREE,         /* inside a free block (a hole) */
    MSPACE_UNCARVED,     /* inside mapped memory never cut into a block yet */
    MSPACE_METADATA,     /* inside a region's header or a guard page */
};

typedef struct {
    enum mspace_block_state state;
    /* state was confirmed on the calling thread's own heap, or the block is
     * large; 0 when it was read from another thread's heap (a snapshot). */
    int exact;
    void *block;            /* start of the block holding addr (NULL if none) */
    size_t usable_size;     /* bytes usable from block (for a live block,
                               what malloc_usable_size says) */
    size_t requested_size;  /* bytes asked for, when mspace knows them (with
                               MSPACE_LEAKS=1, or in the hardened build);
                               else usable_size */
    int size_class;         /* class index; -1 for large blocks and no block */
    void *region;           /* the mapped region holding addr (MeMS: main-chain node) */
    size_t region_size;
    int large;              /* the region holds one large block */
    int bootstrap;          /* addr is in the static arena used while mspace
                               sets itself up (its blocks are never reused) */
    int physical_known;     /* physical_address is valid */
    uint64_t physical_address; /* the physical address backing addr itself (from
                               /proc/self/pagemap): unknown when the page is
                               not resident (never touched, purged, swapped)
                               or the kernel hides frame numbers (non-root) */
} mspace_block_info;

/* Looks addr up (interior pointers resolve to their block). Returns 1 if
 * mspace manages addr (state is not MSPACE_FOREIGN), else 0; *out is filled
 * either way (the physical address too, for any mapped address). -1 with
 * errno EINVAL if out is NULL. Never faults, whatever addr is. Takes the
 * lock of the region list for a moment (and reads /proc/self/pagemap), so
 * it is not for signal handlers; nor is anything else in this section. */
int mspace_get(const void *addr, mspace_block_info *out);

/* ---- explicit heaps ---- */

/* A heap the program makes and destroys itself, e.g. one per request, per
 * document or per phase: mspace_destroy gives all of its memory back to the
 * OS at once, blocks still in use included. Any thread may use a heap (each
 * call takes the heap's lock). Its blocks are ordinary blocks otherwise:
 * free(), realloc() and malloc_usable_size() accept them from any thread,
 * and realloc() keeps a block in its heap. A heap survives fork(): the child
 * has a copy it may use and destroy. */
typedef struct mspace_s mspace_t;

/* A new, empty heap; NULL with errno ENOMEM. */
mspace_t *mspace_create(void);
/* Unmaps every block of ms and ms itself. Nothing else may use ms at the
 * same time or afterwards; free() of one of its blocks afterwards is
 * reported as an invalid pointer. NULL is ignored. */
void mspace_destroy(mspace_t *ms);

/* malloc, calloc and aligned allocation from ms: NULL with errno ENOMEM on
 * failure (also when count * size overflows). mspace_memalign takes a power
 * of two (else NULL with errno EINVAL). */
void *mspace_malloc(mspace_t *ms, size_t size);
void *mspace_calloc(mspace_t *ms, size_t count, size_t size);
void *mspace_memalign(mspace_t *ms, size_t alignment, size_t size);
/* realloc: NULL p allocates from ms, size 0 frees p and returns NULL. A
 * block of an explicit heap stays in its heap; any other block that has to
 * move moves into ms. */
void *mspace_realloc(mspace_t *ms, void *p, size_t size);
/* Frees p wherever it lives (ms, another heap, or malloc), like free(); a
 * pointer that is not a live block aborts with
 * "mspace: mspace_free(): invalid pointer 0x..." (or "double free of"). */
void mspace_free(mspace_t *ms, void *p);

/* What ms holds, for people: mapped bytes, bytes in use, and live blocks of
 * each size, on out (stderr if NULL). */
void mspace_heap_stats_print(mspace_t *ms, FILE *out);

/* ---- heap profiles ---- */

/* With MSPACE_PROF=1: writes the heap profile so far (live sampled bytes
 * by allocating stack, the text format of gperftools' heap profiler, for
 * google-pprof) to path; "%p" in path becomes the process id, NULL means
 * MSPACE_PROF_FILE. Returns 0, or -1 with errno set (ENOTSUP when
 * profiling is off). */
int mspace_prof_dump(const char *path);

#ifdef __cplusplus
}
#endif
#endif
