"""The engine releases the GIL: Python threads run while an epoch (or a
forward pass) runs in compiled code, two networks train at once, and
threading changes no result.

No wall-clock speedups are asserted (the machine may be shared and noisy).
The GIL proof is causal instead: engine calls are wrapped so their start and
end are time-stamped, and a pure-Python counting thread time-stamps its own
progress. A Python thread can only run while it holds the GIL, so progress
stamped strictly inside an engine call (well away from its ends) is only
possible if that call released the GIL.
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastmlp
import fastmlp.network

LAYERS = [64, 256, 256, 10]
# Away from the ends of an engine call by many GIL switch intervals, so that
# a counter slice taken just before the call really started (or just after it
# ended) is never counted as "inside".
MARGIN = max(0.05, 10 * sys.getswitchinterval())


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread per call, so that our two Python threads are the parallelism."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a test extra
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, LAYERS[0]))
    Y = np.eye(LAYERS[-1])[rng.integers(0, LAYERS[-1], n)]
    return X, Y


def _new_network(seed, dtype="float64"):
    return fastmlp.Network(LAYERS, activation="relu", output_activation="softmax", loss="log_loss",
                           dtype=dtype, dropout=0.1, random_state=seed)


FIT = dict(epochs=2, batch_size=32, optimizer="adam", learning_rate=1e-3, alpha=1e-4)


class _Timed:
    """Wraps an engine function; records (thread name, start, end) of each call."""

    def __init__(self, function):
        self.function = function
        self.calls = []
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            end = time.perf_counter()
            with self._lock:
                self.calls.append((threading.current_thread().name, start, end))


class _Counter(threading.Thread):
    """Pure Python: counts, and time-stamps its progress every `every` steps."""

    def __init__(self, every=200):
        super().__init__(name="counter", daemon=True)
        self.every = every
        self.stamps = []
        self.stop = threading.Event()

    def run(self):
        count = 0
        stamps, clock, stop, every = self.stamps, time.perf_counter, self.stop, self.every
        while not stop.is_set():
            count += 1
            if count % every == 0:
                stamps.append(clock())

    def progress_inside(self, start, end):
        """Stamps strictly inside (start + MARGIN, end - MARGIN)."""
        stamps = np.array(self.stamps)
        return int(np.count_nonzero((stamps > start + MARGIN) & (stamps < end - MARGIN)))


def _long_calls(calls, minimum):
    return [(name, start, end) for name, start, end in calls if end - start > minimum]


# Each observation starts from a size that takes a few tenths of a second here and doubles it until the
# engine call lasts long enough to observe (a faster machine, or more engine threads, shorten it).
DOUBLINGS = 6


def _observed(run, n, minimum):
    """run(n) -> (start, end, *rest) of an engine call, on n rows doubled until the call lasts `minimum`."""
    for _ in range(DOUBLINGS):
        result = run(n)
        if result[1] - result[0] >= minimum:
            return result
        n *= 2
    pytest.skip(f"{n // 2} rows took {result[1] - result[0]:.3f} s, too short to observe")  # pragma: no cover


def test_python_threads_progress_during_an_epoch(monkeypatch):
    def run(n):
        timed = _Timed(fastmlp.network._engine.train_epoch)
        monkeypatch.setattr(fastmlp.network._engine, "train_epoch", timed)
        X, Y = _data(n)
        net = _new_network(0)
        counter = _Counter()
        counter.start()
        try:
            net.fit(X, Y, epochs=1, batch_size=32)
        finally:
            counter.stop.set()
            counter.join()
        assert len(timed.calls) == 1
        _, start, end = timed.calls[0]
        return start, end, counter, net

    start, end, counter, net = _observed(run, 12000, 4 * MARGIN)
    inside = counter.progress_inside(start, end)
    # Holding the GIL for the whole epoch would leave this at exactly 0.
    assert inside > 0, "the counting thread made no progress while train_epoch ran: GIL not released"
    assert net.loss_curve_ and np.isfinite(net.loss_curve_[0])


@pytest.mark.parametrize("path", ["as the engine takes it", "converted"])
def test_python_threads_progress_during_forward(monkeypatch, path):
    # Both ways into the forward pass release the GIL: X already C-contiguous
    # float64 (_engine.Predictor), and X that forward first converts (_engine.forward).
    net = _new_network(0)

    def run(n):
        X, _ = _data(n)
        if path == "converted":
            X = np.asfortranarray(X)
            timed = _Timed(fastmlp.network._engine.forward)
            monkeypatch.setattr(fastmlp.network._engine, "forward", timed)
        else:
            timed = _Timed(type(net)._fast_forward.__get__(net))  # the method, not an earlier round's wrapper
            net._fast_forward = timed
        counter = _Counter()
        counter.start()
        try:
            out = net.forward(X)
        finally:
            counter.stop.set()
            counter.join()
        _, start, end = timed.calls[0]
        return start, end, counter, out, n

    start, end, counter, out, n = _observed(run, 60000, 4 * MARGIN)
    assert counter.progress_inside(start, end) > 0, "no progress while forward ran: GIL not released"
    assert out.shape == (n, 10)


def _train(seed, X, Y, dtype="float64"):
    net = _new_network(seed, dtype)
    net.fit(X, Y, **FIT)
    return net


def _weights(net):
    return [a.copy() for a in list(net.coefs_) + list(net.intercepts_)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_threads_train_concurrently_and_match_a_sequential_run(monkeypatch, dtype):
    seeds = [0, 1]
    # Sequential first: the results to match, on rows enough for an epoch to be observed
    n = 8000
    for _ in range(DOUBLINGS):
        X, Y = _data(n)
        tic = time.perf_counter()
        expected = [_weights(_train(seed, X, Y, dtype)) for seed in seeds]
        if (time.perf_counter() - tic) / (FIT["epochs"] * len(seeds)) >= 4 * MARGIN:
            break
        n *= 2

    timed = _Timed(fastmlp.network._engine.train_epoch)
    monkeypatch.setattr(fastmlp.network._engine, "train_epoch", timed)
    results, errors = {}, []
    barrier = threading.Barrier(len(seeds) + 1)

    def work(seed):
        try:
            barrier.wait()
            results[seed] = _weights(_train(seed, X, Y, dtype))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,), name=f"trainer-{seed}") for seed in seeds]
    for thread in threads:
        thread.start()
    counter = _Counter()
    counter.start()
    barrier.wait()
    try:
        for thread in threads:
            thread.join()
    finally:
        counter.stop.set()
        counter.join()
    assert not errors, errors

    # Threading changes nothing: bit-identical to the sequential run.
    for seed in seeds:
        assert len(results[seed]) == len(expected[seed])
        for got, want in zip(results[seed], expected[seed]):
            assert got.dtype == np.dtype(dtype)
            assert_array_equal(got, want)

    # Both trainers ran their epochs (2 each), and Python kept running while
    # they were inside compiled code.
    assert sorted(name for name, _, _ in timed.calls) == ["trainer-0"] * 2 + ["trainer-1"] * 2
    long_calls = _long_calls(timed.calls, 3 * MARGIN)
    if not long_calls:  # pragma: no cover - only on a very fast machine
        pytest.skip("epochs too short to observe")
    assert sum(counter.progress_inside(start, end) for _, start, end in long_calls) > 0
    # The trainers' epochs overlapped in time (they would be disjoint if each
    # epoch held the GIL from start to end).
    first = [(s, e) for name, s, e in timed.calls if name == "trainer-0"]
    second = [(s, e) for name, s, e in timed.calls if name == "trainer-1"]
    overlap = sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in first for s2, e2 in second)
    assert overlap > 0


def test_two_threads_with_the_same_seed_give_identical_weights():
    X, Y = _data(2000)
    expected = _weights(_train(7, X, Y))
    results = [None, None]

    def work(i):
        results[i] = _weights(_train(7, X, Y))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert result is not None
        for got, want in zip(result, expected):
            assert_array_equal(got, want)


def test_networks_shared_data_is_not_modified_by_concurrent_training():
    # Read-only inputs, shared by both threads: training must not write into them.
    X, Y = _data(1000)
    X.flags.writeable = False
    Y.flags.writeable = False
    X_copy, Y_copy = X.copy(), Y.copy()
    threads = [threading.Thread(target=_train, args=(seed, X, Y)) for seed in (3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_array_equal(X, X_copy)
    assert_array_equal(Y, Y_copy)


# ---------------------------------------------------------------------------
# Many threads, one shared model; several threads, several models.


def _run_in_threads(functions, name):
    """Run each function in its own thread, all released at once; their results, in order.

    Exceptions in a thread are re-raised here, and a thread that never ends
    fails the test instead of hanging it.
    """
    results = [None] * len(functions)
    errors = []
    barrier = threading.Barrier(len(functions))

    def run(i):
        try:
            barrier.wait(timeout=60)
            results[i] = functions[i]()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"{name}-{i}", daemon=True)
               for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def _prediction_inputs(n_features, dtype, seed=0):
    """Inputs of many sizes: one row, a few, and more than the engine's chunk of rows; dense and CSR."""
    import scipy.sparse

    rng = np.random.default_rng(seed)
    sizes = [1, 2, 7, 64, 513, fastmlp.network._engine.CHUNK_ROWS + 37]
    inputs = [rng.normal(size=(n, n_features)).astype(dtype) for n in sizes]
    sparse = rng.normal(size=(300, n_features))
    sparse[rng.random(sparse.shape) < 0.7] = 0.0
    inputs.append(scipy.sparse.csr_matrix(sparse.astype(dtype)))
    return inputs


