"""Each compiled kernel, through the `_engine` test hooks, against `fastmlp.reference`.

Both dtypes, one tolerance table. Activations and output pairs are parametrized
over the registry, so a new entry is tested without editing this file.
"""
import numpy as np
from _helpers import LOSS_PARAMS, make_targets
import pytest

from fastmlp import _engine, _registry
from fastmlp import reference as ref

# Relative tolerance per dtype. Comparisons also allow an absolute error of
# RTOL times the largest |expected| value (see assert_close), so entries that
# are tiny because of cancellation are judged against the array's scale.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}

DTYPES = [np.float32, np.float64]
ACTIVATION_NAMES = sorted(_registry.ACTIVATIONS)
# activations of the generic kernels (a learnable slope has its own: test_prelu_*)
FIXED_ACTIVATIONS = sorted(n for n, a in _registry.ACTIVATIONS.items() if not a.learnable_slope)
OUTPUT_KEYS = list(_registry.OUTPUTS)


def assert_close(actual, desired, dtype, rtol=None):
    rtol = RTOL[dtype] if rtol is None else rtol
    desired = np.asarray(desired)
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale)


def _output_id(key):
    return "+".join(key)


# ---------------------------------------------------------------------------
# C enum values == registry codes


def test_enums_are_distinct_per_kind():
    hidden = [_engine.ENUMS[k] for k in
              ("FM_IDENTITY", "FM_LOGISTIC", "FM_TANH", "FM_RELU", "FM_LEAKY_RELU", "FM_SWISH", "FM_SOFTMAX",
               "FM_EXP")]
    assert len(set(hidden)) == len(hidden)
    assert _engine.ENUMS["FM_SGD"] != _engine.ENUMS["FM_ADAM"]
    losses = [_engine.ENUMS[name] for name in _registry.LOSS_ENUMS.values()]
    assert len(set(losses)) == len(losses) == len(_registry.OUTPUTS)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_code_matches_c_enum(name):
    spec = _registry.ACTIVATIONS[name]
    assert spec.name == name
    assert spec.code == _engine.ENUMS["FM_" + name.upper()]


def test_activation_codes_are_distinct():
    codes = [a.code for a in _registry.ACTIVATIONS.values()]
    assert len(set(codes)) == len(codes)
    assert _registry.SOFTMAX_CODE not in codes


def test_softmax_code_matches_c_enum():
    assert _registry.SOFTMAX_CODE == _engine.ENUMS["FM_SOFTMAX"]


@pytest.mark.parametrize("key", OUTPUT_KEYS, ids=_output_id)
def test_output_code_matches_c_enum(key):
    spec = _registry.OUTPUTS[key]
    assert (spec.activation, spec.loss_name) == key
    assert spec.code == _engine.ENUMS["FM_" + spec.activation.upper()]
    assert spec.loss_code == _engine.ENUMS[_registry.LOSS_ENUMS[key]]


@pytest.mark.parametrize("name", sorted(_registry.OPTIMIZERS))
def test_optimizer_code_matches_c_enum(name):
    spec = _registry.OPTIMIZERS[name]
    assert spec.name == name
    assert spec.code == _engine.ENUMS["FM_" + name.upper()]


# ---------------------------------------------------------------------------
# GEMM through the row-major BLAS shim


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", ["N", "T"])
@pytest.mark.parametrize("trans_b", ["N", "T"])
@pytest.mark.parametrize("alpha, beta", [(0.7, -1.3), (1.0, 0.0), (-2.5, 1.0)])
@pytest.mark.parametrize("m", [5, 1], ids=["gemm", "one-row-gemv"])
def test_gemm(dtype, trans_a, trans_b, alpha, beta, m):
    # m = 1 (one sample) goes through GEMV inside the shim
    rng = np.random.default_rng(0)
    n, k = 3, 7
    A = rng.standard_normal((m, k) if trans_a == "N" else (k, m)).astype(dtype)
    B = rng.standard_normal((k, n) if trans_b == "N" else (n, k)).astype(dtype)
    C = rng.standard_normal((m, n)).astype(dtype)
    opA = A if trans_a == "N" else A.T
    opB = B if trans_b == "N" else B.T
    expected = alpha * (opA.astype(np.float64) @ opB.astype(np.float64)) + beta * C.astype(np.float64)
    _engine._gemm_hook(trans_a, trans_b, alpha, A, B, beta, C)
    assert C.dtype == dtype
    assert_close(C, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", ["N", "T"])
@pytest.mark.parametrize("trans_b", ["N", "T"])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (0.7, -1.3), (1.0, 1.0)])
@pytest.mark.parametrize("m", [6, 1])
def test_gemm_of_one_inner_term_is_the_exact_outer_product(dtype, trans_a, trans_b, alpha, beta, m):
    # k = 1 (a single output's delta_{L-1} = delta_L W_L^T, a batch of one row's weight gradient): with
    # alpha 1 and beta 0 the shim writes the outer product itself, one rounding per element, the bits BLAS
    # gives (+0 where the product is -0, as BLAS's sums start at +0); other alpha, beta go to BLAS
    rng = np.random.default_rng(2)
    n = 5
    A = rng.standard_normal((m, 1) if trans_a == "N" else (1, m)).astype(dtype)
    B = rng.standard_normal((1, n) if trans_b == "N" else (n, 1)).astype(dtype)
    A.flat[0] = -0.0 if m > 1 else A.flat[0]
    B.flat[1] = 0.0
    C = np.full((m, n), np.nan if beta == 0 else 0.5, dtype=dtype)
    expected = alpha * np.multiply.outer(A.ravel(), B.ravel()) + beta * C if beta != 0 else \
        alpha * np.multiply.outer(A.ravel(), B.ravel()) + 0
    _engine._gemm_hook(trans_a, trans_b, alpha, A, B, beta, C)
    if (alpha, beta) == (1.0, 0.0):
        np.testing.assert_array_equal(C, expected)
        assert not np.signbit(C[:, 1]).any()  # (-0 and +0 times 0: +0)
    else:
        assert_close(C, expected.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_beta_zero_ignores_garbage_in_C(dtype):
    # The engine writes into np.empty workspaces with beta = 0: C must not be read.
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 6)).astype(dtype)
    B = rng.standard_normal((6, 2)).astype(dtype)
    C = np.full((4, 2), np.nan, dtype=dtype)
    _engine._gemm_hook("N", "N", 1.0, A, B, 0.0, C)
    assert_close(C, A.astype(np.float64) @ B.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_is_row_major_not_transposed(dtype):
    # A tiny case worked by hand: [[1, 2, 3]] @ [[1], [0], [-1]] = [[-2]],
    # and the (2, 3) @ (3, 2) product whose transpose would differ.
    A = np.array([[1, 2, 3], [4, 5, 6]], dtype=dtype)
    B = np.array([[1, 0], [0, 1], [-1, 1]], dtype=dtype)
    C = np.zeros((2, 2), dtype=dtype)
    _engine._gemm_hook("N", "N", 1.0, A, B, 0.0, C)
    np.testing.assert_array_equal(C, np.array([[-2, 5], [-2, 11]], dtype=dtype))


# ---------------------------------------------------------------------------
# Hidden activations: fused bias + activation forward, and the backward


def _pre_activations(dtype, rng, shape=(9, 6)):
    Z = rng.standard_normal(shape) * 3.0
    Z.flat[:6] = [0.0, -0.0, 30.0, -30.0, 1e-3, -1e-3]  # exact zeros and both tails
    return Z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED_ACTIVATIONS)
