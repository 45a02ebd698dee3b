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

/* ---- statistics and address lookup ---- */

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
