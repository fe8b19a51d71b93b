/*
 * Output layer: output activation and loss, fused.
 *
 * Scheme: Z = A_prev @ W is computed by GEMM beforehand. fm_output_forward adds
 * the bias and applies the output activation in place (prediction).
 * fm_output_delta does the same for the output of a loss code (FM_SQUARED_ERROR,
 * ...: the loss fixes its output) and, in the same pass, adds each row's loss to
 * *loss_sum and writes delta = scale * dloss/dZ, exact for every loss (r = z - y,
 * c the loss parameter):
 *     identity + squared_error:   0.5 ||r||^2                          delta: r
 *     logistic + log_loss:        sum_k softplus(z_k) - y_k z_k        delta: p - y
 *     softmax  + log_loss:        -sum_k y_k log_softmax(z)_k          delta: m p - y, m = sum_k y_k
 *                                 (m is 1 for one-hot or probability targets)
 *     exp      + poisson:         sum_k exp(z_k) - y_k z_k + y_k log y_k - y_k
 *                                 (half the Poisson deviance, as scikit-learn reports it)  delta: p - y
 *     identity + absolute_error:  sum_k |r_k|                          delta: sign(r)
 *     identity + huber (c > 0):   sum_k 0.5 r^2 if |r| <= c, else c (|r| - c / 2)  delta: clip(r, -c, c)
 *     identity + quantile (0 < c < 1): sum_k the pinball loss, c (y - z) if y >= z,
 *                                 else (1 - c) (z - y)                 delta: -c or 1 - c
 *     exp      + gamma (y > 0):   sum_k z_k - log y_k + y_k exp(-z_k) - 1
 *                                 (half the gamma deviance: HistGradientBoosting's half
 *                                 gamma loss with its constant)        delta: 1 - y / p
 * absolute_error and quantile have a kink at r = 0: delta there is 0 (a
 * subgradient). Losses are computed from Z, not from P, so no log ever sees 0
 * or 1 and no exp overflows short of the true value doing so (softmax
 * subtracts the row max; gamma's y exp(-z) is exp(log y - z), finite wherever
 * the loss is).
 */
#ifndef FM_T
#error "losses.template.c is included by losses.c only"
#endif

#include "mathfun.template.h"

static inline void FM_FN(fm_bias_add)(ptrdiff_t n_cols, const FM_T *bias, FM_T *z)
{
    for (ptrdiff_t j = 0; j < n_cols; j++) z[j] += bias[j];
}

/* z (n_cols,) -= max z; returns the max */
static inline FM_T FM_FN(fm_shift_by_max)(ptrdiff_t n_cols, FM_T *z)
{
    FM_T m = z[0];
    for (ptrdiff_t j = 1; j < n_cols; j++) m = z[j] > m ? z[j] : m;
    for (ptrdiff_t j = 0; j < n_cols; j++) z[j] -= m;
    return m;
}

/* The rows of the softmax a call works on at once: their exponentials are one loop over the block (a
 * vectorised loop of FM_SOFTMAX_ROWS n_cols elements, where a row of ten outputs is two vectors and a
 * scalar tail), the block still in L1. */
#define FM_SOFTMAX_ROWS 32

/* Z (n_rows <= FM_SOFTMAX_ROWS, n_cols), each row shifted by its max (fm_shift_by_max) -> the rows'
 * softmax in place; log_s[i] = log(sum_j exp(z_ij)). Each row's sum in column order, so that a row's
 * bits depend neither on the rows beside it nor on the clone. */
static inline void FM_FN(fm_softmax_shifted)(ptrdiff_t n_rows, ptrdiff_t n_cols, FM_T *Z, FM_T *log_s)
{
    for (ptrdiff_t e = 0; e < n_rows * n_cols; e++) Z[e] = FM_FN(fm_exp)(Z[e]);
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        FM_T *z = Z + i * n_cols;
        FM_T s = 0;
        for (ptrdiff_t j = 0; j < n_cols; j++) s += z[j];
        FM_T inv = (FM_T)1 / s;
        for (ptrdiff_t j = 0; j < n_cols; j++) z[j] *= inv;
        log_s[i] = FM_LOG_FN(s);
    }
}

