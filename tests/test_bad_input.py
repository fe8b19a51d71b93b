"""Bad input at every public boundary of Network gets a ValueError or TypeError
that names the argument, and leaves the model as it was; awkward but valid
input gives exactly what the plain case gives.

Boundaries: the constructor, fit, forward, predict, loss_and_gradients and
the coefs_ / intercepts_ assignments; for fastmlp.Network and
fastmlp.reference.Network alike.
"""
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_array_equal

import fastmlp
from fastmlp import _registry, reference

NETWORKS = [fastmlp.Network, reference.Network]
NETWORK_IDS = ["engine", "reference"]
DTYPES = [np.float32, np.float64]

parametrize_network = pytest.mark.parametrize("Net", NETWORKS, ids=NETWORK_IDS)
parametrize_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])

N_IN, N_HIDDEN, N_OUT = 3, 4, 2


def _make(Net, dtype=np.float64, **kwargs):
    return Net([N_IN, N_HIDDEN, N_OUT], dtype=dtype, random_state=0, **kwargs)


def _data(n=6):
    # Small integers: exact in every dtype below (int, uint8, float16, float32...).
    rng = np.random.default_rng(0)
    X = rng.integers(0, 10, size=(n, N_IN)).astype(np.float64)
    Y = rng.integers(0, 4, size=(n, N_OUT)).astype(np.float64)
    return X, Y


def _snapshot(net):
    return [a.copy() for a in list(net.coefs_) + list(net.intercepts_)]


def _assert_unchanged(net, snapshot):
    current = list(net.coefs_) + list(net.intercepts_)
    assert len(current) == len(snapshot)
    for got, want in zip(current, snapshot):
        assert got.dtype == want.dtype
        assert_array_equal(got, want)


def _named(name):
    """A regex that finds `name` as a word in an error message."""
    return rf"(?<![\w]){re.escape(name)}(?![\w])"


def _assert_rejected(net, call, error, name):
    before = _snapshot(net)
    with pytest.raises(error, match=_named(name)):
        call()
    _assert_unchanged(net, before)


# ---------------------------------------------------------------------------
# Bad arrays.

def _sparse_with(X, value):
    S = scipy.sparse.csr_matrix(X)
    S.data[0] = value
    return S


def _malformed_csr(X):
    S = scipy.sparse.csr_matrix(X)
    S.indices = S.indices.copy()
    S.indices[0] = N_IN + 5  # a column that does not exist: compiled code would read out of bounds
    return S


def _bad_X_cases():
    X, _ = _data()
    nan, inf, neg_inf = X.copy(), X.copy(), X.copy()
    nan[2, 1] = np.nan
    inf[0, 0] = np.inf
    neg_inf[-1, -1] = -np.inf
    return {
        "nan": (nan, ValueError),
        "inf": (inf, ValueError),
        "-inf": (neg_inf, ValueError),
        "1-D": (X[0], ValueError),
        "3-D": (X[:, :, None], ValueError),
        "0-D": (np.float64(1.0), ValueError),
        "None": (None, ValueError),
        "no-rows": (np.empty((0, N_IN)), ValueError),
        "no-columns": (np.empty((4, 0)), ValueError),
        "too-few-features": (X[:, :2], ValueError),
        "too-many-features": (np.ones((6, N_IN + 1)), ValueError),
        "strings": (X.astype(str), TypeError),
        "bytes": (X.astype("S4"), TypeError),
        "complex": (X.astype(complex), TypeError),
        "object-non-numeric": (np.array([[object()] * N_IN] * 2, dtype=object), TypeError),
        "object-strings": (np.array([["a", 1, 2]], dtype=object), TypeError),
        "ragged-list": ([[1.0, 2.0, 3.0], [1.0, 2.0]], TypeError),
        "datetime": (np.zeros((2, N_IN), dtype="datetime64[s]"), TypeError),
        "structured": (np.zeros((2, N_IN), dtype=[("a", float)]), TypeError),
        "sparse-nan": (_sparse_with(X, np.nan), ValueError),
        "sparse-out-of-range-index": (_malformed_csr(X), ValueError),
        "sparse-wrong-features": (scipy.sparse.csr_matrix(np.ones((6, N_IN + 1))), ValueError),
        "dict": ({"a": 1}, TypeError),
    }


BAD_X = _bad_X_cases()


def test_sparse_input_gives_the_dense_result():
    X, Y = _data()
    X[X < 0.3] = 0
    for Net in (fastmlp.Network, fastmlp.reference.Network):
        for to_sparse in (scipy.sparse.csr_matrix, scipy.sparse.csc_matrix, scipy.sparse.coo_matrix):
            dense, sparse = (Net([N_IN, 5, N_OUT], random_state=0) for _ in range(2))
            np.testing.assert_allclose(sparse.forward(to_sparse(X)), dense.forward(X), rtol=1e-12)
            loss_s, dW_s, _ = sparse.loss_and_gradients(to_sparse(X), Y, alpha=0.1)
            loss_d, dW_d, _ = dense.loss_and_gradients(X, Y, alpha=0.1)
            assert loss_s == pytest.approx(loss_d, rel=1e-12)
            for a, b in zip(dW_s, dW_d):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
            sparse.fit(to_sparse(X), Y, epochs=3, batch_size=4)
            dense.fit(X, Y, epochs=3, batch_size=4)
            for a, b in zip(sparse.coefs_, dense.coefs_):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def _bad_Y_cases():
    _, Y = _data()
    nan, inf = Y.copy(), Y.copy()
    nan[1, 1] = np.nan
    inf[3, 0] = -np.inf
    return {
        "nan": (nan, ValueError),
        "inf": (inf, ValueError),
        "1-D-for-2-outputs": (Y[:, 0], ValueError),
        "3-D": (Y[:, :, None], ValueError),
        "0-D": (1.0, ValueError),
        "too-few-rows": (Y[:-1], ValueError),
        "too-many-rows": (np.vstack([Y, Y]), ValueError),
        "wrong-outputs": (np.ones((6, N_OUT + 1)), ValueError),
        "no-rows": (np.empty((0, N_OUT)), ValueError),
        "strings": (Y.astype(str), TypeError),
        "complex": (Y.astype(complex), TypeError),
        "object-non-numeric": (np.array([[object()] * N_OUT] * 6, dtype=object), TypeError),
        "sparse": (scipy.sparse.csr_matrix(Y), TypeError),  # targets are dense
    }


