#include "sample.h"
#include "host.h"

/* libm is not linked in (most programs never need it), so the two
 * functions used here are computed directly. Both are accurate to a few
 * parts in 10^12 over the range sampling needs, far below the noise of
 * sampling itself. */

#define LN2 0.69314718055994530942

/* ln x for x > 0: x = m * 2^e with m in [1, 2), and
 * ln m = 2 atanh(t) = 2 (t + t^3/3 + t^5/5 + ...) with t = (m-1)/(m+1) <= 1/3. */
static double ln(double x) {
    union { double d; uint64_t u; } v = {.d = x};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
    double t = (v.d - 1) / (v.d + 1), t2 = t * t, term = t, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= t2;
    }
    return e * LN2 + 2 * sum;
}

/* 1 - exp(-y) for y >= 0, without cancellation for small y. */
static double one_minus_exp_neg(double y) {
    if (y < 0.5) { /* y - y^2/2! + y^3/3! - ... */
        double term = y, sum = 0;
        for (int k = 1; k < 20; k++) {
            sum += term;
            term *= -y / (k + 1);
        }
        return sum;
    }
    if (y > 40)
        return 1;
    /* exp(-y) = 2^-k exp(-r), y = k ln2 + r, 0 <= r < ln2 */
    int k = (int)(y / LN2);
    double r = y - k * LN2, term = 1, e = 0;
    for (int i = 1; i < 20; i++) {
        e += term;
        term *= -r / i;
    }
    while (k-- > 0)
        e *= 0.5;
    return 1 - e;
}

static uint64_t rate = 512 * 1024;

void ms_sample_set_rate(uint64_t r) { rate = r ? r : 1; }

static __thread struct {
    int64_t countdown;
    uint64_t random;
    bool started;
} sampler;

/* xorshift64*: fast, and good enough to pick sample points. */
static uint64_t next_random(void) {
    uint64_t x = sampler.random;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sampler.random = x;
    return x * 0x2545f4914f6cdd1du;
}

uint64_t ms_sample_draw(void) {
    if (sampler.random == 0) /* seed per thread: its id and the time */
        sampler.random = (ms_thread_id() ^ (ms_host_now_ms() << 32) ^ 0x853c49e6748fea9bu) | 1;
    /* u uniform in (0, 1]: 53 random bits, never 0 */
    double u = ((next_random() >> 11) + 1) * (1.0 / 9007199254740992.0);
    double d = -ln(u) * (double)rate;
    return d < 1 ? 1 : d > (double)INT64_MAX / 2 ? (uint64_t)INT64_MAX / 2 : (uint64_t)d;
}

bool ms_sample_take(size_t size) {
    if (MS_UNLIKELY(!sampler.started)) {
        sampler.started = true;
        sampler.countdown = (int64_t)ms_sample_draw();
    }
    sampler.countdown -= (int64_t)(size < (size_t)INT64_MAX / 2 ? size : (size_t)INT64_MAX / 2);
    if (MS_LIKELY(sampler.countdown > 0))
        return false;
    sampler.countdown = (int64_t)ms_sample_draw();
    return true;
}

double ms_sample_weight(size_t size) {
    if (size == 0)
        size = 1;
    return 1 / one_minus_exp_neg((double)size / (double)rate);
}
