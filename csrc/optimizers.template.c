/*
 * Optimizer updates over the flat parameter buffer (all layers at once).
 *
 * Both follow scikit-learn's _stochastic_optimizers.py exactly, so that the
 * estimators reproduce its training:
 *   sgd:  v = momentum v - lr g;  p += momentum v - lr g (nesterov) or p += v
 *   adam: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *         p -= step_size m / (sqrt(v) + eps),
 *         step_size = lr sqrt(1 - b2^t) / (1 - b1^t) computed by the caller.
 */
#ifndef FM_T
#error "optimizers.template.c is included by optimizers.c only"
#endif

/*
 * fm_sgd_update
 *   n              number of parameters
 *   learning_rate  step size
 *   momentum       in [0, 1]; 0 gives the plain step p -= lr g
 *   nesterov       nonzero for Nesterov's momentum
 *   l2             the L2 term's factor alpha/n: the step takes g = grad + l2 params
 *                  (params before the step; what BLAS's axpy of them into grad
 *                  gave, without writing grad); 0 gives g = grad (adding
 *                  0 params changes at most the sign of a zero gradient; the
 *                  step never runs on infinite params: their loss is not finite)
 *   grad           (n,) read
 *   velocity       (n,) read and written
 *   params         (n,) read and written
 *   grad_sumsq     read and written: sum_i g_i^2 is added (the gradient
 *                  norm, in the same pass), or NULL; summed in double
 */
FM_HOT void FM_FN(fm_sgd_update)(ptrdiff_t n, FM_T learning_rate, FM_T momentum, int nesterov, FM_T l2,
                          const FM_T *grad, FM_T *velocity, FM_T *params, double *grad_sumsq)
{
    /* the squares are summed in double (a float32 gradient's cannot overflow it), in the
     * same pass as the update; "omp simd" lets the compiler vectorize that sum */
    double sumsq = 0;
    if (momentum == 0) {
        /* the plain step; velocity stays zero and is not touched */
#pragma omp simd reduction(+ : sumsq)
        for (ptrdiff_t i = 0; i < n; i++) {
            FM_T g = grad[i] + l2 * params[i];
            sumsq += (double)g * g;
            params[i] -= learning_rate * g;
        }
    } else if (nesterov) {
#pragma omp simd reduction(+ : sumsq)
        for (ptrdiff_t i = 0; i < n; i++) {
            FM_T g = grad[i] + l2 * params[i];
            FM_T v = momentum * velocity[i] - learning_rate * g;
            sumsq += (double)g * g;
            velocity[i] = v;
            params[i] += momentum * v - learning_rate * g;
        }
    } else {
#pragma omp simd reduction(+ : sumsq)
        for (ptrdiff_t i = 0; i < n; i++) {
            FM_T g = grad[i] + l2 * params[i];
            FM_T v = momentum * velocity[i] - learning_rate * g;
            sumsq += (double)g * g;
            velocity[i] = v;
            params[i] += v;
        }
    }
    if (grad_sumsq) *grad_sumsq += sumsq;
}

/*
 * fm_adam_update
 *   n          number of parameters
 *   step_size  lr sqrt(1 - beta_2^t) / (1 - beta_1^t), bias correction folded in
 *   beta_1     decay of the first moment (double: 1 - beta_1 is formed before rounding)
 *   beta_2     decay of the second moment (the same)
 *   epsilon    added to sqrt(v)
 *   l2         as fm_sgd_update's: the step takes grad + l2 params
 *   grad       (n,) read
 *   m, v       (n,) read and written: first and second moments
 *   params     (n,) read and written
 *   grad_sumsq read and written: sum_i g_i^2 is added, or NULL
 */
FM_HOT void FM_FN(fm_adam_update)(ptrdiff_t n, FM_T step_size, double beta_1, double beta_2,
                           FM_T epsilon, FM_T l2, const FM_T *grad, FM_T *m, FM_T *v,
                           FM_T *params, double *grad_sumsq)
{
    /* 1 - beta in double, then rounded: in float32, 1 - (float)0.999 is 0.0009999871, and v came out
     * 1.3e-5 smaller than the reference's (and PyTorch's, scikit-learn's): float32(1 - beta) */
    FM_T b1 = (FM_T)beta_1, b2 = (FM_T)beta_2, c1 = (FM_T)(1.0 - beta_1), c2 = (FM_T)(1.0 - beta_2);
    double sumsq = 0; /* in double: a float32 gradient's squares cannot overflow it */
#pragma omp simd reduction(+ : sumsq)
    for (ptrdiff_t i = 0; i < n; i++) {
        FM_T g = grad[i] + l2 * params[i];
        sumsq += (double)g * g;
        FM_T mi = b1 * m[i] + c1 * g;
        FM_T vi = b2 * v[i] + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= step_size * mi / (FM_SQRT_FN(vi) + epsilon);
    }
    if (grad_sumsq) *grad_sumsq += sumsq;
}

