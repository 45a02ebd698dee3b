// C++ allocation: every operator new/delete form (plain, array, nothrow,
// sized, aligned, aligned+nothrow, sized+aligned), over-aligned types,
// failure behaviour (nullptr / std::bad_alloc / new_handler), heavy standard
// container use, and mixing with the C API. Under LD_PRELOAD=libmspace.so
// every operator symbol must resolve to libmspace.so.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "../harness.h"

static bool under_mspace;
static volatile size_t v_huge = (size_t)1 << 62;
static volatile size_t v_size_max = SIZE_MAX;

static bool aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

struct alignas(64) Line {
    char data[64];
};
struct alignas(4096) Page {
    char data[100];
};
struct alignas(128) Counted { // non-trivial destructor: array new stores a cookie
    static int live;
    char data[40];
    Counted() { live++; std::memset(data, 0x6b, sizeof data); }
    ~Counted() { live--; }
};
int Counted::live;

static void test_symbols() {
    static const char *const names[] = {
        "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
        "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
        "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
        "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
        "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t",
        "_ZdaPvmSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
        "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    };
    for (const char *name : names) {
        void *sym = dlsym(RTLD_DEFAULT, name);
        Dl_info info;
        bool ok = sym && dladdr(sym, &info) && info.dli_fname &&
                  std::strstr(info.dli_fname, "libmspace");
        if (!ok)
            std::fprintf(stderr, "  %s resolves to %s\n", name,
                         sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "nothing");
        CHECK("operator new/delete symbol is provided by libmspace.so", ok);
    }
}

static void test_plain_forms() {
    // Plain and array, every small size and some large ones.
    int bad = 0;
    for (size_t s = 1; s <= 2048; s++) {
        char *p = static_cast<char *>(::operator new(s));
        char *q = new char[s];
        if (!aligned(p, 16) || !aligned(q, 16)) bad++;
        if (malloc_usable_size(p) < s || malloc_usable_size(q) < s) bad++;
        std::memset(p, 1, s);
        std::memset(q, 2, s);
        if (s % 2) {
            ::operator delete(p);
            delete[] q;
        } else { // sized forms
            ::operator delete(p, s);
            ::operator delete[](q, s);
        }
    }
    CHECK("operator new / new[] 1..2048: 16-aligned, usable >= requested (same allocator)",
          bad == 0);

    static const size_t big[] = {4096, 65536, 1 << 20, (1 << 20) + 1, 16 << 20};
    bad = 0;
    for (size_t s : big) {
        char *p = new char[s];
        if (malloc_usable_size(p) < s) bad++;
        std::memset(p, 3, s);
        delete[] p;
        p = static_cast<char *>(::operator new(s));
        std::memset(p, 4, s);
        ::operator delete(p, s);
    }
    CHECK("new of large sizes: usable >= requested", bad == 0);

    // new of zero bytes: unique non-null pointers.
    void *z1 = ::operator new(0), *z2 = ::operator new(0);
    char *z3 = new char[0];
    CHECK("operator new(0) returns distinct non-null pointers", z1 && z2 && z3 && z1 != z2);
    ::operator delete(z1);
    ::operator delete(z2);
    delete[] z3;

    // nothrow forms succeed for ordinary sizes.
    char *n1 = new (std::nothrow) char[100];
    int *n2 = new (std::nothrow) int(5);
    void *n3 = ::operator new(300, std::nothrow);
    CHECK("nothrow new succeeds for small sizes", n1 && n2 && *n2 == 5 && n3);
    std::memset(n1, 5, 100);
    delete[] n1;
    delete n2;
    ::operator delete(n3, std::nothrow);
    void *n4 = ::operator new[](300, std::nothrow);
    CHECK("nothrow new[] succeeds", n4 != nullptr);
    ::operator delete[](n4, std::nothrow);

    delete static_cast<int *>(nullptr); // must be a no-op
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
    ::operator delete(nullptr, std::align_val_t(64));
}

static void test_aligned_forms() {
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        Line *l = new Line;
        Page *p = new Page;
        if (!aligned(l, 64) || !aligned(p, 4096)) bad++;
        std::memset(l->data, 1, sizeof l->data);
        std::memset(p->data, 2, sizeof p->data);
        delete l;
        delete p;
    }
    CHECK("new alignas(64) / alignas(4096) types are aligned", bad == 0);

    Line *la = new Line[33];
    Page *pa = new Page[3];
    CHECK("new Line[33] aligned to 64", aligned(la, 64));
    CHECK("new Page[3] aligned to 4096, elements too",
          aligned(pa, 4096) && aligned(&pa[1], 4096) && aligned(&pa[2], 4096));
    std::memset(la, 7, sizeof(Line) * 33);
    std::memset(pa, 8, sizeof(Page) * 3);
    delete[] la;
    delete[] pa;

    Counted *c = new Counted[17];
    bool ok = Counted::live == 17;
    for (int i = 0; i < 17; i++)
        if (!aligned(&c[i], 128) || c[i].data[39] != 0x6b) ok = false;
    delete[] c;
    CHECK("new Counted[17] (cookie + alignas(128)): aligned, constructed, destroyed",
          ok && Counted::live == 0);

    char *s = new (std::align_val_t(256)) char[100];
    CHECK("new (align_val_t(256)) char[100] aligned", aligned(s, 256));
    CHECK("aligned new[]: usable >= requested", malloc_usable_size(s) >= 100);
    std::memset(s, 9, 100);
    ::operator delete[](s, std::align_val_t(256));

    bad = 0;
    for (size_t a = 16; a <= ((size_t)1 << 21); a *= 2) {
        static const size_t sizes[] = {1, 100, 4096, 100000};
        for (size_t sz : sizes) {
            std::align_val_t al{a};
            void *p = ::operator new(sz, al);
            void *q = ::operator new[](sz, al);
            void *r = ::operator new(sz, al, std::nothrow);
            void *t = ::operator new[](sz, al, std::nothrow);
            if (!aligned(p, a) || !aligned(q, a) || !r || !aligned(r, a) || !t || !aligned(t, a))
                bad++;
            if (malloc_usable_size(p) < sz || malloc_usable_size(q) < sz) bad++;
            std::memset(p, 1, sz);
            std::memset(q, 2, sz);
            std::memset(r, 3, sz);
            std::memset(t, 4, sz);
            ::operator delete(p, sz, al); // sized + aligned
            ::operator delete[](q, al);   // aligned
            ::operator delete(r, al, std::nothrow);
            ::operator delete[](t, sz, al);
        }
    }
    CHECK("aligned operator new forms (16 B .. 2 MiB alignment) aligned and usable", bad == 0);

    // Alignments below the default are valid arguments too.
    bad = 0;
    for (size_t a = 1; a <= 8; a *= 2) {
        void *p = ::operator new(24, std::align_val_t(a));
        void *q = ::operator new[](24, std::align_val_t(a), std::nothrow);
        if (!p || !q || !aligned(p, a) || !aligned(q, a)) bad++;
        std::memset(p, 1, 24);
        std::memset(q, 1, 24);
        ::operator delete(p, std::align_val_t(a));
        ::operator delete[](q, std::align_val_t(a));
    }
    CHECK("aligned operator new with align_val_t(1..8)", bad == 0);
}

