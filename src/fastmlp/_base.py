"""What fastmlp.Network and fastmlp.reference.Network share: validation,
parameter storage, initialisation, fit (over the training loop, _training.py) and summary.

Subclasses supply the math through four hooks (thinc's Ops pattern: a NumPy
base, a compiled override):
    _forward(X, training, seed, n_threads=None) -> output
    _loss_and_gradients(X, Y, alpha, sample_weight) -> (loss, flat gradient)
    _workspaces(batch_size, dropout, dense_x) -> (grads, work)   (optional: the engine's buffers)
    _train_epoch(trainer, X, Y, sample_weight, order, batch_size, n_threads, loss_per_row) -> (loss_sum, n_batches,
    finite)
n_threads is None (the default count) or a checked positive int; the NumPy
reference ignores it.
X reaching the hooks is a C-contiguous array or a canonical CSR matrix.
"""
import contextlib
import copy
import functools
import math
import numbers

import numpy as np

from . import _registry
from ._math import PRELU_INITIAL_SLOPE, output_forward
from ._training import EpochLoop, Patience, Reporter, Trainer, Validation, check_schedule, draw_seed, warn_diverged
from ._validation import (BLAS_INT_MAX, as_csr, as_float_array, check_bool, check_float, check_int,
                          check_sample_weight, check_weight_sum, check_writable, is_sparse, line_aligned,
                          line_aligned_empty)


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
    """None, or a positive int: the engine's thread count for one call (at most a C int's largest: more than
    the usable CPUs is capped by the engine anyway)."""
    return None if n_threads is None else min(check_int(n_threads, "n_threads", 1), 2**31 - 1)


def check_target_domain(output, Y, name):
    """Targets the loss of a registered output pair is defined on: poisson Y >= 0, gamma Y > 0 (log y), and
    at least the smallest normal number of Y's dtype, the model's (training flushes subnormal numbers to
    zero, whose log is -inf)."""
    if output.loss_name == "poisson" and Y.min() < 0:
        raise ValueError(f"{name} must be non-negative for loss='poisson'.")
    if output.positive_targets and not Y.min() >= np.finfo(Y.dtype).tiny:
        raise ValueError(f"{name} must be positive for loss={output.loss_name!r}, and in the model's dtype "
                         f"({Y.dtype.name}) at least its smallest normal number, {np.finfo(Y.dtype).tiny:.4g} "
                         f"(training flushes smaller numbers to zero); its least is {Y.min():.4g}.")


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


class _NetworkRecord:
    """Network.fit's hook: the call's record as the network's attributes, after every epoch when
    a callback may look (it sees a consistent network), and whatever ends the loop; the record of
    before the call when the call was taken back whole (a divergence back to the call's start)."""

    watches_model = False
    _ATTRIBUTES = ("history_", "loss_curve_", "grad_norms_", "validation_loss_curve_", "dead_units_")

    def on_fit_begin(self, loop):
        self.before = {name: loop.net.__dict__[name] for name in self._ATTRIBUTES if name in loop.net.__dict__}

    def on_epoch_end(self, loop, logs):
        if loop.observed:
            self.on_fit_end(loop)

    def on_fit_end(self, loop):
        net = loop.net
        if loop.forgotten:
            for name in self._ATTRIBUTES:
                net.__dict__.pop(name, None)
            net.__dict__.update(self.before)
            return
        net.__dict__.setdefault("dead_units_", None)  # (no epoch completed: the first diverged, early stopping)
        net.history_ = loop.history
        net.loss_curve_ = list(loop.history["loss"])
        net.grad_norms_ = np.array(loop.grad_norms, dtype=np.float64).reshape(len(loop.grad_norms), net.n_layers_)
        if loop.validation is not None:
            net.validation_loss_curve_ = list(loop.history["val_loss"])
        else:
            net.__dict__.pop("validation_loss_curve_", None)


