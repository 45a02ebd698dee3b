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