BAD_Y = _bad_Y_cases()


def _x_calls(net, X, Y):
    return {
        "fit": lambda: net.fit(X, Y, epochs=1),
        "forward": lambda: net.forward(X),
        "forward-training": lambda: net.forward(X, training=True),
        "predict": lambda: net.predict(X),
        "loss_and_gradients": lambda: net.loss_and_gradients(X, Y),
    }


@parametrize_network
@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("method", ["fit", "forward", "forward-training", "predict", "loss_and_gradients"])
def test_bad_X(Net, case, method):
    X, error = BAD_X[case]
    _, Y = _data()
    net = _make(Net)
    _assert_rejected(net, _x_calls(net, X, Y)[method], error, "X")


@parametrize_network
@pytest.mark.parametrize("case", list(BAD_Y))
@pytest.mark.parametrize("method", ["fit", "loss_and_gradients"])
def test_bad_Y(Net, case, method):
    Y, error = BAD_Y[case]
    X, _ = _data()
    net = _make(Net)
    call = (lambda: net.fit(X, Y, epochs=1)) if method == "fit" else (lambda: net.loss_and_gradients(X, Y))
    _assert_rejected(net, call, error, "Y")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_finiteness_check_at_the_edge_of_the_range(dtype):
    # Finite values at the edge of the dtype's range are data, whatever their sum;
    # any NaN or infinity among them is not.
    from fastmlp._validation import check_finite

    big = np.full((4, 3), np.finfo(dtype).max / 2, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and quietly: no overflow warnings from the check
        check_finite(big, "X")
        for bad in (np.inf, -np.inf, np.nan):
            worse = big.copy()
            worse[2, 1] = bad
            with pytest.raises(ValueError, match="X contains NaN or infinity"):
                check_finite(worse, "X")


@parametrize_network
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_values_that_overflow_float32_are_rejected(Net):
    # Finite in float64, infinite once in the network's float32.
    net = _make(Net, np.float32)
    X, Y = _data()
    big = X.copy()
    big[0, 0] = 1e39
    for call in _x_calls(net, big, Y).values():
        _assert_rejected(net, call, ValueError, "X")
    big = Y.copy()
    big[0, 0] = -1e39
    _assert_rejected(net, lambda: net.fit(X, big), ValueError, "Y")
    _assert_rejected(net, lambda: net.loss_and_gradients(X, big), ValueError, "Y")


@parametrize_network
@pytest.mark.parametrize("output_activation", ["logistic", "softmax"])
@pytest.mark.parametrize("bad", [-0.5, 1.5, 2.0])
def test_log_loss_targets_outside_0_1(Net, output_activation, bad):
    net = _make(Net, output_activation=output_activation, loss="log_loss")
    X, _ = _data()
    Y = np.zeros((6, N_OUT))
    Y[:, 0] = 1
    Y[3, 1] = bad
    _assert_rejected(net, lambda: net.fit(X, Y, epochs=1), ValueError, "Y")
    _assert_rejected(net, lambda: net.loss_and_gradients(X, Y), ValueError, "Y")
    # The same targets are fine for squared error.
    _make(Net).loss_and_gradients(X, Y)


@parametrize_network
def test_one_dimensional_Y_needs_one_output(Net):
    X, Y = _data()
    net = _make(Net)
    _assert_rejected(net, lambda: net.fit(X, Y[:, 0]), ValueError, "Y")
    single = Net([N_IN, N_HIDDEN, 1], random_state=0)
    single.loss_and_gradients(X, Y[:, 0])  # (n,) is fine with one output


@parametrize_network
def test_class_labels_into_a_log_loss_network_say_how_to_encode_them(Net):
    X, _ = _data()
    y = np.array([0, 1, 2, 2, 1, 0])
    softmax = Net([N_IN, N_HIDDEN, 3], output_activation="softmax", loss="log_loss", random_state=0)
    for labels in (y, y[:, None], y.astype(np.float64)):
        for call in (lambda: softmax.fit(X, labels, epochs=1), lambda: softmax.loss_and_gradients(X, labels)):
            with pytest.raises(ValueError, match=r"np\.eye\(3\)\[y\].*fastmlp\.MLPClassifier"):
                call()
    softmax.fit(X, np.eye(3)[y], epochs=1)  # what the message says works
    single = Net([N_IN, 1], output_activation="logistic", loss="log_loss", random_state=0)
    with pytest.raises(ValueError, match=r"labels 0 and 1.*np\.eye\(n_classes\)\[y\].*MLPClassifier"):
        single.fit(X, y, epochs=1)
    # the hint is for classification losses only
    with pytest.raises(ValueError, match=r"1-D") as info:
        _make(Net).fit(X, y)
    assert "one-hot" not in str(info.value)


@parametrize_network
@pytest.mark.parametrize("attribute", ["coefs_", "intercepts_", "prelu_slopes_"])
def test_assigned_weights_are_cast_to_the_dtype_but_never_to_infinity(Net, attribute):
    net = _make(Net, np.float32, activation="prelu")
    shapes = [a.shape for a in getattr(net, attribute)]
    values = [np.random.default_rng(l).normal(size=shape) for l, shape in enumerate(shapes)]  # float64
    setattr(net, attribute, values)  # real values of any dtype are cast, as NumPy assignment does
    for got, value in zip(getattr(net, attribute), values):
        assert got.dtype == np.float32
        assert_array_equal(got, value.astype(np.float32))
    huge = [v.copy() for v in values]
    huge[-1].flat[0] = 1e39  # finite in float64, beyond float32's 3.4e38
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused with an error, not a RuntimeWarning and an inf
        _assert_rejected(net, lambda: setattr(net, attribute, huge), ValueError, attribute)
        with pytest.raises(ValueError, match=r"1e\+39.*overflow.*float32"):
            getattr(net, attribute)[-1] = huge[-1]
    assert all(np.isfinite(a).all() for a in getattr(net, attribute))
    _make(Net, np.float64, activation="prelu").__setattr__(attribute, huge)  # fine in float64


# ---------------------------------------------------------------------------
# Constructor.

VALID_NAMES = {
    "activation": sorted(_registry.ACTIVATIONS) + sorted(_registry.ACTIVATION_ALIASES),
    "output_activation": _registry.OUTPUT_ACTIVATIONS,
    "loss": _registry.LOSSES,
    "init": sorted(_registry.INITS),
}


@parametrize_network
@pytest.mark.parametrize("argument", list(VALID_NAMES))
@pytest.mark.parametrize("value", ["nope", "ReLU", "", None, 3, ["relu"]])
def test_unknown_names_list_the_valid_ones(Net, argument, value):
    with pytest.raises(ValueError, match=_named(argument)) as info:
        Net([N_IN, N_HIDDEN, N_OUT], **{argument: value})
    for valid in VALID_NAMES[argument]:
        assert repr(valid) in str(info.value)


@parametrize_network
def test_hidden_activation_cannot_be_softmax_or_zeros_init(Net):
    with pytest.raises(ValueError, match=_named("activation")):
        Net([N_IN, N_HIDDEN, N_OUT], activation="softmax")
    with pytest.raises(ValueError, match=_named("init")):
        Net([N_IN, N_HIDDEN, N_OUT], init="zeros")


INVALID_PAIRS = [("identity", "log_loss"), ("softmax", "squared_error"), ("logistic", "squared_error")]


@parametrize_network
@pytest.mark.parametrize("pair", INVALID_PAIRS, ids=lambda p: "+".join(p))
def test_invalid_output_loss_pairs(Net, pair):
    output_activation, loss = pair
    with pytest.raises(ValueError, match="output_activation") as info:
        Net([N_IN, N_HIDDEN, N_OUT], output_activation=output_activation, loss=loss)
    message = str(info.value)
    assert "loss" in message
    for valid_activation, valid_loss in _registry.OUTPUTS:  # names the pairs that do exist
        assert valid_activation in message and valid_loss in message


@parametrize_network
@pytest.mark.parametrize("loss, bad", [("huber", 0.0), ("huber", -1.0), ("huber", np.inf), ("huber", np.nan),
                                       ("huber", "1"), ("quantile", 0.0), ("quantile", 1.0), ("quantile", -0.2),
                                       ("quantile", True), ("squared_error", 0.5), ("gamma", 1.0)])
def test_bad_loss_param(Net, loss, bad):
    # huber's delta > 0, quantile's q in (0, 1); a loss without a parameter takes None only
    output_activation = "exp" if loss == "gamma" else "identity"
    with pytest.raises(ValueError, match=_named("loss_param")):
        Net([N_IN, N_HIDDEN, N_OUT], output_activation=output_activation, loss=loss, loss_param=bad)


@parametrize_network
def test_loss_param_defaults(Net):
    assert Net([N_IN, N_OUT], loss="huber").loss_param == 1.0
    assert Net([N_IN, N_OUT], loss="quantile").loss_param == 0.5
    assert Net([N_IN, N_OUT], loss="quantile", loss_param=np.float32(0.25)).loss_param == 0.25
    assert Net([N_IN, N_OUT]).loss_param is None


@parametrize_network
@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_gamma_targets_must_be_positive(Net, bad):
    net = _make(Net, output_activation="exp", loss="gamma")
    X, Y = _data()
    Y = Y + 1
    Y[2, 1] = bad
    _assert_rejected(net, lambda: net.fit(X, Y, epochs=1), ValueError, "Y")
    _assert_rejected(net, lambda: net.loss_and_gradients(X, Y), ValueError, "Y")
    Y[2, 1] = 1e-3
    net.loss_and_gradients(X, Y)  # small but positive is fine


@parametrize_network
def test_softmax_needs_two_outputs(Net):
    with pytest.raises(ValueError, match="softmax"):
        Net([N_IN, N_HIDDEN, 1], output_activation="softmax", loss="log_loss")
    Net([N_IN, N_HIDDEN, 2], output_activation="softmax", loss="log_loss")  # fine


BAD_CONSTRUCTOR = {
    "layer_sizes-int": (dict(layer_sizes=3), TypeError, "layer_sizes"),
    "layer_sizes-str": (dict(layer_sizes="342"), TypeError, "layer_sizes"),
    "layer_sizes-one": (dict(layer_sizes=[3]), ValueError, "layer_sizes"),
    "layer_sizes-empty": (dict(layer_sizes=[]), ValueError, "layer_sizes"),
    "layer_sizes-zero": (dict(layer_sizes=[3, 0, 2]), ValueError, "layer_sizes"),
    "layer_sizes-negative": (dict(layer_sizes=[3, -4, 2]), ValueError, "layer_sizes"),
    "layer_sizes-float": (dict(layer_sizes=[3, 4.0, 2]), TypeError, "layer_sizes"),
    "layer_sizes-bool": (dict(layer_sizes=[3, True, 2]), TypeError, "layer_sizes"),
    "layer_sizes-too-many-params": (dict(layer_sizes=[100_000, 100_000]), ValueError, "layer_sizes"),
    "dropout-1": (dict(dropout=1.0), ValueError, "dropout"),
    "dropout-above-1": (dict(dropout=1.5), ValueError, "dropout"),
    "dropout-negative": (dict(dropout=-0.1), ValueError, "dropout"),
    "dropout-nan": (dict(dropout=float("nan")), ValueError, "dropout"),
    "dropout-inf": (dict(dropout=float("inf")), ValueError, "dropout"),
    "dropout-str": (dict(dropout="0.1"), TypeError, "dropout"),
    "dropout-bool": (dict(dropout=True), TypeError, "dropout"),
    "dropout-none": (dict(dropout=None), TypeError, "dropout"),
    "dropout-list-too-short": (dict(dropout=[0.1]), ValueError, "dropout"),
    "dropout-list-too-long": (dict(dropout=[0.1, 0.2, 0.3]), ValueError, "dropout"),
    "dropout-list-empty": (dict(dropout=[]), ValueError, "dropout"),
    "dropout-list-bad-rate": (dict(dropout=[0.1, 1.0]), ValueError, "dropout"),
    "dropout-list-str": (dict(dropout=[0.1, "a"]), TypeError, "dropout"),
    "dtype-int32": (dict(dtype="int32"), ValueError, "dtype"),
    "dtype-float16": (dict(dtype="float16"), ValueError, "dtype"),
    "dtype-np-float16": (dict(dtype=np.float16), ValueError, "dtype"),
    "dtype-complex": (dict(dtype="complex128"), ValueError, "dtype"),
    "dtype-longdouble": (dict(dtype=np.longdouble), ValueError, "dtype"),
    "dtype-unknown-name": (dict(dtype="float33"), ValueError, "dtype"),
    "dtype-nonsense": (dict(dtype="foo"), ValueError, "dtype"),
    "dtype-object": (dict(dtype=object()), ValueError, "dtype"),
    "random_state-negative": (dict(random_state=-1), ValueError, "random_state"),
    "random_state-float": (dict(random_state=1.5), TypeError, "random_state"),
    "random_state-str": (dict(random_state="0"), TypeError, "random_state"),
    "random_state-bool": (dict(random_state=True), TypeError, "random_state"),
    "random_state-list": (dict(random_state=[1, 2]), TypeError, "random_state"),
}


@parametrize_network
@pytest.mark.parametrize("case", list(BAD_CONSTRUCTOR))
def test_bad_constructor_arguments(Net, case):
    kwargs, error, name = BAD_CONSTRUCTOR[case]
    kwargs = dict(kwargs)
    layer_sizes = kwargs.pop("layer_sizes", [N_IN, N_HIDDEN, N_HIDDEN, N_OUT])  # two hidden layers
    with pytest.raises(error, match=_named(name)):
        Net(layer_sizes, **kwargs)


# ---------------------------------------------------------------------------
# fit, forward and loss_and_gradients arguments.

BAD_FIT = {
    "learning_rate-0": (dict(learning_rate=0), ValueError, "learning_rate"),
    "learning_rate-negative": (dict(learning_rate=-0.1), ValueError, "learning_rate"),
    "learning_rate-nan": (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
    "learning_rate-inf": (dict(learning_rate=float("inf")), ValueError, "learning_rate"),
    "learning_rate-str": (dict(learning_rate="0.1"), TypeError, "learning_rate"),
    "learning_rate-none": (dict(learning_rate=None), TypeError, "learning_rate"),
    "learning_rate-int-past-float": (dict(learning_rate=10**400), ValueError, "learning_rate"),
    "alpha-int-past-float": (dict(alpha=-(10**400)), ValueError, "alpha"),
    "alpha-fraction-past-float": (dict(alpha=Fraction(10**400)), ValueError, "alpha"),
    "batch_size-0": (dict(batch_size=0), ValueError, "batch_size"),
    "batch_size-negative": (dict(batch_size=-3), ValueError, "batch_size"),
    "batch_size-float": (dict(batch_size=2.0), TypeError, "batch_size"),
    "batch_size-bool": (dict(batch_size=True), TypeError, "batch_size"),
    "batch_size-none": (dict(batch_size=None), TypeError, "batch_size"),
    "epochs-0": (dict(epochs=0), ValueError, "epochs"),
    "epochs-negative": (dict(epochs=-1), ValueError, "epochs"),
    "epochs-float": (dict(epochs=1.5), TypeError, "epochs"),
    "optimizer-unknown": (dict(optimizer="rmsprop"), ValueError, "optimizer"),
    "optimizer-none": (dict(optimizer=None), ValueError, "optimizer"),
    "momentum-negative": (dict(momentum=-0.1), ValueError, "momentum"),
    "momentum-above-1": (dict(momentum=1.5), ValueError, "momentum"),
    "momentum-nan": (dict(momentum=float("nan")), ValueError, "momentum"),
    "nesterov-int": (dict(nesterov=1), TypeError, "nesterov"),
    "nesterov-str": (dict(nesterov="yes"), TypeError, "nesterov"),
    "beta_1-1": (dict(optimizer="adam", beta_1=1.0), ValueError, "beta_1"),
    "beta_1-negative": (dict(optimizer="adam", beta_1=-0.1), ValueError, "beta_1"),
    "beta_2-1": (dict(optimizer="adam", beta_2=1.0), ValueError, "beta_2"),
    "beta_2-nan": (dict(optimizer="adam", beta_2=float("nan")), ValueError, "beta_2"),
    "epsilon-0": (dict(optimizer="adam", epsilon=0.0), ValueError, "epsilon"),
    "epsilon-negative": (dict(optimizer="adam", epsilon=-1e-8), ValueError, "epsilon"),
    "alpha-negative": (dict(alpha=-1e-4), ValueError, "alpha"),
    "alpha-nan": (dict(alpha=float("nan")), ValueError, "alpha"),
    "alpha-inf": (dict(alpha=float("inf")), ValueError, "alpha"),
    "alpha-str": (dict(alpha="0"), TypeError, "alpha"),
    "clip_norm-0": (dict(clip_norm=0.0), ValueError, "clip_norm"),
    "clip_norm-negative": (dict(clip_norm=-1.0), ValueError, "clip_norm"),
    "clip_norm-nan": (dict(clip_norm=float("nan")), ValueError, "clip_norm"),
    "clip_norm-str": (dict(clip_norm="1"), TypeError, "clip_norm"),
    "shuffle-int": (dict(shuffle=0), TypeError, "shuffle"),
    "shuffle-none": (dict(shuffle=None), TypeError, "shuffle"),
    "verbose-int": (dict(verbose=1), TypeError, "verbose"),
}


@parametrize_network
@pytest.mark.parametrize("case", list(BAD_FIT))
def test_bad_fit_arguments(Net, case):
    kwargs, error, name = BAD_FIT[case]
    net = _make(Net)
    X, Y = _data()
    _assert_rejected(net, lambda: net.fit(X, Y, **kwargs), error, name)
    assert not hasattr(net, "loss_curve_")


@parametrize_network
@pytest.mark.parametrize("training", [1, 0, "yes", None, np.array([True])])
def test_bad_training_flag(Net, training):
    net = _make(Net, dropout=0.5)
    X, _ = _data()
    _assert_rejected(net, lambda: net.forward(X, training=training), TypeError, "training")


@parametrize_network
@pytest.mark.parametrize("alpha, error", [(-1.0, ValueError), (float("nan"), ValueError), ("0.1", TypeError),
                                          (None, TypeError)])
def test_bad_loss_and_gradients_alpha(Net, alpha, error):
    net = _make(Net)
    X, Y = _data()
    _assert_rejected(net, lambda: net.loss_and_gradients(X, Y, alpha=alpha), error, "alpha")


# ---------------------------------------------------------------------------
# coefs_ / intercepts_ assignment.

def _bad_layer_lists():
    W = [np.ones((N_IN, N_HIDDEN)), np.ones((N_HIDDEN, N_OUT))]
    b = [np.ones(N_HIDDEN), np.ones(N_OUT)]
    nan_W, nan_b = [W[0], W[1].copy()], [b[0], b[1].copy()]
    nan_W[1][0, 0] = np.nan
    nan_b[1][0] = np.inf
    return {
        "coefs_": {
            "too-few": ([W[0]], ValueError),
            "too-many": (W + [np.ones((N_OUT, N_OUT))], ValueError),
            "transposed": ([W[0].T, W[1]], ValueError),
            "second-wrong-shape": ([W[0], np.ones((N_HIDDEN, N_OUT + 1))], ValueError),
            "second-flat": ([W[0], W[1].ravel()], ValueError),
            "second-nan": (nan_W, ValueError),
            "second-strings": ([W[0], W[1].astype(str)], TypeError),
            "second-complex": ([W[0], W[1].astype(complex)], TypeError),
            "second-object": ([W[0], np.array([[object()] * N_OUT] * N_HIDDEN)], TypeError),
            "array": (np.ones((2, N_IN, N_HIDDEN)), TypeError),
            "none": (None, TypeError),
            "string": ("weights", TypeError),
        },
        "intercepts_": {
            "too-few": ([b[0]], ValueError),
            "too-many": (b + [np.ones(N_OUT)], ValueError),
            "second-wrong-shape": ([b[0], np.ones(N_OUT + 1)], ValueError),
            "second-column": ([b[0], b[1][:, None]], ValueError),
            "second-inf": (nan_b, ValueError),
            "second-strings": ([b[0], b[1].astype(str)], TypeError),
            "array": (np.ones((2, N_OUT)), TypeError),
            "none": (None, TypeError),
        },
    }


BAD_LAYERS = _bad_layer_lists()


@parametrize_network
@parametrize_dtype
@pytest.mark.parametrize("attribute, case", [(a, c) for a in BAD_LAYERS for c in BAD_LAYERS[a]])
def test_bad_layer_assignment(Net, dtype, attribute, case):
    value, error = BAD_LAYERS[attribute][case]
    net = _make(Net, dtype)
    # Even where the first array is valid (all ones), nothing is written.
    _assert_rejected(net, lambda: setattr(net, attribute, value), error, attribute)


@parametrize_network
@pytest.mark.parametrize("attribute", ["coefs_", "intercepts_"])
def test_bad_item_assignment(Net, attribute):
    net = _make(Net)
    layers = getattr(net, attribute)
    shape = layers[1].shape
    bad_shape = np.ones(shape + (1,))
    bad_nan = np.full(shape, np.nan)
    bad_str = np.full(shape, "x")
    _assert_rejected(net, lambda: layers.__setitem__(1, bad_shape), ValueError, attribute)
    _assert_rejected(net, lambda: layers.__setitem__(1, bad_nan), ValueError, attribute)
    _assert_rejected(net, lambda: layers.__setitem__(1, bad_str), TypeError, attribute)
    with pytest.raises(TypeError):
        layers[0:1] = [np.ones(layers[0].shape)]
    before = _snapshot(net)
    with pytest.raises(IndexError):
        layers[5] = np.ones(shape)
    _assert_unchanged(net, before)


def _add_then_assign(net, name, extra):
    if name == "coefs_":
        net.coefs_ = net.coefs_ + [extra]
    else:
        net.intercepts_ = net.intercepts_ + [extra]


def _augmented_assign(net, name, extra):
    if name == "coefs_":
        net.coefs_ += [extra]
    else:
        net.intercepts_ += [extra]


LIST_MUTATIONS = {
    "add-then-assign": _add_then_assign,
    "augmented-assign": _augmented_assign,
    "append": lambda net, name, extra: getattr(net, name).append(extra),
    "pop": lambda net, name, extra: getattr(net, name).pop(),
    "del": lambda net, name, extra: getattr(net, name).__delitem__(0),
    "reverse": lambda net, name, extra: getattr(net, name).reverse(),
}
LIST_MUTATION_CASES = [("coefs_", m) for m in LIST_MUTATIONS] + [
    ("intercepts_", m) for m in ("add-then-assign", "augmented-assign")]


@parametrize_network
@pytest.mark.parametrize("attribute, mutation", LIST_MUTATION_CASES)
def test_layer_lists_cannot_be_restructured(Net, attribute, mutation):
    # coefs_ / intercepts_ are the model's own views: whatever is done to the
    # list, it keeps one array per layer, the model's, and forward is unchanged.
    # `net.coefs_ += [W]` must fail like any wrong-count assignment, without
    # first appending to the list in place.
    net = _make(Net)
    X, _ = _data()
    before, out = _snapshot(net), net.forward(X)
    extra = np.ones(getattr(net, attribute)[-1].shape)
    try:
        LIST_MUTATIONS[mutation](net, attribute, extra)
    except (TypeError, ValueError, AttributeError):
        pass
    assert len(getattr(net, attribute)) == net.n_layers_
    _assert_unchanged(net, before)
    assert_array_equal(net.forward(X), out)


# ---------------------------------------------------------------------------
# Awkward but valid input: the same result as the plain case.

def _awkward(X):
    """Ways to hand over the same numbers (X holds small non-negative integers)."""
    padded = np.zeros((2 * X.shape[0], 3 * X.shape[1]))
    padded[::2, ::3] = X
    read_only = X.copy()
    read_only.flags.writeable = False
    return {
        "fortran": np.asfortranarray(X),
        "strided-slice": padded[::2, ::3],
        "negative-strides": np.ascontiguousarray(X[::-1, ::-1])[::-1, ::-1],
        "read-only": read_only,
        "big-endian-f8": X.astype(">f8"),
        "big-endian-f4": X.astype(">f4"),
        "float32": X.astype(np.float32),
        "float16": X.astype(np.float16),
        "int64": X.astype(np.int64),
        "int32": X.astype(np.int32),
        "uint8": X.astype(np.uint8),
        "list": X.tolist(),
        "tuple": tuple(tuple(row) for row in X.tolist()),
        "object-floats": X.astype(object),
        "object-ints": X.astype(np.int64).astype(object),
    }


AWKWARD_CASES = list(_awkward(np.zeros((2, 2))))


@parametrize_network
@parametrize_dtype
@pytest.mark.parametrize("case", AWKWARD_CASES)
def test_awkward_valid_input_gives_the_plain_result(Net, dtype, case):
    X, Y = _data()
    X_odd, Y_odd = _awkward(X)[case], _awkward(Y)[case]
    X_before = np.array(X_odd, dtype=np.float64, copy=True)
    plain, odd = _make(Net, dtype), _make(Net, dtype)

    assert_array_equal(odd.forward(X_odd), plain.forward(X))
    assert_array_equal(odd.predict(X_odd), plain.predict(X))
    assert odd.forward(X_odd).dtype == dtype

    loss_plain, dW_plain, db_plain = plain.loss_and_gradients(X, Y, alpha=0.1)
    loss_odd, dW_odd, db_odd = odd.loss_and_gradients(X_odd, Y_odd, alpha=0.1)
    assert loss_odd == loss_plain
    for got, want in zip(dW_odd + db_odd, dW_plain + db_plain):
        assert_array_equal(got, want)

    kwargs = dict(epochs=2, batch_size=4, learning_rate=0.001, momentum=0.5)
    plain.fit(X, Y, **kwargs)
    odd.fit(X_odd, Y_odd, **kwargs)
    _assert_unchanged(odd, _snapshot(plain))
    assert odd.loss_curve_ == plain.loss_curve_
    # The caller's arrays are left alone.
    assert_array_equal(np.array(X_odd, dtype=np.float64), X_before)


@parametrize_network
def test_awkward_valid_constructor_arguments(Net):
    plain = Net([3, 4, 4, 2], activation="logistic", dtype="float32", dropout=0.25, random_state=0)
    for kwargs in (
        dict(layer_sizes=(3, 4, 4, 2)),
        dict(layer_sizes=np.array([3, 4, 4, 2])),
        dict(layer_sizes=[np.int64(3), np.int32(4), np.uint8(4), 2]),
        dict(activation="sigmoid"),
        dict(dtype=np.float32),
        dict(dtype=np.dtype("float32")),
        dict(dropout=np.float32(0.25)),
        dict(dropout=[0.25, 0.25]),
        dict(dropout=(0.25, np.float64(0.25))),
        dict(dropout=np.array([0.25, 0.25])),
        dict(random_state=np.int64(0)),
    ):
        args = dict(layer_sizes=[3, 4, 4, 2], activation="logistic", dtype="float32", dropout=0.25, random_state=0)
        args.update(kwargs)
        net = Net(**args)
        assert net.dtype == plain.dtype and net.activation == plain.activation
        assert net.layer_sizes == plain.layer_sizes and net.dropout == plain.dropout
        _assert_unchanged(net, _snapshot(plain))


@parametrize_network
def test_awkward_valid_fit_arguments(Net):
    X, Y = _data(10)
    plain = _make(Net)
    plain.fit(X, Y, epochs=2, batch_size=3, learning_rate=0.01, momentum=0.5, alpha=0.01, clip_norm=5.0)
    odd = _make(Net)
    odd.fit(X, Y, epochs=np.int64(2), batch_size=np.int32(3), learning_rate=np.float64(0.01),
            momentum=np.float64(0.5), alpha=np.float64(0.01), clip_norm=5, shuffle=np.bool_(True))
    _assert_unchanged(odd, _snapshot(plain))
    # A batch larger than the data set is one full batch.
    big, full = _make(Net), _make(Net)
    big.fit(X, Y, epochs=1, batch_size=1000, shuffle=False)
    full.fit(X, Y, epochs=1, batch_size=len(X), shuffle=False)
    _assert_unchanged(big, _snapshot(full))


@pytest.mark.parametrize("name", ["alpha", "momentum", "clip_norm"])
def test_an_estimator_setting_past_the_largest_float_is_a_value_error(name):
    # scikit-learn's parameter check passes an int of any size as a real number; the optimizer's check
    # names it (float() of it raises OverflowError)
    from fastmlp import MLPRegressor
    est = MLPRegressor(hidden_layer_sizes=(3,), solver="sgd", max_iter=2, **{name: 10**400})
    with pytest.raises((ValueError, TypeError), match=name):
        est.fit(np.ones((5, 2)), np.arange(5.0))
    assert not hasattr(est, "coefs_")


def _estimator_state(est):
    """What a failed call must not change: the estimator's attributes (arrays by value), its network's
    weights and settings, its trainer's settings and optimizer state (not the cache of the parameters
    scikit-learn's checks last passed)."""
    import pickle
    return pickle.dumps({k: v for k, v in vars(est).items() if k != "_validated_params"})


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("case", ["sample_weight", "X_val", "y_val"])
def test_a_fit_that_fails_in_its_checks_leaves_the_estimator_as_it_was(kind, case):
    # the checks after the network is built (sample weights, the validation set) fail: an unfitted
    # estimator stays unfitted (not fitted with its new network's initial weights), a fitted one keeps
    # every attribute, its weights and its optimizer's state, through a warm start and partial_fit
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    from fastmlp import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = rng.integers(0, 3, 30) if kind == "classifier" else rng.standard_normal(30)
    bad = {"sample_weight": dict(sample_weight=-np.ones(30)),
           "X_val": dict(X_val=np.full((4, 3), np.nan), y_val=y[:4]),
           "y_val": dict(X_val=X[:4], y_val=np.array([7, 7, 7, 7]) if kind == "classifier" else np.full(4, np.inf))}
    Est = MLPClassifier if kind == "classifier" else MLPRegressor
    est = Est(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.raises(ValueError, match=case):
        est.fit(X, y, **bad[case])
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert not [name for name in vars(est) if name.endswith("_") or name.startswith("_") and name != "_validated_params"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.set_params(warm_start=True).fit(X, y)
        before = _estimator_state(est)
        with pytest.raises(ValueError, match=case):
            est.fit(X, y, **bad[case])
        assert _estimator_state(est) == before
        if case == "sample_weight":
            with pytest.raises(ValueError, match=case):
                est.partial_fit(X, y, **bad[case])
            assert _estimator_state(est) == before
        est.partial_fit(X, y)  # and it goes on
    assert len(est.loss_curve_) == 4


@pytest.mark.parametrize("case", ["sample_weight", "X_val", "y_val"])
def test_an_ensemble_fit_that_fails_in_its_checks_leaves_it_unfitted(case):
    from fastmlp import MLPEnsembleRegressor
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), rng.standard_normal(30)
    bad = {"sample_weight": dict(sample_weight=-np.ones(30)),
           "X_val": dict(X_val=np.full((4, 3), np.nan), y_val=y[:4]),
           "y_val": dict(X_val=X[:4], y_val=np.full(4, np.inf))}[case]
    ens = MLPEnsembleRegressor(hidden_layer_sizes=(4,), max_iter=3, n_members=2, random_state=0)
    with pytest.raises(ValueError, match=case):
        ens.fit(X, y, **bad)
    assert not hasattr(ens, "estimators_") and not hasattr(ens, "n_features_in_")


def test_network_fit_arguments_named_that_the_reference_lacks():
    # found by probing: the validation weights' errors named sample_weight (the training weights, which were
    # fine); a schedule's class for an instance reached its start() as an unbound method (an AttributeError)
    from fastmlp import Network, schedules

    net = _make(Network)
    X, Y = _data()
    _assert_rejected(net, lambda: net.fit(X, Y, validation_data=(X, Y, -np.ones(len(X)))), ValueError,
                     "validation_data[2] (sample_weight_val)")
    _assert_rejected(net, lambda: net.fit(X, Y, validation_data=(X, Y, np.ones(2))), ValueError,
                     "validation_data[2] (sample_weight_val)")
    _assert_rejected(net, lambda: net.fit(X, Y, lr_schedule=schedules.CosineAnnealing), TypeError, "lr_schedule")
    assert not hasattr(net, "loss_curve_")


def test_a_numpy_scalar_array_dropout_is_its_value():
    # found by probing: np.array(0.5) raised "iteration over a 0-d array"
    from fastmlp import Network

    assert Network([N_IN, N_HIDDEN, N_OUT], dropout=np.array(0.25)).dropout == (0.25,)
    with pytest.raises(ValueError, match=_named("dropout")):
        Network([N_IN, N_HIDDEN, N_OUT], dropout=np.array(1.5))


def test_estimator_validation_weights_and_schedule_class_are_named():
    from sklearn.utils._param_validation import InvalidParameterError

    from fastmlp import MLPRegressor, schedules

    X, Y = _data(20)
    y = Y[:, 0]
    with pytest.raises(ValueError, match=_named("sample_weight_val")):
        MLPRegressor(max_iter=2).fit(X, y, X_val=X, y_val=y, sample_weight_val=-np.ones(20))
    with pytest.raises(InvalidParameterError, match="an instance, not a class"):
        MLPRegressor(learning_rate=schedules.CosineAnnealing, max_iter=2).fit(X, y)


def test_the_callers_sparse_matrix_is_never_changed():
    # found by probing: the caller's CSR of the model's dtype had its int32 indices swapped for int64 ones
    import scipy.sparse as sp
    from sklearn.exceptions import ConvergenceWarning

    from fastmlp import MLPClassifier, Network

    for make in (sp.csr_matrix, sp.csr_array):
        X = make(np.eye(4))
        arrays = (X.indices, X.indptr, X.data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = MLPClassifier((3,), max_iter=2, random_state=0).fit(X, [0, 1, 0, 1])
        clf.predict_proba(X)
        Network([4, 2], random_state=0).fit(X, np.ones((4, 2)), epochs=1)
        assert all(a is b for a, b in zip((X.indices, X.indptr, X.data), arrays))
        assert X.indices.dtype == np.int32


def test_complex_sparse_input_and_numbers_past_the_dtype_are_refused():
    # found by probing: a complex sparse X lost its imaginary part with a warning; a Python int past float64 in
    # an object array, and n_threads past a C int, escaped as a bare OverflowError
    import scipy.sparse as sp

    from fastmlp import Network

    net = _make(Network)
    before = _snapshot(net)
    with pytest.raises(TypeError, match=_named("X")):
        net.forward(sp.csr_matrix(np.full((2, N_IN), 1 + 5j)))
    with pytest.raises(ValueError, match=_named("X")):
        net.forward(np.array([[10**400] + [0] * (N_IN - 1)], dtype=object))
    _assert_unchanged(net, before)
    X, Y = _data()
    assert_array_equal(net.forward(X, n_threads=2**40), net.forward(X, n_threads=1))  # (capped, as any count)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_weights_whose_sum_the_dtype_cannot_scale(dtype):
    # a batch's weighted mean is scaled by 1 / its weights' sum in the model's dtype: past 1 / the smallest
    # normal number that scale is subnormal and training flushed it to zero: no step at all, in silence
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.integers(0, 2, 40)
    most = 1 / np.finfo(dtype).tiny
    big = np.full(40, most / 20, dtype=dtype)  # each weight finite in dtype, a batch of 40 sums twice too much
    net = fastmlp.Network([3, 4, 1], dtype=dtype, random_state=0)
    before = [W.copy() for W in net.coefs_]
    with pytest.raises(ValueError, match=rf"sample_weight sums to .*; a {dtype} model needs a batch's weights to sum"):
        net.fit(X, y, epochs=1, batch_size=40, sample_weight=big)
    with pytest.raises(ValueError, match="over its 32 largest"):  # batches of 32 rows: 1.6 times too much
        net.fit(X, y, epochs=1, sample_weight=big)
    for W, B in zip(net.coefs_, before):
        assert_array_equal(W, B)
    net.fit(X, y, epochs=1, validation_data=(X, y, big))  # a validation set's weights are summed in float64
    assert np.isfinite(net.validation_loss_curve_).all()
    with pytest.raises(ValueError, match="sample_weight sums to"):  # (batch "auto": all 40 rows)
        fastmlp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, dtype=dtype).fit(X, y, sample_weight=big)
    with pytest.raises(ValueError, match="sample_weight sums to"):  # lbfgs: one mean over every row
        fastmlp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, dtype=dtype, solver="lbfgs",
                             batch_size=1).fit(X, y, sample_weight=big)
    with pytest.raises(ValueError, match="sample_weight sums to"):
        net.loss_and_gradients(X, y, sample_weight=big)
    with pytest.raises(ValueError, match="sample_weight times class_weight sums to"):
        fastmlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, dtype=dtype,
                              class_weight={0: most / 20, 1: most / 20}).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight sums, over its 32 largest"):
        fastmlp.NetworkEnsemble([3, 4, 1], n_members=2, dtype=dtype).fit(X, y, epochs=1, sample_weight=big)
    # the bound is a batch's: batches of 2 rows of these weights train (a mean scaled by 1 / 2 of them)
    fastmlp.Network([3, 4, 1], dtype=dtype, random_state=0).fit(X, y, epochs=1, batch_size=2, sample_weight=big)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (max_iter)
        fastmlp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, dtype=dtype, batch_size=2).fit(
            X, y, sample_weight=big)
    # the same weights scaled down train, the same as unit weights (a weighted mean)
    same = fastmlp.Network([3, 4, 1], dtype=dtype, random_state=0).fit(X, y, epochs=2, shuffle=False,
                                                                      sample_weight=np.full(40, most / 80))
    unit = fastmlp.Network([3, 4, 1], dtype=dtype, random_state=0).fit(X, y, epochs=2, shuffle=False)
    np.testing.assert_allclose(same.coefs_[0], unit.coefs_[0], rtol=1e-5 if dtype == "float32" else 1e-12)


