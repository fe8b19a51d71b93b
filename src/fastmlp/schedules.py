"""Learning-rate schedules: the rate of every batch of an epoch, computed before the epoch runs.

A schedule is a parameter object, like a scikit-learn estimator: its
constructor stores its arguments and nothing else, ``get_params`` and
``set_params`` read and write them, so ``sklearn.base.clone`` copies an
estimator whose ``learning_rate`` is a schedule and ``GridSearchCV`` searches
its parameters (``learning_rate__gamma``). Training calls
``schedule.start(base_rate, max_epochs)``, which validates the parameters and
returns a *run*: the state of one training, so the schedule object itself never
changes while a model trains. Each epoch the training loop asks the run for
``epoch_rates(epoch, n_batches)``, the rate of each batch (one NumPy
computation per epoch, none per batch), and after the epoch tells it the
monitored loss with ``end_epoch`` (only ``ReduceOnPlateau`` uses it);
``get_state`` and ``set_state`` carry a run across save and load.

The rates, in closed form, with ``eta_0`` the base rate (``learning_rate_init``
of the estimators), ``e`` the epoch counted from 0 at the start of training,
``E`` the number of epochs (``max_epochs``), and for schedules that vary within
an epoch ``t = e + i / n`` for batch ``i`` of the ``n`` batches of epoch ``e``:

- ``StepDecay``: ``eta_0 * gamma ** (e // step_size)``.
- ``ExponentialDecay``: ``eta_0 * gamma ** e``.
- ``CosineAnnealing``: ``eta_min + (eta_0 - eta_min) * (1 + cos(pi * T_cur / T)) / 2``.
- ``OneCycle``: up from ``eta_0 / div_factor`` to ``eta_0``, then down to
  ``eta_0 / (div_factor * final_div_factor)``, batch by batch.
- ``LinearWarmup``: ``eta_0 * (start_factor + (1 - start_factor) * e / warmup_epochs)``
  for the first ``warmup_epochs`` epochs, then the wrapped schedule.
- ``ReduceOnPlateau``: ``eta_0``, multiplied by ``factor`` whenever the
  monitored loss has not improved for more than ``patience`` epochs.
"""
import copy
import inspect
import math

import numpy as np

from ._validation import check_bool, check_float, check_int

__all__ = ["StepDecay", "ExponentialDecay", "CosineAnnealing", "OneCycle", "LinearWarmup", "ReduceOnPlateau"]


def _same_schedule(a, b):
    """a and b of one type with equal parameters (a run's private copy holds them as Python numbers)."""
    if type(a) is not type(b):
        return False
    pa, pb = a.get_params(deep=False), b.get_params(deep=False)
    return pa.keys() == pb.keys() and all(
        _same_schedule(pa[k], pb[k]) if hasattr(pa[k], "get_params") else
        (pa[k] is None and pb[k] is None) or (pa[k] is not None and pb[k] is not None and pa[k] == pb[k])
        for k in pa)


