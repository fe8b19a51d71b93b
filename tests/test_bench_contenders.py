"""The benchmark's contenders compute the same thing (not timed).

From the same initial weights, one epoch without shuffling gives the same mean
training loss through fastmlp (Network and estimator), the NumPy reference,
scikit-learn and, when it is installed, PyTorch; and the GEMM bounds run the
same products through NumPy and SciPy.
"""
import sys

import numpy as np
import pytest
from _helpers import repository

sys.path.insert(0, str(repository("bench")))
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


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_loss_with_another_activation(dtype, activation):
    # the activations section's contenders: every one with the hidden activation asked for (a contender left
    # on ReLU would give another loss)
    workload = C.WORKLOADS["W2"]
    X, y, Y = C.make_data(workload, dtype, n_samples=300)
    cs = C.make_contenders(workload, X, y, Y, "adam", 64, shuffle=False, activation=activation,
                           include={"fastmlp", "fastmlp estimator", "numpy reference", "scikit-learn"})
    losses = {}
    for name, c in cs.items():
        c.epoch()
        losses[name] = float(c.loss())
    relu = C.make_contenders(workload, X, y, Y, "adam", 64, shuffle=False, include={"fastmlp"})["fastmlp"]
    relu.epoch()
    assert losses["fastmlp"] != pytest.approx(float(relu.loss()), rel=1e-3)
    for name, loss in losses.items():
        assert loss == pytest.approx(losses["fastmlp"], rel=1e-4 if dtype == np.float32 else 1e-6), (name, losses)


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


