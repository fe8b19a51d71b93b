"""Numerics: extreme pre-activations, divergence and Ctrl-C.

* Extreme pre-activations (|z| up to 1e4, both dtypes) give finite, correct
  losses, gradients and outputs for every hidden activation crossed with every
  output pair of the registry (so a new registry entry is covered without
  editing this file). The networks get their extremes from scaled weights.
* A diverging fit raises a ValueError that names the epoch and suggests a lower
  learning rate or clip_norm, and leaves the weights of the start of that epoch
  (checked bit for bit against a replay of the epochs before it); a fit that
  returns normally never leaves NaN or infinite predictions. The estimators
  behave the same.
* Ctrl-C during a long fit stops within one epoch and leaves the weights of the
  last completed epoch; Network.fit lets the KeyboardInterrupt through, the
  estimators warn and return the usable model (as scikit-learn's do).
"""
import contextlib
import platform
import re
import signal
import threading
import warnings

import numpy as np
import scipy.sparse
from _helpers import make_targets
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastmlp
import fastmlp.network
from fastmlp import MLPClassifier, MLPRegressor, _registry, reference

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
ACTIVATIONS = sorted(_registry.ACTIVATIONS)
OUTPUTS = list(_registry.OUTPUTS)

parametrize_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
parametrize_output = pytest.mark.parametrize("pair", OUTPUTS, ids=lambda p: "+".join(p))


def _slopes(net):
    """The learnable activation slopes (prelu), if the network has any."""
    return list(getattr(net, "prelu_slopes_", []))


def _params(net):
    """Copies of all trained parameters: weights, biases (and prelu slopes), in order."""
    return [a.copy() for a in list(net.coefs_) + list(net.intercepts_) + _slopes(net)]


def _loss_and_gradients(net, X, Y, **kwargs):
    """(loss, flat list of gradient arrays: dW..., db..., and the slopes' if any)."""
    loss, *groups = net.loss_and_gradients(X, Y, **kwargs)
    return loss, [g for group in groups for g in group]


def _assert_params_equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_array_equal(g, w)


def _all_finite(arrays):
    return all(np.isfinite(a).all() for a in arrays)


# ---------------------------------------------------------------------------
# Extreme pre-activations.

# Magnitudes of the pre-activations every hidden layer (and, where the pair
# allows, the output layer) sees: they cross the places where exp, tanh and
# the logistic function saturate, underflow or overflow in float32 (~88) and
# float64 (~709), up to 1e4.
MAGNITUDES = np.array([0.0, 1e-3, 0.5, 1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 88.0, 89.0, 90.0, 100.0, 300.0,
                       700.0, 709.0, 710.0, 720.0, 1e3, 3e3, 1e4])
EXTREME = 1e4
WIDTH = 6  # units of every hidden layer, and inputs
N_OUTPUTS = 3
# The float32 engine is compared with the float64 reference on the same
# (float32-rounded) weights: at |z| ~ 1e4, float32 rounding moves z by ~1e-3,
# which moves a softmax or logistic output by as much, so the float32 check is
# loose; it still catches wrong signs, wrong magnitudes and NaN turned to 0.
EXTREME_RTOL = {np.float32: 1e-2, np.float64: 1e-8}


