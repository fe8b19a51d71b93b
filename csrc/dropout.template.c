/*
 * Inverted dropout, the small row helpers of the batch loop, and the
 * boundary's finiteness check.
 *
 * Dropout scheme: each unit is kept with probability keep; the mask M holds
 * 1/keep for kept units and 0 for dropped ones, so D = A * M has the
 * expectation of A and nothing changes at prediction. Backward multiplies the
 * incoming sensitivity by the same M.
 */
#ifndef FM_T
#error "dropout.template.c is included by dropout.c only"
#endif

#include "mathfun.template.h"

/*
 * fm_dropout
 *   n     number of elements
 *   keep  keep probability in (0, 1]
 *   rng   read and advanced
 *   A     (n,) read: activations
 *   M     (n,) written: 1/keep or 0
 *   D     (n,) written: A * M
 */
FM_HOT void FM_FN(fm_dropout)(ptrdiff_t n, FM_T keep, fm_rng *rng, const FM_T *A, FM_T *M,
                       FM_T *D)
{
    FM_T scale = (FM_T)1 / keep;
    double threshold = (double)keep;
    for (ptrdiff_t i = 0; i < n; i++) {
        /* 53 random bits -> uniform in [0, 1) */
        double u = (double)(fm_rng_next(rng) >> 11) * 0x1.0p-53;
        FM_T mi = u < threshold ? scale : (FM_T)0;
        M[i] = mi;
        D[i] = A[i] * mi;
    }
}

/*
 * fm_mul: X *= M element-wise.
 *   n  number of elements
 *   M  (n,) read
 *   X  (n,) read and written
 */
FM_HOT void FM_FN(fm_mul)(ptrdiff_t n, const FM_T *M, FM_T *X)
{
    for (ptrdiff_t i = 0; i < n; i++) X[i] *= M[i];
}

/*
 * fm_col_sum: out[j] (+)= sum_i M[i, j]  (the bias gradient db = sum_rows delta)
 *   n_rows, n_cols  shape of M
 *   ld              elements from one row of M to the next (>= n_cols: a block
 *                   of the columns of a wider matrix)
 *   accumulate      nonzero: add to out; zero: overwrite out
 *   M               (n_rows, n_cols) read, rows ld apart
 *   out             (n_cols,) written
 * Each column is summed in double, over the rows in order, from out (or zero),
 * and rounded once: in float32 a running float sum of many rows drifted (a
 * quantile loss's bias gradient over 100,000 rows 8e-4 off, NumPy's pairwise
 * float32 sum 3e-8); in float64 the same additions as a plain loop.
 */
FM_HOT void FM_FN(fm_col_sum)(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, int accumulate,
                       const FM_T *M, FM_T *out)
{
    /* The sums of 8 columns at a time (32 where the row is wide) stay in registers over the rows: kept in
     * memory, each row waited for the last row's store (the bias gradient of one output over 16 rows took
     * 60 ns), and a block of sums on the stack loaded and stored every sum for every row (an ensemble's
     * 16 x 512 bias gradient: 0.9 us). Each column's additions are the same, in the same order. */
    ptrdiff_t j0 = 0;
    for (; j0 + 32 <= n_cols; j0 += 32) {
        double acc[32];
        for (int l = 0; l < 32; l++) acc[l] = accumulate ? (double)out[j0 + l] : 0.0;
        for (ptrdiff_t i = 0; i < n_rows; i++)
            for (int l = 0; l < 32; l++) acc[l] += (double)M[i * ld + j0 + l];
        for (int l = 0; l < 32; l++) out[j0 + l] = (FM_T)acc[l];
    }
    for (; j0 + 8 <= n_cols; j0 += 8) {
        double acc[8];
        for (int l = 0; l < 8; l++) acc[l] = accumulate ? (double)out[j0 + l] : 0.0;
        for (ptrdiff_t i = 0; i < n_rows; i++)
            for (int l = 0; l < 8; l++) acc[l] += (double)M[i * ld + j0 + l];
        for (int l = 0; l < 8; l++) out[j0 + l] = (FM_T)acc[l];
    }
    for (ptrdiff_t j = j0; j < n_cols; j++) {
        double sum = accumulate ? (double)out[j] : 0.0;
        for (ptrdiff_t i = 0; i < n_rows; i++) sum += (double)M[i * ld + j];
        out[j] = (FM_T)sum;
    }
}

/*
 * fm_col_max: colmax[j] = max(colmax[j], max_i M[i, j])  (units' largest
 * pre-activation over an epoch: the dead-unit report, for a block of the
 * units' columns: one call for all the batch's rows)
 *   n_rows, n_cols  shape of M
 *   ld              elements from one row of M to the next (>= n_cols)
 *   M               (n_rows, n_cols) read, rows ld apart
 *   colmax          (n_cols,) read and written
 */
FM_HOT void FM_FN(fm_col_max)(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const FM_T *M, FM_T *colmax)
{
    for (ptrdiff_t i = 0; i < n_rows; i++) FM_FN(fm_max_into)(n_cols, M + i * ld, colmax);
}

/*
 * fm_gather_rows: out[r] = X[idx[r]]  (a shuffled batch into its buffer)
 *   n_rows  rows to gather
 *   n_cols  columns of X and out
 *   idx     (n_rows,) read: row indices into X, each valid
 *   X       (*, n_cols) read
 *   out     (n_rows, n_cols) written
 */
FM_HOT void FM_FN(fm_gather_rows)(ptrdiff_t n_rows, ptrdiff_t n_cols, const ptrdiff_t *idx,
                           const FM_T *X, FM_T *out)
{
    /* The rows are scattered over X, where the hardware prefetcher cannot guess
     * the next one; ask for the row FM_GATHER_AHEAD places on while copying this one. */
    enum { FM_GATHER_AHEAD = 4 };
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        if (r + FM_GATHER_AHEAD < n_rows) {
            const char *next = (const char *)(X + idx[r + FM_GATHER_AHEAD] * n_cols);
            for (size_t b = 0; b < n_cols * sizeof(FM_T); b += 64) __builtin_prefetch(next + b);
        }
        const FM_T *src = X + idx[r] * n_cols;
        FM_T *dst = out + r * n_cols;
        for (ptrdiff_t j = 0; j < n_cols; j++) dst[j] = src[j];
    }
}

/*
 * fm_all_finite: *finite = 1 if no x[i] is NaN or infinite, else 0 (the Python
 * boundary's check of its inputs, in one vectorized pass without branches:
 * x - x is 0 for a finite x and NaN for an infinite one or a NaN)
 *   n       number of elements
 *   x       (n,) read
 *   finite  written
 */
FM_HOT void FM_FN(fm_all_finite)(ptrdiff_t n, const FM_T *x, int *finite)
{
    FM_T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (ptrdiff_t i = 0; i < n; i++) acc += x[i] - x[i];
    *finite = acc == 0;
}