def test_bias_act_forward(dtype, name):
    spec = _registry.ACTIVATIONS[name]
    rng = np.random.default_rng(2)
    Z = _pre_activations(dtype, rng)
    bias = rng.standard_normal(Z.shape[1]).astype(dtype)
    Z_ref = Z + bias
    A = np.full_like(Z, np.nan)
    _engine._bias_act_forward_hook(spec.code, bias, Z, A)
    assert_close(Z, Z_ref, dtype)
    assert_close(A, spec.forward(Z_ref), dtype)
    assert A.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*FIXED_ACTIVATIONS, "prelu"])
def test_bias_act_forward_keeps_the_units_maxima(dtype, name):
    """With colmax given, the same Z and A, and colmax the running largest Z of each column (bias included):
    raised where a row exceeds it, kept where none does; other columns of the array are not touched."""
    rng = np.random.default_rng(5)
    Z = _pre_activations(dtype, rng, shape=(7, 9))
    bias = rng.standard_normal(Z.shape[1]).astype(dtype)
    Z_ref = Z + bias
    start = np.full(Z.shape[1], -np.inf, dtype=dtype)
    start[::3] = 100.0  # above every row: kept
    colmax = np.concatenate([start, [7.0]]).astype(dtype)  # a sentinel after the columns
    A, A_ref = np.full_like(Z, np.nan), np.full_like(Z, np.nan)
    Z2 = Z.copy()
    if name == "prelu":
        slopes = rng.uniform(0.0, 0.5, Z.shape[1]).astype(dtype)
        _engine._prelu_forward_hook(bias, slopes, Z, A, colmax)
        _engine._prelu_forward_hook(bias, slopes, Z2, A_ref)
    else:
        code = _registry.ACTIVATIONS[name].code
        _engine._bias_act_forward_hook(code, bias, Z, A, colmax)
        _engine._bias_act_forward_hook(code, bias, Z2, A_ref)
    np.testing.assert_array_equal(Z, Z2)
    np.testing.assert_array_equal(A, A_ref)
    assert_close(Z, Z_ref, dtype)
    np.testing.assert_array_equal(colmax[:-1], np.maximum(start, Z.max(axis=0)))
    assert colmax[-1] == 7.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED_ACTIVATIONS)