def _check_callbacks(callbacks):
    """None, or a list of objects with at least one of the loop's hook methods."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callback objects, got {type(callbacks).__name__}.")
    events = ("on_fit_begin", "on_epoch_begin", "on_epoch_end", "on_fit_end")
    for i, c in enumerate(callbacks):
        if not any(callable(getattr(c, e, None)) for e in events):
            raise TypeError(f"callbacks[{i}] ({type(c).__name__}) has none of the methods {', '.join(events)}.")
    return list(callbacks)


@functools.lru_cache(maxsize=64)
def _weight_blocks(layer_sizes):
    """Where W_1, b_1, ..., W_L, b_L start in a flat parameter vector, and where the last ends (the PReLU
    slopes, if any, follow)."""
    starts, off = [], 0
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        starts += [off, off + fan_in * fan_out]
        off += fan_in * fan_out + fan_out
    return np.array(starts, dtype=np.intp), off


@functools.lru_cache(maxsize=64)
def _hidden_blocks(layer_sizes):
    """Where each hidden layer's units start among all hidden units, and their numbers (float64)."""
    return np.cumsum([0, *layer_sizes[1:-2]]), np.asarray(layer_sizes[1:-1], dtype=np.float64)


class FixedSettings:
    """Refuses a new value for the attributes named in _FIXED once they are set (by the constructor, or
    by fastmlp.load on a new object): what they fix (the shapes of the weights, the engine's codes, the
    dtype of every buffer) was built from them, and a new value would be ignored, or reach the engine
    inconsistent with the rest. Unpickling and copying set the object's __dict__ and pass by."""

    _FIXED = ()

    def __setattr__(self, name, value):
        if name in self._FIXED and name in self.__dict__:
            cls = type(self).__name__
            raise AttributeError(f"{cls}.{name} is fixed when the {cls} is built; make a new {cls} to change it.")
        super().__setattr__(name, value)


