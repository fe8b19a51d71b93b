"""A diverging fit leaves a model whose predictions are finite (issue 12, items 2 and 3).

* Without a validation set the fit raises scikit-learn's "Solver produced
  non-finite parameter weights" phrase with fastmlp's hint (epoch, learning
  rate, clip_norm); the weights are those of the start of the failed epoch,
  or those before the call when the start of that epoch already overflows the
  outputs (|W| ~ 1e158 after five epochs of sgd at learning_rate 1: finite
  weights, NaN predictions), and the training record matches the weights.
* With early_stopping=True the fit returns, as scikit-learn's does since its
  issue #29504: the diverged epoch is recorded with a NaN validation score,
  the best-validation weights (or, if no epoch had a finite score, those from
  before the fit) come back, and a ConvergenceWarning says so.
"""
import copy
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, reference

SKLEARN_PHRASE = ("Solver produced non-finite parameter weights. The input data may contain large values and need "
                  "to be preprocessed.")

# scikit-learn's test_mlp_diverging_loss: sgd at learning_rate 1 on unscaled iris
X_IRIS, Y_IRIS = load_iris(return_X_y=True)
DIVERGING = dict(hidden_layer_sizes=100, activation="identity", learning_rate="constant", max_iter=20,
                 random_state=0)
# learning_rate_init per solver: sgd grows the weights geometrically; adam's steps are
# about the learning rate each, so it needs one that overflows the outputs in two epochs
DIVERGING_LR = {"sgd": 1.0, "adam": 1e100}


def _params(model):
    return [np.array(a) for a in list(model.coefs_) + list(model.intercepts_)]


def _assert_hint(message):
    assert SKLEARN_PHRASE in message, message
    assert re.search(r"diverged in epoch \d+", message), message
    assert "learning_rate" in message and "clip_norm" in message, message


