"""scikit-learn drop-in estimators: fastmlp.MLPClassifier and fastmlp.MLPRegressor.

A superset of scikit-learn's MLP estimators (same parameters, defaults,
attributes and semantics) over fastmlp.Network: the estimators own the
scikit-learn API (parameter validation, label encoding, early stopping,
learning-rate schedules, partial_fit, warm_start); every forward pass,
gradient and update runs in the compiled engine through the Network.
"""
import contextlib
import copy
import functools
import time
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring, get_scorer_names, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from . import _registry
from ._base import check_target_domain
from ._training import (BEFORE_FIRST_EPOCH, SKLEARN_DIVERGENCE, Divergence, EpochLoop, Reporter, Trainer, Validation,
                        completed, new_history, warn_diverged)
from ._validation import check_weight_sum, check_writable
from .network import Network

try:  # scikit-learn >= 1.9: its experimental callbacks
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # an older scikit-learn: no set_callbacks, everything else the same
    CallbackSupportMixin = with_callbacks = None

_STOCHASTIC_SOLVERS = _registry.STOCHASTIC_SOLVERS
# The optimizer's hyperparameters (_training.HYPERPARAMETERS) by their estimator parameter names
_HYPERPARAMETERS = {"momentum": "momentum", "nesterov": "nesterovs_momentum", "beta_1": "beta_1",
                    "beta_2": "beta_2", "epsilon": "epsilon", "alpha": "alpha", "clip_norm": "clip_norm"}


class _ScheduleObject(HasMethods):
    """A schedule of fastmlp.schedules as a parameter: an object with its methods, not its class."""

    def is_satisfied_by(self, val):
        return not isinstance(val, type) and super().is_satisfied_by(val)

    def __str__(self):
        return f"{super().__str__()} (an instance, not a class)"


# grad_norms_'s buffers (_Record._norms) by id, while they live
_NORMS_BUFFERS = weakref.WeakValueDictionary()
# the estimators whose last fit or partial_fit Ctrl-C ended (warned, then returned): an ensemble fitting its members
# one after another stops there
_INTERRUPTED = weakref.WeakSet()
INTERRUPTED_MESSAGE = "Training interrupted by user."  # (scikit-learn's words)


class _Record:
    """The estimators' hook: their fitted record (n_iter_, t_, loss_, loss_curve_, grad_norms_, ...) from the loop's.

    Written after every epoch (the whole record when a callback may look, so
    that it sees, and can save, a consistent estimator; else the counters the
    stopping rules and schedules read), and when the loop ends, whatever ends
    it, so that a roll-back's truncated history is what the attributes say.
    """

    watches_model = False

    def __init__(self, est, n_samples=0):
        self.est, self.n_samples = est, n_samples

    def on_fit_begin(self, loop):
        self.t_start = self.est.t_
        self.n_iter_start = self.est.n_iter_
        self.norms_start = self.est.grad_norms_
        self.buffer, self.written = None, []  # (see _norms)

    def on_epoch_end(self, loop, logs):
        self._sync(loop, loop.observed)

    def on_fit_end(self, loop):
        self._sync(loop)

    def _sync(self, loop, whole=True):
        est = self.est
        n = len(loop.grad_norms)
        est.n_iter_ = self.n_iter_start if loop.forgotten else n  # (a call taken back whole: as before it)
        est.t_ = self.t_start + self.n_samples * n
        if not whole:  # (copying the curves every epoch would cost a long fit's epochs squared)
            est.loss_ = loop.history["loss"][-1] if n else getattr(est, "loss_", None)
            return
        _follow(est, "loss_curve_", est.history_["loss"])
        est.grad_norms_ = self._norms(loop.grad_norms) if n else self.norms_start
        if "val_loss" in est.history_:
            _follow(est, "validation_loss_curve_", est.history_["val_loss"])
        if loop.keep_best:
            est._best_params = loop.best_params
        if n:
            est.loss_ = est.loss_curve_[-1]
            # (None when no epoch completed: an early-stopping fit whose first epoch diverged)
            est.dead_units_ = getattr(loop.net, "dead_units_", None) if loop.trainer is not None \
                else est.__dict__.get("dead_units_")

    def _norms(self, rows):
        """grad_norms_: the rows before the call (norms_start) and this call's, a view of a buffer that
        doubles when full and that the next call continues, so that each call writes only its own rows
        (np.vstack copied every earlier row: a stream of partial_fit calls took time growing with
        their number). The buffer is grad_norms_.base, known as one of ours by _NORMS_BUFFERS (an array of
        the user's is never written). self.written: the rows of the call in the buffer; a roll-back drops
        the last."""
        start, n = self.norms_start, len(rows)
        k = start.shape[0]
        if self.buffer is None:
            buffer = _NORMS_BUFFERS.get(id(start.base))
            if buffer is None or start.base is not buffer:  # (a first fit, or grad_norms_ set or loaded)
                buffer = np.empty((max(16, 2 * (k + n)), start.shape[1]))
                buffer[:k] = start
                _NORMS_BUFFERS[id(buffer)] = buffer
            self.buffer = buffer
        m = min(len(self.written), n)
        while m and self.written[m - 1] is not rows[m - 1]:
            m -= 1
        if k + n > self.buffer.shape[0]:
            grown = np.empty((2 * (k + n), self.buffer.shape[1]))
            grown[:k + m] = self.buffer[:k + m]
            self.buffer = _NORMS_BUFFERS[id(grown)] = grown
        if m < n:
            self.buffer[k + m:k + n] = rows[m:]
        del self.written[m:]
        self.written.extend(rows[m:])
        return self.buffer[:k + n]


def check_validation_args(X_val, y_val, sample_weight_val):
    """A ValueError for a validation set given in part (X_val without y_val, or weights without either)."""
    if X_val is None and y_val is None and sample_weight_val is not None:
        raise ValueError("sample_weight_val is provided, but X_val and y_val were not.")
    if (X_val is None) != (y_val is None):
        given, missing = ("X_val", "y_val") if y_val is None else ("y_val", "X_val")
        raise ValueError(f"{given} is provided, but {missing} was not provided.")


def _follow(est, name, values):
    """est.<name> made a copy of the history list `values`, extended by what is new when it already
    holds the start of it (a stream of partial_fit calls would copy the whole curve every call)."""
    current = est.__dict__.get(name)
    k = len(current) if isinstance(current, list) else -1
    if 0 < k <= len(values) and current[-1] is values[k - 1] or k == 0:
        current.extend(values[k:])
    else:
        setattr(est, name, list(values))


class _SklearnTasks:
    """scikit-learn's callbacks (sklearn.callback): the fit is a task, each epoch (L-BFGS iteration) a subtask.

    Every subtask ends with X, y, the metadata and, when a callback asks for
    it, a fitted_estimator: a copy of the estimator predicting with that
    epoch's weights. A callback whose on_fit_task_end returns True stops the
    fit after that epoch.
    """

    def __init__(self, est, context, X, y, metadata):
        self.est, self.context, self.X, self.y, self.metadata = est, context, X, y, metadata
        self.task = None

    # the record a fit goes on changing in place (lists extended, buffers, the optimizer's state): a
    # fitted_estimator gets its own copies, so that it stays as the fit was at its epoch's end
    _RECORD = ("history_", "loss_curve_", "validation_loss_curve_", "validation_scores_", "grad_norms_",
               "_best_params", "_trainer", "_lr_run")

    def _fitted(self):
        attributes = {"_network": self.est._network._snapshot()}
        for name in self._RECORD:
            if name in self.est.__dict__:
                attributes[name] = copy.deepcopy(self.est.__dict__[name])
        return attributes

    def on_epoch_begin(self, loop):
        self.task = self.context.subcontext(task_name="epoch")
        self.task.call_on_fit_task_begin(estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
                                         reconstruction_attributes=self._fitted)

    def on_epoch_end(self, loop, logs):
        return self.task.call_on_fit_task_end(estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
                                              reconstruction_attributes=self._fitted)


class _LbfgsRecord(_Record):
    """The L-BFGS solver's hook: the record, with best_loss_ that of the iterations so far (a callback's
    checkpoint, an interrupted fit)."""

    def _sync(self, loop, whole=True):
        super()._sync(loop, whole)
        if whole and self.est.loss_curve_:
            self.est.best_loss_ = min((v for v in self.est.loss_curve_ if np.isfinite(v)), default=np.inf)


class _StochasticRecord(_Record):
    """The sgd and adam solvers' hook: the record, and scikit-learn's stopping rules and schedules."""

    def __init__(self, est, n_samples, incremental):
        super().__init__(est, n_samples)
        self.incremental = incremental

    def _sync(self, loop, whole=True):
        super()._sync(loop, whole)
        if whole and loop.schedule is not None:  # (where the schedule's run is: a callback's checkpoint holds it)
            self.est._lr_run = loop.schedule, loop.schedule_epoch

    def on_fit_begin(self, loop):
        super().on_fit_begin(loop)
        self.ruled = True  # (whether the stopping rule has seen the last epoch begun: see on_epoch_begin)

    def on_epoch_begin(self, loop):
        # the stopping rule's state before the epoch (with the rate it may change), and whether the rule has seen
        # all of the epoch: a Ctrl-C after the epoch was recorded and before the rule was through with it is made
        # good at the fit's end (on_fit_end)
        est = self.est
        self.rule_before = (len(est.validation_scores_) if est.early_stopping else None, est._no_improvement_count,
                            est.best_validation_score_, est.best_loss_, loop.trainer.settings["learning_rate"])
        self.ruled, self.epochs_before = False, len(loop.history["loss"])

    def on_fit_end(self, loop):
        est = self.est
        # (only for an epoch recorded: one taken back, or interrupted before it began to change anything, is not)
        if not self.ruled and len(loop.history["loss"]) > self.epochs_before and loop.diverged is None:
            (n_scores, est._no_improvement_count, est.best_validation_score_, est.best_loss_,
             loop.trainer.settings["learning_rate"]) = self.rule_before
            if n_scores is not None:
                del est.validation_scores_[n_scores:]
            self._sync(loop, whole=False)  # (t_, which invscaling's rate follows)
            self._rule(loop, loop.logs)
        super().on_fit_end(loop)

    def _rule(self, loop, logs):
        """scikit-learn's stopping rule and schedules after an epoch (the no-improvement count, invscaling's next
        rate, adaptive's division of the rate); True to stop. Then self.ruled."""
        est = self.est
        est._update_no_improvement_count(logs)
        if est.solver == "sgd" and isinstance(est.learning_rate, str) and est.learning_rate == "invscaling":
            loop.trainer.settings["learning_rate"] = est.learning_rate_init / (est.t_ + 1) ** est.power_t
        stop = False
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if est.early_stopping else "Training loss"
            msg = (f"{what} did not improve more than tol={est.tol:f} for "
                   f"{est.n_iter_no_change} consecutive epochs.")
            stop = est._trigger_stopping(msg, loop.trainer)
            if not stop:
                est._no_improvement_count = 0
        self.ruled = True
        return stop

    def on_epoch_end(self, loop, logs):
        self._sync(loop, loop.observed)
        est = self.est
        if loop.diverged is not None:
            if est.early_stopping:
                est.validation_scores_.append(np.nan)
            self.ruled = True
            return True
        if self._rule(loop, logs):
            return True
        if not self.incremental and loop.epoch == est.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning)
        return False