def _grid_rows(n_cols, rng):
    """Rows of signed MAGNITUDES, shuffled, so each row mixes extremes of both signs."""
    values = np.concatenate([MAGNITUDES, -MAGNITUDES[1:]])
    n_rows = -(-values.size // n_cols)
    values = np.resize(values, n_rows * n_cols)
    return rng.permutation(values).reshape(n_rows, n_cols)


def _reference_twin(net):
    """A float64 reference.Network with exactly the (possibly float32) weights of net."""
    twin = reference.Network(net.layer_sizes, activation=net.activation, output_activation=net.output_activation,
                             loss=net.loss, loss_param=net.loss_param, dtype="float64", random_state=0)
    twin.coefs_ = [np.asarray(W, dtype=np.float64) for W in net.coefs_]
    twin.intercepts_ = [np.asarray(b, dtype=np.float64) for b in net.intercepts_]
    if _slopes(net):
        twin.prelu_slopes_ = [np.asarray(a, dtype=np.float64) for a in net.prelu_slopes_]
    return twin


def _scale_to(net, layer, Z, target, positive=False):
    """Scale layer's weights and bias so that max |Z| (positive: max Z) becomes target.

    Z is the layer's pre-activation computed with the current weights.
    """
    factor = target / (np.max(Z) if positive else np.max(np.abs(Z)))
    assert factor > 0
    net.coefs_[layer] = np.asarray(net.coefs_[layer], dtype=np.float64) * factor
    net.intercepts_[layer] = np.asarray(net.intercepts_[layer], dtype=np.float64) * factor


def _pre_activations(twin, X):
    """Z_1 .. Z_L of the float64 reference on X."""
    Z, _, _, _ = twin._forward_pass(np.asarray(X, dtype=np.float64))
    return Z[1:]


def _representable(twin, X, Y, dtype):
    """True when the exact (float64) loss, gradients and outputs fit in dtype with room to spare."""
    limit = np.finfo(dtype).max * 1e-3
    with np.errstate(over="ignore", invalid="ignore"):
        loss, grads = _loss_and_gradients(twin, X, Y)
        out = twin.forward(X)
    return all(np.isfinite(a).all() and np.max(np.abs(a)) < limit for a in [np.array(loss), out, *grads])


def _extreme_network(dtype, activation, pair, n_hidden, seed=0):
    """A network whose hidden pre-activations cover +-MAGNITUDES up to 1e4, X and Y for it.

    Layer 1 is EXTREME * identity on inputs in [-1, 1], so Z_1 is exactly the
    grid of signed MAGNITUDES; deeper hidden layers get random weights scaled
    so that max |Z_l| = 1e4; the output layer is scaled so that max |Z_L| is
    1e4, except for exp + poisson (see below).
    """
    output_activation, loss = pair
    rng = np.random.default_rng(seed)
    n_inputs = WIDTH if n_hidden else N_OUTPUTS
    sizes = [n_inputs] + [WIDTH] * n_hidden + [N_OUTPUTS]
    net = fastmlp.Network(sizes, activation=activation, output_activation=output_activation, loss=loss,
                          dtype=dtype, random_state=seed)
    X = _grid_rows(n_inputs, rng) / EXTREME
    Y = make_targets(output_activation, (X.shape[0], N_OUTPUTS), rng, loss)
    net.coefs_ = [rng.standard_normal(W.shape) for W in net.coefs_]
    net.intercepts_ = [rng.standard_normal(b.shape) for b in net.intercepts_]
    if n_hidden == 0:
        # The output layer alone: Z_L is the grid itself.
        net.coefs_[0] = EXTREME * np.eye(N_OUTPUTS)
        net.intercepts_[0] = np.zeros(N_OUTPUTS)
    else:
        net.coefs_[0] = EXTREME * np.eye(WIDTH)
        net.intercepts_[0] = np.zeros(WIDTH)
        for layer in range(1, n_hidden):
            _scale_to(net, layer, _pre_activations(_reference_twin(net), X)[layer], EXTREME)
    if output_activation != "exp":
        if n_hidden > 0:
            _scale_to(net, n_hidden, _pre_activations(_reference_twin(net), X)[n_hidden], EXTREME)
        return net, X, Y
    # exp + poisson: the prediction is exp(z), which overflows at z > ~88
    # (float32) or ~709 (float64), and its gradients are exp(z) times the
    # layer inputs (up to 1e4) and weights. There is no finite answer beyond
    # that, so this pair's output pre-activations go up to the largest value
    # whose exact outputs, loss and gradients the dtype can represent (74-81 in
    # float32, 695-702 in float64, depending on how large the last hidden
    # layer's outputs are; negative ones go further, and the hidden layers
    # keep their extremes of 1e4). exp + gamma: its loss holds y exp(-z), which
    # overflows as far the other way, so both signs are capped.
    two_sided = _registry.OUTPUTS[pair].positive_targets
    base = net.coefs_[n_hidden].copy(), net.intercepts_[n_hidden].copy()
    Z_out = _pre_activations(_reference_twin(net), X)[n_hidden]
    if n_hidden == 0:
        # Z_L is the grid: cap its positive entries, keep the negative ones.
        X_capped = X.copy()
        for cap in np.arange(np.floor(np.log(np.finfo(dtype).max)), 0, -1.0):
            X_capped = np.clip(X, -cap / EXTREME if two_sided else None, cap / EXTREME)
            if _representable(_reference_twin(net), X_capped, Y, dtype):
                break
        assert cap > 50, "test construction: no representable cap found"
        return net, X_capped, Y
    for top in np.arange(np.floor(np.log(np.finfo(dtype).max)), 0, -1.0):
        net.coefs_[n_hidden], net.intercepts_[n_hidden] = base
        _scale_to(net, n_hidden, Z_out, top, positive=not two_sided)
        if _representable(_reference_twin(net), X, Y, dtype):
            break
    assert top > 20, "test construction: no representable output scale found"
    return net, X, Y


def _assert_matches(got, want, rtol, what, scale=None):
    """got is finite and within rtol of want, relative to `scale` (default: want's largest entry)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert np.isfinite(got).all(), f"{what} is not finite: {got}"
    if scale is None:
        scale = float(np.max(np.abs(want)))
    assert_allclose(got, want, rtol=rtol, atol=rtol * max(scale, 1e-30), err_msg=what)


def _check_extreme(net, X, Y, dtype, hidden_extremes):
    twin = _reference_twin(net)
    Z = _pre_activations(twin, X)
    # The construction did what it says.
    if hidden_extremes:
        for Z_l in Z[:-1]:
            assert np.max(np.abs(Z_l)) == pytest.approx(EXTREME, rel=1e-6)
    if net.output_activation != "exp":
        assert np.max(np.abs(Z[-1])) == pytest.approx(EXTREME, rel=1e-6)
    assert _representable(twin, X, Y, dtype), "test construction: the exact values must fit in the dtype"
    X_engine = X.astype(dtype)
    rtol = EXTREME_RTOL[dtype]

    out = net.forward(X_engine)
    assert out.dtype == dtype
    _assert_matches(out, twin.forward(X_engine), rtol, "forward")
    assert_array_equal(net.predict(X_engine), out)

    sample_weight = np.linspace(0.5, 2.0, X.shape[0])
    for kwargs in (dict(), dict(alpha=1e-3), dict(sample_weight=sample_weight)):
        loss, grads = _loss_and_gradients(net, X_engine, Y.astype(dtype), **kwargs)
        ref_loss, ref_grads = _loss_and_gradients(twin, X_engine, Y, **kwargs)
        assert np.isfinite(loss), f"loss is {loss} ({kwargs})"
        _assert_matches(loss, ref_loss, rtol, f"loss ({kwargs})")
        assert len(grads) == len(ref_grads)
        # float32: relative to the largest gradient of any layer, since a layer
        # behind a saturated tanh or logistic gets exact gradients of ~1e-7 of
        # that, which float32's 1 - a^2 rounds to 0.
        largest = max(float(np.max(np.abs(g))) for g in ref_grads)
        for i, (g, ref_g) in enumerate(zip(grads, ref_grads)):
            assert g.dtype == dtype
            _assert_matches(g, ref_g, rtol, f"gradient {i} ({kwargs})", largest if dtype is np.float32 else None)


@parametrize_dtype
@parametrize_output
def test_extreme_output_preactivations(dtype, pair):
    # No hidden layer: the output layer's pre-activations are exactly the
    # signed grid, |z| up to 1e4 (exp + poisson: see _extreme_network).
    net, X, Y = _extreme_network(dtype, "identity", pair, n_hidden=0)
    _check_extreme(net, X, Y, dtype, hidden_extremes=False)


@parametrize_dtype
@parametrize_output
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_extreme_hidden_preactivations(dtype, activation, pair):
    # Two hidden layers: Z_1 is the signed grid, Z_2 reaches 1e4 through
    # scaled random weights, and so does the output (exp + poisson: as far as
    # the dtype can represent).
    net, X, Y = _extreme_network(dtype, activation, pair, n_hidden=2)
    _check_extreme(net, X, Y, dtype, hidden_extremes=True)


@parametrize_dtype
@parametrize_output
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_an_epoch_from_extreme_weights_is_finite_or_refused(dtype, activation, pair):
    # A training step taken from such weights either stays finite or is
    # refused as divergence; in both cases the weights are finite afterwards
    # and so are the predictions of a fit that returned.
    net, X, Y = _extreme_network(dtype, activation, pair, n_hidden=2)
    X, Y = X.astype(dtype), Y.astype(dtype)
    before = _params(net)
    try:
        with np.errstate(all="ignore"):
            net.fit(X, Y, epochs=1, batch_size=4, learning_rate=1e-6, clip_norm=1.0)
    except ValueError as exc:
        assert "diverged in epoch 1" in str(exc)
        _assert_params_equal(_params(net), before)
    else:
        assert _all_finite(_params(net))
        assert np.isfinite(net.loss_curve_).all()
        assert np.isfinite(net.predict(X)).all()


# ---------------------------------------------------------------------------
# Divergence.


def _epoch_of(exc):
    """The epoch a divergence error names."""
    match = re.search(r"epoch (\d+)", str(exc))
    assert match, f"the error does not name the epoch: {exc}"
    return int(match.group(1))


def _assert_divergence_message(exc):
    message = str(exc)
    assert re.search(r"diverged in epoch \d+", message), message
    assert "learning_rate" in message and "clip_norm" in message, message


def _regression_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, size=(n, 4))  # not standardized on purpose
    Y = X @ np.array([[1.0], [2.0], [-1.0], [0.5]])
    return X, Y


# Step rules that blow a tanh network up after at least one good epoch (SGD
# on this unscaled problem), or in one step (Adam moves each weight by about
# learning_rate, so only an absurd one diverges).
DIVERGING = {
    "sgd": dict(optimizer="sgd", learning_rate=10.0),
    "sgd-nesterov": dict(optimizer="sgd", learning_rate=10.0, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate={np.float32: 1e30, np.float64: 1e200}),
}


def _diverging_fit(config, dtype, **kwargs):
    """fit's arguments for DIVERGING[config] in dtype."""
    settings = dict(DIVERGING[config])
    if isinstance(settings["learning_rate"], dict):
        settings["learning_rate"] = settings["learning_rate"][dtype]
    return dict(epochs=60, batch_size=10, **settings, **kwargs)


def _diverging_network(dtype):
    return fastmlp.Network([4, 8, 1], activation="tanh", dtype=dtype, random_state=0)


@parametrize_dtype
@pytest.mark.parametrize("config", list(DIVERGING))
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_divergence_names_the_epoch_and_keeps_the_weights_of_its_start(dtype, config, sparse):
    X, Y = _regression_data()
    if sparse:
        X = scipy.sparse.csr_matrix(X)
    kwargs = _diverging_fit(config, dtype)
    net = _diverging_network(dtype)
    with np.errstate(all="ignore"), pytest.raises(ValueError) as info:
        net.fit(X, Y, **kwargs)
    _assert_divergence_message(info.value)
    epoch = _epoch_of(info.value)
    if config != "adam" and dtype is np.float64:
        assert epoch >= 2, "test construction: SGD should survive its first epoch here"

    # Finite weights, equal to those at the start of the diverging epoch:
    # replay the epochs before it from the same seed.
    after = _params(net)
    assert _all_finite(after)
    replay = _diverging_network(dtype)
    if epoch > 1:
        with np.errstate(all="ignore"):
            replay.fit(X, Y, **dict(kwargs, epochs=epoch - 1))
    _assert_params_equal(after, _params(replay))
    # The bookkeeping stops at the last completed epoch.
    assert len(net.loss_curve_) == epoch - 1
    assert np.isfinite(net.loss_curve_).all()
    assert net.grad_norms_.shape == (epoch - 1, net.n_layers_)


@parametrize_dtype
def test_divergence_with_sample_weight_and_l2(dtype):
    X, Y = _regression_data()
    sample_weight = np.linspace(0.0, 2.0, X.shape[0])
    kwargs = _diverging_fit("sgd", dtype, alpha=0.1, sample_weight=sample_weight)
    net = _diverging_network(dtype)
    with np.errstate(all="ignore"), pytest.raises(ValueError) as info:
        net.fit(X, Y, **kwargs)
    _assert_divergence_message(info.value)
    epoch = _epoch_of(info.value)
    replay = _diverging_network(dtype)
    if epoch > 1:
        with np.errstate(all="ignore"):
            replay.fit(X, Y, **dict(kwargs, epochs=epoch - 1))
    _assert_params_equal(_params(net), _params(replay))


@parametrize_dtype
def test_clip_norm_prevents_the_divergence(dtype):
    # The error suggests clip_norm: with it, the same run stays finite.
    X, Y = _regression_data()
    net = _diverging_network(dtype)
    net.fit(X, Y, **_diverging_fit("sgd", dtype, clip_norm=1.0))
    assert len(net.loss_curve_) == 60 and np.isfinite(net.loss_curve_).all()
    assert _all_finite(_params(net)) and np.isfinite(net.predict(X)).all()


@pytest.mark.parametrize("dtype,x", [(np.float32, 1e20), (np.float64, 1e160)], ids=DTYPE_IDS)
def test_clip_norm_clips_a_gradient_whose_norm_overflows_the_dtype(dtype, x):
    # One weight, one sample: z = w x = 1 (finite loss 0.5), dW = x (z - y) = x,
    # a finite gradient whose square overflows the dtype. Clipping must still
    # take a step of length learning_rate * clip_norm along -dW, and the
    # reported gradient norm is x, not infinity.
    X, Y = np.array([[x]]), np.array([[0.0]])
    net = fastmlp.Network([1, 1], activation="identity", dtype=dtype, random_state=0)
    net.coefs_ = [np.array([[1.0 / x]])]
    net.intercepts_ = [np.array([0.0])]
    loss, dW, db = net.loss_and_gradients(X, Y)
    assert loss == pytest.approx(0.5) and np.isfinite(dW[0]).all()
    before = _params(net)
    learning_rate, clip_norm = 0.1, 1.0
    net.fit(X, Y, epochs=1, batch_size=1, learning_rate=learning_rate, clip_norm=clip_norm)
    g = np.concatenate([dW[0].ravel(), db[0].ravel()]).astype(np.float64)
    step = np.concatenate([(a - b).ravel() for a, b in zip(_params(net), before)]).astype(np.float64)
    expected = -learning_rate * clip_norm * g / np.sqrt(np.sum((g / x) ** 2)) / x
    assert_allclose(step, expected, rtol=1e-5, atol=1e-30)
    assert np.isfinite(net.grad_norms_).all()
    assert_allclose(net.grad_norms_, [[x]], rtol=1e-5)


def _assert_fit_raises_or_predicts_finite(fit, predict, params):
    """Either fit raises the divergence error, or the model it leaves predicts finite numbers.

    After a divergence error too the model predicts finite numbers on the data,
    if it did before the call: the weights are those of the start of the
    diverging epoch, or those before the call when that start already overflows
    the outputs (issue 12).
    """
    try:
        with np.errstate(all="ignore"):
            finite_before = np.isfinite(predict()).all()
    except NotFittedError:  # (an estimator's first fit: its initial weights, which are finite here)
        finite_before = True
    try:
        with np.errstate(all="ignore"):
            fit()
    except ValueError as exc:
        _assert_divergence_message(exc)
        with np.errstate(all="ignore"):
            P = predict()
        assert np.isfinite(P).all() or not finite_before, (
            f"fit raised the divergence error, but the model it left predicts NaN or infinity on the data "
            f"({np.count_nonzero(~np.isfinite(P))} of {P.size} values): {exc}"
        )
    else:
        P = predict()
        assert np.isfinite(P).all(), (
            f"fit returned normally, but the model predicts NaN or infinity on the data it was trained on "
            f"({np.count_nonzero(~np.isfinite(P))} of {P.size} values)"
        )
    assert _all_finite(params())


@parametrize_dtype
@parametrize_output
@pytest.mark.parametrize("activation", ["identity", "tanh", "relu"])
@pytest.mark.parametrize("learning_rate", [1e-2, 1.0, 1e2, 1e4, 1e9, 1e15, 1e29])
def test_a_fit_that_returns_never_predicts_nan(dtype, pair, activation, learning_rate):
    # Unscaled inputs and large steps: whatever the learning rate, fit either
    # raises the divergence error or leaves a model with finite predictions on
    # the data it was trained on. (The weights may be finite and yet overflow
    # the forward pass: a check of the weights alone is not enough.)
    output_activation, loss = pair
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 100, size=(40, 3))
    n_out = 2 if output_activation == "softmax" else 1
    Y = make_targets(output_activation, (40, n_out), rng, loss)
    net = fastmlp.Network([3, 5, n_out], activation=activation, output_activation=output_activation, loss=loss,
                          dtype=dtype, random_state=0)
    _assert_fit_raises_or_predicts_finite(
        lambda: net.fit(X, Y, epochs=2, batch_size=8, learning_rate=learning_rate),
        lambda: net.predict(X), lambda: _params(net))


