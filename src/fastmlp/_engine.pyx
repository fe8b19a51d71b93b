"""The compiled engine: forward, backward, optimizer update and the whole
mini-batch loop of an epoch, for float32 and float64 from this one source.

Notation follows DESIGN.md: layer l = 1..L maps A_{l-1} (batch, fan_in) to
Z_l = A_{l-1} @ W_l + b_l and A_l = f(Z_l); delta_l = dL/dZ_l.

Parameters live in one flat buffer: for each layer, W_l (fan_in * fan_out,
row-major) then b_l (fan_out); after all layers, the PReLU slopes of each
hidden layer whose activation is prelu (fan_out each). Gradients and
optimizer state use the same layout, so an update is one pass over one buffer.

X is a C-contiguous 2-D array, or a CSR matrix given as the tuple
(indptr, indices, data) with intp indices: then the first layer's products
run over the nonzeros (memory O(nnz)). Sample weights, when given, weight
each row's loss and gradient; means are then over the sum of the weights.

Nothing here validates: network.py has checked dtypes, shapes, contiguity,
finiteness and sizes before calling, and compiled code trusts it.
"""
import numpy as np

cimport numpy as cnp
from cython cimport floating
from libc.math cimport isfinite, pow, sqrt
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc

from ._blas cimport _axpy, _dot, _gemm, _nrm2, _scal
from ._kernels cimport (
    FM_ADAM, FM_EXP, FM_IDENTITY, FM_LEAKY_RELU, FM_LOGISTIC, FM_PRELU, FM_RELU, FM_SGD, FM_SOFTMAX,
    FM_SWISH, FM_TANH, _act_backward, _col_max, _prelu_backward, _prelu_forward, _adam_update, _bias_act_forward, _col_sum, _csr_matmul, _csr_tmatmul, _dropout,
    _all_finite, _gather_rows, _mul, _output_delta, _output_forward, _sgd_update, fm_rng, fm_rng_seed,
)

# The C enum values, so that tests can check _registry against them.
ENUMS = {
    "FM_IDENTITY": FM_IDENTITY, "FM_LOGISTIC": FM_LOGISTIC, "FM_TANH": FM_TANH, "FM_RELU": FM_RELU,
    "FM_LEAKY_RELU": FM_LEAKY_RELU, "FM_SWISH": FM_SWISH, "FM_SOFTMAX": FM_SOFTMAX, "FM_EXP": FM_EXP, "FM_PRELU": FM_PRELU,
    "FM_SGD": FM_SGD, "FM_ADAM": FM_ADAM,
}

# Rows per chunk when forward or loss_and_gradients run over a whole data set:
# bounds their workspace whatever the number of rows.
CHUNK_ROWS = 4096

# Every size handed to BLAS is a C int (as _validation.BLAS_INT_MAX).
cdef Py_ssize_t BLAS_INT_MAX = 2**31 - 1

cnp.import_array()


cdef struct Plan:
    Py_ssize_t n_layers        # L, the number of weight layers
    const Py_ssize_t *sizes    # (L + 1,) units per layer, input first
    const int *acts            # (L,) activation code of layer l at acts[l - 1]; the output's last
    const double *keep         # (L - 1,) keep probability of hidden layer l at keep[l - 1]
    Py_ssize_t batch_size      # rows the workspace holds
    Py_ssize_t *table          # one malloc'd block behind the seven offset tables
    Py_ssize_t *w_off          # (L + 1,) offset of W_l in the parameter buffer (index 0 unused)
    Py_ssize_t *b_off          # offset of b_l
    Py_ssize_t *s_off          # offset of layer l's PReLU slopes, -1 for other activations
    Py_ssize_t *z_off          # offset of Z_l in the workspace
    Py_ssize_t *a_off          # A_l = f(Z_l) (hidden layers)
    Py_ssize_t *m_off          # dropout mask M_l, -1 where layer l has no dropout
    Py_ssize_t *d_off          # D_l = A_l * M_l, -1 likewise
    Py_ssize_t x_off           # gathered batch rows of X
    Py_ssize_t y_off           # gathered batch rows of Y
    Py_ssize_t sw_off          # gathered batch sample weights
    Py_ssize_t delta_off       # delta_l (ping)
    Py_ssize_t delta_prev_off  # delta_{l-1} (pong)
    Py_ssize_t n_weights       # parameters before the slopes (all W_l and b_l)
    Py_ssize_t n_params
    Py_ssize_t work_size


