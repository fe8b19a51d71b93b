"""Side-by-side speed: fastmlp vs the NumPy reference vs scikit-learn vs PyTorch vs the GEMM bound.

Every contender trains the same network from the same weights on the same data
(bench/contenders.py), interleaved round by round in one process: the machines
are shared and noisy, so only ratios measured in one run mean anything. The
GEMM bound is the time of only the matrix products of the same forward and
backward passes (NumPy matmul(out=...) on preallocated arrays; also through
SciPy's BLAS, the library the engine calls).

    python bench/compare.py            # full run: bench/RESULTS.md and bench/results.json
    python bench/compare.py --quick    # fewer rows, one round, one thread setting (under two minutes)
"""
import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import contenders as C  # noqa: E402

import fastmlp  # noqa: E402

QUICK_ROWS = {"W1": 2000, "W2": 5000, "W3": 2000}


def timed(contenders, rounds):
    """Median seconds per epoch of each contender, interleaved round by round, after a warm-up."""
    times = {name: [] for name in contenders}
    for c in contenders.values():
        c.epoch()
    for _ in range(rounds):
        for name, c in contenders.items():
            tic = time.perf_counter()
            c.epoch()
            times[name].append(time.perf_counter() - tic)
    return {name: float(np.median(t)) for name, t in times.items()}


def set_threads(n):
    if C.torch is not None:
        C.torch.set_num_threads(n)
    return threadpool_limits(n)