def test_a_fit_that_returns_never_predicts_nan_softmax_float32():
    # A case of the above, kept as found: one epoch leaves finite weights
    # (|W| ~ 4e18) whose logits overflow float32, so softmax gives NaN.
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 100, size=(40, 3))
    Y = np.eye(2)[rng.integers(0, 2, 40)]
    net = fastmlp.Network([3, 5, 2], activation="identity", output_activation="softmax", loss="log_loss",
                          dtype="float32", random_state=0)
    _assert_fit_raises_or_predicts_finite(
        lambda: net.fit(X, Y, epochs=1, batch_size=8, learning_rate=100.0),
        lambda: net.predict(X), lambda: _params(net))


# The estimators: scikit-learn's solver="sgd" with a huge initial learning
# rate on unscaled data. (scikit-learn leaves NaN in coefs_ here.)
ESTIMATOR_DIVERGING = {
    ("MLPRegressor", "float32"): 1e6,
    ("MLPRegressor", "float64"): 1e6,
    ("MLPClassifier", "float32"): 1e6,
    ("MLPClassifier", "float64"): 1e50,
}
ESTIMATORS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}


def _estimator_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1000, size=(200, 5))
    y_class = (X[:, 0] > 500).astype(int) + (X[:, 1] > 500)
    y_reg = X @ rng.normal(size=5)
    return X, y_class, y_reg


