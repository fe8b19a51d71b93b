"""The compiled engine: forward, backward, optimizer update and the whole
mini-batch loop of an epoch, for float32 and float64 from this one source.

Notation (as fastmlp.reference's): layer l = 1..L maps A_{l-1} (batch, fan_in) to
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
from time import monotonic

import numpy as np

cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY, NAN, isfinite, isnan, pow, sqrt
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from cython.parallel cimport parallel, prange, threadid

from ._blas cimport _axpy, _dot, _gemm, _nrm2, _scal
from ._kernels cimport (
    FM_ABSOLUTE_ERROR, FM_ADAM, FM_EXP, FM_GAMMA, FM_HUBER, FM_IDENTITY, FM_LEAKY_RELU, FM_LOGISTIC,
    FM_LOGISTIC_LOG_LOSS, FM_POISSON, FM_PRELU, FM_QUANTILE, FM_RELU, FM_SGD, FM_SOFTMAX, FM_SOFTMAX_LOG_LOSS,
    FM_SQUARED_ERROR, FM_SWISH, FM_TANH, _act_backward, _adam_update, _all_finite, _bias_act_forward,
    _block_sumsq, _col_max, _col_sum, _csr_matmul, _csr_tmatmul, _dropout, _gather_rows, _largest_row_sumsq,
    _members_backprop, _members_forward, _members_weight_grad, _mul, _narrow_matmul, _narrow_tmatmul, _output_delta,
    _output_forward, _prelu_backward, _prelu_forward, _sgd_update, fm_rng, fm_rng_seed,
)

# The C enum values, so that tests can check _registry against them.
ENUMS = {
    "FM_IDENTITY": FM_IDENTITY, "FM_LOGISTIC": FM_LOGISTIC, "FM_TANH": FM_TANH, "FM_RELU": FM_RELU,
    "FM_LEAKY_RELU": FM_LEAKY_RELU, "FM_SWISH": FM_SWISH, "FM_SOFTMAX": FM_SOFTMAX, "FM_EXP": FM_EXP,
    "FM_PRELU": FM_PRELU,
    "FM_SGD": FM_SGD, "FM_ADAM": FM_ADAM,
    "FM_SQUARED_ERROR": FM_SQUARED_ERROR, "FM_LOGISTIC_LOG_LOSS": FM_LOGISTIC_LOG_LOSS,
    "FM_SOFTMAX_LOG_LOSS": FM_SOFTMAX_LOG_LOSS, "FM_POISSON": FM_POISSON, "FM_ABSOLUTE_ERROR": FM_ABSOLUTE_ERROR,
    "FM_HUBER": FM_HUBER, "FM_QUANTILE": FM_QUANTILE, "FM_GAMMA": FM_GAMMA,
}

# Rows per chunk when loss_and_gradients runs over a whole data set: bounds its
# workspace whatever the number of rows.
CHUNK_ROWS = 4096
# Rows per chunk of a forward pass over many rows: the unit of work its threads
# share. Fixed (never derived from the thread count), so that every row's output
# is the same bits whatever the number of threads.
FORWARD_ROWS = 256
cdef enum:
    # Each product of a batch (and its element-wise step) is split into at most
    # MAX_PARTS parts of at least MIN_PART rows or columns, from the sizes alone,
    # whatever the thread count. BLAS packs the operand that all parts read once
    # per part: with four parts, one thread was 3-9% slower on W1 than unsplit
    # products, and two threads slower than with two parts (bench/RESULTS.md).
    # The backward step of a layer (weight-gradient and delta parts) and the
    # update (chunks) have more tasks than that.
    MIN_PART = 32
    MAX_PARTS = 2
    # Parameters per chunk of the optimizer update and the L2 term.
    UPDATE_CHUNK = 16384
    # The gather of a batch's rows (a copy, no BLAS) in up to GATHER_PARTS parts of
    # at least GATHER_ROWS rows.
    GATHER_ROWS = 8
    GATHER_PARTS = 4
# Below this many multiply-adds per batch (forward and backward), the barriers
# of a parallel batch cost more than a second thread gives: one thread. Measured
# (bench/RESULTS.md): W2 (32-64-64-1) gains nothing from two threads even at
# batch 256 (4.8 million), W1 (784-256-128-10) 1.26-1.57x at batch 32 (22.5 million).
cdef double MIN_PARALLEL_WORK = 1e7
cdef bint _adapt = True  # tests switch it off, to run every batch on the threads asked for

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FM_OPENMP 1
    #define fm_barrier() _Pragma("omp barrier")
    #else
    #define FM_OPENMP 0
    #define fm_barrier() ((void)0)
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_num(void) { return 0; }
    static int omp_get_num_threads(void) { return 1; }
    static double omp_get_wtime(void) { return 0.0; }
    #endif
    /* Training flushes subnormal numbers to zero (FTZ: results; DAZ: operands) on every thread it runs on,
       and gives each thread its mode back: once a model fits its data, many of its output deltas (and the
       products they enter) fall below the smallest normal float, where x86 cores take a slow path on every
       operation (W2's epoch went from 27 to 60 ms as its loss fell to 0.003). Everywhere else the mode is
       left as it is (a no-op). */
    #if defined(__x86_64__) || defined(_M_X64)
    #include <xmmintrin.h>
    typedef unsigned int fm_fp_mode;
    static inline fm_fp_mode fm_flush_subnormals(void)
    {
        unsigned int mode = _mm_getcsr();
        _mm_setcsr(mode | 0x8040u);  /* FTZ (bit 15) and DAZ (bit 6) */
        return mode;
    }
    static inline void fm_fp_restore(fm_fp_mode mode) { _mm_setcsr(mode); }
    #else
    typedef unsigned int fm_fp_mode;
    static inline fm_fp_mode fm_flush_subnormals(void) { return 0; }
    static inline void fm_fp_restore(fm_fp_mode mode) { (void)mode; }
    #endif
    """
    ctypedef unsigned int fm_fp_mode
    fm_fp_mode fm_flush_subnormals() noexcept nogil  # (the thread's mode before, for fm_fp_restore)
    void fm_fp_restore(fm_fp_mode mode) noexcept nogil
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    double omp_get_wtime() noexcept nogil
    void fm_barrier() noexcept nogil  # every thread of the parallel region waits for all (none outside one)
    const int FM_OPENMP

OPENMP = bool(FM_OPENMP)

# Every size handed to BLAS is a C int (as _validation.BLAS_INT_MAX).
cdef Py_ssize_t BLAS_INT_MAX = 2**31 - 1

cnp.import_array()


cdef struct Plan:
    Py_ssize_t n_layers        # L, the number of weight layers
    const Py_ssize_t *sizes    # (L + 1,) units per layer, input first
    const int *acts            # (L,) activation code of layer l at acts[l - 1]; the output's last
    int loss                   # loss code (FM_SQUARED_ERROR, ...) and its parameter, set by the
    double loss_param          #   callers that compute a loss (train_epoch, loss_and_gradients)
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
    Py_ssize_t *k_off          # the products of Z_l's parts after the first (fwd[l].inner), -1 elsewhere
    Py_ssize_t x_off           # gathered batch rows of X
    Py_ssize_t y_off           # gathered batch rows of Y
    Py_ssize_t sw_off          # gathered batch sample weights
    Py_ssize_t delta_off       # delta_l (ping)
    Py_ssize_t delta_prev_off  # delta_{l-1} (pong)
    Py_ssize_t max_off         # (training) the units' running maxima, one row per part (MAX_PARTS rows of
    Py_ssize_t max_stride      #   max_stride elements: every hidden unit, layer after layer); see _merge_maxima
    Py_ssize_t n_weights       # parameters before the slopes (all W_l and b_l)
    Py_ssize_t n_params
    Py_ssize_t work_size
    Split *fwd                 # (L + 1,) how Z_l = A_{l-1} @ W_l is split (index 0 unused)
    Split *wgt                 # dW_l = A_{l-1}^T @ delta_l
    Split *bwd                 # delta_{l-1} = delta_l @ W_l^T (index 0 and 1 unused)
    Py_ssize_t *u_off          # (n_chunks,) update chunks: offset in the parameter buffer,
    Py_ssize_t *u_len          #   length,
    Py_ssize_t *u_layer        #   the layer l whose W_l it lies in, or 0 for biases and slopes,
    Py_ssize_t *u_task         #   and its task: thread tid of nt updates the chunks whose task % nt == tid
    Py_ssize_t n_chunks
    double *partial            # (n_chunks,) per-chunk sums, added up in chunk order
    double work_per_row        # multiply-adds of a forward and backward pass, per row


cdef struct Split:
    # A product's output split into k parts along its rows (rows=True) or its
    # columns. The direction copies the smaller operand once per part (BLAS
    # packs the operand that every part reads again in each call): for
    # Z = A @ W, rows when the batch is larger than fan_out, so that W
    # (fan_in x fan_out) is what is packed again, else A (batch x fan_in).
    # A hidden layer's forward product may instead be split along its inner
    # dimension (inner=True: part t is A[:, K_t] @ W[K_t, :], nothing packed
    # twice), its parts then added in order by a step of their own.
    bint rows
    bint inner
    Py_ssize_t k


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
    int n_threads              # the engine's threads (at most; _threads_for may use fewer)
    long long step             # Adam's t before this epoch
    uint64_t seed              # dropout masks
    bint loss_per_row          # the epoch's loss sum weighs each batch's mean loss by its rows (scikit-learn's
                               # report), not by its weight


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
    const Py_ssize_t *rows     # the batch's row numbers (shuffled), or NULL for row0, row0 + 1, ...
    Py_ssize_t row0
    bint gathered              # X (dense), Y and sw are to be gathered from the rows into the workspace
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
                    Py_ssize_t batch_size, bint training, bint dropout, bint dense_x=True) except -1:
    """Fill the parameter and workspace offset tables for batches of batch_size rows.

    training=False plans a forward pass only: A_l shares Z_l's memory and no
    deltas or targets are kept. dropout=False ignores keep. dense_x=False
    (CSR X, read through its row numbers) keeps no room for gathered rows of
    X: B x n_features elements a wide sparse X never uses (2^24 columns: 25 GiB
    at batch 200).
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, l, off = 0, widest = 0, B = batch_size, fan_in, fan_out
    p.n_layers = L
    p.sizes = &sizes[0]
    p.acts = &acts[0]
    p.keep = &keep[0] if keep is not None and keep.shape[0] > 0 else NULL
    p.batch_size = B
    cdef Py_ssize_t n_chunks = 0, start, length, end, t, r0, r1
    cdef Py_ssize_t load[MAX_PARTS]
    for l in range(1, L + 1):  # (a chunk boundary at each part's: MAX_PARTS - 1 more per layer at most)
        n_chunks += (sizes[l - 1] * sizes[l] + UPDATE_CHUNK - 1) // UPDATE_CHUNK + MAX_PARTS
    n_chunks += 1  # the PReLU slopes
    # one block: the offset tables, the chunk tables, the chunks' sums, the splits
    p.table = <Py_ssize_t *>malloc((8 * (L + 1) + 4 * n_chunks) * sizeof(Py_ssize_t) + n_chunks * sizeof(double)
                                   + 3 * (L + 1) * sizeof(Split))
    if p.table == NULL:
        raise MemoryError("fastmlp: cannot allocate the layer tables")
    p.partial = <double *>(p.table + 8 * (L + 1) + 4 * n_chunks)
    p.fwd = <Split *>(p.partial + n_chunks)
    p.wgt = p.fwd + (L + 1)
    p.bwd = p.wgt + (L + 1)
    p.u_off = p.table + 8 * (L + 1)
    p.u_len = p.u_off + n_chunks
    p.u_layer = p.u_len + n_chunks
    p.u_task = p.u_layer + n_chunks
    for t in range(MAX_PARTS):
        load[t] = 0
    p.w_off = p.table
    p.b_off = p.table + (L + 1)
    p.z_off = p.table + 2 * (L + 1)
    p.a_off = p.table + 3 * (L + 1)
    p.m_off = p.table + 4 * (L + 1)
    p.d_off = p.table + 5 * (L + 1)
    p.s_off = p.table + 6 * (L + 1)
    p.k_off = p.table + 7 * (L + 1)
    for l in range(L + 1):
        p.w_off[l] = p.b_off[l] = p.z_off[l] = p.a_off[l] = p.m_off[l] = p.d_off[l] = p.s_off[l] = p.k_off[l] = -1
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
    # The partition of the work, from the sizes alone (never from the thread count)
    p.work_per_row = 0
    p.n_chunks = 0
    for l in range(1, L + 1):
        fan_in = sizes[l - 1]
        fan_out = sizes[l]
        p.fwd[l].rows = B > fan_out
        p.fwd[l].k = _parts(B if p.fwd[l].rows else fan_out)
        # A hidden layer whose product would be split by units, and whose input is at least twice as wide:
        # split by the inner dimension instead. By units each part packs all of A_{l-1} (B x fan_in) again;
        # by the inner dimension nothing is packed twice, and the parts' sum (B x fan_out) costs less
        # (bench/PROFILE.md: a half of W1's first product at batch 32 takes 0.63 of the whole one by
        # units, 0.53 by the inner dimension, float32; 0.83 and 0.50 in float64)
        p.fwd[l].inner = (training and l < L and not p.fwd[l].rows and fan_in >= 2 * fan_out
                          and _parts(fan_in) > 1)
        if p.fwd[l].inner:
            p.fwd[l].k = _parts(fan_in)
        p.wgt[l].rows = fan_out < fan_in  # dW's rows are fan_in: delta is packed again, else A
        p.wgt[l].k = _parts(fan_in if p.wgt[l].rows else fan_out)
        # delta_{l-1} is (batch x fan_in); by rows only where no sum over rows follows (PReLU's slopes). By
        # rows W_l is packed again (fan_out x fan_in), by units delta_l (B x fan_out); where they are as large,
        # rows: each part's rows of delta_{l-1} one run of memory, Z_{l-1} and A_{l-1} read as the sum after an
        # inner split wrote them (W1's third layer at batch 128: 1.4 -> 0.85 ms an epoch per thread)
        p.bwd[l].rows = B >= fan_in and (l == 1 or acts[l - 2] != FM_PRELU)
        p.bwd[l].k = _parts(B if p.bwd[l].rows else fan_in)
        if not training:  # a forward pass over many rows shares its chunks of rows between threads instead
            p.fwd[l].k = 1
        p.work_per_row += 3.0 * fan_in * fan_out
        # The update's chunks of W_l: where dW_l is split by rows, the rows of weight-gradient part t are
        # chunks of task t, so that the thread that wrote dW_l's rows updates them (and reads those rows of
        # W_l in the next forward product, when it is split by the inner dimension): in its own caches
        for t in range(p.wgt[l].k if p.wgt[l].rows else 1):
            r0, r1 = 0, fan_in
            if p.wgt[l].rows:
                _part(fan_in, p.wgt[l].k, t, &r0, &r1)
            start = r0 * fan_out
            end = r1 * fan_out
            while start < end:
                length = min(<Py_ssize_t>UPDATE_CHUNK, end - start)
                _add_chunk(p, p.w_off[l] + start, length, l, t if p.wgt[l].rows else -1, load)
                start += length
        _add_chunk(p, p.b_off[l], sizes[l], 0, -1, load)
    if p.n_params > p.n_weights:
        _add_chunk(p, p.n_weights, p.n_params - p.n_weights, 0, -1, load)

    # (each array on a cache line of its own, where the workspace starts on one: see LINE_ELEMENTS)
    off = 0
    p.x_off = off
    off = _line_up(off + (B * sizes[0] if dense_x else 0))
    p.y_off = off
    if training:
        off = _line_up(off + B * sizes[L])
    p.sw_off = off
    if training:
        off = _line_up(off + B)
    for l in range(1, L + 1):
        widest = max(widest, sizes[l])
        p.z_off[l] = off
        off = _line_up(off + B * sizes[l])
        if p.fwd[l].inner:
            p.k_off[l] = off
            off = _line_up(off + (p.fwd[l].k - 1) * B * sizes[l])
        if l == L:
            continue
        if training:
            p.a_off[l] = off
            off = _line_up(off + B * sizes[l])
        else:
            p.a_off[l] = p.z_off[l]
        if dropout and p.keep != NULL and p.keep[l - 1] < 1.0:
            p.m_off[l] = off
            p.d_off[l] = _line_up(off + B * sizes[l])
            off = _line_up(p.d_off[l] + B * sizes[l])
    p.delta_off = off
    p.delta_prev_off = _line_up(off + B * widest)
    p.max_off = p.max_stride = -1
    if training:
        off = _line_up(p.delta_prev_off + B * widest)
        p.max_stride = 0
        for l in range(1, L):
            p.max_stride += sizes[l]
        p.max_stride = _line_up(p.max_stride)
        p.max_off = off
        off += MAX_PARTS * p.max_stride
    p.work_size = off
    return 0


# Elements in a cache line of float32 (two of float64): the workspace's arrays start at multiples of it, so that in a
# workspace that starts on a line (_validation.line_aligned_empty) two threads' parts of rows of a whole number of
# lines share none (a line written by both goes back and forth between their cores).
cdef enum:
    LINE_ELEMENTS = 16


cdef inline Py_ssize_t _line_up(Py_ssize_t n) noexcept nogil:
    return (n + LINE_ELEMENTS - 1) // LINE_ELEMENTS * LINE_ELEMENTS


cdef inline void _add_chunk(Plan *p, Py_ssize_t offset, Py_ssize_t length, Py_ssize_t layer, Py_ssize_t task,
                            Py_ssize_t *load) noexcept:
    """The next update chunk, of the task given, or (task -1) of the task with the fewest parameters so far
    (load: parameters per task)."""
    cdef Py_ssize_t t
    if task < 0:
        task = 0
        for t in range(1, MAX_PARTS):
            if load[t] < load[task]:
                task = t
    load[task] += length
    p.u_off[p.n_chunks] = offset
    p.u_len[p.n_chunks] = length
    p.u_layer[p.n_chunks] = layer
    p.u_task[p.n_chunks] = task
    p.n_chunks += 1


cdef inline void _plan_free(Plan *p) noexcept:
    free(p.table)
    p.table = NULL


cdef inline Py_ssize_t _parts(Py_ssize_t n) noexcept nogil:
    """Parts of a dimension of n rows or columns."""
    return min(<Py_ssize_t>MAX_PARTS, max(<Py_ssize_t>1, n // MIN_PART))


cdef inline void _part(Py_ssize_t n, Py_ssize_t k, Py_ssize_t t, Py_ssize_t *a0, Py_ssize_t *a1) noexcept nogil:
    """Part t of k of 0..n: nearly equal, inner boundaries on multiples of 8 (the vector width)."""
    a0[0] = (t * n // k) // 8 * 8 if t > 0 else 0
    a1[0] = ((t + 1) * n // k) // 8 * 8 if t + 1 < k else n
    if a1[0] < a0[0]:  # (n much below 8 k: never with the plan's k, but a short last batch)
        a1[0] = a0[0]


cdef inline void _range(const Split *split, Py_ssize_t n_rows, Py_ssize_t n_cols, Py_ssize_t t,
                        Py_ssize_t *r0, Py_ssize_t *r1, Py_ssize_t *c0, Py_ssize_t *c1) noexcept nogil:
    """Rows r0..r1 and columns c0..c1 of part t of an (n_rows, n_cols) output."""
    r0[0] = 0
    r1[0] = n_rows
    c0[0] = 0
    c1[0] = n_cols
    if split.rows:
        _part(n_rows, split.k, t, r0, r1)
    else:
        _part(n_cols, split.k, t, c0, c1)


cdef inline int _threads_for(const Plan *p, Py_ssize_t rows, int n_threads) noexcept nogil:
    """The threads worth using for a pass over this many rows: one when the work is too small
    (unless a test has switched the adaptation off)."""
    if n_threads > 1 and _adapt and p.work_per_row * rows < MIN_PARALLEL_WORK:
        return 1
    return n_threads


cdef inline const floating *_layer_input(const Plan *p, const floating *work, const Batch *batch,
                                         Py_ssize_t l, bint dropout) noexcept nogil:
    """A_{l-1} as layer l reads it: the batch's X for l = 1, D_{l-1} under dropout, else A_{l-1}."""
    if l == 1:
        return <const floating *>batch.X
    if dropout and p.d_off[l - 1] >= 0:
        return work + p.d_off[l - 1]
    return work + p.a_off[l - 1]