def _r2(Y, P, sample_weight=None):
    """scikit-learn's r2_score(Y, P, sample_weight) of 2-D float arrays, its outputs' uniform average (a
    constant output counts 1 when predicted exactly, else 0); with fewer than two rows, scikit-learn's own."""
    if Y.shape[0] < 2:
        return r2_score(Y, P, sample_weight=sample_weight)
    Y, P = Y.astype(np.float64, copy=False), P.astype(np.float64, copy=False)
    w = 1.0 if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[:, None]
    numerator = (w * (Y - P) ** 2).sum(axis=0)
    denominator = (w * (Y - np.average(Y, axis=0, weights=sample_weight)) ** 2).sum(axis=0)
    scores = np.ones(Y.shape[1])
    valid = (denominator != 0) & (numerator != 0)
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[(numerator != 0) & (denominator == 0)] = 0.0
    return float(scores.mean())


class _PreparedFit:
    """A call of fit or partial_fit, set up: run() trains and ends the callbacks' task.

    For sgd and adam, ``loop`` is the EpochLoop; ``guard(train)`` runs
    train() (by default the loop's own run) with what the estimator does
    around it, so that an ensemble can train several members' loops in one
    pass (fastmlp.ensemble.run_in_one_pass) and still end each as its own
    fit would.
    """

    def __init__(self, train, loop=None, guard=None, end=None):
        self.train, self.loop, self._guard, self._end = train, loop, guard, end
        self.estimator = self.checked = None  # the estimator, and its (X, Y, validation set) as checked

    def guard(self, train):
        if self._guard is None:
            train()
        else:
            self._guard(train)

    def run(self):
        self.guard(self.train)
        if self._end is not None:
            try:
                self._end()
            except KeyboardInterrupt:  # (the callbacks' end, the model complete: Ctrl-C ends the fit as in training)
                if self.estimator not in _INTERRUPTED:
                    self.estimator._interrupted()


def refuse_non_numeric(X, name="X"):
    """What scikit-learn's predict (and a regressor's fit, for y) refuses (its validation with dtype="numeric")
    and a cast to the model's float dtype would take: arrays of strings or bytes (parsed as numbers), dates and
    times (as their counts)."""
    kind = getattr(getattr(X, "dtype", None), "kind", None)
    if kind in ("U", "S"):
        raise ValueError(f"{name}: dtype='numeric' is not compatible with arrays of bytes/strings. Convert your "
                         "data to numeric values explicitly instead.")
    if kind in ("M", "m"):
        raise TypeError(f"{name} has dtype {X.dtype}: dates and times are not numbers; convert them explicitly.")


def validate_X_val(estimator, X_val, dtype):
    """scikit-learn's validate_data of a validation set against the estimator's fitted input (no reset),
    its errors naming X_val (scikit-learn's call it X)."""
    try:
        return validate_data(estimator, X_val, accept_sparse=["csr", "csc"], dtype=dtype, reset=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"X_val: {exc}") from None


def _callback_managed(method):
    """method inside scikit-learn's callback management (the callbacks' teardown, whatever happens), if any."""
    return method if with_callbacks is None else with_callbacks(method)


_IMMUTABLE = frozenset({str, int, float, bool})


@functools.cache
def _param_names(cls):
    """The estimator class's hyperparameter names (scikit-learn finds them by inspecting __init__, every call)."""
    return tuple(cls._get_param_names())


