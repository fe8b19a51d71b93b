/*
 * Small products of every member of an ensemble's group at once: the output
 * layer of a small network (fan_in x fan_out of a few dozen weights), where
 * one BLAS call per member and step costs more than the arithmetic. Member j
 * of the group (j = 0 .. n_members - 1) has
 *   A_j  (n_rows, fan_in)    at A + j fan_in, row stride lda (the group's
 *                            hidden layer, its members side by side)
 *   W_j  (fan_in, fan_out)   at W + j fan_in fan_out (member-major blocks)
 *   D_j  (n_rows, fan_out)   at D + j ld_member, rows of fan_out (member-major)
 */
#ifndef FM_T
#error "members.template.c is included by members.c only"
#endif

/* fm_members_forward: Z_j = A_j W_j (Z laid out as D) */
FM_HOT void FM_FN(fm_members_forward)(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in, ptrdiff_t fan_out,
                               const FM_T *A, ptrdiff_t lda, const FM_T *W, FM_T *Z, ptrdiff_t ld_member)
{
    if (fan_out == 1) {
        /* row by row, the members' dot products along the group's row (read once, in order); each in
         * eight running sums (one vector), added as a tree at the end: an "omp simd" reduction spilled
         * its lanes and added them one after another, most of this kernel's time at fan_in 16 */
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            const FM_T *a = A + r * lda;
            for (ptrdiff_t j = 0; j < n_members; j++, a += fan_in) {
                const FM_T *Wj = W + j * fan_in;
                FM_T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s;
                ptrdiff_t i = 0;
                for (; i + 8 <= fan_in; i += 8)
                    for (int l = 0; l < 8; l++)
                        acc[l] += a[i + l] * Wj[i + l];
                s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
                for (; i < fan_in; i++)
                    s += a[i] * Wj[i];
                Z[j * ld_member + r] = s;
            }
        }
        return;
    }
    for (ptrdiff_t j = 0; j < n_members; j++) {
        const FM_T *Wj = W + j * fan_in * fan_out;
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            const FM_T *a = A + r * lda + j * fan_in;
            FM_T *z = Z + j * ld_member + r * fan_out;
            for (ptrdiff_t o = 0; o < fan_out; o++)
                z[o] = 0;
            for (ptrdiff_t i = 0; i < fan_in; i++) {
                FM_T ai = a[i];
                const FM_T *w = Wj + i * fan_out;
                for (ptrdiff_t o = 0; o < fan_out; o++)
                    z[o] += ai * w[o];
            }
        }
    }
}

/* fm_members_weight_grad: dW_j = A_j^T D_j (dW laid out as W) */
FM_HOT void FM_FN(fm_members_weight_grad)(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in,
                                   ptrdiff_t fan_out, const FM_T *A, ptrdiff_t lda, const FM_T *D,
                                   ptrdiff_t ld_member, FM_T *dW)
{
    for (ptrdiff_t j = 0; j < n_members; j++) {
        FM_T *g = dW + j * fan_in * fan_out;
        ptrdiff_t i0 = 0;
        if (fan_out == 1) {
            /* sixteen of g's sums at a time, held in registers over the rows (summed in g, each row's
             * store waited for the last: half of this kernel's time) */
            for (; i0 + 16 <= fan_in; i0 += 16) {
                FM_T acc[16] = {0};
                for (ptrdiff_t r = 0; r < n_rows; r++) {
                    const FM_T *a = A + r * lda + j * fan_in + i0;
                    FM_T d0 = D[j * ld_member + r];
                    for (int l = 0; l < 16; l++)
                        acc[l] += a[l] * d0;
                }
                for (int l = 0; l < 16; l++)
                    g[i0 + l] = acc[l];
            }
            if (i0 == fan_in)
                continue;
        }
        for (ptrdiff_t k = i0; k < fan_in * fan_out; k++)
            g[k] = 0;
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            const FM_T *a = A + r * lda + j * fan_in;
            const FM_T *d = D + j * ld_member + r * fan_out;
            if (fan_out == 1) {
                FM_T d0 = d[0];
                for (ptrdiff_t i = i0; i < fan_in; i++)
                    g[i] += a[i] * d0;
                continue;
            }
            for (ptrdiff_t i = 0; i < fan_in; i++) {
                FM_T ai = a[i];
                for (ptrdiff_t o = 0; o < fan_out; o++)
                    g[i * fan_out + o] += ai * d[o];
            }
        }
    }
}

/* fm_members_backprop: P_j = D_j W_j^T (P laid out as A: the previous layer's delta) */
FM_HOT void FM_FN(fm_members_backprop)(ptrdiff_t n_members, ptrdiff_t n_rows, ptrdiff_t fan_in,
                                ptrdiff_t fan_out, const FM_T *D, ptrdiff_t ld_member, const FM_T *W,
                                FM_T *P, ptrdiff_t lda)
{
    if (fan_out == 1) {
        /* row by row, the group's row of P written in order (written member by member, each member's
         * rows lda apart, the stores waited on their lines: 1.5x this loop's time) */
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            FM_T *p = P + r * lda;
            for (ptrdiff_t j = 0; j < n_members; j++, p += fan_in) {
                const FM_T *Wj = W + j * fan_in;
                FM_T d0 = D[j * ld_member + r];
                for (ptrdiff_t i = 0; i < fan_in; i++)
                    p[i] = d0 * Wj[i];
            }
        }
        return;
    }
    for (ptrdiff_t j = 0; j < n_members; j++) {
        const FM_T *Wj = W + j * fan_in * fan_out;
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            const FM_T *d = D + j * ld_member + r * fan_out;
            FM_T *p = P + r * lda + j * fan_in;
            for (ptrdiff_t i = 0; i < fan_in; i++) {
                FM_T s = 0;
                for (ptrdiff_t o = 0; o < fan_out; o++)
                    s += d[o] * Wj[i * fan_out + o];
                p[i] = s;
            }
        }
    }
}