def training(args):
    rows = []
    threads = (1,) if args.quick else (2, 1)
    for key, workload in C.WORKLOADS.items():
        n = QUICK_ROWS[key] if args.quick else workload.n_samples
        for dtype in (np.float32, np.float64):
            X, y, Y = C.make_data(workload, dtype, n_samples=n)
            for optimizer in ("sgd", "adam"):
                for batch in workload.batches:
                    for nt in threads:
                        with set_threads(nt):
                            cs = C.make_contenders(workload, X, y, Y, optimizer, batch)
                            seconds = timed(cs, args.rounds)
                        bound = seconds["GEMM bound"]
                        n_batches = -(-n // batch)
                        row = dict(
                            workload=key, name=workload.name, rows=n, dtype=np.dtype(dtype).name,
                            optimizer=optimizer, batch=batch, threads=nt, seconds=seconds,
                            ratio_to_bound={c: s / bound for c, s in seconds.items()},
                            samples_per_second={c: n / s for c, s in seconds.items()},
                            us_per_batch={c: 1e6 * s / n_batches for c, s in seconds.items()},
                            loss={c: float(cs[c].loss()) for c in cs},
                        )
                        rows.append(row)
                        print(f"{key} {row['dtype']} {optimizer:4s} batch {batch:3d} threads {nt}  "
                              + "  ".join(f"{c} {r:.2f}x" for c, r in row["ratio_to_bound"].items()), flush=True)
    return rows


def latency(args):
    """Prediction time for 1, 10 and 1000 rows through each library (W1's network, trained briefly)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    workload = C.WORKLOADS["W1"]
    X, y, Y = C.make_data(workload, np.float64, n_samples=2000)
    kwargs = dict(hidden_layer_sizes=workload.hidden, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = fastmlp.MLPClassifier(**kwargs).fit(X, y)
        sk = SkMLP(**kwargs).fit(X, y)
    net = est._network
    ref = fastmlp.reference.Network(list(net.layer_sizes), output_activation="softmax", loss="log_loss")
    ref.coefs_, ref.intercepts_ = net.coefs_, net.intercepts_
    predictors = {
        "fastmlp Network.forward": net.forward,
        "fastmlp MLPClassifier.predict": est.predict,
        "numpy reference forward": ref.forward,
        "scikit-learn predict": sk.predict,
    }
    if C.torch is not None:
        layers = []
        for i, (W, b) in enumerate(zip(net.coefs_, net.intercepts_)):
            linear = C.torch.nn.Linear(*W.shape, dtype=C.torch.float64)
            with C.torch.no_grad():
                linear.weight.copy_(C.torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(C.torch.from_numpy(b))
            layers += [linear, C.torch.nn.ReLU()] if i < len(net.coefs_) - 1 else [linear, C.torch.nn.Softmax(1)]
        model = C.torch.nn.Sequential(*layers).eval()

        def torch_predict(A):
            with C.torch.no_grad():
                return model(C.torch.from_numpy(A)).numpy()
        predictors["pytorch forward"] = torch_predict
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        session = ort.InferenceSession(est.to_onnx().SerializeToString(), opts,
                                       providers=["CPUExecutionProvider"])
        predictors["ONNX Runtime (classifier graph)"] = lambda A: session.run(None, {"X": A})
    rows = []
    with set_threads(1):
        for n_rows in (1, 10, 1000):
            A = np.ascontiguousarray(X[:n_rows])
            result = {}
            for name, f in predictors.items():
                number = max(1, int(2000 / n_rows)) if not args.quick else max(1, int(300 / n_rows))
                f(A)
                best = min(_repeat(f, A, number) for _ in range(3 if not args.quick else 2))
                result[name] = best * 1e6
            rows.append(dict(rows=n_rows, microseconds=result))
            print(f"predict {n_rows:4d} rows  " + "  ".join(f"{k} {v:.1f} us" for k, v in result.items()), flush=True)
    return rows


def _repeat(f, A, number):
    tic = time.perf_counter()
    for _ in range(number):
        f(A)
    return (time.perf_counter() - tic) / number


def memory(args):
    """Peak memory (traced NumPy/Python allocations) of one fit, over the size of X."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    workload = C.WORKLOADS["W1"]
    X, y, _ = C.make_data(workload, np.float64, n_samples=2000 if args.quick else 10000)
    out = {}
    for name, cls in (("fastmlp", fastmlp.MLPClassifier), ("scikit-learn", SkMLP)):
        model = cls(hidden_layer_sizes=workload.hidden, max_iter=1, batch_size=200, random_state=0)
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[name] = peak / X.nbytes
    print("peak fit memory / X: " + "  ".join(f"{k} {v:.2f}" for k, v in out.items()))
    return dict(rows=X.shape[0], features=X.shape[1], peak_over_X=out)


def meta(quick):
    versions = {"python": sys.version.split()[0], "numpy": np.__version__, "fastmlp": fastmlp.__version__}
    for name in ("scipy", "sklearn"):
        versions[name] = __import__(name).__version__
    versions["torch"] = C.torch.__version__ if C.torch is not None else None
    blas = [{k: info.get(k) for k in ("user_api", "internal_api", "prefix", "version", "num_threads",
                                      "threading_layer", "architecture")} for info in threadpool_info()]
    return dict(date=str(date.today()), quick=quick, machine=platform.machine(), cpus=os.cpu_count(),
                processor=platform.processor() or platform.uname().machine, versions=versions, blas=blas)


def write(results):
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    m = results["meta"]
    v = m["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"{'Quick' if m['quick'] else 'Full'} run of `python bench/compare.py{' --quick' if m['quick'] else ''}` "
        f"on {m['date']}, {m['machine']} with {m['cpus']} cores: Python {v['python']}, NumPy {v['numpy']}, "
        f"SciPy {v['scipy']}, scikit-learn {v['sklearn']}, PyTorch {v['torch'] or 'not installed'}; BLAS: "
        + ", ".join(f"{b['prefix']} {b['version']} ({b['internal_api']}, {b['architecture']})"
                    for b in m["blas"] if b.get("user_api") == "blas")
        + ". Raw numbers in `results.json`.",
        "",
        "## Training: time of one epoch relative to the GEMM bound",
        "",
        "The GEMM bound is the time of only the forward and backward matrix products (NumPy's BLAS); "
        "1.00 is the bound, lower is faster. Every contender trains the same network from the same weights; "
        "the last column is fastmlp's epoch loss (all contenders' losses are in results.json).",
        "",
    ]
    rows = results["training"]
    names = list(rows[0]["seconds"])
    lines.append("| workload | dtype | optimizer | batch | threads | " + " | ".join(names)
                 + " | fastmlp samples/s | fastmlp us/batch | loss |")
    lines.append("|---|---|---|---|---|" + "---|" * (len(names) + 3))
    for r in rows:
        lines.append(f"| {r['name']} ({r['rows']} rows) | {r['dtype']} | {r['optimizer']} | {r['batch']} | "
                     f"{r['threads']} | " + " | ".join(f"{r['ratio_to_bound'][c]:.2f}" for c in names)
                     + f" | {r['samples_per_second']['fastmlp']:,.0f} | {r['us_per_batch']['fastmlp']:.1f} | "
                     f"{r['loss']['fastmlp']:.4f} |")
    lines += ["", "## Prediction latency (microseconds, one thread)", ""]
    lat = results["latency"]
    pnames = list(lat[0]["microseconds"])
    lines.append("| rows | " + " | ".join(pnames) + " |")
    lines.append("|---|" + "---|" * len(pnames))
    for r in lat:
        lines.append(f"| {r['rows']} | " + " | ".join(f"{r['microseconds'][k]:.1f}" for k in pnames) + " |")
    mem = results["memory"]
    lines += ["", "## Peak memory of fit over the size of X", "",
              f"One epoch of `MLPClassifier.fit` on {mem['rows']} x {mem['features']} float64 (traced allocations): "
              + ", ".join(f"{k} {v:.2f}" for k, v in mem["peak_over_X"].items()) + "."]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rows, one round, one thread setting")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender (default 3, quick 1)")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    results = dict(meta=meta(args.quick), training=training(args), latency=latency(args), memory=memory(args))
    write(results)


if __name__ == "__main__":
    main()
