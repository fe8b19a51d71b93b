"""fastmlp.Network: the model API over the compiled engine."""
import ctypes
import os

import numpy as np

from . import _engine, _registry, _validation
from ._base import BaseNetwork


def _blas_thread_controls():
    """(get, set) addresses of openblas_{get,set}_num_threads of every OpenBLAS with its own thread pool.

    NumPy and SciPy each bundle one (SciPy's is the one the engine calls). An
    OpenBLAS built on OpenMP runs on one thread inside the engine's parallel
    regions by itself, so only the pthreads builds are listed.
    """
    from threadpoolctl import threadpool_info

    controls = []
    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas" and lib.get("threading_layer") != "openmp":
            pair = _symbol_pair(ctypes.CDLL(lib["filepath"]))  # already loaded: the same handle
            if pair is not None:
                controls.append(pair)
    return controls


def _symbol_pair(dll):
    """The addresses of a library's openblas_get/set_num_threads, under the names its build gives them."""
    for affix in (("", ""), ("", "64_"), ("scipy_", ""), ("scipy_", "64_")):
        get, set_ = (getattr(dll, f"{affix[0]}openblas_{verb}_num_threads{affix[1]}", None) for verb in ("get", "set"))
        if get is not None and set_ is not None:
            return ctypes.cast(get, ctypes.c_void_p).value, ctypes.cast(set_, ctypes.c_void_p).value
    return None