def _initial_params(solver, **params):
    """The weights a fit starts from (max_iter=1 and a learning rate too small to move them)."""
    est = MLPRegressor(**{**DIVERGING, **params, "solver": solver, "learning_rate_init": 1e-300, "max_iter": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _params(est.fit(X_IRIS, Y_IRIS))


# ------------------------------------------------------------ no validation set


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_estimator_divergence_raises_and_leaves_finite_predictions(solver):
    est = MLPRegressor(solver=solver, learning_rate_init=DIVERGING_LR[solver], **DIVERGING)
    with np.errstate(all="ignore"), pytest.raises(ValueError) as info:
        est.fit(X_IRIS, Y_IRIS)
    message = str(info.value)
    _assert_hint(message)
    assert all(np.isfinite(p).all() for p in _params(est))
    assert np.isfinite(est.predict(X_IRIS)).all()
    # the record matches the weights left behind
    assert len(est.loss_curve_) == est.n_iter_ == est.grad_norms_.shape[0]
    assert np.isfinite(est.loss_curve_).all()
    if "before this call" in message:
        assert est.n_iter_ == 0 and est.t_ == 0
        for p, q in zip(_params(est), _initial_params(solver), strict=True):
            assert_array_equal(p, q)
    else:
        assert est.n_iter_ == int(re.search(r"epoch (\d+)", message).group(1)) - 1


def test_the_start_of_the_failed_epoch_can_overflow_so_the_call_start_comes_back():
    # The case the roll-back to the call's start is for (scikit-learn's
    # test_mlp_diverging_loss without early stopping): the weights of the start
    # of epoch 6 are finite (|W| ~ 1e158) but overflow the outputs. Rolling back
    # one epoch only left predict returning NaN.
    est = MLPRegressor(solver="sgd", learning_rate_init=1.0, **DIVERGING)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="before this call") as info:
        est.fit(X_IRIS, Y_IRIS)
    assert "diverged in epoch 6" in str(info.value)
    assert np.isfinite(est.predict(X_IRIS)).all()
    assert est.loss_curve_ == [] and est.n_iter_ == 0


@pytest.mark.parametrize("Net", [fastmlp.Network, reference.Network], ids=["engine", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_network_fit_divergence_leaves_finite_predictions(Net, dtype):
    # sgd with Nesterov momentum at learning_rate 1 (the estimator's settings above)
    net = Net([4, 100, 1], activation="identity", dtype=dtype, random_state=0)
    before = _params(net)
    with np.errstate(all="ignore"), pytest.raises(ValueError) as info:
        net.fit(X_IRIS, Y_IRIS, epochs=20, batch_size=200, learning_rate=1.0, momentum=0.9, nesterov=True)
    message = str(info.value)
    _assert_hint(message)
    with np.errstate(all="ignore"):
        assert np.isfinite(net.predict(X_IRIS)).all()
    if "before this call" in message:
        assert not hasattr(net, "loss_curve_")  # (the record as before the call: a new network has none)
        for p, q in zip(_params(net), before, strict=True):
            assert_array_equal(p, q)
    else:
        assert len(net.loss_curve_) == net.grad_norms_.shape[0]
        assert len(net.loss_curve_) == int(re.search(r"epoch (\d+)", message).group(1)) - 1


def test_network_fit_rolls_back_to_the_call_start_when_the_epoch_start_overflows():
    net = fastmlp.Network([4, 100, 1], activation="identity", random_state=0)
    # (an earlier call's record, which the failed call must leave as it was: found by probing, it was emptied)
    net.fit(X_IRIS, Y_IRIS, epochs=2, batch_size=200, learning_rate=1e-6, validation_data=(X_IRIS, Y_IRIS))
    record = {name: copy.deepcopy(getattr(net, name)) for name in
              ("loss_curve_", "grad_norms_", "history_", "validation_loss_curve_", "dead_units_")}
    before = _params(net)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="before this call"):
        net.fit(X_IRIS, Y_IRIS, epochs=20, batch_size=200, learning_rate=1.0, momentum=0.9, nesterov=True)
    assert np.isfinite(net.predict(X_IRIS)).all()
    for p, q in zip(_params(net), before, strict=True):
        assert_array_equal(p, q)
    for name, value in record.items():
        assert str(getattr(net, name)) == str(value), name


def test_a_warm_start_rolled_back_to_its_start_keeps_the_record():
    # found by probing: n_iter_ fell to 0 while the weights and loss_curve_ came back
    est = MLPRegressor(solver="sgd", learning_rate_init=1e-6, warm_start=True, **{**DIVERGING, "max_iter": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_IRIS, Y_IRIS)
    record = (est.n_iter_, list(est.loss_curve_), est.t_, est.loss_, est.grad_norms_.copy(), _params(est))
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="before this call"):
        est.set_params(learning_rate_init=1.0, max_iter=20).fit(X_IRIS, Y_IRIS)
    assert (est.n_iter_, est.loss_curve_, est.t_, est.loss_) == record[:4]
    assert_array_equal(est.grad_norms_, record[4])
    for p, q in zip(_params(est), record[5], strict=True):
        assert_array_equal(p, q)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_divergence_keeps_the_previous_call(solver):
    est = MLPRegressor(solver=solver, learning_rate_init=DIVERGING_LR[solver], **DIVERGING)
    states = []
    with np.errstate(all="ignore"), pytest.raises(ValueError) as info:
        for _ in range(20):
            fitted = hasattr(est, "loss_curve_")
            states.append((_params(est), list(est.loss_curve_), est.t_) if fitted else None)
            est.partial_fit(X_IRIS, Y_IRIS)
    _assert_hint(str(info.value))
    assert "diverged in epoch 1" in str(info.value)  # partial_fit is one epoch
    assert states[-1] is not None, "the first call diverged: the test needs calls that succeed first"
    before, curve, t = states[-1]
    for p, q in zip(_params(est), before, strict=True):
        assert_array_equal(p, q)
    assert est.loss_curve_ == curve and est.t_ == t
    assert np.isfinite(est.predict(X_IRIS)).all()


def test_lbfgs_divergence_uses_the_phrase_and_keeps_the_weights():
    # scikit-learn's test_nonfinite_params, with lbfgs: inputs near the largest float
    X = np.finfo(np.float64).max * np.random.RandomState(0).uniform(size=(10, 2))
    y = np.random.RandomState(1).standard_normal(10)
    est = MLPRegressor(solver="lbfgs", random_state=0, warm_start=True)
    est.fit(X / 1e305, y)
    before, curve = _params(est), list(est.loss_curve_)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=re.escape(SKLEARN_PHRASE)):
        est.fit(X, y)
    for p, q in zip(_params(est), before, strict=True):
        assert_array_equal(p, q)
    assert est.loss_curve_ == curve and est.grad_norms_.shape[0] == len(curve)


@pytest.mark.parametrize("Est, solver", [(MLPRegressor, "sgd"), (MLPRegressor, "adam"), (MLPClassifier, "sgd")])
def test_nonfinite_input_scale_names_scikit_learns_phrase(Est, solver):
    # scikit-learn's test_nonfinite_params for the stochastic solvers (a classifier with adam
    # does not diverge there: its saturated logistic outputs keep the loss and steps finite)
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(10) if Est is MLPRegressor else np.arange(10) % 2
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=re.escape(SKLEARN_PHRASE)) as info:
        Est(solver=solver).fit(X, y)
    _assert_hint(str(info.value))


