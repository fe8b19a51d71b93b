"""fastmlp.schedules: every rate against its closed form, bad input, parameters and clone, state.

The closed forms here are written out a second way (scalar, batch by batch, or
PyTorch's own formulation) rather than copied from the module.
"""
import json
import math
import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GridSearchCV

import fastmlp
from fastmlp import MLPRegressor, reference
from fastmlp.schedules import CosineAnnealing, ExponentialDecay, LinearWarmup, OneCycle, ReduceOnPlateau, StepDecay
from fastmlp._training import EpochLoop, Trainer

BASE = 0.05
BATCHES = (1, 3, 8)


def _rates(run, epochs, n_batches):
    """(epochs, n_batches) array of a run's rates."""
    return np.array([run.epoch_rates(e, n_batches) for e in range(epochs)])


def _per_epoch(run, epochs, n_batches, rate):
    """The run's rates equal rate(e) for every batch of every epoch."""
    got = _rates(run, epochs, n_batches)
    want = np.array([[rate(e)] * n_batches for e in range(epochs)])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("n_batches", BATCHES)
@pytest.mark.parametrize("step_size, gamma", [(1, 0.5), (3, 0.1), (4, 1.0)])
def test_step_decay(step_size, gamma, n_batches):
    run = StepDecay(step_size=step_size, gamma=gamma).start(BASE, max_epochs=20)
    assert not run.per_batch
    # the rate falls at epochs step_size, 2 step_size, ...
    _per_epoch(run, 20, n_batches, lambda e: BASE * gamma ** math.floor(e / step_size))


@pytest.mark.parametrize("n_batches", BATCHES)
@pytest.mark.parametrize("gamma", [0.5, 0.9, 1.0])
def test_exponential_decay(gamma, n_batches):
    run = ExponentialDecay(gamma=gamma).start(BASE)  # open-ended: it needs no max_epochs
    _per_epoch(run, 30, n_batches, lambda e: BASE * math.exp(e * math.log(gamma)))


def _cosine(t, T, eta_min, base=BASE):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2


@pytest.mark.parametrize("n_batches", BATCHES)
@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_per_epoch(eta_min, n_batches):
    # T_max defaults to the training's length; past an explicit T_max the rate stays eta_min
    _per_epoch(CosineAnnealing(eta_min=eta_min).start(BASE, 12), 12, n_batches, lambda e: _cosine(e, 12, eta_min))
    run = CosineAnnealing(T_max=5, eta_min=eta_min).start(BASE, 12)
    _per_epoch(run, 12, n_batches, lambda e: _cosine(min(e, 5), 5, eta_min))
    assert run.epoch_rates(0, 1)[0] == BASE and run.epoch_rates(7, 1)[0] == eta_min


@pytest.mark.parametrize("n_batches", BATCHES)
def test_cosine_annealing_per_batch(n_batches):
    run = CosineAnnealing(T_max=4, eta_min=0.001, per_batch=True).start(BASE)
    assert run.per_batch
    got = _rates(run, 6, n_batches)
    for e in range(6):
        for i in range(n_batches):
            assert got[e, i] == pytest.approx(_cosine(min(e + i / n_batches, 4), 4, 0.001), rel=1e-13)


def _sgdr_position(t, T_0, T_mult):
    """(T_cur, T_i) at epoch position t: PyTorch CosineAnnealingWarmRestarts.step(epoch)'s formula."""
    if T_mult == 1:
        return t % T_0, T_0
    n = int(math.log(t / T_0 * (T_mult - 1) + 1, T_mult))
    return t - T_0 * (T_mult ** n - 1) / (T_mult - 1), T_0 * T_mult ** n


@pytest.mark.parametrize("per_batch", [False, True])
@pytest.mark.parametrize("T_0, T_mult", [(1, 1), (3, 1), (2, 2), (1, 3)])
def test_cosine_warm_restarts(T_0, T_mult, per_batch):
    n_batches, epochs = 4, 40
    run = CosineAnnealing(T_0=T_0, T_mult=T_mult, eta_min=0.002, per_batch=per_batch).start(BASE)
    got = _rates(run, epochs, n_batches)
    for e in range(epochs):
        for i in range(n_batches):
            T_cur, T_i = _sgdr_position(e, T_0, T_mult)  # restarts fall on whole epochs
            T_cur += i / n_batches if per_batch else 0
            assert got[e, i] == pytest.approx(_cosine(T_cur, T_i, 0.002), rel=1e-12), (e, i)
        if _sgdr_position(e, T_0, T_mult)[0] == 0:
            assert got[e, 0] == BASE  # back to the base rate at each restart
        elif e > 0:
            assert got[e, 0] < got[e - 1, 0]  # falling in between


