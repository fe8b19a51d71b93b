"""Every threaded path of the engine, small enough to run under ThreadSanitizer.

Run by tests/native/run_tsan.sh (not a pytest module): fits with 2 and 3
OpenMP threads for each optimizer and option that has a code path of its own
(sgd with momentum and Nesterov, adam, dropout, PReLU slopes, L2, clipping,
sparse input, sample weights, both dtypes), a batched forward pass over
10,000 rows, loss_and_gradients, a NetworkEnsemble, and the estimators under
threadpool_limits(user_api="openmp"). Each threaded result is also compared
bit for bit with the one-thread run, so a race that changed a result fails
here even where the sanitizer cannot see it (inside BLAS).

Every batch of a fit runs on the threads asked for: the engine's timing-based
fallback to one thread (which may well choose one thread under the sanitizer)
is switched off (_engine._set_thread_adaptation).

    python threads_workload.py            # exits 0 when every result matched, 1 otherwise
    python threads_workload.py --canary   # one threaded fit only (run_tsan.sh's injected race)
"""
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import fastmlp
from fastmlp import _engine

_engine._set_thread_adaptation(False)

# Widths that are not multiples of the 32-unit blocks (nor of 8): uneven block
# edges. Big enough that a batch of 32 rows is worth two threads (see
# _engine.MIN_PARALLEL_WORK), small enough for the sanitizer's slowdown.
LAYERS = [48, 100, 72, 5]
N = 480  # 15 batches of 32 per epoch
FITS = {
    "sgd": dict(optimizer="sgd", learning_rate=0.05),
    "momentum": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
    "nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam+l2": dict(optimizer="adam", learning_rate=1e-3, alpha=1e-3),
    "clip": dict(optimizer="adam", learning_rate=1e-2, clip_norm=0.05),
    "weights": dict(optimizer="sgd", learning_rate=0.05, sample_weight=True),
    "dropout": dict(optimizer="adam", learning_rate=1e-3, dropout=0.2),
    "prelu": dict(optimizer="adam", learning_rate=1e-3, activation="prelu", alpha=1e-4),
    "sparse": dict(optimizer="sgd", learning_rate=0.05, momentum=0.5, sparse=True, alpha=1e-4),
    # batches wider than the hidden layers: the forward steps split by rows, then the unit maxima
    # (by units) and the dropout masks are a step of their own
    "rows+dropout": dict(optimizer="adam", learning_rate=1e-3, dropout=0.2, batch_size=160),
    # hidden layers at least twice as narrow as their inputs: the forward products split by their inner
    # dimension, then a step that adds the parts (a CSR X's first layer: one part)
    "inner+dropout": dict(optimizer="adam", learning_rate=1e-3, dropout=0.2, layers=[150, 70, 35, 5]),
    "inner+sparse": dict(optimizer="sgd", learning_rate=0.05, momentum=0.5, sparse=True, layers=[150, 70, 35, 5]),
}
failures = []


def check(name, a, b):
    if not np.array_equal(a, b):
        failures.append(name)
        print(f"MISMATCH {name}", flush=True)


def data(dtype, sparse=False, layers=LAYERS):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, layers[0])).astype(dtype)
    if sparse:
        X[rng.random(X.shape) < 0.8] = 0
        X = sp.csr_matrix(X)
    Y = np.eye(layers[-1], dtype=dtype)[rng.integers(0, layers[-1], N)]
    return X, Y


def fit(dtype, options, n_threads):
    options = dict(options)
    layers = options.pop("layers", LAYERS)
    X, Y = data(dtype, options.pop("sparse", False), layers)
    weights = None
    if options.pop("sample_weight", False):
        weights = np.random.default_rng(1).uniform(0, 2, N).astype(dtype)
    net = fastmlp.Network(layers, activation=options.pop("activation", "relu"), output_activation="softmax",
                          loss="log_loss", dtype=dtype, dropout=options.pop("dropout", 0.0), random_state=0)
    options.setdefault("epochs", 2)
    options.setdefault("batch_size", 32)
    net.fit(X, Y, sample_weight=weights, n_threads=n_threads, **options)
    return net


