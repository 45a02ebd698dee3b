/* Size classes (core/size_class.[ch]): every small request gets the tightest
 * class that fits, classes waste at most a quarter above 128 bytes and an
 * eighth above 1 KiB, the
 * lookup table and the computed path agree, and each class's span holds
 * enough blocks. */
#include <stdio.h>

#include "../harness.h"
#include "heap.h"
#include "secure.h"
#include "size_class.h"

/* Four classes per doubling, computed, for sizes 129..1024: the table must
 * agree with it. */
static unsigned computed_class(size_t size) {
    size_t s = size - 1;
    unsigned top = 63u - (unsigned)__builtin_clzll(s);
    return 8u + (top - 7u) * 4u + (unsigned)((s >> (top - 2u)) & 3u);
}

/* Checks one size; counts failures itself so that a broken rule reports
 * its first few sizes instead of hundreds of thousands of lines. */
static int bad_fit, bad_tight, bad_waste, bad_waste_above_1k, bad_range;
static void check_size(size_t size) {
    unsigned c = ms_size_class_of(size);
    if (c >= MS_CLASS_COUNT) {
        if (bad_range++ < 5)
            fprintf(stderr, "size %zu: class %u out of range\n", size, c);
        return;
    }
    size_t got = ms_size_class_size(c);
    if (got < size && bad_fit++ < 5)
        fprintf(stderr, "size %zu: class %u holds only %zu\n", size, c, got);
    if (c > 0 && ms_size_class_size(c - 1) >= size && bad_tight++ < 5)
        fprintf(stderr, "size %zu: class %u (%zu) but class %u (%zu) fits\n", size, c, got,
                c - 1, ms_size_class_size(c - 1));
    if (size > 128 && (got - size) * 4 > size && bad_waste++ < 5)
        fprintf(stderr, "size %zu: class size %zu wastes more than 25%%\n", size, got);
    if (size > 1024 && (got - size) * 8 > size && bad_waste_above_1k++ < 5)
        fprintf(stderr, "size %zu: class size %zu wastes more than 12.5%%\n", size, got);
}

