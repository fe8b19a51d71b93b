/*
 * The first layer's products when X is a CSR matrix: memory O(nnz), no dense
 * copy of X. A batch is rows[0..n_rows) of X, or rows row0..row0+n_rows when
 * rows is NULL; each row's nonzeros are indices[indptr[i]..indptr[i+1]) with
 * values data[...].
 */
#ifndef FM_T
#error "sparse.template.c is included by sparse.c only"
#endif

/*
 * fm_csr_matmul: Z = X[batch] @ W
 *   n_rows   batch rows
 *   n_cols   fan_out (columns of W and Z)
 *   rows     (n_rows,) read: row numbers into X, or NULL
 *   row0     first row when rows is NULL
 *   indptr, indices, data   read: X in CSR form
 *   W        (n_in, n_cols) read
 *   Z        (n_rows, n_cols) written
 */
FM_HOT void FM_FN(fm_csr_matmul)(ptrdiff_t n_rows, ptrdiff_t n_cols, const ptrdiff_t *rows, ptrdiff_t row0,
                          const ptrdiff_t *indptr, const ptrdiff_t *indices, const FM_T *data,
                          const FM_T *W, FM_T *Z)
{
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        ptrdiff_t i = rows ? rows[r] : row0 + r;
        FM_T *z = Z + r * n_cols;
        for (ptrdiff_t j = 0; j < n_cols; j++) z[j] = 0;
        for (ptrdiff_t p = indptr[i]; p < indptr[i + 1]; p++) {
            const FM_T *w = W + indices[p] * n_cols;
            FM_T v = data[p];
            for (ptrdiff_t j = 0; j < n_cols; j++) z[j] += v * w[j];
        }
    }
}

/*
 * fm_csr_tmatmul: dW (+)= X[batch]^T @ delta
 *   n_rows      batch rows
 *   n_in        rows of dW (features of X)
 *   n_cols      fan_out (columns of delta and dW)
 *   accumulate  nonzero: add to dW; zero: overwrite it
 *   rows, row0, indptr, indices, data   as fm_csr_matmul
 *   delta       (n_rows, n_cols) read
 *   dW          (n_in, n_cols) written
 */
FM_HOT void FM_FN(fm_csr_tmatmul)(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, int accumulate,
                           const ptrdiff_t *rows, ptrdiff_t row0, const ptrdiff_t *indptr,
                           const ptrdiff_t *indices, const FM_T *data, const FM_T *delta, FM_T *dW)
{
    if (!accumulate) {
        for (ptrdiff_t k = 0; k < n_in * n_cols; k++) dW[k] = 0;
    }
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        ptrdiff_t i = rows ? rows[r] : row0 + r;
        const FM_T *d = delta + r * n_cols;
        for (ptrdiff_t p = indptr[i]; p < indptr[i + 1]; p++) {
            FM_T *g = dW + indices[p] * n_cols;
            FM_T v = data[p];
            for (ptrdiff_t j = 0; j < n_cols; j++) g[j] += v * d[j];
        }
    }
}
