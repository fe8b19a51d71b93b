# Declarations of the C kernels (csrc/fastmlp.h) and their fused-type shims:
# the one place, with _blas.pxd, where `floating` picks the _f32 or _f64 symbol.
from cython cimport floating
from libc.stdint cimport uint64_t
from libc.stddef cimport ptrdiff_t

cdef extern from "fastmlp.h" nogil:
    enum:
        FM_IDENTITY
        FM_LOGISTIC
        FM_TANH
        FM_RELU
        FM_LEAKY_RELU
        FM_SWISH
        FM_SOFTMAX
        FM_EXP
        FM_PRELU
        FM_SGD
        FM_ADAM
        FM_SQUARED_ERROR
        FM_LOGISTIC_LOG_LOSS
        FM_SOFTMAX_LOG_LOSS
        FM_POISSON
        FM_ABSOLUTE_ERROR
        FM_HUBER
        FM_QUANTILE
        FM_GAMMA

    ctypedef struct fm_rng:
        uint64_t s[4]

    void fm_rng_seed(fm_rng *rng, uint64_t seed)
    uint64_t fm_rng_next(fm_rng *rng)

    void fm_bias_act_forward_f32(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const float *bias,
                                float *Z, float *A, float *colmax)
    void fm_bias_act_forward_f64(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const double *bias,
                                double *Z, double *A, double *colmax)
    void fm_act_backward_f32(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const float *Z,
                             const float *A, float *delta)
    void fm_act_backward_f64(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const double *Z,
                             const double *A, double *delta)
    void fm_prelu_forward_f32(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const float *bias,
                              const float *slopes, float *Z, float *A, float *colmax)
    void fm_prelu_forward_f64(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const double *bias,
                              const double *slopes, double *Z, double *A, double *colmax)
    void fm_prelu_backward_f32(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, int accumulate, const float *Z,
                               const float *slopes, float *delta, float *slope_grad)
    void fm_prelu_backward_f64(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, int accumulate, const double *Z,
                               const double *slopes, double *delta, double *slope_grad)
    void fm_col_max_f32(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const float *M, float *colmax)
    void fm_col_max_f64(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, const double *M, double *colmax)
    void fm_col_sum_f32(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, int accumulate, const float *M,
                        float *out)
    void fm_col_sum_f64(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld, int accumulate, const double *M,
                        double *out)
    void fm_block_sumsq_f32(ptrdiff_t n_rows, ptrdiff_t n_blocks, ptrdiff_t block_cols, ptrdiff_t ld, const float *M,
                            double *out, ptrdiff_t out_stride)
    void fm_block_sumsq_f64(ptrdiff_t n_rows, ptrdiff_t n_blocks, ptrdiff_t block_cols, ptrdiff_t ld, const double *M,
                            double *out, ptrdiff_t out_stride)
    double fm_largest_row_sumsq_f32(ptrdiff_t n_rows, ptrdiff_t n_cols, const float *M)
    double fm_largest_row_sumsq_f64(ptrdiff_t n_rows, ptrdiff_t n_cols, const double *M)
    void fm_members_forward_f32(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in, ptrdiff_t fan_out,
                               const float *A, ptrdiff_t lda, const float *W, float *Z, ptrdiff_t ld_member)
    void fm_members_weight_grad_f32(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in, ptrdiff_t fan_out,
                                   const float *A, ptrdiff_t lda, const float *D, ptrdiff_t ld_member, float *dW)
    void fm_members_backprop_f32(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in, ptrdiff_t fan_out,
                                const float *D, ptrdiff_t ld_member, const float *W, float *P, ptrdiff_t lda)
    void fm_members_forward_f64(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in, ptrdiff_t fan_out,
                               const double *A, ptrdiff_t lda, const double *W, double *Z, ptrdiff_t ld_member)
    void fm_members_weight_grad_f64(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in, ptrdiff_t fan_out,
                                   const double *A, ptrdiff_t lda, const double *D, ptrdiff_t ld_member, double *dW)
    void fm_members_backprop_f64(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in, ptrdiff_t fan_out,
                                const double *D, ptrdiff_t ld_member, const double *W, double *P, ptrdiff_t lda)
    void fm_narrow_matmul_f32(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, const float *A, ptrdiff_t lda,
                              const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc)
    void fm_narrow_matmul_f64(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, const double *A, ptrdiff_t lda,
                              const double *B, ptrdiff_t ldb, double *C, ptrdiff_t ldc)
    void fm_narrow_tmatmul_f32(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, const float *A, ptrdiff_t lda,
                               const float *D, ptrdiff_t ldd, float *G, ptrdiff_t ldg)
    void fm_narrow_tmatmul_f64(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, const double *A, ptrdiff_t lda,
                               const double *D, ptrdiff_t ldd, double *G, ptrdiff_t ldg)
    void fm_gather_rows_f32(ptrdiff_t n_rows, ptrdiff_t n_cols, const Py_ssize_t *idx, const float *X, float *out)
    void fm_gather_rows_f64(ptrdiff_t n_rows, ptrdiff_t n_cols, const Py_ssize_t *idx, const double *X, double *out)
    void fm_output_forward_f32(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, const float *bias, float *Z)
    void fm_output_forward_f64(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, const double *bias, double *Z)
    void fm_output_delta_f32(int loss, ptrdiff_t n_rows, ptrdiff_t n_cols, float scale, double param,
                             const float *bias, const float *Y, const float *sw, float *Z, float *delta,
                             double *loss_sum)
    void fm_output_delta_f64(int loss, ptrdiff_t n_rows, ptrdiff_t n_cols, double scale, double param,
                             const double *bias, const double *Y, const double *sw, double *Z, double *delta,
                             double *loss_sum)
    void fm_sgd_update_f32(ptrdiff_t n, float learning_rate, float momentum, int nesterov, float l2,
                           const float *grad, float *velocity, float *params, double *grad_sumsq)
    void fm_sgd_update_f64(ptrdiff_t n, double learning_rate, double momentum, int nesterov, double l2,
                           const double *grad, double *velocity, double *params, double *grad_sumsq)
    void fm_adam_update_f32(ptrdiff_t n, float step_size, double beta_1, double beta_2, float epsilon, float l2,
                            const float *grad, float *m, float *v, float *params, double *grad_sumsq)
    void fm_adam_update_f64(ptrdiff_t n, double step_size, double beta_1, double beta_2, double epsilon, double l2,
                            const double *grad, double *m, double *v, double *params, double *grad_sumsq)
    void fm_dropout_f32(ptrdiff_t n, float keep, fm_rng *rng, const float *A, float *M, float *D)
    void fm_dropout_f64(ptrdiff_t n, double keep, fm_rng *rng, const double *A, double *M, double *D)
    void fm_mul_f32(ptrdiff_t n, const float *M, float *X)
    void fm_mul_f64(ptrdiff_t n, const double *M, double *X)
    void fm_all_finite_f32(ptrdiff_t n, const float *x, int *finite)
    void fm_all_finite_f64(ptrdiff_t n, const double *x, int *finite)
    void fm_csr_matmul_f32(ptrdiff_t n_rows, ptrdiff_t n_cols, const Py_ssize_t *rows, ptrdiff_t row0,
                           const Py_ssize_t *indptr, const Py_ssize_t *indices, const float *data,
                           const float *W, float *Z)
    void fm_csr_matmul_f64(ptrdiff_t n_rows, ptrdiff_t n_cols, const Py_ssize_t *rows, ptrdiff_t row0,
                           const Py_ssize_t *indptr, const Py_ssize_t *indices, const double *data,
                           const double *W, double *Z)
    void fm_csr_tmatmul_f32(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, int accumulate,
                            const Py_ssize_t *rows, ptrdiff_t row0, const Py_ssize_t *indptr,
                            const Py_ssize_t *indices, const float *data, const float *delta, float *dW)
    void fm_csr_tmatmul_f64(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, int accumulate,
                            const Py_ssize_t *rows, ptrdiff_t row0, const Py_ssize_t *indptr,
                            const Py_ssize_t *indices, const double *data, const double *delta, double *dW)


