// C++ out of memory: under RLIMIT_AS (in a forked child, tests/faults/
// faults.h) operator new throws std::bad_alloc once the address space is used
// up, for small and large, plain, array and aligned forms; the nothrow forms
// return nullptr; a std::vector that cannot grow throws and keeps its
// elements; a new_handler that frees a reserve lets the failing new succeed;
// and after deleting half of the blocks, new works again with every
// surviving block intact. cxx_operators.cc covers the same operators with
// impossible sizes; here the memory really runs out.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "../pattern.h"
#include "faults.h"

#define MiB ((size_t)1 << 20)
#define HEADROOM (128 * MiB)

struct Node { // every block starts with one
    Node *next;
    size_t size;
    uint64_t tag;
};
struct alignas(256) Wide {
    char data[1000];
};

enum Form { SMALL, LARGE, ARRAY, ALIGNED, FORMS };
static const char *form_name[FORMS] = {"new (48 B)", "new (512 KiB)", "new[] (1..3000 B)",
                                       "new (align_val_t 4096, 3000 B)"};
static Form current;
static uint64_t rng = 77;

static size_t size_of(Form f, uint64_t r) {
    switch (f) {
    case SMALL: return 48;
    case LARGE: return 512 * 1024;
    case ARRAY: return sizeof(Node) + r % 3000;
    default: return 3000;
    }
}

static void *new_of(Form f, size_t n, bool nothrow) {
    switch (f) {
    case ARRAY: return nothrow ? new (std::nothrow) char[n] : new char[n];
    case ALIGNED:
        return nothrow ? operator new(n, std::align_val_t(4096), std::nothrow)
                       : operator new(n, std::align_val_t(4096));
    default: return nothrow ? operator new(n, std::nothrow) : operator new(n);
    }
}

static void delete_of(Form f, void *p) {
    switch (f) {
    case ARRAY: delete[] static_cast<char *>(p); break;
    case ALIGNED: operator delete(p, std::align_val_t(4096)); break;
    default: operator delete(p); break;
    }
}

static bool node_ok(const Node *b) {
    return intact(reinterpret_cast<const unsigned char *>(b + 1), b->size - sizeof *b, b->tag);
}

static size_t failed_size; // the size new threw for

// Allocates until new throws (or `limit` blocks); true if it threw bad_alloc.
static bool fill_until_throw(Form f, Node **list, long limit, long *count, size_t *bytes) {
    try {
        for (long i = 0; i < limit; i++) {
            size_t n = failed_size = size_of(f, rnd(&rng));
            Node *b = static_cast<Node *>(new_of(f, n, false));
            b->size = n;
            b->tag = rnd(&rng);
            fill(reinterpret_cast<unsigned char *>(b + 1), n - sizeof *b, b->tag);
            b->next = *list;
            *list = b;
            (*count)++;
            *bytes += n;
        }
    } catch (const std::bad_alloc &) {
        return true;
    }
    return false;
}

static void exhaust_case() {
    Form f = current;
    char name[200];
    Node *list = nullptr;
    long count = 0;
    size_t bytes = 0;
    bool threw = fill_until_throw(f, &list, 100000000L, &count, &bytes);
    printf("  %-32s %8ld blocks, %6.1f MiB before std::bad_alloc\n", form_name[f], count,
           bytes / (double)MiB);
    snprintf(name, sizeof name, "%s throws std::bad_alloc when the address space is used up",
             form_name[f]);
    CHECK(name, threw);
    snprintf(name, sizeof name, "%s: used at least half the headroom first", form_name[f]);
    CHECK(name, bytes >= HEADROOM / 2);
    int nulls = 0;
    for (int i = 0; i < 5; i++) { // the size that just threw: no other block was freed
        void *p = new_of(f, failed_size, true);
        if (p == nullptr)
            nulls++;
        else
            delete_of(f, p);
    }
    snprintf(name, sizeof name, "nothrow %s returns nullptr at the limit", form_name[f]);
    CHECK(name, nulls == 5);

    long freed = 0;
    int bad = 0;
    for (Node *b = list; b && b->next; b = b->next) {
        Node *gone = b->next;
        b->next = gone->next;
        bad += !node_ok(gone);
        delete_of(f, gone);
        freed++;
    }
    long more = 0;
    size_t more_bytes = 0;
    threw = fill_until_throw(f, &list, freed / 4, &more, &more_bytes);
    snprintf(name, sizeof name, "%s works again after deleting half", form_name[f]);
    CHECK(name, !threw && more == freed / 4);
    for (Node *b = list, *next; b; b = next) {
        next = b->next;
        bad += !node_ok(b);
        delete_of(f, b);
    }
    snprintf(name, sizeof name, "%s: every block intact until deleted", form_name[f]);
    CHECK(name, bad == 0);
}

static void *reserve;
static int handler_calls;
static void release_reserve() {
    handler_calls++;
    operator delete(reserve);
    reserve = nullptr;
    std::set_new_handler(nullptr);
}

static void container_and_handler_case() {
    // A vector grows until it cannot; it keeps what it had.
    std::vector<uint64_t> v;
    bool threw = false;
    try {
        for (uint64_t i = 0;; i++)
            v.push_back(i * 0x9E3779B97F4A7C15ULL);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    bool kept = true;
    for (size_t i = 0; i < v.size(); i++)
        kept &= v[i] == i * 0x9E3779B97F4A7C15ULL;
    printf("  std::vector<uint64_t> reached %.1f MiB before std::bad_alloc\n",
           v.size() * 8 / (double)MiB);
    CHECK("vector::push_back throws std::bad_alloc at the limit", threw);
    CHECK("the vector keeps every element after the failed growth", kept && v.size() > 1000);
    std::vector<uint64_t>().swap(v);

    // A new_handler that frees a reserve lets the failing new succeed.
    reserve = operator new(32 * MiB);
    std::memset(reserve, 1, 32 * MiB);
    Node *list = nullptr;
    long count = 0;
    size_t bytes = 0;
    threw = fill_until_throw(LARGE, &list, 100000000L, &count, &bytes);
    CHECK("with the reserve held, new throws at the limit", threw);
    std::set_new_handler(release_reserve);
    void *p = nullptr;
    try {
        p = operator new(8 * MiB);
    } catch (const std::bad_alloc &) {
    }
    CHECK("new_handler freeing a reserve: called once, then new succeeds",
          handler_calls == 1 && p != nullptr);
    if (p)
        std::memset(p, 2, 8 * MiB);
    operator delete(p);
    int bad = 0;
    for (Node *b = list, *next; b; b = next) {
        next = b->next;
        bad += !node_ok(b);
        operator delete(b);
    }
    CHECK("blocks intact in the new_handler case", bad == 0);
}

int main() {
    TEST_BEGIN("faults/oom_cxx");
    for (int f = 0; f < FORMS; f++) {
        current = static_cast<Form>(f);
        child_run(form_name[f], HEADROOM, 60, exhaust_case);
    }
    child_run("vector and new_handler at the limit", HEADROOM, 60, container_and_handler_case);
    return TEST_DONE();
}
