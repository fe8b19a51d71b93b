"""Both clones of the C kernels: the baseline x86-64 one and the x86-64-v3 one.

One x86_64 wheel serves old and new CPUs: csrc/fastmlp.h's FM_HOT kernels are
compiled twice and the loader picks the clone the CPU runs.
FASTMLP_KERNELS=baseline, in the environment a process starts with, makes it
pick the baseline clones on any CPU. The same work runs in two processes, one
per clone, and gives the same results: exactly where the kernel does one
rounding per element (a sum, a product, a comparison), to rounding where the
v3 clone may fuse a multiply and an add (FMA) or sum in another order.
"""
import ctypes
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastmlp
from fastmlp import _engine

# kernels reached through the _engine test hooks; the fit below runs the others
KERNELS = ["fm_bias_act_forward", "fm_act_backward", "fm_output_delta", "fm_sgd_update", "fm_adam_update",
           "fm_gather_rows", "fm_dropout", "fm_prelu_forward", "fm_prelu_backward", "fm_all_finite",
           "fm_narrow_matmul", "fm_narrow_tmatmul"]
RTOL = {"float32": 1e-5, "float64": 1e-13}

WORKER = r"""
import ctypes, json, sys
import numpy as np
from fastmlp import Network, _engine, _registry

lib = ctypes.CDLL(_engine.__file__)
origin = ctypes.cast(lib.fm_kernel_level, ctypes.c_void_p).value
kernels = json.loads(sys.argv[2])
out = {"level": np.array(lib.fm_kernel_level())}
for name in kernels:
    for suffix in ("_f32", "_f64"):  # where the loader bound each kernel, from the same origin
        out["address " + name + suffix] = np.array(ctypes.cast(getattr(lib, name + suffix), ctypes.c_void_p).value
                                                   - origin)
for dtype in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    d = np.dtype(dtype).name
    Z0 = rng.normal(0, 2, (37, 23)).astype(dtype)
    bias = rng.normal(0, 1, 23).astype(dtype)
    for name, spec in _registry.ACTIVATIONS.items():
        Z, A = Z0.copy(), np.empty_like(Z0)
        if spec.learnable_slope:
            slopes = rng.uniform(0, 0.5, 23).astype(dtype)
            _engine._prelu_forward_hook(bias, slopes, Z, A)
            delta, slope_grad = Z0 * 0.5, np.zeros(23, dtype)
            _engine._prelu_backward_hook(False, Z, slopes, delta, slope_grad)
            out[f"prelu backward {d}"], out[f"prelu slope_grad {d}"] = delta, slope_grad
        else:
            _engine._bias_act_forward_hook(spec.code, bias, Z, A)
            delta = Z0.ravel() * 0.5
            _engine._act_backward_hook(spec.code, Z.ravel(), A.ravel(), delta)
            out[f"{name} backward {d}"] = delta
        out[f"{name} forward {d}"] = A
    for (act, loss), spec in _registry.OUTPUTS.items():
        Y = rng.uniform(0, 1, Z0.shape).astype(dtype)
        if act == "softmax":
            Y /= Y.sum(axis=1, keepdims=True)
        Z, delta = Z0.copy(), np.empty_like(Z0)
        loss_sum = _engine._output_delta_hook(spec.code, 1 / 37, bias, Y, Z, delta)
        out[f"{act} output {d}"], out[f"{act} delta {d}"], out[f"{act} loss {d}"] = Z, delta, np.array(loss_sum)
    n = 1001
    grad = rng.normal(0, 1, n).astype(dtype)
    params, velocity = rng.normal(0, 1, n).astype(dtype), rng.normal(0, 0.1, n).astype(dtype)
    _engine._sgd_hook(0.1, 0.9, True, grad, velocity, params)
    out[f"sgd params {d}"], out[f"sgd velocity {d}"] = params, velocity
    m, v = rng.normal(0, 0.1, n).astype(dtype), rng.uniform(0, 0.1, n).astype(dtype)
    _engine._adam_hook(0.001, 0.9, 0.999, 1e-8, grad, m, v, params)
    out[f"adam params {d}"], out[f"adam m {d}"], out[f"adam v {d}"] = params, m, v
    idx = rng.integers(0, 37, 50).astype(np.intp)
    gathered = np.empty((50, 23), dtype)
    _engine._gather_rows_hook(idx, Z0, gathered)
    out[f"gather {d}"] = gathered
    M, D = np.empty(n, dtype), np.empty(n, dtype)
    _engine._dropout_hook(0.7, 12345, grad, M, D)
    out[f"dropout mask {d}"], out[f"dropout output {d}"] = M, D
    W, C, G = rng.normal(0, 1, (23, 70)).astype(dtype), np.empty((37, 70), dtype), np.empty((23, 70), dtype)
    _engine._narrow_hook(Z0, W, Z0[:, :1] * W[:1], C, G)  # (an ensemble's first-layer products)
    out[f"narrow product {d}"], out[f"narrow transposed product {d}"] = C, G
    # the rest (column sums and maxima, the masks' products, the output layer) inside a fit
    X, T = rng.normal(0, 1, (200, 8)).astype(dtype), rng.normal(0, 1, (200, 2)).astype(dtype)
    net = Network([8, 16, 2], activation="tanh", dropout=0.1, dtype=d, random_state=0)
    net.fit(X, T, epochs=3, batch_size=20, optimizer="adam", learning_rate=0.01, n_threads=1)
    out[f"fit params {d}"], out[f"fit predict {d}"] = net._params, net.predict(X)
np.savez(sys.argv[1], **out)
"""

