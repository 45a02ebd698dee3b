/* Which allocations a heap profile samples, and what each sample stands
 * for. As in tcmalloc and jemalloc, each thread counts down the bytes it
 * allocates from a distance drawn from an exponential distribution of mean
 * `rate`; the allocation that crosses zero is sampled and a new distance
 * is drawn. Sampling is then a Poisson process over the bytes allocated,
 * so a block of size s is sampled with probability 1 - exp(-s/rate), and
 * weighting each sample by the inverse of that makes the totals unbiased
 * for every size, big or small. */
#ifndef MS_SAMPLE_H
#define MS_SAMPLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "types.h"

/* Mean bytes between samples (at least 1). Set once, before sampling. */
void ms_sample_set_rate(uint64_t rate) MS_HIDDEN;

/* Counts an allocation of size bytes in the calling thread: should it be
 * sampled? */
bool ms_sample_take(size_t size) MS_HIDDEN;

/* How many allocations of this size one sample stands for:
 * 1 / (1 - exp(-size/rate)); multiply by size for the bytes. */
double ms_sample_weight(size_t size) MS_HIDDEN;

/* A fresh distance in bytes to the next sample (exposed for tests). */
uint64_t ms_sample_draw(void) MS_HIDDEN;

#endif