@pytest.mark.parametrize("sizes", [[6, 5, 4, 3], [6, 3]])
def test_members_gemm_bound_lays_the_products_out_as_the_ensemble(sizes):
    """gemm_bound(members=K): a weight gradient of each parameter block of a NetworkEnsemble's layout (the
    first layer, when hidden, one wide block), and the products it times are the members' products."""
    import fastmlp

    K, batch = 4, 8
    X = np.random.default_rng(0).standard_normal((20, sizes[0]))
    run = C.gemm_bound(X, sizes, batch, members=K)
    run()
    ens = fastmlp.NetworkEnsemble(sizes, n_members=K, random_state=0)
    wide = len(sizes) > 2
    expected = [(sizes[0], K * sizes[1]) if l == 0 and wide else (K, a, b)
                for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    assert [g.shape for g in run.dW] == expected
    assert sum(g.size for g in run.dW) == sum(w.size for w in ens.member(0).coefs_) * K
    W1, Ws = run.weights
    last = X[16:]  # the last batch, 4 rows
    if wide:
        np.testing.assert_allclose(run.hidden[1][:4], last @ W1)
        H = run.hidden[1][:4].reshape(4, K, -1)
        np.testing.assert_allclose(run.hidden[2][:4].reshape(4, K, -1), np.einsum("rki,kio->rko", H, Ws[1]))


def test_fastmlp_contender_takes_n_threads():
    """n_threads reaches the fastmlp Network's fit (0 is refused there), and 1 and 2 give the same bits."""
    workload = C.WORKLOADS["W1"]
    X, y, Y = C.make_data(workload, np.float32, n_samples=300)
    with pytest.raises(ValueError, match="n_threads"):
        C.make_contenders(workload, X, y, Y, "sgd", 128, include={"fastmlp"}, n_threads=0)["fastmlp"].epoch()
    losses = []
    for n_threads in (1, 2):
        c = C.make_contenders(workload, X, y, Y, "adam", 128, include={"fastmlp"}, n_threads=n_threads)["fastmlp"]
        c.epoch()
        c.epoch()
        losses.append(c.loss())
    assert losses[0] == losses[1]


def test_thread_targets_follow_the_ceiling():
    """compare.py's two-over-one thread target: the issue's figure, or 90% of a lower ceiling; and its tables."""
    import compare

    assert compare.thread_target(1.7, 1.95) == 1.7
    assert compare.thread_target(1.7, 1.6) == pytest.approx(1.44)
    row = dict(workload="W1", name="W1", rows=100, dtype="float32", optimizer="sgd", batch=128,
               seconds={"1 thread": 1.0, "2 threads": 0.6, "default": 0.6}, two_over_one=1.0 / 0.6,
               default_over_one=1.0 / 0.6, ceiling=1.8, two_threads_over_bound=1.1, same_loss=True,
               engine_threads={"1 thread": 1, "2 threads": 2, "default": 2})
    predict = {k: v for k, v in row.items() if k not in ("optimizer", "batch")}
    predict |= dict(how="Network.forward", two_over_one=1.2, ceiling=1.2)
    busy = dict(row, seconds=row["seconds"] | {"1 thread, again": 1.0, "estimator, 1 thread": 1.0,
                                                "estimator, default": 1.1},
                again_over_one=1.0, estimator_default_over_one=1 / 1.1)
    fresh = dict(workload="fresh", name="fits", rows=100, features=5, hidden=[7], dtype="float64", optimizer="sgd",
                 batch=64, fresh=True, epochs=3, seconds={"1 thread": 0.3, "default": 0.25},
                 default_over_one=1.2)  # new estimators
    results = dict(threads=[row], threads_predict=[predict], busy=[busy, fresh])

    def met(words):
        (t,) = [t for t in compare.targets(results) if words in t["target"]]
        return t["met"], t["points"]

    assert met("1.7x, W1 batch 128 and 512") == (0, 1)  # 1.67 < 1.7: the ceiling, 1.8, is above 1.7
    assert met("predict of 10,000 W1 rows") == (1, 1)  # 1.2 >= 0.9 x the ceiling, 1.2, below 1.5
    assert met("core busy") == (2, 3)  # the estimator's default/1, 0.91, is below 0.95
    lines = compare.threads_sections(results)
    assert "| fits (100 rows) | 300.0 | 250.0 | 1.20x |" in " ".join(lines)
    assert "| W1 (100 rows) | float32 | sgd | 128 | 1000.0 | 600.0 | 600.0 | 1.67x | 1.67x | 1.80x | 1.70x |" in (
        " ".join(lines))


def test_short_jobs_repeat_to_last_and_alike_jobs_repeat_alike(monkeypatch):
    """compare._round_times: a job shorter than at_least runs several times a round (its figure their mean);
    the jobs of an alike group run the same number of times (fits compared bit for bit train alike)."""
    import compare

    monkeypatch.setattr(compare.time, "sleep", lambda seconds: None)
    calls = {"short": 0, "other short": 0, "long": 0}
    seconds = {"short": 0.01, "other short": 0.04, "long": 0.5}

    def job(name):
        calls[name] += 1
        return seconds[name]

    jobs = {name: (lambda name=name: job(name)) for name in calls}
    times = compare._round_times(jobs, 2, 0.0, at_least=0.1, alike=[["short", "other short"]])
    # one warm-up each, then 2 rounds: "short" needs 10 a round, so its group runs 10; "long" once
    assert calls == {"short": 1 + 2 * 10, "other short": 1 + 2 * 10, "long": 1 + 2 * 1}
    assert times["short"] == pytest.approx([0.01, 0.01]) and times["long"] == [0.5, 0.5]
    calls.update(dict.fromkeys(calls, 0))
    compare._round_times(jobs, 1, 0.0)  # without at_least: once a round
    assert calls == {"short": 2, "other short": 2, "long": 2}


def test_each_round_starts_one_job_later():
    """compare._round_times: round r runs the jobs from the r-th on, so no job always runs first after the
    pause (on a busy machine that place measured apart from the others)."""
    import compare

    order = []
    jobs = {name: (lambda name=name: order.append(name) or 0.1) for name in "abc"}
    times = compare._round_times(jobs, 4, 0.0)
    assert order == list("abc") + list("abc") + list("bca") + list("cab") + list("abc")  # the warm-up, 4 rounds
    assert times == {name: [0.1] * 4 for name in "abc"}  # each job's figures under its own name


def test_ensemble_rows_show_the_least_ratio_the_cpu_allows():
    """compare.epoch_macs counts an epoch's multiply-adds (forward, weight gradients, deltas below the top
    layer but not into the input); the least ratio reaches the ensembles' target line and table."""
    import compare

    # [2, 3, 1]: forward 2*3 + 3*1, the same again for dW, the delta into the hidden layer 3*1: 21 a row
    assert compare.epoch_macs([2, 3, 1], 10) == 210
    assert compare.epoch_macs([4, 1], 5) == 5 * 2 * 4  # no hidden layer: no delta but the output's
    row = dict(workload="W2", name="W2 tabular", rows=100, dtype="float32", optimizer="sgd", batch=32, K=16,
               target=8.0, seconds={"one member": [1.0], "16 members": [9.0]}, ratio=9.0, macs=1e9, peak=5e10,
               least=16 * 1e9 / 5e10 / 1.0)
    (t,) = [t for t in compare.targets(dict(ensembles=[row])) if "W2 batch 32" in t["target"]]
    assert "allows no less than 0.32x" in t["target"] and (t["met"], t["points"]) == (0, 1)
    (line,) = [line for line in compare.ensemble_lines(dict(ensembles=[row])) if line.startswith("| W2")]
    assert line == "| W2 tabular (100 rows) | sgd | 32 | 16 | 1000.0 | 9000.0 | 9.00x | <= 8x | 0.32x | |"
    assert "50.0 G multiply-adds" in " ".join(compare.ensemble_lines(dict(ensembles=[row])))
    # W1's rows also get the K members' products alone (through BLAS) over the one member's epoch
    row.update(workload="W1", name="W1 MNIST-like", products=7.5, least_blas=7.5)
    (t,) = [t for t in compare.targets(dict(ensembles=[row])) if "W1 batch" in t["target"]]
    assert "its products alone through BLAS 7.50x" in t["target"]
    (line,) = [line for line in compare.ensemble_lines(dict(ensembles=[row])) if line.startswith("| W1")]
    assert line.endswith("| 0.32x | 7.50x |")
