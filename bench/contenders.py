"""The benchmark's workloads and contenders, shared by compare.py, the
pytest-benchmark suite (bench/test_speed.py) and the equivalence test
(tests/test_bench_contenders.py).

Every contender trains the same network from the same initial weights on the
same data with the same hyperparameters; one call of `epoch()` is one epoch,
and `loss()` is the mean training loss of the last epoch, so that a fast wrong
result shows.
"""
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

import fastmlp
from fastmlp import reference

try:  # PyTorch is optional: its contender is skipped cleanly without it
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None


@dataclass
class Workload:
    name: str
    n_samples: int
    n_features: int
    hidden: tuple
    n_outputs: int  # network outputs: classes for softmax, 1 for binary and regression
    task: str  # "multiclass", "binary" or "regression"
    batches: tuple


WORKLOADS = {
    "W1": Workload("W1 MNIST-like", 20000, 784, (256, 128), 10, "multiclass", (32, 128, 512)),
    "W2": Workload("W2 tabular", 50000, 32, (64, 64), 1, "binary", (32, 256)),
    "W3": Workload("W3 tiny", 2000, 8, (16,), 1, "regression", (1, 16)),
}

OUTPUT = {  # task -> (output_activation, loss)
    "multiclass": ("softmax", "log_loss"),
    "binary": ("logistic", "log_loss"),
    "regression": ("identity", "squared_error"),
}


def make_data(workload, dtype, n_samples=None, seed=0):
    """Synthetic data with a fixed seed: X (n, d), labels y, network targets Y (n, outputs)."""
    n = n_samples or workload.n_samples
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, workload.n_features)).astype(dtype)
    w = rng.standard_normal((workload.n_features, max(workload.n_outputs, 2)))
    scores = X @ w / np.sqrt(workload.n_features)
    if workload.task == "multiclass":
        y = scores.argmax(axis=1)
        Y = np.eye(workload.n_outputs, dtype=dtype)[y]
    elif workload.task == "binary":
        y = (scores[:, 0] > 0).astype(np.int64)
        Y = y[:, None].astype(dtype)
    else:
        y = (np.sin(scores[:, 0]) + 0.1 * rng.standard_normal(n)).astype(dtype)
        Y = y[:, None]
    return X, y, Y


@dataclass
class Contender:
    name: str
    epoch: Callable[[], None]
    loss: Callable[[], float]


def initial_network(workload, dtype, seed=0, activation="relu"):
    out, loss = OUTPUT[workload.task]
    sizes = [workload.n_features, *workload.hidden, workload.n_outputs]
    return fastmlp.Network(sizes, activation=activation, output_activation=out, loss=loss, dtype=dtype,
                           random_state=seed)


def _estimator_kwargs(workload, optimizer, batch, learning_rate, shuffle, seed, activation="relu"):
    return dict(hidden_layer_sizes=workload.hidden, activation=activation, solver=optimizer, alpha=0.0,
                batch_size=batch, learning_rate_init=learning_rate, momentum=0.0, shuffle=shuffle,
                random_state=seed, tol=0.0, max_iter=1)