int main(void) {
    TEST_BEGIN("size_class");

    /* Every size a caller can ask for, one by one where classes are dense,
     * then every 16 bytes (class sizes are multiples of 16, so this visits
     * every class boundary and both sides of it, plus the +1 sizes). */
    for (size_t size = 0; size <= 4096; size++)
        check_size(size);
    for (size_t size = 4096; size <= MS_MEDIUM_MAX; size += 16) {
        check_size(size);
        check_size(size + 1 <= MS_MEDIUM_MAX ? size + 1 : size);
    }
    CHECK("every size maps to a valid class", bad_range == 0);
    CHECK("class size >= requested size", bad_fit == 0);
    CHECK("tightest class (the previous class is too small)", bad_tight == 0);
    CHECK("waste <= 25% above 128 bytes", bad_waste == 0);
    CHECK("waste <= 12.5% above 1 KiB", bad_waste_above_1k == 0);

    CHECK("malloc(0) gets the 16-byte class", ms_size_class_of(0) == 0 &&
                                                  ms_size_class_size(0) == 16);
    CHECK("MS_MEDIUM_MAX is the last class",
          ms_size_class_of(MS_MEDIUM_MAX) == MS_CLASS_COUNT - 1);
    CHECK("last class size == MS_MEDIUM_MAX",
          ms_size_class_size(MS_CLASS_COUNT - 1) == MS_MEDIUM_MAX);
    CHECK("MS_SMALL_MAX is a class, the 25th from the top",
          ms_size_class_size(ms_size_class_of(MS_SMALL_MAX)) == MS_SMALL_MAX &&
              ms_size_class_of(MS_SMALL_MAX) == MS_CLASS_COUNT - 25);
    CHECK("medium classes: eight per doubling, 288 KiB .. 2 MiB",
          ms_size_class_size(MS_CLASS_COUNT - 24) == 288 * 1024 &&
              ms_size_class_size(MS_CLASS_COUNT - 9) == 1024 * 1024 &&
              ms_size_class_size(MS_CLASS_COUNT - 8) == 1152 * 1024);

    /* The class sizes themselves. */
    int not16 = 0, not_increasing = 0, not_own_class = 0;
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++) {
        size_t s = ms_size_class_size(c);
        if (s % 16 != 0)
            not16++;
        if (c > 0 && s <= ms_size_class_size(c - 1))
            not_increasing++;
        if (ms_size_class_of(s) != c) {
            not_own_class++;
            fprintf(stderr, "class %u size %zu maps to class %u\n", c, s, ms_size_class_of(s));
        }
    }
    CHECK("class sizes are multiples of 16", not16 == 0);
    CHECK("class sizes strictly increase", not_increasing == 0);
    CHECK("a class's own size maps back to it", not_own_class == 0);
    CHECK("16-byte steps up to 128", ms_size_class_size(7) == 128 && ms_size_class_size(8) == 160);

    /* Table (<= 1024) and computed (> 1024) paths meet without a gap. */
    CHECK("1024 is class 19 (table)", ms_size_class_of(1024) == 19 &&
                                          ms_size_class_size(19) == 1024);
    CHECK("1025 is the next class (computed), 1152 bytes",
          ms_size_class_of(1025) == 20 && ms_size_class_size(20) == 1152);
    CHECK("eight classes per doubling above 1 KiB: 2048, 2304, 4096, 4608",
          ms_size_class_size(ms_size_class_of(2048)) == 2048 &&
              ms_size_class_size(ms_size_class_of(2049)) == 2304 &&
              ms_size_class_size(ms_size_class_of(4096)) == 4096 &&
              ms_size_class_size(ms_size_class_of(4097)) == 4608);
    int table_disagrees = 0;
    for (size_t size = 129; size <= MS_CLASS_TABLE_MAX; size++)
        if (computed_class(size) != ms_class_table[(size + 15) >> 4]) {
            if (table_disagrees++ < 5)
                fprintf(stderr, "size %zu: table %u, computed %u\n", size,
                        ms_class_table[(size + 15) >> 4], computed_class(size));
        }
    CHECK("table == computed for every size 129..1024", table_disagrees == 0);
    CHECK("fast-path table index covers 1024", ((MS_CLASS_TABLE_MAX + 15) >> 4) == 64);
    CHECK("malloc's fast path by class covers the classes above the table to MS_SMALL_MAX",
          ms_size_class_of(MS_DIRECT_MEDIUM_MAX) ==
                  MS_CLASS_TABLE_COUNT + MS_DIRECT_MEDIUM_COUNT - 1 &&
              MS_DIRECT_MEDIUM_MAX == MS_SMALL_MAX);

    /* Spans: one slice up to 8 KiB, sixteen blocks up to 64 KiB and at
     * least eight up to MS_SMALL_MAX, exactly one block above (in as few slices as hold it,
     * with room for the secure build's guard page); the blocks fit the span
     * and the counters' widths. */
    int bad_slices = 0;
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++) {
        size_t size = ms_size_class_size(c);
        unsigned slices = ms_size_class_slices(c);
        size_t span_bytes = (size_t)slices * MS_SLICE_SIZE;
        size_t capacity = span_bytes / size;
        int ok = slices >= 1 && slices < MS_SLICES_PER_SEGMENT && capacity >= 1 &&
                 capacity * size <= span_bytes && capacity <= UINT16_MAX;
        if (size <= 8192)
            ok = ok && slices == 1;
        else if (size <= 64 * 1024)
            ok = ok && capacity >= 16 && slices <= 16;
        else if (size <= MS_SMALL_MAX)
            ok = ok && capacity >= 8 && slices <= 32;
        else
            ok = ok && capacity == 1 && (size_t)(slices - 1) * MS_SLICE_SIZE < size &&
                 (size_t)slices * MS_SLICE_SIZE >= size + MS_SECURE_GUARD &&
                 (size_t)slices * MS_SLICE_SIZE <= size + MS_SLICE_SIZE;
        if (!ok && bad_slices++ < 5)
            fprintf(stderr, "class %u (%zu bytes): %u slices, capacity %zu\n", c, size, slices,
                    capacity);
    }
    CHECK("span sizes: 1 slice <= 8 KiB, >= 16 blocks to 64 KiB, >= 8 to 256 KiB, 1 above",
          bad_slices == 0);
    CHECK("16 KiB class span: 4 slices of 16 blocks; 128 KiB: 16 slices of 8",
          ms_size_class_slices(ms_size_class_of(16 * 1024)) == 4 &&
              ms_size_class_slices(ms_size_class_of(128 * 1024)) == 16);
    CHECK("256 KiB class span: 32 slices of 8 blocks",
          ms_size_class_slices(ms_size_class_of(MS_SMALL_MAX)) == 32);
    CHECK("largest class span: one 2 MiB block (+ guard page when secure)",
          ms_size_class_slices(MS_CLASS_COUNT - 1) == 32 + (MS_SECURE_GUARD != 0));

    return TEST_DONE();
}