cdef inline bint _rows_split(const Plan *p, const Batch *batch, Py_ssize_t l) noexcept nogil:
    """Whether layer l's forward parts each hold only some of the batch's rows."""
    return p.fwd[l].rows and p.fwd[l].k > 1 and not (l == 1 and batch.X == NULL)


cdef inline floating *_part_maxima(const Plan *p, floating *unit_max, Py_ssize_t t) noexcept nogil:
    """Part t's row of a layer's running maxima (unit_max: that layer's units in part 0's row), or NULL."""
    return unit_max + t * p.max_stride if unit_max != NULL else NULL


cdef void _forward_part(const Plan *p, const floating *params, floating *work, const Batch *batch,
                        Py_ssize_t l, Py_ssize_t t, bint dropout, floating *Z_out,
                        floating *unit_max) noexcept nogil:
    """Part t of layer l: Z_l = A_{l-1} @ W_l, then (hidden layers) Z_l += b_l, A_l = f(Z_l).

    The output layer's Z_L goes to Z_out, without its bias. unit_max (or NULL):
    layer l's units in the parts' rows of running maxima (Plan.max_off); part t
    updates row t.
    """
    cdef Py_ssize_t L = p.n_layers, fan_in = p.sizes[l - 1], fan_out = p.sizes[l], B = batch.n_rows
    cdef Py_ssize_t r0, r1, c0, c1, r, i, rows
    cdef const floating *A_in = _layer_input(p, work, batch, l, dropout)
    cdef floating *Z = Z_out if l == L else work + p.z_off[l]
    if A_in == NULL:  # CSR input, first layer: one part, over the nonzeros
        if t > 0:
            return
        r0 = 0
        r1 = B
        c0 = 0
        c1 = fan_out
        _csr_matmul(B, fan_out, batch.rows, batch.row0, batch.csr.indptr, batch.csr.indices,
                    <const floating *>batch.csr.data, params + p.w_off[l], Z)
    elif _inner_split(p, batch, l):
        # part t of the inner dimension: A_{l-1}[:, k0:k1] @ W_l[k0:k1, :], to Z_l (t = 0) or a buffer of its own;
        # the parts are added, and the bias and activation applied, by _inner_sum
        _part(fan_in, p.fwd[l].k, t, &r0, &r1)
        _gemm(c'N', c'N', <int>B, <int>fan_out, <int>(r1 - r0), <floating>1, A_in + r0, <int>fan_in,
              params + p.w_off[l] + r0 * fan_out, <int>fan_out, <floating>0,
              Z if t == 0 else work + p.k_off[l] + (t - 1) * B * fan_out, <int>fan_out)
        return
    else:
        _range(&p.fwd[l], B, fan_out, t, &r0, &r1, &c0, &c1)
        if r1 <= r0 or c1 <= c0:
            return
        # Z_l = A_{l-1} @ W_l
        _gemm(c'N', c'N', <int>(r1 - r0), <int>(c1 - c0), <int>fan_in, <floating>1, A_in + r0 * fan_in,
              <int>fan_in, params + p.w_off[l] + c0, <int>fan_out, <floating>0, Z + r0 * fan_out + c0,
              <int>fan_out)
    if l == L:
        return
    _bias_act_part(p, params, work, l, B, r0, r1, c0, c1, _part_maxima(p, unit_max, t))


cdef inline bint _inner_split(const Plan *p, const Batch *batch, Py_ssize_t l) noexcept nogil:
    """Whether layer l's forward parts split the inner dimension (a CSR X's first layer: one part)."""
    return p.fwd[l].inner and not (l == 1 and batch.X == NULL)


cdef inline void _bias_act_part(const Plan *p, const floating *params, floating *work, Py_ssize_t l, Py_ssize_t B,
                                Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                                floating *unit_max) noexcept nogil:
    """Z_l += b_l; A_l = f(Z_l) (and the units' running maxima, unless NULL), over rows r0..r1 and columns
    c0..c1 of hidden layer l, in one call."""
    cdef Py_ssize_t fan_out = p.sizes[l], i = r0 * fan_out + c0
    cdef floating *Z = work + p.z_off[l]
    cdef floating *A = work + p.a_off[l]
    if unit_max != NULL:
        unit_max += c0
    if p.s_off[l] >= 0:
        _prelu_forward(r1 - r0, c1 - c0, fan_out, params + p.b_off[l] + c0, params + p.s_off[l] + c0, Z + i, A + i,
                       unit_max)
    else:
        _bias_act_forward(p.acts[l - 1], r1 - r0, c1 - c0, fan_out, params + p.b_off[l] + c0, Z + i, A + i,
                          unit_max)


cdef void _inner_sum(const Plan *p, const floating *params, floating *work, const Batch *batch, Py_ssize_t l,
                     Py_ssize_t t, floating *unit_max) noexcept nogil:
    """Part t (of the rows) of the step after an inner split of layer l: Z_l = the parts' products added
    in order, then its bias and activation (_bias_act_part; unit_max as in _forward_part).

    By rows, each part's rows one run of memory: by units (halves of each row), two threads' sums of W1's
    first layer at batch 128 took 2.8 ms an epoch each against 1.2 on one thread, by rows 0.8
    (bench/PROFILE.md, section 17)."""
    cdef Py_ssize_t B = batch.n_rows, fan_out = p.sizes[l], r0, r1, j, i
    cdef floating *Z = work + p.z_off[l]
    cdef const floating *part
    _part(B, p.fwd[l].k, t, &r0, &r1)
    if r1 <= r0:
        return
    for j in range(1, p.fwd[l].k):
        part = work + p.k_off[l] + (j - 1) * B * fan_out
        for i in range(r0 * fan_out, r1 * fan_out):
            Z[i] += part[i]
    _bias_act_part(p, params, work, l, B, r0, r1, 0, fan_out, _part_maxima(p, unit_max, t))


cdef inline bint _drops(const Plan *p, Py_ssize_t l, bint dropout) noexcept nogil:
    """Whether hidden layer l draws dropout masks in this pass."""
    return dropout and p.m_off[l] >= 0


cdef void _drop_layer(const Plan *p, floating *work, const Batch *batch, Py_ssize_t l, fm_rng *rng) noexcept nogil:
    """D_l = A_l * M_l, M_l in {0, 1/keep}: one task, so that the masks are the PRNG's sequence."""
    _dropout(batch.n_rows * p.sizes[l], <floating>p.keep[l - 1], rng, work + p.a_off[l], work + p.m_off[l],
             work + p.d_off[l])


cdef void _forward_hidden(const Plan *p, const floating *params, floating *work, const Batch *batch,
                          bint dropout, fm_rng *rng, floating *Z_out) noexcept nogil:
    """Forward through the hidden layers on the calling thread; writes Z_L - b_L (the output's
    product) to Z_out. (A batch of training runs its parts in _batch_tasks.)"""
    cdef Py_ssize_t l, t
    for l in range(1, p.n_layers + 1):
        for t in range(p.fwd[l].k):
            _forward_part(p, params, work, batch, l, t, dropout, Z_out, NULL)
        if _inner_split(p, batch, l):
            for t in range(p.fwd[l].k):
                _inner_sum(p, params, work, batch, l, t, NULL)
        if l < p.n_layers and _drops(p, l, dropout):
            _drop_layer(p, work, batch, l, rng)


cdef void _backward_task(const Plan *p, const floating *params, floating *grads, floating *work,
                         const Batch *batch, Py_ssize_t l, Py_ssize_t t, bint dropout, bint accumulate,
                         const floating *delta, floating *delta_prev) noexcept nogil:
    """Task t of layer l's backward step.

    t < wgt[l].k: part t of dW_l = A_{l-1}^T @ delta_l (and of db_l, or all of
    it in part 0 when dW_l is split by rows); after them, part t - wgt[l].k of
    delta_{l-1} = (delta_l @ W_l^T) * M_{l-1} * f'(Z_{l-1}) (and of the PReLU
    slopes' gradient). The tasks write disjoint memory and read only what the
    step before wrote.
    """
    cdef Py_ssize_t fan_in = p.sizes[l - 1], fan_out = p.sizes[l], B = batch.n_rows, r0, r1, c0, c1, r, i, rows
    cdef const floating *A_in
    cdef floating beta = 1 if accumulate else 0
    if t < p.wgt[l].k:
        A_in = _layer_input(p, work, batch, l, dropout)
        if A_in == NULL:  # CSR input, first layer: one task
            if t == 0:
                _csr_tmatmul(B, fan_in, fan_out, accumulate, batch.rows, batch.row0, batch.csr.indptr,
                             batch.csr.indices, <const floating *>batch.csr.data, delta, grads + p.w_off[l])
                _col_sum(B, fan_out, accumulate, delta, grads + p.b_off[l])
            return
        _range(&p.wgt[l], fan_in, fan_out, t, &r0, &r1, &c0, &c1)
        if r1 > r0 and c1 > c0:
            # dW_l = A_{l-1}^T @ delta_l  (the batch's outer products as one GEMM)
            _gemm(c'T', c'N', <int>(r1 - r0), <int>(c1 - c0), <int>B, <floating>1, A_in + r0, <int>fan_in,
                  delta + c0, <int>fan_out, beta, grads + p.w_off[l] + r0 * fan_out + c0, <int>fan_out)
        # db_l = sum over rows of delta_l
        if p.wgt[l].rows:
            if t == 0:
                _col_sum(B, fan_out, accumulate, delta, grads + p.b_off[l])
        else:
            _col_sum(B, c1 - c0, accumulate, delta + c0, grads + p.b_off[l] + c0, fan_out)
        return
    _range(&p.bwd[l], B, fan_in, t - p.wgt[l].k, &r0, &r1, &c0, &c1)
    if r1 <= r0 or c1 <= c0:
        return
    # delta_{l-1} = delta_l @ W_l^T (units c0..c1 of layer l - 1 are rows c0..c1 of W_l)
    _gemm(c'N', c'T', <int>(r1 - r0), <int>(c1 - c0), <int>fan_out, <floating>1, delta + r0 * fan_out,
          <int>fan_out, params + p.w_off[l] + c0 * fan_out, <int>fan_out, <floating>0,
          delta_prev + r0 * fan_in + c0, <int>fan_in)
    # * M_{l-1} (at once over whole rows, else row by row) * f'(Z_{l-1}) (one call over the part)
    i = r0 * fan_in + c0
    if dropout and p.m_off[l - 1] >= 0:
        r = r0
        while r < r1:
            rows = r1 - r if c1 - c0 == fan_in else 1
            _mul(rows * (c1 - c0), work + p.m_off[l - 1] + r * fan_in + c0, delta_prev + r * fan_in + c0)
            r += rows
    if p.s_off[l - 1] >= 0:
        # and the slopes' gradient, sum over rows of dL/dA_{l-1} * min(Z_{l-1}, 0) (never split by rows)
        _prelu_backward(r1 - r0, c1 - c0, fan_in, accumulate, work + p.z_off[l - 1] + i,
                        params + p.s_off[l - 1] + c0, delta_prev + i, grads + p.s_off[l - 1] + c0)
    else:
        _act_backward(p.acts[l - 2], r1 - r0, c1 - c0, fan_in, work + p.z_off[l - 1] + i,
                      work + p.a_off[l - 1] + i, delta_prev + i)


cdef struct Step:
    # What one batch's threads share besides the plan and the buffers: the
    # batch's settings, and what its steps on one thread hand to the steps
    # after them (written by one thread between two barriers).
    double scale                 # multiplies each row's delta_L: 1 / the weight the mean is over
    bint dropout
    bint accumulate              # add the gradients to grads (loss_and_gradients' chunks after the first)
    long long step               # Adam's t, incremented by the batch's update
    double loss_part[MAX_PARTS]  # the output step's loss sum, per part of the rows
    double loss                  # the batch's mean loss plus its L2 term
    double step_size             # Adam's step size for this update
    double clip                  # the gradients' scale factor (1: no clipping)
    bint finite


cdef inline void _sync(int nt) noexcept nogil:
    """The barrier between two steps of a batch, when it runs on several threads (nt = 1: none, so
    that a batch on the calling thread never waits for a team it is not part of)."""
    if nt > 1:
        fm_barrier()


cdef inline floating *_delta(const Plan *p, floating *work, Py_ssize_t l) noexcept nogil:
    """delta_l's buffer: the deltas of consecutive layers alternate between two."""
    return work + (p.delta_off if (p.n_layers - l) % 2 == 0 else p.delta_prev_off)


cdef void _gather_part(const Plan *p, const Data *d, const Batch *batch, floating *work, Py_ssize_t t,
                       Py_ssize_t k) noexcept nogil:
    """Part t of k of the batch's rows: its rows of X (dense), Y and the weights, gathered into the workspace."""
    cdef Py_ssize_t r0, r1, i, n_out = p.sizes[p.n_layers]
    _part(batch.n_rows, k, t, &r0, &r1)
    if d.X != NULL:
        _gather_rows(r1 - r0, d.n_in, batch.rows + r0, <const floating *>d.X, work + p.x_off + r0 * d.n_in)
    _gather_rows(r1 - r0, n_out, batch.rows + r0, <const floating *>d.Y, work + p.y_off + r0 * n_out)
    if d.sw != NULL:
        for i in range(r0, r1):
            work[p.sw_off + i] = (<const floating *>d.sw)[batch.rows[i]]


cdef void _output_part(const Plan *p, const floating *params, floating *work, const Batch *batch,
                       Py_ssize_t t, Py_ssize_t k, floating scale, double *loss) noexcept nogil:
    """Part t of k of the output step's rows: P = g(Z_L + b_L), each row's loss (summed into *loss), and
    delta_L = w scale dloss/dZ_L (P - Y for the log-likelihood pairs)."""
    cdef Py_ssize_t r0, r1, L = p.n_layers, n_out = p.sizes[L]
    _part(batch.n_rows, k, t, &r0, &r1)
    loss[0] = 0
    if r1 > r0:
        _output_delta(p.loss, r1 - r0, n_out, scale, p.loss_param, params + p.b_off[L],
                      <const floating *>batch.Y + r0 * n_out,
                      <const floating *>batch.sw + r0 if batch.sw != NULL else NULL,
                      work + p.z_off[L] + r0 * n_out, _delta(p, work, L) + r0 * n_out, loss)


cdef inline double _loss_sum(const Step *st, const Batch *batch) noexcept nogil:
    """The output step's loss sum over the batch, its parts added in order (whatever the threads)."""
    cdef Py_ssize_t t
    cdef double total = 0
    for t in range(_parts(batch.n_rows)):
        total += st.loss_part[t]
    return total


cdef void _batch_tasks(const Plan *p, const Settings *s, const Data *d, const Batch *batch,
                       floating *params, floating *grads, floating *state_1, floating *state_2, floating *work,
                       fm_rng *rng, floating *unit_max, double *grad_norm_sums, Step *st,
                       int tid, int nt) noexcept nogil:
    """Thread tid's share of one batch (of nt threads, in one parallel region; nt = 1: all of it).

    Gather, forward, output, backward and (state_1 given) the step on one
    thread that sums the loss and finds the clipping factor, and the update.
    The L2 term (alpha > 0): without clipping, its squared norms beside the
    output step and its gradient inside the update; with clipping (whose norm
    includes it), a step of its own after the backward pass. Each step is
    split into tasks fixed by the plan (never by nt); thread tid runs tasks
    tid, tid + nt, ... (of the chunks of L2 and the update, those whose task
    is tid modulo nt: the plan gives the rows that weight-gradient part t
    writes to task t, Plan.u_task); the tasks of a step write disjoint
    memory and a barrier separates the steps. So every bit of the result is the same for any nt.
    Writes the gradient of st.scale * sum_rows (weight *) loss to grads (adds
    it, st.accumulate), and the loss sum per row part to st. unit_max: the
    parts' rows of the units' running maxima (Plan.max_off, _merge_maxima), or
    NULL.
    """
    cdef Py_ssize_t l, t, k, L = p.n_layers, B = batch.n_rows
    cdef floating *unit = unit_max
    cdef bint fold_l2
    if batch.gathered:
        k = _gather_parts(B)
        for t in range(k):
            if t % nt == tid:
                _gather_part(p, d, batch, work, t, k)
        _sync(nt)
    for l in range(1, L + 1):
        for t in range(p.fwd[l].k):
            if t % nt == tid:
                _forward_part(p, params, work, batch, l, t, st.dropout, work + p.z_off[L], unit)
        _sync(nt)
        if _inner_split(p, batch, l):
            for t in range(p.fwd[l].k):
                if t % nt == tid:
                    _inner_sum(p, params, work, batch, l, t, unit)
            _sync(nt)
        if l < L:
            if _drops(p, l, st.dropout):
                if tid == 0:
                    _drop_layer(p, work, batch, l, rng)
                _sync(nt)
            if unit != NULL:
                unit += p.sizes[l]
    # Without clipping (which needs the norm of every gradient with its L2 term first), the L2 term's
    # gradient alpha/n W joins each gradient inside the update, one pass over W and dW fewer: its norms
    # ||W_l||^2, for the loss, are taken here, beside the output step
    fold_l2 = state_1 != NULL and s.alpha > 0 and s.clip_norm <= 0
    k = _parts(B)
    for t in range(k):
        if t % nt == tid:
            _output_part(p, params, work, batch, t, k, <floating>st.scale, &st.loss_part[t])
    if fold_l2:
        for t in range(p.n_chunks):
            if p.u_task[t] % nt == tid:
                _l2_squares(p, params, t)
    _sync(nt)
    for l in range(L, 0, -1):
        k = p.wgt[l].k + (p.bwd[l].k if l > 1 else 0)
        for t in range(k):
            if t % nt == tid:
                _backward_task(p, params, grads, work, batch, l, t, st.dropout, st.accumulate, _delta(p, work, l),
                               _delta(p, work, l - 1))
        _sync(nt)
    if state_1 == NULL:
        return
    if s.alpha > 0 and not fold_l2:
        for t in range(p.n_chunks):
            if p.u_task[t] % nt == tid:
                _l2_chunk(p, params, grads, s.alpha, batch.weight, t)
        _sync(nt)
    if tid == 0:
        _close_batch(p, s, batch, grads, grad_norm_sums, st)
    _sync(nt)
    if st.finite:
        for t in range(p.n_chunks):
            if p.u_task[t] % nt == tid:
                _update_chunk(p, s, st.step_size, st.clip, s.alpha / batch.weight if fold_l2 else 0, params,
                              grads, state_1, state_2, t)