def main():
    assert _engine.OPENMP, "built without OpenMP: nothing to check"
    if sys.argv[1:] == ["--canary"]:
        net = fit("float64", FITS["sgd"], 2)
        print("canary fit done:", net.loss_curve_, flush=True)
        return 0
    for dtype in ("float32", "float64"):
        for name, options in FITS.items():
            nets = [fit(dtype, options, n) for n in (1, 2, 3)]
            for n, net in zip((2, 3), nets[1:]):
                for attribute in ("coefs_", "intercepts_"):
                    for l, (a, b) in enumerate(zip(getattr(nets[0], attribute), getattr(net, attribute))):
                        check(f"{dtype} {name} {attribute}[{l}] n_threads={n}", a, b)
                check(f"{dtype} {name} loss_curve_ n_threads={n}", nets[0].loss_curve_, net.loss_curve_)
                check(f"{dtype} {name} grad_norms_ n_threads={n}", nets[0].grad_norms_, net.grad_norms_)
                check(f"{dtype} {name} dead_units_ n_threads={n}", nets[0].dead_units_, net.dead_units_)
            print(f"fit {dtype} {name}: done", flush=True)
        # a batched forward pass: chunks of rows over the threads, dense and sparse
        net = fit(dtype, FITS["sgd"], 1)
        X = np.random.default_rng(2).normal(size=(10_000, LAYERS[0])).astype(dtype)
        for inputs, label in ((X, "dense"), (sp.csr_matrix(np.where(X > 1, X, 0)), "sparse")):
            one = net.forward(inputs, n_threads=1)
            for n in (2, 3):
                check(f"{dtype} forward {label} n_threads={n}", one, net.forward(inputs, n_threads=n))
            check(f"{dtype} predict {label}", one, net.forward(inputs))
        # loss_and_gradients: CHUNK_ROWS-row chunks, threads from OpenMP's count
        X, Y = data(dtype)
        X = np.tile(X, (10, 1))
        Y = np.tile(Y, (10, 1))
        with threadpool_limits(1, user_api="openmp"):
            loss_1, *grads_1 = net.loss_and_gradients(X, Y, alpha=1e-3)
        with threadpool_limits(3, user_api="openmp"):
            loss_3, *grads_3 = net.loss_and_gradients(X, Y, alpha=1e-3)
        check(f"{dtype} loss_and_gradients loss", loss_1, loss_3)
        for l, (a, b) in enumerate(zip(grads_1[0] + grads_1[1], grads_3[0] + grads_3[1])):
            check(f"{dtype} loss_and_gradients gradient {l}", a, b)
        print(f"forward and loss_and_gradients {dtype}: done", flush=True)
    # an ensemble: groups of members as tasks for a whole epoch each (four groups of two and three), a short
    # last batch (470 rows: 14 of 32, then 22) that one group reaches while another is still on a full one
    for dtype in ("float32", "float64"):
        X, Y = data(dtype)
        fits = []
        for n in (1, 2, 3):
            ens = fastmlp.NetworkEnsemble(LAYERS, n_members=10, output_activation="softmax", loss="log_loss",
                                          dtype=dtype, dropout=0.2, random_state=0,
                                          member_params=[{"alpha": a} for a in np.linspace(0, 1e-2, 10)])
            ens.fit(X[:470], Y[:470], epochs=2, batch_size=32, optimizer="adam", learning_rate=1e-3, clip_norm=1.0,
                    n_threads=n)
            fits.append(ens)
        # the members' forward passes in one call (their chunks of rows the threads' tasks: 2,000 rows)
        rows = np.tile(X, (5, 1))[:2000]
        for n in (2, 3):
            check(f"{dtype} ensemble forward n_threads={n}", fits[0].forward(rows, n_threads=1),
                  fits[0].forward(rows, n_threads=n))
        for n, ens in zip((2, 3), fits[1:]):
            for k in range(10):
                check(f"{dtype} ensemble member {k} n_threads={n}", fits[0].member(k)._params, ens.member(k)._params)
            check(f"{dtype} ensemble loss_curve_ n_threads={n}", fits[0].loss_curve_, ens.loss_curve_)
            check(f"{dtype} ensemble grad_norms_ n_threads={n}", fits[0].grad_norms_, ens.grad_norms_)
        print(f"ensemble {dtype}: done", flush=True)
    # the estimators, thread count from threadpoolctl's OpenMP limit
    X, Y = data("float64")
    y = Y.argmax(axis=1)
    results = []
    warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=3
    for n in (1, 2):
        with threadpool_limits(n, user_api="openmp"):
            clf = fastmlp.MLPClassifier(hidden_layer_sizes=(100, 72), max_iter=3, batch_size=32, random_state=0)
            clf.fit(X, y)
            results.append((clf.coefs_, clf.predict_proba(np.tile(X, (8, 1)))))
    for l, (a, b) in enumerate(zip(results[0][0], results[1][0])):
        check(f"MLPClassifier coefs_[{l}]", a, b)
    check("MLPClassifier predict_proba", results[0][1], results[1][1])
    print("estimators: done", flush=True)
    # the validation's output kernels of several networks' logits, the networks the threads' tasks
    code = fastmlp._registry.OUTPUTS["softmax", "log_loss"].loss_code
    Z = 3 * np.random.default_rng(0).normal(size=(6, 1000, Y.shape[1]))
    Yv = np.ascontiguousarray(np.tile(Y, (4, 1))[:1000])
    outs = []
    for n in (1, 2, 3):
        P = Z.copy()
        outs.append((_engine.output_losses(code, 0.0, P, Yv, None, n), P))
    for n, (sums, P) in zip((2, 3), outs[1:]):
        check(f"output_losses n_threads={n}", outs[0][0], sums)
        check(f"output_losses outputs n_threads={n}", outs[0][1], P)
    print("validation kernels: done", flush=True)
    if failures:
        print(f"{len(failures)} mismatch(es) between thread counts", flush=True)
        return 1
    print("all results identical for 1, 2 and 3 threads", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
