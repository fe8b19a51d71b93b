"""Fuzz: random networks and hyperparameters, the engine against the NumPy reference.

Hypothesis draws layer sizes (width 1 included), dtypes, activations (every
registry name and alias), output pairs, init schemes, dropout, optimizers and
their settings, batch sizes (larger than the data too), sparse (CSR) X and
sample weights; fastmlp.Network and fastmlp.reference.Network then start from
the same weights and seed and must agree on forward, loss_and_gradients and
one or two epochs of fit. With dropout the engine's masks come from its own
PRNG, so training is checked for shapes, dtypes and finiteness only (forward
without dropout is still compared).

The normal run draws FASTMLP_FUZZ_EXAMPLES examples (default 200),
derandomized so CI is deterministic; tests/native/run_sanitizers.sh runs
thousands under AddressSanitizer.
"""
import os
import re

import numpy as np
import scipy.sparse
from _helpers import make_targets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import fastmlp
from fastmlp import _registry, reference

EXAMPLES = int(os.environ.get("FASTMLP_FUZZ_EXAMPLES", 200))
# Engine vs reference after up to two epochs, relative to each array's largest
# entry (tests/test_network.py uses 1e-4 / 1e-10 for tamer, fixed settings).
RTOL = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}

ACTIVATION_NAMES = sorted(_registry.ACTIVATIONS) + sorted(_registry.ACTIVATION_ALIASES)
OUTPUT_PAIRS = list(_registry.OUTPUTS)

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def cases(draw):
    """One fuzz case: the network, the data's shape and kind, and fit's arguments."""
    output_activation, loss = draw(st.sampled_from(OUTPUT_PAIRS))
    n_hidden = draw(st.integers(0, 3))
    hidden = draw(st.lists(st.integers(1, 8), min_size=n_hidden, max_size=n_hidden))
    n_outputs = draw(st.integers(2 if output_activation == "softmax" else 1, 4))
    n_samples = draw(st.integers(1, 25))
    optimizer = draw(st.sampled_from(["sgd", "adam"]))
    if optimizer == "sgd":
        # exp + poisson grows exponentially with its output: gentler steps
        high = 0.05 if output_activation == "exp" else 0.2
        learning_rate = draw(st.floats(1e-3, high))
    else:
        learning_rate = draw(st.floats(1e-4, 0.02))
    dropout = 0.0
    if n_hidden and draw(st.integers(0, 3)) == 0:  # a quarter of the cases with hidden layers
        dropout = draw(st.one_of(st.floats(0.0, 0.6),
                                 st.lists(st.floats(0.0, 0.6), min_size=n_hidden, max_size=n_hidden)))
    return dict(
        network=dict(
            layer_sizes=[draw(st.integers(1, 6)), *hidden, n_outputs],
            activation=draw(st.sampled_from(ACTIVATION_NAMES)),
            output_activation=output_activation,
            loss=loss,
            init=draw(st.sampled_from(sorted(_registry.INITS))),
            dtype=draw(st.sampled_from(["float32", "float64"])),
            dropout=dropout,
            random_state=draw(st.integers(0, 2**16)),
        ),
        n_samples=n_samples,
        sparse=draw(st.booleans()),
        sample_weight=draw(st.sampled_from([None, "positive", "with-zeros"])),
        one_dimensional_Y=draw(st.booleans()),
        fit=dict(
            epochs=draw(st.integers(1, 2)),
            batch_size=draw(st.integers(1, n_samples + 5)),
            optimizer=optimizer,
            learning_rate=learning_rate,
            momentum=draw(st.one_of(st.just(0.0), st.floats(0.0, 0.95))),
            nesterov=draw(st.booleans()),
            beta_1=draw(st.floats(0.0, 0.95)),
            beta_2=draw(st.floats(0.9, 0.9999)),
            epsilon=draw(st.sampled_from([1e-8, 1e-6, 1e-3])),
            alpha=draw(st.one_of(st.just(0.0), st.floats(0.0, 0.1))),
            clip_norm=draw(st.one_of(st.none(), st.floats(0.05, 5.0))),
            shuffle=draw(st.booleans()),
        ),
    )


