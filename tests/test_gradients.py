"""Gradients: central finite differences in float64 (scikit-learn's
test_mlp.py::test_gradient), and the engine against the NumPy reference.

Every hidden activation in the registry is crossed with every output pair, so
a new registry entry is checked without editing this file.
"""
import numpy as np
from _helpers import LOSS_PARAMS, make_targets
import pytest

import fastmlp
from fastmlp import _engine, _registry
from fastmlp import reference

ACTIVATIONS = sorted(_registry.ACTIVATIONS)
OUTPUTS = list(_registry.OUTPUTS)
IMPLEMENTATIONS = {"engine": fastmlp.Network, "reference": reference.Network}

# Engine vs reference, same weights and data: relative to each array's scale.
PARITY_RTOL = {np.float32: 1e-4, np.float64: 1e-10}

LAYER_SIZES = [5, 4, 3, 3]
ALPHA = 0.3


def _output_id(key):
    return "+".join(key)


def _data(key, n_samples, n_inputs, n_outputs, seed):
    """X and targets fitting the output pair (see _helpers.make_targets)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_inputs))
    return X, make_targets(key[0], (n_samples, n_outputs), rng, key[1])


def _pair(key):
    """Network's keywords for an output pair (a loss with a parameter gets a non-default one)."""
    return dict(output_activation=key[0], loss=key[1], loss_param=LOSS_PARAMS.get(key[1]))


def _network(cls, activation, key, layer_sizes=LAYER_SIZES, dtype="float64", seed=0):
    net = cls(layer_sizes, activation=activation, **_pair(key), dtype=dtype, random_state=seed)
    # Random, not-small weights and biases: no unit sits on a relu kink, and
    # every activation works away from its linear regime.
    rng = np.random.default_rng(seed + 100)
    net.coefs_ = [rng.standard_normal(W.shape) for W in net.coefs_]
    net.intercepts_ = [rng.standard_normal(b.shape) * 0.5 for b in net.intercepts_]
    net.prelu_slopes_ = [rng.uniform(0.1, 0.5, a.shape) for a in net.prelu_slopes_]
    return net


def _copy_weights(src, dst):
    dst.coefs_ = [np.asarray(W, dtype=np.float64) for W in src.coefs_]
    dst.intercepts_ = [np.asarray(b, dtype=np.float64) for b in src.intercepts_]
    dst.prelu_slopes_ = [np.asarray(a, dtype=np.float64) for a in src.prelu_slopes_]


GROUPS = ("dW", "db", "dslope")


def _param_groups(net):
    """The parameters in the order of loss_and_gradients' gradient lists."""
    return (net.coefs_, net.intercepts_, net.prelu_slopes_)


def _grad_groups(result):
    """(coef_grads, intercept_grads, slope_grads) from loss_and_gradients' 3- or 4-tuple."""
    assert len(result) in (3, 4)
    return tuple(result[1:]) + (() if len(result) == 4 else ([],))


def _numerical_gradient(net, X, Y, alpha, eps=1e-6):
    """Central differences of loss_and_gradients' loss over every weight, bias and PReLU slope.

    coefs_, intercepts_ and prelu_slopes_ are live views into the model, so
    each parameter is nudged in place and restored.
    """
    result = []
    for params in _param_groups(net):
        layer_grads = []
        for p in params:
            flat = p.reshape(-1)
            assert np.shares_memory(flat, p)
            g = np.empty(flat.size)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + eps
                loss_plus = net.loss_and_gradients(X, Y, alpha)[0]
                flat[i] = old - eps
                loss_minus = net.loss_and_gradients(X, Y, alpha)[0]
                flat[i] = old
                g[i] = (loss_plus - loss_minus) / (2 * eps)
            layer_grads.append(g.reshape(p.shape))
        result.append(layer_grads)
    return result