cdef inline void _bias_act_forward(int act, Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t ld,
                                   const floating *bias, floating *Z, floating *A, floating *colmax) noexcept nogil:
    if floating is float:
        fm_bias_act_forward_f32(act, n_rows, n_cols, ld, bias, Z, A, colmax)
    else:
        fm_bias_act_forward_f64(act, n_rows, n_cols, ld, bias, Z, A, colmax)


cdef inline void _act_backward(int act, Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t ld, const floating *Z,
                               const floating *A, floating *delta) noexcept nogil:
    if floating is float:
        fm_act_backward_f32(act, n_rows, n_cols, ld, Z, A, delta)
    else:
        fm_act_backward_f64(act, n_rows, n_cols, ld, Z, A, delta)


cdef inline void _prelu_forward(Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t ld, const floating *bias,
                                const floating *slopes, floating *Z, floating *A, floating *colmax) noexcept nogil:
    if floating is float:
        fm_prelu_forward_f32(n_rows, n_cols, ld, bias, slopes, Z, A, colmax)
    else:
        fm_prelu_forward_f64(n_rows, n_cols, ld, bias, slopes, Z, A, colmax)


cdef inline void _prelu_backward(Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t ld, bint accumulate,
                                 const floating *Z, const floating *slopes, floating *delta,
                                 floating *slope_grad) noexcept nogil:
    if floating is float:
        fm_prelu_backward_f32(n_rows, n_cols, ld, accumulate, Z, slopes, delta, slope_grad)
    else:
        fm_prelu_backward_f64(n_rows, n_cols, ld, accumulate, Z, slopes, delta, slope_grad)