def _one_cycle_torch(step, total, peak, pct_start, strategy, div_factor, final_div_factor, three_phase):
    """The rate of step `step` as PyTorch's OneCycleLR.get_lr computes it."""
    initial = peak / div_factor
    lowest = initial / final_div_factor
    if three_phase:
        phases = [(float(pct_start * total) - 1, initial, peak), (float(2 * pct_start * total) - 2, peak, initial),
                  (total - 1, initial, lowest)]
    else:
        phases = [(float(pct_start * total) - 1, initial, peak), (total - 1, peak, lowest)]
    start_step = 0
    for k, (end_step, a, b) in enumerate(phases):
        if step <= end_step or k == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            if strategy == "cos":
                return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (b - a) * pct + a
        start_step = end_step


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("epochs, n_batches, pct_start", [(10, 7, 0.3), (3, 5, 0.25), (4, 1, 0.5), (1, 40, 0.1)])
def test_one_cycle(epochs, n_batches, pct_start, strategy, three_phase):
    params = dict(pct_start=pct_start, div_factor=20.0, final_div_factor=100.0, three_phase=three_phase)
    run = OneCycle(anneal_strategy=strategy, **params).start(BASE, max_epochs=epochs)
    assert run.per_batch
    got = _rates(run, epochs, n_batches).ravel()
    total = epochs * n_batches
    want = [_one_cycle_torch(s, total, BASE, strategy=strategy, **params) for s in range(total)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == pytest.approx(BASE / 20) and got[-1] == pytest.approx(BASE / 2000)
    assert 0.9 * BASE <= got.max() <= BASE  # (the peak itself falls between two batches)


@pytest.mark.parametrize("epochs, n_batches", [(1, 1), (1, 2), (2, 1)])
def test_one_cycle_few_batches(epochs, n_batches):
    # phases shorter than one batch: no division by zero, rates between the lowest and the peak
    for three_phase in (False, True):
        rates = _rates(OneCycle(three_phase=three_phase, pct_start=0.5).start(BASE, epochs), epochs, n_batches)
        assert np.isfinite(rates).all() and (rates > 0).all() and (rates <= BASE).all()


SCHEDULES = {
    "constant": lambda: None,
    "step": lambda: StepDecay(step_size=2, gamma=0.5),
    "exponential": lambda: ExponentialDecay(gamma=0.8),
    "cosine": lambda: CosineAnnealing(eta_min=0.001),
    "cosine_per_batch": lambda: CosineAnnealing(T_max=6, per_batch=True),
    "sgdr": lambda: CosineAnnealing(T_0=2, T_mult=2),
    "one_cycle": lambda: OneCycle(),
    "plateau": lambda: ReduceOnPlateau(factor=0.5, patience=1),
    "warmup": lambda: LinearWarmup(StepDecay(step_size=1, gamma=0.5), warmup_epochs=2),
}
LOSSES = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.75, 0.8, 0.9, 0.6, 0.65, 0.66]


@pytest.mark.parametrize("per_batch", [False, True])
@pytest.mark.parametrize("name", SCHEDULES)
def test_linear_warmup_wraps_each_schedule(name, per_batch):
    epochs, W, n_batches, start_factor = 12, 3, 5, 0.2
    run = LinearWarmup(SCHEDULES[name](), warmup_epochs=W, start_factor=start_factor,
                       per_batch=per_batch).start(BASE, epochs)
    # the wrapped schedule alone, begun when the warmup ends
    after = None if name == "constant" else SCHEDULES[name]().start(BASE, epochs - W)
    assert run.per_batch == (per_batch or (after is not None and after.per_batch))
    for e in range(epochs):
        got = run.epoch_rates(e, n_batches)
        if e < W:
            t = e + np.arange(n_batches) / n_batches if per_batch else np.full(n_batches, e)
            np.testing.assert_allclose(got, BASE * (start_factor + (1 - start_factor) * t / W), rtol=1e-13)
        else:
            want = BASE if after is None else after.epoch_rates(e - W, n_batches)
            np.testing.assert_array_equal(got, np.broadcast_to(want, got.shape))
            if after is not None:
                after.end_epoch(LOSSES[e])  # the warmup's losses never reach the wrapped schedule
        run.end_epoch(LOSSES[e])
    assert run.epoch_rates(0, 1)[0] == pytest.approx(start_factor * BASE)


