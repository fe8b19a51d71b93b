/*
 * Hidden-layer activations: the fused bias + activation forward pass and the
 * derivative applied in place to a sensitivity.
 *
 * Scheme: Z = A_prev @ W is computed by GEMM beforehand; the forward kernel adds
 * the bias to Z in place and writes A = f(Z). The backward kernel multiplies
 * delta by f'(Z), reading whichever of Z and A = f(Z) gives the derivative more
 * cheaply (sklearn's trick of writing derivatives in terms of the output).
 * A new activation is one case in each switch plus one _registry entry.
 */
#ifndef FM_T
#error "activations.template.c is included by activations.c only"
#endif

#include "mathfun.template.h"

static inline FM_T FM_FN(fm_activate)(int act, FM_T z)
{
    switch (act) {
    case FM_LOGISTIC: return FM_FN(fm_sigmoid)(z);
    case FM_TANH: return FM_FN(fm_tanh)(z);
    case FM_RELU: return z > 0 ? z : (FM_T)0;
    case FM_LEAKY_RELU: return z > 0 ? z : (FM_T)FM_LEAKY_SLOPE * z;
    case FM_SWISH: return z * FM_FN(fm_sigmoid)(z);
    default: return z; /* FM_IDENTITY */
    }
}

/*
 * fm_bias_act_forward: Z += bias (broadcast over rows), then A = f(Z), and
 * the running largest Z of each column when colmax is given.
 *   act     activation code (FM_IDENTITY ... FM_SWISH)
 *   n_rows  rows of Z and A (batch rows)
 *   n_cols  columns of Z and A (fan_out, or a block of its columns)
 *   ld      elements from one row of Z and A to the next (>= n_cols: a block of
 *           the columns of a wider matrix, one call for all its rows)
 *   bias    (n_cols,) read
 *   Z       (n_rows, n_cols) read and written (bias added)
 *   A       (n_rows, n_cols) written; may be the same buffer as Z
 *   colmax  (n_cols,) read and written: max(colmax, Z's largest in the column)
 *           (the units' largest pre-activation of the dead-unit report, in
 *           the same call, each row while it is in L1: a call of fm_col_max
 *           per batch and layer less); or NULL
 */
static inline __attribute__((always_inline)) void FM_FN(fm_bias_act_rows)(
    int act, int keep_max, ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const FM_T *bias, FM_T *Z,
    FM_T *A, FM_T *colmax)
{
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        FM_T *z = Z + i * ld;
        FM_T *a = A + i * ld;
        for (ptrdiff_t j = 0; j < n_cols; j++) {
            FM_T v = z[j] + bias[j];
            z[j] = v;
            a[j] = FM_FN(fm_activate)(act, v);
        }
        if (keep_max) /* (the row just written, still in L1) */
            FM_FN(fm_max_into)(n_cols, z, colmax);
    }
}

FM_HOT void FM_FN(fm_bias_act_forward)(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld,
                                const FM_T *bias, FM_T *Z, FM_T *A, FM_T *colmax)
{
    /* each activation a loop of its own (with act a constant, fm_activate's switch folds and the loop
     * vectorizes: the transcendental ones are branch-free, fm_sigmoid and fm_tanh) */
#define FM_ROWS(ACT, KEEP) FM_FN(fm_bias_act_rows)(ACT, KEEP, n_rows, n_cols, ld, bias, Z, A, colmax)
#define FM_ALL(KEEP) \
    switch (act) { \
    case FM_RELU: FM_ROWS(FM_RELU, KEEP); break; \
    case FM_IDENTITY: FM_ROWS(FM_IDENTITY, KEEP); break; \
    case FM_TANH: FM_ROWS(FM_TANH, KEEP); break; \
    case FM_LOGISTIC: FM_ROWS(FM_LOGISTIC, KEEP); break; \
    case FM_SWISH: FM_ROWS(FM_SWISH, KEEP); break; \
    case FM_LEAKY_RELU: FM_ROWS(FM_LEAKY_RELU, KEEP); break; \
    default: FM_ROWS(act, KEEP); \
    }
    if (colmax != NULL) {
        FM_ALL(1)
    } else {
        FM_ALL(0)
    }
#undef FM_ALL
#undef FM_ROWS
}

/*
 * fm_act_backward: delta *= f'(Z), element-wise, over n_rows rows of n_cols
 * elements, each ld elements after the one before in Z, A and delta (ld ==
 * n_cols: one run of n_rows * n_cols).
 *   act     activation code
 *   Z       read: pre-activations (bias included)
 *   A       read: f(Z) (before dropout)
 *   delta   read and written
 */
