/* C++ operator new and delete, so that C++ programs never mix allocators.
 * Written in C under their mangled names; the throwing path reaches
 * libstdc++ through weak references, which only C++ programs resolve. */
#include <errno.h>
#include <stddef.h>
#include "../core/host.h"

#define EXPORT __attribute__((visibility("default")))

void *malloc(size_t size);
void free(void *p);
int posix_memalign(void **out, size_t alignment, size_t size);

typedef void (*new_handler_t)(void);
extern new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static void *aligned_or_null(size_t size, size_t alignment) {
    void *p = NULL;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    return posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}

/* The standard's loop: call the installed new_handler until it frees
 * memory, or throw std::bad_alloc when there is none. */
static void *new_or_throw(size_t size, size_t alignment) {
    for (;;) {
        void *p = alignment ? aligned_or_null(size, alignment) : malloc(size);
        if (p)
            return p;
        new_handler_t handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
        if (handler) {
            handler();
            continue;
        }
        if (_ZSt17__throw_bad_allocv)
            _ZSt17__throw_bad_allocv();
        ms_host_fatal("operator new", "out of memory for a block of size", (void *)size);
    }
}

static void *new_or_null(size_t size, size_t alignment) {
    return alignment ? aligned_or_null(size, alignment) : malloc(size);
}

/* new(size_t), new[](size_t), and their nothrow and align_val_t forms. */
EXPORT void *_Znwm(size_t n) { return new_or_throw(n, 0); }
EXPORT void *_Znam(size_t n) { return new_or_throw(n, 0); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) { return new_or_null(n, 0); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) { return new_or_null(n, 0); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) { return new_or_throw(n, a); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) { return new_or_throw(n, a); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt) { return new_or_null(n, a); }
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *nt) { return new_or_null(n, a); }

/* delete in every form: plain, array, sized, aligned, nothrow. */
EXPORT void _ZdlPv(void *p) { free(p); }
EXPORT void _ZdaPv(void *p) { free(p); }
EXPORT void _ZdlPvm(void *p, size_t n) { free(p); }
EXPORT void _ZdaPvm(void *p, size_t n) { free(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { free(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { free(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { free(p); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { free(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) { free(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) { free(p); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt) { free(p); }
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *nt) { free(p); }