def _plateau_rates(losses, base=1.0, **params):
    """The rate after each end_epoch of a scripted sequence of losses."""
    run = ReduceOnPlateau(**params).start(base)
    rates = []
    for loss in losses:
        run.end_epoch(loss)
        got = run.epoch_rates(len(rates) + 1, 3)
        assert (got == got[0]).all()
        rates.append(float(got[0]))
    return rates


def test_reduce_on_plateau_patience():
    # best 0.9 at epoch 1; epochs 2, 3 and 4 bad: the third bad epoch (patience 2) halves the rate;
    # then 0.8 is a new best and three more bad epochs halve it again
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8]
    assert _plateau_rates(losses, factor=0.5, patience=2) == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert _plateau_rates([1.0] * 4, factor=0.5, patience=0) == [1, 0.5, 0.25, 0.125]


def test_reduce_on_plateau_cooldown():
    # after the reduction at epoch 4, the next two epochs count no bad epoch: the next reduction
    # waits until epoch 9 (bad epochs 7, 8, 9)
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8]
    assert _plateau_rates(losses, factor=0.5, patience=2, cooldown=2) == [1, 1, 1, 1, .5, .5, .5, .5, .5, .25]


def test_reduce_on_plateau_min_lr():
    assert _plateau_rates([1.0] * 4, base=0.1, factor=0.1, patience=0, min_lr=0.003) == \
        pytest.approx([0.1, 0.01, 0.003, 0.003], rel=1e-15)
    # a min_lr above the base rate never raises the rate
    assert _plateau_rates([1.0] * 3, base=0.1, factor=0.5, patience=0, min_lr=0.5) == [0.1] * 3


def test_reduce_on_plateau_threshold():
    # 9.5 after 10: better by 5% relative, 0.5 absolute
    assert _plateau_rates([10, 9.5], factor=0.5, patience=0, threshold=0.1) == [1, 0.5]  # needs < 9
    assert _plateau_rates([10, 9.5], factor=0.5, patience=0, threshold=0.1, threshold_mode="abs") == [1, 1]
    assert _plateau_rates([10, 9.95], factor=0.5, patience=0, threshold=0.1, threshold_mode="abs") == [1, 0.5]
    assert _plateau_rates([10, 9.999], factor=0.5, patience=0, threshold=0.0) == [1, 1]  # any decrease counts
    assert _plateau_rates([10, 10], factor=0.5, patience=0, threshold=0.0) == [1, 0.5]  # an equal loss does not
    assert _plateau_rates([1.0, float("nan")], factor=0.5, patience=0) == [1, 0.5]  # NaN is no improvement


@pytest.mark.parametrize("name", [n for n in SCHEDULES if n != "constant"])
def test_rates_array(name):
    run = SCHEDULES[name]().start(BASE, 10)
    for e in range(10):
        rates = run.epoch_rates(e, 7)
        assert rates.dtype == np.float64 and rates.shape == (7,) and rates.flags.c_contiguous
        assert np.isfinite(rates).all() and (rates >= 0).all() and (rates <= BASE).all()
        if not run.per_batch:
            assert (rates == rates[0]).all()
        run.end_epoch(LOSSES[e])