cdef void _close_batch(const Plan *p, const Settings *s, const Batch *batch, floating *grads,
                       double *grad_norm_sums, Step *st) noexcept nogil:
    """The batch's loss (mean + L2), whether it is finite, Adam's step size and the clipping factor."""
    cdef Py_ssize_t l, c
    cdef double squares = 0, total = 0, largest = 0, norm
    st.loss = _loss_sum(st, batch) / batch.weight
    if s.alpha > 0:
        for c in range(p.n_chunks):  # in chunk order, whatever the threads
            squares += p.partial[c]
        st.loss += 0.5 * s.alpha * squares / batch.weight
    st.finite = isfinite(st.loss)
    if not st.finite:
        return
    if s.optimizer == FM_ADAM:
        st.step += 1
        st.step_size = s.learning_rate * sqrt(1 - pow(s.beta_2, st.step)) / (1 - pow(s.beta_1, st.step))
    st.clip = 1
    if s.clip_norm > 0:
        # per-layer ||dW_l||, and the global norm of all gradients, before the update;
        # norms from BLAS nrm2 and combined with scaling, so that no square overflows
        for l in range(1, p.n_layers + 1):
            norm = _nrm2(<int>(p.sizes[l - 1] * p.sizes[l]), grads + p.w_off[l])
            grad_norm_sums[l - 1] += norm
            total = _scaled_sum_sq(total, &largest, norm)
            total = _scaled_sum_sq(total, &largest, _nrm2(<int>p.sizes[l], grads + p.b_off[l]))
        if p.n_params > p.n_weights:  # the PReLU slopes
            total = _scaled_sum_sq(total, &largest, _nrm2(<int>(p.n_params - p.n_weights), grads + p.n_weights))
        norm = largest * sqrt(total)
        if norm > s.clip_norm:
            st.clip = s.clip_norm / norm


