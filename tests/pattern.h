/* Deterministic data for tests: a seeded random stream, and a byte pattern
 * derived from a tag that a test writes into a block and checks later, so a
 * block handed out twice, overwritten or not preserved by realloc shows. */
#ifndef MSPACE_TEST_PATTERN_H
#define MSPACE_TEST_PATTERN_H
#include <stddef.h>
#include <stdint.h>

/* xorshift64*: the next value of the stream *state (never 0). */
static inline uint64_t rnd(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A well-mixed 64-bit function of x (murmur3's finaliser). */
static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Word access without memcpy: the tests build with -fno-builtin. */
typedef uint64_t __attribute__((may_alias, aligned(1))) pattern_word_t;

static inline uint64_t pattern_word(uint64_t base, size_t offset) {
    return base ^ (offset * 0x9E3779B97F4A7C15ULL);
}

static inline void fill(unsigned char *p, size_t n, uint64_t tag) {
    uint64_t base = mix(tag);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8)
        *(pattern_word_t *)(p + j) = pattern_word(base, j);
    for (uint64_t v = pattern_word(base, j); j < n; j++)
        p[j] = (unsigned char)(v >> (8 * (j & 7)));
}

/* Offset of the first byte that differs from fill(p, n, tag), or -1. */
static inline long pattern_first_bad(const unsigned char *p, size_t n, uint64_t tag) {
    uint64_t base = mix(tag);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8)
        if (*(const pattern_word_t *)(p + j) != pattern_word(base, j))
            for (size_t k = 0; k < 8; k++)
                if (p[j + k] != (unsigned char)(pattern_word(base, j) >> (8 * k)))
                    return (long)(j + k);
    for (uint64_t v = pattern_word(base, j); j < n; j++)
        if (p[j] != (unsigned char)(v >> (8 * (j & 7))))
            return (long)j;
    return -1;
}

static inline int intact(const unsigned char *p, size_t n, uint64_t tag) {
    return pattern_first_bad(p, n, tag) < 0;
}

#endif