def _frozen(value):
    """A value as it can be compared later: lists, tuples and arrays as tuples (copies), the rest as is."""
    if value is None or type(value) in _IMMUTABLE:  # (most parameters: checked first, partial_fit runs it per call)
        return value
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, _frozen(value.tolist()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    if hasattr(value, "get_params") and not isinstance(value, type):  # a schedule: by its parameters
        return (type(value).__name__, tuple((k, _frozen(v)) for k, v in value.get_params(deep=False).items()))
    return value


class _BaseMLP(*(() if CallbackSupportMixin is None else (CallbackSupportMixin,)), BaseEstimator):
    """Shared implementation of MLPClassifier and MLPRegressor."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_registry.ACTIVATIONS) | set(_registry.ACTIVATION_ALIASES))],
        "solver": [StrOptions(set(_registry.SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"}), _ScheduleObject(["start", "get_params"])],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "clip_norm": [None, Interval(Real, 0, None, closed="neither")],
        "dtype": [None, StrOptions(set(_registry.DTYPES)), Options(type, {np.float32, np.float64}),
                  Options(np.dtype, {np.dtype(np.float32), np.dtype(np.float64)})],
        "scoring": [None, StrOptions({"loss"} | set(get_scorer_names())), callable],
    }

    # What checking a fit's input (_validate_input) records on the estimator: _prepared_fit's like copies it.
    _INPUT_RECORD = ("n_features_in_", "feature_names_in_")

    # What fastmlp.save keeps of a fitted estimator besides its parameters and
    # network (persistence.py writes and reads it, by kind): attribute -> (kind, required).
    _SAVED_FITTED = {
        "n_features_in_": ("count", True), "n_outputs_": ("count", True), "n_layers_": ("count", True),
        "n_iter_": ("count", True), "t_": ("count", True), "_no_improvement_count": ("count", True),
        "out_activation_": ("name", True), "best_loss_": ("number", True), "best_validation_score_": ("number", True),
        "loss_": ("number", False), "loss_curve_": ("curve", True), "grad_norms_": ("norms", True),
        "validation_scores_": ("scores", True), "_random_state": ("rng", True), "feature_names_in_": ("names", False),
        "_best_params": ("params", False), "_trainer": ("trainer", False), "dead_units_": ("fractions", False),
        "history_": ("history", False), "_lr_run": ("schedule run", False),
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, loss, shuffle, random_state, tol, verbose, warm_start,
                 momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, dropout, clip_norm, dtype, scoring):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.clip_norm = clip_norm
        self.dtype = dtype
        self.scoring = scoring

    # ------------------------------------------------------------ fitted state

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_network")

    @property
    def coefs_(self):
        """List of weight matrices, ``coefs_[l]`` of shape (fan_in, fan_out): live views into the model."""
        return self._layers("coefs_")

    @coefs_.setter
    def coefs_(self, values):
        self._assign_layers("coefs_", values)

    @property
    def prelu_slopes_(self):
        """With activation="prelu": the learnable slope of each hidden unit, one array per hidden layer."""
        return self._fitted_network().prelu_slopes_

    @property
    def intercepts_(self):
        """List of bias vectors, ``intercepts_[l]`` of shape (fan_out,): live views into the model."""
        return self._layers("intercepts_")

    @intercepts_.setter
    def intercepts_(self, values):
        self._assign_layers("intercepts_", values)

    def _fitted_network(self):
        try:
            return self._network
        except AttributeError:
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet.") from None

    def _layers(self, name):
        """coefs_ or intercepts_: the model's, or before fitting the list assigned (_assign_layers)."""
        if "_network" not in self.__dict__ and name in self.__dict__.get("_assigned_layers", {}):
            return self._assigned_layers[name]
        return getattr(self._fitted_network(), name)

    def _assign_layers(self, name, values):
        """Set coefs_ or intercepts_; before fitting, keep the list to start from.

        As in scikit-learn, weights assigned to an unfitted estimator are where
        the first partial_fit (or fit with warm_start=True) starts; they are
        checked against the layer sizes then, when the data gives them.
        """
        if "_network" in self.__dict__:
            setattr(self._network, name, values)
            return
        if isinstance(values, np.ndarray) or not isinstance(values, (list, tuple)):
            raise TypeError(f"{name} must be a list of arrays, one per layer; got {type(values).__name__}.")
        self.__dict__.setdefault("_assigned_layers", {})[name] = list(values)

    def _load_assigned_layers(self, net):
        """Copy the weights assigned before fitting into the new network (checked there), naming the sizes."""
        assigned = self._assigned_layers
        missing = [name for name in ("coefs_", "intercepts_") if name not in assigned]
        if missing:
            raise ValueError(f"{missing[0]} must be assigned too: training starts from assigned weights only when "
                             "both coefs_ and intercepts_ are given.")
        try:
            net.coefs_ = assigned["coefs_"]
            net.intercepts_ = assigned["intercepts_"]
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc} (assigned before fitting: the layer sizes are {list(net.layer_sizes)}, from the "
                            "features of X, hidden_layer_sizes and the outputs)") from None

    # -------------------------------------------------------------------- fit

    def _fit_dtype(self, X):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        dtypes = getattr(X, "dtypes", None)  # a DataFrame: float32 when every column is
        if dtypes is not None and not isinstance(dtypes, np.dtype):
            return np.dtype(np.float32 if len(dtypes) and all(d == np.float32 for d in dtypes) else np.float64)
        if getattr(X, "dtype", None) == np.float32:
            return np.dtype(np.float32)
        return np.dtype(np.float64)

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if any(not isinstance(s, (Integral, np.integer)) or isinstance(s, bool) for s in sizes):
            raise TypeError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes}.")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes}.")
        return [int(s) for s in sizes]

    def _start_partial_fit(self, y, classes=None):
        """What partial_fit checks and sets before its epoch (the classifier's classes): nothing here."""

    def _validate_params_if_changed(self):
        """_validate_params, unless no hyperparameter changed since the last call that passed.

        partial_fit validates every call, as scikit-learn's does; on a small
        network that was 0.6 ms of a 1.6 ms call. The snapshot holds each
        value (lists and arrays as tuples), so a change by set_params or by
        plain assignment, in place or not, is validated again.
        """
        snapshot = tuple((name, _frozen(getattr(self, name))) for name in _param_names(type(self)))
        if self.__dict__.get("_validated_params") != snapshot:
            self._validate_params()
            self._validated_params = snapshot

    def _plain_input(self, X, y, dtype):
        """(X, y) unchanged when a later partial_fit call gives them as the engine takes them, else None.

        For a C-contiguous 2-D array of the model's dtype and width (and no
        feature names to check) and a 1-D numeric y of the same length,
        validate_data would return them as they are; their values are checked
        after (X's finiteness by the Network, y by the label encoding or the
        Network's target check). Anything else takes validate_data's path.
        """
        if (type(X) is np.ndarray and type(y) is np.ndarray and X.dtype == dtype and X.ndim == 2 and y.ndim == 1
                and X.flags.c_contiguous and 0 < X.shape[0] == y.shape[0] and X.shape[1] == self.n_features_in_
                and y.dtype.kind in "biuf" and not hasattr(self, "feature_names_in_")):
            return X, y
        return None

    @_callback_managed
    def _fit(self, X, y, sample_weight=None, incremental=False, X_val=None, y_val=None, sample_weight_val=None):
        _INTERRUPTED.discard(self)
        with self._as_before_if_it_fails():
            prepared = self._prepared_fit(X, y, sample_weight, incremental, X_val, y_val, sample_weight_val)
        prepared.run()
        return self

    def _batch_rows(self, n_samples):
        """The rows of a batch of sgd and adam for n_samples training rows (scikit-learn's: "auto" is 200)."""
        return min(200, n_samples) if self.batch_size == "auto" else min(max(int(self.batch_size), 1), n_samples)

    def _interrupted(self):
        """What a fit does when Ctrl-C ends it: warn, and note it (_INTERRUPTED), then return."""
        warnings.warn(INTERRUPTED_MESSAGE)
        _INTERRUPTED.add(self)

    def _set_up_only(self, X, y, sample_weight=None, incremental=False, **validation):
        """A fit or partial_fit set up (checked, the network built or kept) but given no epoch: where a call that
        Ctrl-C ended before its first epoch leaves the estimator (an ensemble's members that come after the one
        whose fit was interrupted), without the warning."""
        with self._as_before_if_it_fails():
            prepared = self._prepared_fit(X, y, sample_weight, incremental, **validation)
        token = BEFORE_FIRST_EPOCH.set(True)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", INTERRUPTED_MESSAGE)
                prepared.guard(prepared.train)
        finally:
            BEFORE_FIRST_EPOCH.reset(token)
        _INTERRUPTED.add(self)

    @contextlib.contextmanager
    def _as_before_if_it_fails(self):
        """A call's checks and set-up (_prepared_fit): if they raise, the estimator is as it was before the
        call, with its network's settings, which the call sets before its checks (a first fit that fails
        after building its network, on a bad sample_weight or X_val, would otherwise leave it fitted
        with the network's initial weights). The trainer's settings change only after the last check. A
        failure once the epochs run has its own rules (the roll-back of a divergence)."""
        state = dict(self.__dict__)
        net = state.get("_network")
        net_settings = (net.loss_param, net._rng, net.dropout) if net is not None else None
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            if net is not None:
                net.loss_param, net._rng, net.dropout = net_settings
            raise

    def _prepared_fit(self, X, y, sample_weight=None, incremental=False, X_val=None, y_val=None,
                      sample_weight_val=None, like=None):
        """A call of fit or partial_fit checked and set up (the network built, the loop made), not run yet:
        a _PreparedFit, whose run() trains (an ensemble's one pass may train the loops of several).

        like: the _PreparedFit of another estimator of the same class and settings, set up in the same call
        on the same arguments (an ensemble's first member): its checked X, y and validation set are taken,
        with the record their checks leave on it (n_features_in_, classes_, ...), instead of checking them
        again (a millisecond a member)."""
        X_given, y_given, sw_given = X, y, sample_weight
        check_validation_args(X_val, y_val, sample_weight_val)
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "_network") or (not self.warm_start and not incremental)
        dtype = self._fit_dtype(X) if first_pass else self._network.dtype
        if like is None:
            X, Y = self._validate_input(X, y, incremental, reset=first_pass, dtype=dtype)
        else:
            for name in self._INPUT_RECORD:
                if name in like.estimator.__dict__:
                    setattr(self, name, like.estimator.__dict__[name])
                else:
                    self.__dict__.pop(name, None)
            X, Y = like.checked[:2]
        class_weights = self._class_sample_weight(Y)  # (checked before the first fit builds anything)
        n_samples, n_features = X.shape
        layer_units = [n_features, *hidden, Y.shape[1]]
        if not incremental or first_pass or not hasattr(self, "_random_state"):
            # partial_fit keeps drawing from one generator: re-seeding every call (as scikit-learn does)
            # would repeat the same shuffle and, with dropout, the same masks in every epoch
            self._random_state = check_random_state(self.random_state)

        if first_pass:
            # weights assigned before fitting are where partial_fit or a warm start begins; a cold fit drops them
            assigned = "_assigned_layers" in self.__dict__ and (incremental or self.warm_start)
            self._initialize(Y, layer_units, dtype, assigned)
        elif list(self._network.layer_sizes) != layer_units:
            raise ValueError(
                f"The network has layer sizes {list(self._network.layer_sizes)} but this call needs {layer_units}: "
                "hidden_layer_sizes, the number of features or of outputs changed since the first fit "
                "(set warm_start=False to start over)."
            )
        elif not isinstance(self, ClassifierMixin) and self._network.loss != self.loss:
            raise ValueError(f"The network was fit with loss={self._network.loss!r}, but loss={self.loss!r} now "
                             "(set warm_start=False to start over).")
        net = self._network
        trainer = self.__dict__.get("_trainer")  # (its arrays: the optimizer state, the epoch's start, ...)
        state = [] if trainer is None else [*vars(trainer).values(), *trainer.state]
        check_writable([net._params, *state], type(self).__name__)
        net.loss_param = self._loss_param(net.dtype)  # (huber_delta or quantile may change between calls)
        net._set_dropout(self.dropout)  # (so may dropout)
        net._rng = self._random_state  # shuffling and dropout follow random_state, as scikit-learn's
        X = net._check_X(X)
        Y = net._check_Y(Y, n_samples, name="y")
        sample_weight = net._check_sample_weight(sample_weight, n_samples)
        if class_weights is not None:
            sample_weight = class_weights if sample_weight is None else sample_weight * class_weights
            if not np.sum(sample_weight, dtype=np.float64) > 0:
                raise ValueError("sample_weight times class_weight sums to zero: no sample has a positive weight.")
        # the most rows one mean is scaled over: lbfgs's whole data, else a batch (the same as the epochs')
        check_weight_sum(sample_weight, net.dtype,
                         n_samples if self.solver not in _STOCHASTIC_SOLVERS else self._batch_rows(n_samples),
                         "sample_weight" if class_weights is None else "sample_weight times class_weight")
        # a Checkpoint of validation numbers in a fit with none is refused before anything trains
        has_validation = X_val is not None or (self.early_stopping and self.solver in _STOCHASTIC_SOLVERS)
        for callback in self.__dict__.get("_skl_callbacks") or ():
            if hasattr(callback, "_needs_validation"):
                callback._needs_validation(has_validation)
        validation = val_set = None
        if X_val is not None:
            val_set = self._check_validation_set(X_val, y_val, sample_weight_val, dtype) if like is None else \
                like.checked[2]
            validation = self._validation(*val_set)

        context = self._callback_context(1 if incremental else self.max_iter)
        hooks, end = [], None
        if context is not None:
            metadata = None if sw_given is None else {"sample_weight": sw_given}
            context.call_on_fit_task_begin(estimator=self, X=X_given, y=y_given, metadata=metadata)
            hooks.append(_SklearnTasks(self, context, X_given, y_given, metadata))
            end = functools.partial(context.call_on_fit_task_end, estimator=self, X=X_given, y=y_given,
                                    metadata=metadata, reconstruction_attributes={})
        if self.solver in _STOCHASTIC_SOLVERS:
            prepared = self._stochastic_fit(X, Y, sample_weight, incremental, validation, hooks, end)
        else:
            prepared = _PreparedFit(lambda: self._fit_lbfgs(X, Y, sample_weight, validation, hooks), end=end)
        prepared.estimator, prepared.checked = self, (X, Y, val_set)
        return prepared

    def _callback_context(self, max_epochs):
        """The fit's root task for scikit-learn's callbacks, or None (none set, none above this estimator)."""
        if CallbackSupportMixin is None or not (getattr(self, "_skl_callbacks", None)
                                                or hasattr(self, "_parent_callback_ctx")):
            return None
        return self._init_callback_context(max_subtasks=max_epochs)

    def _check_validation_set(self, X_val, y_val, sample_weight_val, dtype):
        """(X_val, Y_val, sample_weight_val) checked as the training data, y_val encoded as y."""
        net = self._network
        X_val = validate_X_val(self, X_val, dtype)
        if X_val.shape[0] < 2 and self.scoring in (None, "r2") and not is_classifier(self):
            raise ValueError(f"X_val has 1 row: R^2, the regressor's score (scoring={self.scoring!r}), is not defined "
                             "on one row, so no epoch would ever score better than another; give more rows or "
                             "another scoring.")
        X_val = net._check_X(X_val, "X_val")
        Y_val = net._check_Y(self._encode_targets(y_val, dtype), X_val.shape[0], name="y_val")
        sw_val = net._check_sample_weight(sample_weight_val, X_val.shape[0], "sample_weight_val")
        return X_val, Y_val, sw_val

    def _initialize(self, Y, layer_units, dtype, assigned=False):
        out_activation = self._output_activation()
        loss = "log_loss" if is_classifier(self) else self.loss
        net = Network(layer_units, activation=self.activation, output_activation=out_activation, loss=loss,
                      init="auto", dtype=dtype, dropout=self.dropout, random_state=self._random_state,
                      loss_param=self._loss_param(dtype))
        if assigned:
            self._load_assigned_layers(net)  # before any fitted state is set: a failure leaves none
        self.__dict__.pop("_assigned_layers", None)
        self._network = net
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = out_activation
        self.loss_curve_ = []
        self.grad_norms_ = np.empty((0, self.n_layers_ - 1))
        # (lbfgs ignores early_stopping, as scikit-learn's does: its record is that of a fit without it)
        stops_early = self.early_stopping and self.solver in _STOCHASTIC_SOLVERS
        self.history_ = new_history(validation=stops_early)
        self.__dict__.pop("validation_loss_curve_", None)
        self._no_improvement_count = 0
        if stops_early:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        if hasattr(self, "_trainer"):
            del self._trainer
        self.__dict__.pop("_lr_run", None)

    def _loss_param(self, dtype):
        """The Network's loss_param: None, or the value of the parameter the regressor's loss has (checked for
        a model of dtype, named as the estimator's parameter)."""
        return None

    def _class_sample_weight(self, Y):
        """The weight of each sample of the encoded targets Y from class_weight (classifier), or None."""
        return None

    def _stochastic_fit(self, X, Y, sample_weight, incremental, validation=None, hooks=(), end=None):
        """The sgd or adam fit set up: a _PreparedFit holding its EpochLoop."""
        net = self._network
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        # early_stopping set otherwise than when the model was started (set_params, then a warm start or
        # partial_fit): its record starts here, as a first fit's would (scikit-learn's MLP crashes there)
        if self.early_stopping:
            if self.best_validation_score_ is None:
                self.best_validation_score_, self.validation_scores_ = -np.inf, []
        elif self.best_loss_ is None:
            self.best_loss_ = np.inf
        if self.early_stopping and validation is None:
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            arrays = [X, Y] if sample_weight is None else [X, Y, sample_weight]
            # stratified by the user's labels (the same split as by the encoded ones): an error names them
            split = train_test_split(*arrays, random_state=self._random_state, test_size=self.validation_fraction,
                                     stratify=self._decode(Y) if should_stratify else None)
            X_train, X_val, Y_train, Y_val = split[:4]
            sw_train, sw_val = (split[4], split[5]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 "your dataset.")
            X_train = net._check_X(X_train)
            Y_train = np.ascontiguousarray(Y_train)
            validation = self._validation(net._check_X(X_val), np.ascontiguousarray(Y_val), sw_val)
        else:  # (X_val, y_val given: they replace the split)
            X_train, Y_train, sw_train = X, Y, sample_weight
        n_samples = X_train.shape[0]

        if self.batch_size != "auto" and self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        batch_size = self._batch_rows(n_samples)

        max_epochs = 1 if incremental else self.max_iter
        run, run_epoch = self._schedule_run(incremental)  # (a user's schedule may raise: before the trainer)
        if not incremental or not hasattr(self, "_trainer"):
            self._trainer = Trainer(net, self.solver, batch_size, self.learning_rate_init,
                                    **{name: getattr(self, param) for name, param in _HYPERPARAMETERS.items()})
        trainer = self._trainer
        trainer.settings["batch_size"] = batch_size
        for key, value in (("alpha", self.alpha), ("clip_norm", self.clip_norm)):
            trainer.settings[key] = value
        trainer.follow_dropout(net)

        hooks = [_StochasticRecord(self, n_samples, incremental), *hooks]
        if self.verbose:  # (first: an epoch's line before what the record prints of it, as scikit-learn's order)
            label = self.__dict__.get("_verbose_label", "") + "Iteration"  # (an ensemble's member says which)
            hooks.insert(0, Reporter(max_epochs, n_samples, label=label))
        keep_best = self.early_stopping
        loop = EpochLoop(net, trainer, X_train, Y_train, sw_train, max_epochs=max_epochs, shuffle=self.shuffle,
                         validation=validation, keep_best=keep_best,
                         best_score=self.best_validation_score_ if keep_best else -np.inf,
                         best_params=self.__dict__.get("_best_params") if keep_best else None,
                         hooks=hooks, history=self.history_, schedule=run, schedule_epoch=run_epoch,
                         carry_order=True,  # (scikit-learn's shuffles: each epoch's of the last one's order)
                         loss_per_row=True)  # (and its loss, which its stopping rules follow)
        history = self._history()

        def guarded(train):
            """train() (which runs the loop), then what follows the loop's end (whole, whenever Ctrl-C comes)."""
            interrupted = False
            try:
                try:
                    train()
                finally:
                    if run is not None:
                        self._lr_run = run, loop.schedule_epoch
            except Divergence as exc:
                if exc.to_call_start:
                    self._restore_history(history)
                raise
            except KeyboardInterrupt:
                interrupted = True
            if completed(lambda: self._after_stochastic(loop, keep_best)) or interrupted:
                self._interrupted()

        return _PreparedFit(loop.run, loop=loop, guard=guarded, end=end)

    def _after_stochastic(self, loop, keep_best):
        """The record of an sgd or adam loop that ended (the best weights, a divergence's warning)."""
        trainer = loop.trainer
        if keep_best:
            self.best_validation_score_ = loop.best_score
            self._best_params = loop.best_params
        if loop.diverged is not None:
            warn_diverged(self.n_iter_, self.best_validation_score_, trainer.settings["learning_rate"])

    def _schedule_run(self, incremental):
        """(the run of the learning_rate schedule, its next epoch), or (None, 0) for scikit-learn's strings.

        fit starts a run over max_iter epochs; partial_fit continues the run
        of the calls before it (an open-ended one, max_epochs=None) while the
        schedule and learning_rate_init are those it started from; one set
        since starts a run of its own.
        """
        if isinstance(self.learning_rate, str):
            self.__dict__.pop("_lr_run", None)
            return None, 0
        if incremental and self._lr_run_goes_on():
            return self._lr_run
        return self.learning_rate.start(self.learning_rate_init, None if incremental else self.max_iter), 0

    def _lr_run_goes_on(self):
        """Whether the kept schedule run (_lr_run) is that of learning_rate and learning_rate_init now."""
        kept = self.__dict__.get("_lr_run")
        return (kept is not None and not isinstance(self.learning_rate, str)
                and kept[0].started_from(self.learning_rate, self.learning_rate_init))

    def _validation(self, X_val, Y_val, sw_val):
        """The Validation of checked (X_val, Y_val): its loss, and the score that `scoring` names."""
        y_val = self._decode(Y_val) if is_classifier(self) else Y_val
        if self.scoring == "loss":
            return Validation(X_val, Y_val, sw_val)
        if self.scoring is None:
            return Validation(X_val, Y_val, sw_val, score_output=lambda P, sw: self._score_output(P, y_val, sw))
        scorer = check_scoring(self, self.scoring)

        def score(X, Y, sw):
            if not self._network._outputs_in_range(X):
                return np.nan
            with warnings.catch_warnings():  # X_val reaches the scorer as an array, without feature names
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return scorer(self, X, y_val) if sw is None else scorer(self, X, y_val, sample_weight=sw)

        return Validation(X_val, Y_val, sw_val, score=score)

    _HISTORY = ("loss_", "best_loss_", "dead_units_", "_no_improvement_count")

    def _history(self):
        """The policy's record at the start of a call, for _restore_history."""
        return {name: getattr(self, name) for name in self._HISTORY if hasattr(self, name)}

    def _restore_history(self, record):
        """The record as it was before the call (the weights were rolled back to then)."""
        for name in self._HISTORY:
            if name in record:
                setattr(self, name, record[name])
            elif hasattr(self, name):
                delattr(self, name)

    def _trigger_stopping(self, msg, trainer):
        """True to stop; the adaptive schedule divides the learning rate by 5 instead while it can."""
        if self.solver != "sgd" or not (isinstance(self.learning_rate, str) and self.learning_rate == "adaptive"):
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if trainer.settings["learning_rate"] <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        trainer.settings["learning_rate"] /= 5.0
        if self.verbose:
            print(msg + f" Setting learning rate to {trainer.settings['learning_rate']:f}")
        return False

    def _update_no_improvement_count(self, logs):
        if self.early_stopping:
            score = logs["val_score"]
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
        else:
            if logs["loss"] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if logs["loss"] < self.best_loss_:
                self.best_loss_ = logs["loss"]

    def _fit_lbfgs(self, X, Y, sample_weight, validation=None, hooks=()):
        net = self._network
        params = net._params
        last = {}

        def loss_and_grad(x):
            params[...] = x
            loss, grads = net._loss_and_gradients(X, Y, self.alpha, sample_weight)
            dW, _ = net._split(grads)
            last.update(x=x.copy(), loss=loss, norms=[float(np.linalg.norm(g)) for g in dW])
            return loss, grads.astype(np.float64)

        loop = EpochLoop(net, None, X, Y, sample_weight, max_epochs=self.max_iter, shuffle=False,
                         validation=validation, hooks=[_LbfgsRecord(self), *hooks], history=self.history_)
        tic = [time.perf_counter()]
        # the weights of the last iteration recorded, and of the one being recorded: what an interrupt
        # returns to (the line search's trial points come and go between them)
        kept = {"x": None, "n": 0, "pending": None}

        def callback(intermediate_result):
            x = intermediate_result.x
            if not np.array_equal(x, last.get("x")):
                loss_and_grad(x)
            now = time.perf_counter()
            kept["pending"] = x.copy()
            stop = loop.bridge(float(last["loss"]), np.array(last["norms"]), now - tic[0])
            kept["x"], kept["n"] = kept["pending"], len(loop.grad_norms)
            tic[0] = now
            if self.verbose:
                print(f"{self.__dict__.get('_verbose_label', '')}Iteration {len(self.history_['loss'])}, "
                      f"loss = {last['loss']:.8f}", flush=True)
            if stop:
                raise StopIteration  # scipy ends the run with this iteration's x

        x0 = params.astype(np.float64)
        start = params.copy()
        try:
            with loop.bridged():
                try:
                    if BEFORE_FIRST_EPOCH.get():
                        raise KeyboardInterrupt
                    # L-BFGS-B's own vector products (NumPy's BLAS) run between the engine's calls:
                    # on one thread, so that no BLAS pool spins while the engine's threads work
                    with net._blas_pinned():
                        result = scipy.optimize.minimize(
                            loss_and_grad, x0, method="L-BFGS-B", jac=True, callback=callback,
                            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
                        )
                except BaseException:
                    # Ctrl-C, or a callback or scorer that raised: the weights the record ends with (an iteration
                    # not completely recorded taken back first)
                    loop.take_back_open_epoch()
                    x = kept["pending"] if len(loop.grad_norms) > kept["n"] else kept["x"]
                    params[...] = start if x is None else x
                    raise
                if not np.isfinite(result.x).all() or not np.isfinite(result.fun):
                    self._forget_lbfgs(loop, start)
                    raise ValueError(f"{SKLEARN_DIVERGENCE} L-BFGS produced non-finite weights or loss; the weights "
                                     "are those before this fit.")
                params[...] = result.x
                # finite in float64 can still overflow float32, in the weights or in the outputs
                if not (np.isfinite(params).all() and np.isfinite(net._forward(X, False, 0)).all()):
                    self._forget_lbfgs(loop, start)
                    raise ValueError(f"{SKLEARN_DIVERGENCE} L-BFGS produced weights whose weights or outputs overflow "
                                     f"{net.dtype}; the weights are those before this fit.")
        except KeyboardInterrupt:  # (in the run, or in the hooks' fit end: bridged completed that first)
            self._interrupted()
            return
        if completed(lambda: self._lbfgs_result(result)):
            self._interrupted()
            return
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status={result.status}): "
                          f"{result.message}. Increase the number of iterations (max_iter) or scale the data.",
                          ConvergenceWarning)

    def _lbfgs_result(self, result):
        """n_iter_, loss_ and best_loss_ from an L-BFGS run that ended."""
        self.n_iter_ = int(result.nit)
        self.loss_ = float(result.fun)
        self.best_loss_ = min(self.loss_curve_ + [self.loss_])

    def _forget_lbfgs(self, loop, start):
        """Weights and record as before an L-BFGS run that failed."""
        np.copyto(self._network._params, start)
        loop.forget_call()

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is not "
                                 "stochastic.")
        return True

    # --------------------------------------------------------------- predict

    def _forward(self, X, logits=False):
        """The network's output for X (logits: before the output activation).

        A fast path (Network._fast_forward) skips scikit-learn's validation for
        contiguous, finite arrays of the model's dtype and width (the case of a
        service predicting one row).
        """
        if not hasattr(self, "_network"):
            check_is_fitted(self)  # raises NotFittedError
        net = self._network
        if not logits and not hasattr(self, "feature_names_in_"):
            out = net._fast_forward(X)
            if out is not None:
                return out
        refuse_non_numeric(X)
        X = net._check_X(validate_data(self, X, accept_sparse=["csr", "csc"], reset=False, dtype=net.dtype))
        return net._forward(X, False, 0, logits=logits)

    def save(self, path):
        """Write the estimator to one file at exactly `path`, without pickle.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write, used as given (no extension is added); an existing
            file is replaced whole or not at all.

        See Also
        --------
        fastmlp.load : Read the file back.
        fastmlp.persistence.save : The function this calls, with the file format.

        Notes
        -----
        Fitted or not, the estimator is saved with its parameters; a fitted one
        also with its weights, fitted attributes, optimizer state and random
        generator, so the loaded copy predicts bit-identically and goes on training
        as this one would.

        Examples
        --------
        >>> import os, tempfile
        >>> import fastmlp
        >>> from fastmlp import MLPRegressor
        >>> reg = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=50,
        ...                    random_state=0).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "model.fastmlp")
        ...     reg.save(path)
        ...     loaded = fastmlp.load(path)
        >>> bool((loaded.predict([[1.5]]) == reg.predict([[1.5]])).all())
        True
        """
        from .persistence import save
        save(self, path)

    def to_onnx(self, **kwargs):
        """Export the fitted estimator as an ONNX model.

        Parameters
        ----------
        **kwargs
            Passed to :func:`fastmlp.onnx.to_onnx`: ``opset`` (int, default=None:
            17) and ``name`` (str, default=None: "fastmlp_<class name>").

        Returns
        -------
        onnx.ModelProto
            One input "X" of shape (N, n_features) in the model's dtype; outputs as
            skl2onnx names them: a classifier's "label" and "probabilities" (as
            ``predict`` and ``predict_proba``), a regressor's "variable".

        See Also
        --------
        fastmlp.onnx.to_onnx : The function this calls.

        Examples
        --------
        >>> from fastmlp import MLPRegressor
        >>> reg = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=50,
        ...                    random_state=0).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        >>> model = reg.to_onnx()
        >>> [o.name for o in model.graph.output]
        ['variable']
        """
        from .onnx import to_onnx
        return to_onnx(self, **kwargs)

    def _score_output(self, P, y, sample_weight=None):
        """score(X, y) from the network's outputs P on X, y as the validation keeps it (labels, or 2-D
        targets): the accuracy or R^2 of scikit-learn's score, computed here (scikit-learn's metrics check
        their input at a cost of about a millisecond, more than an epoch of a small network)."""
        # (run per member and epoch of an ensemble's search: no is_classifier, whose estimator tags cost
        # more than the rest of this function)
        y_pred = self._predict_output(P)
        if y_pred.dtype.kind == "f" and not np.isfinite(y_pred).all():
            return np.nan
        if isinstance(self, ClassifierMixin):
            correct = y_pred == y
            if correct.ndim == 2:  # multilabel: the subset accuracy, every label right
                correct = correct.all(axis=1)
            return float(correct.mean() if sample_weight is None else np.average(correct, weights=sample_weight))
        return _r2(np.reshape(y, (len(y), -1)), np.reshape(y_pred, (len(y), -1)), sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained in compiled code.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`:
    the same parameters (same names, order, defaults and meaning), fitted
    attributes and methods, plus the additions marked below. The model
    minimises the log-loss, averaged over the samples (weighted by
    ``sample_weight``), plus ``alpha / (2 n) * sum_l ||W_l||^2``, with the
    L-BFGS, SGD or Adam solver. Binary problems use one logistic output,
    multiclass a softmax, multilabel (an indicator matrix y) one logistic
    output per label.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,) or int, default=(100,)
        The number of units of each hidden layer, first to last: ``(64, 32)``
        is two hidden layers. An int is one hidden layer.

    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "prelu", "swish"}, default="relu"
        Activation function of the hidden layers.

        - "identity": f(z) = z, for a linear bottleneck.
        - "logistic": f(z) = 1 / (1 + exp(-z)) (alias "sigmoid").
        - "tanh": f(z) = tanh(z).
        - "relu": f(z) = max(z, 0).
        - "leaky_relu": f(z) = z for z > 0, else 0.01 z.
        - "prelu": f(z) = z for z > 0, else a z, with a slope a per hidden
          unit learnt with the weights (starting at 0.25, no L2 penalty);
          the slopes are ``prelu_slopes_``.
        - "swish": f(z) = z / (1 + exp(-z)) (alias "silu").

        "leaky_relu", "prelu", "swish" and the aliases are fastmlp additions.

    solver : {"lbfgs", "sgd", "adam"}, default="adam"
        The solver for weight optimization.

        - "lbfgs": scipy's L-BFGS-B (a quasi-Newton method) on the loss and
          gradient of the whole training set, both computed by the engine
          in the model's dtype (the optimizer itself works in float64).
        - "sgd": mini-batch stochastic gradient descent, with momentum.
        - "adam": Kingma and Ba's Adam, bias-corrected.

        As in scikit-learn, "adam" suits large data sets (thousands of
        samples or more); on small ones "lbfgs" often converges faster and
        better.

    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the biases): the loss
        gains ``alpha / (2 n) * sum_l ||W_l||_F^2``, with n the number of
        samples of the batch (the sum of their weights with
        ``sample_weight``). Must be non-negative.

    batch_size : int or "auto", default="auto"
        Size of the mini-batches of the stochastic solvers; "auto" is
        ``min(200, n_samples)``. A size larger than the training set warns and
        is clipped to it. Not used by "lbfgs", which works on the whole set.

    learning_rate : {"constant", "invscaling", "adaptive"} or schedule, default="constant"
        Learning-rate schedule of the "sgd" solver, applied once per epoch.

        - "constant": ``learning_rate_init`` throughout.
        - "invscaling": after each epoch, ``learning_rate_init / (t_ + 1) **
          power_t``, with ``t_`` the number of samples seen so far.
        - "adaptive": ``learning_rate_init`` as long as the training loss
          keeps falling (the validation score rising, with
          ``early_stopping``); each time it has not improved by at least
          ``tol`` for more than ``n_iter_no_change`` consecutive epochs, the
          rate is divided by 5, and training stops once the rate is at or
          below 1e-6.

        Only used when ``solver="sgd"``. Or a schedule of
        :mod:`fastmlp.schedules` (``StepDecay(gamma=0.5)``, ``OneCycle()``,
        ...), for "sgd" and "adam": started from ``learning_rate_init`` over
        ``max_iter`` epochs at each fit (open-ended, and continued from call
        to call, by ``partial_fit``), it gives each epoch's rate per batch
        before the epoch runs; ReduceOnPlateau follows the validation loss
        when there is a validation set, else the training loss. A fastmlp
        addition.

    learning_rate_init : float, default=0.001
        The initial learning rate: the step size of the weight updates. Only
        used when ``solver="sgd"`` or ``"adam"``.

    power_t : float, default=0.5
        The exponent of the "invscaling" schedule. Only used when
        ``solver="sgd"`` and ``learning_rate="invscaling"``.

    max_iter : int, default=200
        The largest number of epochs (passes over the training set) for "sgd"
        and "adam", or of iterations for "lbfgs"; the solver stops earlier
        when it converges (see ``tol``). A fit that reaches it warns with a
        ``ConvergenceWarning``.

    shuffle : bool, default=True
        Whether to shuffle the training samples before each epoch. Only used
        when ``solver="sgd"`` or ``"adam"``. As scikit-learn's: each epoch
        permutes the last epoch's order, so that with the same
        ``random_state`` the batches are scikit-learn's in every epoch.

    random_state : int, RandomState instance or None, default=None
        Source of the initial weights, of the validation split (with
        ``early_stopping``), of the shuffling and of the dropout masks. With an
        int the initial weights are scikit-learn's for the same int, and the
        same int gives bit-identical results on the same machine.
        ``partial_fit`` draws from one generator across
        its calls, so each epoch gets its own shuffle and masks.

    tol : float, default=1e-4
        Tolerance for the optimization. For "sgd" and "adam", training stops
        (or, with ``learning_rate="adaptive"``, the learning rate falls) when
        the training loss has not fallen by at least ``tol`` (the validation
        score not risen by at least ``tol``, with ``early_stopping``) for more
        than ``n_iter_no_change`` consecutive epochs. For "lbfgs" it is the
        projected-gradient tolerance (``gtol``) of L-BFGS-B.

    verbose : bool, default=False
        Whether to print progress: one line per epoch with the loss, the
        layers' gradient norms, seconds and samples per second (per iteration
        for "lbfgs": the loss).

    warm_start : bool, default=False
        When True, ``fit`` starts from the weights of the previous fit instead
        of new random ones; the optimizer state starts fresh, ``loss_curve_``
        and ``t_`` go on. The layer sizes, the number of features and of
        outputs (for a classifier, the classes) must be those of the previous
        fit; the model keeps its dtype.

    momentum : float, default=0.9
        Momentum of the "sgd" updates, in [0, 1] (scikit-learn's form:
        ``v = momentum * v - learning_rate * g``). Only used when
        ``solver="sgd"``.

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum. Only used when ``solver="sgd"`` and
        ``momentum > 0``.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data
        (stratified for a binary classifier) and stop when its score
        has not improved by at least ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs. At the end of the fit the
        weights are those of the best validation score. When False, training
        stops when the training loss stops improving in the same way. Only
        used when ``solver="sgd"`` or ``"adam"``; ``partial_fit`` raises a
        ValueError with it.

    validation_fraction : float, default=0.1
        The fraction of the training data held out for early stopping, in
        [0, 1); the held-out set must have at least 2 samples. Only used when
        ``early_stopping=True``.

    beta_1 : float, default=0.9
        Exponential decay rate of Adam's first-moment estimate, in [0, 1).
        Only used when ``solver="adam"``.

    beta_2 : float, default=0.999
        Exponential decay rate of Adam's second-moment estimate, in [0, 1).
        Only used when ``solver="adam"``.

    epsilon : float, default=1e-8
        The term added to Adam's denominator for numerical stability. Only
        used when ``solver="adam"``.

    n_iter_no_change : int or numpy.inf, default=10
        The number of epochs without an improvement of at least ``tol`` that
        are tolerated (see ``tol``); ``numpy.inf`` never stops early. Only
        used when ``solver="sgd"`` or ``"adam"``.

    max_fun : int, default=15000
        The largest number of loss function calls of "lbfgs" (one call
        evaluates the loss and gradient on the whole training set). Only
        used when ``solver="lbfgs"``.

    dropout : float or list of float, default=0.0
        Inverted-dropout rate of the hidden layers in [0, 1): one rate for all
        of them, or one per hidden layer. During training each hidden unit is
        zeroed with that probability and the kept ones are divided by the
        keep probability; predictions use the whole network. Only used when
        ``solver="sgd"`` or ``"adam"`` ("lbfgs" works on the exact loss).
        A fastmlp addition.

    clip_norm : float or None, default=None
        When set, each mini-batch gradient whose global norm (over all
        weights, biases and PReLU slopes) exceeds ``clip_norm`` is scaled down
        to that norm before the update. Only used when ``solver="sgd"`` or
        ``"adam"``. A fastmlp addition.

    dtype : {"float32", "float64"}, numpy.float32, numpy.float64 or None, default=None
        The dtype of the weights, the computation and the outputs. None
        follows the input of the first fit: float32 X (or a DataFrame of
        float32 columns only) gives a float32 model for every solver ("lbfgs"
        included, where scikit-learn upcasts), anything else float64. Input
        of another dtype is converted to the model's. A fastmlp addition.

    scoring : str, callable or None, default=None
        The validation score that early stopping follows, and that
        ``history_["val_score"]`` records: None, the accuracy (scikit-learn's
        choice); "loss", minus the validation loss; a scorer name
        (``sklearn.metrics.get_scorer_names()``) or a callable
        ``scorer(estimator, X, y)``, higher is better. A fastmlp addition.

    class_weight : dict, list of dict or "balanced", default=None
        Weights of the classes, multiplied into ``sample_weight`` (of the
        loss, its gradient and the early-stopping validation score), with
        scikit-learn's semantics
        (:func:`sklearn.utils.class_weight.compute_class_weight`):

        - None: every class weighs 1.
        - dict: ``{label: weight}``; a class left out weighs 1; every label
          must be a class of y.
        - "balanced": class c weighs ``n_samples / (n_classes * count(c))``
          in the y given to ``fit``. Not with ``partial_fit``, which sees one
          batch at a time: compute the weights with ``compute_class_weight``
          on a large enough sample and pass them as a dict.
        - Multilabel y: "balanced", or a list of one dict per label with keys
          0 and 1; a sample weighs the product over its labels
          (:func:`sklearn.utils.class_weight.compute_sample_weight`).

        A fastmlp addition (scikit-learn's MLPClassifier has none;
        HistGradientBoostingClassifier's has the same meaning).

    Attributes
    ----------
    history_ : dict of list
        Per epoch (or L-BFGS iteration) since the model was initialised:
        "loss", "learning_rate" (NaN for L-BFGS), "seconds", and with a
        validation set (``early_stopping`` or ``X_val``) "val_loss" (its mean
        loss, without the L2 term) and "val_score" (see ``scoring``), NaN for
        epochs without one. All lists have the length of ``loss_curve_``.

    validation_loss_curve_ : list of float
        ``history_["val_loss"]``, when there is a validation set.

    classes_ : ndarray of shape (n_classes,)
        Class labels (for multilabel y, the column indices 0 to
        n_labels - 1).

    loss_ : float
        The training loss of the last epoch (for "lbfgs": at the solution),
        penalty included.

    best_loss_ : float or None
        The lowest training loss reached; None with ``early_stopping=True``
        and a stochastic solver (see ``best_validation_score_``; "lbfgs"
        ignores ``early_stopping``, as scikit-learn's does).

    loss_curve_ : list of float of length ``n_iter_``
        The training loss of each epoch, penalty included (also recorded for
        "lbfgs": one entry per iteration). ``warm_start`` and ``partial_fit``
        append to it.

    validation_scores_ : list of float or None
        The score on the held-out set after each epoch (accuracy); None
        unless ``early_stopping=True`` (with "sgd" or "adam").

    best_validation_score_ : float or None
        The best of ``validation_scores_``, whose weights the model keeps;
        None unless ``early_stopping=True`` (with "sgd" or "adam").

    t_ : int
        The number of training samples seen by the stochastic solvers over
        all calls (epochs times samples); 0 for "lbfgs".

    coefs_ : list of ndarray of length n_layers - 1
        ``coefs_[l]``, of shape (fan_in, fan_out), is the weight matrix from
        layer l to layer l + 1. The arrays are views into the model: writing
        into them changes it; a new list assigned is validated (count,
        shapes, finite values) and copied in.

    intercepts_ : list of ndarray of length n_layers - 1
        ``intercepts_[l]``, of shape (fan_out,), is the bias vector of layer
        l + 1; views into the model, as ``coefs_``.

    prelu_slopes_ : list of ndarray
        With ``activation="prelu"``: one array of shape (n_units,) per hidden
        layer, the learnt slope of each unit; empty otherwise.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during ``fit``. Defined only when X has
        feature names that are all strings.

    n_iter_ : int
        The number of epochs ("lbfgs": iterations) the last call ran.

    n_layers_ : int
        Number of layers, input and output included (``len(coefs_) + 1``).

    n_outputs_ : int
        Number of output units.

    out_activation_ : str
        Name of the output activation: "logistic" (binary, multilabel) or "softmax" (multiclass).

    grad_norms_ : ndarray of shape (len(``loss_curve_``), n_layers - 1)
        Per epoch (per iteration for "lbfgs"), the Frobenius norm of each
        layer's weight gradient, averaged over the epoch's mini-batches:
        vanishing or exploding gradients show here
        (:func:`fastmlp.plot.plot_gradient_norms` draws it). A fastmlp
        addition.

    dead_units_ : list of float or None
        Set by "sgd" and "adam". With a ReLU-family activation ("relu",
        "leaky_relu", "prelu"): per hidden layer, the fraction of units whose
        pre-activation never exceeded 0 on the last epoch's training data;
        None for the other activations. A fastmlp addition.

    See Also
    --------
    MLPRegressor : Multi-layer perceptron regressor.
    Network : The model underneath, for training loops of one's own.
    sklearn.neural_network.MLPClassifier : The scikit-learn estimator this replaces.

    Notes
    -----
    Each epoch's mini-batch loop (forward pass, backward pass, optimizer
    update) runs in compiled code with the GIL released. Dense input is used
    as a C-contiguous array and sparse input as CSR (the first layer works on
    the nonzeros, no dense copy). The differences from scikit-learn: the
    additions marked above, ``dtype=None`` keeping float32 for "lbfgs", and
    ``predict``, ``predict_proba`` and ``predict_log_proba`` skipping
    scikit-learn's input validation for a C-contiguous array of the model's
    dtype and width (checked in compiled code instead).

    A diverging fit (non-finite loss, weights or outputs) never leaves a model
    that predicts NaN: with ``early_stopping=True`` it returns with the
    best-validation weights (and a ConvergenceWarning), otherwise it raises a
    ValueError with finite weights left in place.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import train_test_split
    >>> from fastmlp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=1000,
    ...                     random_state=0).fit(X_train, y_train)
    >>> clf.classes_
    array([0, 1, 2])
    >>> clf.predict_proba(X_test[:2]).shape
    (2, 3)
    >>> clf.predict(X_test[:2]).shape
    (2,)
    >>> bool(clf.score(X_test, y_test) > 0.9)
    True
    >>> [W.shape for W in clf.coefs_]
    [(4, 16), (16, 3)]
    """

    _SAVED_FITTED = {**_BaseMLP._SAVED_FITTED, "classes_": ("labels", True),
                     "_label_binarizer": ("label binarizer", True)}
    _INPUT_RECORD = (*_BaseMLP._INPUT_RECORD, "classes_", "_label_binarizer")  # (the binarizer read only)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, clip_norm=None, dtype=None,
                 scoring=None, class_weight=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss="log_loss", shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout, clip_norm=clip_norm, dtype=dtype,
            scoring=scoring,
        )
        self.class_weight = class_weight

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict, list],
    }

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _class_sample_weight(self, Y):
        """class_weight as one weight per sample of the encoded targets Y, in Y's dtype; None without it.

        scikit-learn's semantics (compute_class_weight, as HistGradientBoostingClassifier):
        "balanced" weighs class c by n_samples / (n_classes * count(c)) in this y;
        a dict maps labels to weights, 1 for a class it leaves out. Multilabel y
        (one output per label): "balanced" or a list of one dict per label (keys
        0 and 1), a sample's weight the product over its labels
        (compute_sample_weight).
        """
        class_weight = self.class_weight
        if class_weight is None:
            return None
        dicts = class_weight if isinstance(class_weight, list) else [class_weight]
        for d in dicts:
            if not isinstance(d, (dict, str)):
                raise ValueError(f"class_weight must be None, 'balanced', a dict or (multilabel) a list of dicts, "
                                 f"got {class_weight!r}.")
            values = d.values() if isinstance(d, dict) else ()
            if not all(isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) and v >= 0
                       for v in values):
                raise ValueError(f"class_weight must map labels to finite non-negative numbers, got {d!r}.")
        if self._label_binarizer.y_type_.startswith("multilabel"):
            if isinstance(class_weight, dict) or (isinstance(class_weight, list) and (
                    len(class_weight) != Y.shape[1] or any(set(d) - {0, 1} for d in class_weight))):
                raise ValueError(f"class_weight for multilabel y must be 'balanced' or a list of {Y.shape[1]} dicts "
                                 f"(one per label, keys 0 and 1), got {class_weight!r}.")
            return compute_sample_weight(class_weight, Y.astype(np.int8)).astype(Y.dtype)
        if isinstance(class_weight, list):
            raise ValueError(f"class_weight must be 'balanced' or a dict for {self._label_binarizer.y_type_} y; a "
                             f"list of dicts is for multilabel y, got {class_weight!r}.")
        if isinstance(class_weight, dict):
            classes = set(self.classes_.tolist())
            unknown = [label for label in class_weight if label not in classes]
            if unknown:
                raise ValueError(f"class_weight has labels {unknown} that are not classes of y "
                                 f"({self.classes_.tolist()}).")
        codes = Y[:, 0].astype(np.intp) if Y.shape[1] == 1 else Y.argmax(axis=1)
        per_class = compute_class_weight(class_weight, classes=self.classes_, y=self.classes_[codes])
        weights = np.asarray(per_class, dtype=Y.dtype)[codes]
        if not weights.sum() > 0:
            raise ValueError(f"class_weight={class_weight!r} gives every sample of y the weight 0.")
        return weights

    def _validate_input(self, X, y, incremental, reset, dtype):
        plain = self._plain_input(X, y, dtype) if incremental and not reset and not self.warm_start else None
        if plain is not None:
            Y = self._encode_known_labels(plain[1], dtype)
            if Y is not None:
                return plain[0], Y
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            if not self.warm_start:  # partial_fit: every label must be known, which the fast encoding checks
                Y = self._encode_known_labels(y, dtype)
                if Y is not None:
                    return X, Y
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        Y = self._encode_known_labels(y, dtype)
        if Y is None:
            Y = self._label_binarizer.transform(y).astype(dtype)
        return X, Y

    def _encode_targets(self, y, dtype):
        """Labels (y_val) as the network's targets, by the encoding fit made; every label must be known."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        Y = self._encode_known_labels(y, dtype) if y.ndim == 1 else None
        if Y is None:
            if self._label_binarizer.y_type_ != "multilabel-indicator":
                unknown = np.setdiff1d(unique_labels(y), self.classes_)
                if len(unknown):
                    raise ValueError(f"y_val has classes {unknown} that are not in classes_ {self.classes_}.")
            Y = self._label_binarizer.transform(y).astype(dtype)
        return Y

    def _encode_known_labels(self, y, dtype):
        """LabelBinarizer.transform(y) for 1-D labels all in classes_, in one searchsorted pass.

        The binarizer's transform identifies y's type and finds its unique labels
        again on every call (5 ms of each 50 ms partial_fit on 50,000 rows). For
        binary and multiclass labels this gives the same targets: one column
        (y == classes_[1]) for two classes, one-hot columns for more. Returns
        None (the caller takes the binarizer's path, with its errors) for
        anything else: other label types, object labels, or a label that is not
        in classes_.
        """
        classes = self.classes_
        if (y.ndim != 1 or len(classes) < 2 or self._label_binarizer.y_type_ not in ("binary", "multiclass")
                or y.dtype.kind not in "biufUS" or classes.dtype.kind != y.dtype.kind):
            return None
        codes = np.searchsorted(classes, y)
        np.minimum(codes, len(classes) - 1, out=codes)
        if not np.array_equal(classes[codes], y):
            return None
        if len(classes) == 2:
            return codes.astype(dtype).reshape(-1, 1)
        Y = np.zeros((len(y), len(classes)), dtype=dtype)
        Y[np.arange(len(y)), codes] = 1
        return Y

    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data; converted to the model's dtype (see ``dtype``).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target class labels (numbers or strings), or a label indicator
            matrix (multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with a positive sum: the loss and its gradient are
            weighted means over the samples (of each mini-batch for the stochastic
            solvers, whose epoch's loss is, as scikit-learn's, the mean of the
            batches' weighted means weighted by their rows). None weighs every
            sample 1.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            A validation set given by the user, scored after every epoch (also
            every L-BFGS iteration): ``history_["val_loss"]``,
            ``history_["val_score"]`` and ``validation_loss_curve_``. With
            ``early_stopping=True`` it replaces the ``validation_fraction``
            split. In a ``Pipeline``, it can be transformed as X is with
            ``Pipeline(..., transform_input=["X_val"])`` (metadata routing).
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            The class labels of X_val; given with X_val or not at all.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples, for its loss and score.

        Returns
        -------
        MLPClassifier
            The fitted estimator.

        Raises
        ------
        ValueError
            On invalid parameters or input, and when training diverges without a
            validation set to fall back on; the weights left are then finite.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500,
        ...                     random_state=0).fit(X, y)
        >>> clf.n_features_in_, clf.n_outputs_, clf.out_activation_
        (4, 3, 'softmax')
        >>> len(clf.loss_curve_) == clf.n_iter_
        True
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, X_val=X_val, y_val=y_val,
                         sample_weight_val=sample_weight_val)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch of the stochastic solver on X and y.

        The first call starts a new model (``classes`` is then required) and later
        calls go on from it, keeping the optimizer state (velocities, Adam's
        moments and step count). Only for ``solver="sgd"`` or ``"adam"``; not with
        ``early_stopping=True``. Hyperparameters changed between calls are
        validated again.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target class labels, all in ``classes``, or a label indicator
            matrix (multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, as in ``fit``.
        classes : array-like of shape (n_classes,), default=None
            Every class label that any call will see. Required on the first call;
            on later ones it may be given again (as dask-ml's Incremental does) and
            must then be the same.

        Returns
        -------
        MLPClassifier
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
        >>> for batch in np.array_split(np.random.default_rng(0).permutation(150), 3):
        ...     clf = clf.partial_fit(X[batch], y[batch], classes=[0, 1, 2])
        >>> len(clf.loss_curve_), clf.t_
        (3, 150)
        """
        self._validate_params_if_changed()
        self._start_partial_fit(y, classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _start_partial_fit(self, y, classes):
        """What partial_fit checks and sets before its epoch: the classes (required by the first call, the
        same at a later one where given) and their encoding."""
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":  # (scikit-learn's SGDClassifier)
            raise ValueError("class_weight 'balanced' is not supported for partial_fit. In order to use 'balanced' "
                             "weights, use compute_class_weight('balanced', classes=classes, y=y). In place of y you "
                             "can use a large enough sample of the full training set target to properly estimate the "
                             "class frequency distributions. Pass the resulting weights as the class_weight parameter.")
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

    def _decode(self, P):
        """Labels from the output: argmax (multiclass), > 0.5 (binary; multilabel per label)."""
        y_type = self._label_binarizer.y_type_
        if y_type == "multiclass":
            return self.classes_.take(P.argmax(axis=1))
        if y_type == "binary" and len(self.classes_) == 2:
            return self.classes_.take((P.ravel() > 0.5).view(np.int8))
        return self._label_binarizer.inverse_transform(P.ravel() if self.n_outputs_ == 1 else P)

    _predict_output = _decode

    def predict(self, X):
        """Predict the class labels of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. A C-contiguous array of the model's dtype and width
            skips scikit-learn's validation (its finiteness is checked in compiled
            code).

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted labels, elements of ``classes_``: the most probable class
            (multiclass), the positive class where its probability exceeds 0.5
            (binary), or an indicator matrix with one column per label
            (multilabel).

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500,
        ...                     random_state=0).fit(X, y)
        >>> clf.predict(X[[0, 50, 100]]).shape
        (3,)
        >>> set(clf.predict(X)) <= set(clf.classes_)
        True
        """
        return self._decode(self._forward(X))

    def decision_function(self, X):
        """Compute the scores of the classes: the logits, or for multiclass the log-probabilities.

        ``predict_proba`` applies the logistic function to the logits (binary,
        multilabel); multiclass, these are the logits less each row's
        log-sum-exp, the log of ``predict_proba`` computed without its
        rounding to 0 (so that each class's column ranks the samples as its
        probability does: scikit-learn's scorers and ``CalibratedClassifierCV``
        prefer this method). A fastmlp addition.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            In the model's dtype. For binary problems one value per sample, positive
            where ``classes_[1]`` is predicted; otherwise one column per output.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500,
        ...                     random_state=0).fit(X, y)
        >>> scores = clf.decision_function(X[:5])
        >>> scores.shape
        (5, 3)
        >>> bool((clf.classes_[scores.argmax(axis=1)] == clf.predict(X[:5])).all())
        True
        """
        Z = self._forward(X, logits=True)
        if self.out_activation_ == "softmax":  # (the logits less their log-sum-exp: the log-softmax)
            Z -= Z.max(axis=1, keepdims=True)
            Z -= np.log(np.exp(Z).sum(axis=1, keepdims=True))
        return Z.ravel() if self.n_outputs_ == 1 else Z

    def predict_proba(self, X):
        """Estimate the probability of each class for each sample of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. A C-contiguous array of the model's dtype and width
            skips scikit-learn's validation.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            In the model's dtype; column k is the probability of ``classes_[k]``.
            Rows sum to 1 except for multilabel, where each column is the
            probability of its label on its own.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500,
        ...                     random_state=0).fit(X, y)
        >>> proba = clf.predict_proba(X[:5])
        >>> proba.shape
        (5, 3)
        >>> import numpy as np
        >>> bool(np.allclose(proba.sum(axis=1), 1))
        True
        """
        P = self._forward(X)
        if self.n_outputs_ == 1:
            p = P.ravel()
            return np.vstack([1 - p, p]).T
        return P

    def predict_log_proba(self, X):
        """Estimate the log of the probability of each class for each sample of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The natural logarithm of ``predict_proba(X)``, in the model's dtype.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500,
        ...                     random_state=0).fit(X, y)
        >>> import numpy as np
        >>> bool(np.allclose(np.exp(clf.predict_log_proba(X[:5])), clf.predict_proba(X[:5])))
        True
        """
        P = self.predict_proba(X)
        return np.log(P, out=P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, trained in compiled code.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`:
    the same parameters (same names, order, defaults and meaning), fitted
    attributes and methods, plus the additions marked below. The model
    minimises its loss (the squared error by default), averaged over the
    samples (weighted by ``sample_weight``), plus
    ``alpha / (2 n) * sum_l ||W_l||^2``, with the L-BFGS, SGD or Adam solver.
    The output layer is the identity, or the exponential for "poisson" and
    "gamma" (a log link); y may have several columns (multi-output).

    Parameters
    ----------
    loss : {"squared_error", "poisson", "absolute_error", "huber", "quantile", "gamma"}, \
            default="squared_error"
        The loss function, summed over the outputs and averaged over the
        samples; r = yhat - y:

        - "squared_error": ``0.5 * r^2``.
        - "poisson": half the Poisson deviance, exponential output (y must be
          non-negative).
        - "absolute_error": ``|r|``; predicts the conditional median.
        - "huber": ``0.5 * r^2`` where ``|r| <= huber_delta``, else
          ``huber_delta * (|r| - huber_delta / 2)``: robust to outliers.
        - "quantile": the pinball loss of ``quantile`` (q): ``q * (y - yhat)``
          where ``y >= yhat``, else ``(1 - q) * (yhat - y)``; predicts the
          conditional q-quantile of each output.
        - "gamma": half the gamma deviance,
          ``log(yhat / y) + y / yhat - 1``, exponential output (y must be
          positive): for positive, right-skewed targets.

        The names and definitions follow
        :class:`sklearn.ensemble.HistGradientBoostingRegressor` ("huber" follows
        :class:`sklearn.linear_model.HuberRegressor`'s loss, without its scale).
        "absolute_error" and "quantile" are not differentiable where
        ``yhat == y``; the gradient used there is 0. All but "squared_error"
        and "poisson" are fastmlp additions.

    hidden_layer_sizes : array-like of shape (n_layers - 2,) or int, default=(100,)
        The number of units of each hidden layer, first to last: ``(64, 32)``
        is two hidden layers. An int is one hidden layer.

    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "prelu", "swish"}, default="relu"
        Activation function of the hidden layers.

        - "identity": f(z) = z, for a linear bottleneck.
        - "logistic": f(z) = 1 / (1 + exp(-z)) (alias "sigmoid").
        - "tanh": f(z) = tanh(z).
        - "relu": f(z) = max(z, 0).
        - "leaky_relu": f(z) = z for z > 0, else 0.01 z.
        - "prelu": f(z) = z for z > 0, else a z, with a slope a per hidden
          unit learnt with the weights (starting at 0.25, no L2 penalty);
          the slopes are ``prelu_slopes_``.
        - "swish": f(z) = z / (1 + exp(-z)) (alias "silu").

        "leaky_relu", "prelu", "swish" and the aliases are fastmlp additions.

    solver : {"lbfgs", "sgd", "adam"}, default="adam"
        The solver for weight optimization.

        - "lbfgs": scipy's L-BFGS-B (a quasi-Newton method) on the loss and
          gradient of the whole training set, both computed by the engine
          in the model's dtype (the optimizer itself works in float64).
        - "sgd": mini-batch stochastic gradient descent, with momentum.
        - "adam": Kingma and Ba's Adam, bias-corrected.

        As in scikit-learn, "adam" suits large data sets (thousands of
        samples or more); on small ones "lbfgs" often converges faster and
        better.

    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the biases): the loss
        gains ``alpha / (2 n) * sum_l ||W_l||_F^2``, with n the number of
        samples of the batch (the sum of their weights with
        ``sample_weight``). Must be non-negative.

    batch_size : int or "auto", default="auto"
        Size of the mini-batches of the stochastic solvers; "auto" is
        ``min(200, n_samples)``. A size larger than the training set warns and
        is clipped to it. Not used by "lbfgs", which works on the whole set.

    learning_rate : {"constant", "invscaling", "adaptive"} or schedule, default="constant"
        Learning-rate schedule of the "sgd" solver, applied once per epoch.

        - "constant": ``learning_rate_init`` throughout.
        - "invscaling": after each epoch, ``learning_rate_init / (t_ + 1) **
          power_t``, with ``t_`` the number of samples seen so far.
        - "adaptive": ``learning_rate_init`` as long as the training loss
          keeps falling (the validation score rising, with
          ``early_stopping``); each time it has not improved by at least
          ``tol`` for more than ``n_iter_no_change`` consecutive epochs, the
          rate is divided by 5, and training stops once the rate is at or
          below 1e-6.

        Only used when ``solver="sgd"``. Or a schedule of
        :mod:`fastmlp.schedules` (``StepDecay(gamma=0.5)``, ``OneCycle()``,
        ...), for "sgd" and "adam": started from ``learning_rate_init`` over
        ``max_iter`` epochs at each fit (open-ended, and continued from call
        to call, by ``partial_fit``), it gives each epoch's rate per batch
        before the epoch runs; ReduceOnPlateau follows the validation loss
        when there is a validation set, else the training loss. A fastmlp
        addition.

    learning_rate_init : float, default=0.001
        The initial learning rate: the step size of the weight updates. Only
        used when ``solver="sgd"`` or ``"adam"``.

    power_t : float, default=0.5
        The exponent of the "invscaling" schedule. Only used when
        ``solver="sgd"`` and ``learning_rate="invscaling"``.

    max_iter : int, default=200
        The largest number of epochs (passes over the training set) for "sgd"
        and "adam", or of iterations for "lbfgs"; the solver stops earlier
        when it converges (see ``tol``). A fit that reaches it warns with a
        ``ConvergenceWarning``.

    shuffle : bool, default=True
        Whether to shuffle the training samples before each epoch. Only used
        when ``solver="sgd"`` or ``"adam"``. As scikit-learn's: each epoch
        permutes the last epoch's order, so that with the same
        ``random_state`` the batches are scikit-learn's in every epoch.

    random_state : int, RandomState instance or None, default=None
        Source of the initial weights, of the validation split (with
        ``early_stopping``), of the shuffling and of the dropout masks. With an
        int the initial weights are scikit-learn's for the same int, and the
        same int gives bit-identical results on the same machine.
        ``partial_fit`` draws from one generator across
        its calls, so each epoch gets its own shuffle and masks.

    tol : float, default=1e-4
        Tolerance for the optimization. For "sgd" and "adam", training stops
        (or, with ``learning_rate="adaptive"``, the learning rate falls) when
        the training loss has not fallen by at least ``tol`` (the validation
        score not risen by at least ``tol``, with ``early_stopping``) for more
        than ``n_iter_no_change`` consecutive epochs. For "lbfgs" it is the
        projected-gradient tolerance (``gtol``) of L-BFGS-B.

    verbose : bool, default=False
        Whether to print progress: one line per epoch with the loss, the
        layers' gradient norms, seconds and samples per second (per iteration
        for "lbfgs": the loss).

    warm_start : bool, default=False
        When True, ``fit`` starts from the weights of the previous fit instead
        of new random ones; the optimizer state starts fresh, ``loss_curve_``
        and ``t_`` go on. The layer sizes, the number of features and of
        outputs (for a classifier, the classes) must be those of the previous
        fit; the model keeps its dtype.

    momentum : float, default=0.9
        Momentum of the "sgd" updates, in [0, 1] (scikit-learn's form:
        ``v = momentum * v - learning_rate * g``). Only used when
        ``solver="sgd"``.

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum. Only used when ``solver="sgd"`` and
        ``momentum > 0``.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data
        (stratified for a binary classifier) and stop when its score
        has not improved by at least ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs. At the end of the fit the
        weights are those of the best validation score. When False, training
        stops when the training loss stops improving in the same way. Only
        used when ``solver="sgd"`` or ``"adam"``; ``partial_fit`` raises a
        ValueError with it.

    validation_fraction : float, default=0.1
        The fraction of the training data held out for early stopping, in
        [0, 1); the held-out set must have at least 2 samples. Only used when
        ``early_stopping=True``.

    beta_1 : float, default=0.9
        Exponential decay rate of Adam's first-moment estimate, in [0, 1).
        Only used when ``solver="adam"``.

    beta_2 : float, default=0.999
        Exponential decay rate of Adam's second-moment estimate, in [0, 1).
        Only used when ``solver="adam"``.

    epsilon : float, default=1e-8
        The term added to Adam's denominator for numerical stability. Only
        used when ``solver="adam"``.

    n_iter_no_change : int or numpy.inf, default=10
        The number of epochs without an improvement of at least ``tol`` that
        are tolerated (see ``tol``); ``numpy.inf`` never stops early. Only
        used when ``solver="sgd"`` or ``"adam"``.

    max_fun : int, default=15000
        The largest number of loss function calls of "lbfgs" (one call
        evaluates the loss and gradient on the whole training set). Only
        used when ``solver="lbfgs"``.

    dropout : float or list of float, default=0.0
        Inverted-dropout rate of the hidden layers in [0, 1): one rate for all
        of them, or one per hidden layer. During training each hidden unit is
        zeroed with that probability and the kept ones are divided by the
        keep probability; predictions use the whole network. Only used when
        ``solver="sgd"`` or ``"adam"`` ("lbfgs" works on the exact loss).
        A fastmlp addition.

    clip_norm : float or None, default=None
        When set, each mini-batch gradient whose global norm (over all
        weights, biases and PReLU slopes) exceeds ``clip_norm`` is scaled down
        to that norm before the update. Only used when ``solver="sgd"`` or
        ``"adam"``. A fastmlp addition.

    dtype : {"float32", "float64"}, numpy.float32, numpy.float64 or None, default=None
        The dtype of the weights, the computation and the outputs. None
        follows the input of the first fit: float32 X (or a DataFrame of
        float32 columns only) gives a float32 model for every solver ("lbfgs"
        included, where scikit-learn upcasts), anything else float64. Input
        of another dtype is converted to the model's. A fastmlp addition.

    scoring : str, callable or None, default=None
        The validation score that early stopping follows, and that
        ``history_["val_score"]`` records: None, the R^2 (scikit-learn's
        choice); "loss", minus the validation loss; a scorer name
        (``sklearn.metrics.get_scorer_names()``) or a callable
        ``scorer(estimator, X, y)``, higher is better. A fastmlp addition.

    huber_delta : float, default=1.0
        Where ``loss="huber"`` turns from quadratic to linear, in units of y;
        positive. Unused by the other losses. A fastmlp addition.

    quantile : float, default=0.5
        The quantile that ``loss="quantile"`` predicts, in (0, 1); with
        several outputs, that quantile of each. Unused by the other losses.
        A fastmlp addition.

    Attributes
    ----------
    history_ : dict of list
        Per epoch (or L-BFGS iteration) since the model was initialised:
        "loss", "learning_rate" (NaN for L-BFGS), "seconds", and with a
        validation set (``early_stopping`` or ``X_val``) "val_loss" (its mean
        loss, without the L2 term) and "val_score" (see ``scoring``), NaN for
        epochs without one. All lists have the length of ``loss_curve_``.

    validation_loss_curve_ : list of float
        ``history_["val_loss"]``, when there is a validation set.

    loss_ : float
        The training loss of the last epoch (for "lbfgs": at the solution),
        penalty included: the loss of ``loss`` (``score`` stays R^2).

    best_loss_ : float or None
        The lowest training loss reached; None with ``early_stopping=True``
        and a stochastic solver (see ``best_validation_score_``; "lbfgs"
        ignores ``early_stopping``, as scikit-learn's does).

    loss_curve_ : list of float of length ``n_iter_``
        The training loss of each epoch, penalty included (also recorded for
        "lbfgs": one entry per iteration). ``warm_start`` and ``partial_fit``
        append to it.

    validation_scores_ : list of float or None
        The score on the held-out set after each epoch (R^2); None
        unless ``early_stopping=True`` (with "sgd" or "adam").

    best_validation_score_ : float or None
        The best of ``validation_scores_``, whose weights the model keeps;
        None unless ``early_stopping=True`` (with "sgd" or "adam").

    t_ : int
        The number of training samples seen by the stochastic solvers over
        all calls (epochs times samples); 0 for "lbfgs".

    coefs_ : list of ndarray of length n_layers - 1
        ``coefs_[l]``, of shape (fan_in, fan_out), is the weight matrix from
        layer l to layer l + 1. The arrays are views into the model: writing
        into them changes it; a new list assigned is validated (count,
        shapes, finite values) and copied in.

    intercepts_ : list of ndarray of length n_layers - 1
        ``intercepts_[l]``, of shape (fan_out,), is the bias vector of layer
        l + 1; views into the model, as ``coefs_``.

    prelu_slopes_ : list of ndarray
        With ``activation="prelu"``: one array of shape (n_units,) per hidden
        layer, the learnt slope of each unit; empty otherwise.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during ``fit``. Defined only when X has
        feature names that are all strings.

    n_iter_ : int
        The number of epochs ("lbfgs": iterations) the last call ran.

    n_layers_ : int
        Number of layers, input and output included (``len(coefs_) + 1``).

    n_outputs_ : int
        Number of output units.

    out_activation_ : str
        Name of the output activation: "exp" for "poisson" and "gamma", else "identity".

    grad_norms_ : ndarray of shape (len(``loss_curve_``), n_layers - 1)
        Per epoch (per iteration for "lbfgs"), the Frobenius norm of each
        layer's weight gradient, averaged over the epoch's mini-batches:
        vanishing or exploding gradients show here
        (:func:`fastmlp.plot.plot_gradient_norms` draws it). A fastmlp
        addition.

    dead_units_ : list of float or None
        Set by "sgd" and "adam". With a ReLU-family activation ("relu",
        "leaky_relu", "prelu"): per hidden layer, the fraction of units whose
        pre-activation never exceeded 0 on the last epoch's training data;
        None for the other activations. A fastmlp addition.

    See Also
    --------
    MLPClassifier : Multi-layer perceptron classifier.
    Network : The model underneath, for training loops of one's own.
    sklearn.neural_network.MLPRegressor : The scikit-learn estimator this replaces.

    Notes
    -----
    Each epoch's mini-batch loop (forward pass, backward pass, optimizer
    update) runs in compiled code with the GIL released. Dense input is used
    as a C-contiguous array and sparse input as CSR (the first layer works on
    the nonzeros, no dense copy).

    With several outputs, scikit-learn reports as ``loss_`` the squared error
    divided by the number of outputs (its gradient and its ``tol``-based
    stopping follow the undivided sum); fastmlp reports the loss whose
    gradient it follows. The other differences from scikit-learn: the
    additions marked above, ``dtype=None`` keeping float32 for "lbfgs", and
    ``predict`` skipping scikit-learn's input validation for a C-contiguous
    array of the model's dtype and width (checked in compiled code instead).

    A diverging fit (non-finite loss, weights or outputs) never leaves a model
    that predicts NaN: with ``early_stopping=True`` it returns with the
    best-validation weights (and a ConvergenceWarning), otherwise it raises a
    ValueError with finite weights left in place.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (200, 3))
    >>> y = X[:, 0] - 2 * X[:, 1] ** 2 + 0.5 * X[:, 2]
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=500,
    ...                    random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> bool(reg.score(X, y) > 0.95)
    True
    >>> reg.out_activation_
    'identity'
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_registry.REGRESSION_OUTPUTS))],
        # huber_delta in (0, inf), quantile in (0, 1): the registry's ranges of the losses' parameters
        **{spec.param.argument: [Interval(Real, spec.param.low, spec.param.high if spec.param.high < np.inf else None,
                                          closed="neither")]
           for spec in _registry.REGRESSION_OUTPUTS.values() if spec.param is not None},
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, clip_norm=None,
                 dtype=None, scoring=None, huber_delta=1.0, quantile=0.5):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss=loss, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout,
            clip_norm=clip_norm, dtype=dtype, scoring=scoring,
        )
        self.huber_delta = huber_delta
        self.quantile = quantile

    def _output_activation(self):
        return _registry.REGRESSION_OUTPUTS[self.loss].activation

    def _loss_param(self, dtype):
        spec = _registry.REGRESSION_OUTPUTS[self.loss]
        return None if spec.param is None else _registry.loss_param(spec, getattr(self, spec.param.argument),
                                                                    spec.param.argument, dtype)

    def _validate_input(self, X, y, incremental, reset, dtype):
        plain = self._plain_input(X, y, dtype) if incremental and not reset else None
        if plain is not None:
            return plain[0], plain[1].astype(dtype).reshape(-1, 1)
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=dtype, reset=reset)
        refuse_non_numeric(y, "y")  # (as scikit-learn's regressor: strings of numbers are not numbers)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = np.asarray(y, dtype=dtype)
        # before the first fit builds anything: a refused y leaves an unfitted model unfitted
        check_target_domain(_registry.REGRESSION_OUTPUTS[self.loss], Y, "y")
        return X, Y.reshape(-1, 1) if Y.ndim == 1 else Y

    def _encode_targets(self, y, dtype):
        """Targets (y_val) as the network's: a (n_samples, n_outputs) array of dtype."""
        refuse_non_numeric(np.asarray(y) if not hasattr(y, "dtype") else y, "y_val")
        Y = check_array(y, ensure_2d=False, dtype=dtype, input_name="y_val")
        return Y.reshape(-1, 1) if Y.ndim == 1 else Y

    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data; converted to the model's dtype (see ``dtype``).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (non-negative for ``loss="poisson"``, positive for
            ``loss="gamma"``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with a positive sum: the loss and its gradient are
            weighted means over the samples (of each mini-batch for the stochastic
            solvers, whose epoch's loss is, as scikit-learn's, the mean of the
            batches' weighted means weighted by their rows). None weighs every
            sample 1.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            A validation set given by the user, scored after every epoch (also
            every L-BFGS iteration): ``history_["val_loss"]``,
            ``history_["val_score"]`` and ``validation_loss_curve_``. With
            ``early_stopping=True`` it replaces the ``validation_fraction``
            split. In a ``Pipeline``, it can be transformed as X is with
            ``Pipeline(..., transform_input=["X_val"])`` (metadata routing).
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            The target values of X_val; given with X_val or not at all.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples, for its loss and score.

        Returns
        -------
        MLPRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            On invalid parameters or input, and when training diverges without a
            validation set to fall back on; the weights left are then finite.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, (100, 3))
        >>> y = X @ [1.0, -2.0, 0.5]
        >>> reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=500,
        ...                    random_state=0).fit(X, y)
        >>> reg.n_outputs_, [W.shape for W in reg.coefs_]
        (1, [(3, 16), (16, 1)])
        >>> bool(reg.score(X, y) > 0.9)
        True
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, X_val=X_val, y_val=y_val,
                         sample_weight_val=sample_weight_val)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch of the stochastic solver on X and y.

        The first call starts a new model and later calls go on from it, keeping
        the optimizer state (velocities, Adam's moments and step count). Only for
        ``solver="sgd"`` or ``"adam"``; not with ``early_stopping=True``.
        Hyperparameters changed between calls are validated again.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, as in ``fit``.

        Returns
        -------
        MLPRegressor
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, (100, 3))
        >>> y = X @ [1.0, -2.0, 0.5]
        >>> reg = MLPRegressor(hidden_layer_sizes=(16,), random_state=0)
        >>> for start in range(0, 100, 25):
        ...     reg = reg.partial_fit(X[start:start + 25], y[start:start + 25])
        >>> len(reg.loss_curve_), reg.t_
        (4, 100)
        """
        self._validate_params_if_changed()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _predict_output(self, P):
        return P.ravel() if self.n_outputs_ == 1 else P

    def predict(self, X):
        """Predict the target(s) of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. A C-contiguous array of the model's dtype and width
            skips scikit-learn's validation (its finiteness is checked in compiled
            code).

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values, in the model's dtype; 1-D when the model was fit
            on a 1-D y.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, (100, 3))
        >>> y = X @ [1.0, -2.0, 0.5]
        >>> reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=500,
        ...                    random_state=0, dtype="float32").fit(X, y)
        >>> pred = reg.predict(X[:4])
        >>> pred.shape, pred.dtype
        ((4,), dtype('float32'))
        """
        return self._predict_output(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