cdef struct Settings:
    Py_ssize_t batch_size
    int optimizer
    double learning_rate
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double alpha
    double clip_norm           # <= 0: no clipping
    bint dropout
    long long step             # Adam's t before this epoch
    uint64_t seed              # dropout masks


cdef struct Data:
    # A whole data set, as the def functions received it.
    Py_ssize_t n_rows
    Py_ssize_t n_in
    const void *X              # dense (n_rows, n_in), or NULL for CSR input
    const Py_ssize_t *indptr   # CSR input
    const Py_ssize_t *indices
    const void *data
    const void *Y              # (n_rows, n_out), or NULL
    const void *sw             # (n_rows,) sample weights, or NULL for ones


cdef struct Batch:
    # The rows one forward/backward pass works on.
    Py_ssize_t n_rows
    const void *X              # dense (n_rows, n_in) rows, or NULL for CSR input
    const Data *csr            # CSR input: the whole matrix
    const Py_ssize_t *rows     # CSR input: the batch's row numbers, or NULL for row0, row0 + 1, ...
    Py_ssize_t row0
    const void *Y              # (n_rows, n_out)
    const void *sw             # (n_rows,) or NULL
    double weight              # sum of the weights (n_rows without weights)


cdef int _read_data(object X, object Y, object sample_weight, Data *d, const floating *like) except -1:
    """Point d at X (array or CSR tuple), Y and the sample weights (None allowed)."""
    cdef const floating[:, ::1] dense
    cdef const floating[:, ::1] targets
    cdef const floating[::1] values
    cdef const floating[::1] weights
    cdef const Py_ssize_t[::1] indptr
    cdef const Py_ssize_t[::1] indices
    if isinstance(X, tuple):
        indptr, indices, values, d.n_in = X
        d.n_rows = indptr.shape[0] - 1
        d.X = NULL
        d.indptr = &indptr[0]
        d.indices = &indices[0] if indices.shape[0] > 0 else NULL
        d.data = &values[0] if values.shape[0] > 0 else NULL
    else:
        dense = X
        d.n_rows = dense.shape[0]
        d.n_in = dense.shape[1]
        d.X = &dense[0, 0]
        d.indptr = d.indices = NULL
        d.data = NULL
    d.Y = NULL
    d.sw = NULL
    if Y is not None:
        targets = Y
        d.Y = &targets[0, 0]
    if sample_weight is not None:
        weights = sample_weight
        d.sw = &weights[0]
    return 0


cdef int _plan_init(Plan *p, const Py_ssize_t[::1] sizes, const int[::1] acts, const double[::1] keep,
                    Py_ssize_t batch_size, bint training, bint dropout) except -1:
    """Fill the parameter and workspace offset tables for batches of batch_size rows.

    training=False plans a forward pass only: A_l shares Z_l's memory and no
    deltas or targets are kept. dropout=False ignores keep.
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, l, off = 0, widest = 0, B = batch_size
    p.n_layers = L
    p.sizes = &sizes[0]
    p.acts = &acts[0]
    p.keep = &keep[0] if keep is not None and keep.shape[0] > 0 else NULL
    p.batch_size = B
    p.table = <Py_ssize_t *>malloc(7 * (L + 1) * sizeof(Py_ssize_t))
    if p.table == NULL:
        raise MemoryError("fastmlp: cannot allocate the layer tables")
    p.w_off = p.table
    p.b_off = p.table + (L + 1)
    p.z_off = p.table + 2 * (L + 1)
    p.a_off = p.table + 3 * (L + 1)
    p.m_off = p.table + 4 * (L + 1)
    p.d_off = p.table + 5 * (L + 1)
    p.s_off = p.table + 6 * (L + 1)
    for l in range(L + 1):
        p.w_off[l] = p.b_off[l] = p.z_off[l] = p.a_off[l] = p.m_off[l] = p.d_off[l] = p.s_off[l] = -1
    for l in range(1, L + 1):
        p.w_off[l] = off
        off += sizes[l - 1] * sizes[l]
        p.b_off[l] = off
        off += sizes[l]
    p.n_weights = off
    for l in range(1, L):
        if acts[l - 1] == FM_PRELU:
            p.s_off[l] = off
            off += sizes[l]
    p.n_params = off

    off = 0
    p.x_off = off
    off += B * sizes[0]
    p.y_off = off
    if training:
        off += B * sizes[L]
    p.sw_off = off
    if training:
        off += B
    for l in range(1, L + 1):
        widest = max(widest, sizes[l])
        p.z_off[l] = off
        off += B * sizes[l]
        if l == L:
            continue
        if training:
            p.a_off[l] = off
            off += B * sizes[l]
        else:
            p.a_off[l] = p.z_off[l]
        if dropout and p.keep != NULL and p.keep[l - 1] < 1.0:
            p.m_off[l] = off
            p.d_off[l] = off + B * sizes[l]
            off += 2 * B * sizes[l]
    p.delta_off = off
    p.delta_prev_off = off + B * widest
    if training:
        off += 2 * B * widest
    p.work_size = off
    return 0


cdef inline void _plan_free(Plan *p) noexcept:
    free(p.table)
    p.table = NULL


cdef inline const floating *_layer_input(const Plan *p, const floating *work, const Batch *batch,
                                         Py_ssize_t l, bint dropout) noexcept nogil:
    """A_{l-1} as layer l reads it: the batch's X for l = 1, D_{l-1} under dropout, else A_{l-1}."""
    if l == 1:
        return <const floating *>batch.X
    if dropout and p.d_off[l - 1] >= 0:
        return work + p.d_off[l - 1]
    return work + p.a_off[l - 1]