def _make_estimator(name, dtype, **kwargs):
    params = dict(hidden_layer_sizes=(8,), solver="sgd", max_iter=50, random_state=0, dtype=dtype)
    params.update(kwargs)
    return ESTIMATORS[name](**params)


@pytest.mark.parametrize("name,dtype", list(ESTIMATOR_DIVERGING), ids=lambda v: str(v))
def test_estimator_divergence_raises_and_keeps_finite_weights(name, dtype):
    X, y_class, y_reg = _estimator_data()
    y = y_class if name == "MLPClassifier" else y_reg
    learning_rate_init = ESTIMATOR_DIVERGING[(name, dtype)]
    est = _make_estimator(name, dtype, learning_rate_init=learning_rate_init)
    with np.errstate(all="ignore"), pytest.raises(ValueError) as info:
        est.fit(X, y)
    _assert_divergence_message(info.value)
    epoch = _epoch_of(info.value)
    after = _params(est)
    assert _all_finite(after)
    predict = est.predict_proba if name == "MLPClassifier" else est.predict
    assert np.isfinite(predict(X)).all()
    if "before this call" in str(info.value):
        # the start of that epoch already overflowed the outputs: the weights from before the fit
        # (whether it does is a matter of magnitudes, not met by these settings from seed 0)
        assert est.n_iter_ == 0 and est.loss_curve_ == []
        return
    assert est.n_iter_ == epoch - 1 and len(est.loss_curve_) == epoch - 1
    # The weights of the start of the diverging epoch: a replay of the epochs before it.
    assert epoch > 1, "test construction: these settings should survive their first epoch"
    replay = _make_estimator(name, dtype, learning_rate_init=learning_rate_init, max_iter=epoch - 1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay.fit(X, y)
    _assert_params_equal(after, _params(replay))


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("learning_rate_init", [10.0, 1e6, 1e12, 1e30, 1e100])
def test_estimator_fit_that_returns_never_predicts_nan(name, dtype, solver, learning_rate_init):
    X, y_class, y_reg = _estimator_data()
    y = y_class if name == "MLPClassifier" else y_reg
    est = _make_estimator(name, dtype, solver=solver, learning_rate_init=learning_rate_init, max_iter=20)
    predict = est.predict_proba if name == "MLPClassifier" else est.predict
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _assert_fit_raises_or_predicts_finite(lambda: est.fit(X, y), lambda: predict(X), lambda: _params(est))



def _assert_saves_and_loads(est, tmp_path, X):
    """est saves, loads, and the loaded model predicts what est predicts."""
    est.save(tmp_path / "model.fmlp")
    assert_array_equal(fastmlp.load(tmp_path / "model.fmlp").predict(X), est.predict(X))


# ---------------------------------------------------------------------------
# Ctrl-C.

# Long enough (tens of ms per epoch) that the interrupt lands inside the
# compiled batch loop, where it matters; short enough that a fit which ignored
# it would still end (and fail the test) in seconds rather than hang.
INTERRUPT_LAYERS = [32, 64, 64, 4]
INTERRUPT_FIT = dict(batch_size=32, optimizer="sgd", learning_rate=1e-3, momentum=0.9)
INTERRUPT_AFTER_EPOCHS = 2
MAX_EPOCHS = 40
WAIT = 60.0  # seconds: the longest the interrupting thread waits for the fit to get going


def _interrupt_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12000, INTERRUPT_LAYERS[0]))
    Y = rng.normal(size=(12000, INTERRUPT_LAYERS[-1]))
    return X, Y