def make_contenders(workload, X, y, Y, optimizer, batch, learning_rate=None, shuffle=True, seed=0,
                    include=None, n_threads=None, activation="relu"):
    """Every contender for one training configuration, all from the same initial weights.

    activation: the hidden layers' (ReLU unless the activations section asks for another).

    n_threads goes to the fastmlp Network's fit (None: the engine's default
    count, which follows threadpoolctl's openmp limit, as the estimator's does).
    """
    dtype = X.dtype
    learning_rate = learning_rate or (1e-3 if optimizer == "adam" else 0.01)
    fit_kwargs = dict(epochs=1, batch_size=batch, optimizer=optimizer, learning_rate=learning_rate,
                      shuffle=shuffle)
    start = initial_network(workload, dtype, seed, activation)
    coefs = [W.copy() for W in start.coefs_]
    intercepts = [b.copy() for b in start.intercepts_]
    want = (lambda name: include is None or name in include)
    contenders = {}

    def network_contender(name, cls, **extra):
        net = cls(list(start.layer_sizes), activation=activation, output_activation=start.output_activation,
                  loss=start.loss, dtype=dtype, random_state=seed)
        net.coefs_, net.intercepts_ = coefs, intercepts
        contenders[name] = Contender(name, lambda: net.fit(X, Y, **fit_kwargs, **extra), lambda: net.loss_curve_[-1])

    if want("fastmlp"):
        network_contender("fastmlp", fastmlp.Network, n_threads=n_threads)
    if want("numpy reference"):
        network_contender("numpy reference", reference.Network)
    for name, module in (("fastmlp estimator", "fastmlp"), ("scikit-learn", "sklearn.neural_network")):
        if want(name):
            contenders[name] = _estimator_contender(name, module, workload, X, y, coefs, intercepts,
                                                    _estimator_kwargs(workload, optimizer, batch, learning_rate,
                                                                      shuffle, seed, activation))
    if want("pytorch") and torch is not None:
        contenders["pytorch"] = _torch_contender(workload, X, Y, coefs, intercepts, optimizer, batch,
                                                 learning_rate, shuffle, seed)
    if want("GEMM bound"):
        contenders["GEMM bound"] = Contender("GEMM bound", gemm_bound(X, start.layer_sizes, batch, "numpy"),
                                             lambda: float("nan"))
    if want("GEMM bound (SciPy BLAS)"):
        contenders["GEMM bound (SciPy BLAS)"] = Contender(
            "GEMM bound (SciPy BLAS)", gemm_bound(X, start.layer_sizes, batch, "scipy"), lambda: float("nan"))
    return contenders


def _estimator_contender(name, module, workload, X, y, coefs, intercepts, kwargs):
    import importlib

    from sklearn.exceptions import ConvergenceWarning

    lib = importlib.import_module(module)
    cls = lib.MLPRegressor if workload.task == "regression" else lib.MLPClassifier
    model = cls(**kwargs)
    classes = np.unique(y) if workload.task != "regression" else None

    def partial_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if classes is None:
                model.partial_fit(X, y)
            else:
                model.partial_fit(X, y, classes=classes)

    partial_fit()  # initialise, then start from the shared weights
    for own, W in zip(model.coefs_, coefs):
        own[...] = W
    for own, b in zip(model.intercepts_, intercepts):
        own[...] = b
    model.loss_curve_ = []
    # a fresh optimizer (Adam moments, step count) for the shared weights
    del model.__dict__["_optimizer" if module.startswith("sklearn") else "_trainer"]
    return Contender(name, partial_fit, lambda: model.loss_curve_[-1])


def _torch_contender(workload, X, Y, coefs, intercepts, optimizer, batch, learning_rate, shuffle, seed):
    tdtype = torch.float32 if X.dtype == np.float32 else torch.float64
    layers = []
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        linear = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(coefs) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    Xt = torch.from_numpy(X)
    if workload.task == "multiclass":
        Tt = torch.from_numpy(Y.argmax(axis=1))
        criterion = torch.nn.CrossEntropyLoss()
    elif workload.task == "binary":
        Tt = torch.from_numpy(Y)
        criterion = torch.nn.BCEWithLogitsLoss()
    else:
        Tt = torch.from_numpy(Y)
        mse = torch.nn.MSELoss()
        criterion = lambda out, target: 0.5 * mse(out, target)  # noqa: E731 - fastmlp's 0.5 ||y - yhat||^2
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    state = {"loss": float("nan")}
    n = X.shape[0]

    def epoch():
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            opt.zero_grad(set_to_none=True)
            loss = criterion(model(Xt.index_select(0, idx)), Tt.index_select(0, idx))
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        state["loss"] = total / n

    return Contender("pytorch", epoch, lambda: state["loss"])


