/* libFuzzer target: the input is a program for the shadow model
 * (tests/fuzz/model.h). Run under LD_PRELOAD=libmspace.so, so the model's
 * calls and libFuzzer's own allocations all go through mspace. Every input
 * ends by freeing what it made, so inputs do not depend on each other. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include "model.h"

static model_t model; /* 256 slots: too big to want on the stack each run */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    model_init(&model, 0, data, size, 0, NULL);
    model_run(&model, UINT64_MAX);
    model_free_all(&model);
    return 0;
}