class _EpochCounter:
    """Wraps _engine.train_epoch: counts the epochs started and flags the one to interrupt."""

    def __init__(self, function, interrupt_at):
        self.function = function
        self.interrupt_at = interrupt_at
        self.started = 0
        self.reached = threading.Event()

    def __call__(self, *args, **kwargs):
        self.started += 1
        if self.started == self.interrupt_at:
            self.reached.set()
        return self.function(*args, **kwargs)


@contextlib.contextmanager
def _ctrl_c_during(counter, delay=0.01):
    """Send SIGINT (as Ctrl-C does) from another thread once `counter` reaches its epoch.

    Our own handler raises KeyboardInterrupt only while the block runs, so a
    signal that arrives late can never escape into pytest; the thread sends at
    most one signal and is joined before the old handler comes back. Yields a
    dict whose "sent_at" becomes the number of epochs started when the signal
    went out.
    """
    state = {"armed": True, "sent_at": None}
    stop = threading.Event()

    def handler(signum, frame):
        if state["armed"]:
            raise KeyboardInterrupt

    def send():
        if counter.reached.wait(WAIT) and not stop.wait(delay):
            state["sent_at"] = counter.started
            signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, handler)
    thread = threading.Thread(target=send, name="ctrl-c", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state["armed"] = False  # from here on, a signal is ignored: nothing escapes into pytest
        stop.set()
        counter.reached.set()
        thread.join()
        signal.signal(signal.SIGINT, previous)


def _interrupt_network(seed=0):
    return fastmlp.Network(INTERRUPT_LAYERS, activation="tanh", random_state=seed)


def test_ctrl_c_stops_network_fit_within_an_epoch_and_keeps_the_last_completed_epoch(monkeypatch):
    X, Y = _interrupt_data()
    counter = _EpochCounter(fastmlp.network._engine.train_epoch, INTERRUPT_AFTER_EPOCHS + 1)
    monkeypatch.setattr(fastmlp.network._engine, "train_epoch", counter)
    net = _interrupt_network()
    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_during(counter) as state:
            net.fit(X, Y, epochs=MAX_EPOCHS, **INTERRUPT_FIT)
    assert state["sent_at"] is not None, "the interrupting thread never sent the signal"
    # Stopped within one epoch of the signal.
    assert counter.started <= state["sent_at"] + 1
    completed = len(net.loss_curve_)
    assert completed <= counter.started and completed < MAX_EPOCHS
    assert net.grad_norms_.shape == (completed, net.n_layers_)
    assert np.isfinite(net.loss_curve_).all()
    # The weights are finite and those of the last completed epoch: a replay of
    # that many epochs from the same seed.
    after = _params(net)
    assert _all_finite(after)
    monkeypatch.undo()
    replay = _interrupt_network()
    if completed:
        replay.fit(X, Y, epochs=completed, **INTERRUPT_FIT)
    _assert_params_equal(after, _params(replay))
    # And the model is usable.
    assert np.isfinite(net.predict(X[:10])).all()


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_ctrl_c_in_estimator_fit_warns_and_returns_a_usable_model(monkeypatch, name):
    X, Y = _interrupt_data()
    y = Y.argmax(axis=1) if name == "MLPClassifier" else Y[:, 0]
    counter = _EpochCounter(fastmlp.network._engine.train_epoch, INTERRUPT_AFTER_EPOCHS + 1)
    monkeypatch.setattr(fastmlp.network._engine, "train_epoch", counter)
    params = dict(hidden_layer_sizes=(64, 64), solver="sgd", batch_size=32, learning_rate_init=1e-3,
                  max_iter=MAX_EPOCHS, tol=0.0, n_iter_no_change=MAX_EPOCHS, random_state=0)
    est = ESTIMATORS[name](**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _ctrl_c_during(counter) as state:
            returned = est.fit(X, y)
    assert state["sent_at"] is not None, "the interrupting thread never sent the signal"
    assert returned is est
    messages = [str(w.message) for w in caught]
    assert "Training interrupted by user." in messages, messages
    assert counter.started <= state["sent_at"] + 1
    # A usable model with consistent bookkeeping.
    completed = est.n_iter_
    assert completed < MAX_EPOCHS and len(est.loss_curve_) == completed
    after = _params(est)
    assert _all_finite(after)
    predictions = est.predict(X[:50])
    assert predictions.shape == (50,)
    if name == "MLPClassifier":
        assert set(np.unique(predictions)) <= set(est.classes_)
        assert np.isfinite(est.predict_proba(X[:50])).all()
    else:
        assert np.isfinite(predictions).all()
    # The weights are those of the last completed epoch: a replay of that many.
    monkeypatch.undo()
    if completed:
        replay = ESTIMATORS[name](**dict(params, max_iter=completed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            replay.fit(X, y)
        _assert_params_equal(after, _params(replay))


def test_ctrl_c_in_an_lbfgs_fit_keeps_the_last_recorded_iteration(monkeypatch, tmp_path):
    # found by probing: the weights were the line search's last trial point (not the record's), and best_loss_
    # stayed infinite, so the returned model could not be saved and loaded
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = np.sin(X @ rng.standard_normal(5))
    original, calls = fastmlp.Network._loss_and_gradients, [0]

    def interrupted(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == 40:  # (Ctrl-C seen when an engine call returns, inside L-BFGS's line search or not)
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(fastmlp.Network, "_loss_and_gradients", interrupted)
    est = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=300, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X, y)
    monkeypatch.undo()
    assert 0 < est.n_iter_ == len(est.loss_curve_) < 300
    loss_now = est._network.loss_and_gradients(X, y, alpha=est.alpha)[0]
    assert loss_now == est.loss_curve_[-1] == est.loss_
    assert est.best_loss_ == min(est.loss_curve_)
    _assert_saves_and_loads(est, tmp_path, X)


def test_ctrl_c_while_validating_keeps_the_last_recorded_epoch(monkeypatch):
    # found by probing: an interrupt in the validation's scoring (after the epoch trained, before it was
    # recorded) left the weights one epoch ahead of the record
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = np.sin(X @ rng.standard_normal(5))
    calls = [0]

    def scorer(est, X_, y_):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return 0.0

    kw = dict(hidden_layer_sizes=(16,), max_iter=10, solver="sgd", shuffle=False, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw, scoring=scorer).fit(X[:150], y[:150], X_val=X[150:], y_val=y[150:])
    assert est.n_iter_ == len(est.loss_curve_) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = MLPRegressor(**dict(kw, max_iter=2)).fit(X[:150], y[:150])
    _assert_params_equal(_params(est), _params(replay))
    # Network.fit: the same, Ctrl-C propagating
    net = fastmlp.Network([5, 16, 1], random_state=0)
    replay = fastmlp.Network([5, 16, 1], random_state=0).fit(X[:150], y[:150], epochs=2, shuffle=False)
    original, calls[0] = fastmlp._training.Validation.evaluate, 0

    def evaluate(self, network, n_threads=None):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return original(self, network, n_threads)

    monkeypatch.setattr(fastmlp._training.Validation, "evaluate", evaluate)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X[:150], y[:150], epochs=10, shuffle=False, validation_data=(X[150:], y[150:]))
    assert len(net.loss_curve_) == 2
    _assert_params_equal(_params(net), _params(replay))


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_a_scorer_that_raises_leaves_the_last_recorded_epoch(solver):
    # found by probing: as Ctrl-C did before its fix, any exception of the validation's scorer (a scorer of
    # the user's, or scikit-learn's neg_log_loss on a y_val without one of the classes) left the weights (and
    # Adam's t) one epoch ahead of the record; L-BFGS left them at the line search's trial point
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    calls = [0]

    def scorer(est, X_, y_):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("boom")
        return 0.0

    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, shuffle=False, random_state=0)
    est = MLPClassifier(**kw, scoring=scorer)
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(X[:150], y[:150], X_val=X[150:], y_val=y[150:])
    assert est.n_iter_ == len(est.loss_curve_) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = MLPClassifier(**dict(kw, max_iter=2)).fit(X[:150], y[:150])
    _assert_params_equal(_params(est), _params(replay))
    if solver != "lbfgs":
        assert est._trainer.settings["step"] == replay._trainer.settings["step"]

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_validation_that_raises_leaves_the_network_at_the_last_recorded_epoch(monkeypatch, optimizer):
    # Network.fit: the same (the exception propagating)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = np.sin(X @ rng.standard_normal(5))
    kw = dict(shuffle=False, optimizer=optimizer)
    net = fastmlp.Network([5, 8, 1], random_state=0)
    replay = fastmlp.Network([5, 8, 1], random_state=0).fit(X[:150], y[:150], epochs=2, **kw)
    original, calls = fastmlp._training.Validation.evaluate, [0]

    def evaluate(self, network, n_threads=None):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("boom")
        return original(self, network, n_threads)

    monkeypatch.setattr(fastmlp._training.Validation, "evaluate", evaluate)
    with pytest.raises(RuntimeError, match="boom"):
        net.fit(X[:150], y[:150], epochs=5, validation_data=(X[150:], y[150:]), **kw)
    assert len(net.loss_curve_) == 2
    _assert_params_equal(_params(net), _params(replay))


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the flush is x86-64's (MXCSR)")
def test_training_flushes_subnormals_and_gives_the_thread_its_mode_back():
    # found in the ensembles benchmark: once W2 fit its data, its output deltas fell below float32's smallest
    # normal number and every epoch slowed down (27 -> 60 ms); training now flushes subnormals to zero (FTZ, DAZ)
    # on the threads it runs on, and leaves each thread's mode as it found it
    tiny = np.float32(1e-39)  # subnormal in float32
    net = fastmlp.Network([1, 1], dtype="float32", random_state=0)
    net.coefs_, net.intercepts_ = [np.zeros((1, 1))], [np.zeros(1)]
    X, Y = np.ones((4, 1), dtype=np.float32), np.full((4, 1), tiny)
    net.fit(X, Y, epochs=1, batch_size=4, learning_rate=1.0)
    assert net.grad_norms_[0, 0] == 0.0 and net.intercepts_[0][0] == 0.0  # (the subnormal target read as 0)
    loss, grads = net.loss_and_gradients(X, Y)[:2]
    assert loss == 0.0 and not np.any(grads)
    reference_net = reference.Network([1, 1], dtype="float32", random_state=0)  # (NumPy: no flush)
    reference_net.coefs_, reference_net.intercepts_ = [np.zeros((1, 1))], [np.zeros(1)]
    reference_net.fit(X, Y, epochs=1, batch_size=4, learning_rate=1.0)
    assert reference_net.intercepts_[0][0] > 0.0  # (the subnormal step taken)
    assert tiny / np.float32(2) != 0  # this thread's mode as before: NumPy's float32 keeps its subnormals


def _raising_on_call(function, at, exception=KeyboardInterrupt):
    """function, raising `exception` after its call number `at` (Ctrl-C seen in the Python just after it)."""
    calls = [0]

    def wrapped(*args, **kwargs):
        out = function(*args, **kwargs)
        calls[0] += 1
        if calls[0] == at:
            raise exception
        return out

    return wrapped


def test_ctrl_c_between_the_compiled_epoch_and_its_record_keeps_the_last_recorded_epoch(monkeypatch):
    # found by CI (a no-OpenMP build): a SIGINT that arrived after the compiled epoch's last check for signals
    # was seen in the Python after it, before the epoch was recorded: the weights (and Adam's state) one epoch
    # ahead of the record, a replay of n_iter_ epochs differing
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = np.sin(X @ rng.standard_normal(5))
    kw = dict(shuffle=False, optimizer="adam")
    replay = fastmlp.Network([5, 8, 1], random_state=0).fit(X, y, epochs=2, **kw)
    net = fastmlp.Network([5, 8, 1], random_state=0)
    monkeypatch.setattr(fastmlp._training, "epoch_total_weight",
                        _raising_on_call(fastmlp._training.epoch_total_weight, 3))
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, **kw)
    monkeypatch.undo()
    assert len(net.loss_curve_) == 2 and net.grad_norms_.shape[0] == 2
    _assert_params_equal(_params(net), _params(replay))
    net.fit(X, y, epochs=1, **kw)  # and trains on from there as the replay does
    replay.fit(X, y, epochs=1, **kw)
    _assert_params_equal(_params(net), _params(replay))


def test_ctrl_c_in_the_schedules_step_takes_back_the_schedule_and_the_best(monkeypatch):
    # the same window later: the epoch validated, its best weights kept and the schedule stepped, not yet
    # recorded; the best weights (returned at the end with early stopping) and the schedule's run must be
    # those of the epochs recorded
    from fastmlp import schedules

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = np.sin(X @ rng.standard_normal(5))
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, random_state=0, early_stopping=True,
              n_iter_no_change=50, learning_rate=schedules.ReduceOnPlateau(patience=0, factor=0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = MLPRegressor(**kw, max_iter=2).fit(X, y)
    monkeypatch.setattr(schedules._PlateauRun, "end_epoch", _raising_on_call(schedules._PlateauRun.end_epoch, 3))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw, max_iter=10).fit(X, y)
    monkeypatch.undo()
    assert est.n_iter_ == len(est.loss_curve_) == len(est.validation_scores_) == 2
    assert est.best_validation_score_ == replay.best_validation_score_
    _assert_params_equal(_params(est), _params(replay))
    (run, epoch), (replay_run, replay_epoch) = est._lr_run, replay._lr_run
    assert epoch == replay_epoch == 2 and run.get_state() == replay_run.get_state()


def test_ctrl_c_between_the_pass_and_a_members_record_keeps_each_members_last_recorded_epoch(monkeypatch):
    # the one pass: Ctrl-C after the epoch's validations, while the members record it one after another (the
    # first recorded, the second not): each member's weights those of its own record
    from fastmlp.ensemble_estimators import MLPEnsembleRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = np.sin(X @ rng.standard_normal(5))
    # the third member's record of epoch 3: the hooks' epoch end of its loop, after its history's append
    # (members 0 and 1 recorded epoch 3, member 2 recorded it and was stopped in its hooks, member 3 not yet)
    calls = [0]
    original = fastmlp._training.EpochLoop._dispatch

    def dispatch(self, event, *args):
        if event == "on_epoch_end":
            calls[0] += 1
            if calls[0] == 11:
                raise KeyboardInterrupt
        return original(self, event, *args)

    monkeypatch.setattr(fastmlp._training.EpochLoop, "_dispatch", dispatch)
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, batch_size=50, max_iter=6)
    with pytest.warns(UserWarning, match="interrupted"):
        ens = MLPEnsembleRegressor(**kw, n_members=4, random_state=0).fit(X, y)
    monkeypatch.undo()
    assert list(ens.n_iter_) == [3, 3, 3, 2]
    for member, n in zip(ens.estimators_, ens.n_iter_):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            alone = MLPRegressor(**dict(kw, max_iter=int(n)), random_state=member.random_state).fit(X, y)
        assert_allclose(np.concatenate([c.ravel() for c in member.coefs_]),
                        np.concatenate([c.ravel() for c in alone.coefs_]), rtol=0, atol=1e-10)
    assert ens.predict(X).shape == (200,)