# ------------------------------------------------------------ early stopping


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_early_stopping_returns_the_best_weights_with_a_warning(solver):
    est = MLPRegressor(solver=solver, learning_rate_init=DIVERGING_LR[solver], early_stopping=True,
                       n_iter_no_change=10, **DIVERGING)
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match=r"diverged in epoch \d+") as record:
        est.fit(X_IRIS, Y_IRIS)
    message = next(str(w.message) for w in record if "diverged" in str(w.message))
    assert "learning_rate" in message and "clip_norm" in message
    # as scikit-learn's test_mlp_diverging_loss: the diverged epoch is recorded with a NaN score
    assert np.isnan(est.validation_scores_[-1]) and isinstance(est.validation_scores_[-1], float)
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_) == est.grad_norms_.shape[0]
    assert all(np.isfinite(p).all() for p in _params(est))
    assert np.isfinite(est.predict(X_IRIS)).all()
    if np.isfinite(est.best_validation_score_):
        assert "best validation score" in message
        assert est.best_validation_score_ == np.nanmax(est.validation_scores_)
    else:  # no epoch scored: the weights from before the fit
        assert "before this fit" in message
        for p, q in zip(_params(est), _initial_params(solver, early_stopping=True), strict=True):
            assert_array_equal(p, q)


def test_a_model_returned_after_divergence_saves_and_loads(tmp_path):
    # its record holds the NaN of the diverged epoch (loss_curve_, grad_norms_, validation_scores_)
    est = MLPRegressor(solver="sgd", learning_rate_init=1.0, early_stopping=True, **DIVERGING)
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match="diverged"):
        est.fit(X_IRIS, Y_IRIS)
    est.save(tmp_path / "model.fmlp")
    loaded = fastmlp.load(tmp_path / "model.fmlp")
    assert_array_equal(loaded.predict(X_IRIS), est.predict(X_IRIS))
    assert_array_equal(loaded.validation_scores_, est.validation_scores_)
    assert_array_equal(loaded.loss_curve_, est.loss_curve_)


def test_network_early_stopping_divergence_warns_and_saves_and_loads(tmp_path):
    # found by probing: Network.fit returned in silence, and fastmlp.load refused the NaN it recorded
    net = fastmlp.Network([4, 100, 1], activation="identity", random_state=0)
    args = dict(epochs=20, batch_size=200, learning_rate=1.0, momentum=0.9, nesterov=True,
                validation_data=(X_IRIS[::5], Y_IRIS[::5]), early_stopping=True)
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match=r"diverged in epoch \d+.*early_stopping"):
        net.fit(X_IRIS, Y_IRIS, **args)
    assert np.isnan(net.loss_curve_[-1]) and np.isnan(net.grad_norms_[-1]).all()
    assert np.isfinite(net.predict(X_IRIS)).all()
    net.save(tmp_path / "net.fmlp")
    loaded = fastmlp.load(tmp_path / "net.fmlp")
    assert_array_equal(loaded.predict(X_IRIS), net.predict(X_IRIS))
    assert_array_equal(loaded.loss_curve_, net.loss_curve_)
    # a NetworkEnsemble's member warns naming it
    ens = fastmlp.NetworkEnsemble([4, 100, 1], n_members=2, activation="identity", random_state=0,
                                  member_params=[{"learning_rate": 1e-4}, {"learning_rate": 1.0}])
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match=r"Member 1: Training diverged"):
        ens.fit(X_IRIS, Y_IRIS, **{**args, "learning_rate": 1e-4})
    assert ens.n_epochs_[0] == 20 and np.isnan(ens.loss_curve_[1, ens.n_epochs_[1] - 1])


