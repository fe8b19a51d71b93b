"""Side-by-side speed: fastmlp vs the NumPy reference vs scikit-learn vs PyTorch vs the GEMM bound.

Every contender trains the same network from the same weights on the same data
(bench/contenders.py), interleaved round by round in one process: the machines
are shared and noisy, so only ratios measured in one run mean anything. The
GEMM bound is the time of only the matrix products of the same forward and
backward passes (NumPy matmul(out=...) on preallocated arrays; also through
SciPy's BLAS, the library the engine calls). Prediction latency is measured
the same way against the forward products alone; then two models fitting at
once (threads, and processes as the ceiling), and the peak memory of fit.

    python bench/compare.py            # full run: bench/RESULTS.md and bench/results.json
    python bench/compare.py --quick    # fewer rows, one round, one thread setting (under two minutes)
"""
import argparse
import gc
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import contenders as C  # noqa: E402

import fastmlp  # noqa: E402

QUICK_ROWS = {"W1": 2000, "W2": 5000, "W3": 2000}
FORWARD_BOUND = "GEMM bound (forward products)"  # the latency tables' bound column
TWO_MODELS_BATCH = 32


def timed(contenders, rounds, pause):
    """Median seconds per epoch of each contender, interleaved round by round, after a warm-up.

    Each timed call follows `pause` seconds of rest (not timed): NumPy and SciPy
    each bundle their own OpenBLAS, whose worker threads spin ~0.1 s after a
    call and would slow whoever runs next on the other library.
    """
    times = {name: [] for name in contenders}
    for c in contenders.values():
        c.epoch()
    for _ in range(rounds):
        for name, c in contenders.items():
            time.sleep(pause)
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
                            seconds = timed(cs, args.rounds, args.pause)
                        bound = seconds["GEMM bound"]
                        n_batches = -(-n // batch)
                        row = dict(
                            workload=key, name=workload.name, rows=n, dtype=np.dtype(dtype).name,
                            optimizer=optimizer, batch=batch, threads=nt, seconds=seconds,
                            ratio_to_bound={c: s / bound for c, s in seconds.items()},
                            samples_per_second={c: n / s for c, s in seconds.items()},
                            us_per_batch={c: 1e6 * s / n_batches for c, s in seconds.items()},
                            speedup_over_sklearn={c: seconds["scikit-learn"] / seconds[c]
                                                  for c in ("fastmlp", "fastmlp estimator")},
                            loss={c: float(cs[c].loss()) for c in cs},
                        )
                        rows.append(row)
                        print(f"{key} {row['dtype']} {optimizer:4s} batch {batch:3d} threads {nt}  "
                              + "  ".join(f"{c} {r:.2f}x" for c, r in row["ratio_to_bound"].items()), flush=True)
    return rows


def latency(args):
    """Prediction latency on W1's and W2's networks: {workload: its table}."""
    return {key: latency_of(C.WORKLOADS[key], args) for key in ("W1", "W2")}


def latency_of(workload, args):
    """Prediction time for 1, 10 and 1000 rows through each library, one thread, against the GEMM bound.

    The network is `workload`'s (float64), trained briefly. Each predictor's
    time is the best over interleaved rounds of the mean of enough calls to
    fill a fixed budget.
    """
    X, y, _ = C.make_data(workload, np.float64, n_samples=2000)
    predictors = _predictors(workload, X, y)
    budget, rounds = (0.02, 3) if args.quick else (0.1, 5)
    timings = []
    with set_threads(1):
        for n_rows in (1, 10, 1000):
            A = np.ascontiguousarray(X[:n_rows])
            number = {}
            for name, f in predictors.items():
                f(A)  # warm-up, then one call to size the budget
                number[name] = max(1, int(budget / _repeat(f, A, 1)))
            best = {name: float("inf") for name in predictors}
            for _ in range(rounds):
                for name, f in predictors.items():
                    best[name] = min(best[name], _repeat(f, A, number[name]))
            result = {name: t * 1e6 for name, t in best.items()}
            timings.append(dict(rows=n_rows, microseconds=result))
            print(f"{workload.name} predict {n_rows:4d} rows  "
                  + "  ".join(f"{k} {v:.1f} us" for k, v in result.items()), flush=True)
    one_row = timings[0]["microseconds"]
    over_bound = {k: v / one_row[FORWARD_BOUND] for k, v in one_row.items()}
    print(f"{workload.name} predict 1 row over the GEMM bound  "
          + "  ".join(f"{k} {r:.2f}x" for k, r in over_bound.items()), flush=True)
    sizes = [workload.n_features, *workload.hidden, workload.n_outputs]
    return dict(name=workload.name, layer_sizes=sizes, output_activation=C.OUTPUT[workload.task][0],
                timings=timings, one_row_over_bound=over_bound)


def _predictors(workload, X, y):
    """Each contender's prediction function of the rows, on one network: the fastmlp estimator's, trained briefly."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    kwargs = dict(hidden_layer_sizes=workload.hidden, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = fastmlp.MLPClassifier(**kwargs).fit(X, y)
        sk = SkMLP(**kwargs).fit(X, y)
    net = est._network
    ref = fastmlp.reference.Network(list(net.layer_sizes), output_activation=net.output_activation,
                                    loss="log_loss")
    ref.coefs_, ref.intercepts_ = net.coefs_, net.intercepts_
    predictors = {
        "fastmlp Network.forward": net.forward,
        "fastmlp MLPClassifier.predict": est.predict,
        "numpy reference forward": ref.forward,
        "scikit-learn predict": sk.predict,
    }
    if C.torch is not None:
        layers = []
        for W, b in zip(net.coefs_, net.intercepts_):
            linear = C.torch.nn.Linear(*W.shape, dtype=C.torch.float64)
            with C.torch.no_grad():
                linear.weight.copy_(C.torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(C.torch.from_numpy(b))
            layers += [linear, C.torch.nn.ReLU()]
        layers[-1] = C.torch.nn.Softmax(1) if net.output_activation == "softmax" else C.torch.nn.Sigmoid()
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
        opts.log_severity_level = 3  # errors only: not the notice about an unused initializer
        session = ort.InferenceSession(est.to_onnx().SerializeToString(), opts,
                                       providers=["CPUExecutionProvider"])
        predictors["ONNX Runtime (classifier graph)"] = lambda A: session.run(None, {"X": A})
    predictors[FORWARD_BOUND] = forward_gemm_bound(net.coefs_)
    return predictors


def forward_gemm_bound(coefs):
    """Only the forward matrix products of a network with weights `coefs`, for the rows given.

    NumPy matmul(out=...) into arrays preallocated once per row count, in a
    Python loop over the layers, output layer included: no bias, no activation.
    """
    coefs = [np.ascontiguousarray(W) for W in coefs]
    outputs = {}

    def run(A):
        if A.shape[0] not in outputs:
            outputs[A.shape[0]] = [np.empty((A.shape[0], W.shape[1]), A.dtype) for W in coefs]
        for W, Z in zip(coefs, outputs[A.shape[0]]):
            np.matmul(A, W, out=Z)
            A = Z
        return A
    return run


def _repeat(f, A, number):
    tic = time.perf_counter()
    for _ in range(number):
        f(A)
    return (time.perf_counter() - tic) / number


def two_models(args):
    """Throughput of two models fitting at once relative to one alone: two threads, and two processes.

    Each worker fits its own fastmlp.Network (W2's, SGD, batch 32) on the same
    data, BLAS at one thread. The engine releases the GIL for the whole epoch,
    so two threads should come near two processes, the ceiling. The throughput
    ratio is 2 t1 / t2: t1 the time of one fit alone, t2 of two at once (from
    the first start to the last end), medians over interleaved rounds.
    """
    workload = C.WORKLOADS["W2"]
    n, epochs, rounds = (20000, 10, 2) if args.quick else (workload.n_samples, 10, 3)
    rows = []
    for dtype in (np.float64,) if args.quick else (np.float32, np.float64):
        X, _, Y = C.make_data(workload, dtype, n_samples=n)
        walls = {(kind, k): [] for kind in ("threads", "processes") for k in (1, 2)}
        with threadpool_limits(1):
            for _ in range(rounds):
                for kind, k in walls:
                    time.sleep(args.pause)
                    walls[kind, k].append(_fit_at_once(kind, k, workload, X, Y, epochs))
        t = {key: float(np.median(v)) for key, v in walls.items()}
        row = dict(workload="W2", name=workload.name, rows=n, dtype=np.dtype(dtype).name, optimizer="sgd",
                   batch=TWO_MODELS_BATCH, epochs=epochs,
                   one_alone_seconds={kind: t[kind, 1] for kind in ("threads", "processes")},
                   two_at_once_seconds={kind: t[kind, 2] for kind in ("threads", "processes")},
                   throughput_ratio={kind: 2 * t[kind, 1] / t[kind, 2] for kind in ("threads", "processes")})
        rows.append(row)
        print(f"two models at once, W2 {row['dtype']} ({n} rows, {epochs} epochs): "
              + "  ".join(f"{kind} {row['throughput_ratio'][kind]:.2f}x (one {t[kind, 1]:.2f} s, "
                          f"two {t[kind, 2]:.2f} s)" for kind in ("threads", "processes")), flush=True)
    return rows


def _fit_at_once(kind, k, workload, X, Y, epochs):
    """Wall seconds of k fits started together in k threads or k processes, from the first start to the last end."""
    if kind == "threads":
        barrier = threading.Barrier(k)
        with ThreadPoolExecutor(k) as pool:
            spans = list(pool.map(lambda _: _fit_at_barrier(workload, X, Y, epochs, barrier), range(k)))
    else:  # fork: no start-up imports; spawn where there is no fork
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        barrier, queue = ctx.Barrier(k), ctx.Queue()
        workers = [ctx.Process(target=_process_fit, args=(workload, X, Y, epochs, barrier, queue), daemon=True)
                   for _ in range(k)]
        for w in workers:
            w.start()
        spans = [queue.get(timeout=600) for _ in workers]
        for w in workers:
            w.join()
    return max(end for _, end in spans) - min(start for start, _ in spans)


def _fit_at_barrier(workload, X, Y, epochs, barrier):
    """Fit a fresh Network: one warm-up epoch, wait for the others, then the timed fit; its (start, end)."""
    net = C.initial_network(workload, X.dtype)
    fit_kwargs = dict(batch_size=TWO_MODELS_BATCH, optimizer="sgd")
    net.fit(X, Y, epochs=1, **fit_kwargs)
    barrier.wait(timeout=600)
    tic = time.perf_counter()
    net.fit(X, Y, epochs=epochs, **fit_kwargs)
    return tic, time.perf_counter()


def _process_fit(workload, X, Y, epochs, barrier, queue):
    """One process of two_models: BLAS at one thread, (start, end) of its timed fit into queue."""
    with threadpool_limits(1):
        queue.put(_fit_at_barrier(workload, X, Y, epochs, barrier))


def memory(args):
    """Peak memory (traced NumPy/Python allocations) of one epoch of fit, over the size of X.

    X is C-contiguous in the model's dtype, so fit needs no copy of it. Each
    model is built inside the traced region (the estimators build theirs in
    fit): W1's network, Adam, batch 200.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    workload = C.WORKLOADS["W1"]
    n = 2000 if args.quick else workload.n_samples  # W1: 20000 rows
    data = {np.dtype(dtype).name: C.make_data(workload, dtype, n_samples=n) for dtype in (np.float64, np.float32)}
    kwargs = dict(hidden_layer_sizes=workload.hidden, max_iter=1, batch_size=200, random_state=0)
    fits = {
        "fastmlp Network.fit": lambda X, y, Y: C.initial_network(workload, X.dtype).fit(
            X, Y, epochs=1, batch_size=200, optimizer="adam", learning_rate=1e-3),
        "fastmlp MLPClassifier.fit": lambda X, y, Y: fastmlp.MLPClassifier(**kwargs, dtype=X.dtype.name).fit(X, y),
        "scikit-learn fit": lambda X, y, Y: SkMLP(**kwargs).fit(X, y),
    }
    rows = []
    for name, fit in fits.items():
        for dtype, (X, y, Y) in data.items():
            tracemalloc.start()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fit(X, y, Y)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows.append(dict(model=name, dtype=dtype, peak_bytes=peak, X_bytes=X.nbytes, peak_over_X=peak / X.nbytes))
    print("peak fit memory / X: " + "  ".join(f"{r['model']} {r['dtype']} {r['peak_over_X']:.2f}" for r in rows))
    return dict(rows=n, features=workload.n_features, fits=rows)


def targets(results):
    """The issue's targets against this run: rows of (target, points met / points, worst point)."""
    train = results["training"]
    rows = []

    def check(target, points, at_least=None, at_most=None, info=False):
        """points: (label, value, limit); met when value >= limit (at_least) or <= limit (at_most).

        info=True: no target, only the median and the worst point.
        """
        if not points:
            return
        met = [(v >= lim) if at_least else (v <= lim) for _, v, lim in points]
        label, value, limit = min(points, key=lambda p: p[1] / p[2]) if at_least else max(points, key=lambda p: p[1] / p[2])
        rows.append(dict(target=target, met=sum(met), points=len(points), worst=f"{value:.2f} ({label})",
                         median=float(np.median([v for _, v, _ in points])), info=info))

    def label(r):
        return f"{r['workload']} {r['dtype']} {r['optimizer']} b{r['batch']} t{r['threads']}"

    def bound_limit(r):
        if r["workload"] == "W1" and r["dtype"] == "float32" and r["batch"] in (32, 128):
            return 1.30 if r["optimizer"] == "sgd" else 1.35
        return 1.15

    w12 = [r for r in train if r["workload"] in ("W1", "W2")]
    check("training time / GEMM bound <= 1.15 (W1 float32 batch 32, 128: 1.30 sgd, 1.35 adam)",
          [(label(r), r["ratio_to_bound"]["fastmlp"], bound_limit(r)) for r in w12], at_most=True)
    check("(no target) training time / GEMM bound computed with SciPy's BLAS, the one the engine calls",
          [(label(r), r["seconds"]["fastmlp"] / r["seconds"]["GEMM bound (SciPy BLAS)"], 1.0)
           for r in w12], at_most=True, info=True)
    check("(no target) GEMM bound with SciPy's BLAS / GEMM bound with NumPy's",
          [(label(r), r["ratio_to_bound"]["GEMM bound (SciPy BLAS)"], 1.0) for r in w12], at_most=True, info=True)
    for key, least in (("W1", 3.0), ("W2", 8.0)):
        for who in ("fastmlp", "fastmlp estimator"):
            check(f"{who} >= {least:g}x faster than scikit-learn, {key} batch 32",
                  [(label(r), r["speedup_over_sklearn"][who], least) for r in train
                   if r["workload"] == key and r["batch"] == 32], at_least=True)
    check(">= 2x faster than the NumPy reference at batch 32 (W1, W2)",
          [(label(r), r["seconds"]["numpy reference"] / r["seconds"]["fastmlp"], 2.0) for r in w12
           if r["batch"] == 32], at_least=True)
    check("faster than PyTorch (CPU) at every point",
          [(label(r), r["seconds"]["pytorch"] / r["seconds"]["fastmlp"], 1.0) for r in train
           if "pytorch" in r["seconds"]], at_least=True)
    for who in ("fastmlp", "fastmlp estimator"):
        check(f"{who} >= 20x scikit-learn's samples/s, W3 batch 16",
              [(label(r), r["samples_per_second"][who] / r["samples_per_second"]["scikit-learn"], 20.0)
               for r in train if r["workload"] == "W3" and r["batch"] == 16], at_least=True)
    for key, who, most in (("W1", "fastmlp Network.forward", 1.0), ("W2", "fastmlp Network.forward", 0.5),
                           ("W1", "fastmlp MLPClassifier.predict", 1.5)):
        lat = results["latency"][key]
        check(f"{who.removeprefix('fastmlp ')} of one row <= {most:g}x its GEMM bound, {key}",
              [(key, lat["one_row_over_bound"][who], most)], at_most=True)
    check("peak extra memory of fit <= 0.25x X (X in the model's dtype)",
          [(f"{r['model'].removeprefix('fastmlp ')} {r['dtype']}", r["peak_over_X"], 0.25)
           for r in results["memory"]["fits"] if r["model"].startswith("fastmlp")], at_most=True)
    check("two threads fitting two models >= 1.6x one (processes: the ceiling, in their table)",
          [(r["dtype"], r["throughput_ratio"]["threads"], 1.6) for r in results["two_models"]], at_least=True)
    return rows


def meta(args):
    versions = {"python": sys.version.split()[0], "numpy": np.__version__, "fastmlp": fastmlp.__version__}
    for name in ("scipy", "sklearn"):
        versions[name] = __import__(name).__version__
    versions["torch"] = C.torch.__version__ if C.torch is not None else None
    blas = [{k: info.get(k) for k in ("user_api", "internal_api", "prefix", "version", "num_threads",
                                      "threading_layer", "architecture")} for info in threadpool_info()]
    return dict(date=str(date.today()), quick=args.quick, rounds=args.rounds, pause=args.pause,
                machine=platform.machine(), cpus=os.cpu_count(),
                processor=platform.processor() or platform.uname().machine, versions=versions, blas=blas)


def write(results):
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    m = results["meta"]
    v = m["versions"]
    command_options = " --quick" if m["quick"] else (f" --rounds {m['rounds']}" if m["rounds"] != 3 else "")
    lines = [
        "# Benchmark results",
        "",
        f"{'Quick' if m['quick'] else 'Full'} run of `python bench/compare.py{command_options}` "
        f"on {m['date']}, {m['machine']} with {m['cpus']} cores: Python {v['python']}, NumPy {v['numpy']}, "
        f"SciPy {v['scipy']}, scikit-learn {v['sklearn']}, PyTorch {v['torch'] or 'not installed'}; BLAS: "
        + ", ".join(f"{b['prefix']} {b['version']} ({b['internal_api']}, {b['architecture']})"
                    for b in m["blas"] if b.get("user_api") == "blas")
        + f". Each time is the median of {m['rounds']} interleaved rounds. Raw numbers in `results.json`.",
        "",
        "## Targets",
        "",
        "Each target of the benchmark issue against this run: the points that meet it, and the worst point "
        "(tN = N BLAS threads); for the two rows without a target, the median over the W1 and W2 points. "
        "What bounds the misses is in `PROFILE.md`.",
        "",
        "| target | met | worst |",
        "|---|---|---|",
        *(f"| {t['target']} | " + (f"median {t['median']:.2f}" if t["info"] else f"{t['met']} / {t['points']}")
          + f" | {t['worst']} |" for t in targets(results)),
        "",
        "## Training: time of one epoch relative to the GEMM bound",
        "",
        "The GEMM bound is the time of only the forward and backward matrix products (NumPy's BLAS); "
        "1.00 is the bound, lower is faster. Every contender trains the same network from the same weights; "
        f"each timed epoch follows {m['pause']} s of rest. \"x sklearn\" is scikit-learn's time over fastmlp's "
        "(through Network and through MLPClassifier); the last column is fastmlp's epoch loss (all contenders' "
        "losses, and the time per batch, are in results.json).",
        "",
    ]
    rows = results["training"]
    names = list(rows[0]["seconds"])
    lines.append("| workload | dtype | optimizer | batch | threads | " + " | ".join(names)
                 + " | x sklearn (Network) | x sklearn (estimator) | fastmlp samples/s | loss |")
    lines.append("|---|---|---|---|---|" + "---|" * (len(names) + 4))
    for r in rows:
        speedup = r["speedup_over_sklearn"]
        lines.append(f"| {r['name']} ({r['rows']} rows) | {r['dtype']} | {r['optimizer']} | {r['batch']} | "
                     f"{r['threads']} | " + " | ".join(f"{r['ratio_to_bound'][c]:.2f}" for c in names)
                     + f" | {speedup['fastmlp']:.1f} | {speedup['fastmlp estimator']:.1f} | "
                     f"{r['samples_per_second']['fastmlp']:,.0f} | {r['loss']['fastmlp']:.4f} |")
    lines += ["", "## Prediction latency (microseconds, one thread)", "",
              f"The {FORWARD_BOUND} column is the time of only the network's forward matrix products for those rows "
              "(NumPy matmul(out=...) on preallocated arrays, output layer included); the last line is each time "
              "for one row over it. Targets for one row: Network.forward at most 1.0x the bound on W1 and 0.5x on "
              "W2, MLPClassifier.predict at most 1.5x on W1."]
    for lat in results["latency"].values():
        pnames = list(lat["timings"][0]["microseconds"])
        lines += ["", f"{lat['name']}: {'-'.join(map(str, lat['layer_sizes']))}, {lat['output_activation']} "
                      "output, float64.", ""]
        lines.append("| rows | " + " | ".join(pnames) + " |")
        lines.append("|---|" + "---|" * len(pnames))
        for r in lat["timings"]:
            lines.append(f"| {r['rows']} | " + " | ".join(f"{r['microseconds'][k]:.1f}" for k in pnames) + " |")
        lines.append("| 1 row, x bound | " + " | ".join(f"{lat['one_row_over_bound'][k]:.2f}x" for k in pnames)
                     + " |")
    lines += ["", "## Two models fitting at once (threads vs processes)", "",
              "Each worker fits its own `fastmlp.Network` on W2's data (SGD, batch 32), BLAS at one thread; "
              "throughput of two at once over one alone (2 t1 / t2). Two processes are the ceiling; the target "
              "for two threads is at least 1.6x.", "",
              "| dtype | rows x epochs | one alone, threads (s) | two threads (s) | threads | "
              "one alone, processes (s) | two processes (s) | processes |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results["two_models"]:
        lines.append(f"| {r['dtype']} | {r['rows']} x {r['epochs']} | " + " | ".join(
            f"{r['one_alone_seconds'][kind]:.2f} | {r['two_at_once_seconds'][kind]:.2f} | "
            f"{r['throughput_ratio'][kind]:.2f}x" for kind in ("threads", "processes")) + " |")
    mem = results["memory"]
    lines += ["", "## Peak memory of fit over the size of X", "",
              f"One epoch of fit on W1's {mem['rows']} x {mem['features']} X, C-contiguous in the model's dtype "
              "(traced allocations, the model built inside; Adam, batch 200). Target: at most 0.25.", "",
              "| fit | dtype | peak / X |", "|---|---|---|"]
    lines += [f"| {r['model']} | {r['dtype']} | {r['peak_over_X']:.2f} |" for r in mem["fits"]]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rows, one round, one thread setting")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender (default 3, quick 1)")
    parser.add_argument("--pause", type=float, default=None,
                        help="seconds of rest before each timed call (default 0.3, quick 0.1)")
    parser.add_argument("--rewrite", action="store_true", help="only rewrite RESULTS.md from results.json")
    args = parser.parse_args()
    if args.rewrite:
        write(json.loads((HERE / "results.json").read_text()))
        return
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.pause = args.pause if args.pause is not None else (0.1 if args.quick else 0.3)
    # Every library is imported into this one process; frozen, their objects are not
    # rescanned by a full garbage collection in whichever contender happens to trigger it.
    gc.collect()
    gc.freeze()
    results = dict(meta=meta(args), training=training(args), latency=latency(args), two_models=two_models(args),
                   memory=memory(args))
    write(results)
    for t in targets(results):
        met = f"median {t['median']:.2f}" if t["info"] else f"{t['met']:3d} / {t['points']:<3d}"
        print(f"{met:>11s}  {t['target']}; worst {t['worst']}")


if __name__ == "__main__":
    main()
