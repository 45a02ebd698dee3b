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

#ifdef __cplusplus
}
#endif
#endif
