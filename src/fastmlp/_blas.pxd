# Row-major BLAS over scipy.linalg.cython_blas, for both dtypes: the only place,
# with _kernels.pxd, where `floating` picks the single or double routine.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv, sdot, ddot, snrm2, dnrm2, saxpy, daxpy, sscal, dscal


cdef inline void _outer_row(int n, floating a, const floating *x, floating *y) noexcept nogil:
    """y = a x + 0 (contiguous): a row of an outer product as BLAS gives it (its sums start at +0, so that
    a product of -0 is +0)."""
    cdef int j
    for j in range(n):
        y[j] = a * x[j] + 0


cdef inline void _gemm(char trans_a, char trans_b, int m, int n, int k, floating alpha,
                       const floating *A, int lda, const floating *B, int ldb, floating beta,
                       floating *C, int ldc) noexcept nogil:
    """Row-major C (m, n) = alpha op(A) op(B) + beta C, op = 'N' (as is) or 'T' (transposed).

    A row-major matrix is its transpose seen column-major, so this is the
    column-major product C^T = op(B)^T op(A)^T: BLAS gets B first, then A.
    A single row of C (one sample) is a matrix-vector product, for which
    GEMV is several times faster than GEMM.
    """
    cdef char gemv_trans
    cdef int rows_b = n if trans_b == c'N' else k  # B seen column-major: (rows_b, cols_b), leading dim ldb
    cdef int cols_b = k if trans_b == c'N' else n
    cdef int inc_a = 1 if trans_a == c'N' else lda  # the row of op(A): contiguous, or a column of A
    cdef int one = 1
    cdef int i, j
    cdef Py_ssize_t a_i, b_j
    if k == 1 and beta == 0 and alpha == 1:
        # an outer product, C = a b^T, one rounding per element (the bits of any BLAS), where BLAS's call
        # costs more than the work (a single output's delta_{L-1} = delta_L W_L^T: transposed A took
        # OpenBLAS's large path, with packing and its buffers' lock: W3's epoch 9% faster without it)
        a_i = 1 if trans_a == c'T' else lda  # the elements of op(A)'s column, of op(B)'s row
        b_j = ldb if trans_b == c'T' else 1
        for i in range(m):
            if b_j == 1:
                _outer_row(n, A[i * a_i], B, C + i * ldc)
            else:
                for j in range(n):
                    C[i * ldc + j] = A[i * a_i] * B[j * b_j] + 0
        return
    if m == 1:
        # C^T (n) = op(B)^T (n, k) @ op(A)^T (k): B^T seen column-major is B as stored
        gemv_trans = c'N' if trans_b == c'N' else c'T'
        if floating is float:
            sgemv(&gemv_trans, &rows_b, &cols_b, &alpha, <float *>B, &ldb, <float *>A, &inc_a, &beta, C, &one)
        else:
            dgemv(&gemv_trans, &rows_b, &cols_b, &alpha, <double *>B, &ldb, <double *>A, &inc_a, &beta, C, &one)
        return
    if floating is float:
        sgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <float *>B, &ldb, <float *>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <double *>B, &ldb, <double *>A, &lda, &beta, C, &ldc)


cdef inline double _dot(int n, const floating *x, const floating *y) noexcept nogil:
    """sum_i x_i y_i (contiguous)."""
    cdef int one = 1
    if floating is float:
        return sdot(&n, <float *>x, &one, <float *>y, &one)
    else:
        return ddot(&n, <double *>x, &one, <double *>y, &one)


cdef inline double _nrm2(int n, const floating *x) noexcept nogil:
    """||x||_2 (contiguous), scaled inside BLAS so that it cannot overflow where the norm itself fits."""
    cdef int one = 1
    if floating is float:
        return snrm2(&n, <float *>x, &one)
    else:
        return dnrm2(&n, <double *>x, &one)


cdef inline void _axpy(int n, floating alpha, const floating *x, floating *y) noexcept nogil:
    """y += alpha x (contiguous)."""
    cdef int one = 1
    if floating is float:
        saxpy(&n, &alpha, <float *>x, &one, y, &one)
    else:
        daxpy(&n, &alpha, <double *>x, &one, y, &one)


cdef inline void _scal(int n, floating alpha, floating *x) noexcept nogil:
    """x *= alpha (contiguous)."""
    cdef int one = 1
    if floating is float:
        sscal(&n, &alpha, x, &one)
    else:
        dscal(&n, &alpha, x, &one)