# one rounding per element in every clone: the results must be equal, not close
EXACT = ("identity forward", "relu forward", "leaky_relu forward", "prelu forward", "identity backward",
         "relu backward", "leaky_relu backward", "prelu backward", "gather", "dropout")


def _run(tmp_path, baseline):
    env = dict(os.environ)
    env.pop("FASTMLP_KERNELS", None)
    if baseline:
        env["FASTMLP_KERNELS"] = "baseline"
    # the fastmlp under test, from src/ or installed
    env["PYTHONPATH"] = os.pathsep.join([str(Path(fastmlp.__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])
    path = tmp_path / f"{'baseline' if baseline else 'default'}.npz"
    subprocess.run([sys.executable, "-c", WORKER, str(path), json.dumps(KERNELS)], env=env, check=True,
                   timeout=600)
    with np.load(path) as f:
        return dict(f)


def _level():
    """The clone level this process runs (3 or 0); skips where the build has no clone switch."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("kernel clones exist on x86_64 Linux only")
    lib = ctypes.CDLL(_engine.__file__)
    if not hasattr(lib, "fm_kernel_level"):
        pytest.skip("this build has no clone switch (it needs GCC 12 or later, on glibc)")
    return lib.fm_kernel_level()


def test_baseline_and_v3_clones_agree(tmp_path):
    if os.environ.get("FASTMLP_KERNELS") == "baseline":
        pytest.skip("this process runs the baseline clones already (FASTMLP_KERNELS=baseline)")
    if _level() != 3:
        pytest.skip("this CPU lacks x86-64-v3 (AVX2, FMA): it runs the baseline clones only")
    default, baseline = _run(tmp_path, False), _run(tmp_path, True)
    assert default["level"] == 3 and baseline["level"] == 0
    # each kernel is bound to another clone in the two processes
    addresses = [k for k in default if k.startswith("address ")]
    assert len(addresses) == 2 * len(KERNELS)
    assert [k for k in addresses if default[k] == baseline[k]] == []
    results = sorted(k for k in default if not k.startswith(("address ", "level")))
    assert len(results) > 60 and sorted(baseline) == sorted(default)
    exact = [k for k in results if k.startswith(EXACT)]
    assert len(exact) == 2 * (len(EXACT) + 1)  # both dtypes; dropout: its mask and its output
    for key in results:
        if key in exact:
            np.testing.assert_array_equal(baseline[key], default[key], err_msg=key)
        else:
            rtol = RTOL[key.rsplit(" ", 1)[1]] * (100 if key.startswith("fit ") else 1)
            scale = float(np.max(np.abs(default[key])))
            np.testing.assert_allclose(baseline[key], default[key], rtol=rtol, atol=rtol * scale, err_msg=key)


def test_switch_off_is_the_cpu_choice(tmp_path):
    """Another value (or none) leaves the choice to the CPU."""
    level = _level()
    if os.environ.get("FASTMLP_KERNELS") == "baseline":
        assert level == 0
    else:
        assert level in (0, 3)
        env = dict(os.environ, FASTMLP_KERNELS="baseline0")
        env["PYTHONPATH"] = os.pathsep.join([str(Path(fastmlp.__file__).resolve().parents[1]),
                                             env.get("PYTHONPATH", "")])
        code = "import ctypes; from fastmlp import _engine; print(ctypes.CDLL(_engine.__file__).fm_kernel_level())"
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert int(run.stdout) == level
