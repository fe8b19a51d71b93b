"""The Network API end to end: the worked example, training, dropout,
determinism, dtypes, parameter views, bookkeeping, engine == reference over
whole epochs, pickling and divergence.

Both ``fastmlp.Network`` (compiled) and ``fastmlp.reference.Network`` (NumPy)
are run where the contract is theirs alike.
"""
import copy
import pickle
import re

import numpy as np
from _helpers import LOSS_PARAMS, make_targets
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastmlp
from fastmlp import _engine, _registry, reference
from fastmlp._validation import line_aligned

NETWORKS = [fastmlp.Network, reference.Network]
NETWORK_IDS = ["engine", "reference"]
DTYPES = [np.float32, np.float64]
# Engine vs reference (and vs hand-worked numbers), relative.
RTOL = {np.float32: 1e-4, np.float64: 1e-10}

parametrize_network = pytest.mark.parametrize("Net", NETWORKS, ids=NETWORK_IDS)
parametrize_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])


def _params(net):
    """Copies of all weights and biases, in order."""
    return [a.copy() for a in list(net.coefs_) + list(net.intercepts_)]


def _assert_params_equal(net, params):
    for got, want in zip(list(net.coefs_) + list(net.intercepts_), params):
        assert_array_equal(got, want)


def _assert_close(got, want, rtol):
    """Relative agreement, scaled by the largest entry (entries near 0 are not divided by ~0)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert_allclose(got, want, rtol=rtol, atol=rtol * max(np.max(np.abs(want)), 1e-30))


# ---------------------------------------------------------------------------
# Worked example (house price), sklearn test_fit style.

# The notes write W as (out, in); coefs_ are (in, out), their transposes.
HOUSE_W = [
    np.array([[0.01, -0.02, 0.03], [0.04, 0.05, -0.06]]),
    np.array([[0.1, -0.1], [0.1, 0.1]]),
    np.array([[0.1, 0.1]]),
]
HOUSE_B = [np.array([0.001, -0.001]), np.array([0.01, 0.01]), np.array([0.01])]
HOUSE_X = [[1200.0, 3.0, 10.0]]  # area, rooms, age
HOUSE_Y = [[1.0]]


def _house_network(Net, dtype):
    net = Net([3, 2, 2, 1], activation="relu", dtype=dtype, random_state=0)
    net.coefs_ = [W.T for W in HOUSE_W]
    net.intercepts_ = HOUSE_B
    return net


@parametrize_network
@parametrize_dtype
def test_house_price_worked_example(Net, dtype):
    net = _house_network(Net, dtype)
    # Layer 1, z1 = W1 x + b1:
    #   z1_1 = 0.01*1200 - 0.02*3 + 0.03*10 + 0.001 = 12 - 0.06 + 0.3 + 0.001 = 12.241
    #   z1_2 = 0.04*1200 + 0.05*3 - 0.06*10 - 0.001 = 48 + 0.15 - 0.6 - 0.001 = 47.549
    #   a1 = relu(z1) = [12.241, 47.549]
    # Layer 2, z2 = W2 a1 + b2:
    #   z2_1 = 0.1*12.241 - 0.1*47.549 + 0.01 = 1.2241 - 4.7549 + 0.01 = -3.5208
    #   z2_2 = 0.1*12.241 + 0.1*47.549 + 0.01 = 1.2241 + 4.7549 + 0.01 = 5.989
    #   a2 = relu(z2) = [0, 5.989]
    # Layer 3 (identity output), z3 = W3 a2 + b3:
    #   z3 = 0.1*0 + 0.1*5.989 + 0.01 = 0.6089
    # Loss (squared_error, one row): 0.5 * (1 - 0.6089)^2 = 0.5 * 0.3911^2 = 0.07647960...
    # (The notes drop b2 in z2 and get another number; the code follows the math.)
    expected_output = 0.6089
    expected_loss = 0.5 * (1 - 0.6089) ** 2
    rtol = RTOL[dtype] if dtype is np.float64 else 1e-6

    out = net.forward(HOUSE_X)
    assert out.shape == (1, 1) and out.dtype == dtype
    assert_allclose(out[0, 0], expected_output, rtol=rtol)
    assert_allclose(net.predict(HOUSE_X)[0, 0], expected_output, rtol=rtol)

    loss, dW, db = net.loss_and_gradients(HOUSE_X, HOUSE_Y)
    assert_allclose(loss, expected_loss, rtol=rtol)

    # Backward, by hand: delta3 = z3 - y = -0.3911;
    #   dW3 = a2^T delta3 = [0, 5.989 * -0.3911], db3 = -0.3911
    #   delta2 = (delta3 W3) * relu'(z2) = [-0.03911 * 0, -0.03911 * 1] = [0, -0.03911]
    #   db2 = delta2;  dW2 = a1^T delta2 (column 1 zero)
    #   delta1 = (delta2 W2) * relu'(z1) = [-0.03911 * 0.1, -0.03911 * 0.1] (both z1 > 0)
    #   dW1 = x^T delta1;  db1 = delta1
    d3 = expected_output - 1.0
    a1 = np.array([12.241, 47.549])
    a2 = np.array([0.0, 5.989])
    delta2 = np.array([0.0, 0.1 * d3])
    delta1 = delta2 @ HOUSE_W[1]
    grad_rtol = RTOL[dtype] if dtype is np.float64 else 1e-5
    _assert_close(dW[2], np.outer(a2, [d3]), grad_rtol)
    _assert_close(db[2], [d3], grad_rtol)
    _assert_close(dW[1], np.outer(a1, delta2), grad_rtol)
    _assert_close(db[1], delta2, grad_rtol)
    _assert_close(dW[0], np.outer(HOUSE_X[0], delta1), grad_rtol)
    _assert_close(db[0], delta1, grad_rtol)


@parametrize_network
@parametrize_dtype
def test_one_epoch_one_row_is_one_gradient_step(Net, dtype):
    # Defaults (sgd, momentum 0, alpha 0, no clipping), one row, batch_size=1,
    # shuffle=False: fit is exactly W -= learning_rate * dW.
    net = Net([4, 5, 3, 2], activation="tanh", dtype=dtype, random_state=3)
    x = np.array([[0.5, -1.0, 2.0, 0.1]])
    y = np.array([[0.3, -0.7]])
    lr = 0.05
    loss, dW, db = net.loss_and_gradients(x, y)
    before = _params(net)
    net.fit(x, y, epochs=1, batch_size=1, shuffle=False, learning_rate=lr)
    expected = [p - dtype(lr) * g for p, g in zip(before, list(dW) + list(db))]
    for got, want in zip(list(net.coefs_) + list(net.intercepts_), expected):
        assert got.dtype == dtype
        assert_allclose(got, want, rtol=0, atol=1e-15 if dtype is np.float64 else 1e-7)
    assert len(net.loss_curve_) == 1
    assert_allclose(net.loss_curve_[0], loss, rtol=1e-12 if dtype is np.float64 else 1e-6)


# ---------------------------------------------------------------------------
# Learning.

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0], dtype=float)


@parametrize_network
@parametrize_dtype
@pytest.mark.parametrize(
    "fit_kwargs",
    [dict(optimizer="adam", learning_rate=0.05, epochs=300),
     dict(optimizer="sgd", momentum=0.9, learning_rate=0.5, epochs=500)],
    ids=["adam", "sgd-momentum"],
)
def test_xor_is_learned(Net, dtype, fit_kwargs):
    net = Net([2, 8, 1], activation="tanh", output_activation="logistic", loss="log_loss",
              dtype=dtype, random_state=0)
    net.fit(XOR_X, XOR_Y, batch_size=4, **fit_kwargs)
    P = net.predict(XOR_X)
    assert P.shape == (4, 1)
    assert_array_equal(P.ravel() > 0.5, XOR_Y.astype(bool))
    assert net.loss_curve_[-1] < 0.1 < net.loss_curve_[0]


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Y = np.eye(10)[y]
    return train_test_split(X, Y, test_size=0.25, random_state=0, stratify=y)


@parametrize_dtype
@pytest.mark.parametrize(
    "fit_kwargs",
    [dict(optimizer="sgd", learning_rate=0.1, momentum=0.9),
     dict(optimizer="adam", learning_rate=0.001)],
    ids=["sgd-momentum", "adam"],
)
def test_digits_accuracy(digits, dtype, fit_kwargs):
    X_train, X_test, Y_train, Y_test = digits
    net = fastmlp.Network([64, 64, 10], activation="relu", output_activation="softmax", loss="log_loss",
                          dtype=dtype, random_state=0)
    net.fit(X_train, Y_train, epochs=30, batch_size=32, **fit_kwargs)
    P = net.predict(X_test)
    assert P.dtype == dtype
    assert_allclose(P.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = np.mean(P.argmax(axis=1) == Y_test.argmax(axis=1))
    assert accuracy >= 0.95, accuracy
    assert net.loss_curve_[-1] < net.loss_curve_[0]


# ---------------------------------------------------------------------------
# Dropout.


@parametrize_network
@parametrize_dtype
def test_inverted_dropout_keeps_the_expectation(Net, dtype):
    # Identity activations: the output is multilinear in independent masks, so
    # E[forward(X, training=True)] = forward(X) exactly; rows repeated R times
    # give R independent mask draws in one call.
    net = Net([4, 32, 24, 2], activation="identity", dropout=[0.3, 0.5], dtype=dtype, random_state=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    R = 4000
    X = np.repeat(x, R, axis=0)
    expected = net.forward(x).astype(np.float64)
    samples = net.forward(X, training=True).astype(np.float64).reshape(3, R, 2)
    mean = samples.mean(axis=1)
    stderr = samples.std(axis=1) / np.sqrt(R)
    assert np.all(stderr > 0)  # masks are in effect
    assert np.all(np.abs(mean - expected) <= 5 * stderr + 1e-6), (mean, expected, stderr)
    # A second call draws new masks.
    assert not np.array_equal(net.forward(X[:50], training=True), net.forward(X[:50], training=True))


@parametrize_network
@parametrize_dtype
def test_dropout_masks_rates_and_scaling(Net, dtype):
    # W = I and zero biases: the output is x * M1 * M2 with M_l in {0, 1/keep_l},
    # so every entry is 0 or x / (keep_1 keep_2), and it is 0 with probability
    # 1 - keep_1 keep_2.
    rates = [0.2, 0.6]
    keep = (1 - rates[0]) * (1 - rates[1])
    net = Net([3, 3, 3, 3], activation="identity", dropout=rates, dtype=dtype, random_state=0)
    net.coefs_ = [np.eye(3)] * 3
    net.intercepts_ = [np.zeros(3)] * 3
    X = np.tile([[1.0, 2.0, 4.0]], (20000, 1))
    out = net.forward(X, training=True)
    zero = out == 0
    assert_allclose(out[~zero], (X / keep)[~zero], rtol=1e-6)
    n = out.size
    sigma = np.sqrt(keep * (1 - keep) / n)
    assert abs(zero.mean() - (1 - keep)) < 5 * sigma
    # Without training=True nothing is dropped or scaled.
    assert_allclose(net.forward(X[:5]), X[:5], rtol=1e-7)
    assert_array_equal(net.predict(X[:5]), net.forward(X[:5]))


@parametrize_network
def test_dropout_does_not_change_inference(Net):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 6))
    plain = Net([6, 16, 16, 3], activation="relu", random_state=5)
    dropped = Net([6, 16, 16, 3], activation="relu", dropout=0.5, random_state=5)
    dropped.coefs_ = list(plain.coefs_)
    dropped.intercepts_ = list(plain.intercepts_)
    assert_array_equal(dropped.forward(X), plain.forward(X))
    assert_array_equal(dropped.forward(X, training=False), dropped.forward(X, training=False))
    assert_array_equal(dropped.predict(X), plain.predict(X))
    assert not np.allclose(dropped.forward(X, training=True), plain.forward(X))
    # With no dropout, training=True is the plain forward pass.
    assert_array_equal(plain.forward(X, training=True), plain.forward(X))


@parametrize_network
def test_dropout_is_applied_in_fit(Net):
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 2))
    plain = Net([5, 12, 2], random_state=0)
    dropped = Net([5, 12, 2], dropout=0.4, random_state=0)
    _assert_params_equal(dropped, _params(plain))
    plain.fit(X, Y, epochs=2, batch_size=8)
    dropped.fit(X, Y, epochs=2, batch_size=8)
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    # Loss and gradients are those of the deterministic network, dropout or not.
    dropped.coefs_ = list(plain.coefs_)
    dropped.intercepts_ = list(plain.intercepts_)
    a, b = plain.loss_and_gradients(X, Y), dropped.loss_and_gradients(X, Y)
    assert a[0] == b[0]
    for ga, gb in zip(a[1] + a[2], b[1] + b[2]):
        assert_array_equal(ga, gb)


# ---------------------------------------------------------------------------
# Settings after construction: fixed ones refused, dropout and loss_param checked and followed.


@parametrize_network
@pytest.mark.parametrize("name, value", [("layer_sizes", (5, 3, 2)), ("activation", "tanh"),
                                         ("output_activation", "logistic"), ("loss", "log_loss"),
                                         ("init", "he_normal"), ("dtype", np.float32)])
def test_a_setting_fixed_at_construction_is_refused_and_changes_nothing(Net, name, value):
    # each was ignored (or, for dtype, reached the engine as a buffer of the wrong type) before
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 5)), rng.normal(size=(20, 2))
    net = Net([5, 8, 2], random_state=0)
    before, held = getattr(net, name), _params(net)
    with pytest.raises(AttributeError, match=rf"Network\.{name} is fixed when the Network is built"):
        setattr(net, name, value)
    assert getattr(net, name) == before
    _assert_params_equal(net, held)
    net.fit(X, Y, epochs=1, batch_size=5)  # still usable
    # copies and pickles are built past the refusal
    for clone in (copy.copy(net), copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert getattr(clone, name) == getattr(net, name)
        assert_array_equal(clone.forward(X), net.forward(X))


@parametrize_network
def test_an_assigned_dropout_is_checked_and_is_the_one_that_trains(Net):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 2))
    assigned = Net([5, 12, 12, 2], random_state=0)
    assert assigned.dropout == (0.0, 0.0)
    assigned.dropout = 0.4
    assert assigned.dropout == (0.4, 0.4)
    built = Net([5, 12, 12, 2], dropout=0.4, random_state=0)
    assigned.fit(X, Y, epochs=3, batch_size=8)
    built.fit(X, Y, epochs=3, batch_size=8)
    _assert_params_equal(assigned, _params(built))
    assert assigned.loss_curve_ == built.loss_curve_
    # a bad rate is refused and leaves the rates as they were
    for bad, error in ((1.0, ValueError), ([0.1], ValueError), ("0.1", TypeError), (float("nan"), ValueError)):
        with pytest.raises(error, match="dropout"):
            assigned.dropout = bad
        assert assigned.dropout == (0.4, 0.4)
    with pytest.raises(TypeError):  # a tuple: an item changed in place is not silently ignored
        assigned.dropout[0] = 0.1


@parametrize_network
def test_a_dropout_changed_by_a_callback_trains_from_the_next_epoch(Net):
    # one layer dropping, then both: the engine's workspaces must grow to the masks of the second
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))

    class Switch:
        def on_epoch_end(self, loop, logs):
            if loop.epoch == 2:
                loop.net.dropout = [0.3, 0.5]

    fit = dict(batch_size=8, optimizer="sgd", learning_rate=0.05)
    switched = Net([5, 16, 16, 2], dropout=[0.3, 0.0], random_state=0)
    switched.fit(X, Y, epochs=4, callbacks=[Switch()], **fit)
    # the same as two epochs with the first rates, then two with the second (fit's epochs continue
    # the generator, and plain SGD has no state to carry)
    apart = Net([5, 16, 16, 2], dropout=[0.3, 0.0], random_state=0)
    apart.fit(X, Y, epochs=2, **fit)
    apart.dropout = [0.3, 0.5]
    apart.fit(X, Y, epochs=2, **fit)
    _assert_params_equal(switched, _params(apart))
    steady = Net([5, 16, 16, 2], dropout=[0.3, 0.0], random_state=0)
    steady.fit(X, Y, epochs=4, **fit)
    assert not np.array_equal(_params(steady), _params(switched))
    # and back to none: the flag follows (no masks drawn)
    switched.dropout = 0.0
    plain = copy.deepcopy(switched)
    plain_fit = Net([5, 16, 16, 2], random_state=0)
    plain_fit.coefs_, plain_fit.intercepts_ = list(switched.coefs_), list(switched.intercepts_)
    plain_fit._rng = copy.deepcopy(switched._rng)
    plain.fit(X, Y, epochs=2, **fit)
    plain_fit.fit(X, Y, epochs=2, **fit)
    _assert_params_equal(plain, _params(plain_fit))


def test_an_assigned_loss_param_is_checked_and_is_the_one_that_trains():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(30, 4)), 3 * rng.normal(size=(30, 1))
    assigned = fastmlp.Network([4, 8, 1], loss="huber", random_state=0)
    assert assigned.loss_param == 1.0
    assigned.loss_param = 0.25
    built = fastmlp.Network([4, 8, 1], loss="huber", loss_param=0.25, random_state=0)
    assigned.fit(X, Y, epochs=2, batch_size=6)
    built.fit(X, Y, epochs=2, batch_size=6)
    _assert_params_equal(assigned, _params(built))
    for bad in (0.0, -1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="loss_param"):
            assigned.loss_param = bad
        assert assigned.loss_param == 0.25
    assigned.loss_param = None  # the default again
    assert assigned.loss_param == 1.0
    plain = fastmlp.Network([4, 8, 1], random_state=0)
    with pytest.raises(ValueError, match="takes no parameter"):
        plain.loss_param = 0.5
    assert plain.loss_param is None


def test_a_pickle_from_before_the_checked_settings_loads():
    # older pickles kept dropout (a list) and loss_param in the object's __dict__ by their names
    net = fastmlp.Network([3, 4, 4, 1], dropout=0.2, loss="huber", loss_param=0.5, random_state=0)
    state = net.__getstate__()
    state["dropout"], state["loss_param"] = list(state.pop("_dropout")), state.pop("_loss_param")
    old = fastmlp.Network.__new__(fastmlp.Network)
    old.__setstate__(state)
    assert old.dropout == (0.2, 0.2) and old.loss_param == 0.5
    assert_array_equal(old.forward(np.ones((2, 3))), net.forward(np.ones((2, 3))))


# ---------------------------------------------------------------------------
# Determinism.


def _trained(Net, random_state, dtype=np.float64):
    rng = np.random.default_rng(42)
    X, Y = rng.normal(size=(37, 8)), rng.normal(size=(37, 3))
    net = Net([8, 16, 16, 3], activation="relu", dropout=0.2, dtype=dtype, random_state=random_state)
    net.fit(X, Y, epochs=3, batch_size=7, shuffle=True, momentum=0.5)
    return net, net.forward(X[:5], training=True)


@parametrize_network
@parametrize_dtype
def test_same_seed_gives_bit_identical_weights(Net, dtype):
    for make_seed in (lambda: 7, lambda: np.random.default_rng(7)):
        a, out_a = _trained(Net, make_seed(), dtype)
        b, out_b = _trained(Net, make_seed(), dtype)
        _assert_params_equal(b, _params(a))
        assert a.loss_curve_ == b.loss_curve_
        assert_array_equal(a.grad_norms_, b.grad_norms_)
        assert_array_equal(out_a, out_b)  # the dropout masks too


@parametrize_network
def test_different_seeds_differ(Net):
    a, _ = _trained(Net, 7)
    b, _ = _trained(Net, 8)
    c, _ = _trained(Net, np.random.default_rng(8))
    assert not np.array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


# ---------------------------------------------------------------------------
# dtypes.


@parametrize_network
@parametrize_dtype
def test_dtype_is_kept_everywhere(Net, dtype):
    net = Net([5, 7, 3], activation="tanh", dtype=dtype, random_state=0)
    assert net.dtype == np.dtype(dtype)
    assert all(W.dtype == dtype for W in net.coefs_)
    assert all(b.dtype == dtype for b in net.intercepts_)
    rng = np.random.default_rng(0)
    X64, Y64 = rng.normal(size=(11, 5)), rng.normal(size=(11, 3))
    for X in (X64, X64.astype(np.float32), X64.astype(np.float64).round().astype(np.int64)):
        assert net.forward(X).dtype == dtype
        assert net.forward(X, training=True).dtype == dtype
        assert net.predict(X).dtype == dtype
    loss, dW, db = net.loss_and_gradients(X64, Y64, alpha=0.1)
    assert isinstance(loss, float)
    assert all(g.dtype == dtype for g in dW + db)
    assert [g.shape for g in dW] == [W.shape for W in net.coefs_]
    assert [g.shape for g in db] == [b.shape for b in net.intercepts_]
    # float64 inputs are accepted and give what the same values in `dtype` give.
    assert_array_equal(net.forward(X64), net.forward(X64.astype(dtype)))
    for optimizer in ("sgd", "adam"):
        net.fit(X64, Y64.astype(np.float32), epochs=2, batch_size=4, optimizer=optimizer, alpha=0.01)
        assert all(W.dtype == dtype for W in net.coefs_)
        assert all(b.dtype == dtype for b in net.intercepts_)
    # Assigning float64 weights to a float32 network keeps float32, and vice versa.
    other = np.float64 if dtype is np.float32 else np.float32
    net.coefs_ = [W.astype(other) for W in net.coefs_]
    net.intercepts_[0] = net.intercepts_[0].astype(other)
    assert all(W.dtype == dtype for W in net.coefs_)
    assert net.intercepts_[0].dtype == dtype


@parametrize_network
def test_float32_and_float64_agree(Net):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 5)), rng.normal(size=(20, 2))
    n64 = Net([5, 9, 2], activation="swish", dtype="float64", random_state=0)
    n32 = Net([5, 9, 2], activation="swish", dtype="float32", random_state=0)
    n32.coefs_ = list(n64.coefs_)
    n32.intercepts_ = list(n64.intercepts_)
    _assert_close(n32.forward(X), n64.forward(X), 1e-5)
    l32, l64 = n32.loss_and_gradients(X, Y)[0], n64.loss_and_gradients(X, Y)[0]
    assert_allclose(l32, l64, rtol=1e-5)


# ---------------------------------------------------------------------------
# coefs_ and intercepts_: live views, validated assignment.


@parametrize_network
def test_coefs_are_live_views(Net):
    net = Net([3, 4, 2], activation="identity", random_state=0)
    X = np.array([[1.0, 2.0, 3.0]])
    W0 = net.coefs_[0]
    before = net.forward(X).copy()
    net.coefs_[0][0, 0] += 1.0  # in place: the model changes
    # Output changes by dZ1 = x_0 * 1 on hidden unit 0, times W2[0, :].
    assert_allclose(net.forward(X), before + 1.0 * net.coefs_[1][0], rtol=1e-12)
    net.intercepts_[1][:] = 0.5
    assert_allclose(net.forward(X), X @ net.coefs_[0] @ net.coefs_[1] + net.intercepts_[0] @ net.coefs_[1] + 0.5,
                    rtol=1e-12)
    # fit writes into the same arrays the user holds.
    held = W0.copy()
    net.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=1)
    assert net.coefs_[0] is W0
    assert not np.array_equal(W0, held)


@parametrize_network
def test_assigning_a_list_copies_into_the_model(Net):
    net = Net([3, 4, 2], random_state=0)
    views = list(net.coefs_)
    new = [np.full((3, 4), 0.25), np.full((4, 2), -0.5)]
    net.coefs_ = new
    for view, got, want in zip(views, net.coefs_, new):
        assert got is view  # the same memory, now holding the new values
        assert_array_equal(got, want)
    new[0][:] = 99.0  # the model took a copy
    assert_array_equal(net.coefs_[0], 0.25)
    # Item assignment copies too.
    source = np.arange(12.0).reshape(3, 4)
    net.coefs_[0] = source
    assert net.coefs_[0] is views[0]
    assert_array_equal(net.coefs_[0], source)
    source[:] = -1
    assert_array_equal(net.coefs_[0], np.arange(12.0).reshape(3, 4))
    assert_allclose(net.forward([[1.0, 0.0, 0.0]])[0],
                    np.maximum(np.arange(4.0) + net.intercepts_[0], 0) @ net.coefs_[1] + net.intercepts_[1])
    # Lists, tuples and integer arrays are accepted.
    net.intercepts_ = ([1, 2, 3, 4], (5, 6))
    assert_array_equal(net.intercepts_[0], [1, 2, 3, 4])
    assert_array_equal(net.intercepts_[1], [5, 6])


BAD_COEFS = {
    "too-few": ([np.zeros((3, 4))], ValueError),
    "too-many": ([np.zeros((3, 4)), np.zeros((4, 2)), np.zeros((2, 2))], ValueError),
    "second-shape": ([np.ones((3, 4)), np.ones((2, 4))], ValueError),
    "second-nan": ([np.ones((3, 4)), np.full((4, 2), np.nan)], ValueError),
    "second-inf": ([np.ones((3, 4)), np.full((4, 2), np.inf)], ValueError),
    "second-strings": ([np.ones((3, 4)), np.full((4, 2), "a")], TypeError),
    "second-complex": ([np.ones((3, 4)), np.ones((4, 2), dtype=complex)], TypeError),
    "not-a-list": (np.ones((2, 3, 4)), TypeError),
    "none": (None, TypeError),
}


@parametrize_network
@pytest.mark.parametrize("case", list(BAD_COEFS))
def test_bad_coefs_assignment_is_rejected_and_changes_nothing(Net, case):
    value, error = BAD_COEFS[case]
    net = Net([3, 4, 2], random_state=0)
    before = _params(net)
    with pytest.raises(error, match="coefs_"):
        net.coefs_ = value
    # The first array of a list is valid, but it must not have been written.
    _assert_params_equal(net, before)


@parametrize_network
def test_bad_item_assignment_changes_nothing(Net):
    net = Net([3, 4, 2], random_state=0)
    before = _params(net)
    with pytest.raises(ValueError, match="coefs_"):
        net.coefs_[0] = np.ones((4, 3))
    with pytest.raises(ValueError, match="intercepts_"):
        net.intercepts_[1] = [0.0, np.nan]
    with pytest.raises(TypeError, match="intercepts_"):
        net.intercepts_[1] = ["a", "b"]
    _assert_params_equal(net, before)


# ---------------------------------------------------------------------------
# Bookkeeping: n_params_, summary, loss_curve_, grad_norms_, verbose.


@parametrize_network
def test_n_params_and_summary(Net):
    net = Net([784, 256, 128, 10], random_state=0)
    # 784*256 + 256 + 256*128 + 128 + 128*10 + 10 = 200960 + 32896 + 1290
    assert net.n_params_ == 235146
    text = net.summary()
    assert isinstance(text, str)
    assert "235146" in text
    for count in ("200960", "32896", "1290"):
        assert count in text
    assert "relu" in text and "(784, 256)" in text
    small = Net([3, 2, 2, 1], random_state=0)
    assert small.n_params_ == 17 == sum(a.size for a in list(small.coefs_) + list(small.intercepts_))


def _easy_regression(n=64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    Y = X @ np.array([[1.0], [-2.0], [0.5], [0.0]]) + 0.3
    return X, Y


@parametrize_network
def test_loss_curve_and_grad_norms(Net):
    X, Y = _easy_regression()
    net = Net([4, 8, 1], activation="tanh", random_state=0)
    net.fit(X, Y, epochs=15, batch_size=16, learning_rate=0.05)
    assert len(net.loss_curve_) == 15
    assert all(isinstance(v, float) for v in net.loss_curve_)
    assert net.loss_curve_[-1] < 0.2 * net.loss_curve_[0]
    assert net.grad_norms_.shape == (15, 2)
    assert np.all(net.grad_norms_ > 0) and np.all(np.isfinite(net.grad_norms_))
    # Full batch, small steps: the loss goes down every epoch.
    net = Net([4, 8, 1], activation="tanh", random_state=0)
    net.fit(X, Y, epochs=20, batch_size=len(X), learning_rate=0.01)
    assert np.all(np.diff(net.loss_curve_) < 0)
    # A second fit replaces the records.
    net.fit(X, Y, epochs=3)
    assert len(net.loss_curve_) == 3 and net.grad_norms_.shape == (3, 2)


@parametrize_network
@parametrize_dtype
def test_loss_curve_includes_l2_and_grad_norms_are_the_batch_norms(Net, dtype):
    # One batch per epoch: the epoch loss is the loss before that batch's step,
    # i.e. loss_and_gradients(X, Y, alpha) at the starting weights.
    X, Y = _easy_regression(20)
    alpha = 0.7
    net = Net([4, 6, 1], activation="tanh", dtype=dtype, random_state=0)
    loss, dW, _ = net.loss_and_gradients(X, Y, alpha=alpha)
    # By hand: 0.5 * mean ||y - yhat||^2 + alpha / (2 n) * sum ||W||^2.
    P = net.forward(X).astype(np.float64)
    manual = 0.5 * np.mean(np.sum((Y - P) ** 2, axis=1)) + alpha / (2 * len(X)) * sum(
        np.sum(W.astype(np.float64) ** 2) for W in net.coefs_)
    rtol = 1e-12 if dtype is np.float64 else 1e-5
    assert_allclose(loss, manual, rtol=rtol)
    assert loss > net.loss_and_gradients(X, Y)[0]
    net.fit(X, Y, epochs=1, batch_size=len(X), shuffle=False, learning_rate=1e-6, alpha=alpha)
    assert_allclose(net.loss_curve_[0], loss, rtol=rtol)
    assert_allclose(net.grad_norms_[0], [np.linalg.norm(g) for g in dW], rtol=rtol)


@parametrize_dtype
@pytest.mark.parametrize("fit_args", [dict(optimizer="adam", learning_rate=1e-2),
                                      dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True)],
                         ids=["adam", "sgd-nesterov"])
def test_l2_inside_the_update_equals_its_own_step(dtype, fit_args):
    """Without clipping the engine adds the L2 term's gradient inside the optimizer's update; with a
    clipping norm that never clips, it takes the step of its own before the update (the gradients'
    norm needs it): the same training (the bits where the C compiler and BLAS both fuse the
    multiply-add, as here)."""
    X, Y = _easy_regression(300)
    nets = []
    for clip_norm in (None, 1e300):
        net = fastmlp.Network([4, 32, 16, 1], dtype=dtype, random_state=0)
        net.fit(X.astype(dtype), Y.astype(dtype), epochs=4, batch_size=32, alpha=0.05, clip_norm=clip_norm,
                **fit_args)
        nets.append(net)
    rtol = 1e-12 if dtype is np.float64 else 1e-5
    assert_allclose(nets[0]._params, nets[1]._params, rtol=rtol, atol=rtol)
    assert_allclose(nets[0].loss_curve_, nets[1].loss_curve_, rtol=rtol)
    assert_allclose(nets[0].grad_norms_, nets[1].grad_norms_, rtol=rtol)
    # and L2 did act: without it the weights end elsewhere
    plain = fastmlp.Network([4, 32, 16, 1], dtype=dtype, random_state=0)
    plain.fit(X.astype(dtype), Y.astype(dtype), epochs=4, batch_size=32, **fit_args)
    assert np.abs(plain._params - nets[0]._params).max() > 100 * rtol


@parametrize_network
def test_verbose_prints_one_line_per_epoch(Net, capsys):
    X, Y = _easy_regression(10)
    Net([4, 3, 1], random_state=0).fit(X, Y, epochs=3, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert all("loss" in line and "samples/s" in line for line in lines)
    Net([4, 3, 1], random_state=0).fit(X, Y, epochs=3)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------
# Whole epochs: engine == reference.

OPTIMIZER_CONFIGS = {
    "sgd": dict(optimizer="sgd", learning_rate=0.05),
    "sgd-momentum": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
    "sgd-nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7),
}
REGULARIZATION = {"none": dict(alpha=0.0, clip_norm=None), "l2-clip": dict(alpha=0.05, clip_norm=0.3)}


def _engine_and_reference(dtype, **network_kwargs):
    kwargs = dict(layer_sizes=[5, 7, 6, 3], activation="tanh", dtype=dtype, random_state=11)
    kwargs.update(network_kwargs)
    engine = fastmlp.Network(**kwargs)
    ref = reference.Network(**kwargs)
    # Same seed, same init: and set explicitly all the same.
    _assert_params_equal(ref, _params(engine))
    ref.coefs_ = list(engine.coefs_)
    ref.intercepts_ = list(engine.intercepts_)
    return engine, ref


def _assert_same_training(engine, ref, rtol):
    for got, want in zip(list(engine.coefs_) + list(engine.intercepts_), list(ref.coefs_) + list(ref.intercepts_)):
        assert got.dtype == want.dtype
        _assert_close(got, want, rtol)
    assert len(engine.loss_curve_) == len(ref.loss_curve_)
    assert_allclose(engine.loss_curve_, ref.loss_curve_, rtol=rtol)
    assert_allclose(engine.grad_norms_, ref.grad_norms_, rtol=rtol)


@parametrize_dtype
@pytest.mark.parametrize("optimizer", list(OPTIMIZER_CONFIGS))
@pytest.mark.parametrize("regularization", list(REGULARIZATION))
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "no-shuffle"])
@pytest.mark.parametrize("batch_size", [5, 7])
def test_epochs_match_reference(dtype, optimizer, regularization, shuffle, batch_size):
    # N = 23 rows: batch sizes 5 and 7 leave a short last batch. Two epochs, so
    # the optimizer state (momentum, Adam's t) carries over as it should.
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(23, 5)), rng.normal(size=(23, 3))
    engine, ref = _engine_and_reference(dtype)
    kwargs = dict(epochs=2, batch_size=batch_size, shuffle=shuffle,
                  **OPTIMIZER_CONFIGS[optimizer], **REGULARIZATION[regularization])
    engine.fit(X, Y, **kwargs)
    ref.fit(X, Y, **kwargs)
    _assert_same_training(engine, ref, RTOL[dtype])


def test_clip_norm_is_active_in_the_parity_setting():
    # The parity test above would prove little if clip_norm=0.3 never clipped.
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(23, 5)), rng.normal(size=(23, 3))
    clipped, plain = _engine_and_reference(np.float64)
    clipped.fit(X, Y, epochs=1, batch_size=5, clip_norm=0.3)
    plain.fit(X, Y, epochs=1, batch_size=5)
    assert not np.allclose(clipped.coefs_[0], plain.coefs_[0])
    # And a clipped step is never longer than learning_rate * clip_norm.
    net = fastmlp.Network([5, 7, 6, 3], activation="tanh", random_state=11)
    before = np.concatenate([p.ravel() for p in _params(net)])
    net.fit(X, Y, epochs=1, batch_size=len(X), clip_norm=0.3, learning_rate=0.1)
    after = np.concatenate([p.ravel() for p in _params(net)])
    assert np.linalg.norm(after - before) <= 0.1 * 0.3 * (1 + 1e-12)


@parametrize_dtype
@pytest.mark.parametrize("activation", list(_registry.ACTIVATIONS) + list(_registry.ACTIVATION_ALIASES))
@pytest.mark.parametrize("pair", list(_registry.OUTPUTS), ids=lambda p: "+".join(p))
def test_epoch_matches_reference_for_every_activation_and_output(dtype, activation, pair):
    output_activation, loss = pair
    rng = np.random.default_rng(1)
    X = rng.normal(size=(17, 5))
    Y = make_targets(output_activation, (17, 3), rng, loss)
    engine, ref = _engine_and_reference(dtype, activation=activation, output_activation=output_activation,
                                        loss=loss, loss_param=LOSS_PARAMS.get(loss))
    # exp + poisson grows exponentially with its output: a gentler step keeps it finite
    lr = 0.01 if output_activation == "exp" else 0.1
    kwargs = dict(epochs=1, batch_size=4, momentum=0.9, alpha=0.01, learning_rate=lr)
    assert_allclose(engine.forward(X), ref.forward(X), rtol=RTOL[dtype], atol=RTOL[dtype])
    engine.fit(X, Y, **kwargs)
    ref.fit(X, Y, **kwargs)
    _assert_same_training(engine, ref, RTOL[dtype])


# ---------------------------------------------------------------------------
# Pickle.


@parametrize_network
@parametrize_dtype
def test_pickle_round_trip(Net, dtype):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 6)), rng.normal(size=(30, 2))
    net = Net([6, 10, 2], dropout=0.1, dtype=dtype, random_state=0)
    net.fit(X, Y, epochs=2, batch_size=8)
    restored = pickle.loads(pickle.dumps(net))
    assert type(restored) is Net
    assert restored.dtype == net.dtype and restored.layer_sizes == net.layer_sizes
    assert_array_equal(restored.predict(X), net.predict(X))
    _assert_params_equal(restored, _params(net))
    assert restored.loss_curve_ == net.loss_curve_
    # The restored network's coefs_ are live views into it (and only it).
    before = net.predict(X)
    restored.coefs_[0][0, :] += 1.0
    assert not np.array_equal(restored.predict(X), before)
    assert_array_equal(net.predict(X), before)
    restored.coefs_[0][0, :] -= 1.0
    held = restored.coefs_[1]
    restored.coefs_ = [np.zeros((6, 10)), np.ones((10, 2))]
    assert_array_equal(held, 1.0)
    # relu(0 + b1) summed by the all-ones W2, plus b2.
    expected = np.maximum(restored.intercepts_[0], 0).sum() + restored.intercepts_[1]
    assert_allclose(restored.predict(X), np.broadcast_to(expected, (30, 2)), rtol=1e-6)
    # Training continues identically from both (the random state travels too),
    # and writes into the views the unpickled network hands out.
    net2 = pickle.loads(pickle.dumps(net))
    held = net2.coefs_[0]
    start = held.copy()
    net.fit(X, Y, epochs=2, batch_size=8)
    net2.fit(X, Y, epochs=2, batch_size=8)
    _assert_params_equal(net2, _params(net))
    assert net2.coefs_[0] is held and not np.array_equal(held, start)
    # copy.deepcopy goes the same way: an independent model with its own live views.
    clone = copy.deepcopy(net)
    clone.coefs_[0][...] = 0.0
    assert not np.array_equal(net.coefs_[0], 0.0)
    assert_array_equal(clone.predict(X), clone.predict(X * 2))  # the first layer now ignores X


# ---------------------------------------------------------------------------
# Divergence.


@parametrize_network
@parametrize_dtype
def test_divergence_raises_and_restores_finite_weights(Net, dtype):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1000, size=(50, 4))  # unscaled on purpose
    Y = X.sum(axis=1, keepdims=True)
    net = Net([4, 8, 1], activation="identity", dtype=dtype, random_state=0)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=r"epoch (\d+)") as info:
        net.fit(X, Y, epochs=30, learning_rate=1e6)
    assert "learning_rate" in str(info.value)
    assert all(np.isfinite(p).all() for p in _params(net))
    assert np.isfinite(net.predict(X)).all()
    # The weights are those at the start of the epoch that diverged, i.e. after
    # the epochs before it: replay those with the same seed.
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    assert len(net.loss_curve_) == epoch - 1
    assert net.grad_norms_.shape == (epoch - 1, 2)
    replay = Net([4, 8, 1], activation="identity", dtype=dtype, random_state=0)
    if epoch > 1:
        with np.errstate(all="ignore"):
            replay.fit(X, Y, epochs=epoch - 1, learning_rate=1e6)
    _assert_params_equal(net, _params(replay))


# The one-row path of a service: Network.forward/predict on X already as the
# engine takes it skip validation in Python (_engine.Predictor checks in C).

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [1, 7, 5000])
def test_fast_forward_equals_the_validated_path(dtype, n_rows):
    net = fastmlp.Network([6, 9, 4], activation="tanh", output_activation="softmax", loss="log_loss",
                          dtype=dtype, random_state=0)
    X = np.random.default_rng(1).standard_normal((n_rows, 6)).astype(dtype)
    fast = net._fast_forward(X)
    assert fast is not None and fast.dtype == dtype and fast.shape == (n_rows, 4)
    validated = net._forward(net._check_X(np.asfortranarray(X)), False, 0)
    assert_array_equal(fast, validated)
    assert_array_equal(net.forward(X), validated)
    assert_array_equal(net.predict(X), validated)


def test_fast_forward_declines_what_needs_validation():
    net = fastmlp.Network([3, 5, 2], random_state=0)
    X = np.random.default_rng(0).standard_normal((4, 3))
    declined = {
        "list": X.tolist(),
        "float32": X.astype(np.float32),
        "fortran": np.asfortranarray(X),
        "strided": np.repeat(X, 2, axis=1)[:, ::2],
        "big-endian": X.astype(">f8"),
        "subclass": X.view(np.matrix),
        "1-D": X[0],
        "wrong width": np.ones((4, 4)),
        "no rows": np.ones((0, 3)),
        "nan": np.where(X > 1, np.nan, X),
        "inf": np.where(X > 1, np.inf, X),
    }
    unaligned = np.frombuffer(b"\0" + X.tobytes(), dtype=np.float64, offset=1, count=X.size).reshape(4, 3)
    assert not unaligned.flags.aligned
    declined["unaligned"] = unaligned
    for name, value in declined.items():
        assert net._fast_forward(value) is None, name
    # declined input still gets forward's conversion or its error
    assert_array_equal(net.forward(declined["big-endian"]), net.forward(X))
    assert_array_equal(net.forward(declined["unaligned"]), net.forward(X))
    for name in ("nan", "inf"):
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            net.forward(declined[name])


def test_fast_forward_reads_the_live_weights_and_survives_pickling():
    net = fastmlp.Network([3, 4, 1], random_state=0)
    X = np.random.default_rng(0).standard_normal((2, 3))
    before = net.forward(X)
    net.coefs_[1][...] = 0.0
    net.intercepts_[1][...] = 0.5
    assert_array_equal(net.forward(X), np.full((2, 1), 0.5))
    net.intercepts_ = [net.intercepts_[0], np.array([-1.0])]
    assert_array_equal(net.forward(X), np.full((2, 1), -1.0))
    copy_ = pickle.loads(pickle.dumps(net))
    assert "_predictor" not in copy_.__dict__ and copy_._params is not net._params
    assert_array_equal(copy_.forward(X), net.forward(X))
    copy_.coefs_[1][...] = 1.0
    assert not np.array_equal(copy_.forward(X), net.forward(X))
    assert before.shape == (2, 1)


def _unaligned(a):
    """A C-contiguous copy of a whose data starts one byte past an aligned address."""
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = np.frombuffer(raw.data, dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_arrays_give_the_aligned_result(dtype):
    # compiled code loads whole elements: the boundary hands it aligned copies
    import scipy.sparse

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 5)).astype(dtype)
    Y = rng.standard_normal((20, 2)).astype(dtype)
    net = fastmlp.Network([5, 7, 2], dtype=dtype, random_state=0)
    assert_array_equal(net.forward(_unaligned(X)), net.forward(X))
    loss, grads = net.loss_and_gradients(_unaligned(X), _unaligned(Y))[:2]
    want_loss, want_grads = net.loss_and_gradients(X, Y)[:2]
    assert loss == want_loss
    for g, w in zip(grads, want_grads):
        assert_array_equal(g, w)
    S = scipy.sparse.csr_matrix(np.where(X > 0.5, X, 0))
    odd = scipy.sparse.csr_matrix((_unaligned(S.data), _unaligned(S.indices.astype(np.intp)),
                                   _unaligned(S.indptr.astype(np.intp))), shape=S.shape)
    assert_array_equal(net.forward(odd), net.forward(S))
    a, b = (fastmlp.Network([5, 7, 2], dtype=dtype, random_state=1) for _ in range(2))
    a.fit(_unaligned(X), _unaligned(Y), epochs=2, batch_size=4, sample_weight=_unaligned(np.ones(20, dtype)))
    b.fit(X, Y, epochs=2, batch_size=4, sample_weight=np.ones(20, dtype))
    for p, q in zip(a.coefs_, b.coefs_):
        assert_array_equal(p, q)


def test_probed_edges_of_the_network_api():
    # found by probing: the reference's validation loss ignored loss_param (its early stopping then followed the
    # default's loss); assigning a list of the model's own layer views in another order overwrote a layer
    # before reading it; loss_param past float64 and a ragged layer escaped with NumPy's words (OverflowError,
    # a message naming nothing)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    X_val, Y_val = rng.standard_normal((7, 3)), 3 * rng.standard_normal((7, 1))
    curves = []
    for cls in (fastmlp.Network, reference.Network):
        net = cls([3, 4, 1], activation="tanh", loss="quantile", loss_param=0.05, random_state=0)
        net.fit(X, Y, epochs=2, batch_size=20, validation_data=(X_val, Y_val))
        assert net.validation_loss_curve_[-1] == pytest.approx(net.loss_and_gradients(X_val, Y_val)[0], rel=1e-12)
        curves.append(net.validation_loss_curve_)
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-10)
    for cls in (fastmlp.Network, reference.Network):
        net = cls([4, 4, 4], random_state=0)
        W0, W1, b0, b1 = (a.copy() for a in (*net.coefs_, *net.intercepts_))
        net.coefs_ = [net.coefs_[1], net.coefs_[0]]
        net.intercepts_ = list(reversed(net.intercepts_))
        for got, want in zip((*net.coefs_, *net.intercepts_), (W1, W0, b1, b0)):
            np.testing.assert_array_equal(got, want)
        with pytest.raises(ValueError, match=r"coefs_\[0\]"):
            net.coefs_ = [[[1.0, 2.0, 3.0], [1.0, 2.0]], np.ones((4, 4))]
        np.testing.assert_array_equal(net.coefs_[0], W1)
        with pytest.raises(ValueError, match="loss_param"):
            cls([3, 4, 1], loss="huber", loss_param=10**400)


def test_a_sparse_matrix_with_duplicate_entries_is_read_as_toarray_reads_it():
    # found by probing: duplicates reached the engine entry by entry (1e16, 1 and -1e16 in one place gave another
    # row than toarray()'s 0), two duplicates of 1e308 passed as finite, and unsorted indices gave other last
    # bits than dense input; now summed and sorted first, on a copy (the caller's matrix unchanged)
    import scipy.sparse as sp

    net = fastmlp.Network([3, 4, 1], activation="identity", random_state=0)
    S = sp.csr_matrix((np.array([1e16, 1.0, -1e16, 2.0]), np.array([0, 0, 0, 1]), np.array([0, 4])), shape=(1, 3))
    before = S.data.copy(), S.indices.copy()
    np.testing.assert_array_equal(net.forward(S), net.forward(S.toarray()))
    np.testing.assert_array_equal(S.data, before[0])
    np.testing.assert_array_equal(S.indices, before[1])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    X[rng.random(X.shape) < 0.4] = 0
    U = sp.csr_matrix(X)
    for i in range(U.shape[0]):  # (each row's entries in reverse order)
        a, b = U.indptr[i], U.indptr[i + 1]
        U.indices[a:b], U.data[a:b] = U.indices[a:b][::-1].copy(), U.data[a:b][::-1].copy()
    U.has_sorted_indices = False
    # unsorted reads as sorted, bit for bit (a CSR X's products are the engine's loop, a dense X's BLAS's: the
    # same up to rounding, the same bits only where both use fused multiply-adds alike)
    np.testing.assert_array_equal(net.forward(U), net.forward(sp.csr_matrix(X)))
    np.testing.assert_allclose(net.forward(U), net.forward(X), rtol=1e-13)
    Y = rng.normal(size=(50, 1))
    a, b, c = (fastmlp.Network([3, 4, 1], random_state=1) for _ in range(3))
    a.fit(U, Y, epochs=2, shuffle=False)
    b.fit(sp.csr_matrix(X), Y, epochs=2, shuffle=False)
    c.fit(X, Y, epochs=2, shuffle=False)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_allclose(a.loss_curve_, c.loss_curve_, rtol=1e-12)
    big = sp.csr_matrix((np.array([1e308, 1e308]), np.array([0, 0]), np.array([0, 2])), shape=(1, 3))
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        net.forward(big)


def test_a_sparse_X_keeps_no_room_for_dense_rows_in_the_workspaces():
    # found by probing: the training and forward workspaces kept batch x n_features elements for gathered rows
    # of X, which a CSR X never uses: a CSR matrix of 2^24 columns failed with MemoryError (25 GiB at batch 200)
    import scipy.sparse as sp

    net = fastmlp.Network([5000, 3, 2], random_state=0)
    args = (net._sizes, net._act_codes, net._keep, 64, False)
    dense, csr = fastmlp._engine.workspace_size(*args, True), fastmlp._engine.workspace_size(*args, False)
    assert dense - csr >= 64 * 5000 and csr < 64 * 100
    grads, work = net._workspaces(64, False, dense_x=False)
    assert work.shape[0] == csr
    # an estimator's trainer kept across calls: CSR, then dense (room made), then CSR, as dense to rounding (the
    # CSR product adds its terms in another order than BLAS's)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 5000)) * (rng.random((150, 5000)) < 0.01)
    y = (X[:, :50].sum(axis=1) > 0).astype(int)
    calls = [sp.csr_matrix(X), X, sp.csr_matrix(X)]
    a, b = fastmlp.MLPClassifier((3,), batch_size=64, random_state=0), fastmlp.MLPClassifier((3,), batch_size=64,
                                                                                               random_state=0)
    for S in calls:
        a.partial_fit(S, y, classes=[0, 1])
        b.partial_fit(X, y, classes=[0, 1])
    assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-10, atol=1e-12)
    assert_allclose(a.predict_proba(sp.csr_matrix(X)), b.predict_proba(X), rtol=1e-10, atol=1e-12)


@parametrize_dtype
@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
@pytest.mark.parametrize("activation", ["tanh", "prelu"])
def test_epochs_with_a_forward_product_split_by_its_inner_dimension_match_reference(dtype, optimizer, activation):
    # a first layer at least twice as wide as the second, at a batch no larger than the second: its forward
    # product runs in two parts of the inner dimension, added in a step of their own (with the bias, the
    # activation, and the units' maxima); 50 rows at batch 20 leave a short last batch
    sizes = [80, 32, 16, 3]
    assert _engine._forward_splits(np.array(sizes, dtype=np.intp), np.zeros(3, dtype=np.intc), 20)[0] == ("inner", 2)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 80)), rng.normal(size=(50, 3))
    engine, ref = _engine_and_reference(dtype, layer_sizes=sizes, activation=activation)
    kwargs = dict(epochs=2, batch_size=20, **OPTIMIZER_CONFIGS[optimizer], alpha=0.01)
    engine.fit(X, Y, **kwargs)
    ref.fit(X, Y, **kwargs)
    _assert_same_training(engine, ref, RTOL[dtype])
    assert engine.dead_units_ == pytest.approx(ref.dead_units_)


def _record_alignment(monkeypatch, name, positions):
    """Wrap _engine.<name> so that each call records, per position of its arguments, whether that array starts
    on a cache line."""
    seen = []
    original = getattr(_engine, name)

    def wrapper(*args):
        seen.append({i: args[i].ctypes.data % 64 == 0 for i in positions})
        return original(*args)

    monkeypatch.setattr(_engine, name, wrapper)
    return seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_arrays_every_batch_writes_start_on_a_cache_line(monkeypatch, dtype):
    # a 32-byte vector that straddles two lines costs two loads: NumPy's arrays start 16 bytes into a line, and
    # a small network's update (parameters, gradients, Adam's two moments) was 3-9% slower that way; the
    # parameters, the optimizer's state and the workspaces start on a line however the model was made
    rng = np.random.default_rng(0)
    X, Y = rng.random((40, 5)).astype(dtype), rng.random((40, 2)).astype(dtype)
    seen = _record_alignment(monkeypatch, "train_epoch", (4, 5, 6, 7, 8))  # params, grads, state_1, state_2, work
    net = fastmlp.Network([5, 9, 2], dtype=dtype, random_state=0)
    net.fit(X, Y, epochs=1, optimizer="adam", batch_size=8)
    pickle.loads(pickle.dumps(net)).fit(X, Y, epochs=1, optimizer="adam", batch_size=8)
    copy.deepcopy(net).fit(X, Y, epochs=1, optimizer="sgd", momentum=0.9, batch_size=8)
    net._snapshot().fit(X, Y, epochs=1, batch_size=8)
    reg = fastmlp.MLPRegressor(hidden_layer_sizes=(9,), batch_size=8, random_state=0, dtype=dtype)
    reg.partial_fit(X, Y)
    pickle.loads(pickle.dumps(reg)).partial_fit(X, Y)  # (the optimizer's state kept across calls, unpickled)
    assert len(seen) == 6 and all(all(call.values()) for call in seen), seen

    seen = _record_alignment(monkeypatch, "train_ensemble_epoch", (8, 9, 10, 11, 12, 19))  # ... work, unit_max
    ens = fastmlp.NetworkEnsemble([5, 9, 2], n_members=3, dtype=dtype, random_state=0)
    ens.fit(X, Y, epochs=1, optimizer="adam", batch_size=8)
    pickle.loads(pickle.dumps(ens)).fit(X, Y, epochs=1, optimizer="adam", batch_size=8)
    assert len(seen) == 2 and all(all(call.values()) for call in seen), seen


def test_line_aligned_copies_only_a_writable_array_off_a_line():
    raw = np.arange(40, dtype=np.float64)
    off = raw[1:33] if raw[1:].ctypes.data % 64 else raw[2:34]
    moved = line_aligned(off)
    assert moved.ctypes.data % 64 == 0 and moved is not off
    assert_array_equal(moved, off)
    assert line_aligned(moved) is moved
    off.flags.writeable = False  # (memory-mapped by joblib.load(..., mmap_mode="r"): shared, never trained)
    assert line_aligned(off) is off
