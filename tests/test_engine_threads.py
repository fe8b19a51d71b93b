"""The engine's own threads: the same bits for any thread count, BLAS pinned to
one thread while the engine works, the thread count's sources and its checks.

The work of a batch is split into blocks of units fixed by the layer sizes
(never by the thread count), so 1, 2 and 3 threads must give bit-identical
weights, loss curves, gradient norms and predictions. Most tests switch off the
engine's timing-based fallback to one thread (_engine._set_thread_adaptation),
so that every batch really runs on the threads asked for, whatever else the
machine is doing; the fallback itself is tested separately. Nothing here is
timed: a test must pass on any CPU with any number of cores.
"""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_info, threadpool_limits

import fastmlp
from fastmlp import _engine

pytestmark = pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: one thread only")

# Wide enough that every layer has several blocks and a batch of 32 rows is
# above the engine's small-work threshold.
LAYERS = [40, 96, 64, 5]
THREADS = (1, 2, 3)


@pytest.fixture
def forced_threads():
    """Every batch on the threads asked for (no fallback to one thread)."""
    _engine._set_thread_adaptation(False)
    yield
    _engine._set_thread_adaptation(True)


def _data(n=300, seed=0, sparse=False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, LAYERS[0]))
    if sparse:
        X[rng.random(X.shape) < 0.8] = 0
        X = sp.csr_matrix(X)
    Y = np.eye(LAYERS[-1])[rng.integers(0, LAYERS[-1], n)]
    return X.astype(dtype), Y.astype(dtype)


def _fit(n_threads, dtype, activation="relu", dropout=0.0, sparse=False, batch_size=32, sample_weight=False,
         **fit_args):
    X, Y = _data(sparse=sparse, dtype=dtype)
    if sample_weight:
        fit_args["sample_weight"] = np.random.default_rng(1).uniform(0, 2, X.shape[0]).astype(dtype)
    net = fastmlp.Network(LAYERS, activation=activation, output_activation="softmax", loss="log_loss",
                          dtype=dtype, dropout=dropout, random_state=0)
    net.fit(X, Y, epochs=2, batch_size=batch_size, n_threads=n_threads, **fit_args)
    return net, net.predict(X)


