"""Side-by-side training speed: fastmlp vs the NumPy reference vs scikit-learn vs the GEMM bound.

Every contender trains one epoch on the same data, interleaved round by round
in one process (the machine is shared and noisy: only ratios from one run
mean anything). The GEMM bound is the time of only the matrix products of the
same forward and backward passes, NumPy matmul(out=...) on preallocated arrays.

    python bench/compare.py            # full run, writes bench/RESULTS.md and bench/results.json
    python bench/compare.py --quick    # fewer rows and rounds (under two minutes)
"""
import argparse
import json
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

import fastmlp
from fastmlp import reference

HERE = Path(__file__).resolve().parent

# name, rows, features, hidden, outputs, batch sizes
WORKLOADS = [
    ("W1 mnist-like", 20000, 784, (256, 128), 10, (32, 128, 512)),
    ("W2 tabular", 50000, 32, (64, 64), 2, (32, 256)),
]


def make_data(n, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (X[:, : min(d, 8)] @ rng.standard_normal((min(d, 8), k))).argmax(axis=1)
    Y = np.eye(k, dtype=dtype)[y]
    return X, y, Y


def gemm_bound(X, sizes, batch):
    """One epoch of only the GEMMs of forward and backward, on preallocated arrays."""
    dtype = X.dtype
    Ws = [np.ones((a, b), dtype) * 0.01 for a, b in zip(sizes[:-1], sizes[1:])]
    A = [np.empty((batch, s), dtype) for s in sizes]
    D = [np.empty((batch, s), dtype) for s in sizes]
    dW = [np.empty_like(W) for W in Ws]

    def run():
        n = X.shape[0]
        for start in range(0, n, batch):
            b = min(batch, n - start)
            A[0] = X[start:start + b]
            for l, W in enumerate(Ws):
                np.matmul(A[l][:b], W, out=A[l + 1][:b])
            D[-1][:b] = A[-1][:b]
            for l in range(len(Ws) - 1, -1, -1):
                np.matmul(A[l][:b].T, D[l + 1][:b], out=dW[l])
                if l > 0:
                    np.matmul(D[l + 1][:b], Ws[l].T, out=D[l][:b])
    return run


def gemm_bound_scipy(X, sizes, batch):
    """The same GEMMs as gemm_bound through SciPy's BLAS (the library the engine calls)."""
    from scipy.linalg import blas

    dtype = X.dtype
    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    Ws = [np.ones((a, b), dtype) * 0.01 for a, b in zip(sizes[:-1], sizes[1:])]
    A = [np.empty((batch, s), dtype) for s in sizes]
    D = [np.empty((batch, s), dtype) for s in sizes]
    dW = [np.empty_like(W) for W in Ws]

    # Row-major C = op(P) op(Q) is column-major C^T = op(Q)^T op(P)^T: the
    # transposes (.T) of C-contiguous arrays are the Fortran arrays f2py wants.
    def run():
        n = X.shape[0]
        for start in range(0, n, batch):
            b = min(batch, n - start)
            A[0] = X[start:start + b]
            for l, W in enumerate(Ws):
                gemm(1.0, W.T, A[l][:b].T, 0.0, A[l + 1][:b].T, overwrite_c=True)
            D[-1][:b] = A[-1][:b]
            for l in range(len(Ws) - 1, -1, -1):
                gemm(1.0, D[l + 1][:b].T, A[l][:b].T, 0.0, dW[l].T, trans_b=1, overwrite_c=True)
                if l > 0:
                    gemm(1.0, Ws[l].T, D[l + 1][:b].T, 0.0, D[l][:b].T, trans_a=1, overwrite_c=True)
    return run


def contenders(X, y, Y, hidden, batch, optimizer):
    sizes = [X.shape[1], *hidden, Y.shape[1]]
    kw = dict(activation="relu", output_activation="softmax", loss="log_loss", dtype=X.dtype, random_state=0)
    fit_kw = dict(epochs=1, batch_size=batch, optimizer=optimizer, learning_rate=1e-3 if optimizer == "adam" else 0.01)
    net = fastmlp.Network(sizes, **kw)
    ref = reference.Network(sizes, **kw)
    out = {
        "fastmlp": lambda: net.fit(X, Y, **fit_kw),
        "numpy reference": lambda: ref.fit(X, Y, **fit_kw),
        "GEMM bound": gemm_bound(X, sizes, batch),
    }
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        skl = MLPClassifier(hidden, solver=optimizer, batch_size=batch, max_iter=1, alpha=0.0, momentum=0.0,
                            learning_rate_init=fit_kw["learning_rate"], tol=0.0, random_state=0)

        def run_sklearn():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                skl.fit(X, y)
        out["scikit-learn"] = run_sklearn
    except ImportError:
        pass
    return out


def measure(funcs, rounds):
    times = {name: [] for name in funcs}
    for name, f in funcs.items():  # warm up
        f()
    for _ in range(rounds):
        for name, f in funcs.items():
            tic = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - tic)
    return {name: float(np.median(t)) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rows and rounds")
    args = parser.parse_args()
    scale, rounds = (0.1, 2) if args.quick else (1.0, 3)
    rows = []
    for name, n, d, hidden, k, batches in WORKLOADS:
        n = int(n * scale)
        for dtype in (np.float32, np.float64):
            X, y, Y = make_data(n, d, k, dtype)
            for optimizer in ("sgd", "adam"):
                for batch in batches:
                    t = measure(contenders(X, y, Y, hidden, batch, optimizer), rounds)
                    bound = t["GEMM bound"]
                    row = dict(workload=name, rows=n, dtype=np.dtype(dtype).name, optimizer=optimizer, batch=batch,
                               seconds=t, ratio_to_bound={c: v / bound for c, v in t.items()})
                    rows.append(row)
                    print(f"{name:14s} {row['dtype']:8s} {optimizer:4s} batch {batch:4d}  "
                          + "  ".join(f"{c} {v / bound:5.2f}x" for c, v in t.items()), flush=True)
    write(rows, args.quick)


def write(rows, quick):
    try:
        from threadpoolctl import threadpool_info
        blas = [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "filepath")} for i in threadpool_info()]
    except ImportError:
        blas = []
    meta = dict(date=str(date.today()), quick=quick, python=sys.version.split()[0], machine=platform.machine(),
                processor=platform.processor(), numpy=np.__version__, fastmlp=fastmlp.__version__, blas=blas)
    try:
        import sklearn
        meta["sklearn"] = sklearn.__version__
    except ImportError:
        pass
    (HERE / "results.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    names = list(rows[0]["seconds"])
    lines = [
        "# Benchmark results",
        "",
        f"{'Quick' if quick else 'Full'} run of `python bench/compare.py{' --quick' if quick else ''}` on "
        f"{meta['date']}: Python {meta['python']}, NumPy {meta['numpy']}, scikit-learn {meta.get('sklearn')}, "
        f"{meta['machine']}. One epoch, median of rounds; each cell is the time relative to the GEMM bound "
        "(lower is better; the bound is 1.00). Seconds in `results.json`.",
        "",
        "| workload | rows | dtype | optimizer | batch | " + " | ".join(names) + " |",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['rows']} | {r['dtype']} | {r['optimizer']} | {r['batch']} | "
                     + " | ".join(f"{r['ratio_to_bound'][c]:.2f}" for c in names) + " |")
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
