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
