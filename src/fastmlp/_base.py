"""What fastmlp.Network and fastmlp.reference.Network share: validation,
parameter storage, initialisation, the per-epoch training loop and summary.

Subclasses supply the math through four hooks (thinc's Ops pattern: a NumPy
base, a compiled override):
    _forward(X, training, seed, n_threads=None) -> output
    _loss_and_gradients(X, Y, alpha, sample_weight) -> (loss, flat gradient)
    _prepare_training(trainer, batch_size)       (optional: size workspaces)
    _train_epoch(trainer, X, Y, sample_weight, order, batch_size, n_threads) -> (loss_sum, n_batches, finite)
n_threads is None (the default count) or a checked positive int; the NumPy
reference ignores it.
X reaching the hooks is a C-contiguous array or a canonical CSR matrix.
"""
import contextlib
import numbers
import time
from types import SimpleNamespace

import numpy as np

from . import _registry
from ._math import PRELU_INITIAL_SLOPE
from ._progress import EpochReporter
from ._validation import BLAS_INT_MAX, as_csr, as_float_array, check_bool, check_float, check_int, is_sparse


def _check_random_state(random_state):
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_)):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}.")
        return np.random.default_rng(int(random_state))
    raise TypeError(
        f"random_state must be None, an int or a numpy.random.Generator, got {random_state!r}."
    )


def _check_n_threads(n_threads):
    """None, or a positive int: the engine's thread count for one call."""
    return None if n_threads is None else check_int(n_threads, "n_threads", 1)


