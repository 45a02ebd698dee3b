/* MSPACE_* options: one table (name, default, help), read once from the
 * environment by walking it (getenv may be interposed or allocate), and
 * ignored in setuid/setgid processes. */
#ifndef MS_OPTIONS_H
#define MS_OPTIONS_H
#include <stdbool.h>
#include "types.h"

#define MS_OPTIONS_LIST(X)                                                     \
    X(STATS, "0", "1: write allocator statistics to stderr at exit")           \
    X(STATS_FILE, "", "write the statistics at exit to this file (%p: pid)")       \
    X(STATS_JSON, "", "write the statistics at exit as JSON to this file (%p: pid)") \
    X(PROF, "0", "1: sample allocations and write a heap profile (pprof) at exit") \
    X(PROF_SAMPLE, "524288", "mean bytes allocated between two profile samples") \
    X(PROF_FILE, "mspace.%p.heap", "where the heap profile goes (%p: pid)")      \
    X(LEAKS, "0", "1: at exit, report blocks never freed with their stacks")    \
    X(STATS_SIGNAL, "", "on this signal (SIGUSR2, USR2 or 12) write the statistics " \
                        "to stderr or MSPACE_STATS_FILE, while the program runs")     \
    X(VERBOSE, "0", "1: those signal dumps also list every mapped region, "        \
                    "its spans and their runs of blocks")

typedef enum {
#define MS_OPTION_ENUM(name, def, help) MS_OPTION_##name,
    MS_OPTIONS_LIST(MS_OPTION_ENUM)
#undef MS_OPTION_ENUM
    MS_OPTION_COUNT
} ms_option_t;

/* secure: the process is setuid/setgid (AT_SECURE); options stay default. */
void ms_options_load(char **environment, bool secure) MS_HIDDEN;
const char *ms_option_text(ms_option_t option) MS_HIDDEN;
long ms_option_number(ms_option_t option) MS_HIDDEN;

#endif