def _case(layer_sizes, n_samples, batch_size, activation="relu", pair=("identity", "squared_error"), dtype="float64",
          **fit):
    """An explicit case in the form cases() draws (for @example)."""
    output_activation, loss = pair
    fit_args = dict(epochs=2, batch_size=batch_size, optimizer="sgd", learning_rate=0.05, momentum=0.0,
                    nesterov=False, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=0.0, clip_norm=None, shuffle=True)
    fit_args.update(fit)
    return dict(
        network=dict(layer_sizes=layer_sizes, activation=activation, output_activation=output_activation, loss=loss,
                     init="auto", dtype=dtype, dropout=0.0, random_state=0),
        n_samples=n_samples, sparse=False, sample_weight=None, one_dimensional_Y=False, fit=fit_args,
    )



def _with_init(case, init):
    """case with the network's init set."""
    return dict(case, network=dict(case["network"], init=init))


def _data(case):
    """X (dense or CSR), Y and sample weights for a case, from its seed."""
    net = case["network"]
    rng = np.random.default_rng(net["random_state"] + 1)
    n, n_in, n_out = case["n_samples"], net["layer_sizes"][0], net["layer_sizes"][-1]
    X = rng.standard_normal((n, n_in))
    if case["sparse"]:
        X[rng.random(X.shape) < 0.5] = 0.0  # empty rows and columns happen too
        X = scipy.sparse.csr_matrix(X)
    Y = make_targets(net["output_activation"], (n, n_out), rng, net["loss"])
    if case["one_dimensional_Y"] and n_out == 1:
        Y = Y.ravel()
    sample_weight = None
    if case["sample_weight"] is not None:
        sample_weight = rng.uniform(0.1, 2.0, n)
        if case["sample_weight"] == "with-zeros":
            sample_weight[rng.random(n) < 0.4] = 0.0
            sample_weight[rng.integers(n)] = 1.0  # a positive sum
    return X, Y, sample_weight


def _slopes(net):
    return list(getattr(net, "prelu_slopes_", []))


def _params(net):
    """Copies of all trained parameters, in order."""
    return [a.copy() for a in list(net.coefs_) + list(net.intercepts_) + _slopes(net)]


def _gradients(result):
    """loss_and_gradients' result as (loss, flat list of arrays)."""
    loss, *groups = result
    return loss, [g for group in groups for g in group]


def _assert_close(got, want, rtol, what, scale=0.0):
    """Relative agreement, scaled by the largest entry (entries near 0 are not divided by ~0),
    or by `scale` when that is larger (a sum whose terms cancel)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    assert np.isfinite(got).all(), f"{what}: not finite"
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, scale, 1e-30)
    assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _assert_shapes_and_finite(net, shapes, dtype):
    params = _params(net)
    assert [p.shape for p in params] == shapes
    for p in params:
        assert p.dtype == dtype
        assert np.isfinite(p).all()


def _fit(net, X, Y, fit):
    """Fit; None, or (the epoch named by a divergence error, the number of epochs the weights are after).

    The weights are those of the start of that epoch, or those before the call
    when that epoch's start already overflows the outputs.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            net.fit(X, Y, **fit)
    except ValueError as exc:
        match = re.search(r"diverged in epoch (\d+)", str(exc))
        if not match:
            raise
        epoch = int(match.group(1))
        return epoch, 0 if "before this call" in str(exc) else epoch - 1
    return None


@FUZZ_SETTINGS
@given(case=cases())
# Width-1 layers everywhere, one sample, batch larger than the data:
@example(case=_case([1, 1, 1], n_samples=1, batch_size=4))
# a float32 poisson loss that is a near-zero sum of cancelling terms (found under the sanitizers)
@example(case=_case([1, 1, 1, 1], n_samples=1, batch_size=1, activation="identity", dtype="float32",
                    pair=("exp", "poisson"), epochs=1, learning_rate=0.03125, shuffle=False))
# a float32 absolute_error bias gradient whose +-1/n terms cancel (found under the sanitizers, 300 examples)
@example(case=_with_init(_case([1, 1], n_samples=20, batch_size=1, activation="identity", dtype="float32",
                               pair=("identity", "absolute_error"), epochs=1, learning_rate=0.125, shuffle=False),
                         "glorot_normal"))
@example(case=_case([3, 1, 5, 1], n_samples=7, batch_size=30, activation="tanh", dtype="float32"))
@example(case=_case([1, 1, 2], n_samples=5, batch_size=9, activation="logistic", pair=("softmax", "log_loss"),
                    optimizer="adam", learning_rate=0.01))
@example(case=_case([2, 1, 1], n_samples=3, batch_size=3, activation="swish", pair=("exp", "poisson"),
                    momentum=0.9, nesterov=True, alpha=0.05, clip_norm=0.1))