def _usable_cpus(environ=os.environ):
    """The CPUs this process may run on: the importing thread's affinity. Where OpenMP binds its threads
    (OMP_PROC_BIND other than false, or OMP_PLACES), the runtime of the first library that loads it (scikit-learn's,
    or the engine's own) has bound this thread to one CPU, so that its affinity names one: then the machine's
    count (OpenMP's own count, OMP_NUM_THREADS, still sets how many threads run)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    binds = (environ.get("OMP_PROC_BIND", "").strip().lower() not in ("", "false")
             or environ.get("OMP_PLACES", "").strip())
    return max(n, os.cpu_count() or 1) if binds else n


_engine.set_usable_cpus(_usable_cpus())


def kept_clock(owner, name, new=_engine.new_thread_clock):
    """owner's engine thread timings under name, made by new() on first use: kept across fits, partial_fit and
    predict calls, never saved (the owner's pickle leaves them out: a new process measures anew)."""
    clock = owner.__dict__.get(name)
    if clock is None:
        clock = owner.__dict__[name] = new()
    return clock
_engine.register_blas(_blas_thread_controls())
if hasattr(os, "register_at_fork"):  # (a child made by fork trains and predicts on one thread: see docs/engine.rst)
    os.register_at_fork(after_in_child=_engine.after_fork_in_child)
_validation.use_compiled_all_finite(_engine.all_finite)


def _check_rates(rates, n_batches):
    """A schedule's rates for an epoch (trainer.rates) as the engine reads them, or None for a constant rate."""
    if rates is None:
        return None
    if not (isinstance(rates, np.ndarray) and rates.dtype == np.float64 and rates.flags.c_contiguous):
        raise TypeError(f"trainer.rates must be a C-contiguous float64 array, got {rates!r}.")
    if rates.shape != (n_batches,):
        raise ValueError(f"trainer.rates must hold one rate per batch, shape ({n_batches},), got shape {rates.shape}.")
    if not (np.isfinite(rates).all() and (rates >= 0).all()):
        raise ValueError(f"trainer.rates must be finite and >= 0, got {rates}.")
    return rates


class Network(BaseNetwork):
    """A multi-layer perceptron trained and evaluated in compiled code.

    The thin model API under the estimators: a fixed stack of dense layers,
    ``Z_l = A_{l-1} @ W_l + b_l`` and ``A_l = f(Z_l)``, with the loss fused to
    the output activation; ``fit`` (mini-batch SGD or Adam), ``forward``,
    ``loss_and_gradients`` and ``summary``. Targets are arrays (one-hot
    labels for classification: ``MLPClassifier`` does the label encoding).

    Parameters
    ----------
    layer_sizes : sequence of int
        The number of units of each layer, ``[n_inputs, hidden..., n_outputs]``:
        at least two entries, each positive.
    activation : str, default="relu"
        Hidden activation: "identity", "logistic" (alias "sigmoid"), "tanh",
        "relu", "leaky_relu" (slope 0.01), "prelu" (a learnable slope per unit,
        starting at 0.25, no L2) or "swish" (alias "silu").
    output_activation : {"identity", "logistic", "softmax", "exp"}, default="identity"
        Activation of the output layer; it must be paired with ``loss``.
    loss : {"squared_error", "log_loss", "poisson", "absolute_error", "huber", \
            "quantile", "gamma"}, default="squared_error"
        Pairs: identity + squared_error, logistic + log_loss, softmax + log_loss,
        exp + poisson (half the Poisson deviance), identity + absolute_error,
        identity + huber, identity + quantile (the pinball loss), exp + gamma
        (half the gamma deviance; targets positive). Losses are means over
        rows; the output delta is fused with the output (for the log-likelihood
        pairs (P - Y) / n). absolute_error and quantile have a kink where the
        output equals the target: their gradient there is 0 (a subgradient).
    init : str, default="auto"
        "auto" (scikit-learn's Glorot-uniform scheme, factor 2 for logistic),
        "glorot_uniform", "glorot_normal", "he_uniform" or "he_normal" (these
        four start the biases at zero).
    dtype : {"float32", "float64"}, default="float64"
        Kept through everything: weights, gradients, outputs.
    dropout : float or list of float, default=0.0
        Inverted-dropout rate of every hidden layer, or one rate per hidden
        layer, each in [0, 1). Applied in training only.
    random_state : None, int, numpy.random.Generator or RandomState, default=None
        Source of the initial weights, the shuffling and the dropout masks; the
        same seed gives bit-identical weights on the same machine.
    loss_param : float, default=None
        The loss's parameter: for "huber" its delta, where the loss turns from
        quadratic to linear (positive, default 1.0); for "quantile" the
        quantile q, in (0, 1) (default 0.5). None takes the default; the other
        losses take None only.

    Attributes
    ----------
    layer_sizes : tuple of int
        The number of units of each layer, inputs first.
    activation, output_activation, loss : str
        The canonical names (an alias such as "sigmoid" becomes "logistic").
    loss_param : float or None
        The loss's parameter in use (its default when none was given); None
        for a loss without one. May be assigned (checked as the
        constructor's argument): the next epoch trains with it.
    init : str
        The initialisation scheme used.
    dtype : numpy.dtype
        float32 or float64.
    dropout : tuple of float
        The dropout rate of each hidden layer. May be assigned (one rate, or
        one per hidden layer, checked), also by a callback during fit: the
        next epoch trains with it.

    The other constructor settings (``layer_sizes``, ``activation``,
    ``output_activation``, ``loss``, ``init``, ``dtype``) are fixed when the
    network is built: assigning one raises an AttributeError.
    n_layers_ : int
        Number of weight layers, ``len(layer_sizes) - 1``.
    n_params_ : int
        Number of trainable parameters (weights, biases and PReLU slopes).
    coefs_ : list of ndarray, coefs_[l] of shape (fan_in, fan_out)
        Weights. Live views into the model: writing into them changes it;
        assigning a new list is validated (count, shapes, real values) and cast
        to the network's dtype; NaN, infinity and values that overflow the
        dtype raise a ValueError.
    intercepts_ : list of ndarray, intercepts_[l] of shape (fan_out,)
        Biases, live views as ``coefs_``.
    prelu_slopes_ : list of ndarray
        With activation="prelu": the learnable slope of each hidden unit, one
        (fan_out,) array per hidden layer; empty otherwise.
    loss_curve_ : list of float
        After fit: the mean training loss of each epoch, L2 term included.
    validation_loss_curve_ : list of float
        After a fit given ``validation_data``: the loss on it after each epoch.
    history_ : dict of list
        After fit: per epoch, "loss", "learning_rate", "seconds", and with
        validation data "val_loss" and "val_score".
    grad_norms_ : ndarray of shape (epochs, n_layers)
        After fit: per epoch, the mean over its batches of ||dW_l||_F per layer
        (vanishing or exploding gradients show here).
    dead_units_ : list of float or None
        After fit, for the ReLU family: per hidden layer, the fraction of units
        whose pre-activation never exceeded 0 on the last epoch's training data.

    See Also
    --------
    fastmlp.reference.Network : The same model in plain NumPy.
    MLPClassifier : A scikit-learn classifier over this model.
    MLPRegressor : A scikit-learn regressor over this model.

    Notes
    -----
    Each epoch's mini-batch loop (batch gather, forward GEMMs, fused
    bias + activation, output delta, backward GEMMs, optimizer update) runs in
    compiled code with the GIL released, over the engine's own threads
    (``n_threads`` of fit and forward); BLAS runs on one thread inside them.
    ``fastmlp.reference.Network`` computes the same in NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import Network
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> Y = np.array([[0.0], [1.0], [1.0], [0.0]])  # XOR
    >>> net = Network([2, 8, 1], activation="tanh", output_activation="logistic",
    ...               loss="log_loss", random_state=0)
    >>> net
    Network([2, 8, 1], activation='tanh', output_activation='logistic', loss='log_loss', dtype='float64')
    >>> net.n_params_
    33
    >>> net = net.fit(X, Y, epochs=500, batch_size=4, optimizer="adam", learning_rate=0.05)
    >>> net.predict(X).round().ravel()
    array([0., 1., 1., 0.])
    """

    @staticmethod
    def _engine_input(X):
        """X as the engine takes it: the array, or (indptr, indices, data, n_features) for CSR."""
        if isinstance(X, np.ndarray):
            return X
        return (X.indptr, X.indices, X.data, X.shape[1])

    def _fast_forward(self, X):
        """The output for X without validation in Python, or None (then forward validates in full).

        _engine.Predictor checks in C that X is already what the engine takes
        (a C-contiguous 2-D array of the dtype and width, all finite) and runs
        the forward pass: the few microseconds of a service predicting one row.
        """
        predictor = self.__dict__.get("_predictor")
        if predictor is None or predictor.params is not self._params:
            predictor = self._predictor = _engine.Predictor(self._sizes, self._act_codes, self._params,
                                                            self._forward_clock())
        return predictor(X)

    def _forward(self, X, training, seed, n_threads=None, logits=False):
        """The output for checked X; logits=True stops before the output activation (Z_L)."""
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        _engine.forward(self._sizes, self._forward_acts(logits), self._params, self._engine_input(X), out,
                        self._keep, seed, training, _engine.effective_n_threads(n_threads),
                        None if training else self._forward_clock())
        return out

    def _forward_acts(self, logits):
        """The activation codes a forward pass runs: the network's, or with the identity output (logits)."""
        if not logits:
            return self._act_codes
        acts = self._act_codes.copy()
        acts[-1] = _registry.ACTIVATIONS["identity"].code
        return acts

    def _forward_members(self, nets, X, n_threads=None, logits=False, clock=None):
        """_forward(X, False, 0, n_threads, logits) of networks of this one's layers, activations and dtype,
        stacked (K, n, n_outputs), in one call of the engine: their chunks of rows are its threads' tasks,
        each network's bits its own forward's. clock: the forward clock of the caller (an ensemble's), or
        None (a fit's validation, whose threads its training clock chose)."""
        out = np.empty((len(nets), X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        _engine.forward_members(self._sizes, self._forward_acts(logits), [net._params for net in nets],
                                self._engine_input(X), out, _engine.effective_n_threads(n_threads), clock)
        return out

    def _outputs_from_logits(self, Z):
        out = np.array(Z, dtype=self.dtype, order="C")  # (the engine's output kernel, as _forward applies it)
        _engine.output_activation(int(self._act_codes[-1]), out.reshape(-1, out.shape[-1]))  # (a view: in place)
        return out

    def _logits_of(self, nets, X, n_threads=None):
        """BaseNetwork's, in one call of the engine (_forward_members) when every network is a Network of
        this one's layers, activations and dtype."""
        if not all(type(net) is type(self) and net.dtype == self.dtype and np.array_equal(net._sizes, self._sizes)
                   and np.array_equal(net._act_codes, self._act_codes) for net in nets):
            return super()._logits_of(nets, X, n_threads)
        return self._forward_members(nets, X, n_threads, logits=True)

    def _mean_loss_of_logits(self, Z, Y, sample_weight, n_threads=None):
        return self._losses_and_outputs_of_logits(Z, Y, sample_weight, outputs=False, n_threads=n_threads)[0]

    def _losses_and_outputs_of_logits(self, Z, Y, sample_weight, outputs=True, n_threads=None):
        """BaseNetwork's, by the engine's output kernel, the training's (the reference's NumPy formulas give
        the same to rounding): in float64, one pass over each network's logits for its loss, and for a
        float64 network its outputs too (a float32 network's outputs are its own dtype's kernel's)."""
        Z64 = np.array(Z.reshape((-1,) + Z.shape[-2:]), dtype=np.float64, order="C")  # becomes P (float64)
        weights = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)
        total = Z.shape[-2] if weights is None else float(weights.sum())
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss = _engine.output_losses(self._output.loss_code, self._loss_param_c(), Z64,
                                         np.ascontiguousarray(Y, dtype=np.float64), weights,
                                         _engine.effective_n_threads(n_threads)) / total
        loss = np.where(np.isfinite(loss), loss, np.nan)
        P = None
        if outputs:
            P = Z64.reshape(Z.shape) if self.dtype == np.float64 else self._outputs_from_logits(Z)
        return (float(loss[0]) if Z.ndim == 2 else loss), P

    def _loss_and_gradients(self, X, Y, alpha, sample_weight):
        grads = np.empty_like(self._params)
        loss = _engine.loss_and_gradients(self._sizes, self._act_codes, self._output.loss_code, self._loss_param_c(),
                                          self._params, self._engine_input(X), Y, sample_weight, alpha, grads,
                                          _engine.effective_n_threads())
        return loss, grads

    def _loss_param_c(self):
        """The loss parameter as the engine takes it (0 for a loss without one)."""
        return 0.0 if self.loss_param is None else self.loss_param

    def _thread_clock(self):
        """The engine's record of how fast its threads train this network (see _engine.ThreadClock; kept_clock).
        Starts on one thread, then tries more."""
        return kept_clock(self, "_clock")

    def _forward_clock(self):
        """The engine's record of how fast its threads predict with this network (each call of many rows its
        batch: _engine.new_forward_clock, which starts on the threads; kept_clock)."""
        return kept_clock(self, "_forward_clock_values", _engine.new_forward_clock)

    def _untimed_threads(self, n_threads):
        """n_threads, or one where this network's thread clock prefers one thread (_engine.clock_threads)."""
        return _engine.clock_threads(self._thread_clock(), n_threads)

    def _blas_pinned(self):
        return _engine.blas_pinned()

    def _largest_row_sumsq(self, X):
        if isinstance(X, np.ndarray) and X.flags.c_contiguous and X.dtype in (np.float32, np.float64):
            return _engine.largest_row_sumsq(X)
        return super()._largest_row_sumsq(X)

    def _workspaces(self, batch_size, dropout, dense_x=True):
        size = _engine.workspace_size(self._sizes, self._act_codes, self._keep, batch_size, dropout, dense_x)
        return (_validation.line_aligned_empty(self._params.shape[0], self.dtype),
                _validation.line_aligned_empty(size, self.dtype))

    def _engine_settings(self, trainer, batch_size, n_threads):
        """The settings of an epoch as the engine takes them: the trainer's, with the codes of the optimizer
        and the loss, and the threads."""
        return dict(trainer.settings, batch_size=batch_size,
                    optimizer=_registry.OPTIMIZERS[trainer.settings["optimizer"]].code,
                    loss=self._output.loss_code, loss_param=self._loss_param_c(),
                    n_threads=_engine.effective_n_threads(n_threads))

    def _train_epoch(self, trainer, X, Y, sample_weight, order, batch_size, n_threads=None, loss_per_row=False):
        s = self._engine_settings(trainer, batch_size, n_threads)
        s["loss_per_row"] = loss_per_row
        s["learning_rates"] = _check_rates(getattr(trainer, "rates", None), -(-X.shape[0] // batch_size))
        state = trainer.state
        loss_sum, n_batches, step, finite = _engine.train_epoch(
            self._sizes, self._act_codes, self._keep, s, self._params, trainer.grads, state[0], state[-1],
            trainer.work, self._engine_input(X), Y, sample_weight, order, trainer.grad_norm_sums, trainer.unit_max,
            self._thread_clock(),
        )
        trainer.settings["step"] = step
        return loss_sum, n_batches, finite