def _once(function, exception=KeyboardInterrupt):
    """function, raising `exception` instead of running the first time it is called."""
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 1:
            raise exception
        return function(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_ctrl_c_in_the_hooks_fit_end_leaves_a_complete_record(monkeypatch, tmp_path, solver):
    # found by probing: a Ctrl-C that landed in the end of a fit (the hooks' fit end, which writes the estimator's
    # curves) left loss_curve_ empty beside n_iter_ 5, a model saved and not loaded; with L-BFGS the
    # KeyboardInterrupt escaped fit. The end now runs to its end, then the fit warns and returns
    from fastmlp import estimators

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = np.sin(X @ rng.standard_normal(5))
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, shuffle=False, random_state=0)
    monkeypatch.setattr(estimators._Record, "on_fit_end", _once(estimators._Record.on_fit_end))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw).fit(X, y)
    monkeypatch.undo()
    assert est.n_iter_ == len(est.loss_curve_) == est.grad_norms_.shape[0] == len(est.history_["loss"]) > 0
    assert np.isfinite(est.best_loss_)
    _assert_saves_and_loads(est, tmp_path, X)


def test_ctrl_c_as_a_fit_ends_still_returns_early_stoppings_best_weights(monkeypatch):
    # found by probing: a Ctrl-C before the end of the call put the best epoch's weights back kept the last
    # epoch's, while best_validation_score_ named the best one's
    from fastmlp import _training

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = np.sin(X @ rng.standard_normal(5))
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, random_state=0, early_stopping=True,
              n_iter_no_change=50, max_iter=8, learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = MLPRegressor(**kw).fit(X, y)
    monkeypatch.setattr(_training.EpochLoop, "finish", _once(_training.EpochLoop.finish))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw).fit(X, y)
    monkeypatch.undo()
    assert est.n_iter_ == replay.n_iter_ == 8
    assert est.best_validation_score_ == replay.best_validation_score_
    _assert_params_equal(_params(est), _params(replay))