def _draw_seed(rng):
    """A 63-bit seed from a Generator or a RandomState (for the C PRNG)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63, dtype=np.int64))
    return int(rng.randint(0, 2**63 - 1, dtype=np.int64))


class _LayerList(list):
    """coefs_ / intercepts_: a list of views into the parameter buffer.

    Assigning an item copies into the existing view (validated), so the list
    keeps pointing at the model's own memory.
    """

    def __init__(self, views, check):
        super().__init__(views)
        self._check = check

    def __setitem__(self, index, value):
        if not isinstance(index, numbers.Integral) or isinstance(index, (bool, np.bool_)):
            raise TypeError("assign one layer at a time, by integer index")
        view = self[index]
        np.copyto(view, self._check(value, index))

    def __reduce__(self):
        return (list, (list(self),))

    def _fixed(self, *args, **kwargs):
        raise TypeError("the list of layers has one entry per layer: assign a whole new list, or one item")

    append = extend = insert = pop = remove = clear = sort = reverse = _fixed
    __delitem__ = __iadd__ = __imul__ = _fixed


class _Divergence(ValueError):
    """Training diverged; the weights were rolled back (the message says to what).

    A ValueError to the user; the estimators catch it to return their
    best-validation weights instead. to_call_start: the roll-back went past
    the failed epoch's start, to the state before the call.
    """

    def __init__(self, message, to_call_start=False):
        super().__init__(message)
        self.to_call_start = to_call_start


# scikit-learn's words for the same failure, kept so that code matching them keeps working
_SKLEARN_DIVERGENCE = ("Solver produced non-finite parameter weights. The input data may contain large values "
                       "and need to be preprocessed.")


class _Trainer(SimpleNamespace):
    """What BaseNetwork._trainer returns: optimizer settings, optimizer state and workspaces.

    Pickles as its settings and optimizer state only (what fastmlp.save keeps):
    the workspaces and start-of-epoch copies are scratch, allocated again by the
    next epoch, so a model sent between processes carries no more than it must.
    """

    _SCRATCH = ("grads", "work", "start_of_epoch", "state_at_start")

    def __reduce__(self):
        fields = {k: v for k, v in vars(self).items() if k not in self._SCRATCH}
        return type(self), (), dict(fields, capacity=0)

    def __setstate__(self, fields):
        vars(self).update(fields)
        self.start_of_epoch = np.empty_like(self.state[0])
        self.state_at_start = [np.empty_like(s) for s in self.state]


class BaseNetwork:
    """Shared implementation; see fastmlp.Network for the documentation."""

    def __init__(self, layer_sizes, activation="relu", output_activation="identity", loss="squared_error",
                 init="auto", dtype="float64", dropout=0.0, random_state=None):
        self.layer_sizes = self._check_layer_sizes(layer_sizes)
        L = len(self.layer_sizes) - 1
        hidden = _registry.activation(activation)
        self.activation = hidden.name
        self._output = _registry.output(output_activation, loss)
        self.output_activation = self._output.activation
        self.loss = self._output.loss_name
        if self.output_activation == "softmax" and self.layer_sizes[-1] < 2:
            raise ValueError("output_activation='softmax' needs at least 2 outputs; use 'logistic' for one.")
        self.init = init
        init_fn = _registry.lookup(_registry.INITS, init, "init")
        self.dtype = self._check_dtype(dtype)
        self.dropout = self._check_dropout(dropout, L - 1)
        self._rng = _check_random_state(random_state)

        self._hidden = [hidden] * (L - 1)
        self._act_codes = np.array([h.code for h in self._hidden] + [self._output.code], dtype=np.intc)
        self._keep = np.array([1.0 - r for r in self.dropout], dtype=np.float64)
        self._sizes = np.array(self.layer_sizes, dtype=np.intp)
        self._params = np.empty(self.n_params_, dtype=self.dtype)
        self._make_views()
        for l in range(L):
            W, b = init_fn(self.layer_sizes[l], self.layer_sizes[l + 1], self._rng, hidden.auto_init_factor)
            self._coefs[l][...] = W
            self._intercepts[l][...] = b
        for slopes in self._slopes:
            slopes[...] = PRELU_INITIAL_SLOPE

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _check_layer_sizes(layer_sizes):
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
            raise TypeError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}.")
        if len(layer_sizes) < 2:
            raise ValueError(
                f"layer_sizes must list at least the inputs and the outputs, got {list(layer_sizes)!r}."
            )
        sizes = tuple(check_int(s, f"layer_sizes[{i}]", 1, BLAS_INT_MAX) for i, s in enumerate(layer_sizes))
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        if n_params > BLAS_INT_MAX:
            raise ValueError(f"layer_sizes {sizes} give {n_params} parameters; at most {BLAS_INT_MAX}.")
        return sizes

    @staticmethod
    def _check_dtype(dtype):
        try:
            dt = np.dtype(dtype)
        except TypeError:
            dt = None
        # (np.dtype("float64") == None is True in NumPy, hence the explicit None test)
        if dt is None or dt not in [np.dtype(name) for name in _registry.DTYPES]:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
        return dt

    @staticmethod
    def _check_dropout(dropout, n_hidden):
        if isinstance(dropout, (numbers.Real, np.floating)) and not isinstance(dropout, (bool, np.bool_)):
            rates = [dropout] * n_hidden
        elif isinstance(dropout, (list, tuple, np.ndarray)):
            rates = list(dropout)
            if len(rates) != n_hidden:
                raise ValueError(
                    f"dropout must be a float or a list of {n_hidden} rates (one per hidden layer), "
                    f"got {len(rates)}."
                )
        else:
            raise TypeError(f"dropout must be a float or a list of floats, got {dropout!r}.")
        return [check_float(r, "dropout", 0.0, 1.0, high_open=True) for r in rates]

    def _check_X(self, X, name="X"):
        """A dense C-contiguous array, or a CSR matrix (scipy.sparse input), of the network's dtype."""
        X = as_csr(X, name, self.dtype) if is_sparse(X) else as_float_array(X, name, self.dtype)
        if X.shape[1] != self.layer_sizes[0]:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but the network takes {self.layer_sizes[0]} "
                f"(layer_sizes[0])."
            )
        return X

    def _check_Y(self, Y, n_samples, name="Y"):
        n_out = self.layer_sizes[-1]
        Y = as_float_array(Y, name, self.dtype, ndim=np.ndim(Y) if np.ndim(Y) in (1, 2) else 2)
        # class labels where log_loss needs one column per class: say how to get them
        hint = "" if self.loss != "log_loss" else (
            " One logistic output takes labels 0 and 1; for more classes use one softmax output per class "
            "with one-hot targets Y = np.eye(n_classes)[y]" if n_out == 1 else
            f" For class labels y (integers 0..{n_out - 1}), one-hot encode them: Y = np.eye({n_out})[y]")
        hint += ", or use fastmlp.MLPClassifier, which takes labels as they are." if hint else ""
        if Y.ndim == 1:
            if n_out != 1:
                raise ValueError(f"{name} is 1-D but the network has {n_out} outputs; expected shape "
                                 f"({n_samples}, {n_out}).{hint}")
            Y = Y.reshape(-1, 1)
        if Y.shape != (n_samples, n_out):
            raise ValueError(f"{name} has shape {Y.shape}, expected ({n_samples}, {n_out}): one row per "
                             f"sample of X and one column per output.{hint if Y.shape[1:] == (1,) else ''}")
        if self.loss == "log_loss" and (Y.min() < 0 or Y.max() > 1):
            raise ValueError(f"{name} must be in [0, 1] for loss='log_loss' (one-hot labels or "
                             f"probabilities).{hint}")
        if self.loss == "poisson" and Y.min() < 0:
            raise ValueError(f"{name} must be non-negative for loss='poisson'.")
        return Y

    def _check_sample_weight(self, sample_weight, n_samples):
        """None, or a (n_samples,) array of finite non-negative weights with a positive sum."""
        if sample_weight is None:
            return None
        sw = as_float_array(sample_weight, "sample_weight", self.dtype, ndim=1)
        if sw.shape[0] != n_samples:
            raise ValueError(f"sample_weight has {sw.shape[0]} entries, expected {n_samples} (one per sample).")
        if sw.min() < 0:
            raise ValueError("sample_weight must be non-negative.")
        if not sw.sum() > 0:
            raise ValueError("sample_weight must not be all zero: the weights must have a positive sum.")
        return sw

    # -------------------------------------------------------------- parameters

    @property
    def n_layers_(self):
        """Number of weight layers, ``len(layer_sizes) - 1``."""
        return len(self.layer_sizes) - 1

    @property
    def n_params_(self):
        """Number of trainable parameters (weights, biases and PReLU slopes)."""
        s = self.layer_sizes
        return sum(a * b + b for a, b in zip(s[:-1], s[1:])) + sum(self._slope_sizes())

    def _slope_sizes(self):
        """Units of each hidden layer with a learnable slope (prelu), in order."""
        return [n for n, h in zip(self.layer_sizes[1:-1], self._hidden) if h.learnable_slope]

    def _split_slopes(self, flat):
        """Views of the slopes at the end of a flat buffer, one per prelu hidden layer."""
        views, off = [], len(flat) - sum(self._slope_sizes())
        for n in self._slope_sizes():
            views.append(flat[off:off + n])
            off += n
        return views

    def _split(self, flat):
        """Views of a flat buffer as per-layer (W list, b list); PReLU slopes: _split_slopes."""
        Ws, bs, off = [], [], 0
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            Ws.append(flat[off:off + fan_in * fan_out].reshape(fan_in, fan_out))
            off += fan_in * fan_out
            bs.append(flat[off:off + fan_out])
            off += fan_out
        return Ws, bs

    def _make_views(self):
        Ws, bs = self._split(self._params)
        self._coefs = _LayerList(Ws, lambda v, i: self._check_layer_param(v, i, "coefs_", Ws[i].shape))
        self._intercepts = _LayerList(bs, lambda v, i: self._check_layer_param(v, i, "intercepts_", bs[i].shape))
        ss = self._split_slopes(self._params)
        self._slopes = _LayerList(ss, lambda v, i: self._check_layer_param(v, i, "prelu_slopes_", ss[i].shape))

    def _check_layer_param(self, value, index, name, shape):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}[{index}] must hold real numbers, got dtype {arr.dtype}.")
        if arr.shape != shape:
            raise ValueError(f"{name}[{index}] must have shape {shape}, got {arr.shape}.")
        # Cast to the network's dtype as NumPy assignment would, but never silently to infinity.
        with np.errstate(over="ignore", invalid="ignore"):
            cast = arr.astype(self.dtype, copy=False)
        if not np.isfinite(cast).all():
            if np.isfinite(arr).all():
                raise ValueError(f"{name}[{index}] has values up to {np.abs(arr).max():.3g} in magnitude, which "
                                 f"overflow the network's dtype {self.dtype} (largest {np.finfo(self.dtype).max:.3g}).")
            raise ValueError(f"{name}[{index}] contains NaN or infinity.")
        return cast

    def _set_layers(self, values, name, views):
        if isinstance(values, np.ndarray) or not isinstance(values, (list, tuple)):
            raise TypeError(f"{name} must be a list of {len(views)} arrays.")
        if len(values) != len(views):
            raise ValueError(f"{name} must hold {len(views)} arrays (one per layer), got {len(values)}.")
        checked = [self._check_layer_param(v, i, name, views[i].shape) for i, v in enumerate(values)]
        for view, arr in zip(views, checked):  # all checked before any is written
            np.copyto(view, arr)

    @property
    def coefs_(self):
        """List of weight matrices, coefs_[l] of shape (fan_in, fan_out); views into the model."""
        return self._coefs

    @coefs_.setter
    def coefs_(self, values):
        self._set_layers(values, "coefs_", self._coefs)

    @property
    def intercepts_(self):
        """List of bias vectors, intercepts_[l] of shape (fan_out,); views into the model."""
        return self._intercepts

    @intercepts_.setter
    def intercepts_(self, values):
        self._set_layers(values, "intercepts_", self._intercepts)

    @property
    def prelu_slopes_(self):
        """List of PReLU slopes, one (fan_out,) array per hidden layer (empty unless activation="prelu").

        Trained with the weights (no L2 penalty), initialised to 0.25; live views
        into the model, assignable like coefs_.
        """
        return self._slopes

    @prelu_slopes_.setter
    def prelu_slopes_(self, values):
        self._set_layers(values, "prelu_slopes_", self._slopes)

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_coefs"], state["_intercepts"], state["_slopes"]
        state.pop("_predictor", None)  # network.py's, remade on first use
        state.pop("_clock", None)  # network.py's thread timings: this process's, measured anew
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._make_views()

    # ------------------------------------------------------------------- public

    def forward(self, X, training=False, n_threads=None):
        """Compute the network's output for each row of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_inputs)
            The input rows; converted to the network's dtype (a C-contiguous
            array of that dtype is used as it is, sparse input as CSR).
        training : bool, default=False
            Apply inverted dropout as in training (masks drawn from random_state).
        n_threads : int or None, default=None
            The engine's threads for this call; None: OpenMP's count
            (``OMP_NUM_THREADS``, threadpoolctl's ``user_api="openmp"`` limit),
            at most the usable CPUs. Fewer are used when the rows are too few to
            pay for them; one row stays on the calling thread. The output is the
            same bits for any count.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            The output layer's activations, of the network's dtype.

        Raises
        ------
        ValueError
            If X has the wrong number of columns, or values that are not finite.

        See Also
        --------
        predict : The same without dropout.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import Network
        >>> net = Network([3, 5, 2], output_activation="softmax", loss="log_loss",
        ...               dropout=0.5, random_state=0)
        >>> X = np.ones((4, 3))
        >>> P = net.forward(X)
        >>> P.shape, bool(np.allclose(P.sum(axis=1), 1))
        ((4, 2), True)
        >>> bool((net.forward(X) == P).all())  # no dropout: deterministic
        True
        >>> net.forward(X, training=True).shape  # one dropout mask per call
        (4, 2)
        """
        if training is False and n_threads is None:
            out = self._fast_forward(X)
            if out is not None:
                return out
        training = check_bool(training, "training")
        n_threads = _check_n_threads(n_threads)
        X = self._check_X(X)
        return self._forward(X, training, _draw_seed(self._rng) if training else 0, n_threads)

    def predict(self, X):
        """Compute the network's output for each row of X, without dropout.

        The same as ``forward(X)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_inputs)
            The input rows; converted to the network's dtype. A C-contiguous
            array of the network's dtype and width is checked in compiled code
            only (the few microseconds of predicting one row).

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            The output layer's activations, of the network's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import Network
        >>> net = Network([3, 4, 1], dtype="float32", random_state=0)
        >>> out = net.predict(np.zeros((1, 3), dtype=np.float32))
        >>> out.shape, out.dtype
        ((1, 1), dtype('float32'))
        """
        out = self._fast_forward(X)
        return out if out is not None else self._forward(self._check_X(X), False, 0)

    def _fast_forward(self, X):
        """The output for X when X needs no conversion (a service's one row), else None; see network.py."""
        return None

    def loss_and_gradients(self, X, Y, alpha=0.0, sample_weight=None):
        """Compute the loss on (X, Y) and its exact gradients, without dropout.

        The loss is the mean over rows of the per-row loss plus
        alpha / (2 n) * sum_l ||W_l||^2; with sample_weight, the weighted mean
        and n = sum of the weights. The weights are not changed.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_inputs)
            The input rows.
        Y : array-like of shape (n_samples, n_outputs), or (n_samples,) for one output
            The targets: in [0, 1] for log_loss (one-hot labels or
            probabilities), non-negative for poisson.
        alpha : float, default=0.0
            Strength of the L2 penalty on the weights (not the biases).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with a positive sum; None weighs every row 1.

        Returns
        -------
        loss : float
            The loss, penalty included.
        coef_grads : list of ndarray
            The gradient of the loss in each weight matrix; coef_grads[l] has
            the shape of coefs_[l], (fan_in, fan_out).
        intercept_grads : list of ndarray
            The gradient in each bias vector; intercept_grads[l] has the shape of
            intercepts_[l], (fan_out,).
        slope_grads : list of ndarray
            Only for activation="prelu" (then the result is a 4-tuple): the
            gradient in each hidden layer's slopes, one (fan_out,) array each.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import Network
        >>> net = Network([2, 3, 1], random_state=0)
        >>> X, Y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0], [0.0]])
        >>> loss, coef_grads, intercept_grads = net.loss_and_gradients(X, Y, alpha=0.1)
        >>> [g.shape for g in coef_grads], [g.shape for g in intercept_grads]
        ([(2, 3), (3, 1)], [(3,), (1,)])

        The gradient is the exact one: a small step against it lowers the loss.

        >>> net.coefs_ = [W - 1e-3 * g for W, g in zip(net.coefs_, coef_grads)]
        >>> bool(net.loss_and_gradients(X, Y, alpha=0.1)[0] < loss)
        True
        """
        X = self._check_X(X)
        Y = self._check_Y(Y, X.shape[0])
        alpha = check_float(alpha, "alpha", 0.0)
        sample_weight = self._check_sample_weight(sample_weight, X.shape[0])
        loss, grads = self._loss_and_gradients(X, Y, alpha, sample_weight)
        dW, db = self._split(grads)
        if self._slope_sizes():
            return float(loss), dW, db, self._split_slopes(grads)
        return float(loss), dW, db

    def fit(self, X, Y, epochs=10, batch_size=32, optimizer="sgd", learning_rate=0.01, momentum=0.0,
            nesterov=False, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=0.0, clip_norm=None,
            shuffle=True, verbose=False, sample_weight=None, n_threads=None):
        """Train with mini-batch gradient descent, starting from the current weights.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (n_samples, n_inputs)
            Sparse input is used as CSR; the first layer then works on the
            nonzeros (memory O(nnz)).
        Y : array-like of shape (n_samples, n_outputs), or (n_samples,) for one output
            Targets; one-hot labels or probabilities in [0, 1] for log_loss.
        epochs : int, default=10
            Passes over the data; each is ceil(n_samples / batch_size) updates.
        batch_size : int, default=32
            Rows per update (at most n_samples); the last batch may be smaller.
        optimizer : {"sgd", "adam"}, default="sgd"
            Mini-batch stochastic gradient descent (with ``momentum``) or
            bias-corrected Adam. The optimizer state starts fresh at every call.
        learning_rate : float, default=0.01
            The step size, constant over the call (schedules belong to the
            caller: the estimators change it between epochs).
        momentum : float in [0, 1], default=0.0
            SGD momentum, in scikit-learn's form.
        nesterov : bool, default=False
            Nesterov's momentum (SGD).
        beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
            Adam's moment decays and its denominator term (bias-corrected Adam).
        alpha : float, default=0.0
            L2 penalty: the loss gains alpha / (2 batch) * sum ||W||^2.
        clip_norm : float or None, default=None
            Rescale the gradient so that its global norm (all layers, weights and
            biases) is at most clip_norm.
        shuffle : bool, default=True
            Shuffle the rows every epoch (from random_state).
        verbose : bool, default=False
            Print one line per epoch: epoch, loss, the range of the layers'
            gradient norms, seconds, samples/s; on a terminal, a progress line
            below them is updated in place.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each batch's loss and gradient are weighted
            means (a batch whose weights are all zero is skipped).
        n_threads : int or None, default=None
            The engine's threads: each batch's products, activations and update
            are split into blocks of units fixed by the layer sizes and shared
            by the threads, with BLAS on one thread inside each. None: OpenMP's
            count (``OMP_NUM_THREADS``, threadpoolctl's ``user_api="openmp"``
            limit), at most the usable CPUs; one when a batch is too small to
            pay for more. The weights, losses and gradient norms are the same
            bits for any count.

        Returns
        -------
        Network
            The network itself, trained; ``loss_curve_``, ``grad_norms_`` and
            ``dead_units_`` describe this call's epochs.

        Raises
        ------
        ValueError
            On bad input, and when the loss or the weights become non-finite; the
            weights are then those of the start of that epoch, or those before
            the call if the outputs of that epoch's start overflow on X.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import Network
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((64, 3))
        >>> Y = X @ np.array([[1.0], [-1.0], [0.5]])
        >>> net = Network([3, 8, 1], random_state=0)
        >>> net = net.fit(X, Y, epochs=20, batch_size=16, optimizer="adam", learning_rate=0.01)
        >>> len(net.loss_curve_), net.grad_norms_.shape
        (20, (20, 2))
        >>> bool(net.loss_curve_[-1] < net.loss_curve_[0])
        True
        """
        X = self._check_X(X)
        Y = self._check_Y(Y, X.shape[0])
        sample_weight = self._check_sample_weight(sample_weight, X.shape[0])
        epochs = check_int(epochs, "epochs", 1)
        shuffle = check_bool(shuffle, "shuffle")
        verbose = check_bool(verbose, "verbose")
        n_threads = _check_n_threads(n_threads)
        trainer = self._trainer(optimizer=optimizer, batch_size=batch_size, learning_rate=learning_rate,
                                momentum=momentum, nesterov=nesterov, beta_1=beta_1, beta_2=beta_2,
                                epsilon=epsilon, alpha=alpha, clip_norm=clip_norm)
        losses, norms = [], []
        reporter = EpochReporter(epochs) if verbose else None
        before = self._call_start(trainer, epochs)
        try:
            for epoch in range(1, epochs + 1):
                tic = time.perf_counter()
                loss, norm = self._epoch(trainer, X, Y, sample_weight, shuffle, epoch, before, n_threads)
                losses.append(loss)
                norms.append(norm)
                if reporter:
                    reporter.epoch(epoch, loss, norm, time.perf_counter() - tic, X.shape[0])
            overflow = self._check_outputs(trainer, X, epochs, before)
            if overflow is not None:
                losses.pop()
                norms.pop()
                raise overflow
        except _Divergence as exc:
            if exc.to_call_start:  # the record matches the weights: none of this call's epochs
                losses.clear()
                norms.clear()
            raise
        finally:
            if reporter:
                reporter.close()
            self.loss_curve_ = losses
            self.grad_norms_ = np.array(norms, dtype=np.float64).reshape(len(norms), self.n_layers_)
        return self

    def _trainer(self, optimizer, batch_size, learning_rate, momentum=0.0, nesterov=False, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, alpha=0.0, clip_norm=None):
        """Validated optimizer settings and fresh optimizer state, for _epoch.

        A trainer may be kept across calls (the estimators' partial_fit does);
        its settings may be changed between epochs (learning-rate schedules)
        through _set_learning_rate.
        """
        spec = _registry.lookup(_registry.OPTIMIZERS, optimizer, "optimizer")
        settings = dict(
            batch_size=check_int(batch_size, "batch_size", 1),
            optimizer=spec.name,
            learning_rate=check_float(learning_rate, "learning_rate", 0.0, low_open=True),
            momentum=check_float(momentum, "momentum", 0.0, 1.0),
            nesterov=check_bool(nesterov, "nesterov"),
            beta_1=check_float(beta_1, "beta_1", 0.0, 1.0, high_open=True),
            beta_2=check_float(beta_2, "beta_2", 0.0, 1.0, high_open=True),
            epsilon=check_float(epsilon, "epsilon", 0.0, low_open=True),
            alpha=check_float(alpha, "alpha", 0.0),
            clip_norm=None if clip_norm is None else check_float(clip_norm, "clip_norm", 0.0, low_open=True),
            dropout=bool((self._keep < 1).any()),
            step=0,
            seed=0,
        )
        return _Trainer(
            settings=settings,
            state=[np.zeros_like(self._params) for _ in range(spec.n_state)],
            grad_norm_sums=np.zeros(self.n_layers_),
            unit_max=np.empty(sum(self.layer_sizes[1:-1]), dtype=self.dtype),
            capacity=0,
            start_of_epoch=np.empty_like(self._params),
            state_at_start=[np.empty_like(self._params) for _ in range(spec.n_state)],
        )

    def _call_start(self, trainer, epochs):
        """The state before a call of `epochs` epochs, for _roll_back (None for one: that epoch's start)."""
        if epochs == 1:
            return None
        return self._params.copy(), [s.copy() for s in trainer.state], dict(trainer.settings)

    def _epoch(self, trainer, X, Y, sample_weight, shuffle, epoch=1, before=None, n_threads=None):
        """One epoch on checked arrays; returns (mean loss, per-layer mean ||dW||).

        On divergence rolls back (_roll_back) and raises _Divergence.
        """
        n = X.shape[0]
        batch = min(trainer.settings["batch_size"], n)
        if batch > trainer.capacity:
            self._prepare_training(trainer, batch)
            trainer.capacity = batch
        order = self._rng.permutation(n).astype(np.intp, copy=False) if shuffle else None
        trainer.settings["seed"] = _draw_seed(self._rng)
        trainer.grad_norm_sums[:] = 0
        trainer.unit_max[:] = -np.inf
        np.copyto(trainer.start_of_epoch, self._params)
        for saved, s in zip(trainer.state_at_start, trainer.state):
            np.copyto(saved, s)
        step = trainer.step_at_start = trainer.settings["step"]
        try:
            loss_sum, n_batches, finite = self._train_epoch(trainer, X, Y, sample_weight, order, batch, n_threads)
        except KeyboardInterrupt:
            # Ctrl-C is seen when the compiled epoch returns: undo that epoch, so the
            # weights are those of the last epoch recorded in loss_curve_
            self._restore_epoch_start(trainer, step)
            raise
        if not (finite and np.isfinite(self._params).all()):
            raise self._roll_back(trainer, X, epoch, before, "the loss or the weights became NaN or infinite")
        self._record_dead_units(trainer.unit_max)
        total_weight = n if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
        return float(loss_sum / total_weight), trainer.grad_norm_sums / max(n_batches, 1)

    def _restore_epoch_start(self, trainer, step):
        np.copyto(self._params, trainer.start_of_epoch)
        for s, saved in zip(trainer.state, trainer.state_at_start):
            np.copyto(s, saved)
        trainer.settings["step"] = step

    def _outputs_in_range(self, X):
        """Are the outputs on X finite? A bound on |z| through the layers
        (O(n_features * n_samples + n_params)) settles it in all but extreme
        cases, which get a forward pass."""
        return self._output_bound(X) < self._safe_output_magnitude() or np.isfinite(self._forward(X, False, 0)).all()

    def _check_outputs(self, trainer, X, epoch, before=None):
        """After the last epoch: None if the outputs on the training data are finite, else the _Divergence to raise.

        Every batch's loss was checked before its update; the last update of the
        last epoch was not, and finite weights can still overflow the outputs.
        If they do, the weights are rolled back (_roll_back) and the caller
        drops that epoch's record and raises: a fit that returns never predicts NaN.
        """
        if self._outputs_in_range(X):
            return None
        return self._roll_back(trainer, X, epoch, before, f"the network's outputs on the training data overflow "
                                                          f"{self.dtype}")

    def _roll_back(self, trainer, X, epoch, before, what):
        """After a divergence in `epoch`: restore the weights of its start and return the _Divergence to raise.

        Those weights passed their first batch but may still overflow the outputs
        on the rest of X (|W| ~ 1e158 after an epoch at a huge learning rate);
        then the state before the call (`before`, from _call_start) comes back.
        """
        self._restore_epoch_start(trainer, trainer.step_at_start)
        to_call_start = before is not None and not self._outputs_in_range(X)
        if to_call_start:
            params, state, settings = before
            np.copyto(self._params, params)
            for s, saved in zip(trainer.state, state):
                np.copyto(s, saved)
            trainer.settings.update(settings)  # the step, and a learning rate a schedule changed
            where = (f"those before this call (the outputs of the weights of the start of epoch {epoch} "
                     f"overflow on the training data)")
        else:
            where = f"those of the start of epoch {epoch}"
        return _Divergence(
            f"{_SKLEARN_DIVERGENCE} Training diverged in epoch {epoch}: {what}. The weights are {where}. "
            f"Try a lower learning_rate (now {trainer.settings['learning_rate']:g}) or set clip_norm.",
            to_call_start,
        )

    def _safe_output_magnitude(self):
        """A bound on |z| below which every layer and the output activation stay finite in this dtype.

        The square root of the largest float leaves room for the GEMM's partial sums.
        """
        largest = float(np.finfo(self.dtype).max)
        return 0.5 * np.log(largest) if self.output_activation == "exp" else largest ** 0.5

    def _output_bound(self, X):
        """An upper bound on ||z_l|| over every layer l and every row of X (float64 arithmetic).

        ||z_l|| <= ||a_{l-1}|| ||W_l||_F + ||b_l||, with ||a|| <= sqrt(units) for the
        registry's bounded activations (logistic, tanh) and |f(z)| <= |z| for the
        others (relu, leaky_relu, swish, identity), times the largest |slope| for prelu.
        """
        # Row sums of squares in X's own dtype: no float64 copy of X. A sum that overflows
        # makes the bound infinite (the caller then runs the forward pass); the rounding
        # of a float32 sum is far inside the margin between the safe magnitude (the
        # square root of the largest float) and an actual overflow.
        with np.errstate(over="ignore"), self._blas_pinned():  # NumPy's BLAS: no pool left spinning
            if isinstance(X, np.ndarray):
                rows = np.einsum("ij,ij->i", X, X)
            else:
                rows = np.asarray(X.multiply(X).sum(axis=1)).ravel()
            bound = worst = float(np.sqrt(rows.max(), dtype=np.float64))
            slopes = iter(self._slopes)
            for l, (W, b) in enumerate(zip(self._coefs, self._intercepts)):
                if l > 0:
                    hidden = self._hidden[l - 1]
                    if hidden.bounded:
                        bound = min(bound, np.sqrt(W.shape[0]))
                    elif hidden.learnable_slope:
                        bound *= max(1.0, float(np.abs(next(slopes)).max()))
                bound = bound * float(np.linalg.norm(W.astype(np.float64))) + float(np.linalg.norm(b.astype(np.float64)))
                worst = max(worst, bound)
        return worst if np.isfinite(worst) else np.inf

    def _record_dead_units(self, unit_max):
        """dead_units_: per hidden layer, the fraction of units whose z never exceeded 0 in the epoch.

        Only for the ReLU family (relu, leaky_relu, prelu), where such a unit
        passes (almost) no signal and gets (almost) no gradient; None otherwise.
        """
        if not self._hidden or not self._hidden[0].rectifier:
            self.dead_units_ = None
            return
        fractions, start = [], 0
        for n in self.layer_sizes[1:-1]:
            fractions.append(float(np.mean(unit_max[start:start + n] <= 0)))
            start += n
        self.dead_units_ = fractions

    def _prepare_training(self, trainer, batch_size):
        """Hook: size workspaces for batches of batch_size rows (once per fit)."""

    def _blas_pinned(self):
        """Hook: a context for NumPy's products within a fit (the compiled Network's: BLAS on one thread)."""
        return contextlib.nullcontext()

    def save(self, path):
        """Write the model to one file at exactly `path`, without pickle.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write, used as given (no extension is added); an existing
            file is replaced whole or not at all.

        See Also
        --------
        fastmlp.load : Read the file back.
        fastmlp.persistence.save : The function this calls, with the file format.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import fastmlp
        >>> net = fastmlp.Network([2, 3, 1], random_state=0)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "net.fastmlp")
        ...     net.save(path)
        ...     loaded = fastmlp.load(path)
        >>> X = np.ones((2, 2))
        >>> bool((loaded.predict(X) == net.predict(X)).all())
        True
        """
        from .persistence import save
        save(self, path)

    def to_onnx(self, **kwargs):
        """Export the network as an ONNX model.

        Parameters
        ----------
        **kwargs
            Passed to :func:`fastmlp.onnx.to_onnx`: ``opset`` (int, default=None:
            17) and ``name`` (str, default=None: "fastmlp_<class name>").

        Returns
        -------
        onnx.ModelProto
            One input "X" of shape (N, n_inputs) and one output "output" of shape
            (N, n_outputs), in the network's dtype.

        See Also
        --------
        fastmlp.onnx.to_onnx : The function this calls.

        Examples
        --------
        >>> import fastmlp
        >>> model = fastmlp.Network([2, 3, 1], random_state=0).to_onnx()
        >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
        (['X'], ['output'])
        """
        from .onnx import to_onnx
        return to_onnx(self, **kwargs)

    def summary(self):
        """Describe the layers as a table: units, activation, weight shape, parameters.

        Returns
        -------
        str
            One line per layer (inputs first), the total number of parameters and,
            after a fit with a ReLU-family activation, the dead units per layer.

        Examples
        --------
        >>> from fastmlp import Network
        >>> print(Network([4, 8, 3], output_activation="softmax", loss="log_loss").summary())
        fastmlp.network.Network: dtype float64, loss log_loss, init auto
        layer    units  activation  weights  params
        input    4      -           -             0
        dense 1  8      relu        (4, 8)       40
        dense 2  3      softmax     (8, 3)       27
        total params: 67
        """
        rows = [("layer", "units", "activation", "weights", "params"),
                ("input", str(self.layer_sizes[0]), "-", "-", "0")]
        for l, (fan_in, fan_out) in enumerate(zip(self.layer_sizes[:-1], self.layer_sizes[1:]), start=1):
            act = self.output_activation if l == self.n_layers_ else self.activation
            if l < self.n_layers_ and self.dropout[l - 1] > 0:
                act += f" (dropout {self.dropout[l - 1]:g})"
            slopes = fan_out if l < self.n_layers_ and self._hidden[l - 1].learnable_slope else 0
            rows.append((f"dense {l}", str(fan_out), act, f"({fan_in}, {fan_out})",
                         str(fan_in * fan_out + fan_out + slopes)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"{type(self).__module__}.{type(self).__name__}: dtype {self.dtype}, loss {self.loss}, init {self.init}"]
        for r in rows:
            lines.append("  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        lines.append(f"total params: {self.n_params_}")
        dead = getattr(self, "dead_units_", None)
        if dead is not None:
            lines.append("dead units (last epoch): " + ", ".join(
                f"layer {l} {fraction:.0%}" for l, fraction in enumerate(dead, start=1)))
        return "\n".join(lines)

    def __repr__(self):
        return (f"{type(self).__name__}({list(self.layer_sizes)}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r}, loss={self.loss!r}, dtype={self.dtype.name!r})")