def gemm_bound(X, sizes, batch, blas="numpy", members=1):
    """One epoch of only the matrix products of forward and backward, on preallocated arrays.

    blas="numpy": NumPy matmul(out=...); blas="scipy": SciPy's BLAS, the library
    the engine calls (row-major C = P Q is column-major C^T = Q^T P^T, and the
    .T of a C-contiguous array is the Fortran array f2py wants).
    members > 1 (NumPy's only): the products of that many networks trained in one
    pass as a NetworkEnsemble lays them out, each a BLAS product: the first layer,
    when it is hidden, one wide product for all members; each other layer one
    product per member (a stacked matmul).
    """
    if members > 1:
        return _members_gemm_bound(X, sizes, batch, members)
    dtype = X.dtype
    Ws = [np.full((a, b), 0.01, dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    A = [np.empty((batch, s), dtype) for s in sizes]
    D = [np.empty((batch, s), dtype) for s in sizes]
    dW = [np.empty_like(W) for W in Ws]
    n = X.shape[0]
    if blas == "numpy":
        def forward(l, b):
            np.matmul(A[l][:b], Ws[l], out=A[l + 1][:b])

        def weight_grad(l, b):
            np.matmul(A[l][:b].T, D[l + 1][:b], out=dW[l])

        def back(l, b):
            np.matmul(D[l + 1][:b], Ws[l].T, out=D[l][:b])
    else:
        from scipy.linalg import blas as scipy_blas

        gemm = scipy_blas.sgemm if dtype == np.float32 else scipy_blas.dgemm

        def forward(l, b):
            gemm(1.0, Ws[l].T, A[l][:b].T, 0.0, A[l + 1][:b].T, overwrite_c=True)

        def weight_grad(l, b):
            gemm(1.0, D[l + 1][:b].T, A[l][:b].T, 0.0, dW[l].T, trans_b=1, overwrite_c=True)

        def back(l, b):
            gemm(1.0, Ws[l].T, D[l + 1][:b].T, 0.0, D[l][:b].T, trans_a=1, overwrite_c=True)

    def run():
        for start in range(0, n, batch):
            b = min(batch, n - start)
            A[0] = X[start:start + b]  # the batch as it is: only products are timed
            for l in range(len(Ws)):
                forward(l, b)
            D[-1][:b] = A[-1][:b]
            for l in range(len(Ws) - 1, -1, -1):
                weight_grad(l, b)
                if l > 0:
                    back(l, b)
    return run


def _members_gemm_bound(X, sizes, batch, K):
    """gemm_bound's products of K members (see there)."""
    dtype, L, n = X.dtype, len(sizes) - 1, X.shape[0]
    wide = L > 1
    W1 = np.full((sizes[0], K * sizes[1]), 0.01, dtype) if wide else None
    Ws = [None if (l == 0 and wide) else np.full((K, a, b), 0.01, dtype)
          for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    dW = [np.empty_like(W1) if W is None else np.empty_like(W) for W in Ws]
    # each hidden layer's activations and deltas with the members side by side in a row, as the engine's
    # groups hold them, and their (K, batch, units) views (member k's block, rows K units apart); the
    # output's as (K, batch, units)
    hidden = {l: np.empty((batch, K * sizes[l]), dtype) for l in range(1, L)}
    deltas = {l: np.empty((batch, K * sizes[l]), dtype) for l in range(1, L)}
    A = {l: h.reshape(batch, K, -1).transpose(1, 0, 2) for l, h in hidden.items()}
    D = {l: d.reshape(batch, K, -1).transpose(1, 0, 2) for l, d in deltas.items()}
    A[L] = D[L] = np.empty((K, batch, sizes[L]), dtype)  # (the output, as gemm_bound: its delta in place)

    def run():
        for start in range(0, n, batch):
            b = min(batch, n - start)
            x = X[start:start + b]
            A[0] = np.broadcast_to(x, (K, b, sizes[0]))  # (the members' input: the same rows)
            if wide:
                np.matmul(x, W1, out=hidden[1][:b])
            for l in range(1 if wide else 0, L):
                np.matmul(A[l][:, :b], Ws[l], out=A[l + 1][:, :b])
            for l in range(L - 1, -1, -1):
                if l == 0 and wide:
                    np.matmul(x.T, deltas[1][:b], out=dW[0])
                    continue
                np.matmul(A[l][:, :b].transpose(0, 2, 1), D[l + 1][:, :b], out=dW[l])
                if l > 0:
                    np.matmul(D[l + 1][:, :b], Ws[l].transpose(0, 2, 1), out=D[l][:, :b])
    run.dW, run.hidden, run.weights = dW, hidden, (W1, Ws)  # for tests/test_bench_contenders.py
    return run