class _Run:
    """A closed-form schedule's course through one training: rate = schedule._rate(run, epoch, n_batches).

    ``per_batch`` says whether the rates vary within an epoch for the whole
    schedule (a LinearWarmup over OneCycle does, whatever its own per_batch):
    the training loop reads it here, not on the schedule.
    """

    def __init__(self, schedule, base_rate, max_epochs):
        self.schedule = schedule  # the checked private copy
        self.base_rate = base_rate
        self.max_epochs = max_epochs
        self.per_batch = bool(schedule.per_batch)

    def __repr__(self):
        return f"<run of {self.schedule!r} from {self.base_rate:g} over {self.max_epochs} epochs>"

    def started_from(self, schedule, base_rate):
        """Whether this run is that of schedule (its type and parameters, nested ones too) from base_rate: a
        schedule or rate set since (set_params) starts a run of its own instead of continuing this one. The
        schedule is checked as start checked this run's copy (which fills what it derives: CosineAnnealing's
        T_max from max_epochs), so that equal parameters compare equal."""
        try:
            checked = copy.deepcopy(schedule)
            checked._check(check_float(base_rate, "base_rate", 0.0, low_open=True), self.max_epochs)
        except (AttributeError, TypeError, ValueError):  # (not a schedule, or one this run could not be)
            return False
        return float(base_rate) == self.base_rate and _same_schedule(self.schedule, checked)

    def epoch_rates(self, epoch, n_batches):
        """The rate of each batch of an epoch.

        Parameters
        ----------
        epoch : int
            The epoch, counted from 0 at the start of the training.
        n_batches : int
            Its number of batches.

        Returns
        -------
        ndarray of shape (n_batches,), dtype float64
            The rates, C-contiguous; all equal unless ``per_batch``.
        """
        epoch = check_int(epoch, "epoch", 0)
        n_batches = check_int(n_batches, "n_batches", 1)
        rates = np.empty(n_batches)
        rates[:] = self._rates(epoch, n_batches)
        return rates

    def _rates(self, epoch, n_batches):
        return self.schedule._rate(self, epoch, n_batches)

    def end_epoch(self, monitored_loss):
        """Tell the run the loss it monitors, after each epoch (only ReduceOnPlateau uses it).

        Parameters
        ----------
        monitored_loss : float
            The validation loss when there is a validation set, else the training loss.
        """

    def get_state(self):
        """The run's mutable state, for save and load.

        Returns
        -------
        dict
            Plain floats and ints (empty for a closed-form schedule).
        """
        return {}

    def set_state(self, state):
        """Continue a run from get_state's dict.

        Parameters
        ----------
        state : dict
            What ``get_state`` returned on a run of the same schedule.
        """
        _check_keys(state, ())


def _check_keys(state, keys):
    if not isinstance(state, dict) or set(state) != set(keys):
        raise ValueError(f"The state of a schedule's run must be a dict with the keys {sorted(keys)}, "
                         f"got {state!r}.")


def _positions(epoch, n_batches, per_batch):
    """Where in training each batch starts, in epochs: e + i / n, or e for a rate per epoch."""
    return epoch + np.arange(n_batches) / n_batches if per_batch else epoch