def _assert_parity(actual, desired, rtol, what):
    """Each array within rtol of the other, relative to the array's largest entry."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    scale = float(np.max(np.abs(desired)))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=what)


# ---------------------------------------------------------------------------
# Finite differences, float64


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("key", OUTPUTS, ids=_output_id)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_finite_differences(impl, key, activation):
    net = _network(IMPLEMENTATIONS[impl], activation, key)
    X, Y = _data(key, 7, LAYER_SIZES[0], LAYER_SIZES[-1], seed=1)
    params_before = [p.copy() for group in _param_groups(net) for p in group]

    result = net.loss_and_gradients(X, Y, alpha=ALPHA)
    loss = result[0]
    numerical = _numerical_gradient(net, X, Y, ALPHA)

    assert np.isfinite(loss) and loss > 0
    assert len(result[1]) == len(result[2]) == net.n_layers_
    assert (len(result) == 4) == _registry.ACTIVATIONS[net.activation].learnable_slope
    for name, grads, params, num in zip(GROUPS, _grad_groups(result), _param_groups(net), numerical):
        assert len(grads) == len(params)
        for l, (g, p, n) in enumerate(zip(grads, params, num)):
            assert g.shape == p.shape
            np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8, err_msg=f"{name}[{l}]")
    # nothing was left perturbed, and the gradient did not move the weights
    for before, after in zip(params_before, [p for group in _param_groups(net) for p in group]):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("key", OUTPUTS, ids=_output_id)
def test_l2_term_of_loss_and_gradient(impl, key):
    # L(alpha) - L(0) = alpha / (2 n) sum ||W||^2 and dW(alpha) - dW(0) = alpha / n W; db unchanged.
    net = _network(IMPLEMENTATIONS[impl], "tanh", key)
    n = 7
    X, Y = _data(key, n, LAYER_SIZES[0], LAYER_SIZES[-1], seed=2)
    loss0, dW0, db0 = net.loss_and_gradients(X, Y, alpha=0.0)
    loss1, dW1, db1 = net.loss_and_gradients(X, Y, alpha=ALPHA)
    penalty = ALPHA / (2 * n) * sum(float(np.sum(W * W)) for W in net.coefs_)
    np.testing.assert_allclose(loss1 - loss0, penalty, rtol=1e-10)
    for l in range(net.n_layers_):
        np.testing.assert_allclose(dW1[l] - dW0[l], ALPHA / n * net.coefs_[l], rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(db1[l], db0[l], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# Engine vs reference: same weights, both dtypes, every activation x output


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("key", OUTPUTS, ids=_output_id)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_engine_matches_reference(dtype, key, activation):
    rtol = PARITY_RTOL[dtype]
    engine = _network(fastmlp.Network, activation, key, dtype=dtype)
    ref = reference.Network(LAYER_SIZES, activation=activation, **_pair(key), dtype=dtype, random_state=1)
    _copy_weights(engine, ref)
    for a, b in zip(list(engine.coefs_) + list(engine.intercepts_), list(ref.coefs_) + list(ref.intercepts_)):
        np.testing.assert_array_equal(a, b)
    X, Y = _data(key, 20, LAYER_SIZES[0], LAYER_SIZES[-1], seed=3)
    X, Y = X.astype(dtype), Y.astype(dtype)

    out_e, out_r = engine.forward(X), ref.forward(X)
    assert out_e.dtype == out_r.dtype == dtype
    _assert_parity(out_e, out_r, rtol, "forward")
    _assert_parity(engine.predict(X), out_r, rtol, "predict")

    result_e = engine.loss_and_gradients(X, Y, alpha=ALPHA)
    result_r = ref.loss_and_gradients(X, Y, alpha=ALPHA)
    np.testing.assert_allclose(result_e[0], result_r[0], rtol=rtol, err_msg="loss")
    for name, ge, gr in zip(GROUPS, _grad_groups(result_e), _grad_groups(result_r)):
        assert len(ge) == len(gr)
        for l, (a, b) in enumerate(zip(ge, gr)):
            _assert_parity(a, b, rtol, f"{name}[{l}]")


@pytest.mark.parametrize("key", OUTPUTS, ids=_output_id)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_engine_matches_float64(key, activation):
    # A float32 network against the float64 reference and the float64 engine
    # with the same weights cast up, on the same (float32-representable) data.
    rtol = PARITY_RTOL[np.float32]
    net32 = _network(fastmlp.Network, activation, key, dtype=np.float32)
    X, Y = _data(key, 20, LAYER_SIZES[0], LAYER_SIZES[-1], seed=4)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    X64, Y64 = X32.astype(np.float64), Y32.astype(np.float64)
    result32 = net32.loss_and_gradients(X32, Y32, alpha=ALPHA)
    out32 = net32.forward(X32)
    for cls in (fastmlp.Network, reference.Network):
        net64 = cls(LAYER_SIZES, activation=activation, **_pair(key), dtype=np.float64, random_state=2)
        _copy_weights(net32, net64)
        result64 = net64.loss_and_gradients(X64, Y64, alpha=ALPHA)
        name = cls.__module__
        np.testing.assert_allclose(result32[0], result64[0], rtol=rtol, err_msg=f"loss vs {name}")
        _assert_parity(out32, net64.forward(X64), rtol, f"forward vs {name}")
        for group, g32, g64 in zip(GROUPS, _grad_groups(result32), _grad_groups(result64)):
            for l, (a, b) in enumerate(zip(g32, g64)):
                _assert_parity(a, b, rtol, f"{group}[{l}] vs {name}")


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_dtype_is_network_dtype(impl, dtype):
    key = ("softmax", "log_loss")
    net = _network(IMPLEMENTATIONS[impl], "relu", key, dtype=dtype)
    X, Y = _data(key, 6, LAYER_SIZES[0], LAYER_SIZES[-1], seed=5)
    # float64 input to a float32 network is cast down, not the network up
    loss, dW, db = net.loss_and_gradients(X, Y, alpha=ALPHA)
    assert isinstance(loss, float)
    for g in list(dW) + list(db):
        assert g.dtype == np.dtype(dtype)
    assert net.forward(X).dtype == np.dtype(dtype)
    for p in list(net.coefs_) + list(net.intercepts_):
        assert p.dtype == np.dtype(dtype)


# ---------------------------------------------------------------------------
# More rows than one engine chunk


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("key", OUTPUTS, ids=_output_id)
def test_gradient_over_several_chunks(dtype, key):
    chunk = _engine.CHUNK_ROWS
    n = 2 * chunk + 37  # two full chunks and a short one
    sizes = [3, 4, 2]
    rtol = PARITY_RTOL[dtype]
    engine = _network(fastmlp.Network, "tanh", key, layer_sizes=sizes, dtype=dtype)
    ref = reference.Network(sizes, activation="tanh", **_pair(key), dtype=dtype, random_state=3)
    _copy_weights(engine, ref)
    X, Y = _data(key, n, sizes[0], sizes[-1], seed=6)
    X, Y = X.astype(dtype), Y.astype(dtype)

    loss_e, dW_e, db_e = engine.loss_and_gradients(X, Y, alpha=ALPHA)
    loss_r, dW_r, db_r = ref.loss_and_gradients(X, Y, alpha=ALPHA)
    np.testing.assert_allclose(loss_e, loss_r, rtol=rtol)
    for l in range(engine.n_layers_):
        _assert_parity(dW_e[l], dW_r[l], rtol, f"dW[{l}]")
        _assert_parity(db_e[l], db_r[l], rtol, f"db[{l}]")
    _assert_parity(engine.forward(X), ref.forward(X), rtol, "forward")

    # The chunked mean is the mean over all rows, not over the last chunk:
    # the gradient is the row-weighted average of the gradients on each chunk.
    pieces = [slice(0, chunk), slice(chunk, 2 * chunk), slice(2 * chunk, n)]
    expected_loss = 0.0
    expected_dW = [np.zeros(W.shape) for W in engine.coefs_]
    expected_db = [np.zeros(b.shape) for b in engine.intercepts_]
    for rows in pieces:
        m = rows.stop - rows.start
        loss_p, dW_p, db_p = engine.loss_and_gradients(X[rows], Y[rows])
        expected_loss += loss_p * m / n
        for l in range(engine.n_layers_):
            expected_dW[l] += dW_p[l] * (m / n)
            expected_db[l] += db_p[l] * (m / n)
    loss0, dW0, db0 = engine.loss_and_gradients(X, Y)
    np.testing.assert_allclose(loss0, expected_loss, rtol=rtol)
    for l in range(engine.n_layers_):
        _assert_parity(dW0[l], expected_dW[l], rtol, f"chunked dW[{l}]")
        _assert_parity(db0[l], expected_db[l], rtol, f"chunked db[{l}]")


def test_gradient_over_several_chunks_matches_finite_differences():
    key = ("logistic", "log_loss")
    sizes = [2, 3, 2]
    n = _engine.CHUNK_ROWS + 5
    net = _network(fastmlp.Network, "swish", key, layer_sizes=sizes)
    X, Y = _data(key, n, sizes[0], sizes[-1], seed=7)
    loss, dW, db = net.loss_and_gradients(X, Y, alpha=ALPHA)
    num_dW, num_db, _ = _numerical_gradient(net, X, Y, ALPHA)
    for l in range(net.n_layers_):
        np.testing.assert_allclose(dW[l], num_dW[l], rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(db[l], num_db[l], rtol=1e-5, atol=1e-8)