def test_ctrl_c_in_an_lbfgs_iterations_record_takes_it_back_whole(monkeypatch, tmp_path):
    # found by probing: a Ctrl-C in the middle of the record of L-BFGS's third iteration (the loss appended, the
    # rest not) left a history of 3 losses, 2 gradient norms and the weights of iteration 2: saved, not loaded
    from fastmlp import _training

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = np.sin(X @ rng.standard_normal(5))
    original, calls = _training.EpochLoop._append, [0]

    def append(self, logs):
        calls[0] += 1
        if calls[0] == 3:
            self.history["loss"].append(logs["loss"])  # (what a Ctrl-C after the first append leaves)
            raise KeyboardInterrupt
        return original(self, logs)

    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
    monkeypatch.setattr(_training.EpochLoop, "_append", append)
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw, max_iter=50).fit(X, y)
    monkeypatch.undo()
    assert est.n_iter_ == len(est.loss_curve_) == est.grad_norms_.shape[0] == len(est.history_["loss"]) == 2
    assert all(len(v) == 2 for v in est.history_.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = MLPRegressor(**kw, max_iter=2).fit(X, y)
    _assert_params_equal(_params(est), _params(replay))
    _assert_saves_and_loads(est, tmp_path, X)


def _adam_regression_and_replay(epochs, **params):
    """(X, y, the estimator's parameters, an estimator fitted on them for `epochs` epochs)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = np.sin(X @ rng.standard_normal(5))
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, random_state=0, n_iter_no_change=50, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = MLPRegressor(**kw, max_iter=epochs).fit(X, y)
    return X, y, kw, replay


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_in_the_stopping_rule_is_made_good_at_the_fits_end(monkeypatch, tmp_path, early_stopping):
    # found by probing: a Ctrl-C after an epoch was recorded and before the stopping rule saw it left
    # validation_scores_ one short of n_iter_, or best_loss_ at inf after the first epoch (a file load refused)
    X, y, kw, replay = _adam_regression_and_replay(1, early_stopping=early_stopping)
    monkeypatch.setattr(MLPRegressor, "_update_no_improvement_count",
                        _once(MLPRegressor._update_no_improvement_count))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw, max_iter=5).fit(X, y)
    monkeypatch.undo()
    assert est.n_iter_ == len(est.loss_curve_) == 1
    for name in ("validation_scores_", "best_validation_score_", "best_loss_", "_no_improvement_count"):
        assert getattr(est, name) == getattr(replay, name), name
    _assert_saves_and_loads(est, tmp_path, X)


def test_ctrl_c_before_an_epoch_began_does_not_apply_the_stopping_rule_twice(monkeypatch, tmp_path):
    # found by probing the fix above: a Ctrl-C after an epoch's hooks began and before it changed anything
    # (nothing to take back) applied the rule again to the epoch before: validation_scores_ one longer than
    # n_iter_, a file load refused
    from fastmlp import _training

    X, y, kw, replay = _adam_regression_and_replay(2, early_stopping=True)
    monkeypatch.setattr(_training.Trainer, "size_for",
                        _raising_on_call(_training.Trainer.size_for, 3))  # (epoch 3, before it opens)
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw, max_iter=5).fit(X, y)
    monkeypatch.undo()
    assert est.n_iter_ == len(est.validation_scores_) == 2
    assert est._no_improvement_count == replay._no_improvement_count
    _assert_saves_and_loads(est, tmp_path, X)


def test_ctrl_c_just_before_a_fit_ends_still_ends_it(monkeypatch):
    # found by probing: a Ctrl-C in the few steps before the end of the fit began skipped the end (the curves
    # not written, early stopping's weights not put back)
    from fastmlp import _training

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = np.sin(X @ rng.standard_normal(5))
    ending = _training.EpochLoop._ending
    monkeypatch.setattr(_training.EpochLoop, "_ending", _once(ending))
    net = fastmlp.Network([5, 8, 1], random_state=0)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=3, shuffle=False)
    assert len(net.loss_curve_) == 3 and net.grad_norms_.shape == (3, 2)
    monkeypatch.setattr(_training.EpochLoop, "_ending", _once(ending))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, shuffle=False, random_state=0).fit(X, y)
    assert est.n_iter_ == len(est.loss_curve_) == est.grad_norms_.shape[0] == 3
