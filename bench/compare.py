"""Side-by-side speed: fastmlp vs the NumPy reference vs scikit-learn vs PyTorch vs the GEMM bound.

Every contender trains the same network from the same weights on the same data
(bench/contenders.py), interleaved round by round in one process: the machines
are shared and noisy, so only ratios measured in one run mean anything. The
GEMM bound is the time of only the matrix products of the same forward and
backward passes (NumPy matmul(out=...) on preallocated arrays; also through
SciPy's BLAS, the library the engine calls). Prediction latency is measured
the same way against the forward products alone; then fastmlp's engine on one
thread against two at every point, beside the machine's ceiling (two
processes running the GEMM bound at once), and while another process keeps a
core busy; then two models fitting at once (threads, and processes as the
ceiling), the peak memory of fit, and K members of a NetworkEnsemble trained in
one pass against one Network.

    python bench/compare.py            # full run: bench/RESULTS.md and bench/results.json
    python bench/compare.py --quick    # fewer rows, one round, one thread setting (about three minutes)
    python bench/compare.py --only threads,threads_predict,busy   # some sections: printed, no files written
    python bench/compare.py --only ensembles --rounds 5              # the ensembles section alone
    python bench/compare.py --only threads,busy --update   # run those again into results.json and RESULTS.md
"""
import argparse
import gc
import json
import math
import multiprocessing
import os
import platform
import re
import sys
import threading
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import contenders as C  # noqa: E402

import fastmlp  # noqa: E402

QUICK_ROWS = {"W1": 2000, "W2": 5000, "W3": 2000}
FORWARD_BOUND = "GEMM bound (forward products)"  # the latency tables' bound column
TWO_MODELS_BATCH = 32
ENGINE_THREADS = {"1 thread": 1, "2 threads": 2, "default": None}  # fastmlp's n_threads in the threads tables
BOUND_2 = "GEMM bound, 2 BLAS threads"
ALONE, SIDE_BY_SIDE = "ceiling: one process", "ceiling: two processes"
PREDICT_ROWS = 10000
# The busy machine's rounds (at least): the spinning process moves the one-thread figures by 5-10% between rounds.
BUSY_ROUNDS = 7
# the default thread choice counts as never slower than one thread down to this ratio: see busy()
NOISE = 0.95


# The training section's shortest timed run (seconds): an epoch shorter than it runs back to back as many times
# as make it up, each round, and its figure is their mean. A W3 epoch (0.2 ms warm) timed once after the
# pause read 1.0-1.7 ms, most of it the core and caches waking up, and its "x sklearn" 6.5-17x from run to run.
TRAINING_AT_LEAST = 0.05


def timed(contenders, rounds, pause, at_least=0.0):
    """Median seconds per epoch of each contender, interleaved round by round, after a warm-up (at_least: see
    _round_times)."""
    return _rounds({name: partial(_clock, c.epoch) for name, c in contenders.items()}, rounds, pause, at_least)


def _rounds(jobs, rounds, pause, at_least=0.0, alike=()):
    """Median seconds of each job, interleaved round by round, after a warm-up; a job returns its own seconds.

    Each timed call follows `pause` seconds of rest (not timed): NumPy and SciPy
    each bundle their own OpenBLAS, whose worker threads spin ~0.1 s after a
    call and would slow whoever runs next on the other library. at_least: see
    _round_times.
    """
    return {name: float(np.median(t)) for name, t in _round_times(jobs, rounds, pause, at_least, alike).items()}


def _at_least(args):
    """The threads sections' shortest timed run (seconds; see _round_times)."""
    return 0.05 if args.quick else 0.3


def _clock(f, *args, **kwargs):
    """Seconds of one call f(*args, **kwargs)."""
    tic = time.perf_counter()
    f(*args, **kwargs)
    return time.perf_counter() - tic


def set_threads(n):
    """n threads for every contender: BLAS, PyTorch and OpenMP, so fastmlp's engine too.

    The engine's default count follows the openmp limit of the calling thread.
    """
    if C.torch is not None:
        C.torch.set_num_threads(n)
    return threadpool_limits(n)