cdef inline void _col_max(Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t ld, const floating *M,
                          floating *colmax) noexcept nogil:
    if floating is float:
        fm_col_max_f32(n_rows, n_cols, ld, M, colmax)
    else:
        fm_col_max_f64(n_rows, n_cols, ld, M, colmax)


cdef inline void _col_sum(Py_ssize_t n_rows, Py_ssize_t n_cols, bint accumulate, const floating *M,
                          floating *out, Py_ssize_t ld=-1) noexcept nogil:
    """out (+)= the sums of M's columns (rows ld apart; -1: n_cols), in double, rounded once."""
    if ld < 0:
        ld = n_cols
    if floating is float:
        fm_col_sum_f32(n_rows, n_cols, ld, accumulate, M, out)
    else:
        fm_col_sum_f64(n_rows, n_cols, ld, accumulate, M, out)


cdef inline void _block_sumsq(Py_ssize_t n_rows, Py_ssize_t n_blocks, Py_ssize_t block_cols, Py_ssize_t ld,
                              const floating *M, double *out, Py_ssize_t out_stride) noexcept nogil:
    if floating is float:
        fm_block_sumsq_f32(n_rows, n_blocks, block_cols, ld, M, out, out_stride)
    else:
        fm_block_sumsq_f64(n_rows, n_blocks, block_cols, ld, M, out, out_stride)


cdef inline double _largest_row_sumsq(Py_ssize_t n_rows, Py_ssize_t n_cols, const floating *M) noexcept nogil:
    if floating is float:
        return fm_largest_row_sumsq_f32(n_rows, n_cols, M)
    else:
        return fm_largest_row_sumsq_f64(n_rows, n_cols, M)


cdef inline void _members_forward(Py_ssize_t n_members, Py_ssize_t n_rows, Py_ssize_t fan_in, Py_ssize_t fan_out,
                                  const floating *A, Py_ssize_t lda, const floating *W, floating *Z,
                                  Py_ssize_t ld_member) noexcept nogil:
    if floating is float:
        fm_members_forward_f32(n_members, n_rows, fan_in, fan_out, A, lda, W, Z, ld_member)
    else:
        fm_members_forward_f64(n_members, n_rows, fan_in, fan_out, A, lda, W, Z, ld_member)


cdef inline void _members_weight_grad(Py_ssize_t n_members, Py_ssize_t n_rows, Py_ssize_t fan_in,
                                      Py_ssize_t fan_out, const floating *A, Py_ssize_t lda, const floating *D,
                                      Py_ssize_t ld_member, floating *dW) noexcept nogil:
    if floating is float:
        fm_members_weight_grad_f32(n_members, n_rows, fan_in, fan_out, A, lda, D, ld_member, dW)
    else:
        fm_members_weight_grad_f64(n_members, n_rows, fan_in, fan_out, A, lda, D, ld_member, dW)


cdef inline void _members_backprop(Py_ssize_t n_members, Py_ssize_t n_rows, Py_ssize_t fan_in, Py_ssize_t fan_out,
                                   const floating *D, Py_ssize_t ld_member, const floating *W, floating *P,
                                   Py_ssize_t lda) noexcept nogil:
    if floating is float:
        fm_members_backprop_f32(n_members, n_rows, fan_in, fan_out, D, ld_member, W, P, lda)
    else:
        fm_members_backprop_f64(n_members, n_rows, fan_in, fan_out, D, ld_member, W, P, lda)


cdef inline void _narrow_matmul(Py_ssize_t n_rows, Py_ssize_t n_in, Py_ssize_t n_cols, const floating *A,
                                Py_ssize_t lda, const floating *B, Py_ssize_t ldb, floating *C,
                                Py_ssize_t ldc) noexcept nogil:
    if floating is float:
        fm_narrow_matmul_f32(n_rows, n_in, n_cols, A, lda, B, ldb, C, ldc)
    else:
        fm_narrow_matmul_f64(n_rows, n_in, n_cols, A, lda, B, ldb, C, ldc)


cdef inline void _narrow_tmatmul(Py_ssize_t n_rows, Py_ssize_t n_in, Py_ssize_t n_cols, const floating *A,
                                 Py_ssize_t lda, const floating *D, Py_ssize_t ldd, floating *G,
                                 Py_ssize_t ldg) noexcept nogil:
    if floating is float:
        fm_narrow_tmatmul_f32(n_rows, n_in, n_cols, A, lda, D, ldd, G, ldg)
    else:
        fm_narrow_tmatmul_f64(n_rows, n_in, n_cols, A, lda, D, ldd, G, ldg)


