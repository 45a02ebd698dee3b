/* A program linked with -lmspace (not preloaded), built against the
 * installed mspace.h by tests/linked/install.sh: the allocator and the
 * statistics API come from the library it was linked with. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mspace.h>

#include "../harness.h"

static int from_mspace(void *symbol) {
    Dl_info info;
    return symbol && dladdr(symbol, &info) && info.dli_fname &&
           strstr(info.dli_fname, "libmspace.so") != NULL;
}

int main(void) {
    TEST_BEGIN("linked");
    CHECK("not preloaded", getenv("LD_PRELOAD") == NULL);
    CHECK("malloc comes from libmspace.so", from_mspace(dlsym(RTLD_DEFAULT, "malloc")));
    CHECK("mspace_stats_get comes from libmspace.so", from_mspace((void *)mspace_stats_get));

    char *p = malloc(1000);
    memset(p, 7, 1000);
    mspace_block_info info;
    CHECK("mspace_get finds a block of ours", mspace_get(p + 10, &info) == 1 &&
                                                  info.block == p && info.state == MSPACE_IN_USE &&
                                                  info.usable_size >= 1000);
    mspace_stats s = mspace_stats_get();
    CHECK("stats add up", s.in_use + s.free + s.overhead == s.mapped);
    CHECK("the block is counted", s.in_use >= 1000 && s.class_count > 0);

    /* A FILE with no descriptor behind it: the report goes through stdio. */
    char *text = NULL;
    size_t length = 0;
    FILE *memory = open_memstream(&text, &length);
    int rc = mspace_stats_print(memory, MSPACE_STATS_VERBOSE);
    fclose(memory);
    CHECK("mspace_stats_print to a memory stream", rc == 0 && text && strstr(text, "mapped") &&
                                                       strstr(text, "pages small"));
    free(text);
    free(p);
    return TEST_DONE();
}