CASES = {
    "sgd": dict(optimizer="sgd", learning_rate=0.05),
    "sgd-momentum-nesterov": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", learning_rate=1e-3),
    "adam-l2": dict(optimizer="adam", learning_rate=1e-3, alpha=1e-2),
    "sgd-clip": dict(optimizer="sgd", learning_rate=0.05, clip_norm=0.5),
    "sgd-weights": dict(optimizer="sgd", learning_rate=0.05, sample_weight=True),
    "adam-dropout": dict(optimizer="adam", learning_rate=1e-3, dropout=0.2),
    # batches wider than the hidden layers: their forward steps split by rows
    "adam-dropout-rows": dict(optimizer="adam", learning_rate=1e-3, dropout=0.2, batch_size=128),
    "adam-prelu-l2": dict(optimizer="adam", learning_rate=1e-3, activation="prelu", alpha=1e-3),
    "sgd-sparse": dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, sparse=True),
    "adam-sparse-dropout": dict(optimizer="adam", learning_rate=1e-3, sparse=True, dropout=0.1),
    "swish-logistic": dict(optimizer="adam", learning_rate=1e-3, activation="swish"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_is_bit_identical_for_any_thread_count(forced_threads, case, dtype):
    args = dict(CASES[case])
    nets = [_fit(n, dtype, **args) for n in THREADS]
    net_1, P_1 = nets[0]
    for net, P in nets[1:]:
        for W_1, W in zip(net_1.coefs_ + net_1.intercepts_ + net_1.prelu_slopes_,
                          net.coefs_ + net.intercepts_ + net.prelu_slopes_):
            assert_array_equal(W, W_1)
        assert net.loss_curve_ == net_1.loss_curve_
        assert_array_equal(net.grad_norms_, net_1.grad_norms_)
        assert net.dead_units_ == net_1.dead_units_
        assert_array_equal(P, P_1)


@pytest.mark.parametrize("case", ["adam-l2", "sgd-clip", "adam-prelu-l2"])
def test_more_threads_than_tasks_give_the_same_bits(forced_threads, case):
    """Eight threads on a network of six or seven update chunks and two blocks per product: the threads
    without a task of a step (or a run of chunks) only wait at its barrier."""
    args = dict(CASES[case])
    (net_1, P_1), (net_8, P_8) = _fit(1, np.float64, **args), _fit(8, np.float64, **args)
    assert_array_equal(net_8._params, net_1._params)
    assert net_8.loss_curve_ == net_1.loss_curve_
    assert_array_equal(net_8.grad_norms_, net_1.grad_norms_)
    assert_array_equal(P_8, P_1)


@pytest.mark.parametrize("batch_size", [64, 256])
def test_unit_maxima_see_every_row_for_any_thread_count(forced_threads, batch_size):
    # Unit u of the hidden layer is positive on exactly one row (row order[u]), or on none (u % 4 == 0):
    # a unit maximum that missed some of a batch's rows would count live units as dead. The batch
    # sizes split the first layer's forward product by its inner dimension (64: the parts' sum by rows) and
    # by rows (256); each part keeps maxima of its own, merged after the epoch.
    n, units = 256, 128
    rng = np.random.default_rng(0)
    X = np.eye(n)
    W = -np.ones((n, units))
    rows = rng.permutation(n)[:units]
    live = np.arange(units) % 4 != 0
    W[rows[live], np.flatnonzero(live)] = 2.0
    for n_threads in THREADS:
        net = fastmlp.Network([n, units, 1], random_state=0)
        net.coefs_ = [W, np.zeros((units, 1))]
        net.intercepts_ = [np.zeros(units), np.zeros(1)]
        net.fit(X, np.zeros((n, 1)), epochs=1, batch_size=batch_size, learning_rate=1e-12, n_threads=n_threads)
        assert net.dead_units_ == [0.25]


def test_batches_do_run_on_several_threads(forced_threads):
    """The multi-threaded path is the one taken (else the tests above would prove nothing)."""
    X, Y = _data()
    net = fastmlp.Network(LAYERS, output_activation="softmax", loss="log_loss", random_state=0)
    net.fit(X, Y, epochs=1, n_threads=2)
    assert net._thread_clock()[4] == np.ceil(300 / 32)
    net.fit(X, Y, epochs=1, n_threads=1)
    assert net._thread_clock()[4] == np.ceil(300 / 32)


def test_small_work_runs_on_one_thread():
    X, Y = _data()
    net = fastmlp.Network([LAYERS[0], 4, LAYERS[-1]], output_activation="softmax", loss="log_loss", random_state=0)
    net.fit(X, Y, epochs=1, batch_size=8, n_threads=2)
    assert net._thread_clock()[4] == 0


def test_timing_fallback_gives_the_same_bits():
    """With the timing-based choice on (the default), whatever it chooses, the bits do not change."""
    (net_1, P_1), (net_2, P_2) = (_fit(n, np.float32, optimizer="adam", learning_rate=1e-3) for n in (1, 2))
    for W_1, W_2 in zip(net_1.coefs_, net_2.coefs_):
        assert_array_equal(W_1, W_2)
    assert net_1.loss_curve_ == net_2.loss_curve_
    assert_array_equal(P_1, P_2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
def test_forward_is_bit_identical_for_any_thread_count(dtype, sparse):
    X, _ = _data(n=2000, sparse=sparse, dtype=dtype)
    net = fastmlp.Network(LAYERS, output_activation="softmax", loss="log_loss", dtype=dtype, random_state=0)
    outs = [net.forward(X, n_threads=n) for n in THREADS]
    for out in outs[1:]:
        assert_array_equal(out, outs[0])
    assert_array_equal(net.predict(X), outs[0])  # the default count, through the compiled fast path
    # one row is one row whatever the batch around it, within rounding
    np.testing.assert_allclose(net.predict(X[:1]), outs[0][:1], rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_loss_and_gradients_are_bit_identical_for_any_thread_count(forced_threads):
    X, Y = _data(n=5000)
    net = fastmlp.Network(LAYERS, output_activation="softmax", loss="log_loss", random_state=0)
    results = []
    for n in THREADS:
        with threadpool_limits(limits=n, user_api="openmp"):
            results.append(net.loss_and_gradients(X, Y, alpha=1e-3))
    for loss, dW, db in results[1:]:
        assert loss == results[0][0]
        for a, b in zip(dW + db, results[0][1] + results[0][2]):
            assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_estimators_under_openmp_limits_are_bit_identical(forced_threads, solver):
    """The estimators take their thread count from threadpoolctl's openmp limit (OMP_NUM_THREADS)."""
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning

    X, y = make_classification(n_samples=400, n_features=40, n_informative=20, n_classes=3, random_state=0)
    fits = []
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="openmp"):
            assert _engine.effective_n_threads() == min(n, fastmlp.network._usable_cpus())
            clf = fastmlp.MLPClassifier((96, 64), solver=solver, max_iter=5, alpha=1e-3, random_state=0,
                                        early_stopping=solver != "lbfgs")
            with pytest.warns(ConvergenceWarning):  # 5 iterations
                clf.fit(X, y)
            fits.append((clf, clf.predict_proba(X)))
    (clf_1, P_1), (clf_2, P_2) = fits
    for W_1, W_2 in zip(clf_1.coefs_ + clf_1.intercepts_, clf_2.coefs_ + clf_2.intercepts_):
        assert_array_equal(W_1, W_2)
    assert clf_1.loss_curve_ == clf_2.loss_curve_
    assert_array_equal(P_1, P_2)


def _scipy_blas_threads():
    """Thread counts of the OpenBLAS builds with their own pool (the ones the engine pins; an OpenMP
    build runs on one thread inside the engine's parallel regions by itself)."""
    return [lib["num_threads"] for lib in threadpool_info()
            if lib["internal_api"] == "openblas" and lib.get("threading_layer") != "openmp"]


def test_blas_is_pinned_to_one_thread_while_the_engine_works_and_restored_after():
    if not _scipy_blas_threads():
        pytest.skip("no OpenBLAS with a thread pool of its own loaded")
    X, Y = _data(n=20000)
    net = fastmlp.Network(LAYERS, output_activation="softmax", loss="log_loss", random_state=0)
    seen, done = [], threading.Event()

    def watch():
        while not done.is_set():
            depth, generation = _engine.blas_pin_state()
            counts = _scipy_blas_threads()
            if depth > 0 and _engine.blas_pin_state() == (depth, generation):  # pinned all along
                seen.append(counts)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _scipy_blas_threads()
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            net.fit(X, Y, epochs=3, batch_size=64)
        finally:
            done.set()
            watcher.join()
        assert _scipy_blas_threads() == before  # restored
    assert seen, "the watcher never saw the engine at work"
    assert all(counts == [1] * len(counts) for counts in seen)
    assert _engine.blas_pin_state()[0] == 0


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError),
                                        (True, TypeError)])