def test_a_regressors_one_row_validation_set_with_r2_is_refused():
    # R^2 of one row is NaN: every epoch's score was NaN, early stopping never saw an improvement and the fit
    # returned the initial weights (probing); the automatic split already refused fewer than two rows
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.random(40)
    reg = fastmlp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, early_stopping=True)
    with pytest.raises(ValueError, match="X_val has 1 row: R\\^2"):
        reg.fit(X, y, X_val=X[:1], y_val=y[:1])
    assert not hasattr(reg, "n_iter_")
    with pytest.raises(ValueError, match="X_val has 1 row: R\\^2, the regressor's score \\(scoring='r2'\\)"):
        reg.set_params(scoring="r2").fit(X, y, X_val=X[:1], y_val=y[:1])
    reg.set_params(scoring=None)
    with pytest.raises(ValueError, match="X_val has 1 row"):
        fastmlp.MLPEnsembleRegressor(hidden_layer_sizes=(4,), max_iter=3, n_members=2).fit(X, y, X_val=X[:1],
                                                                                           y_val=y[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (max_iter)
        reg.set_params(scoring="neg_mean_squared_error").fit(X, y, X_val=X[:1], y_val=y[:1])
        fastmlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(X, y > 0.5, X_val=X[:1], y_val=y[:1] > 0.5)
    assert reg.n_iter_ > 0


def test_strings_dates_and_float32_overflow_are_named():
    # found by probing: the estimators' predict parsed numeric strings and took dates as their counts (scikit-
    # learn's refuses both); a finite 1e39 for a float32 Network was "NaN or infinity", with an overflow warning
    rng = np.random.default_rng(0)
    X, y = rng.random((30, 2)), rng.random(30)
    reg = fastmlp.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3).fit(X, y)
    ens = fastmlp.MLPEnsembleRegressor(hidden_layer_sizes=(3,), max_iter=3, n_members=2).fit(X, y)
    for model in (reg, ens):
        with pytest.raises(ValueError, match="not compatible with arrays of bytes/strings"):
            model.predict(X.astype(str))
        with pytest.raises(ValueError, match="not compatible with arrays of bytes/strings"):
            model.score(X.astype(str), y)
        with pytest.raises(TypeError, match="dates and times are not numbers"):
            model.predict(np.array([["2020-01-01", "2020-01-02"]], dtype="datetime64[D]"))
    net = fastmlp.Network([2, 3, 1], dtype="float32", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no RuntimeWarning of the cast either)
        with pytest.raises(ValueError, match="values up to 1e\\+39 in magnitude, which overflow float32"):
            net.predict(np.array([[1e39, 0.0]]))
        with pytest.raises(ValueError, match="overflow float32"):
            net.fit(np.array([[1e39, 0.0]]), [1.0], epochs=1)
        with pytest.raises(ValueError, match="contains NaN or infinity"):
            net.predict(np.array([[np.inf, 0.0]]))