cdef void _forward_hidden(const Plan *p, const floating *params, floating *work, const Batch *batch,
                          bint dropout, fm_rng *rng, floating *Z_out) noexcept nogil:
    """Forward through the hidden layers; writes Z_L - b_L (the output's product) to Z_out."""
    cdef Py_ssize_t l, L = p.n_layers, fan_in, fan_out, B = batch.n_rows
    cdef const floating *A_in
    cdef floating *Z
    cdef floating *A
    for l in range(1, L + 1):
        fan_in = p.sizes[l - 1]
        fan_out = p.sizes[l]
        Z = Z_out if l == L else work + p.z_off[l]
        A_in = _layer_input(p, work, batch, l, dropout)
        # Z_l = A_{l-1} @ W_l
        if A_in == NULL:  # CSR input, first layer: over the nonzeros
            _csr_matmul(B, fan_out, batch.rows, batch.row0, batch.csr.indptr, batch.csr.indices,
                        <const floating *>batch.csr.data, params + p.w_off[l], Z)
        else:
            _gemm(c'N', c'N', <int>B, <int>fan_out, <int>fan_in, <floating>1, A_in, <int>fan_in,
                  params + p.w_off[l], <int>fan_out, <floating>0, Z, <int>fan_out)
        if l == L:
            break
        A = work + p.a_off[l]
        # Z_l += b_l; A_l = f(Z_l)
        if p.s_off[l] >= 0:
            _prelu_forward(B, fan_out, params + p.b_off[l], params + p.s_off[l], Z, A)
        else:
            _bias_act_forward(p.acts[l - 1], B, fan_out, params + p.b_off[l], Z, A)
        if dropout and p.m_off[l] >= 0:
            # D_l = A_l * M_l, M_l in {0, 1/keep}
            _dropout(B * fan_out, <floating>p.keep[l - 1], rng, A, work + p.m_off[l], work + p.d_off[l])


