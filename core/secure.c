#include "secure.h"
#include <string.h>
#include "host.h"
#include "text.h"

uint64_t ms_secure_key;

#define POISON_BYTE 0xde
#define SLACK_BYTE 0xa5
/* Only the start of a freed block is poisoned and only the start of the
 * slack past a request is filled: a stale pointer's writes and an
 * overflow's first bytes land there, and checking whole blocks would make
 * every malloc and free read and write all of their memory. */
#define POISON_BYTES MS_SECURE_POISON_MAX
#define SLACK_BYTES 64

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* What the poison and the slack must still read as: compared with memcmp,
 * which checks them many bytes at a time where a loop here went one word
 * or one byte at a time (the hardened build's malloc and free spent half
 * their instructions there). */
static const unsigned char poison_pattern[POISON_BYTES] = {[0 ... POISON_BYTES - 1] = POISON_BYTE};
static const unsigned char slack_pattern[SLACK_BYTES] = {[0 ... SLACK_BYTES - 1] = SLACK_BYTE};

void ms_secure_init(void) {
    if (MS_SECURE)
        ms_secure_key = ms_host_random() | 1;
}

/* Carving order: a per-thread xorshift seeded from the secret, so the
 * order differs between processes and threads without a system call. */
static __thread uint64_t random_state;

unsigned ms_secure_random_below(unsigned n) {
    uint64_t x = random_state;
    if (x == 0)
        x = ms_secure_key ^ ms_thread_id() ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    random_state = x;
    return (unsigned)((x >> 32) * n >> 32);
}

/* The canary differs per block, so one leaked canary does not forge
 * another. */
static uint32_t canary_of(const void *block) {
    return (uint32_t)((ms_secure_key ^ (uintptr_t)block) * 0x9e3779b97f4a7c15ull >> 32);
}

static uint32_t *trailer(const void *block, size_t block_size) {
    return (uint32_t *)((char *)block + block_size - MS_SECURE_TRAILER);
}

__attribute__((noreturn, cold)) static void overflow(const char *caller, size_t size,
                                                     const void *block) {
    ms_text_t t = {.len = 0};
    ms_text_str(&t, "heap buffer overflow past the end of the ");
    ms_text_dec(&t, size);
    ms_text_str(&t, "-byte block at");
    ms_host_fatal(caller, t.buf, block);
}

static size_t poisoned_bytes(size_t block_size) {
    return min_size(block_size - sizeof(block_t), POISON_BYTES);
}

void ms_secure_poison(void *block, size_t block_size) {
    memset((char *)block + sizeof(block_t), POISON_BYTE, poisoned_bytes(block_size));
}

void ms_secure_block_out(void *block, size_t block_size, size_t size) {
    /* The link and the double-free mark are checked elsewhere; the rest
     * must still be the poison written when the block was freed. */
    if (memcmp((char *)block + sizeof(block_t), poison_pattern, poisoned_bytes(block_size)) != 0)
        ms_host_fatal("malloc", "write after free to the block at", block);
    uint32_t *t = trailer(block, block_size);
    ms_secure_fill_slack(block, size, block_size - MS_SECURE_TRAILER);
    t[0] = canary_of(block);
    t[1] = (uint32_t)size ^ (uint32_t)ms_secure_key;
}

size_t ms_secure_block_requested(const void *block, size_t block_size) {
    return trailer(block, block_size)[1] ^ (uint32_t)ms_secure_key;
}

void ms_secure_block_in(void *block, size_t block_size, const char *caller) {
    const uint32_t *t = trailer(block, block_size);
    size_t size = ms_secure_block_requested(block, block_size);
    size_t room = block_size - MS_SECURE_TRAILER;
    if (t[0] != canary_of(block) || size > room)
        overflow(caller, size > room ? room : size, block);
    ms_secure_check_slack(block, size, room, caller);
    ms_secure_poison(block, block_size);
}

void ms_secure_fill_slack(void *block, size_t size, size_t room) {
    memset((char *)block + size, SLACK_BYTE, min_size(room - size, SLACK_BYTES));
}

void ms_secure_check_slack(const void *block, size_t size, size_t room, const char *caller) {
    if (memcmp((const char *)block + size, slack_pattern, min_size(room - size, SLACK_BYTES)) != 0)
        overflow(caller, size, block);
}