static inline __attribute__((always_inline)) void FM_FN(fm_act_backward_run)(int act, ptrdiff_t n, const FM_T *Z,
                                                                             const FM_T *A, FM_T *delta)
{
    switch (act) {
    case FM_IDENTITY:
        break;
    case FM_LOGISTIC: /* f' = f (1 - f) */
        for (ptrdiff_t i = 0; i < n; i++) delta[i] *= A[i] * ((FM_T)1 - A[i]);
        break;
    case FM_TANH: /* f' = 1 - f^2 */
        for (ptrdiff_t i = 0; i < n; i++) delta[i] *= (FM_T)1 - A[i] * A[i];
        break;
    case FM_RELU: /* f' = [z > 0] */
        for (ptrdiff_t i = 0; i < n; i++) delta[i] = Z[i] > 0 ? delta[i] : (FM_T)0;
        break;
    case FM_LEAKY_RELU: /* f' = 1 for z > 0, slope otherwise */
        for (ptrdiff_t i = 0; i < n; i++)
            delta[i] *= Z[i] > 0 ? (FM_T)1 : (FM_T)FM_LEAKY_SLOPE;
        break;
    case FM_SWISH: /* f = z s(z), f' = s (1 + z (1 - s)) */
        for (ptrdiff_t i = 0; i < n; i++) {
            FM_T s = FM_FN(fm_sigmoid)(Z[i]);
            delta[i] *= s * ((FM_T)1 + Z[i] * ((FM_T)1 - s));
        }
        break;
    }
}

FM_HOT void FM_FN(fm_act_backward)(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const FM_T *Z,
                                   const FM_T *A, FM_T *delta)
{
    if (ld == n_cols) {
        n_cols *= n_rows;
        n_rows = 1;
    }
    /* the row loop inside each activation's case, whose loop then vectorizes with act a constant */
#define FM_RUNS(ACT) \
    for (ptrdiff_t r = 0; r < n_rows; r++) FM_FN(fm_act_backward_run)(ACT, n_cols, Z + r * ld, A + r * ld, delta + r * ld)
    switch (act) {
    case FM_RELU: FM_RUNS(FM_RELU); break;
    case FM_TANH: FM_RUNS(FM_TANH); break;
    case FM_LOGISTIC: FM_RUNS(FM_LOGISTIC); break;
    case FM_SWISH: FM_RUNS(FM_SWISH); break;
    case FM_LEAKY_RELU: FM_RUNS(FM_LEAKY_RELU); break;
    default: break; /* FM_IDENTITY */
    }
#undef FM_RUNS
}

/*
 * PReLU, f(z) = z for z > 0 and a_j z otherwise, with a learnable slope a_j per
 * unit (column). Its derivative with respect to a_j is min(z, 0), summed over
 * the batch in the same pass as the backward step.
 */

/*
 * fm_prelu_forward: Z += bias, then A = f(Z) with the column's slope, and the
 * running largest Z of each column when colmax is given (as fm_bias_act_forward).
 *   n_rows, n_cols  shape of Z and A
 *   ld              elements from one row of Z and A to the next (>= n_cols)
 *   bias            (n_cols,) read
 *   slopes          (n_cols,) read
 *   Z               (n_rows, n_cols) read and written (bias added)
 *   A               (n_rows, n_cols) written; may be Z
 *   colmax          (n_cols,) read and written, or NULL
 */
FM_HOT void FM_FN(fm_prelu_forward)(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const FM_T *bias,
                             const FM_T *slopes, FM_T *Z, FM_T *A, FM_T *colmax)
{
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        FM_T *z = Z + i * ld;
        FM_T *a = A + i * ld;
        for (ptrdiff_t j = 0; j < n_cols; j++) {
            FM_T v = z[j] + bias[j];
            z[j] = v;
            a[j] = v > 0 ? v : slopes[j] * v;
        }
        if (colmax != NULL)
            FM_FN(fm_max_into)(n_cols, z, colmax);
    }
}

/*
 * fm_prelu_backward: slope_grad (+)= sum_rows delta * min(Z, 0), then
 * delta *= f'(Z) (1 for z > 0, the slope otherwise).
 *   n_rows, n_cols  shape of Z and delta
 *   ld              elements from one row of Z and delta to the next (>= n_cols)
 *   accumulate      nonzero: add to slope_grad; zero: overwrite it
 *   Z               (n_rows, n_cols) read: pre-activations
 *   slopes          (n_cols,) read
 *   delta           (n_rows, n_cols) read and written: dL/dA in, dL/dZ out
 *   slope_grad      (n_cols,) written: dL/d slopes
 */
FM_HOT void FM_FN(fm_prelu_backward)(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, int accumulate,
                              const FM_T *Z, const FM_T *slopes, FM_T *delta, FM_T *slope_grad)
{
    if (!accumulate) {
        for (ptrdiff_t j = 0; j < n_cols; j++) slope_grad[j] = 0;
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const FM_T *z = Z + i * ld;
        FM_T *d = delta + i * ld;
        for (ptrdiff_t j = 0; j < n_cols; j++) {
            int positive = z[j] > 0;
            slope_grad[j] += positive ? (FM_T)0 : d[j] * z[j];
            d[j] = positive ? d[j] : d[j] * slopes[j];
        }
    }
}