def test_bad_n_threads(bad, error):
    X, Y = _data(n=40)
    net = fastmlp.Network(LAYERS, output_activation="softmax", loss="log_loss", random_state=0)
    before = net.coefs_[0].copy()
    with pytest.raises(error, match="n_threads"):
        net.fit(X, Y, epochs=1, n_threads=bad)
    assert_array_equal(net.coefs_[0], before)
    with pytest.raises(error, match="n_threads"):
        net.forward(X, n_threads=bad)


def test_effective_n_threads():
    assert _engine.effective_n_threads(1) == 1
    assert _engine.effective_n_threads(3) == 3
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _engine.effective_n_threads() == 1
    assert 1 <= _engine.effective_n_threads() <= fastmlp.network._usable_cpus()


def test_an_openmp_limit_entered_right_after_import_reaches_the_engine():
    # a limit reaches only the libraries loaded when it is entered: `import fastmlp` loads the engine's OpenMP
    # runtime, so a limit entered before any estimator is made (in a fresh interpreter) still limits the fit
    code = textwrap.dedent("""
        import fastmlp
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="openmp"):
            clf = fastmlp.MLPClassifier
            inside = fastmlp._engine.effective_n_threads()
        print(inside, fastmlp._engine.effective_n_threads(), fastmlp._engine.OPENMP)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    inside, outside, openmp = result.stdout.split()
    assert int(inside) == 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if openmp == "True" and cpus > 1 and "OMP_NUM_THREADS" not in os.environ:
        assert int(outside) > 1  # (the limit was lifted: the check above is not vacuous)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
def test_members_forward_is_each_networks_own_for_any_thread_count(forced_threads, dtype, sparse):
    # a validation's forward passes of K networks in one call (their chunks the threads' tasks): each the
    # bits of the network's own forward, for 1, 2 and 3 threads, over several chunks of rows
    X, _ = _data(n=600, sparse=sparse, dtype=dtype)
    nets = [fastmlp.Network(LAYERS, output_activation="softmax", loss="log_loss", dtype=dtype, random_state=k)
            for k in range(3)]
    own = np.stack([net.forward(X, n_threads=1) for net in nets])
    for n in THREADS:
        out = np.empty_like(own)
        _engine.forward_members(nets[0]._sizes, nets[0]._act_codes, [net._params for net in nets],
                                nets[0]._engine_input(nets[0]._check_X(X)), out, n)
        assert_array_equal(out, own)


@pytest.mark.parametrize("weighted", [False, True])
def test_validation_losses_are_each_networks_own_for_any_thread_count(forced_threads, weighted):
    # the validation's output kernel over K networks' logits, the networks the threads' tasks: the same
    # losses and outputs, bit for bit, for 1, 2 and 3 threads
    rng = np.random.default_rng(0)
    Z = 3 * rng.normal(size=(5, 300, 4))
    Y = np.eye(4)[rng.integers(0, 4, 300)]
    sw = rng.uniform(0.5, 2.0, 300) if weighted else None
    code = fastmlp._registry.OUTPUTS["softmax", "log_loss"].loss_code
    results = []
    for n in THREADS:
        P = Z.copy()
        results.append((_engine.output_losses(code, 0.0, P, Y, sw, n), P))
    for sums, P in results[1:]:
        assert_array_equal(sums, results[0][0])
        assert_array_equal(P, results[0][1])


def test_an_engine_call_inside_another_pins_blas_again_where_another_thread_changed_it():
    # found by probing: another thread's threadpool_limits(..., user_api="blas") while an engine call (here the
    # outer blas_pinned, as L-BFGS's fit holds it) was running left BLAS's pools on for every engine call
    # after it until the outer one ended: fits beside it 100x slower
    if not _scipy_blas_threads():
        pytest.skip("no OpenBLAS with a thread pool of its own loaded")
    X, Y = _data(n=200)
    net = fastmlp.Network(LAYERS, output_activation="softmax", loss="log_loss", random_state=0)
    with threadpool_limits(limits=1, user_api="blas"), _engine.blas_pinned():
        limits = threadpool_limits(limits=2, user_api="blas")  # (as another thread would, meanwhile)
        try:
            if set(_scipy_blas_threads()) != {2}:
                pytest.skip("this BLAS does not take two threads here")
            net.forward(X)  # an engine call, nested: BLAS on one thread again
            assert _scipy_blas_threads() == [1] * len(_scipy_blas_threads())
        finally:
            limits.restore_original_limits()
    assert _engine.blas_pin_state()[0] == 0


FORK_CHILD = """
import os, sys, threading
import numpy as np
import fastmlp
from fastmlp import _engine
from threadpoolctl import threadpool_info, threadpool_limits

def blas():
    return [lib["num_threads"] for lib in threadpool_info()
            if lib["internal_api"] == "openblas" and lib.get("threading_layer") != "openmp"]

rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 100))
Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
_engine._set_thread_adaptation(False)
net = fastmlp.Network([100, 64, 2], output_activation="softmax", loss="log_loss", random_state=0)
net.fit(X, Y, epochs=1, n_threads=2)  # the OpenMP runtime's threads started in the parent
P = net.forward(X, n_threads=2)
with threadpool_limits(limits=2, user_api="blas"):
    parent_blas = blas()
    inside, release = threading.Event(), threading.Event()

    def hold():  # an engine call in progress in another thread while the process forks
        with _engine.blas_pinned():
            inside.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait()
    pid = os.fork()
    if pid == 0:
        ok = (_engine.effective_n_threads() == 1 and _engine.effective_n_threads(2) == 1
              and _engine.blas_pin_state()[0] == 0 and blas() == parent_blas
              and np.array_equal(net.forward(X, n_threads=2), P))
        net.fit(X, Y, epochs=1)
        os._exit(0 if ok and _engine.blas_pin_state()[0] == 0 else 3)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_trains_and_predicts_on_one_thread():
    # found by probing: after the parent had run the engine's threads, a child made by fork (multiprocessing's
    # default start method on Linux) waited forever in its first parallel region (GNU libgomp's threads do not
    # survive fork); and a fork while another thread's engine call held BLAS pinned left the child's BLAS on one
    # thread for good. The child now runs the engine on one thread, the same bits, with the parent's BLAS counts
    result = subprocess.run([sys.executable, "-c", FORK_CHILD], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 7, 32, 129])