static int handler_calls;
static void one_shot_handler() {
    handler_calls++;
    std::set_new_handler(nullptr); // next failure throws
}

static void test_failures() {
    char *p = new (std::nothrow) char[v_huge];
    CHECK("nothrow new[] of 2^62 returns nullptr", p == nullptr);
    void *q = ::operator new(v_size_max, std::nothrow);
    CHECK("nothrow operator new(SIZE_MAX) returns nullptr", q == nullptr);
    q = ::operator new(v_huge, std::align_val_t(64), std::nothrow);
    CHECK("nothrow aligned operator new(2^62) returns nullptr", q == nullptr);
    q = ::operator new[](v_huge, std::align_val_t(4096), std::nothrow);
    CHECK("nothrow aligned operator new[](2^62) returns nullptr", q == nullptr);

    bool threw = false;
    try {
        char *x = new char[v_huge];
        x[0] = 1;
        delete[] x;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK("new char[2^62] throws std::bad_alloc", threw);

    threw = false;
    try {
        void *x = ::operator new(v_size_max);
        ::operator delete(x);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK("operator new(SIZE_MAX) throws std::bad_alloc", threw);

    threw = false;
    try {
        void *x = ::operator new(v_huge, std::align_val_t(256));
        ::operator delete(x, std::align_val_t(256));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK("aligned operator new(2^62) throws std::bad_alloc", threw);

    threw = false;
    try {
        int *x = new int[v_huge]; // element count * 4 overflows
        delete[] x;
    } catch (const std::bad_array_new_length &) {
        threw = true;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK("new int[2^62] throws bad_array_new_length / bad_alloc", threw);

    // The new_handler is called on failure before throwing.
    handler_calls = 0;
    std::set_new_handler(one_shot_handler);
    threw = false;
    try {
        void *x = ::operator new(v_huge);
        ::operator delete(x);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    std::set_new_handler(nullptr);
    CHECK("failing operator new calls the new_handler once, then throws",
          threw && handler_calls == 1);

    // After failures, allocation still works.
    std::vector<int> v(1000, 3);
    CHECK("allocation works after failed new", v[999] == 3);
}

static void test_containers() {
    std::vector<uint64_t> v;
    for (uint64_t i = 0; i < 2000000; i++) v.push_back(i * 3);
    bool ok = v.size() == 2000000;
    for (uint64_t i = 0; i < v.size(); i += 997)
        if (v[i] != i * 3) ok = false;
    v.resize(10);
    v.shrink_to_fit();
    CHECK("vector push_back 2M, shrink_to_fit", ok && v.capacity() >= 10 && v[9] == 27);

    std::vector<std::string> strs;
    for (int i = 0; i < 100000; i++)
        strs.push_back(std::string(static_cast<size_t>(i % 200), static_cast<char>('a' + i % 26)) +
                       std::to_string(i));
    std::sort(strs.begin(), strs.end());
    ok = std::is_sorted(strs.begin(), strs.end());
    std::string big;
    for (int i = 0; i < 100000; i++) big += "0123456789";
    CHECK("100k strings sorted, 1 MB string built by +=", ok && big.size() == 1000000 &&
                                                             big.compare(999990, 10, "0123456789") == 0);

    std::map<int, std::string> m;
    for (int i = 0; i < 100000; i++) m[(i * 7919) % 100003] = std::to_string(i);
    for (int i = 0; i < 100000; i += 2) m.erase((i * 7919) % 100003);
    ok = m.size() == 50000;
    for (int i = 1; i < 100000; i += 2)
        if (m[(i * 7919) % 100003] != std::to_string(i)) ok = false;
    CHECK("std::map 100k insert / 50k erase keeps values", ok && m.size() == 50000);

    std::unordered_map<std::string, std::vector<int>> um;
    for (int i = 0; i < 50000; i++) um["key" + std::to_string(i % 5000)].push_back(i);
    ok = um.size() == 5000;
    for (auto &kv : um)
        if (kv.second.size() != 10) ok = false;
    um.clear();
    CHECK("unordered_map<string, vector> churn", ok && um.empty());

    std::vector<std::shared_ptr<Line>> sp;
    for (int i = 0; i < 10000; i++) sp.push_back(std::make_shared<Line>());
    ok = true;
    for (auto &p : sp)
        if (!aligned(p.get(), 64)) ok = false;
    sp.clear();
    auto up = std::make_unique<Page[]>(5);
    CHECK("make_shared<alignas(64)> and make_unique<alignas(4096)[]> aligned",
          ok && aligned(up.get(), 4096));
}

static void test_mixing() {
    // Interleave the C API with new/delete; each block freed by its own API.
    enum { N = 4000 };
    static void *c[N];
    static char *cc[N];
    static size_t sz[N];
    unsigned x = 99;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        sz[i] = 1 + (x >> 8) % (i % 100 == 0 ? (1u << 20) : 2000u);
        c[i] = std::malloc(sz[i]);
        cc[i] = new char[sz[i]];
        std::memset(c[i], i & 0xff, sz[i]);
        std::memset(cc[i], ~i & 0xff, sz[i]);
        if (i % 3 == 0) {
            std::free(std::malloc(sz[i]));
            delete new int(i);
        }
    }
    int bad = 0;
    for (int i = 0; i < N; i++) {
        const unsigned char *a = static_cast<unsigned char *>(c[i]);
        const unsigned char *b = reinterpret_cast<unsigned char *>(cc[i]);
        if (a[0] != (i & 0xff) || a[sz[i] - 1] != (i & 0xff)) bad++;
        if (b[0] != (~i & 0xff) || b[sz[i] - 1] != (~i & 0xff)) bad++;
        if (malloc_usable_size(cc[i]) < sz[i]) bad++;
    }
    for (int i = 0; i < N; i++) {
        std::free(c[i]);
        delete[] cc[i];
    }
    CHECK("malloc/free interleaved with new[]/delete[]: no overlap, usable >= requested", bad == 0);

    // realloc and calloc still behave while C++ objects are live.
    std::vector<std::string> keep(1000, std::string(50, 'k'));
    char *r = static_cast<char *>(std::calloc(1, 100));
    bool zero = std::all_of(r, r + 100, [](char ch) { return ch == 0; });
    std::memcpy(r, "abc", 4);
    r = static_cast<char *>(std::realloc(r, 1 << 20));
    CHECK("calloc/realloc alongside C++ objects", zero && r && !std::strcmp(r, "abc") &&
                                                      keep[999] == std::string(50, 'k'));
    std::free(r);
}

int main() {
    TEST_BEGIN("api/cxx_operators");
    const char *pre = std::getenv("LD_PRELOAD");
    under_mspace = pre && std::strstr(pre, "libmspace");
    if (under_mspace) test_symbols();
    test_plain_forms();
    test_aligned_forms();
    test_failures();
    test_containers();
    test_mixing();
    return TEST_DONE();
}