N_READERS = 8


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_eight_threads_share_one_network(dtype):
    X, Y = _data(1500)
    net = _new_network(0, dtype)
    net.fit(X, Y, **FIT)
    inputs = _prediction_inputs(LAYERS[0], dtype)
    Y_small = Y[:64]
    expected = [net.predict(x) for x in inputs]
    expected_forward = [net.forward(x) for x in inputs]
    expected_loss = net.loss_and_gradients(X[:64], Y_small, alpha=1e-3)
    before = [a.copy() for a in list(net.coefs_) + list(net.intercepts_)]

    def reader(i):
        def work():
            got = []
            for round_ in range(3):  # each thread in its own order
                for k in np.random.default_rng(i * 10 + round_).permutation(len(inputs)):
                    got.append(("predict", k, net.predict(inputs[k])))
                    got.append(("forward", k, net.forward(inputs[k])))
                got.append(("loss", None, net.loss_and_gradients(X[:64], Y_small, alpha=1e-3)))
            return got
        return work

    results = _run_in_threads([reader(i) for i in range(N_READERS)], "reader")
    for got in results:
        assert len(got) == 3 * (2 * len(inputs) + 1)
        for kind, k, value in got:
            if kind == "predict":
                assert value.dtype == np.dtype(dtype)
                assert_array_equal(value, expected[k])
            elif kind == "forward":
                assert_array_equal(value, expected_forward[k])
            else:
                loss, dW, db = value
                assert loss == expected_loss[0]
                for g, want in zip(list(dW) + list(db), list(expected_loss[1]) + list(expected_loss[2])):
                    assert_array_equal(g, want)
    # Nobody wrote into the shared model.
    for got, want in zip(list(net.coefs_) + list(net.intercepts_), before):
        assert_array_equal(got, want)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_eight_threads_share_one_classifier():
    X, Y = _data(1500)
    y = Y.argmax(axis=1)
    clf = fastmlp.MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=3, random_state=0).fit(X, y)
    inputs = _prediction_inputs(LAYERS[0], "float64", seed=1)
    expected = [(clf.predict(x), clf.predict_proba(x)) for x in inputs]

    def reader(i):
        def work():
            got = []
            for round_ in range(2):
                for k in np.random.default_rng(100 + i * 10 + round_).permutation(len(inputs)):
                    got.append((k, clf.predict(inputs[k]), clf.predict_proba(inputs[k])))
            return got
        return work

    results = _run_in_threads([reader(i) for i in range(N_READERS)], "classifier-reader")
    for got in results:
        assert len(got) == 2 * len(inputs)
        for k, labels, proba in got:
            assert_array_equal(labels, expected[k][0])
            assert_array_equal(proba, expected[k][1])