cdef double _forward_backward(const Plan *p, const floating *params, floating *grads, floating *work,
                              const Batch *batch, floating scale, bint dropout, fm_rng *rng,
                              bint accumulate) noexcept nogil:
    """One forward and backward pass over a batch.

    Writes (accumulate=False) or adds (accumulate=True) the gradient of
    scale * sum_rows (weight *) loss to grads, and returns that sum unscaled.
    No L2 term here: see _l2.
    """
    cdef Py_ssize_t l, L = p.n_layers, fan_in, fan_out, B = batch.n_rows
    cdef floating *Z_out = work + p.z_off[L]
    cdef floating *delta = work + p.delta_off
    cdef floating *delta_prev = work + p.delta_prev_off
    cdef floating *swap
    cdef const floating *A_in
    cdef floating beta = 1 if accumulate else 0
    cdef double loss = 0
    _forward_hidden(p, params, work, batch, dropout, rng, Z_out)
    # P = g(Z_L + b_L); loss; delta_L = w scale (P - Y)
    _output_delta(p.acts[L - 1], B, p.sizes[L], scale, params + p.b_off[L], <const floating *>batch.Y,
                  <const floating *>batch.sw, Z_out, delta, &loss)
    for l in range(L, 0, -1):
        fan_in = p.sizes[l - 1]
        fan_out = p.sizes[l]
        A_in = _layer_input(p, work, batch, l, dropout)
        # dW_l = A_{l-1}^T @ delta_l  (the batch's outer products as one GEMM)
        if A_in == NULL:
            _csr_tmatmul(B, fan_in, fan_out, accumulate, batch.rows, batch.row0, batch.csr.indptr,
                         batch.csr.indices, <const floating *>batch.csr.data, delta, grads + p.w_off[l])
        else:
            _gemm(c'T', c'N', <int>fan_in, <int>fan_out, <int>B, <floating>1, A_in, <int>fan_in,
                  delta, <int>fan_out, beta, grads + p.w_off[l], <int>fan_out)
        # db_l = sum over rows of delta_l
        _col_sum(B, fan_out, accumulate, delta, grads + p.b_off[l])
        if l == 1:
            break
        # delta_{l-1} = (delta_l @ W_l^T) * M_{l-1} * f'(Z_{l-1})
        _gemm(c'N', c'T', <int>B, <int>fan_in, <int>fan_out, <floating>1, delta, <int>fan_out,
              params + p.w_off[l], <int>fan_out, <floating>0, delta_prev, <int>fan_in)
        if dropout and p.m_off[l - 1] >= 0:
            _mul(B * fan_in, work + p.m_off[l - 1], delta_prev)
        if p.s_off[l - 1] >= 0:
            # and the slopes' gradient, sum over rows of dL/dA_{l-1} * min(Z_{l-1}, 0)
            _prelu_backward(B, fan_in, accumulate, work + p.z_off[l - 1], params + p.s_off[l - 1], delta_prev,
                            grads + p.s_off[l - 1])
        else:
            _act_backward(p.acts[l - 2], B * fan_in, work + p.z_off[l - 1], work + p.a_off[l - 1], delta_prev)
        swap = delta
        delta = delta_prev
        delta_prev = swap
    return loss


cdef void _batch_at(const Data *d, Py_ssize_t start, Py_ssize_t b, const Py_ssize_t *order,
                    const Plan *p, floating *work, Batch *batch) noexcept nogil:
    """Rows start..start+b of the data (through order, when given) as a batch.

    Dense shuffled rows, targets and weights are gathered into the workspace;
    unshuffled ones are used in place; CSR rows are read through their numbers.
    """
    cdef Py_ssize_t i, n_out = p.sizes[p.n_layers]
    cdef const floating *sw
    batch.n_rows = b
    batch.csr = d
    batch.rows = &order[start] if order != NULL else NULL
    batch.row0 = start
    if order != NULL:
        if d.X != NULL:
            _gather_rows(b, d.n_in, &order[start], <const floating *>d.X, work + p.x_off)
            batch.X = work + p.x_off
        else:
            batch.X = NULL
        _gather_rows(b, n_out, &order[start], <const floating *>d.Y, work + p.y_off)
        batch.Y = work + p.y_off
        if d.sw != NULL:
            sw = <const floating *>d.sw
            for i in range(b):
                work[p.sw_off + i] = sw[order[start + i]]
            batch.sw = work + p.sw_off
        else:
            batch.sw = NULL
    else:
        batch.X = <const floating *>d.X + start * d.n_in if d.X != NULL else NULL
        batch.Y = <const floating *>d.Y + start * n_out
        batch.sw = <const floating *>d.sw + start if d.sw != NULL else NULL
    batch.weight = b
    if batch.sw != NULL:
        batch.weight = 0
        sw = <const floating *>batch.sw
        for i in range(b):
            batch.weight += sw[i]


cdef double _l2(const Plan *p, const floating *params, floating *grads, double alpha,
                double n) noexcept nogil:
    """Adds alpha/n * W_l to every dW_l and returns the penalty alpha/(2n) sum ||W_l||^2."""
    cdef Py_ssize_t l, size
    cdef double squares = 0
    for l in range(1, p.n_layers + 1):
        size = p.sizes[l - 1] * p.sizes[l]
        squares += _dot(<int>size, params + p.w_off[l], params + p.w_off[l])
        _axpy(<int>size, <floating>(alpha / n), params + p.w_off[l], grads + p.w_off[l])
    return 0.5 * alpha * squares / n


cdef inline void _update(const Settings *s, double step_size, Py_ssize_t offset, Py_ssize_t n, floating *params,
                         const floating *grads, floating *state_1, floating *state_2,
                         double *grad_sumsq) noexcept nogil:
    """The optimizer step on params[offset:offset + n]; adds sum grad^2 to *grad_sumsq unless NULL."""
    if s.optimizer == FM_ADAM:
        _adam_update(n, <floating>step_size, <floating>s.beta_1, <floating>s.beta_2, <floating>s.epsilon,
                     grads + offset, state_1 + offset, state_2 + offset, params + offset, grad_sumsq)
    else:
        _sgd_update(n, <floating>s.learning_rate, <floating>s.momentum, s.nesterov, grads + offset,
                    state_1 + offset, params + offset, grad_sumsq)