def test_the_workspaces_start_on_a_cache_line(dtype, batch):
    # the threads' parts of a row split at unit boundaries: rows that start on a cache line share none of it
    # with the other thread's part (where a part's width is a whole number of lines), so no line goes back and
    # forth between the cores every batch (2-3% of a two-thread W1 epoch, PROFILE.md section 13)
    net = fastmlp.Network([13, 256, 100, 3], dtype=dtype, random_state=0)
    for dropout in (False, True):
        grads, work = net._workspaces(batch, dropout)
        assert grads.ctypes.data % 64 == 0 and work.ctypes.data % 64 == 0
        assert grads.shape == net._params.shape and grads.dtype == work.dtype == dtype
        assert work.shape[0] == _engine.workspace_size(net._sizes, net._act_codes, net._keep, batch, dropout)


# A first layer twice as wide as the second, at a batch no larger than it: its forward product is split by
# the inner dimension (each part half of X_b and of W_1, then their sum); the second layer's too.
INNER_LAYERS = [160, 64, 32, 3]


def test_the_inner_split_is_planned_where_expected():
    acts = np.array([1, 1, 0], dtype=np.intc)
    assert _engine._forward_splits(np.array(INNER_LAYERS, dtype=np.intp), acts, 32)[:2] == [("inner", 2),
                                                                                            ("inner", 2)]
    # (a batch wider than the layer: by rows; a layer not twice as narrow as its input: by units)
    assert _engine._forward_splits(np.array(INNER_LAYERS, dtype=np.intp), acts, 128)[0] == ("rows", 2)
    assert _engine._forward_splits(np.array([40, 96, 64, 5], dtype=np.intp), acts, 32)[0] == ("units", 2)