# Bad input: (schedule, what start raises about); the constructors accept anything.
BAD = [
    (StepDecay(step_size=0), "StepDecay.step_size"),
    (StepDecay(step_size=2.0), "StepDecay.step_size"),
    (StepDecay(gamma=0.0), "StepDecay.gamma"),
    (StepDecay(gamma=1.5), "StepDecay.gamma"),
    (StepDecay(gamma="0.5"), "StepDecay.gamma"),
    (ExponentialDecay(gamma=-0.5), "ExponentialDecay.gamma"),
    (ExponentialDecay(gamma=float("nan")), "ExponentialDecay.gamma"),
    (CosineAnnealing(T_max=0), "CosineAnnealing.T_max"),
    (CosineAnnealing(T_0=0), "CosineAnnealing.T_0"),
    (CosineAnnealing(T_0=2, T_mult=0), "CosineAnnealing.T_mult"),
    (CosineAnnealing(T_0=2, T_mult=1.5), "CosineAnnealing.T_mult"),
    (CosineAnnealing(T_max=5, T_0=2), "T_max.*T_0"),
    (CosineAnnealing(T_max=5, T_mult=2), "T_mult=2.*needs T_0"),  # (found by probing: accepted and ignored)
    (CosineAnnealing(eta_min=-0.1), "CosineAnnealing.eta_min"),
    (CosineAnnealing(eta_min=1.0), "CosineAnnealing.eta_min must be at most the base rate"),
    (CosineAnnealing(per_batch=1), "CosineAnnealing.per_batch"),
    (OneCycle(pct_start=0.0), "OneCycle.pct_start"),
    (OneCycle(pct_start=1.0), "OneCycle.pct_start"),
    (OneCycle(pct_start=0.6, three_phase=True), "OneCycle.pct_start"),
    (OneCycle(anneal_strategy="cosine"), "OneCycle.anneal_strategy"),
    (OneCycle(div_factor=0.5), "OneCycle.div_factor"),
    (OneCycle(final_div_factor=0), "OneCycle.final_div_factor"),
    (OneCycle(three_phase="yes"), "OneCycle.three_phase"),
    (LinearWarmup(warmup_epochs=0), "LinearWarmup.warmup_epochs"),
    (LinearWarmup(warmup_epochs=10), "LinearWarmup.warmup_epochs must be less than max_epochs"),
    (LinearWarmup(start_factor=0.0), "LinearWarmup.start_factor"),
    (LinearWarmup(start_factor=1.5), "LinearWarmup.start_factor"),
    (LinearWarmup(per_batch=None), "LinearWarmup.per_batch"),
    (LinearWarmup(schedule="cosine"), "LinearWarmup.schedule"),
    (LinearWarmup(StepDecay(gamma=2.0)), "StepDecay.gamma"),  # the wrapped schedule is checked too
    (ReduceOnPlateau(factor=1.0), "ReduceOnPlateau.factor"),
    (ReduceOnPlateau(factor=0), "ReduceOnPlateau.factor"),
    (ReduceOnPlateau(patience=-1), "ReduceOnPlateau.patience"),
    (ReduceOnPlateau(threshold=-1e-4), "ReduceOnPlateau.threshold"),
    (ReduceOnPlateau(threshold_mode="relative"), "ReduceOnPlateau.threshold_mode"),
    (ReduceOnPlateau(cooldown=1.5), "ReduceOnPlateau.cooldown"),
    (ReduceOnPlateau(min_lr=-1.0), "ReduceOnPlateau.min_lr"),
]


@pytest.mark.parametrize("schedule, message", BAD, ids=[m for _, m in BAD])
def test_bad_parameters(schedule, message):
    before = repr(schedule), schedule.get_params()
    with pytest.raises((ValueError, TypeError), match=message):
        schedule.start(0.1, max_epochs=10)
    assert (repr(schedule), schedule.get_params()) == before  # the schedule is as it was


@pytest.mark.parametrize("name", [n for n in SCHEDULES if n != "constant"])
def test_bad_start_and_epoch(name):
    schedule = SCHEDULES[name]()
    for base_rate in (0.0, -0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="base_rate"):
            schedule.start(base_rate, 10)
    with pytest.raises(TypeError, match="base_rate"):
        schedule.start("0.1", 10)
    with pytest.raises(ValueError, match="max_epochs"):
        schedule.start(0.1, 0)
    with pytest.raises(TypeError, match="max_epochs"):
        schedule.start(0.1, 10.0)
    run = schedule.start(0.1, 10)
    with pytest.raises(ValueError, match="epoch"):
        run.epoch_rates(-1, 4)
    with pytest.raises(ValueError, match="n_batches"):
        run.epoch_rates(0, 0)
    with pytest.raises(ValueError, match="state"):
        run.set_state({"no such key": 1})