cdef inline double _scaled_sum_sq(double total, double *largest, double norm) noexcept nogil:
    """Adds norm^2 to a sum of squares kept as largest^2 * total (so nothing overflows)."""
    if norm > largest[0]:
        total = total * (largest[0] / norm) ** 2 + 1 if largest[0] > 0 else 1
        largest[0] = norm
    elif norm > 0:
        total += (norm / largest[0]) ** 2
    return total


cdef Settings _settings_from(dict d) except *:
    cdef Settings s
    s.batch_size = d["batch_size"]
    s.optimizer = d["optimizer"]
    s.learning_rate = d["learning_rate"]
    s.momentum = d["momentum"]
    s.nesterov = d["nesterov"]
    s.beta_1 = d["beta_1"]
    s.beta_2 = d["beta_2"]
    s.epsilon = d["epsilon"]
    s.alpha = d["alpha"]
    s.clip_norm = d["clip_norm"] if d["clip_norm"] is not None else 0.0
    s.dropout = d["dropout"]
    s.step = d["step"]
    s.seed = d["seed"]
    return s


def workspace_size(const Py_ssize_t[::1] sizes, const int[::1] acts, const double[::1] keep,
                   Py_ssize_t batch_size, bint dropout):
    """Elements of the training workspace train_epoch needs for batches of batch_size rows."""
    cdef Plan p
    _plan_init(&p, sizes, acts, keep, batch_size, True, dropout)
    _plan_free(&p)
    return p.work_size


def train_epoch(const Py_ssize_t[::1] sizes, const int[::1] acts, const double[::1] keep, dict settings,
                floating[::1] params, floating[::1] grads, floating[::1] state_1, floating[::1] state_2,
                floating[::1] work, object X, object Y, object sample_weight, const Py_ssize_t[::1] order,
                double[::1] grad_norm_sums, floating[::1] unit_max):
    """One epoch of mini-batch training, the whole batch loop without the GIL.

    Batches are rows order[start:start + batch_size] of X and Y, or
    consecutive rows when order is None. Each batch: forward, loss, backward,
    L2, gradient norms, clipping, optimizer update. A batch whose weights sum
    to zero is skipped. grad_norm_sums[l - 1] gets the sum over batches of
    ||dW_l||_F; unit_max (all hidden units, layer after layer) the largest
    pre-activation each unit saw (before the batch's update).

    Returns (loss_sum, n_batches, step, finite): loss_sum is the sum over
    batches of (batch mean loss + L2) * batch weight, step Adam's t after the
    epoch, and finite False when a batch's loss was not finite (the epoch
    stopped there, before that batch's update).
    """
    cdef Settings s = _settings_from(settings)
    cdef Plan p
    cdef Data d
    cdef Batch batch
    cdef fm_rng rng
    cdef Py_ssize_t n, B = s.batch_size, start = 0, b, l, n_batches = 0, unit
    cdef bint finite = True
    cdef double loss, loss_sum = 0, squares, total, scale = 0, norm, largest
    cdef floating *W_grad
    _read_data(X, Y, sample_weight, &d, &params[0])
    n = d.n_rows
    _plan_init(&p, sizes, acts, keep, B, True, s.dropout)
    try:
        with nogil:
            fm_rng_seed(&rng, s.seed)
            while start < n:
                b = min(B, n - start)
                _batch_at(&d, start, b, &order[0] if order is not None else NULL, &p, &work[0], &batch)
                start += b
                if batch.weight <= 0:
                    continue
                loss = _forward_backward(&p, &params[0], &grads[0], &work[0], &batch,
                                         <floating>(1.0 / batch.weight), s.dropout, &rng, False) / batch.weight
                if s.alpha > 0:
                    loss += _l2(&p, &params[0], &grads[0], s.alpha, batch.weight)
                unit = 0
                for l in range(1, p.n_layers):
                    # the largest Z_l of each unit so far: units never above 0 are dead
                    _col_max(b, p.sizes[l], &work[p.z_off[l]], &unit_max[unit])
                    unit += p.sizes[l]
                if not isfinite(loss):
                    finite = False
                    break
                if s.optimizer == FM_ADAM:
                    s.step += 1
                    scale = s.learning_rate * sqrt(1 - pow(s.beta_2, s.step)) / (1 - pow(s.beta_1, s.step))
                if s.clip_norm > 0:
                    # per-layer ||dW_l||, and the global norm of all gradients, before the update;
                    # norms from BLAS nrm2 and combined with scaling, so that no square overflows
                    total = 0
                    largest = 0
                    for l in range(1, p.n_layers + 1):
                        norm = _nrm2(<int>(p.sizes[l - 1] * p.sizes[l]), &grads[p.w_off[l]])
                        grad_norm_sums[l - 1] += norm
                        total = _scaled_sum_sq(total, &largest, norm)
                        total = _scaled_sum_sq(total, &largest, _nrm2(<int>p.sizes[l], &grads[p.b_off[l]]))
                    if p.n_params > p.n_weights:  # the PReLU slopes
                        total = _scaled_sum_sq(total, &largest,
                                               _nrm2(<int>(p.n_params - p.n_weights), &grads[p.n_weights]))
                    norm = largest * sqrt(total)
                    if norm > s.clip_norm:
                        _scal(<int>p.n_params, <floating>(s.clip_norm / norm), &grads[0])
                    _update(&s, scale, 0, p.n_params, &params[0], &grads[0], &state_1[0], &state_2[0], NULL)
                else:
                    # update layer by layer; ||dW_l|| comes out of the same pass
                    for l in range(1, p.n_layers + 1):
                        squares = 0
                        _update(&s, scale, p.w_off[l], p.b_off[l] - p.w_off[l], &params[0], &grads[0],
                                &state_1[0], &state_2[0], &squares)
                        norm = sqrt(squares)
                        if not isfinite(squares):  # float64 squares past 1e308: BLAS's scaled norm
                            norm = _nrm2(<int>(p.b_off[l] - p.w_off[l]), &grads[p.w_off[l]])
                        grad_norm_sums[l - 1] += norm
                        _update(&s, scale, p.b_off[l], p.sizes[l], &params[0], &grads[0], &state_1[0],
                                &state_2[0], NULL)
                    if p.n_params > p.n_weights:  # the PReLU slopes
                        _update(&s, scale, p.n_weights, p.n_params - p.n_weights, &params[0], &grads[0],
                                &state_1[0], &state_2[0], NULL)
                loss_sum += loss * batch.weight
                n_batches += 1
    finally:
        _plan_free(&p)
    return loss_sum, n_batches, s.step, finite