/*
 * fm_block_sumsq: the squares of each of n_blocks blocks of columns, summed in double
 *   n_rows      rows of M
 *   n_blocks    blocks side by side in each row
 *   block_cols  columns of a block (block j: columns j block_cols ..)
 *   ld          row stride of M
 *   M           (n_rows, ld) read
 *   out         read and written: out[j out_stride] += sum over rows and block j's columns of M^2
 * (an ensemble's per-member ||dW_l||^2: the members' columns of a wide W_1, one
 * row of member-major blocks for the other layers)
 */
/* acc[l] += x[c + l]^2 over c in steps of 8, tail += the rest's squares (one row of a block) */
static inline __attribute__((always_inline)) void FM_FN(fm_sumsq_into)(ptrdiff_t n, const FM_T *x, double *acc,
                                                                       double *tail)
{
    ptrdiff_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += (double)x[c + l] * x[c + l];
    for (; c < n; c++)
        *tail += (double)x[c] * x[c];
}

FM_HOT void FM_FN(fm_block_sumsq)(ptrdiff_t n_rows, ptrdiff_t n_blocks, ptrdiff_t block_cols, ptrdiff_t ld,
                           const FM_T *M, double *out, ptrdiff_t out_stride)
{
    /* eight running sums per block over all its rows (one or two vectors), added as a tree at the end:
     * an "omp simd" reduction per row spilled its lanes and added them one after another, which at an
     * ensemble's blocks of 16 columns cost most of this kernel's time. Four blocks at a time, row by row,
     * so that each block's additions wait on its own last ones less (a block of 8 x 16 alone is a chain of
     * 16 additions, four cycles each); each block's additions are the same, in the same order. */
    ptrdiff_t j = 0;
    for (; j + 4 <= n_blocks; j += 4) {
        double acc[4][8] = {{0}}, tail[4] = {0};
        for (ptrdiff_t r = 0; r < n_rows; r++)
            for (int q = 0; q < 4; q++)
                FM_FN(fm_sumsq_into)(block_cols, M + r * ld + (j + q) * block_cols, acc[q], &tail[q]);
        for (int q = 0; q < 4; q++)
            out[(j + q) * out_stride] += ((acc[q][0] + acc[q][4]) + (acc[q][2] + acc[q][6]))
                                         + ((acc[q][1] + acc[q][5]) + (acc[q][3] + acc[q][7])) + tail[q];
    }
    for (; j < n_blocks; j++) {
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tail = 0;
        for (ptrdiff_t r = 0; r < n_rows; r++)
            FM_FN(fm_sumsq_into)(block_cols, M + r * ld + j * block_cols, acc, &tail);
        out[j * out_stride] += ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + tail;
    }
}

/*
 * fm_largest_row_sumsq: the largest sum of squares of a row of M (n_rows, n_cols, C order), summed in double
 * (0 for no rows): the input's part of a bound on a network's outputs. Thirty-two running sums per row, so
 * that the additions do not wait on each other (with fm_block_sumsq's eight, one row a block, the pass
 * over W1's X ran at 9 GB/s, where reading it runs at 24).
 */
FM_HOT double FM_FN(fm_largest_row_sumsq)(ptrdiff_t n_rows, ptrdiff_t n_cols, const FM_T *M)
{
    double largest = 0;
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const FM_T *x = M + r * n_cols;
        double acc[32] = {0}, sum = 0;
        ptrdiff_t c = 0;
        for (; c + 32 <= n_cols; c += 32)
            for (int l = 0; l < 32; l++)
                acc[l] += (double)x[c + l] * x[c + l];
        for (; c + 8 <= n_cols; c += 8)  /* (W1's 784 = 24 x 32 + 2 x 8) */
            for (int l = 0; l < 8; l++)
                acc[l] += (double)x[c + l] * x[c + l];
        for (; c < n_cols; c++)
            sum += (double)x[c] * x[c];
        for (int l = 0; l < 32; l++)
            sum += acc[l];
        if (sum > largest)
            largest = sum;
    }
    return largest;
}