cdef inline Py_ssize_t _gather_parts(Py_ssize_t B) noexcept nogil:
    """The tasks of a gather of B rows."""
    return min(<Py_ssize_t>GATHER_PARTS, max(<Py_ssize_t>1, B // GATHER_ROWS))


cdef int _batch_threads_of(const Plan *p, Py_ssize_t B, int n_threads) noexcept nogil:
    """n_threads, at most the most tasks of any step of a batch of B rows (_batch_tasks): the most threads it
    can keep busy. A thread beyond them would only wait at every barrier (on a machine of eight cores, six of
    eight threads)."""
    cdef Py_ssize_t l, most = max(<Py_ssize_t>MAX_PARTS, _gather_parts(B))  # (the update's chunk tasks: MAX_PARTS)
    for l in range(1, p.n_layers + 1):
        most = max(most, p.fwd[l].k, p.wgt[l].k + (p.bwd[l].k if l > 1 else 0))
    return <int>min(<Py_ssize_t>n_threads, most)


cdef void _run_batch(const Plan *p, const Settings *s, const Data *d, const Batch *batch,
                     floating *params, floating *grads, floating *state_1, floating *state_2, floating *work,
                     fm_rng *rng, floating *unit_max, double *grad_norm_sums, Step *st,
                     int n_threads) noexcept nogil:
    """_batch_tasks on the calling thread, or on n_threads threads (at most as many as its steps have tasks,
    _batch_threads_of: the tasks are the same whatever the count) in one parallel region (each thread flushing
    subnormals as the calling thread does: the callers set it, fm_flush_subnormals)."""
    n_threads = _batch_threads_of(p, batch.n_rows, n_threads)
    if n_threads <= 1:
        _batch_tasks(p, s, d, batch, params, grads, state_1, state_2, work, rng, unit_max, grad_norm_sums, st, 0, 1)
        return
    with parallel(num_threads=n_threads):
        _batch_tasks_flushing(p, s, d, batch, params, grads, state_1, state_2, work, rng, unit_max, grad_norm_sums,
                              st, omp_get_thread_num(), omp_get_num_threads())


cdef void _batch_tasks_flushing(const Plan *p, const Settings *s, const Data *d, const Batch *batch,
                                floating *params, floating *grads, floating *state_1, floating *state_2,
                                floating *work, fm_rng *rng, floating *unit_max, double *grad_norm_sums, Step *st,
                                int tid, int nt) noexcept nogil:
    """_batch_tasks with subnormals flushed on this thread, its mode given back after (a thread of the
    OpenMP pool, which other libraries' code shares)."""
    cdef fm_fp_mode mode = fm_flush_subnormals()
    _batch_tasks(p, s, d, batch, params, grads, state_1, state_2, work, rng, unit_max, grad_norm_sums, st, tid, nt)
    fm_fp_restore(mode)


cdef void _batch_at(const Data *d, Py_ssize_t start, Py_ssize_t b, const Py_ssize_t *order,
                    const Plan *p, floating *work, Batch *batch) noexcept nogil:
    """Rows start..start+b of the data (through order, when given) as a batch, and its weight.

    Dense shuffled rows, targets and weights are to be gathered into the
    workspace (the batch's first step, batch.gathered); unshuffled ones are
    used in place; CSR rows are read through their numbers.
    """
    cdef Py_ssize_t i, n_out = p.sizes[p.n_layers]
    cdef const floating *sw = <const floating *>d.sw
    batch.n_rows = b
    batch.csr = d
    batch.rows = &order[start] if order != NULL else NULL
    batch.row0 = start
    batch.gathered = order != NULL
    if order != NULL:
        batch.X = work + p.x_off if d.X != NULL else NULL
        batch.Y = work + p.y_off
        batch.sw = work + p.sw_off if d.sw != NULL else NULL
    else:
        batch.X = <const floating *>d.X + start * d.n_in if d.X != NULL else NULL
        batch.Y = <const floating *>d.Y + start * n_out
        batch.sw = sw + start if d.sw != NULL else NULL
    batch.weight = b
    if d.sw != NULL:
        batch.weight = 0
        for i in range(b):
            batch.weight += sw[order[start + i] if order != NULL else start + i]


cdef inline void _l2_squares(const Plan *p, const floating *params, Py_ssize_t c) noexcept nogil:
    """partial[c] = ||W||^2 over chunk c (0 unless it lies in a W_l)."""
    cdef Py_ssize_t off = p.u_off[c]
    p.partial[c] = _dot(<int>p.u_len[c], params + off, params + off) if p.u_layer[c] > 0 else 0


cdef void _l2_chunk(const Plan *p, const floating *params, floating *grads, double alpha, double n,
                    Py_ssize_t c) noexcept nogil:
    """Chunk c of the L2 term: dW += alpha/n * W; partial[c] = ||W||^2 over the chunk (weights only)."""
    cdef Py_ssize_t off = p.u_off[c]
    _l2_squares(p, params, c)
    if p.u_layer[c] > 0:
        _axpy(<int>p.u_len[c], <floating>(alpha / n), params + off, grads + off)


cdef double _l2(const Plan *p, const floating *params, floating *grads, double alpha,
                double n, int n_threads) noexcept nogil:
    """Adds alpha/n * W_l to every dW_l and returns the penalty alpha/(2n) sum ||W_l||^2."""
    cdef Py_ssize_t c
    cdef double squares = 0
    cdef fm_fp_mode mode
    if n_threads > 1:
        for c in prange(p.n_chunks, num_threads=n_threads, schedule="static"):
            mode = fm_flush_subnormals()  # (as the calling thread: loss_and_gradients; given back after)
            _l2_chunk(p, params, grads, alpha, n, c)
            fm_fp_restore(mode)
    else:
        for c in range(p.n_chunks):
            _l2_chunk(p, params, grads, alpha, n, c)
    for c in range(p.n_chunks):  # in chunk order, whatever the threads
        squares += p.partial[c]
    return 0.5 * alpha * squares / n


cdef void _update_chunk(const Plan *p, const Settings *s, double step_size, double clip, double l2,
                        floating *params, floating *grads, floating *state_1, floating *state_2,
                        Py_ssize_t c) noexcept nogil:
    """The optimizer step on chunk c (its gradient scaled by clip first, unless 1; l2 > 0: the L2 term's
    l2 W added to it there, when the chunk lies in a W_l); partial[c] = the sum of its squared gradients
    when the chunk lies in a W_l, else 0."""
    cdef Py_ssize_t off = p.u_off[c]
    p.partial[c] = 0
    if clip != 1:
        _scal(<int>p.u_len[c], <floating>clip, grads + off)
    _update(s, step_size, off, p.u_len[c], params, grads, state_1, state_2,
            &p.partial[c] if p.u_layer[c] > 0 else NULL, <floating>l2 if p.u_layer[c] > 0 else 0)


cdef inline void _update(const Settings *s, double step_size, Py_ssize_t offset, Py_ssize_t n, floating *params,
                         const floating *grads, floating *state_1, floating *state_2,
                         double *grad_sumsq, floating l2) noexcept nogil:
    """The optimizer step on params[offset:offset + n] with the gradient grads + l2 params; adds the sum of
    its squares to *grad_sumsq unless NULL."""
    if s.optimizer == FM_ADAM:
        _adam_update(n, <floating>step_size, s.beta_1, s.beta_2, <floating>s.epsilon, l2,
                     grads + offset, state_1 + offset, state_2 + offset, params + offset, grad_sumsq)
    else:
        _sgd_update(n, <floating>s.learning_rate, <floating>s.momentum, s.nesterov, l2, grads + offset,
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
    s.n_threads = d.get("n_threads", 1)
    s.loss_per_row = d.get("loss_per_row", False)
    return s


cdef enum:
    PROBE_RUN = 3  # batches in a row that measure one choice


cdef struct ThreadClock:
    # The choice between n threads and one, made batch by batch from how long
    # batches take: on a machine where another process keeps a core busy, a
    # thread of ours waits for that core at every barrier, and one thread is
    # faster. Either choice gives the same bits. Kept across epochs and fits
    # in a double[8] of the network: seconds per row with n threads and with
    # one (-1: not yet measured); the clock's time at which the other choice is
    # measured again (during a run: the time it began); the batches left in
    # the current measuring run (> 0: n threads, < 0: one); batches run on more
    # than one thread; the run's mean seconds per row so far; the clock's time:
    # the seconds of the batches it timed (of this network's training, not the
    # wall's, so that measuring costs a share of the training however the
    # caller spaces its fits); the measuring runs in a row cut short after their
    # first batch (see _clock_record; a new clock starts at 1 when a run of
    # another clock of the process was cut moments ago: new_thread_clock; -1
    # for the moment after a run on the threads won clearly after cut ones).
    double *per_row            # [0]: n threads, [1]: one
    double *next_probe
    double *run
    double *run_mean
    double *elapsed
    double *cut_runs


cdef inline void _clock_view(ThreadClock *clock, double *values) noexcept nogil:
    """clock over a double[8] from new_thread_clock."""
    clock.per_row = &values[0]
    clock.next_probe = &values[2]
    clock.run = &values[3]
    clock.run_mean = &values[5]
    clock.elapsed = &values[6]
    clock.cut_runs = &values[7]


cdef inline int _clock_choice(ThreadClock *clock) noexcept nogil:
    """0 (n threads) or 1 (one thread) for the next batch; starts a measuring run when one is due."""
    if clock.run[0] == 0:
        if clock.per_row[1] < 0:  # one thread first: it needs no threads woken
            clock.run[0] = -PROBE_RUN
        elif clock.per_row[0] < 0:
            if clock.elapsed[0] < clock.next_probe[0]:  # (not yet: a run was cut moments ago, see below)
                return 1
            clock.run[0] = PROBE_RUN
        elif clock.elapsed[0] >= clock.next_probe[0]:  # has the other become faster?
            clock.run[0] = PROBE_RUN if clock.per_row[0] > clock.per_row[1] else -PROBE_RUN
        else:
            return 0 if clock.per_row[0] <= clock.per_row[1] else 1
        clock.next_probe[0] = clock.elapsed[0]  # (the run's start, until it ends)
    return 0 if clock.run[0] > 0 else 1


# Whether a run of another clock of the process was cut in the last CUT_CONFIRM_SECONDS, as of the start of the
# epoch under way (set with the GIL held: _note_cut_recency): then a clock's first cut run is a busy core's, not
# a passing moment's, and waits as long as a cut that confirms another.
cdef bint _cut_recently = False


cdef inline void _clock_record(ThreadClock *clock, int choice, double seconds, Py_ssize_t rows) noexcept nogil:
    """A batch of `rows` rows took `seconds` with `choice`."""
    cdef double per_row = seconds / rows, other, done, cost
    cdef bint first, last
    cdef int cut
    clock.elapsed[0] += seconds
    if clock.run[0] == 0:
        # a moving average in which one slow batch counts as at most eight times the average: a single
        # hiccup (an interrupt, a page fault) moves it a little, and batches that now and then wait a
        # scheduler's time slice for a busy core (100 ms, one in a hundred) count for what they cost
        # (capped at twice the average, they kept a fit on the threads at 1.3 times one thread's time)
        clock.per_row[choice] = 0.9 * clock.per_row[choice] + 0.1 * min(per_row, 8 * clock.per_row[choice])
        if clock.per_row[choice] > clock.per_row[1 - choice] >= 0:
            # the choice changes on the strength of the other's old figure: measure it again soon (a slow
            # spell of the machine is not to send a fit to one thread for as long as cut runs wait)
            clock.next_probe[0] = min(clock.next_probe[0], clock.elapsed[0] + 4 * PROBE_RUN * seconds)
            clock.cut_runs[0] = 0
        return
    # a measuring run: its first batch wakes the threads and warms the caches, so the mean of the others
    # counts (not their best: the other choice's figure is a mean over batches too)
    first = clock.run[0] == PROBE_RUN or clock.run[0] == -PROBE_RUN
    done = PROBE_RUN - abs(clock.run[0])  # the run's batches after its first, this one included
    clock.run_mean[0] = per_row if first else (clock.run_mean[0] * (done - 1) + per_row) / done
    clock.run[0] += -1 if clock.run[0] > 0 else 1
    other = clock.per_row[1 - choice]
    # a run whose first batch took over four times the other choice's, and a millisecond more, ends there
    last = clock.run[0] == 0 or (first and other >= 0 and per_row > 4 * other and (per_row - other) * rows > 1e-3)
    if not last:
        return
    clock.run[0] = 0
    # the run's figure, half and half with what this choice measured before: a run of a few batches
    # rarely meets the slow batches that an average over many has counted (alone, the run's figure sent a
    # fit back to the threads after every such batch)
    # (not after cut runs: the figure they left is one batch that waited for a thread, not an average)
    if clock.per_row[choice] < 0 or (clock.cut_runs[0] > 0 and done > 0):
        clock.per_row[choice] = clock.run_mean[0]
    else:
        clock.per_row[choice] = 0.5 * (clock.per_row[choice] + clock.run_mean[0])
    cost = clock.elapsed[0] - clock.next_probe[0]
    if other < 0:
        # the other choice next, at once; or, when this clock starts with a cut run counted (another of the
        # process's clocks had one moments ago: new_thread_clock), after the wait of a cut run, 100 times
        # this one's seconds
        clock.next_probe[0] = clock.elapsed[0] + (100 * cost if clock.cut_runs[0] > 0 else 0)
        return
    # the next run after 20 times this one's seconds when it won, 50 times when it lost (at most 2% of the
    # training); a run cut short after its first batch (a thread woken on a busy core: tens of
    # milliseconds, and about half as much again in the batches after it, which its seconds do not count)
    # after 10 times when no run was cut before it (100 times when another clock's was, moments ago:
    # _cut_recently), then 200 and 400 times, so that on a machine that stays busy the wake is paid ever
    # more rarely. The first cut is tried again soon: a moment's wait is common
    # on a quiet machine too (NumPy's BLAS threads spin for a while after a product, on the cores the
    # engine's threads wake on: a W1 fit right after one took 45 ms for its first batch on the threads, where
    # one thread takes 1.2, and waited 100 times that, 4.5 s of training, before it tried them again). (Not other runs
    # that lost: on a quiet but noisy machine such a loss is often a slow moment, and waiting long after it
    # kept a fit on one thread for seconds.)
    if clock.per_row[choice] <= other:
        clock.next_probe[0] = clock.elapsed[0] + 20 * cost
        # the threads won clearly after cut runs: what cut them has passed (-1 tells train_epoch, which
        # forgets the process's recent cut, note_cut_runs; on a busy core they are no faster than one thread)
        clock.cut_runs[0] = -1 if clock.cut_runs[0] > 0 and choice == 0 and 4 * clock.run_mean[0] < 3 * other else 0
    elif done == 0:  # cut short after its first batch
        cut = <int>max(clock.cut_runs[0], 0)
        clock.next_probe[0] = clock.elapsed[0] + (10 if cut == 0 and not _cut_recently
                                                  else 100 * (1 << min(cut, 2))) * cost
        clock.cut_runs[0] = cut + 1
    else:
        clock.next_probe[0] = clock.elapsed[0] + 50 * cost
        clock.cut_runs[0] = 0


# When a measuring run of this process's clocks was last cut after its first batch (time.monotonic(); set by
# train_epoch with the GIL held, read by new_thread_clock). A new clock within _cut_hint_seconds of it starts as
# if a run of its own had been cut: on a machine where another process keeps a core busy, a new network (each
# fit of a grid search, a fresh estimator) would otherwise pay the wake of a thread on that core (40-70 ms
# here) in its first run on the threads, more than a short fit gains from them. The hint lasts CUT_HINT_SECONDS
# after a cut that confirms another (within CUT_CONFIRM_SECONDS of the one before, or a clock's second in a
# row: a machine that stays busy), FIRST_CUT_HINT_SECONDS after one alone: a quiet machine has such a cut too,
# right after a NumPy product (PROFILE.md section 20), and ten seconds of new fits on one thread after it would
# cost a grid search of short fits what the threads give them.
_last_cut_run = -1e300
_cut_hint_seconds = 0.0
CUT_HINT_SECONDS = 10.0
FIRST_CUT_HINT_SECONDS = 1.0
CUT_CONFIRM_SECONDS = 30.0


def new_thread_clock():
    """A ThreadClock's double[8] before anything is measured (its count of cut runs 1 when a run of this
    process was cut moments ago, see _cut_hint_seconds: then it waits before its first run on the threads)."""
    clock = np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    if monotonic() - _last_cut_run < _cut_hint_seconds:
        clock[7] = 1
    return clock


cdef double *_clock_values(double[::1] thread_clock, bint optional=False) except? NULL:
    """A clock's values (a double[8] from new_thread_clock or new_forward_clock), checked; NULL for None
    where the clock is optional."""
    if thread_clock is None and optional:
        return NULL
    if thread_clock is None or thread_clock.shape[0] != 8:
        raise ValueError("thread_clock must be a double[8] from new_thread_clock or new_forward_clock.")
    return &thread_clock[0]


def clock_threads(double[::1] thread_clock, n_threads):
    """The threads for work of a training that its clock does not time (a validation set's forward pass after
    each epoch): one thread while the clock measures one thread, and where it has measured one thread faster
    than the threads, or one thread and not yet the threads; else n_threads as given (None: the default). On
    a machine where another process keeps a core busy, a forward pass on the threads after each short epoch
    waits for a thread woken on that core every time (an 8-member search on digits took 1.7 s where one
    thread took 0.63)."""
    cdef double *values = _clock_values(thread_clock)
    if values[3] < 0 or (values[1] >= 0 and (values[0] < 0 or values[0] > values[1])):
        return 1
    return n_threads


def new_forward_clock():
    """A ThreadClock's double[8] for prediction calls (each call its batch): it starts with a measuring run on
    the threads, so that a model's first prediction of many rows, often its only one, gets them; one thread
    is measured next. While another process kept a core of a two-core machine busy, W1's forward pass of
    10,000 rows took 49 ms on two threads against 41 ms on one."""
    clock = np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    clock[3] = PROBE_RUN  # (a run on the threads under way, from the clock's time 0)
    return clock


def _note_cut_recency():
    """Set _cut_recently for the epoch that starts (train_epoch, train_ensemble_epoch; the GIL held)."""
    global _cut_recently
    _cut_recently = monotonic() - _last_cut_run < CUT_CONFIRM_SECONDS


def note_cut_runs(double cut_before, double[::1] thread_clock):
    """Record, for new clocks, that a measuring run of thread_clock was cut since its count of cut runs was
    cut_before (train_epoch calls it after each epoch); or, where its threads won clearly after cut runs
    (the count -1, set back to 0 here), that the process's last cut has passed."""
    global _last_cut_run, _cut_hint_seconds
    cdef double now
    if thread_clock[7] < 0:
        thread_clock[7] = 0
        _last_cut_run = -1e300
    elif thread_clock[7] > cut_before:
        now = monotonic()
        confirmed = thread_clock[7] >= 2 or now - _last_cut_run < CUT_CONFIRM_SECONDS
        _cut_hint_seconds = CUT_HINT_SECONDS if confirmed else FIRST_CUT_HINT_SECONDS
        _last_cut_run = now


def _clock_batch(double[::1] thread_clock, double seconds_n, double seconds_1, Py_ssize_t rows):
    """Test hook: one batch of `rows` rows through a ThreadClock, taking seconds_n with n threads and
    seconds_1 with one, whichever the clock chooses; returns the choice (0: n threads, 1: one)."""
    cdef ThreadClock clock
    cdef int choice
    _clock_view(&clock, _clock_values(thread_clock))
    _note_cut_recency()
    choice = _clock_choice(&clock)
    _clock_record(&clock, choice, seconds_1 if choice else seconds_n, rows)
    return choice


def workspace_size(const Py_ssize_t[::1] sizes, const int[::1] acts, const double[::1] keep,
                   Py_ssize_t batch_size, bint dropout, bint dense_x=True):
    """Elements of the training workspace train_epoch needs for batches of batch_size rows (dense_x=False:
    of a CSR X)."""
    cdef Plan p
    _plan_init(&p, sizes, acts, keep, batch_size, True, dropout, dense_x)
    _plan_free(&p)
    return p.work_size


def train_epoch(const Py_ssize_t[::1] sizes, const int[::1] acts, const double[::1] keep, dict settings,
                floating[::1] params, floating[::1] grads, floating[::1] state_1, floating[::1] state_2,
                floating[::1] work, object X, object Y, object sample_weight, const Py_ssize_t[::1] order,
                double[::1] grad_norm_sums, floating[::1] unit_max, double[::1] thread_clock):
    """One epoch of mini-batch training, the whole batch loop without the GIL.

    Batches are rows order[start:start + batch_size] of X and Y, or
    consecutive rows when order is None. Each batch: forward, loss, backward,
    L2, gradient norms, clipping, optimizer update. A batch whose weights sum
    to zero is skipped. grad_norm_sums[l - 1] gets the sum over batches of
    ||dW_l||_F; unit_max (all hidden units, layer after layer) the largest
    pre-activation each unit saw (before the batch's update). thread_clock:
    a double[8] kept by the caller across epochs and fits, from
    new_thread_clock (see ThreadClock). settings["learning_rates"], when
    present and not None, is a float64 array of one rate per batch (batch k
    starts at row k * batch_size) that replaces settings["learning_rate"]
    batch by batch (a learning-rate schedule's).

    Returns (loss_sum, n_batches, step, finite): loss_sum is the sum over
    batches of (batch mean loss + L2) * batch weight (its rows with
    settings["loss_per_row"], as scikit-learn reports it), step Adam's t after the
    epoch, and finite False when a batch's loss was not finite (the epoch
    stopped there, before that batch's update).
    """
    cdef Settings s = _settings_from(settings)
    cdef Plan p
    cdef Data d
    cdef Batch batch
    cdef Step st
    cdef fm_rng rng
    cdef Py_ssize_t n, B = s.batch_size, start = 0, b, l, c, n_batches = 0, hidden
    cdef bint finite = True
    cdef double loss_sum = 0, squares, norm, tic = 0, cut_before
    cdef int n_threads, most_threads, choice = 0
    cdef fm_fp_mode mode
    cdef ThreadClock clock
    cdef floating *unit_max_ptr
    cdef const double[::1] rates = settings.get("learning_rates")
    cdef const double *rate_of = NULL
    _clock_view(&clock, _clock_values(thread_clock))
    cut_before = thread_clock[7]
    _note_cut_recency()
    _read_data(X, Y, sample_weight, &d, &params[0])
    n = d.n_rows
    if rates is not None:
        if rates.shape[0] < (n + B - 1) // B:
            raise ValueError(f"learning_rates has {rates.shape[0]} rates for {(n + B - 1) // B} batches.")
        rate_of = &rates[0] if rates.shape[0] > 0 else NULL  # (no pointer into an empty array)
    _plan_init(&p, sizes, acts, keep, B, True, s.dropout, d.X != NULL)
    if work.shape[0] < p.work_size:
        _plan_free(&p)
        raise ValueError(f"work has {work.shape[0]} elements; this epoch needs {p.work_size} (workspace_size).")
    hidden = 0
    for l in range(1, p.n_layers):
        hidden += sizes[l]
    if unit_max.shape[0] != hidden:
        _plan_free(&p)
        raise ValueError(f"unit_max has {unit_max.shape[0]} elements for {hidden} hidden units.")
    p.loss = settings["loss"]
    p.loss_param = settings["loss_param"]
    # the batches' parts keep their units' maxima in rows of their own, merged into unit_max after the epoch
    # (no hidden layer: no units, and an empty unit_max has no first element to point at)
    unit_max_ptr = NULL
    if hidden > 0:
        unit_max_ptr = &work[p.max_off]
        for c in range(MAX_PARTS * p.max_stride):
            unit_max_ptr[c] = -INFINITY
    most_threads = _threads_for(&p, min(B, n), s.n_threads)
    n_threads = most_threads
    st.dropout = s.dropout
    st.accumulate = False
    st.step = s.step
    st.step_size = 0
    _pin_blas()
    mode = fm_flush_subnormals()
    try:
        with nogil:
            fm_rng_seed(&rng, s.seed)
            while start < n:
                b = min(B, n - start)
                if rate_of != NULL:  # this batch's rate (sgd's step, adam's step size below)
                    s.learning_rate = rate_of[start // B]
                if most_threads > 1 and _adapt:
                    tic = omp_get_wtime()
                    choice = _clock_choice(&clock)
                    n_threads = 1 if choice else most_threads
                _batch_at(&d, start, b, &order[0] if order is not None else NULL, &p, &work[0], &batch)
                start += b
                if batch.weight <= 0:
                    continue
                st.scale = 1.0 / batch.weight
                _run_batch(&p, &s, &d, &batch, &params[0], &grads[0], &state_1[0], &state_2[0], &work[0], &rng,
                           unit_max_ptr, &grad_norm_sums[0], &st, n_threads)
                if not st.finite:
                    finite = False
                    break
                if s.clip_norm <= 0:
                    # ||dW_l|| from the update's per-chunk sums, in chunk order whatever the threads
                    c = 0
                    for l in range(1, p.n_layers + 1):
                        squares = 0
                        while c < p.n_chunks and p.u_layer[c] <= l:
                            squares += p.partial[c]
                            c += 1
                        norm = sqrt(squares)
                        if not isfinite(squares):  # float64 squares past 1e308: BLAS's scaled norm
                            norm = _nrm2(<int>(p.b_off[l] - p.w_off[l]), &grads[p.w_off[l]])
                        grad_norm_sums[l - 1] += norm
                loss_sum += st.loss * (b if s.loss_per_row else batch.weight)
                n_batches += 1
                if n_threads > 1:
                    thread_clock[4] += 1
                if most_threads > 1 and _adapt and b == B:  # (a short last batch would not compare)
                    _clock_record(&clock, choice, omp_get_wtime() - tic, b)
    finally:
        if unit_max_ptr != NULL:
            _merge_maxima(&p, unit_max_ptr, &unit_max[0], unit_max.shape[0])
        fm_fp_restore(mode)
        _unpin_blas()
        _plan_free(&p)
        note_cut_runs(cut_before, thread_clock)
    return loss_sum, n_batches, st.step, finite


cdef void _merge_maxima(const Plan *p, const floating *rows, floating *unit_max, Py_ssize_t n) noexcept nogil:
    """unit_max = the largest of itself and the parts' rows of maxima (each part of a batch's rows keeps
    its own: two threads' parts of the same units would share their lines). The largest of the same
    numbers, whichever part saw them: the same bits for any thread count and any split."""
    _col_max(MAX_PARTS, n, p.max_stride, rows, unit_max)


def loss_and_gradients(const Py_ssize_t[::1] sizes, const int[::1] acts, int loss_code, double loss_param,
                       floating[::1] params, object X, object Y, object sample_weight, double alpha,
                       floating[::1] grads, int n_threads=1):
    """Mean (weighted) loss over all rows plus alpha/(2 n) sum ||W||^2, n the total weight;
    its exact gradient into grads. loss_code: FM_SQUARED_ERROR, ..., with its parameter.

    Runs in chunks of CHUNK_ROWS rows, so memory does not grow with n. No
    dropout. The caller makes sure the weights sum to more than zero.
    """
    cdef Plan p
    cdef Data d
    cdef Batch batch
    cdef Step st
    cdef Py_ssize_t n, start = 0, b, B, i
    cdef double loss = 0, weight
    cdef floating[::1] work
    cdef fm_fp_mode mode
    _read_data(X, Y, sample_weight, &d, &params[0])
    n = d.n_rows
    B = min(n, CHUNK_ROWS)
    _plan_init(&p, sizes, acts, None, B, True, False, d.X != NULL)
    p.loss = loss_code
    p.loss_param = loss_param
    n_threads = _threads_for(&p, B, n_threads)
    st.dropout = False
    _pin_blas()
    mode = fm_flush_subnormals()  # (as training: the same numbers for L-BFGS's epochs and any thread count)
    try:
        work = np.empty(p.work_size, dtype=np.float32 if floating is float else np.float64)
        with nogil:
            weight = n
            if d.sw != NULL:
                weight = 0
                for i in range(n):
                    weight += (<const floating *>d.sw)[i]
            st.scale = 1.0 / weight
            while start < n:
                b = min(B, n - start)
                _batch_at(&d, start, b, NULL, &p, &work[0], &batch)
                st.accumulate = start > 0
                _run_batch(&p, NULL, &d, &batch, &params[0], &grads[0], <floating *>NULL, <floating *>NULL,
                           &work[0], NULL, <floating *>NULL, NULL, &st, n_threads)
                loss += _loss_sum(&st, &batch)
                start += b
            loss /= weight
            if alpha > 0:
                loss += _l2(&p, &params[0], &grads[0], alpha, weight, n_threads)
    finally:
        fm_fp_restore(mode)
        _unpin_blas()
        _plan_free(&p)
    return loss


cdef void _forward_chunk(const Plan *p, const floating *params, const Data *d, floating *out, floating *work,
                         Py_ssize_t c, fm_rng *rng, bint training) noexcept nogil:
    """The output of chunk c (rows c * p.batch_size, ...) of d into out (n_rows, n_outputs)."""
    cdef Batch batch
    cdef Py_ssize_t start = c * p.batch_size, L = p.n_layers, n_out = p.sizes[p.n_layers]
    batch.csr = d
    batch.rows = NULL
    batch.gathered = False
    batch.Y = batch.sw = NULL
    batch.n_rows = min(p.batch_size, d.n_rows - start)
    batch.row0 = start
    batch.X = <const floating *>d.X + start * d.n_in if d.X != NULL else NULL
    _forward_hidden(p, params, work, &batch, training, rng, out + start * n_out)
    _output_forward(p.acts[L - 1], batch.n_rows, n_out, params + p.b_off[L], out + start * n_out)


cdef struct ForwardTiming:
    double *values  # the forward clock's double[8], or NULL: not timed
    int choice
    int n_threads
    double tic


cdef inline int _forward_timing_begin(ForwardTiming *timing, double *values, int n_threads) noexcept nogil:
    """The threads of a prediction call: n_threads, or one as the forward clock at values chooses (when given,
    and the call would run on threads); starts the call's timing."""
    cdef ThreadClock clock
    timing.values = values if values != NULL and n_threads > 1 and _adapt else NULL
    if timing.values == NULL:
        return n_threads
    _clock_view(&clock, values)
    timing.choice = _clock_choice(&clock)
    timing.n_threads = 1 if timing.choice else n_threads
    timing.tic = omp_get_wtime()
    return timing.n_threads


cdef inline void _forward_timing_end(ForwardTiming *timing, Py_ssize_t rows) noexcept nogil:
    """The call's seconds to the forward clock (see _forward_timing_begin); its [4] counts the calls on threads."""
    cdef ThreadClock clock
    if timing.values != NULL:
        _clock_view(&clock, timing.values)
        _clock_record(&clock, timing.choice, omp_get_wtime() - timing.tic, rows)
        if timing.n_threads > 1:
            timing.values[4] += 1


cdef int _forward_rows(const Py_ssize_t[::1] sizes, const int[::1] acts, const floating *params, const Data *d,
                       floating *out, const double[::1] keep, uint64_t seed, bint training,
                       bint release_gil, int n_threads, double *clock_values=NULL) except -1:
    """The output of every row of d, in chunks of FORWARD_ROWS rows shared by n_threads threads.

    With dropout (training) the chunks run in order on one thread: the masks are
    the PRNG's one sequence. Each thread has its own workspace, malloc'd (far
    cheaper than an array for the one-row calls of a service). clock_values,
    when given (a forward clock's double[8], see new_forward_clock), chooses
    between the threads and one thread for a call that would run on threads,
    the call being its batch.
    """
    cdef Plan p
    cdef fm_rng rng
    cdef floating *work = NULL
    cdef Py_ssize_t c, n_chunks
    cdef ForwardTiming timing
    _plan_init(&p, sizes, acts, keep, min(d.n_rows, FORWARD_ROWS), training, training, d.X != NULL)
    n_chunks = (d.n_rows + p.batch_size - 1) // p.batch_size
    n_threads = 1 if training else min(_threads_for(&p, d.n_rows, n_threads), n_chunks)
    n_threads = _forward_timing_begin(&timing, clock_values, n_threads)
    try:
        work = <floating *>malloc(max(p.work_size, 1) * n_threads * sizeof(floating))
        if work == NULL:
            raise MemoryError("fastmlp: cannot allocate the forward workspace")
        fm_rng_seed(&rng, seed)
        if d.n_rows > 1:
            _pin_blas()
        try:
            if n_threads > 1:
                with nogil:
                    for c in prange(n_chunks, num_threads=n_threads, schedule="dynamic", chunksize=1):
                        _forward_chunk(&p, params, d, out, work + threadid() * p.work_size, c, &rng, False)
            elif release_gil:
                with nogil:
                    for c in range(n_chunks):
                        _forward_chunk(&p, params, d, out, work, c, &rng, training)
            else:
                for c in range(n_chunks):
                    _forward_chunk(&p, params, d, out, work, c, &rng, training)
            _forward_timing_end(&timing, d.n_rows)  # (with the GIL: calls from several threads take turns)
        finally:
            if d.n_rows > 1:
                _unpin_blas()
    finally:
        free(work)
        _plan_free(&p)
    return 0


def forward(const Py_ssize_t[::1] sizes, const int[::1] acts, const floating[::1] params, object X,
            floating[:, ::1] out, const double[::1] keep=None, uint64_t seed=0, bint training=False,
            int n_threads=1, double[::1] thread_clock=None):
    """The network's output for every row of X, into out (n_samples, n_outputs).

    training=True applies inverted dropout with keep probabilities `keep`,
    masks drawn from `seed` (on one thread). n_threads: at most that many threads.
    thread_clock: the network's forward clock (new_forward_clock), or None.
    """
    cdef Data d
    _read_data(X, None, None, &d, &params[0])
    _forward_rows(sizes, acts, &params[0], &d, &out[0, 0], keep, seed, training, True, n_threads,
                  _clock_values(thread_clock, True))


def forward_members(const Py_ssize_t[::1] sizes, const int[::1] acts, list params, object X,
                    floating[:, :, ::1] out, int n_threads=1, double[::1] thread_clock=None):
    """The outputs of K networks of one architecture on the same rows, into out (K, n_samples, n_outputs).

    params: the K networks' flat parameters (out's dtype). out[k] is what
    `forward` gives for params[k], bit for bit (the same chunks of rows, each
    on one thread): the K networks' chunks are the tasks of up to n_threads
    threads (a validation set of a few hundred rows is one chunk a network).
    thread_clock: the ensemble's forward clock (new_forward_clock), or None.
    """
    cdef Py_ssize_t K = len(params), n_chunks, t, k, n_out = sizes[sizes.shape[0] - 1]
    cdef const floating **member = NULL
    cdef const floating[::1] flat
    cdef floating *out0
    cdef floating *work = NULL
    cdef Plan p
    cdef Data d
    cdef fm_rng rng
    cdef ForwardTiming timing
    cdef double *clock_values = _clock_values(thread_clock, True)
    if K == 0 or out.shape[1] == 0:
        return
    member = <const floating **>malloc(K * sizeof(floating *))
    if member == NULL:
        raise MemoryError("fastmlp: cannot allocate the members' table")
    try:
        for k in range(K):
            flat = params[k]  # (the list keeps each array, so its pointer, alive)
            member[k] = &flat[0]
        _read_data(X, None, None, &d, member[0])
        fm_rng_seed(&rng, 0)  # (no dropout: not drawn from)
        _plan_init(&p, sizes, acts, None, min(d.n_rows, FORWARD_ROWS), False, False, d.X != NULL)
        try:
            n_chunks = (d.n_rows + p.batch_size - 1) // p.batch_size
            n_threads = min(_threads_for(&p, d.n_rows * K, n_threads), K * n_chunks)
            n_threads = _forward_timing_begin(&timing, clock_values, n_threads)
            work = <floating *>malloc(max(p.work_size, 1) * n_threads * sizeof(floating))
            if work == NULL:
                raise MemoryError("fastmlp: cannot allocate the forward workspace")
            out0 = &out[0, 0, 0]
            _pin_blas()
            try:
                with nogil:
                    if n_threads > 1:
                        for t in prange(K * n_chunks, num_threads=n_threads, schedule="dynamic", chunksize=1):
                            _forward_chunk(&p, member[t // n_chunks], &d, out0 + (t // n_chunks) * d.n_rows * n_out,
                                           work + threadid() * p.work_size, t % n_chunks, &rng, False)
                    else:
                        for t in range(K * n_chunks):
                            _forward_chunk(&p, member[t // n_chunks], &d, out0 + (t // n_chunks) * d.n_rows * n_out,
                                           work, t % n_chunks, &rng, False)
                _forward_timing_end(&timing, d.n_rows * K)  # (with the GIL: calls from several threads take turns)
            finally:
                _unpin_blas()
        finally:
            _plan_free(&p)
    finally:
        free(work)
        free(member)


# ---------------------------------------------------------------------------
# Threads: the engine's own (OpenMP), and the BLAS's (pinned to one while the engine works)

ctypedef int (*_get_threads_fn)() noexcept nogil
ctypedef void (*_set_threads_fn)(int) noexcept nogil

cdef enum:
    MAX_BLAS = 8
cdef _get_threads_fn _blas_get[MAX_BLAS]
cdef _set_threads_fn _blas_set[MAX_BLAS]
cdef int _blas_saved[MAX_BLAS]
cdef int _n_blas = 0
cdef int _pin_depth = 0  # changed with the GIL held only
cdef long long _pin_generation = 0  # times the pinning began
cdef int _usable_cpus = 1
cdef bint _forked_child = False  # (after_fork_in_child)


def register_blas(list controls):
    """Addresses (get, set) of the thread-count functions of each BLAS with its own thread pool.

    The engine sets each to one thread while it works (see _pin_blas): its own
    threads call BLAS, and a BLAS pool of its own would compete with them.
    """
    global _n_blas
    cdef Py_ssize_t i
    _n_blas = 0
    for i in range(min(len(controls), MAX_BLAS)):
        _blas_get[i] = <_get_threads_fn><size_t>controls[i][0]
        _blas_set[i] = <_set_threads_fn><size_t>controls[i][1]
        _n_blas += 1


def set_usable_cpus(int n):
    """The CPUs this process may run on (network._usable_cpus): the most threads the engine starts."""
    global _usable_cpus
    _usable_cpus = max(n, 1)


cdef void _pin_blas() noexcept:
    """Every registered BLAS to one thread (the first of nested calls saves the counts; a nested call sets
    one again where another thread's threadpool_limits changed it meanwhile: its BLAS pools would otherwise
    compete with the engine's threads until the outermost call ends, 100x slower)."""
    global _pin_depth, _pin_generation
    cdef int i
    if _pin_depth == 0:
        _pin_generation += 1
        for i in range(_n_blas):
            _blas_saved[i] = _blas_get[i]()
            if _blas_saved[i] != 1:
                _blas_set[i](1)
    else:
        for i in range(_n_blas):
            if _blas_get[i]() != 1:
                _blas_set[i](1)
    _pin_depth += 1


cdef void _unpin_blas() noexcept:
    """Undo _pin_blas (the last of nested calls restores the counts)."""
    global _pin_depth
    cdef int i
    _pin_depth -= 1
    if _pin_depth == 0:
        for i in range(_n_blas):
            if _blas_saved[i] != 1:
                _blas_set[i](_blas_saved[i])


class blas_pinned:
    """Context manager: every registered BLAS on one thread inside, as in the engine's own calls.

    For the Python steps of a fit between its compiled epochs (NumPy's products
    in the output bound, a validation score): a BLAS pool woken there would spin
    while the engine's threads work. Nests with the engine's own pinning.
    """

    def __enter__(self):
        _pin_blas()
        return self

    def __exit__(self, *exc):
        _unpin_blas()
        return False


def _set_thread_adaptation(bint on):
    """Test hook: False runs every batch on the threads asked for (neither the small-work rule nor the
    timing-based fallback to one thread)."""
    global _adapt
    _adapt = on


def _set_ensemble_clock_work(double work):
    """Test hook: the multiply-adds below which an ensemble's epoch is the thread clock's to place (see
    ENSEMBLE_CLOCK_WORK); returns the value it replaces."""
    global ENSEMBLE_CLOCK_WORK
    before, ENSEMBLE_CLOCK_WORK = ENSEMBLE_CLOCK_WORK, work
    return before


def after_fork_in_child():
    """In a child process made by fork (os.register_at_fork, network.py): the engine on one thread from
    now on, and the BLAS counts of the parent before its engine calls, if one was running in another thread
    (which the child does not have).

    GNU libgomp's threads do not survive fork: the first parallel region of a child whose parent had
    started them waits for them forever. And a pinning in progress at the fork would never end in the
    child: its BLAS would stay on one thread.
    """
    global _forked_child, _pin_depth
    cdef int i
    _forked_child = True
    if _pin_depth > 0:
        for i in range(_n_blas):
            if _blas_saved[i] != 1:
                _blas_set[i](_blas_saved[i])
    _pin_depth = 0


def blas_pin_state():
    """(nesting depth of the engine's BLAS pinning, 0 when no engine call runs; times it began): for tests."""
    return _pin_depth, _pin_generation


cdef int _default_threads() noexcept nogil:
    """OpenMP's thread count (OMP_NUM_THREADS, threadpoolctl's openmp limit), at most the usable CPUs (one in a
    forked child: see after_fork_in_child)."""
    if _forked_child:
        return 1
    return max(1, min(omp_get_max_threads(), _usable_cpus))


def effective_n_threads(n_threads=None):
    """The engine's thread count: n_threads, or the default for None; 1 when built without OpenMP, and in a
    child process made by fork (after_fork_in_child)."""
    if not FM_OPENMP or _forked_child:
        return 1
    if n_threads is None:
        return _default_threads()
    return max(1, min(<int>n_threads, 4 * _usable_cpus))


cdef class Predictor:
    """Network.forward without dropout, for rows that are already as the engine takes them.

    The path of a service predicting one row at a time: called with X, it
    returns the output when X is a C-contiguous, aligned, native-byte-order 2-D
    ndarray of the network's dtype and width whose values are all finite, and
    None for anything else, which the caller then validates in full (and
    rejects with the usual errors). Everything it checks, it checks in C,
    without building a memoryview. It keeps the network's parameter array
    alive and reads it live; the caller makes a new Predictor if that array
    is replaced. thread_clock: the network's forward clock (new_forward_clock),
    which places a call of many rows on the threads or on one thread.
    """
    cdef readonly object params
    cdef const Py_ssize_t[::1] sizes
    cdef const int[::1] acts
    cdef double[::1] clock
    cdef int typenum
    cdef Py_ssize_t n_in, n_out

    def __init__(self, const Py_ssize_t[::1] sizes, const int[::1] acts, cnp.ndarray params,
                 double[::1] thread_clock=None):
        _clock_values(thread_clock, True)  # (checked)
        self.sizes = sizes
        self.acts = acts
        self.clock = thread_clock
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
        cdef int n_threads
        cdef double *clock_values
        if type(X) is not cnp.ndarray:
            return None
        A = <cnp.ndarray>X
        if (cnp.PyArray_NDIM(A) != 2 or cnp.PyArray_TYPE(A) != self.typenum or not cnp.PyArray_ISCARRAY_RO(A)
                or cnp.PyArray_DIM(A, 1) != self.n_in or not 0 < cnp.PyArray_DIM(A, 0) <= BLAS_INT_MAX):
            return None
        n = cnp.PyArray_DIM(A, 0)
        release_gil = n * self.n_in >= 4096  # below that the GIL's round trip costs more than it frees
        n_threads = _default_threads() if n > FORWARD_ROWS else 1  # one row stays on the calling thread
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
        clock_values = _clock_values(self.clock, True) if n_threads > 1 else NULL
        if self.typenum == cnp.NPY_FLOAT:
            _forward_rows[float](self.sizes, self.acts, <const float *>cnp.PyArray_DATA(self.params), &d,
                                 <float *>cnp.PyArray_DATA(out), None, 0, False, release_gil, n_threads, clock_values)
        else:
            _forward_rows[double](self.sizes, self.acts, <const double *>cnp.PyArray_DATA(self.params), &d,
                                  <double *>cnp.PyArray_DATA(out), None, 0, False, release_gil, n_threads,
                                  clock_values)
        return out


def output_activation(int act, floating[:, ::1] Z):
    """Z = g(Z) in place, g the output activation of code act, as the forward pass applies it after adding
    the bias (Z holds the bias already: _forward(..., logits=True) with the identity output)."""
    cdef Py_ssize_t n = Z.shape[0], m = Z.shape[1]
    cdef floating[::1] zero
    if n == 0 or m == 0:
        return
    zero = np.zeros(m, dtype=np.float32 if floating is float else np.float64)
    with nogil:
        _output_forward(act, n, m, &zero[0], &Z[0, 0])


# Outputs (n times n_outputs) of the networks at which their output kernels are worth threads: each
# element costs an exponential or two (several nanoseconds), a thread's wake some microseconds.
MIN_PARALLEL_OUTPUTS = 20000


def output_losses(int loss_code, double loss_param, double[:, :, ::1] Z, const double[:, ::1] Y,
                  const double[::1] sample_weight=None, int n_threads=1):
    """The losses of K networks' logits on the same rows, by the training's output kernel.

    Z (K, n, n_outputs): each network's logits (_forward(..., logits=True):
    the bias added), overwritten with its outputs P. Y (n, n_outputs) the
    targets, sample_weight (n,) or None. Returns the K sums over the rows of
    (weight times) each row's loss, as float64; network k's from its rows
    alone, in one pass (the bits of a call with it alone), the networks the
    tasks of up to n_threads threads.
    """
    cdef Py_ssize_t K = Z.shape[0], n = Z.shape[1], m = Z.shape[2], k
    cdef double[::1] sums = np.zeros(K)
    cdef double[::1] zero
    cdef double[:, ::1] delta
    cdef const double *sw
    if K == 0 or n == 0 or m == 0:
        return np.asarray(sums)
    if K * n * m < MIN_PARALLEL_OUTPUTS and _adapt:
        n_threads = 1
    n_threads = max(1, min(n_threads, K))
    zero = np.zeros(m)
    delta = np.empty((n_threads * n, m))  # (each thread's delta of the kernel, scaled by 0 and not read)
    sw = &sample_weight[0] if sample_weight is not None else NULL
    with nogil:
        if n_threads > 1:
            for k in prange(K, num_threads=n_threads, schedule="dynamic", chunksize=1):
                _output_delta(loss_code, n, m, 0.0, loss_param, &zero[0], &Y[0, 0], sw, &Z[k, 0, 0],
                              &delta[threadid() * n, 0], &sums[k])
        else:
            for k in range(K):
                _output_delta(loss_code, n, m, 0.0, loss_param, &zero[0], &Y[0, 0], sw, &Z[k, 0, 0],
                              &delta[0, 0], &sums[k])
    return np.asarray(sums)


def largest_row_sumsq(const floating[:, ::1] X):
    """The largest sum of squares of a row of X, summed in double (one pass, without the GIL): the input's
    part of BaseNetwork._output_bound."""
    cdef double largest = 0
    if X.shape[0] > 0 and X.shape[1] > 0:
        with nogil:
            largest = _largest_row_sumsq(X.shape[0], X.shape[1], &X[0, 0])
    return largest


def all_finite(const floating[::1] x):
    """True if no element of x is NaN or infinite (one vectorized pass, without the GIL)."""
    cdef bint finite
    with nogil:
        finite = _all_finite(x.shape[0], &x[0]) if x.shape[0] > 0 else True
    return finite


def _forward_splits(const Py_ssize_t[::1] sizes, const int[::1] acts, Py_ssize_t batch_size):
    """How a training batch of batch_size rows of a dense X splits each layer's forward product, for the
    tests: per layer ("rows", "units" or "inner", the number of parts)."""
    cdef Plan p
    cdef Py_ssize_t l
    _plan_init(&p, sizes, acts, None, batch_size, True, False)
    try:
        return [("inner" if p.fwd[l].inner else "rows" if p.fwd[l].rows else "units", p.fwd[l].k)
                for l in range(1, p.n_layers + 1)]
    finally:
        _plan_free(&p)


def _batch_threads(const Py_ssize_t[::1] sizes, const int[::1] acts, Py_ssize_t batch_size, int n_threads):
    """Test hook: the threads a training batch of batch_size dense rows runs on when given n_threads (the most
    its steps' tasks keep busy, _batch_threads_of)."""
    cdef Plan p
    _plan_init(&p, sizes, acts, None, batch_size, True, False)
    try:
        return _batch_threads_of(&p, batch_size, n_threads)
    finally:
        _plan_free(&p)


def _update_chunks(const Py_ssize_t[::1] sizes, const int[::1] acts, Py_ssize_t batch_size):
    """The update's chunks of a training plan, for the tests: (offset, length, layer, task) each, and per layer
    how its weight gradient splits (("rows" or "units", the number of parts), the offset of W_l)."""
    cdef Plan p
    cdef Py_ssize_t c, l
    _plan_init(&p, sizes, acts, None, batch_size, True, False)
    try:
        return ([(p.u_off[c], p.u_len[c], p.u_layer[c], p.u_task[c]) for c in range(p.n_chunks)],
                [("rows" if p.wgt[l].rows else "units", p.wgt[l].k, p.w_off[l]) for l in range(1, p.n_layers + 1)])
    finally:
        _plan_free(&p)


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


cdef Py_ssize_t _hook_ld(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t itemsize, const Py_ssize_t *strides,
                         const Py_ssize_t *others, Py_ssize_t n_others) except -1:
    """The row stride, in elements, of a test hook's 2-D arrays (strides: the first's; others: n_others more
    arrays' strides, two each): their rows may be a block of the columns of wider arrays (the kernels'
    ld), each row contiguous, all with the same strides."""
    cdef Py_ssize_t k
    for k in range(n_others):
        if (rows > 1 and others[2 * k] != strides[0]) or (cols > 1 and others[2 * k + 1] != strides[1]):
            raise ValueError("the arrays must have the same strides")
    if cols > 1 and strides[1] != itemsize or rows > 1 and (strides[0] % itemsize or strides[0] < cols * itemsize):
        raise ValueError("each row must be contiguous, the rows in order")
    return strides[0] // itemsize if rows > 1 else cols


def _bias_act_forward_hook(int act, const floating[::1] bias, floating[:, :] Z, floating[:, :] A,
                           floating[::1] colmax=None):
    cdef Py_ssize_t others[2]
    others[0], others[1] = A.strides[0], A.strides[1]
    cdef Py_ssize_t ld = _hook_ld(Z.shape[0], Z.shape[1], sizeof(floating), Z.strides, others, 1)
    _bias_act_forward(act, Z.shape[0], Z.shape[1], ld, &bias[0], &Z[0, 0], &A[0, 0],
                      &colmax[0] if colmax is not None else NULL)


def _act_backward_hook(int act, const floating[::1] Z, const floating[::1] A, floating[::1] delta):
    _act_backward(act, 1, Z.shape[0], Z.shape[0], &Z[0], &A[0], &delta[0])


def _act_backward_rows_hook(int act, const floating[:, :] Z, const floating[:, :] A, floating[:, :] delta):
    """_act_backward_hook over the rows of 2-D arrays, which may be a block of the columns of wider ones."""
    cdef Py_ssize_t others[4]
    others[0], others[1], others[2], others[3] = A.strides[0], A.strides[1], delta.strides[0], delta.strides[1]
    cdef Py_ssize_t ld = _hook_ld(Z.shape[0], Z.shape[1], sizeof(floating), Z.strides, others, 2)
    _act_backward(act, Z.shape[0], Z.shape[1], ld, &Z[0, 0], &A[0, 0], &delta[0, 0])


def _output_delta_hook(int loss_code, double scale, const floating[::1] bias, const floating[:, ::1] Y,
                       floating[:, ::1] Z, floating[:, ::1] delta, const floating[::1] sample_weight=None,
                       double loss_param=0.0):
    """Returns the sum of the rows' (weighted) losses; Z becomes P."""
    cdef double loss = 0
    _output_delta(loss_code, Z.shape[0], Z.shape[1], <floating>scale, loss_param, &bias[0], &Y[0, 0],
                  &sample_weight[0] if sample_weight is not None else NULL, &Z[0, 0], &delta[0, 0], &loss)
    return loss


def _sgd_hook(double learning_rate, double momentum, bint nesterov, const floating[::1] grad,
              floating[::1] velocity, floating[::1] params, double l2=0.0):
    _sgd_update(params.shape[0], <floating>learning_rate, <floating>momentum, nesterov, <floating>l2, &grad[0],
                &velocity[0], &params[0], NULL)


def _adam_hook(double step_size, double beta_1, double beta_2, double epsilon, const floating[::1] grad,
               floating[::1] m, floating[::1] v, floating[::1] params, double l2=0.0):
    _adam_update(params.shape[0], <floating>step_size, beta_1, beta_2, <floating>epsilon,
                 <floating>l2, &grad[0], &m[0], &v[0], &params[0], NULL)


def _gather_rows_hook(const Py_ssize_t[::1] idx, const floating[:, ::1] X, floating[:, ::1] out):
    with nogil:
        _gather_rows(idx.shape[0], X.shape[1], &idx[0], &X[0, 0], &out[0, 0])


def _col_sum_hook(bint accumulate, const floating[:, ::1] M, floating[::1] out):
    _col_sum(M.shape[0], M.shape[1], accumulate, &M[0, 0], &out[0])


def _narrow_hook(const floating[:, :] A, const floating[:, :] B, const floating[:, :] D, floating[:, :] C,
                 floating[:, :] G):
    """Test hook: C = A @ B and G = A^T @ D by the narrow products (each array's rows may be a wider array's)."""
    cdef Py_ssize_t n = sizeof(floating)
    if (B.shape[0] != A.shape[1] or D.shape[0] != A.shape[0] or C.shape[0] != A.shape[0] or C.shape[1] != B.shape[1]
            or G.shape[0] != A.shape[1] or G.shape[1] != D.shape[1] or min(A.shape[0], A.shape[1]) < 1):
        raise ValueError("the shapes do not match: C = A @ B, G = A^T @ D, A not empty.")
    if A.strides[1] != n or B.strides[1] != n or C.strides[1] != n or D.strides[1] != n or G.strides[1] != n:
        raise ValueError("each array's rows must be contiguous.")
    with nogil:
        _narrow_matmul(A.shape[0], A.shape[1], B.shape[1], &A[0, 0], A.strides[0] // n, &B[0, 0], B.strides[0] // n,
                       &C[0, 0], C.strides[0] // n)
        _narrow_tmatmul(A.shape[0], A.shape[1], D.shape[1], &A[0, 0], A.strides[0] // n, &D[0, 0], D.strides[0] // n,
                        &G[0, 0], G.strides[0] // n)


def _block_sumsq_hook(Py_ssize_t n_blocks, const floating[:, ::1] M, double[::1] out, Py_ssize_t out_stride):
    if M.shape[1] % n_blocks or out.shape[0] < (n_blocks - 1) * out_stride + 1:
        raise ValueError("M's columns must split into n_blocks blocks, out must hold n_blocks strided sums.")
    _block_sumsq(M.shape[0], n_blocks, M.shape[1] // n_blocks, M.shape[1], &M[0, 0], &out[0], out_stride)


def _dropout_hook(double keep, uint64_t seed, const floating[::1] A, floating[::1] M, floating[::1] D):
    cdef fm_rng rng
    fm_rng_seed(&rng, seed)
    _dropout(A.shape[0], <floating>keep, &rng, &A[0], &M[0], &D[0])


def _prelu_forward_hook(const floating[::1] bias, const floating[::1] slopes, floating[:, :] Z,
                        floating[:, :] A, floating[::1] colmax=None):
    cdef Py_ssize_t others[2]
    others[0], others[1] = A.strides[0], A.strides[1]
    cdef Py_ssize_t ld = _hook_ld(Z.shape[0], Z.shape[1], sizeof(floating), Z.strides, others, 1)
    _prelu_forward(Z.shape[0], Z.shape[1], ld, &bias[0], &slopes[0], &Z[0, 0], &A[0, 0],
                   &colmax[0] if colmax is not None else NULL)


def _prelu_backward_hook(bint accumulate, const floating[:, :] Z, const floating[::1] slopes,
                         floating[:, :] delta, floating[::1] slope_grad):
    cdef Py_ssize_t others[2]
    others[0], others[1] = delta.strides[0], delta.strides[1]
    cdef Py_ssize_t ld = _hook_ld(Z.shape[0], Z.shape[1], sizeof(floating), Z.strides, others, 1)
    _prelu_backward(Z.shape[0], Z.shape[1], ld, accumulate, &Z[0, 0], &slopes[0], &delta[0, 0], &slope_grad[0])


# ---------------------------------------------------------------------------
# Ensembles: K members of one architecture trained in one pass over the batches
#
# The members share the batches (one shuffle), the loss and the optimizer; each
# has its own weights, learning rate, L2 alpha, dropout rates and masks (its own
# PRNG), and clipping. Parameter layout, for each layer l: W_l, then b_l of all
# members side by side (K fan_out, member k at k fan_out); after all layers,
# each PReLU layer's slopes likewise (K fan_out). The first layer of a network
# with hidden layers is wide per group: group g (members m0..m1) holds its
# W_1 as one (fan_in, (m1 - m0) fan_out) block at fan_in m0 fan_out, member k's
# columns (k - m0) fan_out.., so that the group's forward step is ONE product
# X_b @ [W_1^m0 ... W_1^m1] and its weight gradient one X_b^T @ [delta_1^m0 ...]
# (a group of one member: its W_1 contiguous, one run for the update).
# Every other W_l is member-major: member k's (fan_in, fan_out) block at
# k fan_in fan_out, so that its per-member products read it contiguously.
# The layout depends on the groups, so on the batch size: ensemble_index gives
# where each member's parameters are for a batch size.
# The hidden layers' Z_l, A_l, masks and deltas hold each group's members side
# by side: group g (members m0..m1) as one (batch, (m1 - m0) fan_out) block,
# the blocks one after another, so that the element-wise kernels run over a
# group's whole block at once (all members' rows when there is one group);
# the output layer's Z_L and delta_L are member-major (K, batch, n_outputs),
# so that each member's output step (softmax, loss) is one call.
# The members are split into groups fixed by the sizes (never by the thread
# count); each group's whole epoch (every batch gathered into the group's own
# rows, then forward, output, backward, L2, clipping, update) is one task with
# no barrier, the threads taking the groups as they come free, so results are
# the same bits for any thread count and whichever thread runs a group.

cdef enum:
    MAX_GROUPS = 8
    # per-member scalars a group writes every batch (losses, finiteness, steps, sums) one cache line (64
    # bytes) apart, so that groups on different threads share no line
    LINE = 8
    FLAG_LINE = 16
# The members are split into 1, 2, 4 or 8 groups: the most that give each group at least this many
# multiply-adds per batch (and one member at least). Fat groups share the first layer's product and keep
# their blocks together: on two cores, two groups of four members trained W2 (K=16) 1.8x faster than one
# thread, eight groups of two 1.5x. Powers of two divide evenly among 2, 4 or 8 threads.
cdef double ENSEMBLE_GROUP_WORK = 1.5e6
# An ensemble that the rule above leaves in one group (too little work per batch to share it out) is split in
# two where the group's widest hidden block (batch rows x units x members) is larger than this many elements:
# small networks' steps are element-wise kernels over those blocks, which then stream through L2 (W3, K=32,
# batch 16: 8,192 elements a block; the bias-and-activation kernel took 35% less a member with blocks of a
# quarter). In two groups W3's epoch took about 4% less on one thread (task-clock, A/B), and a third less on
# two threads, where short epochs go to one thread as the thread clock chooses (ENSEMBLE_CLOCK_WORK).
# W2's four groups of four (32 x 64 x 4 elements a block) are left as they are: eight groups of two were slower.
cdef Py_ssize_t SMALL_GROUP_BLOCK = 4096
# An ensemble's epoch of fewer multiply-adds than this (about 0.1 s on one core) runs on the threads or on one
# thread as the ensemble's ThreadClock chooses, epoch by epoch (an epoch is the clock's batch): where another
# process keeps a core busy, the group on that core makes the whole epoch wait for it, and a short epoch pays
# the wake of a thread there every time (W2, K=16, on 1,000 rows: 9 ms an epoch on one thread, 17 ms on two; on
# 5,000 rows 49 against 56). Longer epochs always run on the threads: there the busy core cost 4% (20,000
# rows: 162 against 168 ms), less than measuring one thread now and then would cost on a quiet machine.
cdef double ENSEMBLE_CLOCK_WORK = 5e9
# An output layer of at most this many weights per member is computed for a whole group in one call of the
# members kernels (csrc/members.template.c), not one BLAS call per member and step.
cdef Py_ssize_t SMALL_OUTPUT = 256
# A first layer of at most this many inputs has its two products (the forward one, the weight gradient) in the
# members kernels' narrow products, not BLAS: a BLAS call packs its operands first, which at W3's shapes (16 x 8
# @ 8 x 256 for a group of 16 members) was most of the call.
cdef Py_ssize_t NARROW_INPUTS = 32
# Elements between two groups' parts of each block of the parameters (and so of the gradients and the optimizer's
# state) and of the workspace: a page at least, in either dtype. Two threads working on neighbouring groups lost
# 10-15% of the second group's time (PROFILE.md section 19: the prefetcher, which works within a page, reading
# ahead into the block the other core writes); the threads take the even groups first where there are more
# groups than threads, and this gap keeps the blocks of groups that run side by side anyway (two groups, or as
# many threads as groups) on pages of their own.
cdef Py_ssize_t ENSEMBLE_GROUP_GAP = 1024


cdef struct Ens:
    Plan p                     # sizes, acts, loss, batch_size, the gather offsets and work_per_row (all members)
    Py_ssize_t K               # members
    Py_ssize_t n_groups
    const double *keep         # (K, L - 1) keep probability of member k's hidden layer l at keep[k (L - 1) + l - 1]
    Py_ssize_t *table          # one malloc'd block behind the tables below
    Py_ssize_t *w_off          # (L + 1,) offset of layer l's W block (index 0 unused)
    Py_ssize_t *b_off          # its biases
    Py_ssize_t *s_off          # its PReLU slopes, -1 for other activations
    Py_ssize_t *z_off          # (L + 1,) Z_l (hidden: side by side; output: member-major)
    Py_ssize_t *a_off          # A_l
    Py_ssize_t *m_off          # M_l, -1 where no member drops units of layer l
    Py_ssize_t *d_off          # D_l = A_l * M_l
    Py_ssize_t *run_off        # member k's parameters (in a Network's order) as contiguous runs, the runs
    Py_ssize_t *run_len        #   member_run[k]..member_run[k + 1]: offset, length,
    Py_ssize_t *run_w          #   and 1 for runs of weights (L2, norms), 0 for biases and slopes
    Py_ssize_t *member_run     # (K + 1,)
    Py_ssize_t *group_of       # (K,) the group of member k
    Py_ssize_t n_runs          # runs per member at most
    Py_ssize_t *group_run      # (n_groups + 1,) group g's parameters are the runs group_run[g]..group_run[g + 1]
    Py_ssize_t *g_run_off      #   of these (merged where contiguous): the update's runs when the members'
    Py_ssize_t *g_run_len      #   learning rates are the same
    Py_ssize_t *delta_off      # (L + 1,) delta_l, one buffer per layer: a group that is ahead must not
                               #   write where another still reads (the layers' widths differ)
    Py_ssize_t gather_size     # each group's rows of a batch: group g's at work + g (gather_size + gap) (X, Y,
                               #   weights at the plan's x_off, y_off, sw_off from there)
    Py_ssize_t norm_lines      # cache lines of a member's norm sums and a batch's squares (2 L doubles)
    Py_ssize_t ones_off        # (batch,) ones: the bias gradient of a single output unit, all members in one GEMV
    Py_ssize_t gap             # elements between two groups' parts of each block of the parameters and of the
                               #   workspace (0: one group), see ENSEMBLE_GROUP_GAP and _ens_block
    Py_ssize_t n_params
    Py_ssize_t work_size


cdef inline bint _wide(const Ens *e, Py_ssize_t l) noexcept nogil:
    """Whether layer l's W holds the members side by side (the first layer, when it is hidden)."""
    return l == 1 and e.p.n_layers > 1


cdef int _ens_init(Ens *e, const Py_ssize_t[::1] sizes, const int[::1] acts, const double[:, ::1] keep,
                   Py_ssize_t K, Py_ssize_t batch_size, bint training) except -1:
    """The ensemble's parameter offsets, runs, groups and (training) workspace offsets."""
    cdef Py_ssize_t L = sizes.shape[0] - 1, l, k, r, off = 0, B = batch_size, n_runs, i, m0, m1, widest
    cdef Py_ssize_t g, region
    cdef bint drops
    e.K = K
    e.p.n_layers = L
    e.norm_lines = (2 * L + LINE - 1) // LINE  # the sums, then a batch's squares
    e.p.sizes = &sizes[0]
    e.p.acts = &acts[0]
    e.p.keep = NULL
    e.p.table = NULL
    e.p.batch_size = B
    e.keep = &keep[0, 0] if keep is not None and keep.shape[1] > 0 else NULL
    n_runs = (sizes[0] if L > 1 else 1) + (L - 1) + L  # W_1's rows (wide) or block, the other W_l, the b_l
    for l in range(1, L):
        if acts[l - 1] == FM_PRELU:
            n_runs += 1
    e.n_runs = n_runs
    e.table = <Py_ssize_t *>malloc((8 * (L + 1) + 5 * K * n_runs + MAX_GROUPS + 1 + 2 * K + 1)
                                   * sizeof(Py_ssize_t))
    if e.table == NULL:
        raise MemoryError("fastmlp: cannot allocate the ensemble's tables")
    e.w_off = e.table
    e.b_off = e.table + (L + 1)
    e.s_off = e.table + 2 * (L + 1)
    e.z_off = e.table + 3 * (L + 1)
    e.a_off = e.table + 4 * (L + 1)
    e.m_off = e.table + 5 * (L + 1)
    e.d_off = e.table + 6 * (L + 1)
    e.delta_off = e.table + 7 * (L + 1)
    e.run_off = e.table + 8 * (L + 1)
    e.run_len = e.run_off + K * n_runs
    e.run_w = e.run_len + K * n_runs
    e.g_run_off = e.run_w + K * n_runs
    e.g_run_len = e.g_run_off + K * n_runs
    e.group_run = e.g_run_len + K * n_runs
    e.member_run = e.group_run + MAX_GROUPS + 1
    e.group_of = e.member_run + K + 1
    for l in range(L + 1):
        e.w_off[l] = e.b_off[l] = e.s_off[l] = e.z_off[l] = e.a_off[l] = e.m_off[l] = e.d_off[l] = -1
        e.delta_off[l] = -1
    e.p.work_per_row = 0
    for l in range(1, L + 1):
        e.p.work_per_row += 3.0 * K * sizes[l - 1] * sizes[l]
    e.n_groups = 1
    while (2 * e.n_groups <= min(K, <Py_ssize_t>MAX_GROUPS)
           and e.p.work_per_row * B >= 2 * e.n_groups * ENSEMBLE_GROUP_WORK):
        e.n_groups *= 2
    widest = 0
    for l in range(1, L):
        widest = max(widest, sizes[l])
    if e.n_groups == 1 and K >= 2 and B * widest * K > SMALL_GROUP_BLOCK:
        e.n_groups = 2  # (see SMALL_GROUP_BLOCK)
    # each block: the K members' parts, group after group, a gap after each group's (ENSEMBLE_GROUP_GAP)
    e.gap = ENSEMBLE_GROUP_GAP if e.n_groups > 1 else 0
    for l in range(1, L + 1):
        e.w_off[l] = off
        off += K * sizes[l - 1] * sizes[l] + e.n_groups * e.gap
        e.b_off[l] = off
        off += K * sizes[l] + e.n_groups * e.gap
    for l in range(1, L):
        if acts[l - 1] == FM_PRELU:
            e.s_off[l] = off
            off += K * sizes[l] + e.n_groups * e.gap
    e.n_params = off
    for r in range(e.n_groups):
        for k in range(r * K // e.n_groups, (r + 1) * K // e.n_groups):
            e.group_of[k] = r
    i = 0
    for k in range(K):
        e.member_run[k] = i
        _ens_group_members(e, e.group_of[k], &m0, &m1)
        g = e.group_of[k]
        for l in range(1, L + 1):
            if _wide(e, l):
                for r in range(sizes[0]):
                    _ens_run(e, &i, e.member_run[k], _ens_block(e, e.w_off, l, g) + sizes[0] * m0 * sizes[1]
                             + r * (m1 - m0) * sizes[1] + (k - m0) * sizes[1], sizes[1], 1)
            else:
                _ens_run(e, &i, e.member_run[k], _ens_block(e, e.w_off, l, g) + k * sizes[l - 1] * sizes[l],
                         sizes[l - 1] * sizes[l], 1)
            _ens_run(e, &i, e.member_run[k], _ens_block(e, e.b_off, l, g) + k * sizes[l], sizes[l], 0)
        for l in range(1, L):
            if e.s_off[l] >= 0:
                _ens_run(e, &i, e.member_run[k], _ens_block(e, e.s_off, l, g) + k * sizes[l], sizes[l], 0)
    e.member_run[K] = i
    i = 0
    for k in range(e.n_groups):
        _ens_group_members(e, k, &m0, &m1)
        e.group_run[k] = i
        for l in range(1, L + 1):
            if _wide(e, l):
                _group_run(e, &i, e.group_run[k], _ens_block(e, e.w_off, l, k) + sizes[0] * m0 * sizes[1],
                           sizes[0] * (m1 - m0) * sizes[1])
            else:
                _group_run(e, &i, e.group_run[k], _ens_block(e, e.w_off, l, k) + m0 * sizes[l - 1] * sizes[l],
                           (m1 - m0) * sizes[l - 1] * sizes[l])
            _group_run(e, &i, e.group_run[k], _ens_block(e, e.b_off, l, k) + m0 * sizes[l], (m1 - m0) * sizes[l])
        for l in range(1, L):
            if e.s_off[l] >= 0:
                _group_run(e, &i, e.group_run[k], _ens_block(e, e.s_off, l, k) + m0 * sizes[l],
                           (m1 - m0) * sizes[l])
    e.group_run[e.n_groups] = i

    off = 0
    e.p.x_off = off
    off += B * sizes[0]
    e.p.y_off = off
    off += B * sizes[L]
    e.p.sw_off = off
    off += B
    e.gather_size = off
    off = e.n_groups * (e.gather_size + e.gap)
    e.ones_off = off
    off += B
    # each array: the K members' blocks, group after group, a gap after each group's (as the parameters')
    for l in range(1, L + 1):
        region = K * B * sizes[l] + e.n_groups * e.gap
        e.z_off[l] = off
        e.delta_off[l] = off + region
        off += 2 * region
        if l == L:
            continue
        e.a_off[l] = off
        off += region
        drops = False
        if training and e.keep != NULL:
            for k in range(K):
                drops = drops or e.keep[k * (L - 1) + l - 1] < 1.0
        if drops:
            e.m_off[l] = off
            e.d_off[l] = off + region
            off += 2 * region
    e.work_size = off
    return 0


cdef inline void _ens_run(Ens *e, Py_ssize_t *i, Py_ssize_t first, Py_ssize_t offset, Py_ssize_t length,
                          bint weights) noexcept:
    """Appends a run to the member's whose runs start at `first`, merged with the last where contiguous
    and of the same kind."""
    if i[0] > first and e.run_w[i[0] - 1] == weights and e.run_off[i[0] - 1] + e.run_len[i[0] - 1] == offset:
        e.run_len[i[0] - 1] += length
        return
    e.run_off[i[0]] = offset
    e.run_len[i[0]] = length
    e.run_w[i[0]] = weights
    i[0] += 1


cdef inline void _ens_group_members(const Ens *e, Py_ssize_t g, Py_ssize_t *m0, Py_ssize_t *m1) noexcept nogil:
    """The members m0..m1 (m1 excluded) of group g."""
    m0[0] = g * e.K // e.n_groups
    m1[0] = (g + 1) * e.K // e.n_groups


cdef inline Py_ssize_t _ens_block(const Ens *e, const Py_ssize_t *off, Py_ssize_t l, Py_ssize_t g) noexcept nogil:
    """The offset of layer l's block (off: w_off, b_off or s_off in the parameters; z_off, a_off, m_off,
    d_off or delta_off in the workspace) as group g's members find it: past the gaps of the groups before g
    (ENSEMBLE_GROUP_GAP), member k's part at k times its size from there, as without gaps."""
    return off[l] + g * e.gap


cdef inline void _group_run(Ens *e, Py_ssize_t *i, Py_ssize_t first, Py_ssize_t offset,
                            Py_ssize_t length) noexcept:
    """Appends a run to the group's whose runs start at `first`, merged with the last where contiguous."""
    if i[0] > first and e.g_run_off[i[0] - 1] + e.g_run_len[i[0] - 1] == offset:
        e.g_run_len[i[0] - 1] += length
        return
    e.g_run_off[i[0]] = offset
    e.g_run_len[i[0]] = length
    i[0] += 1


cdef inline void _ens_free(Ens *e) noexcept:
    free(e.table)
    e.table = NULL


cdef inline double _ens_keep(const Ens *e, Py_ssize_t k, Py_ssize_t l) noexcept nogil:
    """Member k's keep probability on hidden layer l (1 without dropout)."""
    if e.keep == NULL or e.m_off[l] < 0:
        return 1.0
    return e.keep[k * (e.p.n_layers - 1) + l - 1]


cdef inline Py_ssize_t _ens_at(Py_ssize_t B, Py_ssize_t n, Py_ssize_t k, Py_ssize_t m0, Py_ssize_t m1,
                               Py_ssize_t *ld) noexcept nogil:
    """Where member k (of the group m0..m1) starts in a hidden layer's array of n units per member, for
    batches of at most B rows (the plan's batch size: the groups' blocks do not move with a shorter last
    batch, which one group may reach while another is still on a full one), and the row stride of its
    group's block."""
    ld[0] = (m1 - m0) * n
    return B * m0 * n + (k - m0) * n


cdef inline const floating *_ens_input(const Ens *e, const floating *work, const Batch *batch, Py_ssize_t l,
                                       Py_ssize_t k, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t *ld) noexcept nogil:
    """Member k's A_{l-1} as layer l reads it (X, D_{l-1} where it drops units, else A_{l-1}) and its row stride."""
    cdef Py_ssize_t at
    if l == 1:
        ld[0] = e.p.sizes[0]
        return <const floating *>batch.X
    at = _ens_at(e.p.batch_size, e.p.sizes[l - 1], k, m0, m1, ld)
    if _ens_keep(e, k, l - 1) < 1.0:
        return work + _ens_block(e, e.d_off, l - 1, e.group_of[m0]) + at
    return work + _ens_block(e, e.a_off, l - 1, e.group_of[m0]) + at


cdef inline floating *_ens_delta(const Ens *e, floating *work, Py_ssize_t l, Py_ssize_t g) noexcept nogil:
    """delta_l's buffer as group g's members find it (see _ens_block)."""
    return work + _ens_block(e, e.delta_off, l, g)


cdef inline void _ens_weights(const Ens *e, const floating *params, Py_ssize_t l, Py_ssize_t k,
                              const floating **W, Py_ssize_t *ld) noexcept nogil:
    """Member k's W_l and its row stride."""
    cdef Py_ssize_t fan_in = e.p.sizes[l - 1], fan_out = e.p.sizes[l], m0, m1
    if _wide(e, l):
        _ens_group_members(e, e.group_of[k], &m0, &m1)
        W[0] = params + _ens_block(e, e.w_off, l, e.group_of[k]) + fan_in * m0 * fan_out + (k - m0) * fan_out
        ld[0] = (m1 - m0) * fan_out
    else:
        W[0] = params + _ens_block(e, e.w_off, l, e.group_of[k]) + k * fan_in * fan_out
        ld[0] = fan_out


cdef void _ens_hidden_forward(const Ens *e, const floating *params, floating *work, Py_ssize_t l,
                              Py_ssize_t B, Py_ssize_t m0, Py_ssize_t m1, floating *unit_max) noexcept nogil:
    """Group m0..m1 of hidden layer l: Z_l += b_l, A_l = f(Z_l), over the group's block at once; unit_max,
    when not NULL, the running largest Z_l of the layer's units (the K members' side by side)."""
    cdef Py_ssize_t n = e.p.sizes[l], c0 = m0 * n, cols = (m1 - m0) * n, i = e.p.batch_size * m0 * n
    cdef Py_ssize_t g = e.group_of[m0]
    cdef floating *Z = work + _ens_block(e, e.z_off, l, g) + i
    cdef floating *A = work + _ens_block(e, e.a_off, l, g) + i
    cdef const floating *b = params + _ens_block(e, e.b_off, l, g) + c0
    if unit_max != NULL:
        unit_max += c0
    if e.s_off[l] >= 0:
        _prelu_forward(B, cols, cols, b, params + _ens_block(e, e.s_off, l, g) + c0, Z, A, unit_max)
    else:
        _bias_act_forward(e.p.acts[l - 1], B, cols, cols, b, Z, A, unit_max)


cdef void _ens_hidden_backward(const Ens *e, const floating *params, floating *grads, floating *work,
                               Py_ssize_t l, Py_ssize_t B, Py_ssize_t m0, Py_ssize_t m1,
                               floating *delta) noexcept nogil:
    """Group m0..m1 of hidden layer l, delta_l = dL/dA_l on entry: * M_l, * f'(Z_l) (and the PReLU
    slopes' gradient), then db_l = sum over rows of delta_l."""
    cdef Py_ssize_t n = e.p.sizes[l], c0 = m0 * n, cols = (m1 - m0) * n, i = e.p.batch_size * m0 * n, r, k, at, ld
    cdef Py_ssize_t g = e.group_of[m0]
    cdef const floating *Z = work + _ens_block(e, e.z_off, l, g) + i
    for k in range(m0, m1):
        if _ens_keep(e, k, l) < 1.0:
            at = _ens_at(e.p.batch_size, n, k, m0, m1, &ld)
            for r in range(B):
                _mul(n, work + _ens_block(e, e.m_off, l, g) + at + r * ld, delta + at + r * ld)
    if e.s_off[l] >= 0:
        _prelu_backward(B, cols, cols, False, Z, params + _ens_block(e, e.s_off, l, g) + c0, delta + i,
                        grads + _ens_block(e, e.s_off, l, g) + c0)
    else:
        _act_backward(e.p.acts[l - 1], B, cols, cols, Z, work + _ens_block(e, e.a_off, l, g) + i, delta + i)
    _col_sum(B, cols, False, delta + i, grads + _ens_block(e, e.b_off, l, g) + c0)


cdef double _ens_weight_norm(const Ens *e, const floating *grads, Py_ssize_t k, Py_ssize_t l) noexcept nogil:
    """||dW_l|| of member k: BLAS's norm of its block, or of the rows of its columns of a wide W_1 (their
    squares summed; scaled norms combined where they overflow)."""
    cdef Py_ssize_t fan_in = e.p.sizes[l - 1], fan_out = e.p.sizes[l], r, m0, m1, ld
    cdef double squares = 0, total = 0, largest = 0
    cdef const floating *G
    if not _wide(e, l):
        return _nrm2(<int>(fan_in * fan_out), grads + _ens_block(e, e.w_off, l, e.group_of[k]) + k * fan_in * fan_out)
    _ens_group_members(e, e.group_of[k], &m0, &m1)
    G = grads + _ens_block(e, e.w_off, l, e.group_of[k]) + fan_in * m0 * fan_out + (k - m0) * fan_out
    ld = (m1 - m0) * fan_out
    if m1 - m0 == 1:
        return _nrm2(<int>(fan_in * fan_out), G)
    for r in range(fan_in):
        squares += _dot(<int>fan_out, G + r * ld, G + r * ld)
    if isfinite(squares):
        return sqrt(squares)
    for r in range(fan_in):
        total = _scaled_sum_sq(total, &largest, _nrm2(<int>fan_out, G + r * ld))
    return largest * sqrt(total)


cdef inline bint _ens_one_run_per_layer(const Ens *e, Py_ssize_t k) noexcept nogil:
    """Whether member k's parameters hold one run of weights per layer (a member alone in its group: its wide
    W_1 is one block too)."""
    cdef Py_ssize_t r, n = 0
    for r in range(e.member_run[k], e.member_run[k + 1]):
        n += e.run_w[r]
    return n == e.p.n_layers


cdef inline bint _ens_small_output(const Ens *e, Py_ssize_t m0, Py_ssize_t m1) noexcept nogil:
    """Whether the group's output layer goes through the members kernels: small, after a hidden layer
    (not the wide first layer), and read by every member from the same kind of array (A_{L-1}, or D_{L-1}
    when every member drops units there)."""
    cdef Py_ssize_t L = e.p.n_layers, k
    if L < 2 or e.p.sizes[L - 1] * e.p.sizes[L] > SMALL_OUTPUT:
        return False
    for k in range(m0 + 1, m1):
        if (_ens_keep(e, k, L - 1) < 1.0) != (_ens_keep(e, m0, L - 1) < 1.0):
            return False
    return True


cdef void _ens_group(const Ens *e, const Settings *s, const Batch *batch, floating *params, floating *grads,
                     floating *state_1, floating *state_2, floating *work, fm_rng *rngs,
                     const double *learning_rates, const double *alphas, double *losses, bint *finite,
                     long long *steps, double *norm_sums, floating *unit_max, Py_ssize_t g) noexcept nogil:
    """Group g's whole step of one batch: forward, output, backward, L2, clipping and update of its members.

    Per member k, one cache line apart (LINE, FLAG_LINE): losses[k LINE] gets
    its mean loss plus its L2 term; finite[k FLAG_LINE] whether it is finite
    (if not, member k is not updated, and steps[k LINE], Adam's t, does not
    count the batch). norm_sums, when not NULL, gets ||dW_l|| of member k
    (after L2, before clipping) added at [k LINE norm_lines + l - 1]; unit_max,
    when not NULL, the running largest Z_l of each hidden unit (per layer,
    the K members' units side by side).
    """
    cdef Py_ssize_t L = e.p.n_layers, K = e.K, B = batch.n_rows, n_out = e.p.sizes[L], l, k, r, c, fan_in, fan_out
    cdef Py_ssize_t S = e.p.batch_size  # the rows of a group's blocks (see _ens_at)
    cdef Py_ssize_t m0, m1, ld_in, ld_w, ld_d, ld_out
    cdef const floating *A_in
    cdef const floating *W
    cdef floating *delta
    cdef floating *delta_prev
    cdef floating *delta_k
    cdef double keep, loss, squares, total, largest, step_size
    cdef Py_ssize_t stride = 0
    cdef bint uniform, small, fold
    cdef Settings member
    cdef floating *unit = unit_max
    _ens_group_members(e, g, &m0, &m1)
    small = _ens_small_output(e, m0, m1)
    # forward
    for l in range(1, L + 1):
        fan_in = e.p.sizes[l - 1]
        fan_out = e.p.sizes[l]
        if _wide(e, l):
            # Z_1 = X_b @ [W_1^m0 ... W_1^m1]: one product for the group's members
            if fan_in <= NARROW_INPUTS:
                _narrow_matmul(B, fan_in, (m1 - m0) * fan_out, <const floating *>batch.X, fan_in,
                               params + _ens_block(e, e.w_off, 1, g) + fan_in * m0 * fan_out, (m1 - m0) * fan_out,
                               work + _ens_block(e, e.z_off, 1, g) + S * m0 * fan_out, (m1 - m0) * fan_out)
            else:
                _gemm(c'N', c'N', <int>B, <int>((m1 - m0) * fan_out), <int>fan_in, <floating>1,
                      <const floating *>batch.X, <int>fan_in,
                      params + _ens_block(e, e.w_off, 1, g) + fan_in * m0 * fan_out,
                      <int>((m1 - m0) * fan_out), <floating>0, work + _ens_block(e, e.z_off, 1, g) + S * m0 * fan_out,
                      <int>((m1 - m0) * fan_out))
        elif l == L and small:
            # Z_L = A_{L-1} @ W_L of every member of the group, one call (member-major Z_L)
            A_in = _ens_input(e, work, batch, l, m0, m0, m1, &ld_in)
            _members_forward(m1 - m0, B, fan_in, fan_out, A_in, ld_in,
                             params + _ens_block(e, e.w_off, l, g) + m0 * fan_in * fan_out,
                             work + _ens_block(e, e.z_off, l, g) + m0 * S * fan_out, S * fan_out)
        else:
            for k in range(m0, m1):
                # Z_l = A_{l-1} @ W_l, member by member (the output's Z_L member-major)
                A_in = _ens_input(e, work, batch, l, k, m0, m1, &ld_in)
                _ens_weights(e, params, l, k, &W, &ld_w)
                if l == L and fan_out == 1:
                    # one output: Z_L^T = W_L^T @ A_{L-1}^T, a matrix-vector product (the shim's GEMV)
                    _gemm(c'N', c'T', 1, <int>B, <int>fan_in, <floating>1, W, <int>fan_in, A_in, <int>ld_in,
                          <floating>0, work + _ens_block(e, e.z_off, l, g) + k * S, <int>B)
                elif l == L:
                    _gemm(c'N', c'N', <int>B, <int>fan_out, <int>fan_in, <floating>1, A_in, <int>ld_in, W, <int>ld_w,
                          <floating>0, work + _ens_block(e, e.z_off, l, g) + k * S * fan_out, <int>fan_out)
                else:
                    c = _ens_at(S, fan_out, k, m0, m1, &ld_out)
                    _gemm(c'N', c'N', <int>B, <int>fan_out, <int>fan_in, <floating>1, A_in, <int>ld_in, W, <int>ld_w,
                          <floating>0, work + _ens_block(e, e.z_off, l, g) + c, <int>ld_out)
        if l == L:
            break
        _ens_hidden_forward(e, params, work, l, B, m0, m1, unit)
        if unit != NULL:  # (the group's units of layer l side by side in Z_l's rows and in unit_max)
            unit += K * fan_out
        for k in range(m0, m1):
            keep = _ens_keep(e, k, l)
            if keep < 1.0:
                # D_l = A_l * M_l from member k's own PRNG, row by row (the sequence of one call over its block)
                c = _ens_at(S, fan_out, k, m0, m1, &ld_out)
                for r in range(B):
                    _dropout(fan_out, <floating>keep, &rngs[k], work + _ens_block(e, e.a_off, l, g) + c + r * ld_out,
                             work + _ens_block(e, e.m_off, l, g) + c + r * ld_out,
                             work + _ens_block(e, e.d_off, l, g) + c + r * ld_out)
    # output: P = g(Z_L + b_L), the loss, delta_L = w scale dloss/dZ_L, member by member
    delta = _ens_delta(e, work, L, g)
    for k in range(m0, m1):
        losses[k * LINE] = 0
        _output_delta(e.p.loss, B, n_out, <floating>(1.0 / batch.weight), e.p.loss_param,
                      params + _ens_block(e, e.b_off, L, g) + k * n_out, <const floating *>batch.Y,
                      <const floating *>batch.sw, work + _ens_block(e, e.z_off, L, g) + k * S * n_out,
                      delta + k * S * n_out, &losses[k * LINE])
    # backward
    for l in range(L, 0, -1):
        fan_in = e.p.sizes[l - 1]
        fan_out = e.p.sizes[l]
        delta = _ens_delta(e, work, l, g)
        delta_prev = _ens_delta(e, work, l - 1, g) if l > 1 else NULL
        if l < L:
            _ens_hidden_backward(e, params, grads, work, l, B, m0, m1, delta)
        if _wide(e, l):
            # dW_1 = X_b^T @ [delta_1^m0 ... delta_1^m1]: one product for the group's members
            if fan_in <= NARROW_INPUTS:
                _narrow_tmatmul(B, fan_in, (m1 - m0) * fan_out, <const floating *>batch.X, fan_in,
                                delta + S * m0 * fan_out, (m1 - m0) * fan_out,
                                grads + _ens_block(e, e.w_off, 1, g) + fan_in * m0 * fan_out, (m1 - m0) * fan_out)
            else:
                _gemm(c'T', c'N', <int>fan_in, <int>((m1 - m0) * fan_out), <int>B, <floating>1,
                      <const floating *>batch.X, <int>fan_in, delta + S * m0 * fan_out, <int>((m1 - m0) * fan_out),
                      <floating>0, grads + _ens_block(e, e.w_off, 1, g) + fan_in * m0 * fan_out,
                      <int>((m1 - m0) * fan_out))
            continue
        if l == L and fan_out == 1:
            # db_L = (member-major delta_L, one row per member) @ ones: the group's members in one GEMV
            _gemm(c'N', c'T', 1, <int>(m1 - m0), <int>B, <floating>1, work + e.ones_off, <int>B, delta + m0 * S,
                  <int>S, <floating>0, grads + _ens_block(e, e.b_off, L, g) + m0, <int>(m1 - m0))
        if l == L and small:
            # dW_L = A_{L-1}^T @ delta_L and delta_{L-1} = delta_L @ W_L^T of every member, one call each
            A_in = _ens_input(e, work, batch, l, m0, m0, m1, &ld_in)
            _members_weight_grad(m1 - m0, B, fan_in, fan_out, A_in, ld_in, delta + m0 * S * fan_out, S * fan_out,
                                 grads + _ens_block(e, e.w_off, l, g) + m0 * fan_in * fan_out)
            c = _ens_at(S, fan_in, m0, m0, m1, &ld_out)
            _members_backprop(m1 - m0, B, fan_in, fan_out, delta + m0 * S * fan_out, S * fan_out,
                              params + _ens_block(e, e.w_off, l, g) + m0 * fan_in * fan_out, delta_prev + c, ld_out)
            if fan_out > 1:
                for k in range(m0, m1):
                    _col_sum(B, fan_out, False, delta + k * S * fan_out,
                             grads + _ens_block(e, e.b_off, L, g) + k * fan_out)
            continue
        for k in range(m0, m1):
            A_in = _ens_input(e, work, batch, l, k, m0, m1, &ld_in)
            if l == L:  # member k's delta_l
                delta_k = delta + k * S * fan_out
                ld_d = fan_out
            else:
                delta_k = delta + _ens_at(S, fan_out, k, m0, m1, &ld_d)
            # dW_l = A_{l-1}^T @ delta_l (one output: dW_L^T = delta_L^T @ A_{L-1}, a GEMV)
            if l == L and fan_out == 1:
                _gemm(c'N', c'N', 1, <int>fan_in, <int>B, <floating>1, delta_k, <int>B, A_in, <int>ld_in, <floating>0,
                      grads + _ens_block(e, e.w_off, l, g) + k * fan_in, <int>fan_in)
            else:
                _gemm(c'T', c'N', <int>fan_in, <int>fan_out, <int>B, <floating>1, A_in, <int>ld_in, delta_k,
                      <int>ld_d, <floating>0, grads + _ens_block(e, e.w_off, l, g) + k * fan_in * fan_out, <int>fan_out)
            if l == L and fan_out > 1:
                _col_sum(B, fan_out, False, delta_k, grads + _ens_block(e, e.b_off, L, g) + k * fan_out)
            if l > 1:
                # delta_{l-1} = delta_l @ W_l^T (times f' in _ens_hidden_backward)
                c = _ens_at(S, fan_in, k, m0, m1, &ld_out)
                _gemm(c'N', c'T', <int>B, <int>fan_in, <int>fan_out, <floating>1, delta_k, <int>ld_d,
                      params + _ens_block(e, e.w_off, l, g) + k * fan_in * fan_out, <int>fan_out, <floating>0,
                      delta_prev + c, <int>ld_out)
    # per member: L2, finiteness, clipping, update (of the whole group at once when the rates are one). A group
    # of one member without clipping (a large network's: one member a group) folds as a Network's batch does:
    # the L2 term's gradient joins the update, and the update's sums of squares are the norms of dW_l
    fold = m1 - m0 == 1 and s.clip_norm <= 0 and _ens_one_run_per_layer(e, m0)
    uniform = True
    for k in range(m0, m1):
        loss = losses[k * LINE] / batch.weight
        if alphas[k] > 0:
            squares = 0
            for r in range(e.member_run[k], e.member_run[k + 1]):
                if e.run_w[r]:
                    # the penalty alpha/(2n) ||W||^2; dW += alpha/n W (here, or in the update)
                    squares += _dot(<int>e.run_len[r], params + e.run_off[r], params + e.run_off[r])
                    if not fold:
                        _axpy(<int>e.run_len[r], <floating>(alphas[k] / batch.weight), params + e.run_off[r],
                              grads + e.run_off[r])
            loss += 0.5 * alphas[k] * squares / batch.weight
        losses[k * LINE] = loss
        finite[k * FLAG_LINE] = isfinite(loss)
        uniform = (uniform and finite[k * FLAG_LINE] and learning_rates[k] == learning_rates[m0]
                   and steps[k * LINE] == steps[m0 * LINE])
    stride = LINE * e.norm_lines
    if norm_sums != NULL and not fold:
        # ||dW_l||^2 of every member of the group (after L2, before clipping), one call per layer, into the
        # second half of each member's norm lines
        for k in range(m0, m1):
            for l in range(L):
                norm_sums[k * stride + L + l] = 0
        for l in range(1, L + 1):
            fan_in = e.p.sizes[l - 1]
            fan_out = e.p.sizes[l]
            if _wide(e, l):
                _block_sumsq(fan_in, m1 - m0, fan_out, (m1 - m0) * fan_out,
                             grads + _ens_block(e, e.w_off, l, g) + fan_in * m0 * fan_out,
                             norm_sums + m0 * stride + L + l - 1, stride)
            else:
                _block_sumsq(1, m1 - m0, fan_in * fan_out, 0,
                             grads + _ens_block(e, e.w_off, l, g) + m0 * fan_in * fan_out,
                             norm_sums + m0 * stride + L + l - 1, stride)
    for k in range(m0, m1):
        if not finite[k * FLAG_LINE]:
            continue
        if s.optimizer == FM_ADAM:
            steps[k * LINE] += 1
        if norm_sums != NULL and not fold:
            for l in range(1, L + 1):
                squares = norm_sums[k * stride + L + l - 1]
                # (squares past the largest double: BLAS's scaled norm)
                norm_sums[k * stride + l - 1] += (sqrt(squares) if isfinite(squares)
                                                  else _ens_weight_norm(e, grads, k, l))
        if s.clip_norm > 0:
            # the global norm of member k's gradients, combined with scaling so that no square overflows
            total = largest = 0
            for r in range(e.member_run[k], e.member_run[k + 1]):
                total = _scaled_sum_sq(total, &largest, _nrm2(<int>e.run_len[r], grads + e.run_off[r]))
            if largest * sqrt(total) > s.clip_norm:
                for r in range(e.member_run[k], e.member_run[k + 1]):
                    _scal(<int>e.run_len[r], <floating>(s.clip_norm / (largest * sqrt(total))), grads + e.run_off[r])
    for k in range(m0, m1):
        if not finite[k * FLAG_LINE] or (uniform and k > m0):
            continue
        member = s[0]
        member.learning_rate = learning_rates[k]
        step_size = 0
        if s.optimizer == FM_ADAM:
            step_size = (learning_rates[k] * sqrt(1 - pow(s.beta_2, steps[k * LINE]))
                         / (1 - pow(s.beta_1, steps[k * LINE])))
        if fold:
            l = 0
            for r in range(e.member_run[k], e.member_run[k + 1]):
                if not e.run_w[r]:
                    _update(&member, step_size, e.run_off[r], e.run_len[r], params, grads, state_1, state_2, NULL,
                            <floating>0)
                    continue
                l += 1  # (the member's runs of weights: one per layer, in order)
                squares = 0
                _update(&member, step_size, e.run_off[r], e.run_len[r], params, grads, state_1, state_2, &squares,
                        <floating>(alphas[k] / batch.weight))
                if norm_sums != NULL:
                    # ||dW_l + alpha/n W_l||: past the largest double, BLAS's scaled norm of dW_l (the L2 term
                    # left out there: such a gradient's norm is not finite either way)
                    norm_sums[k * stride + l - 1] += (sqrt(squares) if isfinite(squares)
                                                      else _ens_weight_norm(e, grads, k, l))
        elif uniform:
            for r in range(e.group_run[g], e.group_run[g + 1]):
                _update(&member, step_size, e.g_run_off[r], e.g_run_len[r], params, grads, state_1, state_2, NULL,
                        <floating>0)
        else:
            for r in range(e.member_run[k], e.member_run[k + 1]):
                _update(&member, step_size, e.run_off[r], e.run_len[r], params, grads, state_1, state_2, NULL,
                        <floating>0)


cdef inline Py_ssize_t _ens_task_group(Py_ssize_t task, Py_ssize_t n_groups) noexcept nogil:
    """The group the threads' task-th task runs: the even groups, then the odd ones. A group's blocks lie
    next to its neighbours' in every array, and two threads working at once on neighbouring blocks lost 10-15%
    of the second block's time (PROFILE.md section 19: the groups after another ran slower whichever thread
    ran them); tasks taken in this order are not neighbours while the threads run them side by side."""
    cdef Py_ssize_t evens = (n_groups + 1) // 2
    return 2 * task if task < evens else 2 * (task - evens) + 1


cdef void _ens_group_epoch(const Ens *e, const Settings *s, const Data *d, const Py_ssize_t *order,
                           floating *params, floating *grads, floating *state_1, floating *state_2, floating *work,
                           fm_rng *rngs, const double *learning_rates, Py_ssize_t rate_rows, const double *alphas,
                           double *losses, bint *finite, long long *steps, double *norm_sums, floating *unit_max,
                           double *loss_sums, Py_ssize_t *n_batches, Py_ssize_t g) noexcept nogil:
    """Group g's epoch: every batch in order, each gathered into the group's own rows, then its step.

    learning_rates: rate_rows rows of the K members' rates, one row for the whole epoch (rate_rows = 1) or
    one per batch (a schedule's: row i for the batch starting at row i * batch_size).

    A group's members depend on no other group, so the groups' epochs run as
    independent tasks (no barrier per batch or layer), and the results are
    the same bits whichever thread runs a group. A member whose loss is not
    finite stops its group's epoch after that batch (not updated by it), with
    loss_sums[k * LINE] NaN; the other members of the group stop there too.
    """
    cdef Py_ssize_t n = d.n_rows, B = e.p.batch_size, start = 0, b, k, count = 0
    cdef Py_ssize_t m0, m1
    cdef floating *rows = work + g * (e.gather_size + e.gap)
    cdef Batch batch
    cdef bint all_finite = True
    cdef fm_fp_mode mode = fm_flush_subnormals()  # (on whichever thread runs the group; given back below)
    _ens_group_members(e, g, &m0, &m1)
    cdef const double *rates = learning_rates
    while start < n and all_finite:
        b = min(B, n - start)
        _batch_at(d, start, b, order, &e.p, rows, &batch)
        if rate_rows > 1:
            rates = learning_rates + (start // B) * e.K
        start += b
        if batch.weight <= 0:
            continue
        if batch.gathered:
            _gather_part(&e.p, d, &batch, rows, 0, 1)
        _ens_group(e, s, &batch, params, grads, state_1, state_2, work, rngs, rates, alphas, losses, finite,
                   steps, norm_sums, unit_max, g)
        for k in range(m0, m1):
            if finite[k * FLAG_LINE]:
                loss_sums[k * LINE] += losses[k * LINE] * (b if s.loss_per_row else batch.weight)
            else:
                loss_sums[k * LINE] = NAN
                all_finite = False
        count += 1
    n_batches[g] = count
    fm_fp_restore(mode)


def ensemble_index(const Py_ssize_t[::1] sizes, const int[::1] acts, Py_ssize_t n_members, Py_ssize_t batch_size):
    """Where each member's parameters are in the ensemble's buffer for batches of batch_size rows (the layout
    depends on the groups; see the comment above Ens): (index, n_params), index of shape (n_members,
    n_member_params) with member k's parameters, in a Network's order (W_1, b_1, ..., the PReLU slopes), at
    index[k]."""
    cdef Ens e
    cdef Py_ssize_t k, r, c, n, i
    cdef Py_ssize_t[:, ::1] at
    _ens_init(&e, sizes, acts, None, n_members, batch_size, False)
    try:
        n = 0
        for r in range(e.member_run[0], e.member_run[1]):
            n += e.run_len[r]
        index = np.empty((n_members, n), dtype=np.intp)
        at = index
        for k in range(n_members):
            c = 0
            for r in range(e.member_run[k], e.member_run[k + 1]):
                for i in range(e.run_len[r]):
                    at[k, c + i] = e.run_off[r] + i
                c += e.run_len[r]
        return index, e.n_params
    finally:
        _ens_free(&e)


def _ensemble_task_order(Py_ssize_t n_groups):
    """Test hook: the groups in the order the threads' tasks take them."""
    return [_ens_task_group(t, n_groups) for t in range(n_groups)]


def _ensemble_groups(const Py_ssize_t[::1] sizes, const int[::1] acts, Py_ssize_t n_members, Py_ssize_t batch_size):
    """Test hook: the group of each member (the threads' tasks) for batches of batch_size rows."""
    cdef Ens e
    _ens_init(&e, sizes, acts, None, n_members, batch_size, False)
    try:
        return [e.group_of[k] for k in range(n_members)]
    finally:
        _ens_free(&e)


def ensemble_workspace_size(const Py_ssize_t[::1] sizes, const int[::1] acts, const double[:, ::1] keep,
                            Py_ssize_t n_members, Py_ssize_t batch_size):
    """Elements of the workspace train_ensemble_epoch needs for batches of batch_size rows."""
    cdef Ens e
    _ens_init(&e, sizes, acts, keep, n_members, batch_size, True)
    _ens_free(&e)
    return e.work_size


cdef object _ens_arrays_refused(const Ens *e, Py_ssize_t n_params, Py_ssize_t n_grads, Py_ssize_t n_state_1,
                                Py_ssize_t n_state_2, Py_ssize_t n_work, const double[:, ::1] norm_sums,
                                object unit_max):
    """Why train_ensemble_epoch cannot run with arrays of these sizes (None: it can): its batches write every
    element of the parameters' layout, the workspace and, when given, the norms and the units' maxima."""
    cdef Py_ssize_t l, hidden = 0
    for l in range(1, e.p.n_layers):
        hidden += e.p.sizes[l]
    if n_params != e.n_params or n_grads != e.n_params:
        return f"params and grads have {n_params} and {n_grads} elements; the layout has {e.n_params}."
    if n_state_1 < e.n_params or n_state_2 < e.n_params:
        return f"the optimizer's state has {min(n_state_1, n_state_2)} elements; the layout has {e.n_params}."
    if n_work < e.work_size:
        return f"work has {n_work} elements; this epoch needs {e.work_size} (ensemble_workspace_size)."
    if norm_sums is not None and (norm_sums.shape[0] != e.K or norm_sums.shape[1] != e.p.n_layers):
        return f"norm_sums has shape {(norm_sums.shape[0], norm_sums.shape[1])}; it needs ({e.K}, {e.p.n_layers})."
    if unit_max is not None and len(unit_max) not in (0, e.K * hidden):
        return f"unit_max has {len(unit_max)} elements for {e.K} members of {hidden} hidden units."
    return None


def train_ensemble_epoch(const Py_ssize_t[::1] sizes, const int[::1] acts, const double[:, ::1] keep,
                         dict settings, const double[:, ::1] learning_rates, const double[::1] alphas,
                         const cnp.uint64_t[::1] seeds, long long[::1] steps, floating[::1] params,
                         floating[::1] grads, floating[::1] state_1, floating[::1] state_2, floating[::1] work,
                         object X, object Y, object sample_weight, const Py_ssize_t[::1] order, double[::1] loss_sums,
                         double[:, ::1] norm_sums, floating[::1] unit_max, double[::1] thread_clock):
    """One epoch of K members (K = learning_rates.shape[1]) in one pass over the batches, without the GIL.

    keep: (K, n_hidden) keep probabilities (None: no dropout); learning_rates:
    (1, K), each member's rate for the epoch, or (n_batches, K), its rate for
    each batch (schedules'); alphas, seeds (the dropout masks' PRNG seeds) and
    steps (Adam's t, updated in place): one per member; the other settings (as train_epoch's) are
    shared. X is a dense array. loss_sums[k] gets the sum over batches of
    member k's (batch mean loss + L2) * batch weight (rows with
    settings["loss_per_row"]): NaN when a member's loss
    was not finite (its group's epoch then stopped after that batch, which
    did not update that member; the other groups' epochs ran in full). norm_sums (K, L), when given, gets each batch's
    ||dW_l|| of member k added at [k, l - 1]; unit_max, when given (all hidden
    units: per layer the K members' units side by side), the largest
    pre-activation each unit saw. thread_clock: the ensemble's ThreadClock
    (a double[8] from new_thread_clock); the groups' epochs are the threads'
    tasks, so there is no per-batch choice of threads as train_epoch's clock
    makes, but an epoch of less work than ENSEMBLE_CLOCK_WORK is the clock's
    batch: run on the threads or on one as it chooses. thread_clock[4] counts
    the batches run on more than one thread. Returns the number of batches (of
    the first group).
    """
    cdef Settings s = _settings_from(settings)
    cdef Ens e
    cdef Data d
    cdef Py_ssize_t K = learning_rates.shape[1], B = s.batch_size, L = sizes.shape[0] - 1, b, k, g, n_batches
    cdef Py_ssize_t rate_rows = learning_rates.shape[0]
    cdef bint *finite = NULL
    cdef double *losses = NULL
    cdef fm_rng *rngs = NULL
    cdef Py_ssize_t *group_batches = NULL
    cdef long long *steps_at = NULL
    cdef double *sums = NULL
    cdef double *norms_at = NULL
    cdef void *block = NULL
    cdef Py_ssize_t lines
    cdef double *norms = NULL
    cdef floating *units = NULL
    cdef const Py_ssize_t *rows = NULL
    cdef int n_threads, choice = 0
    cdef bint clocked, whole = True
    cdef double tic, seconds, cut_before
    cdef ThreadClock clock
    if alphas.shape[0] != K or seeds.shape[0] != K or steps.shape[0] != K or loss_sums.shape[0] != K:
        raise ValueError("fastmlp: the ensemble's per-member arrays differ in length")
    _clock_view(&clock, _clock_values(thread_clock))
    _read_data(X, Y, sample_weight, &d, &params[0])
    if rate_rows != 1 and rate_rows < (d.n_rows + B - 1) // B:
        raise ValueError(f"learning_rates has {rate_rows} rows of rates for {(d.n_rows + B - 1) // B} batches.")
    _ens_init(&e, sizes, acts, keep if s.dropout else None, K, B, True)
    message = _ens_arrays_refused(&e, params.shape[0], grads.shape[0], state_1.shape[0], state_2.shape[0],
                                  work.shape[0], norm_sums, unit_max)
    if message is not None:
        _ens_free(&e)
        raise ValueError(message)
    e.p.loss = settings["loss"]
    e.p.loss_param = settings["loss_param"]
    if norm_sums is not None:
        norms = &norm_sums[0, 0]
    if unit_max is not None and unit_max.shape[0] > 0:
        units = &unit_max[0]
    if order is not None:
        rows = &order[0]
    # the groups (fixed by the sizes, ENSEMBLE_GROUP_WORK) are the threads' tasks, taken as they come
    # free: a thread that shares its core with another process takes fewer
    n_threads = min(s.n_threads, <int>e.n_groups)
    cut_before = thread_clock[7]
    _note_cut_recency()
    clocked = n_threads > 1 and _adapt and e.p.work_per_row * d.n_rows < ENSEMBLE_CLOCK_WORK
    if clocked:
        choice = _clock_choice(&clock)
        if choice:
            n_threads = 1
    _pin_blas()
    try:
        # the per-member scalars the groups write every batch, one cache line apart (see LINE)
        lines = K * (4 + e.norm_lines)
        block = malloc(lines * 64 + 64)
        rngs = <fm_rng *>malloc(K * sizeof(fm_rng))
        group_batches = <Py_ssize_t *>malloc(e.n_groups * sizeof(Py_ssize_t))
        if block == NULL or rngs == NULL or group_batches == NULL:
            raise MemoryError("fastmlp: cannot allocate the ensemble's per-member state")
        losses = <double *>((<size_t>block + 63) & ~(<size_t>63))  # (the first line boundary in the block)
        memset(losses, 0, lines * 64)
        sums = losses + K * LINE
        steps_at = <long long *>(sums + K * LINE)
        finite = <bint *>(steps_at + K * LINE)
        norms_at = <double *>(finite + K * FLAG_LINE)
        for k in range(K):
            steps_at[k * LINE] = steps[k]
        with nogil:
            for k in range(K):
                fm_rng_seed(&rngs[k], seeds[k])
            for b in range(B):
                work[e.ones_off + b] = 1
            tic = omp_get_wtime()
            if n_threads <= 1:
                for g in range(e.n_groups):
                    _ens_group_epoch(&e, &s, &d, rows, &params[0], &grads[0], &state_1[0], &state_2[0], &work[0],
                                     rngs, &learning_rates[0, 0], rate_rows, &alphas[0], losses, finite, steps_at,
                                     norms_at if norms != NULL else NULL, units, sums, group_batches, g)
            else:
                for g in prange(e.n_groups, num_threads=n_threads, schedule="dynamic", chunksize=1):
                    _ens_group_epoch(&e, &s, &d, rows, &params[0], &grads[0], &state_1[0], &state_2[0], &work[0],
                                     rngs, &learning_rates[0, 0], rate_rows, &alphas[0], losses, finite, steps_at,
                                     norms_at if norms != NULL else NULL, units, sums, group_batches,
                                     _ens_task_group(g, e.n_groups))
            seconds = omp_get_wtime() - tic
        for k in range(K):
            steps[k] = steps_at[k * LINE]
            loss_sums[k] += sums[k * LINE]
            whole = whole and not isnan(sums[k * LINE])  # (a group cut short: not a whole epoch's time)
            if norms != NULL:
                for b in range(L):
                    norms[k * L + b] += norms_at[k * LINE * e.norm_lines + b]
        n_batches = group_batches[0]
        if n_threads > 1:
            thread_clock[4] += n_batches
        if clocked and whole:
            _clock_record(&clock, choice, seconds, d.n_rows)
            note_cut_runs(cut_before, thread_clock)
    finally:
        _unpin_blas()
        free(block)
        free(rngs)
        free(group_batches)
        _ens_free(&e)
    return n_batches
