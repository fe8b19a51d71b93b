"""The benchmark's contenders compute the same thing (not timed).

From the same initial weights, one epoch without shuffling gives the same mean
training loss through fastmlp (Network and estimator), the NumPy reference,
scikit-learn and, when it is installed, PyTorch; and the GEMM bounds run the
same products through NumPy and SciPy.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import contenders as C  # noqa: E402

LEARNERS = ["fastmlp", "fastmlp estimator", "numpy reference", "scikit-learn", "pytorch"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("key", list(C.WORKLOADS))
def test_same_loss_after_one_epoch(key, dtype, optimizer):
    workload = C.WORKLOADS[key]
    X, y, Y = C.make_data(workload, dtype, n_samples=300)
    batch = workload.batches[-1]
    cs = C.make_contenders(workload, X, y, Y, optimizer, batch, shuffle=False, include=set(LEARNERS))
    assert {"fastmlp", "fastmlp estimator", "numpy reference", "scikit-learn"} <= set(cs)
    losses = {}
    for name, c in cs.items():
        c.epoch()
        losses[name] = float(c.loss())
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    for name, loss in losses.items():
        # scikit-learn clips probabilities at eps; PyTorch sums in its own order, and its Adam adds
        # epsilon to sqrt(v / (1 - beta_2^t)) where scikit-learn's (and fastmlp's) adds it to sqrt(v)
        tol = rtol if name in ("fastmlp", "fastmlp estimator", "numpy reference") else max(rtol, 1e-6)
        if name == "pytorch" and optimizer == "adam":
            tol = 1e-4
        assert loss == pytest.approx(losses["fastmlp"], rel=tol), (name, losses)
    assert np.isfinite(losses["fastmlp"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_bounds_compute_the_products(dtype):
    workload = C.WORKLOADS["W3"]
    X, _, _ = C.make_data(workload, dtype, n_samples=50)
    sizes = [workload.n_features, *workload.hidden, workload.n_outputs]
    for blas in ("numpy", "scipy"):
        run = C.gemm_bound(X, sizes, 16, blas)
        run()  # must run through without shape errors
    # the SciPy path multiplies in the right order: check one product against NumPy
    from scipy.linalg import blas as scipy_blas

    gemm = scipy_blas.sgemm if dtype == np.float32 else scipy_blas.dgemm
    A = np.arange(6, dtype=dtype).reshape(2, 3)
    W = np.arange(12, dtype=dtype).reshape(3, 4)
    out = np.empty((2, 4), dtype)
    gemm(1.0, W.T, A.T, 0.0, out.T, overwrite_c=True)
    np.testing.assert_allclose(out, A @ W)