def test_a_score_of_minus_infinity_saves_and_loads(tmp_path):
    # found by probing: finite outputs near float64's largest overflow R^2's squared errors, a score of -inf
    # (as scikit-learn's r2_score gives it), which fastmlp.load refused
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([1.0, -1.0, 0.5])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e8, early_stopping=True,
                           max_iter=5, random_state=0).fit(X, y)
    assert -np.inf in est.validation_scores_
    est.save(tmp_path / "model.fmlp")
    loaded = fastmlp.load(tmp_path / "model.fmlp")
    assert_array_equal(loaded.validation_scores_, est.validation_scores_)
    assert_array_equal(loaded.predict(X), est.predict(X))


def test_a_warm_start_after_a_divergence_saves_and_loads(tmp_path):
    # found by probing: the diverged epoch's NaN, followed by a later fit's epochs, was refused by fastmlp.load
    est = MLPRegressor(solver="sgd", learning_rate_init=1.0, early_stopping=True, warm_start=True, **DIVERGING)
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match="diverged"):
        est.fit(X_IRIS, Y_IRIS)
    n_diverged = len(est.loss_curve_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(learning_rate_init=1e-6).fit(X_IRIS, Y_IRIS)
    assert len(est.loss_curve_) > n_diverged and np.isnan(est.loss_curve_[n_diverged - 1])
    assert np.isfinite(est.loss_curve_[n_diverged:]).all()
    est.save(tmp_path / "model.fmlp")
    loaded = fastmlp.load(tmp_path / "model.fmlp")
    assert_array_equal(loaded.predict(X_IRIS), est.predict(X_IRIS))
    assert_array_equal(loaded.loss_curve_, est.loss_curve_)


def test_early_stopping_restores_the_best_epoch():
    # sgd diverges in epoch 6 after finite scores: the weights are those of the best one, replayed
    params = dict(solver="sgd", learning_rate_init=1.0, early_stopping=True, **DIVERGING)
    est = MLPRegressor(**params)
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match="best validation score"):
        est.fit(X_IRIS, Y_IRIS)
    scores = est.validation_scores_
    best = int(np.nanargmax(scores)) + 1
    assert np.isfinite(scores[best - 1]) and best < est.n_iter_
    replay = MLPRegressor(**{**params, "max_iter": best})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay.fit(X_IRIS, Y_IRIS)
    assert replay.validation_scores_ == scores[:best]
    for p, q in zip(_params(est), _params(replay), strict=True):
        assert_array_equal(p, q)


def test_early_stopping_divergence_before_any_finite_score_returns_the_initial_weights():
    # adam at 1e100: epoch 1 already scores -inf, epoch 2 diverges
    est = MLPRegressor(solver="adam", learning_rate_init=1e100, early_stopping=True, **DIVERGING)
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match="before this fit"):
        est.fit(X_IRIS, Y_IRIS)
    assert not np.isfinite(est.best_validation_score_)
    for p, q in zip(_params(est), _initial_params("adam", early_stopping=True), strict=True):
        assert_array_equal(p, q)