def _four_networks():
    """Four differently configured trainings: (make network, data, fit arguments)."""
    import scipy.sparse

    n = 6000  # enough work that the four really run at the same time
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, 20))
    Y_class = np.eye(3)[rng.integers(0, 3, n)]
    Y_reg = rng.normal(size=(n, 2))
    X_csr = X.copy()
    X_csr[rng.random(X.shape) < 0.8] = 0.0
    X_csr = scipy.sparse.csr_matrix(X_csr)
    weights = rng.uniform(0, 2, n)
    return [
        (lambda: fastmlp.Network([20, 64, 32, 3], activation="relu", output_activation="softmax", loss="log_loss",
                                 dropout=0.2, random_state=1),
         X, Y_class, dict(epochs=3, batch_size=32, momentum=0.9, nesterov=True, learning_rate=0.05)),
        (lambda: fastmlp.Network([20, 48, 2], activation="tanh", dtype="float32", random_state=2),
         X, Y_reg, dict(epochs=3, batch_size=50, optimizer="adam", learning_rate=1e-3, alpha=1e-3)),
        (lambda: fastmlp.Network([20, 32, 3], activation="swish", output_activation="logistic", loss="log_loss",
                                 random_state=3),
         X_csr, Y_class, dict(epochs=3, batch_size=16, clip_norm=0.5, sample_weight=weights)),
        (lambda: fastmlp.Network([20, 40, 40, 2], activation="leaky_relu", dtype="float32", dropout=[0.1, 0.3],
                                 random_state=4),
         X, Y_reg, dict(epochs=3, batch_size=1000, shuffle=False, learning_rate=0.01)),
    ]