cdef inline void _gather_rows(Py_ssize_t n_rows, Py_ssize_t n_cols, const Py_ssize_t *idx, const floating *X,
                              floating *out) noexcept nogil:
    if floating is float:
        fm_gather_rows_f32(n_rows, n_cols, idx, X, out)
    else:
        fm_gather_rows_f64(n_rows, n_cols, idx, X, out)


cdef inline void _output_forward(int act, Py_ssize_t n_rows, Py_ssize_t n_cols, const floating *bias,
                                 floating *Z) noexcept nogil:
    if floating is float:
        fm_output_forward_f32(act, n_rows, n_cols, bias, Z)
    else:
        fm_output_forward_f64(act, n_rows, n_cols, bias, Z)


cdef inline void _output_delta(int loss, Py_ssize_t n_rows, Py_ssize_t n_cols, floating scale, double param,
                               const floating *bias, const floating *Y, const floating *sw, floating *Z,
                               floating *delta, double *loss_sum) noexcept nogil:
    if floating is float:
        fm_output_delta_f32(loss, n_rows, n_cols, scale, param, bias, Y, sw, Z, delta, loss_sum)
    else:
        fm_output_delta_f64(loss, n_rows, n_cols, scale, param, bias, Y, sw, Z, delta, loss_sum)


cdef inline void _sgd_update(Py_ssize_t n, floating learning_rate, floating momentum, bint nesterov, floating l2,
                             const floating *grad, floating *velocity, floating *params,
                             double *grad_sumsq) noexcept nogil:
    if floating is float:
        fm_sgd_update_f32(n, learning_rate, momentum, nesterov, l2, grad, velocity, params, grad_sumsq)
    else:
        fm_sgd_update_f64(n, learning_rate, momentum, nesterov, l2, grad, velocity, params, grad_sumsq)


cdef inline void _adam_update(Py_ssize_t n, floating step_size, double beta_1, double beta_2,
                              floating epsilon, floating l2, const floating *grad, floating *m, floating *v,
                              floating *params, double *grad_sumsq) noexcept nogil:
    if floating is float:
        fm_adam_update_f32(n, step_size, beta_1, beta_2, epsilon, l2, grad, m, v, params, grad_sumsq)
    else:
        fm_adam_update_f64(n, step_size, beta_1, beta_2, epsilon, l2, grad, m, v, params, grad_sumsq)


cdef inline void _dropout(Py_ssize_t n, floating keep, fm_rng *rng, const floating *A, floating *M,
                          floating *D) noexcept nogil:
    if floating is float:
        fm_dropout_f32(n, keep, rng, A, M, D)
    else:
        fm_dropout_f64(n, keep, rng, A, M, D)


cdef inline bint _all_finite(Py_ssize_t n, const floating *x) noexcept nogil:
    cdef int finite
    if floating is float:
        fm_all_finite_f32(n, x, &finite)
    else:
        fm_all_finite_f64(n, x, &finite)
    return finite


cdef inline void _mul(Py_ssize_t n, const floating *M, floating *X) noexcept nogil:
    if floating is float:
        fm_mul_f32(n, M, X)
    else:
        fm_mul_f64(n, M, X)


cdef inline void _csr_matmul(Py_ssize_t n_rows, Py_ssize_t n_cols, const Py_ssize_t *rows, Py_ssize_t row0,
                             const Py_ssize_t *indptr, const Py_ssize_t *indices, const floating *data,
                             const floating *W, floating *Z) noexcept nogil:
    if floating is float:
        fm_csr_matmul_f32(n_rows, n_cols, rows, row0, indptr, indices, data, W, Z)
    else:
        fm_csr_matmul_f64(n_rows, n_cols, rows, row0, indptr, indices, data, W, Z)


cdef inline void _csr_tmatmul(Py_ssize_t n_rows, Py_ssize_t n_in, Py_ssize_t n_cols, bint accumulate,
                              const Py_ssize_t *rows, Py_ssize_t row0, const Py_ssize_t *indptr,
                              const Py_ssize_t *indices, const floating *data, const floating *delta,
                              floating *dW) noexcept nogil:
    if floating is float:
        fm_csr_tmatmul_f32(n_rows, n_in, n_cols, accumulate, rows, row0, indptr, indices, data, delta, dW)
    else:
        fm_csr_tmatmul_f64(n_rows, n_in, n_cols, accumulate, rows, row0, indptr, indices, data, delta, dW)