class _Schedule:
    """Parameters (get_params, set_params, repr) and start; subclasses give the rates."""

    # Does the rate vary within an epoch? CosineAnnealing and LinearWarmup take it as a
    # parameter (for their own curve); a run's per_batch says it for the whole schedule.
    per_batch = False
    _run_class = _Run

    @classmethod
    def _param_names(cls):
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep=True):
        """The schedule's parameters, as scikit-learn estimators give theirs.

        Parameters
        ----------
        deep : bool, default=True
            Also give the parameters of a wrapped schedule, as
            ``"schedule__<name>"``.

        Returns
        -------
        dict
            Parameter names mapped to their values.
        """
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{key}", v) for key, v in value.get_params(deep=True).items())
            params[name] = value
        return params

    def set_params(self, **params):
        """Set parameters, those of a wrapped schedule as ``schedule__<name>``.

        Parameters
        ----------
        **params : dict
            Parameter names mapped to new values; checked when training starts.

        Returns
        -------
        self
            The schedule.
        """
        names = self._param_names()
        nested = {}
        for key, value in params.items():
            name, nest, sub = key.partition("__")
            if name not in names:
                raise ValueError(f"Invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {names}.")
            if nest:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            inner = getattr(self, name)
            if not hasattr(inner, "set_params"):
                raise ValueError(f"{type(self).__name__}.{name} is {inner!r}, which has no parameter "
                                 f"{next(iter(sub))!r}.")
            inner.set_params(**sub)
        return self

    def __repr__(self):
        # the parameters that differ from their defaults, as scikit-learn prints estimators
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        changed = [f"{name}={value!r}" for name, value in self.get_params(deep=False).items()
                   if repr(value) != repr(defaults[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def start(self, base_rate, max_epochs=None):
        """Check the parameters and begin a training: the run that gives its rates.

        Parameters
        ----------
        base_rate : float
            The initial (or peak) rate the schedule scales, > 0.
        max_epochs : int or None, default=None
            The number of epochs of the training, or None when it is open-ended
            (``partial_fit``); OneCycle, and CosineAnnealing without T_max or
            T_0, need it.

        Returns
        -------
        run
            A new object with ``epoch_rates(epoch, n_batches)``,
            ``end_epoch(monitored_loss)``, ``get_state()``, ``set_state(state)``
            and ``per_batch``; it keeps a copy of the parameters, so changing
            the schedule afterwards does not change the run.

        Raises
        ------
        ValueError, TypeError
            A parameter, ``base_rate`` or ``max_epochs`` is out of range or of the wrong type.
        """
        base_rate = check_float(base_rate, "base_rate", 0.0, low_open=True)
        if max_epochs is not None:
            max_epochs = check_int(max_epochs, "max_epochs", 1)
        frozen = copy.deepcopy(self)
        frozen._check(base_rate, max_epochs)  # also turns the copy's numbers into Python floats and ints
        return frozen._run_class(frozen, base_rate, max_epochs)

    # Checks of the copy's parameters, each writing the checked value back to it.

    def _float(self, name, low=None, high=None, low_open=False, high_open=False):
        value = check_float(getattr(self, name), f"{type(self).__name__}.{name}", low, high, low_open, high_open)
        setattr(self, name, value)
        return value

    def _int(self, name, minimum):
        value = check_int(getattr(self, name), f"{type(self).__name__}.{name}", minimum)
        setattr(self, name, value)
        return value

    def _bool(self, name):
        value = check_bool(getattr(self, name), f"{type(self).__name__}.{name}")
        setattr(self, name, value)
        return value

    def _option(self, name, options):
        value = getattr(self, name)
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"{type(self).__name__}.{name} must be one of {', '.join(map(repr, options))}, "
                             f"got {value!r}.")
        return value

    def _needs_max_epochs(self, max_epochs, what):
        if max_epochs is None:
            raise ValueError(f"{type(self).__name__}{what} needs the number of epochs of the training "
                             "(max_epochs); it cannot run open-ended (partial_fit).")


class StepDecay(_Schedule):
    """The rate times ``gamma`` every ``step_size`` epochs (PyTorch's StepLR).

    The rate of epoch ``e`` is ``eta_0 * gamma ** (e // step_size)``, the same
    for every batch of the epoch.

    Parameters
    ----------
    step_size : int, default=10
        Epochs between two decays, >= 1.
    gamma : float, default=0.1
        The factor of each decay, in (0, 1].

    See Also
    --------
    ExponentialDecay : A decay every epoch.

    Examples
    --------
    >>> from fastmlp.schedules import StepDecay
    >>> StepDecay(step_size=2, gamma=0.5).start(0.1).epoch_rates(3, n_batches=2)
    array([0.05, 0.05])
    """

    def __init__(self, step_size=10, gamma=0.1):
        self.step_size = step_size
        self.gamma = gamma

    def _check(self, base_rate, max_epochs):
        self._int("step_size", 1)
        self._float("gamma", 0.0, 1.0, low_open=True)

    def _rate(self, run, epoch, n_batches):
        return run.base_rate * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(_Schedule):
    """The rate times ``gamma`` every epoch (PyTorch's ExponentialLR).

    The rate of epoch ``e`` is ``eta_0 * gamma ** e``, the same for every batch
    of the epoch.

    Parameters
    ----------
    gamma : float, default=0.95
        The factor per epoch, in (0, 1].

    See Also
    --------
    StepDecay : A decay every few epochs.

    Examples
    --------
    >>> from fastmlp.schedules import ExponentialDecay
    >>> ExponentialDecay(gamma=0.5).start(0.1).epoch_rates(2, n_batches=3)
    array([0.025, 0.025, 0.025])
    """

    def __init__(self, gamma=0.95):
        self.gamma = gamma

    def _check(self, base_rate, max_epochs):
        self._float("gamma", 0.0, 1.0, low_open=True)

    def _rate(self, run, epoch, n_batches):
        return run.base_rate * self.gamma ** epoch


class CosineAnnealing(_Schedule):
    """Half a cosine from the base rate down to ``eta_min``, optionally restarted (SGDR).

    The rate is ``eta_min + (eta_0 - eta_min) * (1 + cos(pi * T_cur / T)) / 2``.
    Without restarts (PyTorch's CosineAnnealingLR) ``T = T_max`` and
    ``T_cur = min(t, T_max)``: ``eta_0`` at the start, ``eta_min`` from epoch
    ``T_max`` on. With warm restarts (``T_0`` given; PyTorch's
    CosineAnnealingWarmRestarts, Loshchilov and Hutter's SGDR) the periods last
    ``T_0``, ``T_0 * T_mult``, ``T_0 * T_mult ** 2``, ... epochs; ``T`` is the
    current period's length and ``T_cur`` the time since it began, so the rate
    jumps back to ``eta_0`` at each restart. ``t`` is the epoch ``e``, or with
    ``per_batch=True`` the batch's position ``e + i / n``.

    Parameters
    ----------
    T_max : int or None, default=None
        The epochs of the half cosine without restarts; None: the training's
        ``max_epochs``. Not with ``T_0``.
    eta_min : float, default=0.0
        The lowest rate, >= 0 and at most the base rate.
    T_0 : int or None, default=None
        The length of the first period, in epochs: warm restarts. None: no restarts.
    T_mult : int, default=1
        Each period is ``T_mult`` times as long as the one before, >= 1; other than 1, it needs ``T_0``.
    per_batch : bool, default=False
        Move the rate at every batch rather than once per epoch.

    See Also
    --------
    OneCycle : A rise then a cosine fall, batch by batch.
    LinearWarmup : A warmup before this schedule.

    Examples
    --------
    >>> from fastmlp.schedules import CosineAnnealing
    >>> run = CosineAnnealing().start(0.1, max_epochs=4)
    >>> [float(run.epoch_rates(e, 1)[0].round(4)) for e in range(4)]
    [0.1, 0.0854, 0.05, 0.0146]
    >>> run = CosineAnnealing(T_0=2, T_mult=2).start(0.1)  # restarts at epochs 2, 6, 14, ...
    >>> [float(run.epoch_rates(e, 1)[0].round(4)) for e in range(7)]
    [0.1, 0.05, 0.1, 0.0854, 0.05, 0.0146, 0.1]
    """

    def __init__(self, T_max=None, eta_min=0.0, T_0=None, T_mult=1, per_batch=False):
        self.T_max = T_max
        self.eta_min = eta_min
        self.T_0 = T_0
        self.T_mult = T_mult
        self.per_batch = per_batch

    def _check(self, base_rate, max_epochs):
        if self.T_max is not None and self.T_0 is not None:
            raise ValueError("CosineAnnealing takes T_max (one half cosine) or T_0 (warm restarts), not both; "
                             f"got T_max={self.T_max!r} and T_0={self.T_0!r}.")
        if self.T_0 is not None:
            self._int("T_0", 1)
        elif self.T_max is not None:
            self._int("T_max", 1)
        else:
            self._needs_max_epochs(max_epochs, " without T_max or T_0")
            self.T_max = max_epochs
        if self._int("T_mult", 1) != 1 and self.T_0 is None:  # (found by probing: accepted and ignored)
            raise ValueError(f"CosineAnnealing.T_mult={self.T_mult!r} lengthens the periods of warm restarts: it "
                             "needs T_0.")
        self._bool("per_batch")
        if self._float("eta_min", 0.0) > base_rate:
            raise ValueError(f"CosineAnnealing.eta_min must be at most the base rate ({base_rate!r}), "
                             f"got {self.eta_min!r}.")

    def _period(self, epoch):
        """(first epoch, length) of the restart period holding `epoch`."""
        if self.T_0 is None:
            return 0, self.T_max
        if self.T_mult == 1:
            return epoch - epoch % self.T_0, self.T_0
        first, length = 0, self.T_0  # periods are whole epochs: counted exactly, in integers
        while epoch >= first + length:
            first, length = first + length, length * self.T_mult
        return first, length

    def _rate(self, run, epoch, n_batches):
        first, length = self._period(epoch)
        T_cur = np.minimum(_positions(epoch, n_batches, self.per_batch) - first, length)
        return self.eta_min + (run.base_rate - self.eta_min) * (1 + np.cos(np.pi * T_cur / length)) / 2


class OneCycle(_Schedule):
    """Leslie Smith's one-cycle policy, batch by batch (PyTorch's OneCycleLR).

    The base rate is the peak. Over the ``S = max_epochs * n`` batches of the
    training (batch ``s = e * n + i``), the rate rises from
    ``eta_0 / div_factor`` to ``eta_0`` until batch ``pct_start * S - 1``, then
    falls to ``eta_0 / (div_factor * final_div_factor)`` at the last batch
    ``S - 1``. With ``three_phase=True`` it falls back to ``eta_0 / div_factor``
    at batch ``2 * pct_start * S - 2`` and only then to the lowest rate. Each
    phase from rate ``a`` to rate ``b`` over its fraction ``p`` in [0, 1] is
    ``b + (a - b) * (1 + cos(pi * p)) / 2`` ("cos") or ``a + (b - a) * p``
    ("linear"). The momentum is not cycled.

    Parameters
    ----------
    pct_start : float, default=0.3
        The fraction of the training spent rising, in (0, 1) (in (0, 0.5] with
        ``three_phase``).
    anneal_strategy : {"cos", "linear"}, default="cos"
        The shape of each phase.
    div_factor : float, default=25.0
        The first rate is ``eta_0 / div_factor``, >= 1.
    final_div_factor : float, default=1e4
        The last rate is the first one divided by this, >= 1.
    three_phase : bool, default=False
        Fall back to the first rate before the final annealing.

    See Also
    --------
    CosineAnnealing : A cosine fall, with optional restarts.

    Examples
    --------
    >>> from fastmlp.schedules import OneCycle
    >>> run = OneCycle(pct_start=0.5, anneal_strategy="linear", div_factor=10,
    ...                final_div_factor=10).start(1.0, max_epochs=2)
    >>> run.epoch_rates(0, n_batches=3)
    array([0.1 , 0.55, 1.  ])
    >>> run.epoch_rates(1, n_batches=3)
    array([0.67, 0.34, 0.01])
    """

    per_batch = True

    def __init__(self, pct_start=0.3, anneal_strategy="cos", div_factor=25.0, final_div_factor=1e4,
                 three_phase=False):
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase

    def _check(self, base_rate, max_epochs):
        self._bool("three_phase")
        self._float("pct_start", 0.0, 0.5 if self.three_phase else 1.0, low_open=True,
                    high_open=not self.three_phase)
        self._option("anneal_strategy", ("cos", "linear"))
        self._float("div_factor", 1.0)
        self._float("final_div_factor", 1.0)
        self._needs_max_epochs(max_epochs, "")

    def _rate(self, run, epoch, n_batches):
        total = run.max_epochs * n_batches
        s = np.minimum(epoch * n_batches + np.arange(n_batches), total - 1).astype(np.float64)
        peak = run.base_rate
        first = peak / self.div_factor
        last = first / self.final_div_factor
        up = self.pct_start * total - 1
        if self.three_phase:
            phases = [(up, first, peak), (2 * self.pct_start * total - 2, peak, first), (total - 1, first, last)]
        else:
            phases = [(up, first, peak), (total - 1, peak, last)]
        rates = np.empty(n_batches)
        begin, todo = 0.0, np.ones(n_batches, dtype=bool)
        for k, (end, a, b) in enumerate(phases):
            here = todo & (s <= end) if k < len(phases) - 1 else todo
            # a phase shorter than a batch (few batches in all) is at its end
            p = np.clip((s[here] - begin) / (end - begin), 0.0, 1.0) if end > begin else 1.0
            if self.anneal_strategy == "cos":
                rates[here] = b + (a - b) * (1 + np.cos(np.pi * p)) / 2
            else:
                rates[here] = a + (b - a) * p
            todo &= ~here
            begin = end
        return rates


class _WarmupRun(_Run):
    """LinearWarmup's run: the ramp, then the wrapped schedule's own run."""

    def __init__(self, schedule, base_rate, max_epochs):
        super().__init__(schedule, base_rate, max_epochs)
        W = schedule.warmup_epochs
        self.after = None if schedule.schedule is None else schedule.schedule.start(
            base_rate, None if max_epochs is None else max_epochs - W)
        self.per_batch = schedule.per_batch or (self.after is not None and self.after.per_batch)
        self.epoch = None  # the last epoch asked for: the one end_epoch ends

    def _rates(self, epoch, n_batches):
        s = self.schedule
        self.epoch = epoch
        if epoch < s.warmup_epochs:
            t = _positions(epoch, n_batches, s.per_batch)
            return self.base_rate * (s.start_factor + (1 - s.start_factor) * t / s.warmup_epochs)
        return self.base_rate if self.after is None else self.after.epoch_rates(epoch - s.warmup_epochs,
                                                                                n_batches)

    def end_epoch(self, monitored_loss):
        if self.after is not None and self.epoch is not None and self.epoch >= self.schedule.warmup_epochs:
            self.after.end_epoch(monitored_loss)

    def get_state(self):
        return {} if self.after is None else {f"schedule__{k}": v for k, v in self.after.get_state().items()}

    def set_state(self, state):
        inner = {} if self.after is None else self.after.get_state()
        _check_keys(state, [f"schedule__{k}" for k in inner])
        if self.after is not None:
            self.after.set_state({k[len("schedule__"):]: v for k, v in state.items()})


class LinearWarmup(_Schedule):
    """A linear rise to the base rate over the first epochs, then another schedule.

    For ``t < warmup_epochs`` the rate is
    ``eta_0 * (start_factor + (1 - start_factor) * t / warmup_epochs)``
    (PyTorch's LinearLR), with ``t`` the epoch ``e``, or with ``per_batch=True``
    the batch's position ``e + i / n``. From epoch ``warmup_epochs`` on, the
    wrapped ``schedule`` runs as if training began there: its epoch is
    ``e - warmup_epochs``, its ``max_epochs`` is ``max_epochs - warmup_epochs``,
    and the monitored losses of the warmup epochs do not reach it. Without a
    schedule the rate stays ``eta_0``.

    Parameters
    ----------
    schedule : schedule or None, default=None
        The schedule after the warmup (any of this module's), or None for a
        constant rate.
    warmup_epochs : int, default=5
        The length of the warmup, >= 1 and less than ``max_epochs``.
    start_factor : float, default=0.1
        The first rate is ``start_factor * eta_0``, in (0, 1].
    per_batch : bool, default=False
        Raise the rate at every batch rather than once per epoch (the wrapped
        schedule's own ``per_batch`` applies after the warmup).

    See Also
    --------
    CosineAnnealing : The usual schedule after a warmup.

    Examples
    --------
    >>> from fastmlp.schedules import LinearWarmup, StepDecay
    >>> run = LinearWarmup(StepDecay(step_size=1, gamma=0.5), warmup_epochs=2,
    ...                    start_factor=0.5).start(0.1, max_epochs=10)
    >>> [float(run.epoch_rates(e, 1)[0].round(4)) for e in range(5)]
    [0.05, 0.075, 0.1, 0.05, 0.025]
    """

    _run_class = _WarmupRun

    def __init__(self, schedule=None, warmup_epochs=5, start_factor=0.1, per_batch=False):
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.start_factor = start_factor
        self.per_batch = per_batch

    def _check(self, base_rate, max_epochs):
        if self.schedule is not None and not isinstance(self.schedule, _Schedule):
            raise TypeError(f"LinearWarmup.schedule must be a schedule of fastmlp.schedules or None, "
                            f"got {self.schedule!r}.")
        W = self._int("warmup_epochs", 1)
        if max_epochs is not None and W >= max_epochs:
            raise ValueError(f"LinearWarmup.warmup_epochs must be less than max_epochs ({max_epochs}), got {W}.")
        self._float("start_factor", 0.0, 1.0, low_open=True)
        self._bool("per_batch")


class _PlateauRun(_Run):
    """ReduceOnPlateau's run: the current rate and the counts behind it."""

    _STATE = ("rate", "best", "bad_epochs", "cooldown_left")

    def __init__(self, schedule, base_rate, max_epochs):
        super().__init__(schedule, base_rate, max_epochs)
        self.rate = base_rate
        self.best = math.inf
        self.bad_epochs = 0
        self.cooldown_left = 0

    def _rates(self, epoch, n_batches):
        return self.rate

    def end_epoch(self, monitored_loss):
        s = self.schedule
        loss = float(monitored_loss)
        bar = self.best * (1 - s.threshold) if s.threshold_mode == "rel" else self.best - s.threshold
        if loss < bar:  # (a NaN loss never improves)
            self.best = loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > s.patience:
            self.rate = min(self.rate, max(self.rate * s.factor, s.min_lr))
            self.cooldown_left = s.cooldown
            self.bad_epochs = 0

    def get_state(self):
        return {name: getattr(self, name) for name in self._STATE}

    def set_state(self, state):
        _check_keys(state, self._STATE)
        # (0: factors below min_lr=0 can take the rate past the smallest float)
        rate = check_float(state["rate"], "state['rate']", 0.0, self.base_rate)
        best = state["best"]
        if not (isinstance(best, float) and best == math.inf):  # inf: no epoch seen yet
            best = check_float(best, "state['best']")
        bad = check_int(state["bad_epochs"], "state['bad_epochs']", 0)
        left = check_int(state["cooldown_left"], "state['cooldown_left']", 0)
        self.rate, self.best, self.bad_epochs, self.cooldown_left = rate, best, bad, left


class ReduceOnPlateau(_Schedule):
    """The rate times ``factor`` when the monitored loss stops improving (PyTorch's ReduceLROnPlateau).

    The rate starts at ``eta_0``. After each epoch the run is told the loss it
    monitors (the validation loss when there is a validation set, else the
    training loss). A loss improves on the best so far when it is below
    ``best * (1 - threshold)`` ("rel") or ``best - threshold`` ("abs"); an
    epoch without improvement is a bad epoch. When more than ``patience`` bad
    epochs have come in a row, the rate becomes
    ``max(rate * factor, min_lr)`` (never higher than it was) from the next
    epoch on, the count of bad epochs starts again and the next ``cooldown``
    epochs count as none. The rate is the same for every batch of an epoch.

    Parameters
    ----------
    factor : float, default=0.1
        The factor of each reduction, in (0, 1).
    patience : int, default=10
        Bad epochs in a row that are tolerated, >= 0: the rate falls at the
        ``patience + 1``-th.
    threshold : float, default=1e-4
        How much better than the best a loss must be to count as an
        improvement, >= 0.
    threshold_mode : {"rel", "abs"}, default="rel"
        Whether ``threshold`` is relative to the best loss or absolute.
    cooldown : int, default=0
        Epochs after a reduction during which bad epochs are not counted, >= 0.
    min_lr : float, default=0.0
        The rate never falls below this, >= 0.

    See Also
    --------
    StepDecay : A decay at fixed epochs.

    Examples
    --------
    >>> from fastmlp.schedules import ReduceOnPlateau
    >>> run = ReduceOnPlateau(factor=0.5, patience=1).start(0.1)
    >>> for loss in [1.0, 0.9, 0.95, 0.92]:  # two epochs without a new best
    ...     run.end_epoch(loss)
    >>> run.epoch_rates(4, n_batches=2)
    array([0.05, 0.05])
    """

    _run_class = _PlateauRun

    def __init__(self, factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0):
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr

    def _check(self, base_rate, max_epochs):
        self._float("factor", 0.0, 1.0, low_open=True, high_open=True)
        self._int("patience", 0)
        self._float("threshold", 0.0)
        self._option("threshold_mode", ("rel", "abs"))
        self._int("cooldown", 0)
        self._float("min_lr", 0.0)