def test_engine_matches_reference(case):
    dtype = np.dtype(case["network"]["dtype"])
    rtol = RTOL[dtype]
    X, Y, sample_weight = _data(case)
    engine = fastmlp.Network(**case["network"])
    ref = reference.Network(**case["network"])
    # The same seed gives the same initial weights; set them all the same anyway.
    assert len(_params(engine)) == len(_params(ref))
    for a, b in zip(_params(engine), _params(ref)):
        assert_array_equal(a, b)
    ref.coefs_ = list(engine.coefs_)
    ref.intercepts_ = list(engine.intercepts_)
    if _slopes(engine):
        ref.prelu_slopes_ = _slopes(engine)
    shapes = [p.shape for p in _params(engine)]
    n_outputs = case["network"]["layer_sizes"][-1]
    alpha = case["fit"]["alpha"]

    # Forward (no dropout at inference).
    out = engine.forward(X)
    assert out.shape == (case["n_samples"], n_outputs) and out.dtype == dtype
    _assert_close(out, ref.forward(X), rtol, "forward")
    assert_array_equal(engine.predict(X), out)

    # Loss and gradients, with the L2 term and the sample weights of the case.
    loss, grads = _gradients(engine.loss_and_gradients(X, Y, alpha=alpha, sample_weight=sample_weight))
    ref_loss, ref_grads = _gradients(ref.loss_and_gradients(X, Y, alpha=alpha, sample_weight=sample_weight))
    # a loss can be a near-zero sum of cancelling terms (poisson: p - y z + y log y - y):
    # its rounding follows the size of the terms, about |Y| + |P| per row
    terms = float(np.mean(np.abs(np.asarray(Y, dtype=np.float64)).reshape(len(out), -1).sum(axis=1)
                          + np.abs(out.astype(np.float64)).sum(axis=1)))
    _assert_close(loss, ref_loss, rtol, "loss", scale=terms)
    assert [g.shape for g in grads] == shapes
    for i, (g, ref_g) in enumerate(zip(grads, ref_grads)):
        assert g.dtype == dtype
        # a gradient can be a near-zero sum of cancelling terms too (absolute_error's +-w/n per row summed
        # to 0 in float64 and to 2^-27 in float32, found under the sanitizers' 300 examples): judged against
        # the size of the loss's terms when that is larger than its own entries
        _assert_close(g, ref_g, rtol, f"gradient {i}", scale=terms if not np.any(ref_g) else 0.0)

    # Training: one or two epochs from the same weights and seed.
    fit = dict(case["fit"], sample_weight=sample_weight)
    n_layers = len(case["network"]["layer_sizes"]) - 1
    diverged = [_fit(net, X, Y, fit) for net in (engine, ref)]
    for net, divergence in zip((engine, ref), diverged):
        completed = fit["epochs"] if divergence is None else divergence[1]
        assert len(net.loss_curve_) == completed
        assert net.grad_norms_.shape == (completed, n_layers)
    assert np.isfinite(engine.loss_curve_).all() and np.isfinite(engine.grad_norms_).all()
    _assert_shapes_and_finite(engine, shapes, dtype)
    if diverged[0] is None:
        # A fit that returned leaves a model with finite outputs.
        assert np.isfinite(engine.forward(X)).all(), "fit returned, but forward(X) is not finite"
    if np.any(np.asarray(case["network"]["dropout"]) > 0):
        # Different masks: shapes, dtypes and finiteness only.
        dropped = engine.forward(X, training=True)
        assert dropped.shape == out.shape and dropped.dtype == dtype
        if diverged[0] is None:
            assert np.isfinite(dropped).all()
        return
    assert diverged[0] == diverged[1], (f"divergence ((epoch, epochs kept) or None): engine {diverged[0]}, "
                                        f"reference {diverged[1]}")
    for i, (got, want) in enumerate(zip(_params(engine), _params(ref))):
        assert got.dtype == want.dtype == dtype
        _assert_close(got, want, rtol, f"parameter {i} after fit")
    _assert_close(engine.loss_curve_, ref.loss_curve_, rtol, "loss_curve_")
    _assert_close(engine.grad_norms_, ref.grad_norms_, rtol, "grad_norms_")
    if diverged[0] is None:
        _assert_close(engine.forward(X), ref.forward(X), rtol, "forward after fit")