def test_four_threads_fit_four_networks_bit_identical_to_sequential():
    configs = _four_networks()

    def trainer(make, X, Y, fit):
        def work():
            net = make()
            net.fit(X, Y, **fit)
            return _weights(net), list(net.loss_curve_)
        return work

    functions = [trainer(*config) for config in configs]
    expected = [work() for work in functions]  # one after another
    results = _run_in_threads(functions, "fitter")
    for (got, got_curve), (want, want_curve) in zip(results, expected):
        assert got_curve == want_curve
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype
            assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_four_threads_fit_four_estimators_bit_identical_to_sequential():
    n = 3000
    rng = np.random.default_rng(6)
    X = rng.normal(size=(n, 12))
    y_class = rng.integers(0, 3, n)
    y_reg = X[:, :3].sum(axis=1) + 0.1 * rng.normal(size=n)
    configs = [
        (fastmlp.MLPClassifier, dict(hidden_layer_sizes=(32,), max_iter=4, random_state=0), y_class),
        (fastmlp.MLPClassifier, dict(hidden_layer_sizes=(16, 16), solver="sgd", max_iter=4, random_state=1,
                                     dtype="float32"), y_class),
        (fastmlp.MLPRegressor, dict(hidden_layer_sizes=(32,), max_iter=4, random_state=2, early_stopping=True),
         y_reg),
        (fastmlp.MLPRegressor, dict(hidden_layer_sizes=(24,), solver="sgd", learning_rate="invscaling",
                                    max_iter=4, random_state=3, dropout=0.1), y_reg),
    ]

    def trainer(Est, params, y):
        def work():
            est = Est(**params).fit(X, y)
            return [a.copy() for a in list(est.coefs_) + list(est.intercepts_)], list(est.loss_curve_)
        return work

    functions = [trainer(*config) for config in configs]
    expected = [work() for work in functions]
    results = _run_in_threads(functions, "estimator")
    for (got, got_curve), (want, want_curve) in zip(results, expected):
        assert got_curve == want_curve
        for a, b in zip(got, want):
            assert_array_equal(a, b)


def test_the_validation_set_is_scored_on_the_fits_threads(monkeypatch):
    # fit(n_threads=1, validation_data=...) scored its validation set on the default count (probing)
    from fastmlp import _engine

    seen = []
    # (where each takes the thread count: forward and forward_members before a prediction clock)
    for name, at in (("forward_members", 5), ("output_losses", -1), ("forward", 8)):
        original = getattr(_engine, name)

        def spy(*args, _original=original, _at=at):
            seen.append(args[_at])
            return _original(*args)
        monkeypatch.setattr(_engine, name, spy)
    rng = np.random.default_rng(0)
    X, Y = rng.random((300, 5)), rng.random((300, 1))
    net = fastmlp.Network([5, 4, 1], random_state=0)
    net.fit(X, Y, epochs=2, n_threads=1, validation_data=(X[:100], Y[:100]))
    assert seen and set(seen) == {1}
    ens = fastmlp.NetworkEnsemble([5, 4, 1], n_members=2, random_state=0)
    seen.clear()
    ens.fit(X, Y, epochs=2, n_threads=1, validation_data=(X[:100], Y[:100]))
    assert seen and set(seen) == {1}


@pytest.mark.skipif(not fastmlp._engine.OPENMP or not hasattr(os, "sched_getaffinity"), reason="OpenMP threads")
@pytest.mark.parametrize("setting", ["OMP_PROC_BIND=true", "OMP_PLACES=cores"])
def test_openmp_binding_leaves_the_default_count(setting):
    # OpenMP binds the importing thread to one CPU as it loads (scikit-learn's runtime first), where the
    # variables ask for binding: the engine took that thread's affinity for the process's, one CPU
    name, value = setting.split("=")
    code = "import sklearn.cluster\nimport fastmlp.network\nfrom fastmlp import _engine\nprint(_engine.effective_n_threads())"
    env = {**os.environ, name: value, "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) == min(2, os.cpu_count())  # (the last line: a runtime may print first)
    assert fastmlp.network._usable_cpus({name: value}) == max(len(os.sched_getaffinity(0)), os.cpu_count())
    assert fastmlp.network._usable_cpus({"OMP_PROC_BIND": "false"}) == len(os.sched_getaffinity(0))