def loss_and_gradients(const Py_ssize_t[::1] sizes, const int[::1] acts, floating[::1] params, object X,
                       object Y, object sample_weight, double alpha, floating[::1] grads):
    """Mean (weighted) loss over all rows plus alpha/(2 n) sum ||W||^2, n the total weight;
    its exact gradient into grads.

    Runs in chunks of CHUNK_ROWS rows, so memory does not grow with n. No
    dropout. The caller makes sure the weights sum to more than zero.
    """
    cdef Plan p
    cdef Data d
    cdef Batch batch
    cdef Py_ssize_t n, start = 0, b, B, i
    cdef double loss = 0, weight
    cdef floating[::1] work
    _read_data(X, Y, sample_weight, &d, &params[0])
    n = d.n_rows
    B = min(n, CHUNK_ROWS)
    _plan_init(&p, sizes, acts, None, B, True, False)
    try:
        work = np.empty(p.work_size, dtype=np.float32 if floating is float else np.float64)
        with nogil:
            weight = n
            if d.sw != NULL:
                weight = 0
                for i in range(n):
                    weight += (<const floating *>d.sw)[i]
            while start < n:
                b = min(B, n - start)
                _batch_at(&d, start, b, NULL, &p, &work[0], &batch)
                loss += _forward_backward(&p, &params[0], &grads[0], &work[0], &batch, <floating>(1.0 / weight),
                                          False, NULL, start > 0)
                start += b
            loss /= weight
            if alpha > 0:
                loss += _l2(&p, &params[0], &grads[0], alpha, weight)
    finally:
        _plan_free(&p)
    return loss