/*
 * fm_output_forward: Z += bias, then Z = g(Z) in place.
 *   act     FM_IDENTITY, FM_LOGISTIC, FM_SOFTMAX or FM_EXP
 *   n_rows  rows (samples)
 *   n_cols  outputs
 *   bias    (n_cols,) read
 *   Z       (n_rows, n_cols) read and written: pre-activation in, output out
 */
FM_HOT void FM_FN(fm_output_forward)(int act, ptrdiff_t n_rows, ptrdiff_t n_cols,
                              const FM_T *bias, FM_T *Z)
{
    if (act == FM_SOFTMAX) {
        FM_T log_s[FM_SOFTMAX_ROWS];
        for (ptrdiff_t i0 = 0; i0 < n_rows; i0 += FM_SOFTMAX_ROWS) {
            ptrdiff_t rows = n_rows - i0 < FM_SOFTMAX_ROWS ? n_rows - i0 : FM_SOFTMAX_ROWS;
            for (ptrdiff_t i = i0; i < i0 + rows; i++) {
                FM_FN(fm_bias_add)(n_cols, bias, Z + i * n_cols);
                FM_FN(fm_shift_by_max)(n_cols, Z + i * n_cols);
            }
            FM_FN(fm_softmax_shifted)(rows, n_cols, Z + i0 * n_cols, log_s);
        }
        return;
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        FM_T *z = Z + i * n_cols;
        FM_FN(fm_bias_add)(n_cols, bias, z);
        if (act == FM_LOGISTIC) {
            for (ptrdiff_t j = 0; j < n_cols; j++) z[j] = FM_FN(fm_sigmoid)(z[j]);
        } else if (act == FM_EXP) {
            for (ptrdiff_t j = 0; j < n_cols; j++) z[j] = FM_FN(fm_exp)(z[j]);
        }
    }
}

/*
 * fm_output_delta: forward of the output layer, its loss and delta_out.
 *   loss      loss code (FM_SQUARED_ERROR, ...); it fixes the output activation
 *   n_rows    rows (samples)
 *   n_cols    outputs
 *   scale     multiplies dloss/dZ: 1/n for a mean over n rows
 *   param     the loss parameter c: huber's delta, quantile's q; unused by the others (a double:
 *             quantile's 1 - q is taken before the rounding to FM_T, which near q = 1 would lose it)
 *   bias      (n_cols,) read
 *   Y         (n_rows, n_cols) read: targets
 *   sw        (n_rows,) read: sample weights multiplying each row's loss and
 *             delta, or NULL for weight 1
 *   Z         (n_rows, n_cols) read and written: pre-activation in, P out
 *   delta     (n_rows, n_cols) written: w scale dloss/dZ (the table above)
 *   loss_sum  read and written: the sum over rows of (weight times) each row's
 *             loss is added
 */
