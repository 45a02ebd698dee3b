/* Interned stacks (core/stack.c) and the records of live blocks
 * (core/records.c): one entry per distinct stack, records found again by
 * address after their stripe's table has grown many times, and forgotten
 * exactly once. */
#include <stdint.h>
#include "../harness.h"
#include "records.h"
#include "stack.h"

static ms_records_t records;

static void count_record(const ms_record_t *r, void *arg) {
    size_t *n = arg;
    n[0]++;
    n[1] += r->size;
}

int main(void) {
    TEST_BEGIN("unit/records");
    uintptr_t a[3] = {0x1000, 0x2000, 0x3000}, b[3] = {0x1000, 0x2000, 0x3001};
    ms_stack_t *sa = ms_stack_intern(a, 3), *sb = ms_stack_intern(b, 3);
    CHECK("stacks interned", sa && sb);
    CHECK("same frames, same stack", ms_stack_intern(a, 3) == sa);
    CHECK("different frames, different stack", sa != sb);
    CHECK("prefix is a different stack", ms_stack_intern(a, 2) != sa);
    CHECK("frames kept", sa->depth == 3 && sa->frames[2] == 0x3000);
    uintptr_t deep[MS_STACK_MAX + 10] = {0};
    ms_stack_t *cut = ms_stack_intern(deep, MS_STACK_MAX + 10);
    CHECK("deep stacks are cut to MS_STACK_MAX", cut && cut->depth == MS_STACK_MAX);

    enum { N = 200000 };
    int added = 1;
    for (uintptr_t i = 0; i < N; i++)
        added &= ms_records_add(&records, (void *)(0x100000 + 16 * i), i & 1 ? sa : sb, i % 100);
    CHECK("records added", added);
    size_t seen[2] = {0, 0};
    ms_records_walk(&records, count_record, seen);
    CHECK("walk sees every record once", seen[0] == N);
    CHECK("re-adding an address replaces its record",
          ms_records_add(&records, (void *)0x100000, sa, 12345));
    ms_record_t r;
    CHECK("found again", ms_records_remove(&records, (void *)0x100000, &r) && r.size == 12345 &&
                             r.stack == sa);
    CHECK("removed once only", !ms_records_remove(&records, (void *)0x100000, &r));
    CHECK("unknown address not found", !ms_records_remove(&records, (void *)0x10, &r));
    int all = 1;
    for (uintptr_t i = 1; i < N; i++)
        all &= ms_records_remove(&records, (void *)(0x100000 + 16 * i), &r) &&
               r.size == i % 100 && r.stack == (i & 1 ? sa : sb);
    CHECK("every record found with its stack and size", all);
    seen[0] = seen[1] = 0;
    ms_records_walk(&records, count_record, seen);
    CHECK("table empty again", seen[0] == 0);
    return TEST_DONE();
}