def engine_threads(n_threads=None):
    """The most threads fastmlp's engine uses for n_threads (None: its default under the limits now set)."""
    return fastmlp._engine.effective_n_threads(n_threads)


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
                            seconds = timed(cs, args.rounds, args.pause, 0.01 if args.quick else TRAINING_AT_LEAST)
                            fastmlp_threads = engine_threads()
                        bound = seconds["GEMM bound"]
                        n_batches = -(-n // batch)
                        row = dict(
                            workload=key, name=workload.name, rows=n, dtype=np.dtype(dtype).name,
                            optimizer=optimizer, batch=batch, threads=nt, fastmlp_threads=fastmlp_threads,
                            seconds=seconds,
                            ratio_to_bound={c: s / bound for c, s in seconds.items()},
                            samples_per_second={c: n / s for c, s in seconds.items()},
                            us_per_batch={c: 1e6 * s / n_batches for c, s in seconds.items()},
                            speedup_over_sklearn={c: seconds["scikit-learn"] / seconds[c]
                                                  for c in ("fastmlp", "fastmlp estimator")},
                            loss={c: float(cs[c].loss()) for c in cs},
                        )
                        rows.append(row)
                        print(f"{key} {row['dtype']} {optimizer:4s} batch {batch:3d} threads {nt} "
                              f"(fastmlp {fastmlp_threads})  "
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


def threads(args):
    """fastmlp's engine on one thread, on two and on its default, at every training point, beside the ceiling.

    At each point three fastmlp Networks train from the same weights with
    n_threads=1, 2 and None (the default: no openmp limit is set here, as for a
    user who sets none), interleaved round by round with NumPy's GEMM bound on
    two BLAS threads and with the machine's ceiling: the GEMM bound on one BLAS
    thread in one process alone and in two processes at once (throughput
    2 t1 / t2, as in two_models). The three fits end with the same loss, bit
    for bit, or the row says so.
    """
    rows = []
    # the bound's two threads; the engine pins BLAS to one itself
    with threadpool_limits(2, user_api="blas"), Ceiling() as workers:
        for key, workload in C.WORKLOADS.items():
            n = QUICK_ROWS[key] if args.quick else workload.n_samples
            sizes = [workload.n_features, *workload.hidden, workload.n_outputs]
            for dtype in (np.float32,) if args.quick else (np.float32, np.float64):
                X, y, Y = C.make_data(workload, dtype, n_samples=n)
                for batch in workload.batches:
                    ceiling = workers.jobs(C.gemm_bound, (X, sizes, batch), args.quick)
                    for optimizer in ("sgd", "adam"):
                        fits = {label: C.make_contenders(workload, X, y, Y, optimizer, batch, include={"fastmlp"},
                                                         n_threads=nt)["fastmlp"]
                                for label, nt in ENGINE_THREADS.items()}
                        jobs = {label: partial(_clock, c.epoch) for label, c in fits.items()}
                        jobs[BOUND_2] = partial(_clock, C.gemm_bound(X, sizes, batch))
                        t = _rounds(jobs | ceiling, args.rounds, args.pause, _at_least(args), [fits])
                        row = dict(workload=key, name=workload.name, rows=n, dtype=np.dtype(dtype).name,
                                   optimizer=optimizer, batch=batch, **_thread_ratios(t),
                                   two_threads_over_bound=t["2 threads"] / t[BOUND_2], bound_seconds=t[BOUND_2],
                                   same_loss=len({c.loss() for c in fits.values()}) == 1)
                        rows.append(row)
                        _print_threads(f"{key} {row['dtype']} {optimizer:4s} batch {batch:3d}", row,
                                       f"  2 threads / 2-thread bound {row['two_threads_over_bound']:.2f}")
    return rows


def _thread_ratios(t):
    """From the median seconds t of the ENGINE_THREADS jobs and the ceiling's: a row's thread fields."""
    return dict(seconds={label: t[label] for label in ENGINE_THREADS},
                engine_threads={label: engine_threads(nt) for label, nt in ENGINE_THREADS.items()},
                two_over_one=t["1 thread"] / t["2 threads"], default_over_one=t["1 thread"] / t["default"],
                ceiling=2 * t[ALONE] / t[SIDE_BY_SIDE], ceiling_seconds={k: t[k] for k in (ALONE, SIDE_BY_SIDE)})


def _print_threads(what, row, extra=""):
    s = row["seconds"]
    print(f"{what}  1 thread {1e3 * s['1 thread']:.1f} ms  2 threads {1e3 * s['2 threads']:.1f} ms  "
          f"default {1e3 * s['default']:.1f} ms  2/1 {row['two_over_one']:.2f}x  default/1 "
          f"{row['default_over_one']:.2f}x  ceiling {row['ceiling']:.2f}x" + extra
          + ("" if row.get("same_loss", True) else "  LOSSES DIFFER"), flush=True)


def threads_predict(args):
    """Prediction of 10,000 W1 rows on one engine thread, on two and on the default, beside the ceiling.

    Network.forward takes n_threads; MLPClassifier.predict follows the openmp
    limit (threadpoolctl), set around each timed call. The network is W1's,
    trained briefly; the ceiling is its forward GEMM bound on one BLAS thread,
    in one process and in two at once.
    """
    from sklearn.exceptions import ConvergenceWarning

    workload = C.WORKLOADS["W1"]
    openmp = ThreadpoolController().select(user_api="openmp")
    rows = []
    with threadpool_limits(2, user_api="blas"), Ceiling() as workers:
        for dtype in (np.float32, np.float64):
            X, y, _ = C.make_data(workload, dtype, n_samples=PREDICT_ROWS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est = fastmlp.MLPClassifier(hidden_layer_sizes=workload.hidden, max_iter=2, random_state=0,
                                            dtype=np.dtype(dtype).name).fit(X[:2000], y[:2000])
            net = est._network
            ceiling = workers.jobs(_forward_run, (net.coefs_, X), args.quick)
            jobs = {f"Network.forward, {label}": partial(_clock, net.forward, X, n_threads=nt)
                    for label, nt in ENGINE_THREADS.items()}
            jobs |= {f"MLPClassifier.predict, {label}": partial(_limited, openmp, nt, est.predict, X)
                     for label, nt in ENGINE_THREADS.items()}
            jobs[BOUND_2] = partial(_clock, forward_gemm_bound(net.coefs_), X)
            t = _rounds(jobs | ceiling, args.rounds, args.pause, _at_least(args))
            for how in ("Network.forward", "MLPClassifier.predict"):
                row = dict(workload="W1", name=workload.name, how=how, rows=PREDICT_ROWS, dtype=np.dtype(dtype).name,
                           **_thread_ratios({label: t[f"{how}, {label}"] for label in ENGINE_THREADS} | t),
                           two_threads_over_bound=t[f"{how}, 2 threads"] / t[BOUND_2], bound_seconds=t[BOUND_2])
                rows.append(row)
                _print_threads(f"W1 {row['dtype']} {how} of {PREDICT_ROWS} rows", row)
    return rows


def _limited(controller, n, f, *args):
    """Seconds of f(*args) with the openmp limit n (None: no limit) set around it, outside the timing."""
    if n is None:
        return _clock(f, *args)
    with controller.limit(limits=n):
        return _clock(f, *args)


def busy(args):
    """The default thread choice against n_threads=1 while another process keeps one core busy.

    A process spinning a pure-Python loop (not pinned: the scheduler places it
    as it would any other work) runs through the whole section. fastmlp
    Networks train from the same weights with n_threads=1, the default and 2,
    and once more with n_threads=1: the two one-thread fits are the same work,
    so their ratio shows the noise. A Network keeps its thread choice across
    fits, MLPClassifier across partial_fit calls; the estimator's default and
    its one thread (the openmp limit) are timed too. The default counts as
    never slower than one thread down to NOISE (0.95): besides the noise, the
    default measures both choices in its first fit and probes the other
    choice now and then, a few batches on the slower one (the first of them
    waking a thread on the busy core: tens of milliseconds).
    """
    openmp = ThreadpoolController().select(user_api="openmp")
    rows = []
    busy_rounds = args.rounds if args.quick else max(args.rounds, BUSY_ROUNDS)
    spinner = _context().Process(target=_spin, daemon=True)
    spinner.start()
    try:
        for key, batches in (("W1", (32, 128, 512)), ("W3", (1, 16))):
            workload = C.WORKLOADS[key]
            n = QUICK_ROWS[key] if args.quick else workload.n_samples
            X, y, Y = C.make_data(workload, np.float32, n_samples=n)
            for batch in batches:
                fits = {label: C.make_contenders(workload, X, y, Y, "sgd", batch, include={"fastmlp"},
                                                 n_threads=nt)["fastmlp"]
                        for label, nt in (*ENGINE_THREADS.items(), ("1 thread, again", 1))}
                jobs = {label: partial(_clock, c.epoch) for label, c in fits.items()}
                estimators = {label: C.make_contenders(workload, X, y, Y, "sgd", batch,
                                                       include={"fastmlp estimator"})["fastmlp estimator"]
                              for label in ("estimator, 1 thread", "estimator, default")}
                jobs |= {label: partial(_limited, openmp, 1 if label.endswith("1 thread") else None, c.epoch)
                         for label, c in estimators.items()}
                t = _rounds(jobs, busy_rounds, args.pause, _at_least(args), [fits, estimators])
                row = dict(workload=key, name=workload.name, rows=n, dtype="float32", optimizer="sgd", batch=batch,
                           seconds=t, default_over_one=t["1 thread"] / t["default"],
                           two_over_one=t["1 thread"] / t["2 threads"],
                           again_over_one=t["1 thread"] / t["1 thread, again"],
                           estimator_default_over_one=t["estimator, 1 thread"] / t["estimator, default"],
                           same_loss=all(len({c.loss() for c in group.values()}) == 1 for group in (fits, estimators)))
                rows.append(row)
                print(f"busy machine: {key} float32 sgd batch {batch:3d}  " + "  ".join(
                    f"{label} {1e3 * s:.1f} ms" for label, s in t.items())
                      + f"  default/1 {row['default_over_one']:.2f}x  2/1 {row['two_over_one']:.2f}x  "
                      f"1 again/1 {row['again_over_one']:.2f}x  estimator default/1 "
                      f"{row['estimator_default_over_one']:.2f}x" + ("" if row["same_loss"] else "  LOSSES DIFFER"),
                      flush=True)
        rows.append(_fresh_fits(args, openmp, busy_rounds))
        rows += _busy_ensembles(args, busy_rounds)
        rows += _busy_predictions(args, openmp, busy_rounds)
    finally:
        spinner.terminate()
        spinner.join()
    return rows


# NetworkEnsembles on the busy machine: ENSEMBLE_THREADS's workload and K (four groups, the threads' tasks) on
# these numbers of rows (None: the workload's), so that epochs run from a few milliseconds (each the ensemble's
# thread clock's to place) to a few tenths of a second (always on the threads: _engine.ENSEMBLE_CLOCK_WORK)
BUSY_ENSEMBLE_ROWS = (1000, 5000, None)


def _busy_ensembles(args, rounds):
    """NetworkEnsemble epochs (adam) with n_threads=1, the default, 2 and 1 again, on the busy machine."""
    key, batch, K, _ = ENSEMBLE_THREADS
    workload = C.WORKLOADS[key]
    rows = []
    for n in BUSY_ENSEMBLE_ROWS:
        n = n or (QUICK_ROWS[key] if args.quick else workload.n_samples)
        X, _, Y = C.make_data(workload, np.float32, n_samples=n)
        what = {label: (K, nt) for label, nt in (*ENGINE_THREADS.items(), ("1 thread, again", 1))}
        fits = _ensemble_fits(workload, X, Y, "adam", batch, what, epochs=1)
        t = _rounds(fits, rounds, args.pause, _at_least(args))
        row = dict(workload=key, name=workload.name, rows=n, dtype="float32", optimizer="adam", batch=batch, K=K,
                   ensemble=True, seconds=t, default_over_one=t["1 thread"] / t["default"],
                   two_over_one=t["1 thread"] / t["2 threads"], again_over_one=t["1 thread"] / t["1 thread, again"])
        rows.append(row)
        print(f"busy machine: {K}-member NetworkEnsemble {key} on {n} rows  " + "  ".join(
            f"{label} {1e3 * s:.1f} ms" for label, s in t.items()) + f"  default/1 {row['default_over_one']:.2f}x  "
              f"2/1 {row['two_over_one']:.2f}x  1 again/1 {row['again_over_one']:.2f}x", flush=True)
    return rows


def _busy_predictions(args, openmp, rounds):
    """On the busy machine: Network.forward of PREDICT_ROWS W1 rows (float32) with n_threads=1, the default, 2
    and 1 again (each model's forward clock places its calls), and the search's ensemble (SEARCH_POINTS' first,
    its validation pass after each epoch on the threads its clock prefers) under an openmp limit of one thread
    and with none."""
    workload = C.WORKLOADS["W1"]
    X, _, _ = C.make_data(workload, np.float32, n_samples=PREDICT_ROWS)
    nets = {label: fastmlp.Network([workload.n_features, *workload.hidden, workload.n_outputs], dtype=np.float32,
                                   output_activation="softmax", loss="log_loss", random_state=0)
            for label in (*ENGINE_THREADS, "1 thread, again")}
    t = _rounds({label: partial(_clock, net.forward, X, n_threads=ENGINE_THREADS.get(label, 1))
                 for label, net in nets.items()}, rounds, args.pause, _at_least(args))
    rows = [dict(workload="W1", name=workload.name, how="Network.forward", rows=PREDICT_ROWS, dtype="float32",
                 prediction=True, seconds=t, default_over_one=t["1 thread"] / t["default"],
                 two_over_one=t["1 thread"] / t["2 threads"], again_over_one=t["1 thread"] / t["1 thread, again"])]
    hidden = SEARCH_POINTS[0][0]
    ensemble, _ = _search_jobs(hidden)
    t = _rounds({label: partial(_limited, openmp, nt, ensemble) for label, nt in (("1 thread", 1), ("default", None))},
                rounds, args.pause)
    rows.append(dict(workload="search", name=f"the search's ensemble, hidden {hidden}", how="MLPEnsembleClassifier.fit",
                     rows=0, dtype="float64", search=True, seconds=t, default_over_one=t["1 thread"] / t["default"]))
    for r in rows:
        print(f"busy machine: {r['name']} {r['how']}  " + "  ".join(f"{label} {1e3 * s:.1f} ms"
                                                                  for label, s in r["seconds"].items())
              + f"  default/1 {r['default_over_one']:.2f}x", flush=True)
    return rows


# a grid search's fits: 6000 rows of 200 features, a (256, 128) classifier of 3 classes, float64 (the
# estimators' default), sgd, batch 64, 3 epochs: about 0.2 s a fit
FRESH = C.Workload("fits of a grid search", 6000, 200, (256, 128), 3, "multiclass", (64,))
FRESH_EPOCHS = 3


def _fresh_fits(args, openmp, rounds):
    """A grid search's fits on the busy machine: each a new MLPClassifier (FRESH, FRESH_EPOCHS epochs), so
    each starts its thread choice anew, under an openmp limit of one thread and with none."""
    from sklearn.exceptions import ConvergenceWarning

    workload = FRESH
    n = QUICK_ROWS["W1"] if args.quick else workload.n_samples
    X, y, _ = C.make_data(workload, np.float64, n_samples=n)

    def fit():
        fastmlp.MLPClassifier(hidden_layer_sizes=workload.hidden, solver="sgd", batch_size=workload.batches[0],
                              max_iter=FRESH_EPOCHS, random_state=0).fit(X, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = _rounds({label: partial(_limited, openmp, nt, fit) for label, nt in (("1 thread", 1), ("default", None))},
                    rounds, args.pause)
    row = dict(workload="fresh", name=workload.name, rows=n, features=workload.n_features, hidden=list(workload.hidden),
               dtype="float64", optimizer="sgd", batch=workload.batches[0], fresh=True, epochs=FRESH_EPOCHS,
               seconds=t, default_over_one=t["1 thread"] / t["default"])
    print(f"busy machine: a new MLPClassifier per fit ({n} x {workload.n_features}, {FRESH_EPOCHS} epochs)  1 thread "
          f"{1e3 * t['1 thread']:.1f} ms  default {1e3 * t['default']:.1f} ms  default/1 "
          f"{row['default_over_one']:.2f}x", flush=True)
    return row


def _spin():
    """Keep one core busy until terminated."""
    while True:
        pass


class Ceiling:
    """Two worker processes, started once, that run a GEMM bound alone or side by side: the machine's ceiling.

    Started once per section and not per measurement: right after a fork, the
    parent's first writes to its memory fault page by page (copy-on-write),
    which made the next timed call here up to twice as slow. Each worker runs
    at one thread (BLAS and OpenMP) and idles in a blocking read between runs.
    """

    def __init__(self):
        ctx = _context()
        barriers = {1: ctx.Barrier(1), 2: ctx.Barrier(2)}
        self.conns, self.workers = [], []
        for _ in range(2):
            conn, child = ctx.Pipe()
            self.workers.append(ctx.Process(target=_ceiling_worker, args=(child, barriers), daemon=True))
            self.workers[-1].start()
            self.conns.append(conn)

    def jobs(self, make_run, make_args, quick):
        """Jobs timing make_run(*make_args)() in one process alone and in two at once (wall seconds).

        Each process repeats it to last about 0.3 s (0.05 s with --quick), from
        its time on one BLAS thread here, so that the start at a barrier costs
        little of it.
        """
        run = make_run(*make_args)
        with threadpool_limits(1, user_api="blas"):
            run()
            once = min(_clock(run) for _ in range(2))
        repeats = max(1, round((0.05 if quick else 0.3) / once))
        for conn in self.conns:
            conn.send(("set", make_run, make_args))
        for conn in self.conns:
            conn.recv()
        return {kind: partial(self.run, k, repeats) for kind, k in ((ALONE, 1), (SIDE_BY_SIDE, 2))}

    def run(self, k, repeats):
        """Wall seconds of k workers each running the bound `repeats` times from a barrier, first start to last end."""
        for conn in self.conns[:k]:
            conn.send(("run", k, repeats))
        spans = [conn.recv() for conn in self.conns[:k]]
        return max(end for _, end in spans) - min(start for start, _ in spans)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for conn in self.conns:
            conn.send(("stop",))
        for w in self.workers:
            w.join(timeout=10)


def _ceiling_worker(conn, barriers):
    """A Ceiling's worker: ("set", make_run, args) builds the bound, ("run", k, repeats) times it from barrier k."""
    with threadpool_limits(1):
        while True:
            message = conn.recv()
            if message[0] == "set":
                run = message[1](*message[2])
                run()
                conn.send(None)
            elif message[0] == "run":
                _, k, repeats = message
                barriers[k].wait(timeout=600)
                tic = time.perf_counter()
                for _ in range(repeats):
                    run()
                conn.send((tic, time.perf_counter()))
            else:
                return


def _forward_run(coefs, X):
    """The forward GEMM bound over all rows of X, as a call without arguments."""
    return partial(forward_gemm_bound(coefs), X)


def two_models(args):
    """Throughput of two models fitting at once relative to one alone: two threads, and two processes.

    Each worker fits its own fastmlp.Network (W2's, SGD, batch 32) on the same
    data, with n_threads=1 (an openmp limit would not reach a worker thread:
    OpenMP's thread count is the calling thread's) and BLAS at one thread. The
    engine releases the GIL for the whole epoch, so two threads should come
    near two processes, the ceiling. The throughput
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
                    walls[kind, k].append(_at_once(kind, k, _fit_at_barrier, (workload, X, Y, epochs)))
                # untimed, after the forks: the first writes here fault page by page (see Ceiling)
                _fit_at_barrier(workload, X, Y, 1, threading.Barrier(1))
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


def _at_once(kind, k, job, args):
    """Wall seconds of k calls job(*args, barrier) started together in k threads or k processes.

    From the first start to the last end: each call returns the (start, end)
    of its timed work, which begins when all k have reached the barrier.
    """
    if kind == "threads":
        barrier = threading.Barrier(k)
        with ThreadPoolExecutor(k) as pool:
            spans = list(pool.map(lambda _: job(*args, barrier), range(k)))
    else:
        ctx = _context()
        barrier, queue = ctx.Barrier(k), ctx.Queue()
        workers = [ctx.Process(target=_in_process, args=(job, args, barrier, queue), daemon=True)
                   for _ in range(k)]
        for w in workers:
            w.start()
        spans = [queue.get(timeout=600) for _ in workers]
        for w in workers:
            w.join()
    return max(end for _, end in spans) - min(start for start, _ in spans)


def _context():
    """fork: no start-up imports; spawn where there is no fork."""
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _fit_at_barrier(workload, X, Y, epochs, barrier):
    """Fit a fresh Network: one warm-up epoch, wait for the others, then the timed fit; its (start, end)."""
    net = C.initial_network(workload, X.dtype)
    fit_kwargs = dict(batch_size=TWO_MODELS_BATCH, optimizer="sgd", n_threads=1)
    net.fit(X, Y, epochs=1, **fit_kwargs)
    barrier.wait(timeout=600)
    tic = time.perf_counter()
    net.fit(X, Y, epochs=epochs, **fit_kwargs)
    return tic, time.perf_counter()


def _in_process(job, args, barrier, queue):
    """One process of _at_once: BLAS and OpenMP at one thread, the (start, end) of job(*args, barrier) into queue."""
    with threadpool_limits(1):
        queue.put(job(*args, barrier))


# (workload, batch, K, target: K members' epoch over one member's at most this, one thread)
ENSEMBLE_POINTS = (("W3", 16, 32, 4.0), ("W2", 32, 16, 8.0), ("W1", 128, 8, 7.0))
# (workload, batch, K, target: one thread's epoch over two threads' at least this)
ENSEMBLE_THREADS = ("W2", 32, 16, 1.7)
# more points of the two-thread table, with no target: (workload, batch, K, optimizer)
ENSEMBLE_THREADS_MORE = (("W3", 16, 32, "sgd"),)
# the points whose K members' products are timed alone (contenders.gemm_bound, members=K): where the engine
# makes every product a BLAS call (W2's and W3's one output goes through its own members kernels) and each
# call is long enough that Python's calls to the BLAS do not weigh (W1: a millisecond or more per product)
ENSEMBLE_PRODUCTS = ("W1",)
# epochs per timed fit, so that a fit's setup (a few hundred microseconds in Python) is not what W3's
# sub-millisecond epochs measure: the time per epoch is the fit's over these
ENSEMBLE_EPOCHS = {"W3": 50, "W2": 2, "W1": 1}


def epoch_macs(sizes, n_rows):
    """Multiply-adds of one training epoch's products: the forward pass, the weight gradients, and the
    deltas back to every layer but the input."""
    layers = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return n_rows * (2 * sum(layers) + sum(layers[1:]))


def gemm_peak(dtype=np.float32, n=1024, rounds=5):
    """This CPU's multiply-adds per second on one thread: NumPy's BLAS on one large square product
    (the best of rounds), a bound no network's epoch can beat."""
    A, B = (np.full((n, n), 0.5, dtype) for _ in range(2))
    with threadpool_limits(1):
        A @ B
        best = min(_clock(np.matmul, A, B) for _ in range(rounds))
    return n ** 3 / best


def ensembles(args):
    """K members trained together (NetworkEnsemble) against one member (Network), epoch times interleaved.

    One thread: at each ENSEMBLE_POINTS point, float32, sgd and adam, the time
    per epoch (a fit of ENSEMBLE_EPOCHS epochs over their number) of a Network
    and of a K-member NetworkEnsemble of the same architecture on the same
    data. Then K=16 on W2
    with n_threads=1 and n_threads=2 (the engine's own choice between them on
    a busy machine included, as a user gets it). Each row keeps every round's
    times, so that the noise shows. Each row also gets the least ratio this
    CPU allows: the K members' multiply-adds at the one-thread GEMM peak
    (gemm_peak) over the one member's measured epoch; a target below it
    cannot be met here, however the engine is written.
    """
    rows = []
    peak = gemm_peak()
    print(f"ensembles: one-thread float32 GEMM peak {peak / 1e9:.1f} G multiply-adds per second", flush=True)
    for key, batch, K, most in ENSEMBLE_POINTS:
        workload = C.WORKLOADS[key]
        n = QUICK_ROWS[key] if args.quick else workload.n_samples
        X, y, Y = C.make_data(workload, np.float32, n_samples=n)
        for optimizer in ("sgd", "adam"):
            fits = _ensemble_fits(workload, X, Y, optimizer, batch, {"one member": (1, 1), f"{K} members": (K, 1)})
            if key in ENSEMBLE_PRODUCTS:  # timed in the same rounds as the fits, so at the same moments
                fits["products alone"] = _products_alone(X, workload, batch, K)
            # (W3's fits of a few milliseconds: each round's figure the mean of fits of _at_least's seconds)
            times = _round_times(fits, args.rounds, args.pause, _at_least(args))
            macs = epoch_macs([workload.n_features, *workload.hidden, workload.n_outputs], n)
            row = dict(workload=key, name=workload.name, rows=n, dtype="float32", optimizer=optimizer, batch=batch,
                       K=K, target=most, seconds=times,
                       ratio=float(np.median(times[f"{K} members"]) / np.median(times["one member"])),
                       macs=macs, peak=peak, least=float(K * macs / peak / np.median(times["one member"])))
            if key in ENSEMBLE_PRODUCTS:
                products = times.pop("products alone")
                row.update(products=products, least_blas=float(np.median(products) / np.median(times["one member"])))
            rows.append(row)
            print(f"ensembles {key} {optimizer:4s} batch {batch:3d} K={K:2d}: one member "
                  f"{1e3 * np.median(times['one member']):.1f} ms, {K} members "
                  f"{1e3 * np.median(times[f'{K} members']):.1f} ms, ratio {row['ratio']:.2f}x (target <= {most:g}x, "
                  f"least at the GEMM peak {row['least']:.2f}x"
                  + (f", the K members' products alone {row['least_blas']:.2f}x" if "least_blas" in row else "")
                  + f"); rounds {_spread(times)}", flush=True)
    key, batch, K, least = ENSEMBLE_THREADS
    for key, batch, K, optimizer, least in ((key, batch, K, "adam", least),
                                            *((*point, None) for point in ENSEMBLE_THREADS_MORE)):
        workload = C.WORKLOADS[key]
        n = QUICK_ROWS[key] if args.quick else workload.n_samples
        X, y, Y = C.make_data(workload, np.float32, n_samples=n)
        fits = _ensemble_fits(workload, X, Y, optimizer, batch, {"1 thread": (K, 1), "2 threads": (K, 2)})
        times = _round_times(fits, args.rounds, args.pause, _at_least(args))
        row = dict(workload=key, name=workload.name, rows=n, dtype="float32", optimizer=optimizer, batch=batch, K=K,
                   target=least, seconds=times, threads=True,
                   ratio=float(np.median(times["1 thread"]) / np.median(times["2 threads"])))
        rows.append(row)
        print(f"ensembles {key} {optimizer} batch {batch} K={K}: 1 thread {1e3 * np.median(times['1 thread']):.1f} "
              f"ms, 2 threads {1e3 * np.median(times['2 threads']):.1f} ms, 2/1 {row['ratio']:.2f}x"
              + (f" (target >= {least:g}x)" if least else "") + f"; rounds {_spread(times)}", flush=True)
    return rows


def _products_alone(X, workload, batch, K):
    """A job for _round_times: the seconds of an epoch of only the K members' matrix products (BLAS on one
    thread, as a NetworkEnsemble lays them out: contenders.gemm_bound)."""
    run = C.gemm_bound(X, [workload.n_features, *workload.hidden, workload.n_outputs], batch, members=K)

    def job():
        with threadpool_limits(1):
            return _clock(run)
    return job


# The search of issue 16: 8 (alpha, learning_rate_init) pairs on digits with one fixed validation split, as
# MLPEnsembleClassifier's members against GridSearchCV over MLPClassifier. (hidden layer, target ratio at most)
SEARCH_GRID = {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2]}
SEARCH_POINTS = (((100,), 0.4), ((32,), 0.4))
SEARCH_TOLERANCE = 0.01  # the picked member's validation score at most this below the grid's best


def _search_data():
    """digits scaled to [0, 1] and the search's one split: X, y, the split, its train rows and validation rows."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import ShuffleSplit

    X, y = load_digits(return_X_y=True)
    split = ShuffleSplit(n_splits=1, test_size=0.2, random_state=0)
    train, val = next(split.split(X))
    return X / 16.0, y, split, train, val


def _search_jobs(hidden, out=None):
    """The search's contenders for a hidden layer: ensemble() and grid(refit), each its seconds (out, when
    given, gets the fitted ensemble and GridSearchCV)."""
    from sklearn.model_selection import GridSearchCV

    X, y, split, train, val = _search_data()
    out = {} if out is None else out
    args_ = dict(hidden_layer_sizes=hidden, solver="adam", batch_size=64, max_iter=50, random_state=0)
    pairs = [dict(alpha=a, learning_rate_init=lr) for a in SEARCH_GRID["alpha"]
             for lr in SEARCH_GRID["learning_rate_init"]]

    def grid(refit):
        gs = GridSearchCV(fastmlp.MLPClassifier(**args_), SEARCH_GRID, cv=split, n_jobs=1, refit=refit)
        tic = time.perf_counter()
        gs.fit(X, y)
        out[f"grid refit={refit}"] = gs
        return time.perf_counter() - tic

    def ensemble():
        from sklearn.exceptions import ConvergenceWarning

        ens = fastmlp.MLPEnsembleClassifier(**args_, n_members=len(pairs), member_params=pairs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            tic = time.perf_counter()
            ens.fit(X[train], y[train], X_val=X[val], y_val=y[val])
            seconds = time.perf_counter() - tic
        out["ensemble"] = ens
        return seconds
    return ensemble, grid


def search(args):
    """A search over SEARCH_GRID in one pass (MLPEnsembleClassifier, X_val given) against GridSearchCV.

    digits scaled to [0, 1]; one split, ShuffleSplit(test_size=0.2, random_state=0), is GridSearchCV's cv and
    the ensemble's X_val; adam, batch 64, max_iter 50, random_state 0; both with the engine's default threads.
    GridSearchCV's wall time includes its refit on all rows (its default); the time without it is kept too.
    The ensemble picks best_index_, the member with the best final validation accuracy (GridSearchCV's
    score), which must be within SEARCH_TOLERANCE of the grid's best.
    """
    from sklearn.exceptions import ConvergenceWarning

    rows = []
    for hidden, most in SEARCH_POINTS:
        out = {}
        ensemble, grid = _search_jobs(hidden, out)
        X, y, _, train, val = _search_data()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            times = _round_times({"GridSearchCV": partial(grid, True), "GridSearchCV, refit=False": partial(grid, False),
                                  "ensemble": ensemble}, max(args.rounds, 3), args.pause)
        ens, gs = out["ensemble"], out["grid refit=False"]
        picked = float(ens.best_estimator_.score(X[val], y[val]))
        row = dict(hidden=list(hidden), rows=len(train), val_rows=len(val), seconds=times, target=most,
                   ratio=float(np.median(times["ensemble"]) / np.median(times["GridSearchCV"])),
                   ratio_no_refit=float(np.median(times["ensemble"]) / np.median(times["GridSearchCV, refit=False"])),
                   grid_best=float(gs.best_score_), picked=picked,
                   members_n_iter=[int(n) for n in ens.n_iter_])
        rows.append(row)
        print(f"search hidden {hidden}: GridSearchCV {1e3 * np.median(times['GridSearchCV']):.0f} ms (refit=False "
              f"{1e3 * np.median(times['GridSearchCV, refit=False']):.0f} ms), ensemble "
              f"{1e3 * np.median(times['ensemble']):.0f} ms: {row['ratio']:.2f}x ({row['ratio_no_refit']:.2f}x), "
              f"target <= {most:g}x; grid's best {row['grid_best']:.4f}, picked member {picked:.4f}; "
              f"rounds {_spread(times)}", flush=True)
    return rows


def _ensemble_fits(workload, X, Y, optimizer, batch, what, epochs=None):
    """Seconds per epoch of each of what = {label: (K, n_threads)}: a Network for K = 1, else a NetworkEnsemble;
    fits of epochs epochs (None: the workload's ENSEMBLE_EPOCHS)."""
    out, loss = C.OUTPUT[workload.task]
    sizes = [workload.n_features, *workload.hidden, workload.n_outputs]
    epochs = epochs or ENSEMBLE_EPOCHS[next(k for k, w in C.WORKLOADS.items() if w is workload)]
    fit_kwargs = dict(epochs=epochs, batch_size=batch, optimizer=optimizer,
                      learning_rate=1e-3 if optimizer == "adam" else 0.01)
    fits = {}
    for label, (K, n_threads) in what.items():
        args = dict(activation="relu", output_activation=out, loss=loss, dtype=X.dtype, random_state=0)
        model = fastmlp.Network(sizes, **args) if K == 1 else fastmlp.NetworkEnsemble(sizes, n_members=K, **args)
        fits[label] = partial(lambda fit, **kw: _clock(fit, **kw) / epochs, model.fit, X=X, Y=Y, n_threads=n_threads,
                              **fit_kwargs)
    return fits


def _round_times(jobs, rounds, pause, at_least=0.0, alike=()):
    """Every round's seconds of each job, interleaved, after a warm-up.

    at_least (seconds): a job whose warm-up took less runs that many times
    over, back to back after one pause, in each round, and the round's figure
    is their mean. An epoch of a millisecond or two measured once is mostly
    the machine's noise (one round of W3 moved by 25% where the same code ran).
    alike: groups of job names that repeat the same number of times. Each
    round starts one job later than the round before (the first round with
    the first job), so that no job always runs in the same place of a round:
    on a busy machine, the job right after the pause measured up to 5% apart
    from the same job later in the round.
    """
    times = {name: [] for name in jobs}
    warm = {name: job() for name, job in jobs.items()}
    repeats = {name: max(1, math.ceil(at_least / max(seconds, 1e-6))) for name, seconds in warm.items()}
    for group in alike:  # fits compared bit for bit train the same number of epochs
        most = max(repeats[name] for name in group)
        repeats.update(dict.fromkeys(group, most))
    names = list(jobs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            job = jobs[name]
            time.sleep(pause)
            times[name].append(sum(job() for _ in range(repeats[name])) / repeats[name])
    return times


def _spread(times):
    return "; ".join(f"{name} " + " ".join(f"{1e3 * t:.1f}" for t in ts) + " ms" for name, ts in times.items())


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
    train = results.get("training", [])  # (a section missing: a run of --only some sections)
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
        lat = results.get("latency", {}).get(key)
        check(f"{who.removeprefix('fastmlp ')} of one row <= {most:g}x its GEMM bound, {key}",
              [(key, lat["one_row_over_bound"][who], most)] if lat else [], at_most=True)
    check("peak extra memory of fit <= 0.25x X (X in the model's dtype)",
          [(f"{r['model'].removeprefix('fastmlp ')} {r['dtype']}", r["peak_over_X"], 0.25)
           for r in results.get("memory", {}).get("fits", []) if r["model"].startswith("fastmlp")], at_most=True)
    check("two threads fitting two models >= 1.6x one (processes: the ceiling, in their table)",
          [(r["dtype"], r["throughput_ratio"]["threads"], 1.6) for r in results.get("two_models", [])],
          at_least=True)
    thread_rows, predict = results.get("threads", []), results.get("threads_predict", [])

    def thread_label(r):
        return f"{r['workload']} {r['dtype']} {r.get('optimizer', r.get('how'))} " + (
            f"b{r['batch']}" if "batch" in r else f"{r['rows']} rows")

    for what, least, points in (("W1 batch 128 and 512", 1.7, [r for r in thread_rows if r["workload"] == "W1"
                                                                and r["batch"] in (128, 512)]),
                                ("W1 batch 32", 1.5, [r for r in thread_rows if r["workload"] == "W1"
                                                      and r["batch"] == 32]),
                                (f"predict of {PREDICT_ROWS:,} W1 rows", 1.5, predict)):
        check(f"engine threads: two over one >= {least:g}x, {what} (or 90% of the ceiling where that is lower)",
              [(thread_label(r), r["two_over_one"], thread_target(least, r["ceiling"])) for r in points],
              at_least=True)
    check(f"engine threads: the default over one >= 1.0x at every W1, W2, W3 and predict point "
          f"(counted met down to {NOISE:g}, noise)",
          [(thread_label(r), r["default_over_one"], NOISE) for r in thread_rows + predict], at_least=True)
    check("engine threads: W1 training time on two threads / NumPy's two-thread GEMM bound <= 1.15 "
          "(float32 batch 32: 1.25)",
          [(thread_label(r), r["two_threads_over_bound"],
            1.25 if r["dtype"] == "float32" and r["batch"] == 32 else 1.15)
           for r in thread_rows if r["workload"] == "W1"], at_most=True)
    busy = results.get("busy", [])
    check(f"another process keeping a core busy: the default over one thread >= 1.0x, Network.fit, the "
          f"estimator, NetworkEnsemble, a prediction and the search's ensemble (counted met down to {NOISE:g}, noise)",
          [(r["name"] if r.get("search") else thread_label(r) + (
              " new estimators" if r.get("fresh") else f" K={r['K']} {r['rows']} rows" if r.get("ensemble") else ""),
            r["default_over_one"], NOISE) for r in busy]
          + [(thread_label(r) + " estimator", r["estimator_default_over_one"], NOISE) for r in busy
             if "estimator_default_over_one" in r], at_least=True)
    ens = results.get("ensembles", [])
    for key, batch, K, most in ENSEMBLE_POINTS:
        points = [r for r in ens if r["workload"] == key and not r.get("threads")]
        least = [r["least"] for r in points if "least" in r]
        beyond = f"; this CPU's GEMM peak allows no less than {min(least):.2f}x" if least else ""
        blas = [r["least_blas"] for r in points if "least_blas" in r]
        beyond += f", its products alone through BLAS {min(blas):.2f}x" if blas else ""
        check(f"ensembles: {K} members' epoch <= {most:g}x one member's, {key} batch {batch} (one thread{beyond})",
              [(f"{key} {r['dtype']} {r['optimizer']}", r["ratio"], most) for r in points], at_most=True)
    key, batch, K, least = ENSEMBLE_THREADS
    check(f"ensembles: two threads >= {least:g}x faster than one, {key} batch {batch}, K={K}",
          [(f"{key} {r['dtype']} {r['optimizer']}", r["ratio"], least) for r in ens
           if r.get("threads") and r.get("target")],
          at_least=True)
    found = results.get("search", [])
    check("ensembles: a search over 8 (alpha, learning_rate_init) pairs on digits in one pass <= 0.4x the wall time "
          "of GridSearchCV (refit included), n_jobs=1",
          [(f"hidden {tuple(r['hidden'])}", r["ratio"], r["target"]) for r in found], at_most=True)
    check(f"ensembles: the search's picked member within {SEARCH_TOLERANCE:g} of the grid's best validation score",
          [(f"hidden {tuple(r['hidden'])}", r["grid_best"] - r["picked"], SEARCH_TOLERANCE) for r in found],
          at_most=True)
    cb = results.get("callbacks")
    check("scikit-learn's ProgressBar + ScoringMonitor (a scorer that does nothing) cost < 1% of a W1 batch-32 epoch",
          [("W1 float32 sgd b32", 100 * cb["overhead"], 1.0)] if cb else [], at_most=True)
    check("(no target) an epoch with tanh, the sigmoid or swish over one with ReLU, W1 float32 adam b128, one thread",
          [(r["activation"], r["over_relu"], 1.0) for r in results.get("activations", [])
           if r["activation"] in ("tanh", "logistic", "swish")], at_most=True, info=True)
    check("(no target) the machine's ceiling: two processes' GEMM bound at once over one",
          [(thread_label(r), r["ceiling"], 1.0) for r in thread_rows + predict], at_least=True, info=True)
    return rows


def thread_target(least, ceiling):
    """A two-over-one thread target: least, or 90% of the machine's ceiling where the ceiling is below least."""
    return least if ceiling >= least else 0.9 * ceiling


def meta(args):
    versions = {"python": sys.version.split()[0], "numpy": np.__version__, "fastmlp": fastmlp.__version__}
    for name in ("scipy", "sklearn"):
        versions[name] = __import__(name).__version__
    versions["torch"] = C.torch.__version__ if C.torch is not None else None
    blas = [{k: info.get(k) for k in ("user_api", "internal_api", "prefix", "version", "num_threads",
                                      "threading_layer", "architecture")} for info in threadpool_info()]
    return dict(date=str(date.today()), quick=args.quick, rounds=args.rounds, pause=args.pause,
                training_at_least=0.01 if args.quick else TRAINING_AT_LEAST, machine=platform.machine(),
                cpus=os.cpu_count(), cpu=cpu_model(), processor=platform.processor() or platform.uname().machine,
                versions=versions, blas=blas)


def cpu_model():
    """The processor's name (/proc/cpuinfo's "model name" on Linux), else platform.processor(); None if neither
    says: the machines of one kind may differ (an AMD EPYC one day, an Intel Xeon the next), and every ratio
    moves with them."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _reruns(meta):
    """(date, CPU, [sections]) of the sections run again with --update, by date and CPU."""
    by_run = {}
    for name, when in meta.get("rerun", {}).items():
        by_run.setdefault((when, meta.get("rerun_cpu", {}).get(name)), []).append(name)
    return sorted(by_run.items(), key=lambda item: (item[0][0], item[0][1] or ""))


def write(results):
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    m = results["meta"]
    v = m["versions"]
    command_options = " --quick" if m["quick"] else (f" --rounds {m['rounds']}" if m["rounds"] != 3 else "")
    lines = [
        "# Benchmark results",
        "",
        f"{'Quick' if m['quick'] else 'Full'} run of `python bench/compare.py{command_options}` "
        f"on {m['date']}, {m['machine']} with {m['cpus']} cores ({m.get('cpu') or 'CPU not recorded'}): "
        f"Python {v['python']}, NumPy {v['numpy']}, "
        f"SciPy {v['scipy']}, scikit-learn {v['sklearn']}, PyTorch {v['torch'] or 'not installed'}; BLAS: "
        + ", ".join(f"{b['prefix']} {b['version']} ({b['internal_api']}, {b['architecture']})"
                    for b in m["blas"] if b.get("user_api") == "blas")
        + f". Each time is the median of {m['rounds']} interleaved rounds. Raw numbers in `results.json`."
        + "".join(f" Run again on {when} (`--only ... --update`, the same settings, "
                  f"{'the same machine' if cpu is None else cpu}): {', '.join(names)}."
                  for (when, cpu), names in _reruns(m)),
        "",
        "## Targets",
        "",
        "Each target of the benchmark issue (and of the threads issue) against this run: the points that meet "
        "it, and the worst point (tN = N threads for BLAS, PyTorch and fastmlp's engine); for the rows without a "
        "target, the median over their points. What bounds the misses is in `PROFILE.md`.",
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
        f"each round's timed epochs follow {m['pause']} s of rest, and an epoch shorter than "
        f"{m.get('training_at_least', 0)} s runs back to back as many times as make that up, its figure their mean "
        "(W3's epochs of a fraction of a millisecond, timed once after the rest, measured mostly the core waking "
        "up). \"x sklearn\" is scikit-learn's time over fastmlp's "
        "(through Network and through MLPClassifier); the last column is fastmlp's epoch loss (all contenders' "
        "losses, and the time per batch, are in results.json). \"threads\" is the limit set for every library "
        "(threadpoolctl's for BLAS and OpenMP, and PyTorch's); fastmlp's engine follows the OpenMP limit, and "
        "\"fastmlp threads\" is the most it used (one where a batch is too small for more).",
        "",
    ]
    rows = results["training"]
    names = list(rows[0]["seconds"])
    lines.append("| workload | dtype | optimizer | batch | threads | fastmlp threads | " + " | ".join(names)
                 + " | x sklearn (Network) | x sklearn (estimator) | fastmlp samples/s | loss |")
    lines.append("|---|---|---|---|---|---|" + "---|" * (len(names) + 4))
    for r in rows:
        speedup = r["speedup_over_sklearn"]
        lines.append(f"| {r['name']} ({r['rows']} rows) | {r['dtype']} | {r['optimizer']} | {r['batch']} | "
                     f"{r['threads']} | {r.get('fastmlp_threads', r['threads'])} | "
                     + " | ".join(f"{r['ratio_to_bound'][c]:.2f}" for c in names)
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
    lines += threads_sections(results)
    lines += ["", "## Two models fitting at once (threads vs processes)", "",
              "Each worker fits its own `fastmlp.Network` on W2's data (SGD, batch 32), with `n_threads=1` and BLAS "
              "at one thread; "
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
    lines += ensemble_lines(results)
    if results.get("search"):
        lines += ["", "## A search in one pass", "",
                  "8 (`alpha`, `learning_rate_init`) pairs on digits (scaled to [0, 1]) with one fixed validation "
                  "split (`ShuffleSplit(test_size=0.2, random_state=0)`): `MLPEnsembleClassifier(n_members=8, "
                  "member_params=...)` fitted with that split as `X_val`, against `GridSearchCV(MLPClassifier(...), "
                  "cv=<the split>, n_jobs=1)` (its refit on all rows included; without it in brackets). adam, "
                  "batch 64, max_iter 50, the engine's default threads for both. Wall time, median of the rounds "
                  "(seconds). Target: at most 0.4x, the picked member's validation accuracy within 0.01 of the "
                  "grid's best.", "",
                  "| hidden | GridSearchCV | ensemble | ratio (no refit) | grid's best | picked member | "
                  "members' epochs |", "|---|---|---|---|---|---|---|"]
        for r in results["search"]:
            t = {k: np.median(v) for k, v in r["seconds"].items()}
            lines.append(f"| {tuple(r['hidden'])} | {t['GridSearchCV']:.2f} ({t['GridSearchCV, refit=False']:.2f}) "
                         f"| {t['ensemble']:.2f} | {r['ratio']:.2f}x ({r['ratio_no_refit']:.2f}x) | "
                         f"{r['grid_best']:.4f} | {r['picked']:.4f} | {min(r['members_n_iter'])}-"
                         f"{max(r['members_n_iter'])} |")
    cb = results.get("callbacks")
    if cb:
        lines += ["", "## What scikit-learn's callbacks cost an epoch", "",
                  f"`MLPClassifier` on W1's first {cb['rows']} rows (batch 32, float32, sgd, one thread), time per "
                  f"epoch of {CALLBACK_EPOCHS}-epoch fits, without callbacks and with `ProgressBar()` plus `ScoringMonitor` whose scorer does nothing "
                  "(what remains is the callbacks' own cost). Target: under 1%.", "",
                  "| without (ms) | with (ms) | overhead |", "|---|---|---|",
                  f"| {1e3 * cb['seconds']['none']:.1f} | {1e3 * cb['seconds']['callbacks']:.1f} | "
                  f"{100 * cb['overhead']:+.2f}% |"]
    acts = results.get("activations")
    if acts:
        lines += ["", "## Hidden activations", "",
                  f"An epoch of W1 (float32, adam, batch 128, {acts[0]['rows']} rows, one thread) with each hidden "
                  "activation: fastmlp's `Network` and scikit-learn's `MLPClassifier` (which has the first four) from "
                  "the same weights, interleaved (milliseconds, medians of the rounds). tanh, the sigmoid and swish "
                  "are the kernels' own branch-free functions, vectorised with the activation's loop.", "",
                  "| activation | fastmlp | over ReLU | scikit-learn | x sklearn |", "|---|---|---|---|---|"]
        for r in acts:
            sk = r["seconds"].get("scikit-learn")
            lines.append(f"| {r['activation']} | {1e3 * r['seconds']['fastmlp']:.1f} | {r['over_relu']:.2f}x | "
                         + ("- | - |" if sk is None else f"{1e3 * sk:.1f} | {r['speedup_over_sklearn']:.1f} |"))
    (HERE / "RESULTS.md").write_text("\n".join(lines + kept_sections(HERE / "RESULTS.md")) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")


def kept_sections(path):
    """The sections of RESULTS.md that other scripts write (marked "<!-- written by bench/...": export_c.py's)."""
    if not path.exists():
        return []
    sections = re.split(r"^(?=## )", path.read_text(), flags=re.M)
    return [line for s in sections if "<!-- written by bench/" in s for line in ["", *s.rstrip("\n").splitlines()]]


def ensemble_lines(results):
    """RESULTS.md's lines for the ensembles section: K members against one, with the least ratio at peak."""
    lines = ["", "## Ensembles: K members in one pass", "",
             "Time per epoch (median of the rounds, milliseconds; a fit of several epochs over their number, "
             f"{', '.join(f'{k}: {v}' for k, v in ENSEMBLE_EPOCHS.items())}, so that a fit's setup is not what "
             "a sub-millisecond epoch measures; a round's figure the mean of as many fits as make up 0.3 s, so "
             "that W3's fits of milliseconds are not one moment of the machine's noise) of a K-member "
             "`NetworkEnsemble` against one "
             "`Network` of the same architecture, float32, one thread (the second table: K=16 on W2 and K=32 on W3 "
             "with two threads against one, n_threads=2, which the ensemble's thread clock places epoch by epoch "
             "where an epoch is short, W3's; W3's row has no target). Targets: W3 <= 4x, W2 <= 8x, W1 <= 7x; "
             "two threads >= 1.7x. \"Least at "
             "peak\": the least ratio this CPU allows, the K members' multiply-adds (forward, weight gradients, "
             "deltas) at its one-thread GEMM peak (NumPy's float32 product of two 1024 x 1024 matrices: "
             + (f"{next(r['peak'] for r in results['ensembles'] if 'peak' in r) / 1e9:.1f}"
                if any("peak" in r for r in results["ensembles"]) else "not measured")
             + " G multiply-adds per second) over the one member's measured epoch: a target below it cannot be "
             "met on this CPU. \"Products alone\" (W1, where every product is a BLAS call): an epoch of only the "
             "K members' matrix products, each a call to NumPy's BLAS on one thread as the ensemble lays them out "
             "(the first layer one wide product), over the one member's measured epoch: the least ratio this BLAS "
             "allows, before any other work of the epoch.", "",
             "| workload | optimizer | batch | K | one member | K members | ratio | target | least at peak "
             "| products alone |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["ensembles"]:
        if r.get("threads"):
            continue
        a, b = (np.median(t) for t in r["seconds"].values())
        lines.append(f"| {r['name']} ({r['rows']} rows) | {r['optimizer']} | {r['batch']} | {r['K']} | "
                     f"{1e3 * a:.1f} | {1e3 * b:.1f} | {r['ratio']:.2f}x | <= {r['target']:g}x | "
                     + (f"{r['least']:.2f}x |" if "least" in r else "|")
                     + (f" {r['least_blas']:.2f}x |" if "least_blas" in r else " |"))
    threaded = [r for r in results["ensembles"] if r.get("threads")]
    if threaded:
        lines += ["", "| workload | optimizer | batch | K | 1 thread | 2 threads | 2/1 | target |",
                  "|---|---|---|---|---|---|---|---|"]
    for r in threaded:
        a, b = (np.median(t) for t in r["seconds"].values())
        lines.append(f"| {r['name']} ({r['rows']} rows) | {r['optimizer']} | {r['batch']} | {r['K']} | "
                     f"{1e3 * a:.1f} | {1e3 * b:.1f} | {r['ratio']:.2f}x | "
                     + (f">= {r['target']:g}x |" if r.get("target") else "- |"))
    return lines


def threads_sections(results):
    """RESULTS.md's lines for the engine's threads: one thread against two with the ceiling, and a busy machine."""
    if "threads" not in results:  # results.json of a run from before the threads issue
        return []
    lines = ["", "## Engine threads: one thread against two, beside the machine's ceiling", "",
             "Each fastmlp `Network` epoch with `n_threads=1`, `n_threads=2` and the default (no argument, no "
             f"limit set: as a user gets it, here at most {results['threads'][0]['engine_threads']['default']} "
             "threads), three Networks from the same weights interleaved round by round "
             "(milliseconds; an epoch shorter than 0.3 s runs several times back to back in each round and "
             "counts as their mean); \"2/1\" and \"default/1\" are the one-thread time over the other (higher is "
             "faster). "
             "The ceiling is what the machine's two cores deliver: the single-threaded GEMM bound of the same point "
             "in two processes at once, throughput over one process alone (2 t1 / t2), measured in the same rounds. "
             "Targets for 2/1: at least 1.7x at W1 batch 128 and 512, 1.5x at W1 batch 32 and for predict of "
             f"{PREDICT_ROWS:,} W1 rows; where the ceiling is below that, 90% of the ceiling (the \"target\" "
             "column). Default/1: never below 1.0x. The last column is W1's two-thread time over NumPy's GEMM bound "
             "on two BLAS threads (target 1.15, 1.25 at float32 batch 32); \"same bits\": the three fits ended "
             "with the same loss, bit for bit. Below 10 million multiply-adds per batch (`_engine.MIN_PARALLEL_WORK`: "
             "every W2 and W3 point) the engine runs one thread whatever it is given, so there the three columns "
             "run the same code and their ratios show only how much epochs of a few milliseconds vary between "
             "rounds on this machine.", "",
             "| workload | dtype | optimizer | batch | 1 thread | 2 threads | default | 2/1 | default/1 | ceiling "
             "| target 2/1 | 2 threads / 2-thread bound | same bits |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    least = {32: 1.5, 128: 1.7, 512: 1.7}
    for r in results["threads"]:
        w1 = r["workload"] == "W1"
        s = r["seconds"]
        lines.append(
            f"| {r['name']} ({r['rows']} rows) | {r['dtype']} | {r['optimizer']} | {r['batch']} | "
            f"{1e3 * s['1 thread']:.1f} | {1e3 * s['2 threads']:.1f} | {1e3 * s['default']:.1f} | "
            f"{r['two_over_one']:.2f}x | {r['default_over_one']:.2f}x | {r['ceiling']:.2f}x | "
            + (f"{thread_target(least[r['batch']], r['ceiling']):.2f}x | {r['two_threads_over_bound']:.2f} | "
               if w1 else "- | - | ") + ("yes" if r["same_loss"] else "**no**") + " |")
    lines += ["", f"Prediction of {PREDICT_ROWS:,} W1 rows (milliseconds): `Network.forward(X, n_threads=...)`, and "
              "`MLPClassifier.predict` under `threadpool_limits(n, user_api=\"openmp\")`; the ceiling is the "
              "forward GEMM bound's, the last column the time on two threads over NumPy's forward GEMM bound on two "
              "BLAS threads (no target).", "",
              "| prediction | dtype | 1 thread | 2 threads | default | 2/1 | default/1 | ceiling | target 2/1 "
              "| 2 threads / 2-thread bound |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["threads_predict"]:
        s = r["seconds"]
        lines.append(f"| {r['how']} | {r['dtype']} | {1e3 * s['1 thread']:.1f} | {1e3 * s['2 threads']:.1f} | "
                     f"{1e3 * s['default']:.1f} | {r['two_over_one']:.2f}x | {r['default_over_one']:.2f}x | "
                     f"{r['ceiling']:.2f}x | {thread_target(1.5, r['ceiling']):.2f}x | "
                     f"{r['two_threads_over_bound']:.2f} |")
    lines += ["", "## Engine threads on a busy machine", "",
              "While another process spins a pure-Python loop on one core (not pinned), fastmlp `Network` epochs "
              "with `n_threads=1`, the default and `n_threads=2`, and `n_threads=1` once more, interleaved "
              f"(milliseconds, medians of {BUSY_ROUNDS} rounds; shorter than 0.3 s: the mean of several back to back "
              "in each round); and `MLPClassifier.partial_fit` (one epoch a call) under an openmp limit of one "
              "thread and with none (a Network keeps its thread choice across fits, the estimator across "
              "partial_fit calls; each round starts one contender later than the round before). Target: the "
              f"default never slower than one thread. It counts as met down to default/1 = {NOISE:g}: the two "
              "one-thread fits are the same work, and \"1 again/1\" shows how far apart noise puts them; the "
              "default also measures both choices in its first fit and probes the other now and then, a few "
              "batches on the slower one (the first of them waking a thread on the busy core: tens of "
              "milliseconds).", "",
              "| workload | dtype | optimizer | batch | 1 thread | default | 2 threads | 1 thread, again | "
              "default/1 | 2/1 | 1 again/1 | estimator, 1 thread | estimator, default | estimator default/1 "
              "| same bits |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fresh = [r for r in results["busy"] if r.get("fresh")]
    ensembles = [r for r in results["busy"] if r.get("ensemble")]
    others = [r for r in results["busy"] if r.get("prediction") or r.get("search")]
    for r in results["busy"]:
        if r.get("fresh") or r.get("ensemble") or r in others:
            continue
        s = r["seconds"]
        lines.append(f"| {r['name']} ({r['rows']} rows) | {r['dtype']} | {r['optimizer']} | {r['batch']} | "
                     + " | ".join(f"{1e3 * s[k]:.1f}" for k in ("1 thread", "default", "2 threads", "1 thread, again"))
                     + f" | {r['default_over_one']:.2f}x | {r['two_over_one']:.2f}x | {r['again_over_one']:.2f}x | "
                     f"{1e3 * s['estimator, 1 thread']:.1f} | {1e3 * s['estimator, default']:.1f} | "
                     f"{r['estimator_default_over_one']:.2f}x | " + ("yes" if r["same_loss"] else "**no**") + " |")
    for r in fresh:
        lines += ["", "A grid search's fits on the same busy machine: each a new `MLPClassifier` (hidden "
                  f"{tuple(r['hidden'])}, float64, sgd, batch {r['batch']}, {r['epochs']} epochs on {r['rows']} rows of "
                  f"{r['features']} features: a fit of about 0.2 s), under an openmp limit of one thread and with "
                  "none, so that each starts its thread "
                  "choice anew (milliseconds a fit, medians of the rounds). A new thread choice made within 10 "
                  "seconds of a measuring run of the process that was cut short (a thread woken on the busy core) "
                  "waits before it tries the threads; before it did, each such fit paid that wake.", "",
                  "| workload | 1 thread | default | default/1 |", "|---|---|---|---|",
                  f"| {r['name']} ({r['rows']} rows) | {1e3 * r['seconds']['1 thread']:.1f} | "
                  f"{1e3 * r['seconds']['default']:.1f} | {r['default_over_one']:.2f}x |"]
    if ensembles:
        lines += ["", "`NetworkEnsemble` epochs on the same busy machine (float32, adam, fits of one epoch, "
                  "milliseconds an epoch; an epoch shorter than 0.3 s runs several times back to back in each round): "
                  "the groups of members are the threads' tasks, and an epoch of less work than "
                  "`_engine.ENSEMBLE_CLOCK_WORK` (about 0.1 s on one thread) runs on the threads or on one thread "
                  "as the ensemble's thread clock chooses, epoch by epoch; longer ones always on the threads.", "",
                  "| workload | K | batch | 1 thread | default | 2 threads | 1 thread, again | default/1 | 2/1 | "
                  "1 again/1 |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in ensembles:
            s = r["seconds"]
            lines.append(f"| {r['name']} ({r['rows']} rows) | {r['K']} | {r['batch']} | "
                         + " | ".join(f"{1e3 * s[k]:.1f}" for k in ("1 thread", "default", "2 threads",
                                                                     "1 thread, again"))
                         + f" | {r['default_over_one']:.2f}x | {r['two_over_one']:.2f}x | {r['again_over_one']:.2f}x |")
    if others:
        lines += ["", "A prediction and the search on the same busy machine: `Network.forward` of "
                  f"{PREDICT_ROWS:,} W1 rows (float32) with `n_threads=1`, the default, 2 and 1 again (each "
                  "network's forward clock places its calls: the first on the threads, then one thread measured), "
                  "and the fit of the search's ensemble (8 members on digits with a validation set, whose forward "
                  "pass after each epoch runs on the threads the fit's clock prefers) under an openmp limit of "
                  "one thread and with none (milliseconds).", "",
                  "| what | 1 thread | default | default/1 | other columns |", "|---|---|---|---|---|"]
        for r in others:
            s = r["seconds"]
            rest = ", ".join(f"{label} {1e3 * v:.1f}" for label, v in s.items() if label not in ("1 thread", "default"))
            lines.append(f"| {r['name']}: {r['how']} | {1e3 * s['1 thread']:.1f} | {1e3 * s['default']:.1f} | "
                         f"{r['default_over_one']:.2f}x | {rest or '-'} |")
    return lines


CALLBACK_EPOCHS = 5


def callbacks(args):
    """What scikit-learn's callbacks cost an epoch: MLPClassifier on W1 (batch 32, float32, sgd), fits of
    CALLBACK_EPOCHS epochs with no callback and with ProgressBar plus ScoringMonitor whose scorer does nothing
    (its cost is the callbacks' own, apart from the scoring; their set-up once per fit included). Target
    (issue 14): under 1% of the epoch."""
    try:
        from sklearn.callback import ProgressBar, ScoringMonitor
        import rich  # noqa: F401 (ProgressBar's display)
    except ImportError as exc:
        print(f"callbacks: skipped ({exc})")
        return None
    workload = C.WORKLOADS["W1"]
    n = QUICK_ROWS["W1"] if args.quick else 8000
    X, y, _ = C.make_data(workload, np.float32, n_samples=n)

    def epoch(with_callbacks):
        est = fastmlp.MLPClassifier(workload.hidden, solver="sgd", batch_size=32, max_iter=CALLBACK_EPOCHS,
                                    tol=0, n_iter_no_change=CALLBACK_EPOCHS, random_state=0,
                                    learning_rate_init=1e-3)
        if with_callbacks:
            est.set_callbacks(ProgressBar(), ScoringMonitor(scoring=lambda estimator, X, y: {"nothing": 0.0}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tic = time.perf_counter()
            est.fit(X, y)
            return (time.perf_counter() - tic) / CALLBACK_EPOCHS

    with set_threads(1), open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet  # (the progress bars' drawing would fill the log)
        try:
            t = _rounds({"none": partial(epoch, False), "callbacks": partial(epoch, True)},
                        max(args.rounds, 5), args.pause)
        finally:
            sys.stdout = stdout
    row = dict(rows=n, seconds=t, overhead=t["callbacks"] / t["none"] - 1)
    print(f"callbacks: epoch {1e3 * t['none']:.1f} ms without, {1e3 * t['callbacks']:.1f} ms with ProgressBar + "
          f"ScoringMonitor: {100 * row['overhead']:+.2f}%", flush=True)
    return row


# The hidden activations timed side by side (scikit-learn has the first four)
ACTIVATIONS = ("relu", "tanh", "logistic", "identity", "leaky_relu", "swish")
SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


def activations(args):
    """An epoch with each hidden activation: W1 (float32, adam, batch 128, one thread), fastmlp's Network and
    scikit-learn's MLPClassifier where it has the activation, every contender of a point from the same weights,
    interleaved. The transcendental ones (tanh, the sigmoid, swish) are the kernels' own vectorised functions:
    no call per element."""
    workload = C.WORKLOADS["W1"]
    n = QUICK_ROWS["W1"] if args.quick else 8000
    X, y, Y = C.make_data(workload, np.float32, n_samples=n)
    rows = []
    with set_threads(1):
        for act in ACTIVATIONS:
            include = {"fastmlp", "scikit-learn"} if act in SKLEARN_ACTIVATIONS else {"fastmlp"}
            seconds = timed(C.make_contenders(workload, X, y, Y, "adam", 128, include=include, activation=act),
                            max(args.rounds, 3), args.pause)
            rows.append(dict(activation=act, rows=n, seconds=seconds))
    relu = rows[0]["seconds"]["fastmlp"]
    for row in rows:
        row["over_relu"] = row["seconds"]["fastmlp"] / relu
        sk = row["seconds"].get("scikit-learn")
        row["speedup_over_sklearn"] = None if sk is None else sk / row["seconds"]["fastmlp"]
        print(f"activations: {row['activation']:10s} fastmlp {1e3 * row['seconds']['fastmlp']:.1f} ms "
              f"({row['over_relu']:.2f}x ReLU's)"
              + ("" if sk is None else f", scikit-learn {1e3 * sk:.1f} ms ({row['speedup_over_sklearn']:.1f}x)"),
              flush=True)
    return rows


# results.json's sections in the order they run
SECTIONS = dict(training=training, latency=latency, threads=threads, threads_predict=threads_predict, busy=busy,
                two_models=two_models, memory=memory, callbacks=callbacks, ensembles=ensembles, search=search,
                activations=activations)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rows, one round, one thread setting")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender (default 3, quick 1)")
    parser.add_argument("--pause", type=float, default=None,
                        help="seconds of rest before each timed call (default 0.3, quick 0.1)")
    parser.add_argument("--rewrite", action="store_true", help="only rewrite RESULTS.md from results.json")
    parser.add_argument("--only", type=lambda s: s.split(","), default=None,
                        help=f"run only these sections, comma-separated, and write no files: {', '.join(SECTIONS)}")
    parser.add_argument("--update", action="store_true",
                        help="with --only: replace those sections in results.json and rewrite RESULTS.md")
    args = parser.parse_args()
    if args.update and args.only is None:
        parser.error("--update needs --only")
    if args.only is not None and not set(args.only) <= set(SECTIONS):
        parser.error(f"--only: unknown section(s) {', '.join(sorted(set(args.only) - set(SECTIONS)))}")
    if args.rewrite:
        write(json.loads((HERE / "results.json").read_text()))
        return
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.pause = args.pause if args.pause is not None else (0.1 if args.quick else 0.3)
    # Every library is imported into this one process; frozen, their objects are not
    # rescanned by a full garbage collection in whichever contender happens to trigger it.
    gc.collect()
    gc.freeze()
    results = dict(meta=meta(args))
    for name, section in SECTIONS.items():
        if args.only is None or name in args.only:
            results[name] = section(args)
    if args.only is None:
        write(results)
    elif args.update:
        old = json.loads((HERE / "results.json").read_text())
        old["meta"].setdefault("rerun", {}).update({name: results["meta"]["date"] for name in args.only})
        old["meta"].setdefault("rerun_cpu", {}).update({name: results["meta"]["cpu"] for name in args.only})
        if "training" in args.only:
            old["meta"]["training_at_least"] = results["meta"]["training_at_least"]
        results = old | {name: results[name] for name in args.only}
        write(results)
    for t in targets(results):
        met = f"median {t['median']:.2f}" if t["info"] else f"{t['met']:3d} / {t['points']:<3d}"
        print(f"{met:>11s}  {t['target']}; worst {t['worst']}")


if __name__ == "__main__":
    main()
