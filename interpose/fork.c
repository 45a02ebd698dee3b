/* fork(): no allocator lock may be held across it by another thread, or the
 * child would wait forever. The child keeps the forking thread's heap and
 * every explicit heap, and pools the heaps of threads that do not exist in
 * it. */
#include <pthread.h>
#include "../core/explicit_heap.h"
#include "../core/heap.h"
#include "init.h"
#include "track.h"

/* Tracking first: its unwinds may allocate, so they must be over before
 * the heap locks are taken. Then explicit heaps' locks: a call on one may
 * take the segment chain's and the large-block cache's, never the reverse. */
static void prepare(void) {
    ms_track_fork_prepare();
    ms_explicit_heap_fork_prepare();
    ms_heap_fork_prepare();
}

static void parent(void) {
    ms_heap_fork_parent();
    ms_explicit_heap_fork_parent();
    ms_track_fork_parent();
}

static void child(void) {
    ms_heap_fork_child();
    ms_explicit_heap_fork_child();
    ms_track_fork_child();
}

void ms_fork_install(void) { pthread_atfork(prepare, parent, child); }