@pytest.mark.parametrize("schedule", [OneCycle(), CosineAnnealing(), LinearWarmup(OneCycle()),
                                      LinearWarmup(CosineAnnealing(eta_min=0.01))])
def test_open_ended_training_needs_max_epochs(schedule):
    with pytest.raises(ValueError, match=r"needs the number of epochs .*max_epochs.*partial_fit"):
        schedule.start(0.1)
    # those that need no length run open-ended
    for ok in (CosineAnnealing(T_max=5), CosineAnnealing(T_0=5), StepDecay(), LinearWarmup(StepDecay())):
        assert ok.start(0.1).epoch_rates(1000, 2).shape == (2,)


def test_bad_state():
    run = ReduceOnPlateau().start(0.1)
    good = run.get_state()
    for key, value, error in [("rate", -0.1, ValueError), ("rate", 0.2, ValueError), ("rate", "x", TypeError),
                              ("best", float("nan"), ValueError), ("best", "1", TypeError),
                              ("bad_epochs", -1, ValueError), ("cooldown_left", 1.0, TypeError)]:
        with pytest.raises(error, match=key):
            run.set_state(dict(good, **{key: value}))
        assert run.get_state() == good  # a refused state changes nothing
    with pytest.raises(ValueError, match="keys"):
        run.set_state({k: v for k, v in good.items() if k != "best"})
    with pytest.raises(ValueError, match="keys"):
        LinearWarmup(ReduceOnPlateau()).start(0.1).set_state(good)  # the wrapped state is prefixed
    with pytest.raises(ValueError, match="keys"):
        StepDecay().start(0.1).set_state(good)


def test_get_set_params_and_repr():
    schedule = LinearWarmup(CosineAnnealing(T_0=3), warmup_epochs=2)
    assert repr(schedule) == "LinearWarmup(schedule=CosineAnnealing(T_0=3), warmup_epochs=2)"
    assert repr(OneCycle()) == "OneCycle()"
    params = schedule.get_params()
    assert params["schedule__T_0"] == 3 and params["warmup_epochs"] == 2 and params["schedule__eta_min"] == 0.0
    assert set(schedule.get_params(deep=False)) == {"schedule", "warmup_epochs", "start_factor", "per_batch"}
    assert schedule.set_params(schedule__T_mult=2, start_factor=0.5) is schedule
    assert schedule.schedule.T_mult == 2 and schedule.start_factor == 0.5
    with pytest.raises(ValueError, match="Invalid parameter 'gamma' for LinearWarmup"):
        schedule.set_params(gamma=0.5)
    with pytest.raises(ValueError, match="Invalid parameter 'T_min' for CosineAnnealing"):
        schedule.set_params(schedule__T_min=1)
    with pytest.raises(ValueError, match="schedule is None"):
        LinearWarmup().set_params(schedule__gamma=0.5)
    # start leaves the schedule's parameters as given (T_max stays None, gamma a NumPy float)
    cosine, step = CosineAnnealing(), StepDecay(gamma=np.float32(0.5))
    cosine.start(0.1, 10)
    step.start(0.1, 10)
    assert cosine.T_max is None and type(step.gamma) is np.float32


@pytest.mark.parametrize("name", [n for n in SCHEDULES if n != "constant"])
def test_clone(name):
    schedule = LinearWarmup(SCHEDULES[name]())
    copy = clone(schedule)
    assert copy is not schedule and copy.schedule is not schedule.schedule
    assert repr(copy) == repr(schedule) and copy.get_params().keys() == schedule.get_params().keys()
    # inside an estimator: get_params shows the schedule's parameters, clone copies it
    est = MLPRegressor(learning_rate=schedule)
    assert est.get_params()["learning_rate"] is schedule and est.get_params()["learning_rate__schedule"] is schedule.schedule
    assert "learning_rate__warmup_epochs" in est.get_params()
    twin = clone(est).set_params(learning_rate__warmup_epochs=7)
    assert twin.learning_rate.warmup_epochs == 7 and schedule.warmup_epochs == 5
    assert twin.learning_rate.schedule is not schedule.schedule


class _LastRate(RegressorMixin, BaseEstimator):
    """Scores its schedule by how close the last rate of a 5-epoch run comes to `target`."""

    def __init__(self, learning_rate=None, target=0.1 * 0.5**4):
        self.learning_rate = learning_rate
        self.target = target

    def fit(self, X, y):
        self.last_rate_ = self.learning_rate.start(0.1, max_epochs=5).epoch_rates(4, 3)[-1]
        return self

    def score(self, X, y):
        return -abs(self.last_rate_ - self.target)