cdef void _forward_chunks(const Plan *p, const floating *params, const Data *d, floating *out, floating *work,
                          uint64_t seed, bint training) noexcept nogil:
    """The output of every row of d into out (n_rows, n_outputs), p.batch_size rows at a time."""
    cdef Batch batch
    cdef fm_rng rng
    cdef Py_ssize_t start = 0, b, L = p.n_layers, n_out = p.sizes[p.n_layers]
    batch.csr = d
    batch.rows = NULL
    batch.Y = batch.sw = NULL
    fm_rng_seed(&rng, seed)
    while start < d.n_rows:
        b = min(p.batch_size, d.n_rows - start)
        batch.n_rows = b
        batch.row0 = start
        batch.X = <const floating *>d.X + start * d.n_in if d.X != NULL else NULL
        _forward_hidden(p, params, work, &batch, training, &rng, out + start * n_out)
        _output_forward(p.acts[L - 1], b, n_out, params + p.b_off[L], out + start * n_out)
        start += b


cdef int _forward_rows(const Py_ssize_t[::1] sizes, const int[::1] acts, const floating *params, const Data *d,
                       floating *out, const double[::1] keep, uint64_t seed, bint training,
                       bint release_gil) except -1:
    """_forward_chunks with its plan and workspace (chunks of CHUNK_ROWS), with or without the GIL."""
    cdef Plan p
    cdef floating *work = NULL  # malloc'd: far cheaper than an array for the one-row calls of a service
    _plan_init(&p, sizes, acts, keep, min(d.n_rows, CHUNK_ROWS), training, training)
    try:
        work = <floating *>malloc(max(p.work_size, 1) * sizeof(floating))
        if work == NULL:
            raise MemoryError("fastmlp: cannot allocate the forward workspace")
        if release_gil:
            with nogil:
                _forward_chunks(&p, params, d, out, work, seed, training)
        else:
            _forward_chunks(&p, params, d, out, work, seed, training)
    finally:
        free(work)
        _plan_free(&p)
    return 0


def forward(const Py_ssize_t[::1] sizes, const int[::1] acts, const floating[::1] params, object X,
            floating[:, ::1] out, const double[::1] keep=None, uint64_t seed=0, bint training=False):
    """The network's output for every row of X, into out (n_samples, n_outputs).

    training=True applies inverted dropout with keep probabilities `keep`,
    masks drawn from `seed`.
    """
    cdef Data d
    _read_data(X, None, None, &d, &params[0])
    _forward_rows(sizes, acts, &params[0], &d, &out[0, 0], keep, seed, training, True)


cdef class Predictor:
    """Network.forward without dropout, for rows that are already as the engine takes them.

    The path of a service predicting one row at a time: called with X, it
    returns the output when X is a C-contiguous, aligned, native-byte-order 2-D
    ndarray of the network's dtype and width whose values are all finite, and
    None for anything else, which the caller then validates in full (and
    rejects with the usual errors). Everything it checks, it checks in C,
    without building a memoryview. It keeps the network's parameter array
    alive and reads it live; the caller makes a new Predictor if that array
    is replaced.
    """
    cdef readonly object params
    cdef const Py_ssize_t[::1] sizes
    cdef const int[::1] acts
    cdef int typenum
    cdef Py_ssize_t n_in, n_out

    def __init__(self, const Py_ssize_t[::1] sizes, const int[::1] acts, cnp.ndarray params):
        self.sizes = sizes
        self.acts = acts
        self.params = params
        self.typenum = cnp.PyArray_TYPE(params)
        self.n_in = sizes[0]
        self.n_out = sizes[sizes.shape[0] - 1]

    cdef bint _finite(self, cnp.ndarray A, Py_ssize_t n) noexcept nogil:
        if self.typenum == cnp.NPY_FLOAT:
            return _all_finite(n * self.n_in, <const float *>cnp.PyArray_DATA(A))
        return _all_finite(n * self.n_in, <const double *>cnp.PyArray_DATA(A))

    def __call__(self, X):
        cdef cnp.ndarray A, out
        cdef cnp.npy_intp dims[2]
        cdef Data d
        cdef Py_ssize_t n
        cdef bint finite, release_gil
        if type(X) is not cnp.ndarray:
            return None
        A = <cnp.ndarray>X
        if (cnp.PyArray_NDIM(A) != 2 or cnp.PyArray_TYPE(A) != self.typenum or not cnp.PyArray_ISCARRAY_RO(A)
                or cnp.PyArray_DIM(A, 1) != self.n_in or not 0 < cnp.PyArray_DIM(A, 0) <= BLAS_INT_MAX):
            return None
        n = cnp.PyArray_DIM(A, 0)
        release_gil = n * self.n_in >= 4096  # below that the GIL's round trip costs more than it frees
        if release_gil:
            with nogil:
                finite = self._finite(A, n)
        else:
            finite = self._finite(A, n)
        if not finite:
            return None
        dims[0] = n
        dims[1] = self.n_out
        out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        d.n_rows = n
        d.n_in = self.n_in
        d.X = cnp.PyArray_DATA(A)
        d.indptr = d.indices = NULL
        d.data = d.Y = d.sw = NULL
        if self.typenum == cnp.NPY_FLOAT:
            _forward_rows[float](self.sizes, self.acts, <const float *>cnp.PyArray_DATA(self.params), &d,
                                 <float *>cnp.PyArray_DATA(out), None, 0, False, release_gil)
        else:
            _forward_rows[double](self.sizes, self.acts, <const double *>cnp.PyArray_DATA(self.params), &d,
                                  <double *>cnp.PyArray_DATA(out), None, 0, False, release_gil)
        return out


