/* Linked into the coverage-instrumented libmspace.so that the fuzzer
 * preloads (make fuzz). The instrumentation calls these hooks; inside the
 * fuzzer, libFuzzer's own exported definitions come first in symbol lookup
 * and are the ones called. Any other process that inherits LD_PRELOAD
 * (libFuzzer runs llvm-symbolizer) gets these no-ops instead of failing
 * with "undefined symbol". */
#include <stddef.h>
#include <stdint.h>

#define HOOK __attribute__((weak, visibility("default")))

HOOK void __sanitizer_cov_8bit_counters_init(uint8_t *start, uint8_t *end) {}
HOOK void __sanitizer_cov_pcs_init(const uintptr_t *start, const uintptr_t *end) {}
HOOK void __sanitizer_cov_trace_cmp1(uint8_t a, uint8_t b) {}
HOOK void __sanitizer_cov_trace_cmp2(uint16_t a, uint16_t b) {}
HOOK void __sanitizer_cov_trace_cmp4(uint32_t a, uint32_t b) {}
HOOK void __sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b) {}
HOOK void __sanitizer_cov_trace_const_cmp1(uint8_t a, uint8_t b) {}
HOOK void __sanitizer_cov_trace_const_cmp2(uint16_t a, uint16_t b) {}
HOOK void __sanitizer_cov_trace_const_cmp4(uint32_t a, uint32_t b) {}
HOOK void __sanitizer_cov_trace_const_cmp8(uint64_t a, uint64_t b) {}
HOOK void __sanitizer_cov_trace_switch(uint64_t value, uint64_t *cases) {}