def test_bias_act_forward_zero_bias(dtype, name):
    spec = _registry.ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    Z = _pre_activations(dtype, rng)
    Z0 = Z.copy()
    A = np.empty_like(Z)
    _engine._bias_act_forward_hook(spec.code, np.zeros(Z.shape[1], dtype=dtype), Z, A)
    np.testing.assert_array_equal(Z, Z0)
    assert_close(A, spec.forward(Z0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED_ACTIVATIONS)
def test_bias_act_forward_in_place(dtype, name):
    spec = _registry.ACTIVATIONS[name]
    rng = np.random.default_rng(4)
    Z = _pre_activations(dtype, rng)
    bias = rng.standard_normal(Z.shape[1]).astype(dtype)
    expected = spec.forward(Z + bias)
    _engine._bias_act_forward_hook(spec.code, bias, Z, Z)  # A is Z
    assert_close(Z, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED_ACTIVATIONS)
def test_act_backward(dtype, name):
    spec = _registry.ACTIVATIONS[name]
    rng = np.random.default_rng(5)
    Z = _pre_activations(dtype, rng).ravel()
    A = spec.forward(Z).astype(dtype)
    delta = rng.standard_normal(Z.shape).astype(dtype)
    expected = delta * spec.derivative(Z, A)
    Z0, A0 = Z.copy(), A.copy()
    _engine._act_backward_hook(spec.code, Z, A, delta)
    assert_close(delta, expected, dtype)
    assert delta.dtype == dtype
    np.testing.assert_array_equal(Z, Z0)  # inputs are read only
    np.testing.assert_array_equal(A, A0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FIXED_ACTIVATIONS)
def test_act_backward_is_derivative_of_forward(dtype, name):
    # The kernel pair is consistent with itself: delta = 1 gives f'(z), which
    # matches central differences of the compiled forward (away from kinks).
    spec = _registry.ACTIVATIONS[name]
    z = np.linspace(-4, 4, 41)
    z = z[np.abs(z) > 0.05]
    h = 1e-6
    f = {}
    for sign in (1, -1):
        Zs = (z + sign * h).reshape(1, -1).copy()
        As = np.empty_like(Zs)
        _engine._bias_act_forward_hook(spec.code, np.zeros(z.size), Zs, As)
        f[sign] = As.ravel()
    numeric = (f[1] - f[-1]) / (2 * h)
    Z = z.astype(dtype)
    A = spec.forward(Z).astype(dtype)
    delta = np.ones_like(Z)
    _engine._act_backward_hook(spec.code, Z, A, delta)
    np.testing.assert_allclose(delta, numeric, rtol=max(RTOL[dtype], 1e-6) * 10, atol=1e-6)



@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*FIXED_ACTIVATIONS, "prelu"])
def test_kernels_on_a_block_of_columns(dtype, name):
    """The element-wise kernels of a layer's part over a block of the columns of wider arrays (the threads'
    parts of a product split by units: one call for all the rows, the kernel's row stride ld): the same bits
    as over that block copied out alone, and no other column touched."""
    rng = np.random.default_rng(23)
    n_rows, width, c0, c1 = 9, 21, 5, 16  # ld = 21, the block's 11 columns
    Z = _pre_activations(dtype, rng, shape=(n_rows, width))
    bias = rng.standard_normal(c1 - c0).astype(dtype)
    slopes = rng.uniform(0.05, 0.6, c1 - c0).astype(dtype)
    upstream = rng.standard_normal((n_rows, width)).astype(dtype)
    A = np.full_like(Z, 7.0)
    colmax = np.full(c1 - c0, -np.inf, dtype=dtype)
    Zb, Ab, colmax_b = Z[:, c0:c1].copy(), np.empty((n_rows, c1 - c0), dtype=dtype), colmax.copy()
    Z_before, A_before = Z.copy(), A.copy()
    if name == "prelu":
        _engine._prelu_forward_hook(bias, slopes, Z[:, c0:c1], A[:, c0:c1], colmax)
        _engine._prelu_forward_hook(bias, slopes, Zb, Ab, colmax_b)
    else:
        code = _registry.ACTIVATIONS[name].code
        _engine._bias_act_forward_hook(code, bias, Z[:, c0:c1], A[:, c0:c1], colmax)
        _engine._bias_act_forward_hook(code, bias, Zb, Ab, colmax_b)
    np.testing.assert_array_equal(Z[:, c0:c1], Zb)
    np.testing.assert_array_equal(A[:, c0:c1], Ab)
    np.testing.assert_array_equal(colmax, colmax_b)
    outside = np.ones(width, dtype=bool)
    outside[c0:c1] = False
    np.testing.assert_array_equal(Z[:, outside], Z_before[:, outside])
    np.testing.assert_array_equal(A[:, outside], A_before[:, outside])
    delta, delta_b = upstream.copy(), upstream[:, c0:c1].copy()
    if name == "prelu":
        grad, grad_b = np.ones(c1 - c0, dtype=dtype), np.ones(c1 - c0, dtype=dtype)
        _engine._prelu_backward_hook(True, Z[:, c0:c1], slopes, delta[:, c0:c1], grad)
        _engine._prelu_backward_hook(True, Zb, slopes, delta_b, grad_b)
        np.testing.assert_array_equal(grad, grad_b)
    else:
        _engine._act_backward_rows_hook(code, Z[:, c0:c1], A[:, c0:c1], delta[:, c0:c1])
        _engine._act_backward_rows_hook(code, Zb, Ab, delta_b)
        one_run = upstream[:, c0:c1].ravel().copy()  # the contiguous kernel, as one run
        _engine._act_backward_hook(code, Zb.ravel(), Ab.ravel(), one_run)
        np.testing.assert_array_equal(delta_b.ravel(), one_run)
    np.testing.assert_array_equal(delta[:, c0:c1], delta_b)
    np.testing.assert_array_equal(delta[:, outside], upstream[:, outside])
    with pytest.raises(ValueError, match="same strides"):  # the hooks' own check of what they pass on
        _engine._bias_act_forward_hook(0, bias, Z[:, c0:c1], np.empty((n_rows, c1 - c0), dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_forward(dtype):
    rng = np.random.default_rng(21)
    Z = (rng.standard_normal((6, 5)) * 3).astype(dtype)
    bias = rng.standard_normal(5).astype(dtype)
    slopes = rng.uniform(0.05, 0.6, 5).astype(dtype)
    Zb = Z.astype(np.float64) + bias
    A = np.full_like(Z, np.nan)
    _engine._prelu_forward_hook(bias, slopes, Z, A)
    assert_close(Z, Zb, dtype)
    assert_close(A, ref.prelu(Zb, slopes.astype(np.float64)), dtype)
    Z2 = (Zb - bias).astype(dtype)
    _engine._prelu_forward_hook(bias, slopes, Z2, Z2)  # in place
    assert_close(Z2, ref.prelu(Zb, slopes.astype(np.float64)), dtype)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_backward(dtype, accumulate):
    rng = np.random.default_rng(22)
    Z = (rng.standard_normal((7, 4)) * 2).astype(dtype)
    slopes = rng.uniform(0.05, 0.6, 4).astype(dtype)
    upstream = rng.standard_normal((7, 4)).astype(dtype)
    start = rng.standard_normal(4).astype(dtype)
    slope_grad = start.copy()
    delta = upstream.copy()
    _engine._prelu_backward_hook(accumulate, Z, slopes, delta, slope_grad)
    Z64, up64, s64 = Z.astype(np.float64), upstream.astype(np.float64), slopes.astype(np.float64)
    expected = ref.prelu_slope_gradient(Z64, up64) + (start if accumulate else 0)
    assert_close(slope_grad, expected, dtype)
    assert_close(delta, up64 * ref.prelu_derivative(Z64, None, s64), dtype)


def test_prelu_reference_slope_gradient_is_a_derivative():
    # d/da sum(U * prelu(z, a)) = sum over rows of U * min(z, 0), by central differences
    rng = np.random.default_rng(23)
    Z, U = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    a, eps = rng.uniform(0.1, 0.5, 3), 1e-6
    numeric = [(np.sum(U * ref.prelu(Z, a + eps * e)) - np.sum(U * ref.prelu(Z, a - eps * e))) / (2 * eps)
               for e in np.eye(3)]
    np.testing.assert_allclose(ref.prelu_slope_gradient(Z, U), numeric, rtol=1e-7, atol=1e-10)


# ---------------------------------------------------------------------------
# Output layer: activation, loss and delta, fused


def _targets(key, shape, rng, dtype):
    return make_targets(key[0], shape, rng, key[1]).astype(dtype)


def _loss_kwargs(spec):
    return {} if spec.param is None else {spec.param.name: LOSS_PARAMS[spec.loss_name]}


def _run_output_delta(spec, scale, bias, Y, Z):
    P = Z.copy()
    delta = np.full_like(Z, np.nan)
    loss = _engine._output_delta_hook(spec.loss_code, scale, bias, Y, P, delta,
                                      loss_param=LOSS_PARAMS.get(spec.loss_name, 0.0))
    return loss, P, delta


def _reference_loss(spec, Y, Z):
    return spec.loss(Y, Z, **_loss_kwargs(spec))


def _reference_gradient(spec, Y, Z):
    """dL/dZ of the row-summed loss, from the reference."""
    if spec.gradient is None:
        return ref.output_delta(spec.activation, Y, ref.output_forward(spec.activation, Z))
    return spec.gradient(Y, Z, **_loss_kwargs(spec))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", OUTPUT_KEYS, ids=_output_id)
def test_output_delta(dtype, key):
    spec = _registry.OUTPUTS[key]
    rng = np.random.default_rng(6)
    shape = (11, 4)
    Z = (rng.standard_normal(shape) * 3).astype(dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    Y = _targets(key, shape, rng, dtype)
    scale = 1.0 / 11
    Zb = Z + bias
    loss, P, delta = _run_output_delta(spec, scale, bias, Y, Z)
    assert isinstance(loss, float)
    # the loss is the sum over rows, computed (like the reference) from Z + b
    expected_loss = _reference_loss(spec, Y.astype(np.float64), Zb.astype(np.float64))
    assert_close(loss, expected_loss, dtype)
    # Z becomes P = g(Z + b)
    expected_P = ref.output_forward(spec.activation, Zb)
    assert_close(P, expected_P, dtype)
    assert P.dtype == dtype
    # delta = scale (P - Y), the fused form of the log-likelihood pairs; the others' own gradient
    if spec.gradient is None:
        assert_close(delta, dtype(scale) * (expected_P - Y), dtype)
    assert_close(delta, dtype(scale) * _reference_gradient(spec, Y, Zb), dtype)
    assert delta.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", OUTPUT_KEYS, ids=_output_id)
def test_output_delta_is_gradient_of_loss(dtype, key):
    # delta / scale = dL/dZ: central differences of the registered loss (float64).
    spec = _registry.OUTPUTS[key]
    rng = np.random.default_rng(7)
    shape = (3, 4)
    Z = rng.standard_normal(shape)
    bias = np.zeros(shape[1])
    Y = _targets(key, shape, rng, np.float64)
    _, _, delta = _run_output_delta(spec, 1.0, bias, Y, Z.astype(dtype).astype(np.float64))
    h = 1e-6
    numeric = np.empty_like(Z)
    for idx in np.ndindex(*shape):
        Zp, Zm = Z.copy(), Z.copy()
        Zp[idx] += h
        Zm[idx] -= h
        numeric[idx] = (_reference_loss(spec, Y, Zp) - _reference_loss(spec, Y, Zm)) / (2 * h)
    # (absolute_error and quantile: no |z - y| is within h of their kink with these draws)
    assert np.abs(Z.astype(dtype).astype(np.float64) - Y).min() > 10 * h
    np.testing.assert_allclose(delta, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(_reference_gradient(spec, Y, Z), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_output_delta_one_squared_error_output(dtype, weighted):
    """The one-output squared error (its own loop, without the per-row dispatch) gives the bits the general
    loop gives that column: P and delta equal column 0 of a two-output call; the loss is 0.5 sum w r^2."""
    code = _registry.OUTPUTS[("identity", "squared_error")].loss_code
    rng = np.random.default_rng(8)
    Z2 = (rng.standard_normal((37, 2)) * 3).astype(dtype)
    Y2 = rng.standard_normal((37, 2)).astype(dtype)
    bias2 = rng.standard_normal(2).astype(dtype)
    sw = rng.uniform(0, 2, 37).astype(dtype) if weighted else None
    P1, P2 = np.ascontiguousarray(Z2[:, :1]), Z2.copy()
    d1, d2 = np.empty_like(P1), np.empty_like(P2)
    loss = _engine._output_delta_hook(code, 1 / 37, bias2[:1].copy(), np.ascontiguousarray(Y2[:, :1]), P1, d1, sw)
    _engine._output_delta_hook(code, 1 / 37, bias2, Y2, P2, d2, sw)
    np.testing.assert_array_equal(P1[:, 0], P2[:, 0])
    np.testing.assert_array_equal(d1[:, 0], d2[:, 0])
    r = (Z2[:, 0].astype(np.float64) + bias2[0]) - Y2[:, 0]
    assert_close(loss, 0.5 * np.sum((1.0 if sw is None else sw) * r * r), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_delta_softmax_targets_not_summing_to_one(dtype):
    spec = _registry.OUTPUTS[("softmax", "log_loss")]
    rng = np.random.default_rng(8)
    shape = (9, 5)
    Z = (rng.standard_normal(shape) * 2).astype(dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    Y = rng.uniform(0, 1, shape).astype(dtype)  # row sums in (0, 5), not 1
    Y[0] = 0  # a row with no mass at all
    scale = 0.25
    Zb = Z + bias
    loss, P, delta = _run_output_delta(spec, scale, bias, Y, Z)
    expected_P = ref.output_forward("softmax", Zb)
    mass = Y.sum(axis=1, keepdims=True)
    assert_close(P, expected_P, dtype)
    assert_close(delta, dtype(scale) * (mass * expected_P - Y), dtype)
    np.testing.assert_array_equal(delta[0], 0)
    assert_close(loss, spec.loss(Y.astype(np.float64), Zb.astype(np.float64)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", OUTPUT_KEYS, ids=_output_id)
def test_output_delta_extreme_pre_activations(dtype, key):
    spec = _registry.OUTPUTS[key]
    rng = np.random.default_rng(9)
    shape = (6, 3)
    Z = np.array([[1e4, -1e4, 0.0],
                  [-1e4, 1e4, 5e3],
                  [1e4, 1e4, 1e4],
                  [-1e4, -1e4, -1e4],
                  [800.0, -800.0, 90.0],
                  [-90.0, 1e-4, 1e4]], dtype=dtype)
    bias = np.array([0.5, -0.5, 0.0], dtype=dtype)
    if spec.activation == "exp":
        # exp(z) overflows past z ~ 88 (float32) / 709 (float64): the prediction
        # itself is infinite there, so the exp link is tested on z <= 50.
        Z = np.minimum(Z, 50)
    if spec.positive_targets:
        # gamma's loss y exp(-z) overflows likewise, the other way: tested on |z| <= 50
        Z = np.maximum(Z, -50)
    Y = _targets(key, shape, rng, dtype)
    Zb = Z + bias
    loss, P, delta = _run_output_delta(spec, 1.0 / 6, bias, Y, Z)
    assert np.isfinite(loss)
    assert np.isfinite(P).all()
    assert np.isfinite(delta).all()
    assert_close(loss, _reference_loss(spec, Y.astype(np.float64), Zb.astype(np.float64)), dtype)
    expected_P = ref.output_forward(spec.activation, Zb.astype(np.float64))
    assert_close(P, expected_P, dtype)
    assert_close(delta, (1.0 / 6) * _reference_gradient(spec, Y.astype(np.float64), Zb.astype(np.float64)), dtype)
    if spec.activation in ("logistic", "softmax"):
        assert (P >= 0).all() and (P <= 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", OUTPUT_KEYS, ids=_output_id)
def test_output_delta_perfect_prediction(dtype, key):
    # Targets equal to the prediction give a zero delta; the loss is the
    # target's own entropy (0 for identity and for one-hot-like logistic limits).
    spec = _registry.OUTPUTS[key]
    rng = np.random.default_rng(10)
    Z = rng.standard_normal((4, 3)).astype(dtype)
    bias = np.zeros(3, dtype=dtype)
    Y = ref.output_forward(spec.activation, Z).astype(dtype)
    loss, _, delta = _run_output_delta(spec, 1.0, bias, Y, Z)
    np.testing.assert_allclose(delta, 0, atol=10 * RTOL[dtype])
    expected = _reference_loss(spec, Y.astype(np.float64), Z.astype(np.float64))
    # the loss is a sum of terms of size ~|Y|(1 + |Z|) that cancel (to 0 for exp + poisson)
    scale = float(np.sum(np.abs(Y.astype(np.float64)) * (1 + np.abs(Z.astype(np.float64)))))
    np.testing.assert_allclose(loss, expected, rtol=RTOL[dtype], atol=10 * RTOL[dtype] * scale)
    if spec.activation == "identity":
        assert loss == 0.0


def _reference_ulps(dtype):
    """The ulps the exact values computed in np.longdouble may be off by: none where it is wider than the dtype,
    about one for float64 where long double is double (Windows, macOS on arm64: NumPy's own exp and tanh)."""
    return 0 if np.finfo(np.longdouble).eps < np.finfo(dtype).eps else 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_is_within_an_ulp_or_so_over_its_whole_range(dtype):
    # The output kernels' own exp (csrc/mathfun.template.h: fm_exp), through the exp output activation: at most
    # about an ulp from the exact value (2 allowed: the baseline clone measured 1.15-1.19, the x86-64-v3 one
    # 0.88-0.91; NumPy's exp 0.5-0.7), results below the smallest normal number within half of it, and
    # 0, inf and NaN where exp gives them.
    info = np.finfo(dtype)
    lo, hi = (-760.0, 720.0) if dtype == np.float64 else (-110.0, 95.0)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(lo, hi, 200_000), rng.uniform(-1, 1, 100_000), np.linspace(lo, hi, 100_001),
                        np.log(info.tiny) + rng.uniform(-1, 1, 1000), np.log(info.max) + rng.uniform(-1e-3, 1e-3, 1000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max, 1e-30, -1e-30]]).astype(dtype)
    Z = x[:, None].copy()
    _engine.output_activation(_registry.OUTPUTS[("exp", "poisson")].code, Z)
    got = Z.ravel()
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.longdouble))
        want = exact.astype(dtype)
    normal = np.isfinite(want) & (want >= info.tiny)
    ulps = np.abs(got[normal].astype(np.longdouble) - exact[normal]) / np.spacing(want[normal]).astype(np.longdouble)
    assert ulps.max() <= 2 + _reference_ulps(dtype), x[normal][np.argmax(ulps)]
    small = np.isfinite(x) & (want < info.tiny)
    assert (np.abs(got[small].astype(np.longdouble) - exact[small]) <= info.tiny / 2).all()
    assert (got[x == -np.inf] == 0).all() and (got[x < lo] == 0).all()
    assert np.isposinf(got[np.isposinf(want)]).all()
    assert np.isnan(got[np.isnan(x)]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, most", [("tanh", 2), ("logistic", 3)])
def test_tanh_and_logistic_are_within_a_few_ulps(dtype, name, most):
    # The kernels' own tanh and sigmoid (mathfun.template.h, branch-free so that the activation's loop
    # vectorises), against the exact values: tanh measured 1.33 ulps at most in both clones (glibc's tanh
    # 2.15), the sigmoid 2.33 (the same formula as with libm's exp). Both branches of tanh (below and above
    # 0.625), tiny arguments (where 1 - exp would lose every digit) and arguments far past the saturation.
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-30, 30, 100_000), rng.uniform(-1, 1, 100_000), rng.uniform(-1e-3, 1e-3, 10_000),
                        np.linspace(-0.7, 0.7, 20_001), rng.uniform(-800, 800, 1000),
                        [1e-300, -1e-300, 1e-30, -1e-30, 0.625, -0.625, 1e4, -1e4]]).astype(dtype)
    Z, A = x[None, :].copy(), np.empty((1, x.size), dtype=dtype)
    _engine._bias_act_forward_hook(_registry.ACTIVATIONS[name].code, np.zeros(x.size, dtype=dtype), Z, A)
    xl = x.astype(np.longdouble)
    exact = np.tanh(xl) if name == "tanh" else 1 / (1 + np.exp(-xl))
    want = exact.astype(dtype)
    normal = np.abs(want) >= np.finfo(dtype).tiny
    ulps = np.abs(A[0][normal].astype(np.longdouble) - exact[normal]) / np.spacing(np.abs(want[normal])).astype(
        np.longdouble)
    assert ulps.max() <= most + _reference_ulps(dtype), x[normal][np.argmax(ulps)]
    assert (np.abs(A[0][~normal].astype(np.longdouble) - exact[~normal]) <= np.finfo(dtype).tiny).all()
    if name == "tanh":
        assert (np.sign(A[0]) == np.sign(x)).all() and (np.abs(A[0]) <= 1).all()
    Z = np.array([[np.nan, np.inf, -np.inf]], dtype=dtype)
    _engine._bias_act_forward_hook(_registry.ACTIVATIONS[name].code, np.zeros(3, dtype=dtype), Z, A[:, :3])
    np.testing.assert_array_equal(A[0, :3], [np.nan, 1, -1] if name == "tanh" else [np.nan, 1, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_logistic_loss_is_within_two_ulps(dtype):
    # A row's logistic log loss with y = 0 is softplus(z) = max(z, 0) + log1p(exp(-|z|)): the kernels' own exp
    # and log1p (fdlibm's log, in double; 1.35-1.75 ulps at most measured in both clones, libm's 1.33-1.40),
    # each row alone (its loss is rounded to the dtype, then summed in double).
    rng = np.random.default_rng(2)
    z = np.concatenate([rng.uniform(-40, 40, 1500), rng.uniform(-1, 1, 1000), rng.uniform(-1e-6, 1e-6, 200),
                        rng.uniform(-800, 800, 100), [0.0, 0.3466, -0.3466, 0.8814, -0.8814]]).astype(dtype)
    code = _registry.OUTPUTS[("logistic", "log_loss")].loss_code
    zero, Y = np.zeros(1, dtype=dtype), np.zeros((1, 1), dtype=dtype)
    got = np.array([_engine._output_delta_hook(code, 1.0, zero, Y, np.array([[v]], dtype=dtype),
                                               np.empty((1, 1), dtype=dtype)) for v in z])
    zl = z.astype(np.longdouble)
    exact = np.maximum(zl, 0) + np.log1p(np.exp(-np.abs(zl)))
    want = exact.astype(dtype)
    normal = want >= np.finfo(dtype).tiny
    ulps = np.abs(got[normal].astype(np.longdouble) - exact[normal]) / np.spacing(want[normal]).astype(np.longdouble)
    assert ulps.max() <= 2 + _reference_ulps(dtype), z[normal][np.argmax(ulps)]
    assert (np.abs(got[~normal] - exact[~normal].astype(np.float64)) <= np.finfo(dtype).tiny).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_do_not_depend_on_the_rows_beside_them(dtype):
    # The softmax runs blocks of rows at once (its exponentials one loop over the block): each row's outputs,
    # loss and delta are the bits of the row alone, for blocks of any length (here 70 rows: two full blocks
    # and a short one), with extreme and equal logits and weighted rows; prediction's softmax
    # gives the training's outputs.
    rng = np.random.default_rng(3)
    n, m = 70, 5
    Z = (rng.standard_normal((n, m)) * 30).astype(dtype)
    Z[3] = 0
    Z[4, 1] = -1e30
    Z[5] = [800, -800, 0, 1e-3, 700]
    bias = rng.standard_normal(m).astype(dtype)
    Y = np.eye(m, dtype=dtype)[rng.integers(0, m, n)]
    Y[7] = 0.25  # targets summing to more than one
    sw = rng.uniform(0.5, 2, n).astype(dtype)
    code = _registry.OUTPUTS[("softmax", "log_loss")].loss_code
    P, delta = Z.copy(), np.empty_like(Z)
    with np.errstate(all="ignore"):
        loss = _engine._output_delta_hook(code, 0.5, bias, Y, P, delta, sw)
        losses = []
        for i in range(n):
            p, d = Z[i:i + 1].copy(), np.empty((1, m), dtype=dtype)
            losses.append(_engine._output_delta_hook(code, 0.5, bias, Y[i:i + 1], p, d, sw[i:i + 1]))
            np.testing.assert_array_equal(p[0], P[i])
            np.testing.assert_array_equal(d[0], delta[i])
        forward = Z + bias  # (prediction's kernel: the bias already added, the same softmax)
        _engine.output_activation(_registry.OUTPUTS[("softmax", "log_loss")].code, forward)
    np.testing.assert_array_equal(forward, P)
    np.testing.assert_allclose(loss, sum(losses), rtol=1e-12)
    assert np.isfinite(P).all() and np.isfinite(loss)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=10 * RTOL[dtype])


# ---------------------------------------------------------------------------
# Optimizer updates


def _flat_problem(dtype, seed, n=257):
    rng = np.random.default_rng(seed)
    params = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    return params, grads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd(dtype, momentum, nesterov):
    params, grads = _flat_problem(dtype, 11)
    lr = 0.05
    expected, velocity_ref = params.copy(), np.zeros_like(params)
    velocity = np.zeros_like(params)
    for step, g in enumerate(grads, start=1):  # several steps: the velocity carries over
        _engine._sgd_hook(lr, momentum, nesterov, g, velocity, params)
        ref.sgd_update(expected, g, [velocity_ref], step, learning_rate=lr, momentum=momentum,
                       nesterov=nesterov)
        assert_close(params, expected, dtype)
        if momentum > 0:
            # With momentum 0 the velocity is never read (0 * v), and the
            # kernel's plain step leaves it untouched: only the weights matter.
            assert_close(velocity, velocity_ref, dtype)
    assert params.dtype == dtype and velocity.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_without_momentum_is_plain_step(dtype, nesterov):
    # p -= lr g, whatever the velocity holds (0 * v drops it), as in the reference.
    params, grads = _flat_problem(dtype, 12)
    velocity = np.random.default_rng(16).standard_normal(params.size).astype(dtype)
    expected = params.copy()
    ref.sgd_update(expected, grads[0], [velocity.copy()], 1, learning_rate=0.1, momentum=0.0,
                   nesterov=nesterov)
    assert_close(expected, params - dtype(0.1) * grads[0], dtype)
    _engine._sgd_hook(0.1, 0.0, nesterov, grads[0], velocity, params)
    assert_close(params, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta_1, beta_2, epsilon", [(0.9, 0.999, 1e-8), (0.5, 0.9, 1e-3)])
def test_adam(dtype, beta_1, beta_2, epsilon):
    params, grads = _flat_problem(dtype, 13)
    lr = 0.01
    expected = params.copy()
    m_ref, v_ref = np.zeros_like(params), np.zeros_like(params)
    m, v = np.zeros_like(params), np.zeros_like(params)
    for t, g in enumerate(grads, start=1):
        step_size = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        _engine._adam_hook(step_size, beta_1, beta_2, epsilon, g, m, v, params)
        ref.adam_update(expected, g, [m_ref, v_ref], t, learning_rate=lr, beta_1=beta_1,
                        beta_2=beta_2, epsilon=epsilon)
        assert_close(m, m_ref, dtype)
        assert_close(v, v_ref, dtype)
        assert_close(params, expected, dtype)
    assert params.dtype == dtype and m.dtype == dtype and v.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_weighs_the_gradient_by_one_minus_beta_rounded_once(dtype):
    # found by probing: in float32 the kernel formed 1 - beta from beta rounded to float32 (1 - 0.999f is
    # 0.0009999871), so v came out 1.3e-5 smaller than the reference's (and PyTorch's): float32(1 - beta); a
    # wide float32 network trained with Adam drifted 5e-2 from the reference in two epochs
    params, grads = _flat_problem(dtype, 1)
    g = grads[0]
    m, v = np.zeros_like(params), np.zeros_like(params)
    _engine._adam_hook(1e-3, 0.9, 0.999, 1e-8, g, m, v, params.copy())
    np.testing.assert_array_equal(m, dtype(1 - 0.9) * g)
    np.testing.assert_array_equal(v, dtype(1 - 0.999) * g * g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_update_with_the_l2_term_inside(dtype, optimizer):
    """l2 > 0: the step takes grad + l2 params (params before the step), and grad is not written."""
    params, grads = _flat_problem(dtype, 17)
    l2 = 0.3
    expected = params.copy()
    state, state_ref = [np.zeros_like(params) for _ in range(2)], [np.zeros_like(params) for _ in range(2)]
    for t, g in enumerate(grads, start=1):
        g_before = g.copy()
        folded = (g.astype(np.float64) + l2 * expected.astype(np.float64)).astype(dtype)
        if optimizer == "sgd":
            _engine._sgd_hook(0.05, 0.9, True, g, state[0], params, l2)
            ref.sgd_update(expected, folded, state_ref[:1], t, learning_rate=0.05, momentum=0.9, nesterov=True)
        else:
            step_size = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            _engine._adam_hook(step_size, 0.9, 0.999, 1e-8, g, state[0], state[1], params, l2)
            ref.adam_update(expected, folded, state_ref, t, learning_rate=0.01, beta_1=0.9, beta_2=0.999,
                            epsilon=1e-8)
        assert_close(params, expected, dtype)
        np.testing.assert_array_equal(g, g_before)


def test_registry_updates_are_the_reference_ones():
    assert _registry.OPTIMIZERS["sgd"].update is ref.sgd_update
    assert _registry.OPTIMIZERS["adam"].update is ref.adam_update
    assert _registry.OPTIMIZERS["sgd"].n_state == 1
    assert _registry.OPTIMIZERS["adam"].n_state == 2


# ---------------------------------------------------------------------------
# Dropout masks


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep", [0.5, 0.8, 0.1, 1.0])
def test_dropout(dtype, keep):
    n = 100_000
    rng = np.random.default_rng(14)
    A = rng.standard_normal(n).astype(dtype)
    M = np.full(n, np.nan, dtype=dtype)
    D = np.full(n, np.nan, dtype=dtype)
    _engine._dropout_hook(keep, 12345, A, M, D)
    scale = dtype(1) / dtype(keep)
    kept = M != 0
    assert np.isin(M, np.array([0, scale], dtype=dtype)).all()
    np.testing.assert_array_equal(D, A * M)
    # kept ~ Binomial(n, keep): 6 standard deviations
    bound = 6 * np.sqrt(keep * (1 - keep) / n) + 1e-12
    assert abs(kept.mean() - keep) <= bound
    if keep == 1.0:
        assert kept.all()
    # inverted dropout keeps the expectation: mean of M is ~1
    assert abs(M.astype(np.float64).mean() - 1) <= 6 * np.sqrt((1 - keep) / (keep * n)) + 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_same_seed_same_mask(dtype):
    n = 10_000
    A = np.random.default_rng(15).standard_normal(n).astype(dtype)
    masks = []
    for seed in (7, 7, 8):
        M, D = np.empty_like(A), np.empty_like(A)
        _engine._dropout_hook(0.6, seed, A, M, D)
        masks.append((M, D))
    np.testing.assert_array_equal(masks[0][0], masks[1][0])
    np.testing.assert_array_equal(masks[0][1], masks[1][1])
    assert not np.array_equal(masks[0][0], masks[2][0])


def test_dropout_mask_does_not_depend_on_dtype():
    # The PRNG stream and the threshold are in double: the kept units are the same.
    A32 = np.ones(5000, dtype=np.float32)
    A64 = np.ones(5000, dtype=np.float64)
    M32, D32 = np.empty_like(A32), np.empty_like(A32)
    M64, D64 = np.empty_like(A64), np.empty_like(A64)
    _engine._dropout_hook(0.5, 99, A32, M32, D32)
    _engine._dropout_hook(0.5, 99, A64, M64, D64)
    np.testing.assert_array_equal(M32 != 0, M64 != 0)


def test_dropout_masks_are_not_correlated():
    # Neighbouring elements are independent: P(both kept) ~ keep^2.
    n, keep = 100_000, 0.5
    A = np.ones(n)
    M, D = np.empty(n), np.empty(n)
    _engine._dropout_hook(keep, 2024, A, M, D)
    kept = M != 0
    both = np.mean(kept[:-1] & kept[1:])
    assert abs(both - keep**2) <= 6 * np.sqrt(keep**2 * (1 - keep**2) / n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [1, 3, 32, 100])
def test_gather_rows(dtype, n_cols):
    # the shuffled batch's rows, in order, repeats allowed; the prefetch of rows
    # ahead must never read past the last index
    rng = np.random.default_rng(n_cols)
    X = rng.standard_normal((50, n_cols)).astype(dtype)
    for idx in ([0], [49], rng.permutation(50)[:17], [3, 3, 0, 49, 3], np.arange(50)[::-1]):
        idx = np.ascontiguousarray(idx, dtype=np.intp)
        out = np.full((len(idx), n_cols), np.nan, dtype=dtype)
        _engine._gather_rows_hook(idx, X, out)
        np.testing.assert_array_equal(out, X[idx])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [1, 7, 8, 16, 31, 32, 45, 100, 512])
@pytest.mark.parametrize("accumulate", [False, True])
def test_col_sum_adds_each_column_row_after_row(dtype, n_cols, accumulate):
    # the bias gradient: each column's sum over the rows in their order, in double and rounded once, bit for
    # bit (the sums kept in registers over blocks of columns, the rest one column at a time), onto out or from
    # zero (float64: a plain running sum)
    rng = np.random.default_rng(n_cols)
    M = (rng.standard_normal((23, n_cols)) * np.exp(rng.uniform(-20, 20, (23, n_cols)))).astype(dtype)
    M[0, 0] = -0.0
    start = rng.standard_normal(n_cols).astype(dtype)
    running = start.astype(np.float64) if accumulate else np.zeros(n_cols)
    for row in M:
        running += row
    expected = running.astype(dtype)
    out = start.copy()
    _engine._col_sum_hook(accumulate, M, out)
    np.testing.assert_array_equal(out, expected)
    assert np.signbit(out[0]) == np.signbit(expected[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_blocks", [1, 3, 4, 5, 8, 11])
@pytest.mark.parametrize("block_cols", [1, 8, 16, 21])
def test_block_sumsq_sums_each_block_in_its_own_order(dtype, n_blocks, block_cols):
    # an ensemble's per-member ||dW||^2: each block's squares in eight running sums over its rows (then its
    # columns past a multiple of 8 in one), added as a tree, onto out; the same additions whether the blocks
    # run one at a time or four side by side. Values of a few bits, so that every square and sum is exact in
    # double and the order shows only in which lanes they fall (a product and its sum in one rounding or two
    # then agree too).
    rng = np.random.default_rng(n_blocks * 100 + block_cols)
    M = (rng.integers(-64, 64, (9, n_blocks * block_cols)) * 2.0 ** rng.integers(-8, 8, (9, n_blocks * block_cols)))
    M = M.astype(dtype)
    stride = 3
    out = np.zeros((n_blocks - 1) * stride + 1)
    out[::stride] = np.arange(n_blocks)  # (added onto)
    _engine._block_sumsq_hook(n_blocks, M, out, stride)
    for j in range(n_blocks):
        block = M[:, j * block_cols:(j + 1) * block_cols].astype(np.float64)
        lanes, tail = np.zeros(8), 0.0
        for row in block:
            whole = block_cols // 8 * 8
            lanes += (row[:whole] ** 2).reshape(-1, 8).sum(axis=0) if whole else 0.0
            for v in row[whole:]:
                tail += v * v
        tree = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
        assert out[j * stride] == j + (tree + tail)
    assert (out[1::stride] == 0).all() and (out[2::stride] == 0).all()
    with pytest.raises(ValueError):  # (the hook's own check: 5 columns are not 2 blocks)
        _engine._block_sumsq_hook(2, np.zeros((2, 5), dtype=dtype), out, stride)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 8), (255, 3), (256, 9), (257, 1), (1000, 33), (7, 784), (2, 95)])
def test_largest_row_sumsq(dtype, shape):
    # the input's part of the outputs' bound: the largest row sum of squares, in double, over every
    # chunk of rows (the largest row placed last, first, and in the middle)
    rng = np.random.default_rng(shape[0])
    X = rng.standard_normal(shape).astype(dtype)
    for at in {0, shape[0] // 2, shape[0] - 1}:
        Y = X.copy()
        Y[at] *= 3
        expected = np.max(np.sum(Y.astype(np.float64) ** 2, axis=1))
        assert _engine.largest_row_sumsq(Y) == pytest.approx(expected, rel=1e-12)
    assert _engine.largest_row_sumsq(np.zeros((0, shape[1]), dtype=dtype)) == 0
    assert _engine.largest_row_sumsq(np.zeros((shape[0], 0), dtype=dtype)) == 0
    big = np.full((3, 2), np.finfo(dtype).max, dtype=dtype)
    assert _engine.largest_row_sumsq(big) == (np.inf if dtype == np.float64 else pytest.approx(2.0 * float(np.finfo(dtype).max) ** 2))


@pytest.mark.parametrize("n_cols", [1, 3, 40, 300])
def test_col_sum_of_many_float32_rows_is_rounded_once(n_cols):
    # found by probing: the bias gradient summed float32 rows in a float32 running sum, which drifts with the
    # rows (a quantile loss's bias gradient over 100,000 rows 8e-4 off float64, NumPy's float32 sum 3e-8): the
    # columns are now summed in double and rounded once (float64: the same additions as before)
    rng = np.random.default_rng(0)
    M = rng.choice(np.array([-0.3, 0.7], dtype=np.float32), size=(100_000, n_cols))
    out = np.full(n_cols, np.nan, dtype=np.float32)
    _engine._col_sum_hook(False, M, out)
    exact = M.astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(out, exact, rtol=2 ** -23)  # (within float32's rounding of the exact sum)
    start = np.full(n_cols, 5.0, dtype=np.float32)
    _engine._col_sum_hook(True, M, start)
    np.testing.assert_allclose(start, exact + 5.0, rtol=2 ** -23)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_rows", [1, 2, 16, 33])
@pytest.mark.parametrize("n_in", [1, 3, 8, 32])
@pytest.mark.parametrize("n_cols", [1, 15, 16, 32, 70])
def test_narrow_products(dtype, n_rows, n_in, n_cols):
    # an ensemble's first layer of few inputs: Z = X @ W and dW = X^T @ delta in registers over the inner
    # dimension, two result rows at a time, column blocks of 128 bytes and their tails. Small integers, so that
    # every product and sum is exact and any misplaced term shows; every array a view of a wider one (row strides)
    rng = np.random.default_rng(n_rows * 1000 + n_in * 100 + n_cols)

    def view(rows, cols, values=True):
        wide = rng.integers(-4, 5, size=(rows, cols + 3)).astype(dtype) if values else np.full((rows, cols + 3), 7,
                                                                                             dtype)
        return wide[:, 1:cols + 1]

    A, B, D = view(n_rows, n_in), view(n_in, n_cols), view(n_rows, n_cols)
    C, G = view(n_rows, n_cols, False), view(n_in, n_cols, False)
    C_base, G_base = C.base.copy(), G.base.copy()
    _engine._narrow_hook(A, B, D, C, G)
    exact = A.astype(np.float64)
    np.testing.assert_array_equal(C, exact @ B)
    np.testing.assert_array_equal(G, exact.T @ D)
    for out, before in ((C, C_base), (G, G_base)):  # nothing outside the results' columns written
        assert (out.base[:, 0] == before[:, 0]).all() and (out.base[:, -2:] == before[:, -2:]).all()
    with pytest.raises(ValueError, match="do not match"):  # (the hook's own check)
        _engine._narrow_hook(A, np.zeros((n_in + 1, n_cols), dtype), D, C, G)