def all_finite(const floating[::1] x):
    """True if no element of x is NaN or infinite (one vectorized pass, without the GIL)."""
    cdef bint finite
    with nogil:
        finite = _all_finite(x.shape[0], &x[0]) if x.shape[0] > 0 else True
    return finite


# ---------------------------------------------------------------------------
# Test hooks: single kernels and the BLAS shim, for tests/test_kernels.py.

def _gemm_hook(str trans_a, str trans_b, double alpha, const floating[:, ::1] A, const floating[:, ::1] B,
               double beta, floating[:, ::1] C):
    """C = alpha op(A) op(B) + beta C through the row-major shim."""
    cdef char ta = ord(trans_a), tb = ord(trans_b)
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a == "T" else A.shape[1]
    _gemm(ta, tb, m, n, k, <floating>alpha, &A[0, 0], <int>A.shape[1], &B[0, 0], <int>B.shape[1],
          <floating>beta, &C[0, 0], n)


def _bias_act_forward_hook(int act, const floating[::1] bias, floating[:, ::1] Z, floating[:, ::1] A):
    _bias_act_forward(act, Z.shape[0], Z.shape[1], &bias[0], &Z[0, 0], &A[0, 0])


def _act_backward_hook(int act, const floating[::1] Z, const floating[::1] A, floating[::1] delta):
    _act_backward(act, Z.shape[0], &Z[0], &A[0], &delta[0])


def _output_delta_hook(int act, double scale, const floating[::1] bias, const floating[:, ::1] Y,
                       floating[:, ::1] Z, floating[:, ::1] delta, const floating[::1] sample_weight=None):
    """Returns the sum of the rows' (weighted) losses; Z becomes P."""
    cdef double loss = 0
    _output_delta(act, Z.shape[0], Z.shape[1], <floating>scale, &bias[0], &Y[0, 0],
                  &sample_weight[0] if sample_weight is not None else NULL, &Z[0, 0], &delta[0, 0], &loss)
    return loss


def _sgd_hook(double learning_rate, double momentum, bint nesterov, const floating[::1] grad,
              floating[::1] velocity, floating[::1] params):
    _sgd_update(params.shape[0], <floating>learning_rate, <floating>momentum, nesterov, &grad[0],
                &velocity[0], &params[0], NULL)


def _adam_hook(double step_size, double beta_1, double beta_2, double epsilon, const floating[::1] grad,
               floating[::1] m, floating[::1] v, floating[::1] params):
    _adam_update(params.shape[0], <floating>step_size, <floating>beta_1, <floating>beta_2, <floating>epsilon,
                 &grad[0], &m[0], &v[0], &params[0], NULL)


def _gather_rows_hook(const Py_ssize_t[::1] idx, const floating[:, ::1] X, floating[:, ::1] out):
    with nogil:
        _gather_rows(idx.shape[0], X.shape[1], &idx[0], &X[0, 0], &out[0, 0])


def _dropout_hook(double keep, uint64_t seed, const floating[::1] A, floating[::1] M, floating[::1] D):
    cdef fm_rng rng
    fm_rng_seed(&rng, seed)
    _dropout(A.shape[0], <floating>keep, &rng, &A[0], &M[0], &D[0])


def _prelu_forward_hook(const floating[::1] bias, const floating[::1] slopes, floating[:, ::1] Z,
                        floating[:, ::1] A):
    _prelu_forward(Z.shape[0], Z.shape[1], &bias[0], &slopes[0], &Z[0, 0], &A[0, 0])


def _prelu_backward_hook(bint accumulate, const floating[:, ::1] Z, const floating[::1] slopes,
                         floating[:, ::1] delta, floating[::1] slope_grad):
    _prelu_backward(Z.shape[0], Z.shape[1], accumulate, &Z[0, 0], &slopes[0], &delta[0, 0], &slope_grad[0])
