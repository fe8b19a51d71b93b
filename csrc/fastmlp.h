/*
 * fastmlp C kernels: element-wise math on raw, C-contiguous, row-major buffers.
 *
 * Every kernel exists twice, for float (_f32) and double (_f64), generated from
 * one <topic>.template.c included twice by the thin <topic>.c (see fm_template.h).
 * Kernels never allocate, print or check their arguments: the Python boundary
 * has already checked shapes, dtypes and finiteness. Argument order is sizes,
 * then inputs (const), then outputs.
 */
#ifndef FASTMLP_H
#define FASTMLP_H

#include <stddef.h>
#include <stdint.h>

/* Activation codes (hidden and output layers). Mirrored by _registry.py and
 * checked against it by tests/test_kernels.py. */
enum {
    FM_IDENTITY = 0,
    FM_LOGISTIC = 1,
    FM_TANH = 2,
    FM_RELU = 3,
    FM_LEAKY_RELU = 4,
    FM_SWISH = 5,
    FM_SOFTMAX = 6,
    FM_EXP = 7,
    FM_PRELU = 8 /* learnable slope per unit: its own kernels, fm_prelu_* */
};

/* Loss codes, each fused with the output activation it fixes (losses.template.c):
 * identity + squared_error, logistic + log_loss, softmax + log_loss, exp + poisson,
 * identity + absolute_error, identity + huber, identity + quantile, exp + gamma.
 * Mirrored by _registry.OUTPUTS and checked against it by tests/test_kernels.py. */
enum {
    FM_SQUARED_ERROR = 0,
    FM_LOGISTIC_LOG_LOSS = 1,
    FM_SOFTMAX_LOG_LOSS = 2,
    FM_POISSON = 3,
    FM_ABSOLUTE_ERROR = 4,
    FM_HUBER = 5,
    FM_QUANTILE = 6,
    FM_GAMMA = 7
};

/* Optimizer codes. */
enum { FM_SGD = 0, FM_ADAM = 1 };

/* FM_HOT marks a kernel definition: on x86-64 glibc Linux (GCC, Clang) it is
 * compiled twice, for the baseline x86-64 (SSE2) and for x86-64-v3 (AVX2, FMA),
 * and the loader picks the clone the CPU runs (a glibc ifunc, resolved once). The
 * extension is built without -march flags so that one wheel runs everywhere;
 * this gives the element-wise loops the 256-bit vectors they would get from
 * -march=native where the CPU has them (Adam's update: 1.8x faster on AVX2).
 * Define FM_NO_CLONES to build the baseline version only. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute) && !defined(FM_NO_CLONES)
#if __has_attribute(target_clones)
#define FM_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
#endif
#ifndef FM_HOT
#define FM_HOT
#endif

/* Slope of leaky_relu for z < 0. */
#define FM_LEAKY_SLOPE 0.01

/* xoshiro256** state: the PRNG behind dropout masks. */
typedef struct { uint64_t s[4]; } fm_rng;

void fm_rng_seed(fm_rng *rng, uint64_t seed);
uint64_t fm_rng_next(fm_rng *rng);

#define FM_DECLARE_KERNELS(T, SUF)                                               \
    void fm_bias_act_forward_##SUF(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, \
                                   const T *bias, T *Z, T *A);                  \
    void fm_act_backward_##SUF(int act, ptrdiff_t n, const T *Z, const T *A,    \
                               T *delta);                                       \
    void fm_prelu_forward_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,             \
                                const T *bias, const T *slopes, T *Z, T *A);    \
    void fm_prelu_backward_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,            \
                                 int accumulate, const T *Z, const T *slopes,   \
                                 T *delta, T *slope_grad);                      \
    void fm_col_max_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols, const T *M,       \
                          T *colmax);                                           \
    void fm_col_sum_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols, int accumulate,   \
                          const T *M, T *out);                                  \
    void fm_gather_rows_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,               \
                              const ptrdiff_t *idx, const T *X, T *out);        \
    void fm_output_forward_##SUF(int act, ptrdiff_t n_rows, ptrdiff_t n_cols,   \
                                 const T *bias, T *Z);                          \
    void fm_output_delta_##SUF(int loss, ptrdiff_t n_rows,                      \
                               ptrdiff_t n_cols, T scale, T param,              \
                               const T *bias,                                   \
                               const T *Y, const T *sw, T *Z, T *delta,         \
                               double *loss_sum);                               \
    void fm_sgd_update_##SUF(ptrdiff_t n, T learning_rate, T momentum,          \
                             int nesterov, const T *grad, T *velocity,          \
                             T *params, double *grad_sumsq);                    \
    void fm_adam_update_##SUF(ptrdiff_t n, T step_size, T beta_1, T beta_2,     \
                              T epsilon, const T *grad, T *m, T *v, T *params,  \
                              double *grad_sumsq);                              \
    void fm_dropout_##SUF(ptrdiff_t n, T keep, fm_rng *rng, const T *A, T *M,   \
                          T *D);                                                \
    void fm_mul_##SUF(ptrdiff_t n, const T *M, T *X);                           \
    void fm_all_finite_##SUF(ptrdiff_t n, const T *x, int *finite);             \
    void fm_csr_matmul_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,                \
                             const ptrdiff_t *rows, ptrdiff_t row0,             \
                             const ptrdiff_t *indptr, const ptrdiff_t *indices, \
                             const T *data, const T *W, T *Z);                  \
    void fm_csr_tmatmul_##SUF(ptrdiff_t n_rows, ptrdiff_t n_in,                 \
                              ptrdiff_t n_cols, int accumulate,                 \
                              const ptrdiff_t *rows, ptrdiff_t row0,            \
                              const ptrdiff_t *indptr,                          \
                              const ptrdiff_t *indices, const T *data,          \
                              const T *delta, T *dW);

FM_DECLARE_KERNELS(float, f32)
FM_DECLARE_KERNELS(double, f64)

#endif
