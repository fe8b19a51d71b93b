"""pytest-benchmark suite: `python -m pytest bench/ --benchmark-only` (not part of the normal test run).

One epoch per contender per workload point (smaller row counts than compare.py,
which is the side-by-side run whose ratios count), fastmlp's epoch on one engine
thread, two and the default, and prediction latency and threads.
Group by workload to read the contenders side by side: --benchmark-group-by=group.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contenders as C  # noqa: E402

ROWS = {"W1": 4000, "W2": 10000, "W3": 2000}
NAMES = ["fastmlp", "fastmlp estimator", "numpy reference", "scikit-learn", "pytorch", "GEMM bound"]
POINTS = [(key, batch) for key, w in C.WORKLOADS.items() for batch in w.batches]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("key,batch", POINTS, ids=[f"{k}-batch{b}" for k, b in POINTS])
@pytest.mark.parametrize("name", NAMES)
def test_epoch(benchmark, name, key, batch, dtype, optimizer):
    if name == "pytorch" and C.torch is None:
        pytest.skip("PyTorch is not installed")
    workload = C.WORKLOADS[key]
    X, y, Y = C.make_data(workload, np.dtype(dtype), n_samples=ROWS[key])
    contender = C.make_contenders(workload, X, y, Y, optimizer, batch, include={name})[name]
    benchmark.group = f"{key} batch {batch} {dtype} {optimizer}"
    benchmark.pedantic(contender.epoch, rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("n_threads", [1, 2, None], ids=["1-thread", "2-threads", "default"])
@pytest.mark.parametrize("key,batch", POINTS, ids=[f"{k}-batch{b}" for k, b in POINTS])
def test_epoch_threads(benchmark, key, batch, n_threads):
    """fastmlp's epoch on one engine thread, on two and on the default (float32, sgd)."""
    workload = C.WORKLOADS[key]
    X, y, Y = C.make_data(workload, np.float32, n_samples=ROWS[key])
    contender = C.make_contenders(workload, X, y, Y, "sgd", batch, include={"fastmlp"}, n_threads=n_threads)["fastmlp"]
    benchmark.group = f"{key} batch {batch} float32 sgd: engine threads"
    benchmark.pedantic(contender.epoch, rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("n_threads", [1, 2, None], ids=["1-thread", "2-threads", "default"])
def test_predict_threads(benchmark, n_threads):
    """Network.forward of 10,000 W1 rows on one engine thread, on two and on the default."""
    import fastmlp

    workload = C.WORKLOADS["W1"]
    X, y, _ = C.make_data(workload, np.float64, n_samples=10000)
    est = fastmlp.MLPClassifier(hidden_layer_sizes=workload.hidden, max_iter=1, random_state=0).fit(X[:1000], y[:1000])
    benchmark.group = "predict 10000 rows: engine threads"
    benchmark.pedantic(est._network.forward, args=(X,), kwargs=dict(n_threads=n_threads), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("rows", [1, 10, 1000])
@pytest.mark.parametrize("how", ["Network.forward", "MLPClassifier.predict"])
def test_predict(benchmark, how, rows):
    import fastmlp

    workload = C.WORKLOADS["W1"]
    X, y, _ = C.make_data(workload, np.float64, n_samples=1000)
    est = fastmlp.MLPClassifier(hidden_layer_sizes=workload.hidden, max_iter=1, random_state=0).fit(X, y)
    predict = est._network.forward if how == "Network.forward" else est.predict
    A = np.ascontiguousarray(X[:rows])
    benchmark.group = f"predict {rows} rows"
    benchmark(predict, A)
