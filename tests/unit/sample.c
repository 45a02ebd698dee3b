/* Sampling maths (core/sample.c): the distances between samples have the
 * asked-for mean, the weights match 1/(1 - exp(-size/rate)), and weighted
 * samples estimate the bytes and counts actually allocated. */
#include <stdint.h>
#include "../harness.h"
#include "sample.h"

static int near(double got, double want, double tolerance) {
    double d = got - want;
    return (d < 0 ? -d : d) <= tolerance * (want < 0 ? -want : want);
}

int main(void) {
    TEST_BEGIN("unit/sample");
    ms_sample_set_rate(524288);
    /* 1/(1 - 1/e), 1/(1 - e^-2), and the small-size limit rate/size + 1/2 */
    CHECK("weight at size == rate", near(ms_sample_weight(524288), 1.5819767068693265, 1e-9));
    CHECK("weight at size == 2 rate", near(ms_sample_weight(1048576), 1.1565176427496657, 1e-9));
    CHECK("weight of 16 bytes", near(ms_sample_weight(16), 32768.5, 1e-6));
    CHECK("weight of huge blocks is 1", near(ms_sample_weight((size_t)1 << 40), 1, 1e-12));
    CHECK("weight of 0 bytes is finite", ms_sample_weight(0) > 1e5 && ms_sample_weight(0) < 1e6);

    double sum = 0;
    for (int i = 0; i < 200000; i++)
        sum += (double)ms_sample_draw();
    CHECK("mean distance is the rate (+-2%)", near(sum / 200000, 524288, 0.02));

    /* 2^30 bytes in blocks of several sizes at rate 64 KiB: ~16000
     * samples, so the estimate is within 1% with near certainty (the bound
     * is 5%). Then 2^20 blocks of 1 KiB, for the count. */
    ms_sample_set_rate(65536);
    static const size_t sizes[] = {16, 100, 1024, 5000, 70000, 1 << 20};
    double bytes = 0, est_bytes = 0;
    for (int i = 0; bytes < (double)(1 << 30); i++) {
        size_t size = sizes[i % 6];
        bytes += size;
        if (ms_sample_take(size))
            est_bytes += ms_sample_weight(size) * size;
    }
    CHECK("weighted bytes estimate the bytes (+-5%)", near(est_bytes, bytes, 0.05));
    double est_count = 0;
    for (int i = 0; i < 1 << 20; i++)
        if (ms_sample_take(1024))
            est_count += ms_sample_weight(1024);
    CHECK("weighted counts estimate the count (+-5%)", near(est_count, 1 << 20, 0.05));

    ms_sample_set_rate(1);
    ms_sample_take((size_t)1 << 40); /* use up the distance drawn at the old rate */
    int all = 1;
    for (int i = 0; i < 1000; i++)
        all &= ms_sample_take(16);
    CHECK("rate 1 samples every block of 16 bytes or more", all);
    return TEST_DONE();
}