/*
 * The first layer's products when its inputs are few (a tiny network's, for
 * every member of the group at once: the group's W_1 is (n_in, n_cols) with
 * the members side by side). A BLAS call there packs its operands before a
 * few thousand multiply-adds: W3's two products (16 x 8 @ 8 x 256 and its
 * transpose) took 36% of a 32-member epoch in OpenBLAS, most of it packing.
 * Both kernels hold a block of the result in registers over the inner
 * dimension and write it once; each sum runs in the inner index's order.
 */

/* Columns of the result a register block holds: 128 bytes (float 32, double 16: four vectors of AVX2). */
#define FM_NARROW_COLS ((ptrdiff_t)(128 / sizeof(FM_T)))

/* C[o, :width] = sum over j of A[o a_row + j a_inner] B[j ldb, :width], o < n_out, j < n_inner, each row of C
 * summed in registers over j in order (n_inner >= 1); two rows of C at a time, so that eight sums (of AVX2's
 * vectors) are under way at once, as many as the multiply-adds' latency needs to keep both units busy */
static inline __attribute__((always_inline)) void FM_FN(fm_narrow_block)(
    ptrdiff_t n_out, ptrdiff_t n_inner, ptrdiff_t width, const FM_T *A, ptrdiff_t a_row, ptrdiff_t a_inner,
    const FM_T *B, ptrdiff_t ldb, FM_T *C, ptrdiff_t ldc)
{
    ptrdiff_t o = 0;
    for (; o + 2 <= n_out; o += 2) {
        FM_T acc0[FM_NARROW_COLS], acc1[FM_NARROW_COLS];
        /* (the first products start the sums: set to zero first, GCC wrote the sums to memory with a
         * string store and read them back, half of the kernel's time) */
        for (ptrdiff_t l = 0; l < width; l++) {
            acc0[l] = A[o * a_row] * B[l];
            acc1[l] = A[(o + 1) * a_row] * B[l];
        }
        for (ptrdiff_t j = 1; j < n_inner; j++) {
            FM_T a0 = A[o * a_row + j * a_inner], a1 = A[(o + 1) * a_row + j * a_inner];
            const FM_T *b = B + j * ldb;
            for (ptrdiff_t l = 0; l < width; l++) {
                acc0[l] += a0 * b[l];
                acc1[l] += a1 * b[l];
            }
        }
        for (ptrdiff_t l = 0; l < width; l++) {
            C[o * ldc + l] = acc0[l];
            C[(o + 1) * ldc + l] = acc1[l];
        }
    }
    for (; o < n_out; o++) {
        FM_T acc[FM_NARROW_COLS];
        for (ptrdiff_t l = 0; l < width; l++)
            acc[l] = A[o * a_row] * B[l];
        for (ptrdiff_t j = 1; j < n_inner; j++) {
            FM_T a = A[o * a_row + j * a_inner];
            const FM_T *b = B + j * ldb;
            for (ptrdiff_t l = 0; l < width; l++)
                acc[l] += a * b[l];
        }
        for (ptrdiff_t l = 0; l < width; l++)
            C[o * ldc + l] = acc[l];
    }
}

static inline __attribute__((always_inline)) void FM_FN(fm_narrow_product)(
    ptrdiff_t n_out, ptrdiff_t n_inner, ptrdiff_t n_cols, const FM_T *A, ptrdiff_t a_row, ptrdiff_t a_inner,
    const FM_T *B, ptrdiff_t ldb, FM_T *C, ptrdiff_t ldc)
{
    ptrdiff_t c0 = 0;
    for (; c0 + FM_NARROW_COLS <= n_cols; c0 += FM_NARROW_COLS)
        FM_FN(fm_narrow_block)(n_out, n_inner, FM_NARROW_COLS, A, a_row, a_inner, B + c0, ldb, C + c0, ldc);
    if (c0 < n_cols)
        FM_FN(fm_narrow_block)(n_out, n_inner, n_cols - c0, A, a_row, a_inner, B + c0, ldb, C + c0, ldc);
}

/* fm_narrow_matmul: C = A B, A (n_rows, n_in) row stride lda, B (n_in, n_cols) row stride ldb, C (n_rows,
 * n_cols) row stride ldc */
FM_HOT void FM_FN(fm_narrow_matmul)(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, const FM_T *A,
                                    ptrdiff_t lda, const FM_T *B, ptrdiff_t ldb, FM_T *C, ptrdiff_t ldc)
{
    FM_FN(fm_narrow_product)(n_rows, n_in, n_cols, A, lda, 1, B, ldb, C, ldc);
}

/* fm_narrow_tmatmul: G = A^T D, A (n_rows, n_in) row stride lda, D (n_rows, n_cols) row stride ldd, G (n_in,
 * n_cols) row stride ldg */
FM_HOT void FM_FN(fm_narrow_tmatmul)(ptrdiff_t n_rows, ptrdiff_t n_in, ptrdiff_t n_cols, const FM_T *A,
                                     ptrdiff_t lda, const FM_T *D, ptrdiff_t ldd, FM_T *G, ptrdiff_t ldg)
{
    FM_FN(fm_narrow_product)(n_in, n_rows, n_cols, A, 1, lda, D, ldd, G, ldg);
}

#undef FM_NARROW_COLS