def test_grid_search_over_a_schedule_parameter():
    X, y = np.zeros((8, 1)), np.zeros(8)
    est = _LastRate(ExponentialDecay())
    search = GridSearchCV(est, {"learning_rate__gamma": [0.9, 0.5, 0.2]}, cv=2).fit(X, y)
    assert search.best_params_ == {"learning_rate__gamma": 0.5}
    assert search.best_estimator_.learning_rate.gamma == 0.5 and search.best_estimator_.last_rate_ == 0.1 * 0.5**4
    assert est.learning_rate.gamma == 0.95  # the search's clones, not the original


def test_a_run_is_independent_of_its_schedule():
    schedule = StepDecay(step_size=1, gamma=0.5)
    run = schedule.start(1.0, 10)
    schedule.set_params(gamma=0.1)
    assert run.epoch_rates(2, 1)[0] == 0.25
    assert schedule.start(1.0, 10).epoch_rates(2, 1)[0] == pytest.approx(0.01)


@pytest.mark.parametrize("name", [n for n in SCHEDULES if n != "constant"] + ["warmup_plateau"])
def test_state_round_trip_mid_run(name):
    make = (lambda: LinearWarmup(ReduceOnPlateau(factor=0.5, patience=0), warmup_epochs=2)) \
        if name == "warmup_plateau" else SCHEDULES[name]
    epochs, n_batches = 12, 4
    run = make().start(BASE, epochs)
    for e in range(5):
        run.epoch_rates(e, n_batches)
        run.end_epoch(LOSSES[e])
    state = run.get_state()
    assert all(type(v) in (int, float) for v in state.values())
    resumed = make().start(BASE, epochs)
    resumed.set_state(json.loads(json.dumps(state)))  # what a file keeps
    copied = pickle.loads(pickle.dumps(run))
    if name in ("plateau", "warmup_plateau"):
        assert state and run.epoch_rates(5, 1)[0] < BASE  # mid-run state that matters
    for e in range(5, epochs):
        rates = run.epoch_rates(e, n_batches)
        np.testing.assert_array_equal(resumed.epoch_rates(e, n_batches), rates)
        np.testing.assert_array_equal(copied.epoch_rates(e, n_batches), rates)
        for r in (run, resumed, copied):
            r.end_epoch(LOSSES[e])


# ---------------------------------------------------------------------------
# The engine's per-batch rates: trainer.rates, one rate per batch of the epoch.

OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", learning_rate=0.05),
    "momentum": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
    "nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.99),
}
N_ROWS, BATCH = 23, 5  # five batches, the last one short
N_BATCHES = -(-N_ROWS // BATCH)


def _data(dtype):
    rng = np.random.default_rng(0)
    return rng.normal(size=(N_ROWS, 5)).astype(dtype), rng.normal(size=(N_ROWS, 3)).astype(dtype)


def _epoch(net, trainer, X, Y, shuffle):
    """One epoch of the training loop with the trainer as it is (its rates included)."""
    EpochLoop(net, trainer, X, Y, max_epochs=1, shuffle=shuffle).run()


def _train(Net, dtype, optimizer, rates, epochs=3, shuffle=True, alpha=0.01, clip_norm=None):
    """A network after `epochs` epochs, trainer.rates = rates(epoch) (None: the scalar learning_rate)."""
    net = Net([5, 7, 6, 3], activation="tanh", dtype=dtype, random_state=11)
    X, Y = _data(dtype)
    trainer = Trainer(net, batch_size=BATCH, alpha=alpha, clip_norm=clip_norm, **OPTIMIZERS[optimizer])
    for e in range(epochs):
        trainer.rates = rates(e)
        _epoch(net, trainer, X, Y, shuffle)
    return net


def _weights(net):
    return np.concatenate([p.ravel() for p in list(net.coefs_) + list(net.intercepts_)])


@pytest.mark.parametrize("clip_norm", [None, 0.3])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_rates_are_the_scalar_path_bit_for_bit(dtype, optimizer, clip_norm):
    lr = OPTIMIZERS[optimizer]["learning_rate"]
    scalar = _train(fastmlp.Network, dtype, optimizer, lambda e: None, clip_norm=clip_norm)
    array = _train(fastmlp.Network, dtype, optimizer, lambda e: np.full(N_BATCHES, lr), clip_norm=clip_norm)
    np.testing.assert_array_equal(_weights(array), _weights(scalar))


def _varying(optimizer):
    """Rates that differ from batch to batch and from epoch to epoch."""
    lr = OPTIMIZERS[optimizer]["learning_rate"]
    return lambda e: lr * (1 + np.arange(N_BATCHES) + e) / N_BATCHES


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_varying_rates_match_the_reference(dtype, optimizer, shuffle):
    engine = _train(fastmlp.Network, dtype, optimizer, _varying(optimizer), shuffle=shuffle)
    ref = _train(reference.Network, dtype, optimizer, _varying(optimizer), shuffle=shuffle)
    np.testing.assert_allclose(_weights(engine), _weights(ref), rtol={np.float32: 1e-4, np.float64: 1e-10}[dtype],
                               atol={np.float32: 1e-5, np.float64: 1e-12}[dtype])
    constant = _train(fastmlp.Network, dtype, optimizer, lambda e: None, shuffle=shuffle)
    assert np.abs(_weights(engine) - _weights(constant)).max() > 1e-3  # the rates did change the training


def test_rate_k_is_the_rate_of_batch_k():
    # sgd without momentum, rates 0 but for the last (short) batch: the epoch is one step on rows 20-22
    rates = np.zeros(N_BATCHES)
    rates[-1] = 0.05
    net = _train(fastmlp.Network, np.float64, "sgd", lambda e: rates, epochs=1, shuffle=False, alpha=0.0)
    one_step = fastmlp.Network([5, 7, 6, 3], activation="tanh", random_state=11)
    X, Y = _data(np.float64)
    one_step.fit(X[20:], Y[20:], epochs=1, batch_size=BATCH, learning_rate=0.05, shuffle=False)
    np.testing.assert_array_equal(_weights(net), _weights(one_step))


@pytest.mark.parametrize("rates, error, message", [
    (np.full(N_BATCHES - 1, 0.1), ValueError, r"one rate per batch, shape \(5,\)"),
    (np.full(N_BATCHES + 1, 0.1), ValueError, r"one rate per batch, shape \(5,\)"),
    (np.full((N_BATCHES, 1), 0.1), ValueError, "one rate per batch"),
    (np.full(N_BATCHES, 0.1, dtype=np.float32), TypeError, "float64"),
    (np.full(2 * N_BATCHES, 0.1)[::2], TypeError, "C-contiguous"),
    ([0.1] * N_BATCHES, TypeError, "float64 array"),
    (np.array([0.1, 0.1, np.nan, 0.1, 0.1]), ValueError, "finite and >= 0"),
    (np.array([0.1, 0.1, -0.1, 0.1, 0.1]), ValueError, "finite and >= 0"),
])
def test_bad_rates_are_refused_before_training(rates, error, message):
    net = fastmlp.Network([5, 7, 6, 3], activation="tanh", random_state=11)
    X, Y = _data(np.float64)
    trainer = Trainer(net, batch_size=BATCH, optimizer="sgd", learning_rate=0.1)
    trainer.rates = rates
    before = _weights(net)
    with pytest.raises(error, match=r"trainer\.rates.*" + message):
        _epoch(net, trainer, X, Y, True)
    np.testing.assert_array_equal(_weights(net), before)


def test_engine_refuses_too_few_rates(monkeypatch):
    # behind the Python check, the engine's own O(1) one: never a read past the array's end
    monkeypatch.setattr(fastmlp.network, "_check_rates", lambda rates, n_batches: rates)
    net = fastmlp.Network([5, 7, 6, 3], activation="tanh", random_state=11)
    X, Y = _data(np.float64)
    trainer = Trainer(net, batch_size=BATCH, optimizer="sgd", learning_rate=0.1)
    trainer.rates = np.full(N_BATCHES - 1, 0.1)
    before = _weights(net)
    with pytest.raises(ValueError, match="learning_rates has 4 rates for 5 batches"):
        _epoch(net, trainer, X, Y, True)
    np.testing.assert_array_equal(_weights(net), before)