@pytest.mark.parametrize("sizes", [[784, 256, 128, 10], INNER_LAYERS, LAYERS, [13, 256, 100, 3], [8, 16, 1]])
def test_the_update_chunks_follow_the_weight_gradient_parts(sizes):
    # Each chunk of the update lies in one part of its layer's weight gradient when that is split by rows
    # (of dW_l: rows of W_l), and is that part's task: the thread that wrote the gradient's rows updates them.
    # Together the chunks cover every parameter once, in order, and the tasks share them nearly equally.
    acts = np.array([1] * (len(sizes) - 2) + [0], dtype=np.intc)
    chunks, splits = _engine._update_chunks(np.array(sizes, dtype=np.intp), acts, 32)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    assert [c[0] for c in chunks] == list(np.cumsum([0] + [c[1] for c in chunks])[:-1])
    assert sum(c[1] for c in chunks) == n_params and all(0 < c[1] <= 16384 for c in chunks)
    for offset, length, layer, task in chunks:
        if layer == 0:
            continue
        direction, k, w_off = splits[layer - 1]
        fan_out = sizes[layer]
        if direction == "rows" and k > 1:
            first, last = (offset - w_off) // fan_out, (offset + length - 1 - w_off) // fan_out
            bounds = [(t * sizes[layer - 1] // k) // 8 * 8 for t in range(1, k)]
            part = sum(first >= b for b in bounds)
            assert part == sum(last >= b for b in bounds) == task, (offset, length, layer, task)
    load = np.bincount([c[3] for c in chunks], weights=[c[1] for c in chunks], minlength=2)
    if n_params > 100000:
        assert load.min() > 0.45 * n_params

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["sgd-momentum-nesterov", "adam-l2", "sgd-clip", "adam-dropout", "adam-prelu-l2",
                                  "sgd-sparse", "adam-sparse-dropout", "sgd-weights"])
def test_an_inner_split_is_bit_identical_for_any_thread_count(forced_threads, monkeypatch, case, dtype):
    monkeypatch.setattr(sys.modules[__name__], "LAYERS", INNER_LAYERS)
    fits = [_fit(n, dtype, **CASES[case]) for n in THREADS]
    net, predictions = fits[0]
    for other, other_predictions in fits[1:]:
        for a, b in zip(net.coefs_ + net.intercepts_, other.coefs_ + other.intercepts_):
            assert_array_equal(a, b)
        assert_array_equal(net.loss_curve_, other.loss_curve_)
        assert_array_equal(net.grad_norms_, other.grad_norms_)
        assert_array_equal(predictions, other_predictions)
        assert net.dead_units_ == other.dead_units_


def test_a_batch_starts_no_more_threads_than_its_steps_have_tasks():
    """A training batch runs on at most as many threads as its widest step has tasks, whatever it is given
    (a thread beyond them would only wait at every barrier); on fewer when fewer are asked for. W1's widest
    steps have four: the gather's parts (8 rows or more each) and a layer's backward step (two weight-gradient
    and two delta blocks); a network too narrow to split its products has the update's two chunk tasks."""
    w1 = np.array([784, 256, 128, 10], dtype=np.intp), np.zeros(3, dtype=np.int32)
    for batch_size in (8, 32, 128, 512):
        assert _engine._batch_threads(*w1, batch_size, 16) == 4
        assert _engine._batch_threads(*w1, batch_size, 3) == 3
    tiny = np.array([3, 4, 1], dtype=np.intp), np.zeros(2, dtype=np.int32)
    assert _engine._batch_threads(*tiny, 4, 16) == 2
    assert _engine._batch_threads(*tiny, 4, 1) == 1