FM_HOT void FM_FN(fm_output_delta)(int loss, ptrdiff_t n_rows, ptrdiff_t n_cols,
                            FM_T scale, double param, const FM_T *bias, const FM_T *Y, const FM_T *sw,
                            FM_T *Z, FM_T *delta, double *loss_sum)
{
    const FM_T c = (FM_T)param, c1 = (FM_T)(1.0 - param);  /* (huber's delta; quantile's q and 1 - q) */
    double total = 0;
    if (loss == FM_SQUARED_ERROR && n_cols == 1) {
        /* one output (a regression's usual case): the default case below, row by row without its
         * per-row dispatch, the same operations in the same order */
        for (ptrdiff_t i = 0; i < n_rows; i++) {
            FM_T w = sw ? sw[i] : (FM_T)1;
            FM_T r;
            Z[i] += bias[0];
            r = Z[i] - Y[i];
            delta[i] = (w * scale) * r;
            total += (double)w * (double)((FM_T)0.5 * (r * r));
        }
        *loss_sum += total;
        return;
    }
    if (loss == FM_SOFTMAX_LOG_LOSS) {
        /* -sum_k y_k log p_k = sum_k y_k (log s - (z_k - max)), s = sum exp(z - max); delta m p - y,
         * m = sum_k y_k. The rows a block at a time (fm_softmax_shifted), each row's operations in the
         * same order as one at a time. */
        FM_T log_s[FM_SOFTMAX_ROWS], yzm[FM_SOFTMAX_ROWS], ysum[FM_SOFTMAX_ROWS];
        for (ptrdiff_t i0 = 0; i0 < n_rows; i0 += FM_SOFTMAX_ROWS) {
            ptrdiff_t rows = n_rows - i0 < FM_SOFTMAX_ROWS ? n_rows - i0 : FM_SOFTMAX_ROWS;
            for (ptrdiff_t i = 0; i < rows; i++) {
                FM_T *z = Z + (i0 + i) * n_cols;
                const FM_T *y = Y + (i0 + i) * n_cols;
                FM_T a = 0, b = 0;
                FM_FN(fm_bias_add)(n_cols, bias, z);
                FM_FN(fm_shift_by_max)(n_cols, z);
                for (ptrdiff_t j = 0; j < n_cols; j++) {
                    a += y[j] * z[j];
                    b += y[j];
                }
                yzm[i] = a;
                ysum[i] = b;
            }
            FM_FN(fm_softmax_shifted)(rows, n_cols, Z + i0 * n_cols, log_s);
            for (ptrdiff_t i = 0; i < rows; i++) {
                const FM_T *z = Z + (i0 + i) * n_cols;
                const FM_T *y = Y + (i0 + i) * n_cols;
                FM_T *d = delta + (i0 + i) * n_cols;
                FM_T w = sw ? sw[i0 + i] : (FM_T)1;
                FM_T ws = w * scale, mass = ysum[i];
                for (ptrdiff_t j = 0; j < n_cols; j++) d[j] = ws * (mass * z[j] - y[j]);
                total += (double)w * (double)(mass * log_s[i] - yzm[i]);
            }
        }
        *loss_sum += total;
        return;
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        FM_T *z = Z + i * n_cols;
        const FM_T *y = Y + i * n_cols;
        FM_T *d = delta + i * n_cols;
        FM_T row = 0;
        FM_T w = sw ? sw[i] : (FM_T)1;
        FM_T ws = w * scale;
        FM_FN(fm_bias_add)(n_cols, bias, z);
        switch (loss) {
        case FM_LOGISTIC_LOG_LOSS:
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                row += FM_FN(fm_softplus)(z[j]) - y[j] * z[j];
                z[j] = FM_FN(fm_sigmoid)(z[j]);
                d[j] = ws * (z[j] - y[j]);
            }
            break;
        case FM_POISSON:
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                FM_T ylogy = y[j] > 0 ? y[j] * FM_LOG_FN(y[j]) : (FM_T)0;
                FM_T p = FM_FN(fm_exp)(z[j]);
                row += p - y[j] * z[j] + ylogy - y[j];
                z[j] = p;
                d[j] = ws * (p - y[j]);
            }
            break;
        case FM_GAMMA:
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                FM_T log_y = FM_LOG_FN(y[j]);
                FM_T y_over_p = FM_FN(fm_exp)(log_y - z[j]); /* y exp(-z) */
                row += z[j] - log_y + y_over_p - (FM_T)1;
                z[j] = FM_FN(fm_exp)(z[j]);
                d[j] = ws * ((FM_T)1 - y_over_p);
            }
            break;
        case FM_ABSOLUTE_ERROR:
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                FM_T r = z[j] - y[j];
                row += r > 0 ? r : -r;
                d[j] = r > 0 ? ws : (r < 0 ? -ws : (FM_T)0);
            }
            break;
        case FM_HUBER:
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                FM_T r = z[j] - y[j], ar = r > 0 ? r : -r;
                row += ar <= c ? (FM_T)0.5 * r * r : c * (ar - (FM_T)0.5 * c);
                d[j] = ws * (r > c ? c : (r < -c ? -c : r));
            }
            break;
        case FM_QUANTILE:
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                FM_T r = z[j] - y[j];
                row += r < 0 ? -c * r : c1 * r;
                d[j] = r < 0 ? -c * ws : (r > 0 ? c1 * ws : (FM_T)0);
            }
            break;
        default: /* FM_SQUARED_ERROR */
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                FM_T r = z[j] - y[j];
                row += r * r;
                d[j] = ws * r;
            }
            row *= (FM_T)0.5;
        }
        total += (double)w * (double)row;
    }
    *loss_sum += total;
}
