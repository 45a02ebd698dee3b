/* Records of live blocks, keyed by address: which stack allocated the
 * block and how big it was. Heap profiles keep one per sampled block, leak
 * reports one per block. Filled from inside malloc and free, so the table
 * lives in mapped memory, and it is split into stripes, each with its own
 * lock and its own growing hash table, so threads rarely meet. */
#ifndef MS_RECORDS_H
#define MS_RECORDS_H
#include <stdbool.h>
#include <stddef.h>
#include "host.h"
#include "stack.h"
#include "types.h"

typedef struct ms_record_s {
    struct ms_record_s *next;
    uintptr_t address;
    ms_stack_t *stack;
    size_t size; /* the size asked for */
} ms_record_t;

#define MS_RECORD_STRIPES 64

typedef struct {
    ms_lock_t lock;
    bool taken_for_fork;
    ms_record_t **buckets; /* mask + 1 of them, or NULL before the first record */
    size_t mask;
    _Atomic size_t count;  /* written under the lock; read without it by remove */
    ms_record_t *spare;    /* recycled records */
    char *chunk, *chunk_end;
} __attribute__((aligned(64))) ms_record_stripe_t;

typedef struct {
    ms_record_stripe_t stripes[MS_RECORD_STRIPES];
} ms_records_t;

/* Records (or re-records) the block at address. false when out of memory. */
bool ms_records_add(ms_records_t *records, const void *address, ms_stack_t *stack,
                    size_t size) MS_HIDDEN;
/* Forgets the block at address; copies its record to *out when there was
 * one and returns whether there was. */
bool ms_records_remove(ms_records_t *records, const void *address, ms_record_t *out) MS_HIDDEN;
/* Copies the record of the block at address to *out, if there is one. */
bool ms_records_find(ms_records_t *records, const void *address, ms_record_t *out) MS_HIDDEN;
/* Calls visit for every record, one stripe at a time under its lock:
 * visit must not add or remove records. */
void ms_records_walk(ms_records_t *records, void (*visit)(const ms_record_t *, void *),
                     void *arg) MS_HIDDEN;

void ms_records_fork_prepare(ms_records_t *records) MS_HIDDEN;
void ms_records_fork_parent(ms_records_t *records) MS_HIDDEN;
void ms_records_fork_child(ms_records_t *records) MS_HIDDEN;

#endif