def _bound_by_hand(net, X, params):
    """The bound of BaseNetwork._output_bound written out layer by layer (NumPy, float64)."""
    X = X.toarray() if hasattr(X, "toarray") else X
    bound = worst = np.sqrt(np.max(np.sum(X.astype(np.float64) ** 2, axis=1)))
    sizes = net.layer_sizes
    off, slopes_at = 0, sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    p = params.astype(np.float64)
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if l > 0:
            if net.activation in ("tanh", "logistic"):
                bound = min(bound, np.sqrt(fan_in))
            elif net.activation == "prelu":
                bound *= max(1.0, np.abs(p[slopes_at:slopes_at + fan_in]).max())
                slopes_at += fan_in
        W, b = p[off:off + fan_in * fan_out], p[off + fan_in * fan_out:off + fan_in * fan_out + fan_out]
        off += fan_in * fan_out + fan_out
        bound = bound * np.linalg.norm(W) + np.linalg.norm(b)
        worst = max(worst, bound)
    return worst


@pytest.mark.parametrize("activation", ["relu", "tanh", "prelu", "identity"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_outputs_bound_is_the_layers_bound(activation, dtype):
    # the check at the end of a fit: the bound on every layer's |z| over X's rows, for one network and
    # for a stack of members' weights (an ensemble's), dense and sparse X
    import scipy.sparse as sp
    rng = np.random.default_rng(0)
    net = fastmlp.Network([5, 7, 6, 2], activation=activation, dtype=dtype, random_state=0)
    if activation == "prelu":
        net.prelu_slopes_ = [rng.uniform(-3, 3, 7), rng.uniform(-0.5, 0.5, 6)]
    X = (rng.standard_normal((300, 5)) * [1, 10, 100, 0.1, 1]).astype(dtype)
    for data in (X, sp.csr_matrix(X)):
        assert net._output_bound(data) == pytest.approx(_bound_by_hand(net, X, net._params), rel=1e-5)
    stack = np.stack([net._params * s for s in (1.0, 0.5, 3.0)])
    expected = [_bound_by_hand(net, X, p) for p in stack]
    np.testing.assert_allclose(net._output_bound(X, stack), expected, rtol=1e-5)


def test_the_outputs_bound_is_infinite_where_it_is_not_a_number():
    # inf times a zero norm is NaN: the bound is then infinite (the caller runs the forward pass)
    net = fastmlp.Network([2, 3, 1], random_state=0)
    X = np.array([[1e300, 1e300], [0.0, 1.0]])
    net.coefs_ = [np.full((2, 3), 1e10), np.zeros((3, 1))]
    assert net._output_bound(X) == np.inf
    assert not net._outputs_in_range(X)  # (the forward pass: the first row's z_1 overflows, then inf times 0)
    assert net._outputs_in_range(X[1:])


def test_a_first_epoch_that_diverges_under_early_stopping_returns_with_its_rate_recorded():
    # found by probing: the estimator raised an internal AttributeError (no dead_units_: no epoch completed) and
    # the Network returned without dead_units_; the diverged epoch's record had the base rate, not the
    # schedule's rate it ran at
    from fastmlp.schedules import LinearWarmup

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = 100 * (X @ np.array([1.0, -1.0, 0.5]))
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match="diverged in epoch 1"):
        est = MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=10.0, early_stopping=True,
                           max_iter=10, batch_size=10, random_state=0).fit(X, y)
    assert est.n_iter_ == 1 and np.isnan(est.loss_curve_[0]) and est.dead_units_ is None
    assert np.isfinite(est.predict(X)).all()
    net = fastmlp.Network([3, 16, 1], random_state=0)
    with np.errstate(all="ignore"), pytest.warns(ConvergenceWarning, match="diverged"):
        net.fit(X[:60], y[:60], epochs=10, batch_size=10, learning_rate=10.0, validation_data=(X[60:], y[60:]),
                early_stopping=True, lr_schedule=LinearWarmup(warmup_epochs=5, start_factor=1e-4))
    rates = net.history_["learning_rate"]
    assert np.isnan(net.loss_curve_[-1]) and len(rates) >= 2
    assert rates[-1] < 10.0  # (the warm-up's rate of that epoch, not the base rate)
    assert hasattr(net, "dead_units_")