class BaseNetwork(FixedSettings):
    """Shared implementation; see fastmlp.Network for the documentation."""

    _FIXED = ("layer_sizes", "activation", "output_activation", "loss", "init", "dtype")

    # What fastmlp.save keeps (persistence.py writes and reads it, by kind): the
    # constructor's arguments, the weights and random generator, and the
    # fitted record, attribute -> (kind, required).
    _SAVED_ARGS = ("layer_sizes", "activation", "output_activation", "loss", "init", "dtype", "dropout",
                   "loss_param")
    _ARGS_SINCE = {"loss_param": None}  # saved arguments older files lack, with the value they had
    _SAVED_FITTED = {"loss_curve_": ("curve", False), "grad_norms_": ("norms", False),
                     "dead_units_": ("fractions", False), "history_": ("history", False)}

    def __init__(self, layer_sizes, activation="relu", output_activation="identity", loss="squared_error",
                 init="auto", dtype="float64", dropout=0.0, random_state=None, loss_param=None):
        self.layer_sizes = self._check_layer_sizes(layer_sizes)
        L = len(self.layer_sizes) - 1
        hidden = _registry.activation(activation)
        self.activation = hidden.name
        self._output = _registry.output(output_activation, loss)
        self.output_activation = self._output.activation
        self.loss = self._output.loss_name
        _registry.loss_param(self._output, loss_param)  # (named before the other arguments' errors)
        if self.output_activation == "softmax" and self.layer_sizes[-1] < 2:
            raise ValueError("output_activation='softmax' needs at least 2 outputs; use 'logistic' for one.")
        self.init = init
        init_fn = _registry.lookup(_registry.INITS, init, "init")
        self.dtype = self._check_dtype(dtype)
        self.loss_param = loss_param
        self._set_dropout(dropout)
        self._rng = _check_random_state(random_state)

        self._hidden = [hidden] * (L - 1)
        self._act_codes = np.array([h.code for h in self._hidden] + [self._output.code], dtype=np.intc)
        self._sizes = np.array(self.layer_sizes, dtype=np.intp)
        self._params = line_aligned_empty(self.n_params_, self.dtype)
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

    @property
    def dropout(self):
        """The dropout rate of each hidden layer, a tuple.

        Assign one rate, or one per hidden layer: the next epoch trains with it.
        """
        return self._dropout

    @dropout.setter
    def dropout(self, dropout):
        self._set_dropout(dropout)

    def _set_dropout(self, dropout):
        """dropout (one rate, or one per hidden layer) checked, and the keep probabilities the engine reads."""
        rates = tuple(self._check_dropout(dropout, len(self.layer_sizes) - 2))
        self._dropout, self._keep = rates, np.array([1.0 - r for r in rates], dtype=np.float64)

    @property
    def loss_param(self):
        """The loss's parameter in use: its default when none was given, None for a loss without one.

        Assign a new one (checked as the constructor's): the next epoch trains with it.
        """
        return self._loss_param

    @loss_param.setter
    def loss_param(self, value):
        self._loss_param = _registry.loss_param(self._output, value, dtype=self.dtype)

    @staticmethod
    def _check_dropout(dropout, n_hidden):
        if isinstance(dropout, np.ndarray) and dropout.ndim == 0:  # (NumPy's scalar array: its one value)
            dropout = dropout[()]
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
        check_target_domain(self._output, Y, name)
        return Y

    def _loss_kwargs(self):
        """The loss parameter as the reference loss takes it: {} or {name: value}."""
        return {} if self._output.param is None else {self._output.param.name: self.loss_param}

    def _check_sample_weight(self, sample_weight, n_samples, name="sample_weight"):
        """None, or a (n_samples,) array of finite non-negative weights with a positive sum."""
        return check_sample_weight(sample_weight, n_samples, self.dtype, name)

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
        starts, _ = _weight_blocks(tuple(self.layer_sizes))
        Ws, bs = [], []
        for l, (fan_in, fan_out) in enumerate(zip(self.layer_sizes[:-1], self.layer_sizes[1:])):
            Ws.append(flat[starts[2 * l]:starts[2 * l] + fan_in * fan_out].reshape(fan_in, fan_out))
            bs.append(flat[starts[2 * l + 1]:starts[2 * l + 1] + fan_out])
        return Ws, bs

    def _make_views(self):
        Ws, bs = self._split(self._params)
        self._coefs = _LayerList(Ws, lambda v, i: self._check_layer_param(v, i, "coefs_", Ws[i].shape))
        self._intercepts = _LayerList(bs, lambda v, i: self._check_layer_param(v, i, "intercepts_", bs[i].shape))
        ss = self._split_slopes(self._params)
        self._slopes = _LayerList(ss, lambda v, i: self._check_layer_param(v, i, "prelu_slopes_", ss[i].shape))

    def _check_layer_param(self, value, index, name, shape):
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:  # (a ragged list: NumPy's own words would not name it)
            raise type(exc)(f"{name}[{index}] cannot be an array of real numbers: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}[{index}] must hold real numbers, got dtype {arr.dtype}.")
        if arr.shape != shape:
            raise ValueError(f"{name}[{index}] must have shape {shape}, got {arr.shape}.")
        # Cast to the network's dtype as NumPy assignment would, but never silently to infinity.
        with np.errstate(over="ignore", invalid="ignore"):  # (a copy: value may be a view of this model's own
            cast = arr.astype(self.dtype, copy=True)     # layers, which the assignment overwrites one by one)
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
        """List of weight matrices, ``coefs_[l]`` of shape (fan_in, fan_out); views into the model."""
        return self._coefs

    @coefs_.setter
    def coefs_(self, values):
        self._set_layers(values, "coefs_", self._coefs)

    @property
    def intercepts_(self):
        """List of bias vectors, ``intercepts_[l]`` of shape (fan_out,); views into the model."""
        return self._intercepts

    @intercepts_.setter
    def intercepts_(self, values):
        self._set_layers(values, "intercepts_", self._intercepts)

    @property
    def prelu_slopes_(self):
        """List of PReLU slopes, one (fan_out,) array per hidden layer (empty unless activation="prelu").

        Trained with the weights (no L2 penalty), initialised to 0.25; live views
        into the model, assignable like ``coefs_``.
        """
        return self._slopes

    @prelu_slopes_.setter
    def prelu_slopes_(self, values):
        self._set_layers(values, "prelu_slopes_", self._slopes)

    def _snapshot(self):
        """A copy that predicts with the weights of now, whatever training does to this network later."""
        new = copy.copy(self)
        new.__dict__.pop("_predictor", None)
        new._params = line_aligned_empty(self._params.shape[0], self.dtype, fill=self._params)
        new._make_views()
        return new

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_coefs"], state["_intercepts"], state["_slopes"]
        state.pop("_predictor", None)  # network.py's, remade on first use
        state.pop("_clock", None)  # network.py's thread timings: this process's, measured anew
        state.pop("_forward_clock_values", None)  # (and its predictions')
        return state

    def __setstate__(self, state):
        state = dict(state)
        # (pickles from before dropout and loss_param were checked properties hold them by their names)
        if "dropout" in state:
            state["_dropout"] = tuple(state.pop("dropout"))
        if "loss_param" in state:
            state["_loss_param"] = state.pop("loss_param")
        self.__dict__.update(state)
        self._params = line_aligned(self._params)
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
        return self._forward(X, training, draw_seed(self._rng) if training else 0, n_threads)

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
        check_weight_sum(sample_weight, self.dtype, X.shape[0])  # (one mean over every row)
        loss, grads = self._loss_and_gradients(X, Y, alpha, sample_weight)
        dW, db = self._split(grads)
        if self._slope_sizes():
            return float(loss), dW, db, self._split_slopes(grads)
        return float(loss), dW, db

    def fit(self, X, Y, epochs=10, batch_size=32, optimizer="sgd", learning_rate=0.01, momentum=0.0,
            nesterov=False, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=0.0, clip_norm=None,
            shuffle=True, verbose=False, sample_weight=None, n_threads=None, validation_data=None,
            early_stopping=False, patience=10, callbacks=None, lr_schedule=None):
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
            The step size: constant over the call, or the base rate of
            ``lr_schedule``.
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
            Shuffle the rows every epoch (from random_state): each epoch a new
            permutation of the rows, so that a fit of n epochs equals n fits
            of one (the estimators, as scikit-learn's, permute the last
            epoch's order within a fit).
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
        validation_data : tuple, default=None
            ``(X_val, Y_val)`` or ``(X_val, Y_val, sample_weight_val)``: scored
            after every epoch (the mean loss, without the L2 term), recorded in
            ``validation_loss_curve_`` and ``history_``.
        early_stopping : bool, default=False
            Stop when the validation loss has not improved for ``patience``
            epochs, and return the weights of its best epoch (needs
            ``validation_data``).
        patience : int, default=10
            Epochs without a better validation loss before early stopping stops.
        callbacks : list, default=None
            Objects called at fit begin and end and at each epoch's begin and
            end, such as :class:`fastmlp.callbacks.Checkpoint`; one whose
            ``on_epoch_end`` returns True stops training after that epoch.
        lr_schedule : schedule, default=None
            A learning-rate schedule of :mod:`fastmlp.schedules`, started from
            ``learning_rate`` over ``epochs``: each epoch's rate per batch is
            computed before it runs (``history_["learning_rate"]`` records
            their mean); ReduceOnPlateau follows the validation loss, else the
            training loss. None: ``learning_rate`` throughout.

        Returns
        -------
        Network
            The network itself, trained; ``loss_curve_``, ``grad_norms_``,
            ``history_`` (per epoch: loss, learning_rate, seconds, and val_loss,
            val_score with validation data), ``validation_loss_curve_`` and
            ``dead_units_`` describe this call's epochs.

        Raises
        ------
        ValueError
            On bad input, and when the loss or the weights become non-finite; the
            weights are then those of the start of that epoch (the record holds
            the epochs before it), or those before the call if the outputs of
            that epoch's start overflow on X (the record too is that of before
            the call). With ``early_stopping`` a divergence ends the fit instead:
            the weights of the best epoch come back, the diverged epoch is
            recorded as NaN, and a ``ConvergenceWarning`` says so.

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
        early_stopping = check_bool(early_stopping, "early_stopping")
        patience = check_int(patience, "patience", 1)
        check_writable([self._params], type(self).__name__)
        validation = self._check_validation_data(validation_data)
        if early_stopping and validation is None:
            raise ValueError("early_stopping=True needs validation_data=(X_val, Y_val) to stop on.")
        hooks = list(_check_callbacks(callbacks))
        trainer = Trainer(self, optimizer, batch_size, learning_rate, momentum=momentum, nesterov=nesterov,
                          beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, alpha=alpha, clip_norm=clip_norm)
        check_weight_sum(sample_weight, self.dtype, trainer.settings["batch_size"])
        schedule = check_schedule(lr_schedule, "lr_schedule")
        run = None if schedule is None else schedule.start(trainer.settings["learning_rate"], epochs)
        hooks.insert(0, _NetworkRecord())
        if early_stopping:
            hooks.insert(1, Patience(patience))
        if verbose:
            hooks.append(Reporter(epochs, X.shape[0]))
        loop = EpochLoop(self, trainer, X, Y, sample_weight, max_epochs=epochs, shuffle=shuffle,
                         n_threads=n_threads, validation=validation, keep_best=early_stopping, hooks=hooks,
                         schedule=run)
        loop.run()
        if loop.diverged is not None:
            warn_diverged(loop.epoch, loop.best_score, trainer.settings["learning_rate"])
        return self

    def _check_validation_data(self, validation_data):
        """None, or the Validation of a checked (X_val, Y_val) or (X_val, Y_val, sample_weight_val)."""
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            given = (f"a {type(validation_data).__name__} of {len(validation_data)}"
                     if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
            raise TypeError("validation_data must be a tuple (X_val, Y_val) or (X_val, Y_val, sample_weight_val), "
                            f"got {given}.")
        X_val = self._check_X(validation_data[0], "validation_data[0] (X_val)")
        Y_val = self._check_Y(validation_data[1], X_val.shape[0], "validation_data[1] (Y_val)")
        sw = validation_data[2] if len(validation_data) == 3 else None
        return Validation(X_val, Y_val, self._check_sample_weight(sw, X_val.shape[0],
                                                                  "validation_data[2] (sample_weight_val)"))

    def _outputs_in_range(self, X):
        """Are the outputs on X finite? A bound on |z| through the layers
        (O(n_features * n_samples + n_params)) settles it in all but extreme
        cases, which get a forward pass."""
        return self._output_bound(X) < self._safe_output_magnitude() or np.isfinite(self._forward(X, False, 0)).all()

    def _safe_output_magnitude(self):
        """A bound on |z| below which every layer and the output activation stay finite in this dtype.

        The square root of the largest float leaves room for the GEMM's partial sums.
        """
        largest = float(np.finfo(self.dtype).max)
        return 0.5 * np.log(largest) if self.output_activation == "exp" else largest ** 0.5

    def _output_bound(self, X, params=None):
        """An upper bound on ||z_l|| over every layer l and every row of X (float64 arithmetic).

        ||z_l|| <= ||a_{l-1}|| ||W_l||_F + ||b_l||, with ||a|| <= sqrt(units) for the
        registry's bounded activations (logistic, tanh) and |f(z)| <= |z| for the
        others (relu, leaky_relu, swish, identity), times the largest |slope| for prelu.
        params: None (this network's weights), or an (n_members, n_params) stack
        of flat parameters in this network's layout: then one bound per member
        (an ensemble's, X's part computed once).
        """
        # X's largest row sum of squares without a float64 copy of X (_largest_row_sumsq). A sum
        # that overflows makes the bound infinite (the caller then runs the forward pass); the
        # rounding of a float32 sum is far inside the margin between the safe magnitude (the
        # square root of the largest float) and an actual overflow.
        with np.errstate(over="ignore", invalid="ignore"), self._blas_pinned():  # NumPy's BLAS: no pool spinning
            first = math.sqrt(self._largest_row_sumsq(X))
            stack = np.atleast_2d(self._params if params is None else params)
            # every W_l's and b_l's norm in every row of the stack, one reduction (float64), and each prelu
            # layer's largest |slope| in every row
            starts, end = _weight_blocks(tuple(self.layer_sizes))
            norms = np.sqrt(np.add.reduceat(np.square(stack[:, :end], dtype=np.float64), starts, axis=1)).tolist()
            slopes = [np.abs(s).max(axis=0).astype(np.float64).tolist() for s in self._split_slopes(stack.T)]
        # the recurrence in Python floats: a few layers per row of the stack (NumPy's calls on arrays of one
        # element cost more than the arithmetic)
        bounds = []
        for k, norm in enumerate(norms):
            bound = worst = first
            prelu = (s[k] for s in slopes)
            for l in range(self.n_layers_):
                if l > 0:
                    hidden = self._hidden[l - 1]
                    if hidden.bounded:
                        bound = min(bound, math.sqrt(self.layer_sizes[l]))  # (NaN stays NaN: min keeps its first)
                    elif hidden.learnable_slope:
                        bound = bound * max(1.0, next(prelu))
                bound = bound * norm[2 * l] + norm[2 * l + 1]
                # (a NaN bound, inf times a zero norm, stays NaN through the later layers and ends in worst)
                worst = bound if not bound <= worst else worst
            bounds.append(worst if math.isfinite(worst) else math.inf)
        return bounds[0] if params is None else np.array(bounds)

    def _largest_row_sumsq(self, X):
        """Hook: the largest sum of squares of a row of checked X (dense or CSR), in X's dtype or wider."""
        if isinstance(X, np.ndarray):
            return np.einsum("ij,ij->i", X, X).max()
        return np.asarray(X.multiply(X).sum(axis=1)).max()

    def _record_dead_units(self, unit_max):
        """dead_units_: per hidden layer, the fraction of units whose z never exceeded 0 in the epoch.

        Only for the ReLU family (relu, leaky_relu, prelu), where such a unit
        passes (almost) no signal and gets (almost) no gradient; None otherwise.
        """
        fractions = self._dead_fractions(unit_max[None, :])
        self.dead_units_ = None if fractions is None else fractions[0]

    def _dead_fractions(self, unit_max):
        """Per row of unit_max (n_rows, all hidden units), the list of dead_units_ it gives; None when the
        hidden activation is not of the ReLU family (see _record_dead_units)."""
        if not self._hidden or not self._hidden[0].rectifier:
            return None
        starts, units = _hidden_blocks(tuple(self.layer_sizes))
        dead = np.add.reduceat(unit_max <= 0, starts, axis=1) / units
        return dead.tolist()

    def _workspaces(self, batch_size, dropout, dense_x=True):
        """Hook: (gradient buffer, engine workspace) for batches of batch_size rows (dense_x=False: of a CSR X,
        whose rows are not gathered), or (None, None)."""
        return None, None

    def _mean_loss(self, X, Y, sample_weight, n_threads=None):
        """The loss on checked (X, Y) without the L2 term: the (weighted) mean over rows, in float64."""
        return self._mean_loss_of_logits(self._forward(X, False, 0, n_threads, logits=True), Y, sample_weight,
                                         n_threads)

    def _mean_loss_of_logits(self, Z, Y, sample_weight, n_threads=None):
        """_mean_loss from the output layer's pre-activations Z (``_forward(X, ..., logits=True)``).

        Z may stack the pre-activations of several networks with this one's
        output and loss on the same rows, shape (K, n, n_outputs): then an
        array of their K losses, each with the bits of its own call.
        """
        total = Z.shape[-2] if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
        with np.errstate(over="ignore", invalid="ignore"):
            loss = self._output.loss(Y.astype(np.float64), Z.astype(np.float64), sample_weight,
                                     **self._loss_kwargs()) / total
        if Z.ndim == 2:
            loss = float(loss)
            return loss if np.isfinite(loss) else np.nan
        return np.where(np.isfinite(loss), loss, np.nan)

    def _outputs_from_logits(self, Z):
        """The outputs (what ``_forward`` returns) from the pre-activations Z that ``_forward(..., logits=True)``
        returns: the same bits, one forward pass serving the validation loss and score. Z may stack several
        networks' (K, n, n_outputs), as _mean_loss_of_logits takes them."""
        return output_forward(self._output.activation, Z.reshape(-1, Z.shape[-1])).reshape(Z.shape)

    def _logits_of(self, nets, X, n_threads=None):
        """The logits (``_forward(X, False, 0, n_threads, logits=True)``) of networks of this one's
        architecture, output and dtype on checked X, stacked: (K, n, n_outputs)."""
        return np.stack([net._forward(X, False, 0, n_threads, logits=True) for net in nets])

    def _losses_and_outputs_of_logits(self, Z, Y, sample_weight, outputs=True, n_threads=None):
        """(_mean_loss_of_logits(Z, ...), _outputs_from_logits(Z) if outputs else None): a validation's
        loss and the outputs its score reads, from one forward pass (Z 2-D or stacked, as they take it).
        Z may be overwritten. n_threads: the engine's threads for its work (None: the default)."""
        return (self._mean_loss_of_logits(Z, Y, sample_weight, n_threads),
                self._outputs_from_logits(Z) if outputs else None)

    def _blas_pinned(self):
        """Hook: a context for NumPy's products within a fit (the compiled Network's: BLAS on one thread)."""
        return contextlib.nullcontext()

    def _untimed_threads(self, n_threads):
        """Hook: the threads for a fit's work that no thread clock times, the validation set's forward pass
        after each epoch (the compiled Network's: one where its clock prefers one thread)."""
        return n_threads

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
        param = "" if self.loss_param is None else f", loss_param={self.loss_param!r}"
        return (f"{type(self).__name__}({list(self.layer_sizes)}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r}, loss={self.loss!r}{param}, "
                f"dtype={self.dtype.name!r})")
