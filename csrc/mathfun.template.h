/*
 * Scalar helpers shared by the templates, for the dtype set by fm_template.h.
 * Included once per dtype (no include guard: the names carry the suffix).
 */

#ifndef FM_MATHFUN_ONCE
#define FM_MATHFUN_ONCE
#include <stdint.h>
#include <string.h>
#endif

/* colmax[j] = max(colmax[j], row[j]): a row into the units' running maxima (the dead-unit report) */
static inline void FM_FN(fm_max_into)(ptrdiff_t n, const FM_T *row, FM_T *colmax)
{
    for (ptrdiff_t j = 0; j < n; j++) colmax[j] = row[j] > colmax[j] ? row[j] : colmax[j];
}

static inline FM_T FM_FN(fm_abs)(FM_T x)
{
    return x < 0 ? -x : x;
}

/*
 * exp(x) of the kernels (the softmax, the sigmoid, tanh, the exp output): no
 * call (libm's exp is a call through the PLT, and for a row of ten outputs half
 * the softmax's time was the calls), and a loop of it vectorises. Accurate to
 * about one ulp of the dtype (tests/test_kernels.py checks it against the exact
 * values over the whole range),
 * the same bits on every CPU running the same clone of the kernel (plain
 * arithmetic; the x86-64-v3 clone may fuse a multiply and an add).
 *   x = k ln2 + r, |r| <= ln2 / 2, k = round(x / ln2): k from the rounding of
 *   x log2(e) + 1.5 2^52 (2^23 for float), whose low bits then hold k; ln2 in
 *   two parts (the high one with trailing zeros, so k ln2_hi is exact).
 *   exp(r) by its Taylor polynomial (degree 13; float: 7), whose remainder is
 *   below a quarter of an ulp.
 *   2^k as two powers of two 2^k1 2^k2, k1 = floor(k / 2), each a normal
 *   number for every k of the clamped range, so that results below the
 *   smallest normal number round once (to a subnormal or 0) and results above
 *   the largest overflow to inf. In unsigned integers only: u = k + bias >= 0,
 *   k1 + exponent bias = (u >> 1) - 1, k2 + exponent bias = u - (u >> 1) - 1
 *   (AVX2 has no 64-bit arithmetic shift).
 * x below the range gives 0, above it inf, NaN gives NaN.
 */
static inline FM_T FM_FN(fm_exp)(FM_T x)
{
#if FM_DTYPE == 64
    typedef uint64_t bits;
    const double lo = -746.0, hi = 710.0, log2e = 0x1.71547652b82fep0, shift = 0x1.8p52;
    const double ln2_hi = 0x1.62e42fefa3800p-1, ln2_lo = 0x1.ef35793c76730p-45;
    const bits shift_bits = 0x4338000000000000u, bias = 2048;
    const int mantissa = 52;
    /* 1/13!, ..., 1/2!, 1, 1 (Horner's order) */
    static const double taylor[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                    1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
                                    1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
#else
    typedef uint32_t bits;
    const float lo = -104.0f, hi = 89.0f, log2e = 0x1.715476p0f, shift = 0x1.8p23f;
    const float ln2_hi = 0x1.62e4p-1f, ln2_lo = 0x1.7f7d1cp-20f;
    const bits shift_bits = 0x4B400000u, bias = 256;
    const int mantissa = 23;
    static const float taylor[] = {1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f,
                                   0.5f, 1.0f, 1.0f};
#endif
    FM_T kd, r, p, s1, s2;
    bits u, h, b1, b2;
    x = lo > x ? lo : x;  /* (in this form a max instruction, NaN staying NaN) */
    x = hi < x ? hi : x;
    kd = x * log2e + shift;
    memcpy(&u, &kd, sizeof u);
    u = u - shift_bits + bias;
    kd -= shift;
    r = x - kd * ln2_hi;
    r = r - kd * ln2_lo;
    p = taylor[0];
    for (size_t i = 1; i < sizeof taylor / sizeof taylor[0]; i++) p = p * r + taylor[i];
    h = u >> 1;
    b1 = (h - 1) << mantissa;
    b2 = (u - h - 1) << mantissa;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

/* logistic sigmoid, stable in both tails: exp never sees a positive argument. Both tails' forms computed
 * and one chosen (no branch), so that a loop of it vectorises. */
static inline FM_T FM_FN(fm_sigmoid)(FM_T z)
{
    FM_T e = FM_FN(fm_exp)(-FM_FN(fm_abs)(z));
    return (z >= 0 ? (FM_T)1 : e) / ((FM_T)1 + e);
}

/*
 * tanh(x): for |x| < 0.625 Cephes' rational in Cody and Waite's form x + x^3 P(x^2) / Q(x^2) (float: Cephes'
 * polynomial), else 1 - 2 / (exp(2 |x|) + 1) with x's sign (exp overflows to inf for large |x|: exactly 1).
 * Both computed and one chosen (no branch: a loop of it vectorises; libm's tanh is a call per element).
 * Within two ulps or so (tests/test_kernels.py).
 */
static inline FM_T FM_FN(fm_tanh)(FM_T x)
{
    FM_T ax = FM_FN(fm_abs)(x), s = x * x, small, big;
#if FM_DTYPE == 64
    FM_T p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3;
    FM_T q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s + 4.84406305325125486048e3;
    small = x + x * s * (p / q);
#else
    FM_T p = (((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s + 1.33314422036e-1f) * s
             - 3.33332819422e-1f;
    small = x + x * s * p;
#endif
    big = (FM_T)1 - (FM_T)2 / (FM_FN(fm_exp)(ax + ax) + (FM_T)1);
    big = x < 0 ? -big : big;
    return ax < (FM_T)0.625 ? small : big;
}

/*
 * log(1 + t) for 0 <= t <= 1 (softplus's log1p(exp(-|z|))), in double for both dtypes, without a call or a
 * branch: fdlibm's log (e_log.c: its constants and order of operations) of u = 1 + t, reduced to
 * [sqrt(1/2), sqrt(2)) by one halving where u is above sqrt(2), plus (t - (u - 1)) / u for the rounding
 * of u (s_log1p.c's correction). Within an ulp or so of the exact value (tests/test_kernels.py).
 */
static inline double FM_FN(fm_log1p_unit)(double t)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01, lg3 = 2.857142874366239149e-01,
                 lg4 = 2.222219843214978396e-01, lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
                 lg7 = 1.479819860511658591e-01;
    double u = 1.0 + t;
    int above = u > 0x1.6a09e667f3bcdp0;  /* sqrt(2) */
    double k = above ? 1.0 : 0.0, m = above ? 0.5 * u : u;
    double f = m - 1.0, hfsq = 0.5 * f * f, s = f / (2.0 + f), z = s * s, w = z * z;
    double r = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7))) + w * (lg2 + w * (lg4 + w * lg6));
    double log_u = k * ln2_hi - ((hfsq - (s * (hfsq + r) + k * ln2_lo)) - f);
    return log_u + (t - (u - 1.0)) / u;
}

/* softplus(z) = log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)), without overflow */
static inline FM_T FM_FN(fm_softplus)(FM_T z)
{
    FM_T m = z > 0 ? z : (FM_T)0;
    return m + (FM_T)FM_FN(fm_log1p_unit)((double)FM_FN(fm_exp)(-FM_FN(fm_abs)(z)));
}
