"""NetworkEnsemble (issue 16): K members trained in one pass equal K Networks trained alone.

The references are built to see the same batches by construction: each is a
Network with the member's seed (so the same initial weights and dropout
seeds), whose generator hands out the ensemble's permutations (one shuffle per
epoch from the ensemble's random_state, which draws nothing else when every
member's seed is given).
"""
import copy
import pickle

import numpy as np
import scipy.sparse
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastmlp
from fastmlp import Network, NetworkEnsemble, _engine, schedules

N, BATCH, EPOCHS = 70, 16, 3


class _Replay(np.random.Generator):
    """A Network's generator that draws from its own stream but permutes as the ensemble's generator does."""

    def __init__(self, own, orders):
        super().__init__(own.bit_generator)
        self._orders = iter(orders)

    def permutation(self, n):
        return next(self._orders)


def _data(layers, loss, n=N, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, layers[0]))
    if loss == "log_loss":
        Y = np.eye(layers[-1])[rng.integers(0, layers[-1], n)]
    elif loss == "poisson":
        Y = rng.poisson(1.0, size=(n, layers[-1])).astype(float)
    else:
        Y = rng.normal(size=(n, layers[-1]))
    return X.astype(dtype), Y.astype(dtype)


def _pair(layers, member_params, fit_args, net_args, dtype=np.float64, batch_size=BATCH, n_threads=None,
          epochs=EPOCHS):
    """The fitted ensemble, and each member's Network trained alone on the same batches."""
    X, Y = _data(layers, net_args.get("loss"), dtype=dtype)
    ens = NetworkEnsemble(layers, n_members=len(member_params), random_state=5, member_params=member_params,
                          dtype=dtype, **net_args)
    ens.fit(X, Y, epochs=epochs, batch_size=batch_size, n_threads=n_threads, **fit_args)
    shuffle = np.random.default_rng(5)
    orders = [shuffle.permutation(N) for _ in range(epochs)]
    refs = []
    for own in member_params:
        args = dict(net_args, dtype=dtype, random_state=own["random_state"])
        if "dropout" in own:
            args["dropout"] = own["dropout"]
        ref = Network(layers, **args)
        ref._rng = _Replay(ref._rng, orders)
        ref.fit(X, Y, epochs=epochs, batch_size=batch_size,
                **dict(fit_args, **{k: v for k, v in own.items() if k in ("learning_rate", "alpha")}))
        refs.append(ref)
    return ens, refs, X


def _all(ens):
    """Every member's weights, one after another."""
    return np.concatenate([m._params for m in ens._members])


def _params(net):
    return net.coefs_ + net.intercepts_ + net.prelu_slopes_


SEEDS = [{"random_state": s} for s in (11, 12, 13)]
CASES = {
    "no-hidden-sgd": ([4, 2], SEEDS, dict(learning_rate=0.05), {}),
    "relu-sgd": ([4, 6, 2], SEEDS, dict(learning_rate=0.05), {}),
    "tanh-softmax-adam-l2": ([4, 6, 5, 3], SEEDS, dict(optimizer="adam", learning_rate=0.01, alpha=1e-3),
                             dict(activation="tanh", output_activation="softmax", loss="log_loss")),
    "prelu-dropout-nesterov-clip-per-member": (
        [4, 6, 5, 3],
        [{"random_state": 1, "learning_rate": 0.05, "alpha": 0.1}, {"random_state": 2, "dropout": 0.0},
         {"random_state": 3, "dropout": [0.1, 0.5]}],
        dict(momentum=0.9, nesterov=True, clip_norm=0.5), dict(activation="prelu", dropout=0.3)),
    "swish-logistic-adam-per-member-rates": (
        [5, 8, 1], [{"random_state": s, "learning_rate": lr} for s, lr in ((1, 1e-3), (2, 1e-2), (3, 3e-2))],
        dict(optimizer="adam"), dict(activation="swish", output_activation="logistic", loss="log_loss")),
    "leaky-poisson": ([4, 6, 2], SEEDS, dict(learning_rate=0.01), dict(activation="leaky_relu", loss="poisson",
                                                                           output_activation="exp")),
    # wide enough that the members are split into groups (the threads' tasks) and the first layer's
    # product is one per group
    "groups-logistic-dropout-adam": ([40, 96, 64, 5], [{"random_state": s} for s in range(5)],
                                     dict(optimizer="adam", learning_rate=1e-3, alpha=1e-4),
                                     dict(activation="logistic", dropout=0.2)),
    # small output layers go through the members kernels (csrc/members.template.c): one output read from the
    # dropped-out units of every member, and three outputs after a hidden layer no member drops
    "small-output-all-drop": ([5, 8, 6, 1], [{"random_state": s} for s in (4, 5, 6)],
                              dict(optimizer="adam", learning_rate=0.01, alpha=1e-3), dict(dropout=[0.0, 0.25])),
    "small-output-three": ([5, 8, 7, 3], [{"random_state": s} for s in (4, 5, 6)],
                           dict(momentum=0.9, learning_rate=0.02), dict(dropout=[0.2, 0.0], activation="tanh",
                                                                       output_activation="softmax", loss="log_loss")),
    # the members kernels' one output over whole vectors of eight and sixteen units, and with a tail after them
    "small-output-vectors": ([6, 40, 1], [{"random_state": s} for s in (7, 8, 9)],
                             dict(optimizer="adam", learning_rate=0.01, alpha=1e-3), {}),
    "small-output-tails": ([5, 12, 21, 1], [{"random_state": s} for s in (7, 8, 9)],
                           dict(learning_rate=0.02, clip_norm=2.0), dict(activation="tanh")),
    # the members' backward into the hidden layer fused with the mask and every derivative (PReLU's after it)
    "small-output-prelu-dropout": ([5, 8, 6, 2], [{"random_state": s} for s in (4, 5, 6)],
                                   dict(momentum=0.9, learning_rate=0.02), dict(activation="prelu", dropout=0.25)),
    "small-output-logistic-dropout": ([5, 9, 1], [{"random_state": s} for s in (4, 5, 6)],
                                      dict(optimizer="adam", learning_rate=0.01), dict(activation="logistic",
                                                                                      dropout=0.1)),
    "small-output-identity": ([4, 7, 2], [{"random_state": s} for s in (4, 5, 6)], dict(learning_rate=0.02),
                              dict(activation="identity")),
    # a member alone in its group (members 1 and 2 share the other): its L2 term's gradient joins its update
    # and its update's sums of squares are its gradient norms, as in a Network's batch (without clipping)
    "one-member-group-l2-adam": (
        [40, 96, 64, 5], [{"random_state": 1, "alpha": 1e-3}, {"random_state": 2, "alpha": 1e-2, "learning_rate": 2e-3},
                          {"random_state": 3}],
        dict(optimizer="adam", learning_rate=1e-3, alpha=1e-4), dict(output_activation="softmax", loss="log_loss")),
    "one-member-group-momentum-l2-dropout": (
        [40, 96, 64, 5], [{"random_state": 4, "alpha": 1e-2, "dropout": 0.2}, {"random_state": 5}, {"random_state": 6}],
        dict(momentum=0.9, nesterov=True, learning_rate=0.01, alpha=1e-3), dict(activation="tanh")),
    # a small network's members in two groups (their hidden blocks, 16 x 40 x 8, past SMALL_GROUP_BLOCK)
    "small-two-groups-dropout": ([6, 40, 1], [{"random_state": s, "dropout": 0.1 * (s % 2)} for s in range(8)],
                                 dict(optimizer="adam", learning_rate=0.01), {}),
    # a schedule per member (its own course from its own rate; rates per batch in the engine's ensemble epoch)
    "onecycle-momentum-per-member-rates": (
        [4, 6, 2], [{"random_state": s, "learning_rate": lr} for s, lr in ((1, 0.01), (2, 0.05), (3, 0.1))],
        dict(momentum=0.9, lr_schedule=schedules.OneCycle()), {}),
    "plateau-adam-groups-per-member-rates": (
        [40, 96, 64, 5], [{"random_state": s, "learning_rate": 1e-3 * (1 + s)} for s in range(5)],
        dict(optimizer="adam", lr_schedule=schedules.ReduceOnPlateau(patience=1, factor=0.5)),
        dict(activation="tanh")),
    "warmup-cosine-per-batch-sgd": ([5, 8, 1], SEEDS, dict(learning_rate=0.05, lr_schedule=schedules.LinearWarmup(
        schedules.CosineAnnealing(per_batch=True), warmup_epochs=2, per_batch=True)), {}),
    # ten members in four groups (of two and three), each member its own rate, alpha and dropout
    "groups-prelu-softmax-per-member-clip": (
        [40, 96, 64, 5],
        [{"random_state": s, "learning_rate": 0.01 * (1 + s), "alpha": 1e-3 * s, "dropout": [0.1 * (s % 3), 0.0]}
         for s in range(10)],
        dict(momentum=0.9, clip_norm=1.0), dict(activation="prelu", output_activation="softmax", loss="log_loss")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_members_equal_networks_trained_alone(case):
    layers, member_params, fit_args, net_args = CASES[case]
    ens, refs, X = _pair(layers, member_params, fit_args, net_args)
    P = ens.forward(X)
    for k, ref in enumerate(refs):
        member = ens.member(k)
        for W_ref, W in zip(_params(ref), _params(member)):
            assert_allclose(W, W_ref, rtol=0, atol=1e-6)
        assert_allclose(ens.loss_curve_[k], ref.loss_curve_, rtol=1e-6)
        assert_allclose(ens.grad_norms_[k], ref.grad_norms_, rtol=1e-6)
        assert member.dead_units_ == ref.dead_units_
        assert_allclose(P[k], ref.forward(X), rtol=0, atol=1e-6)
    assert_allclose(ens.predict(X), P.mean(axis=0))


@pytest.mark.parametrize("case", ["relu-sgd", "tanh-softmax-adam-l2", "groups-prelu-softmax-per-member-clip"])
def test_validation_data_scores_each_member_as_a_network_alone(case, tmp_path):
    layers, member_params, fit_args, net_args = CASES[case]
    X_val, Y_val = _data(layers, net_args.get("loss"), n=23, seed=9)
    w_val = np.linspace(0.5, 2.0, 23)
    ens, refs, X = _pair(layers, member_params, dict(fit_args, validation_data=(X_val, Y_val, w_val)), net_args)
    assert ens.validation_loss_curve_.shape == (len(member_params), EPOCHS)
    for k, ref in enumerate(refs):
        assert_allclose(ens.validation_loss_curve_[k], ref.validation_loss_curve_, rtol=1e-6)
    ens.save(tmp_path / "e.fmlp")
    loaded = fastmlp.load(tmp_path / "e.fmlp")
    assert_array_equal(loaded.validation_loss_curve_, ens.validation_loss_curve_)
    ens.fit(X, _data(layers, net_args.get("loss"))[1], epochs=1)  # a fit without: no stale curve
    assert not hasattr(ens, "validation_loss_curve_")
    with pytest.raises(ValueError, match=r"validation_data\[0\] \(X_val\)"):
        ens.fit(X, _data(layers, net_args.get("loss"))[1], validation_data=(X_val[:, :2], Y_val))
    with pytest.raises(TypeError, match="validation_data"):
        ens.fit(X, _data(layers, net_args.get("loss"))[1], validation_data=X_val)


def test_early_stopping_stops_each_member_as_a_network_alone(tmp_path):
    # per-member rates from slow to far too fast: the members stop at different epochs (one diverges: with
    # early stopping it ends at its best epoch, the diverged one recorded as NaN, as a Network's fit)
    layers = [4, 6, 2]
    member_params = [{"random_state": 1, "learning_rate": 1e-3}, {"random_state": 2, "learning_rate": 0.3},
                     {"random_state": 3, "learning_rate": 3.0}, {"random_state": 4, "learning_rate": 50.0}]
    X_val, Y_val = _data(layers, None, n=23, seed=9)
    with np.errstate(all="ignore"):
        ens, refs, X = _pair(layers, member_params, dict(validation_data=(X_val, Y_val), early_stopping=True,
                                                         patience=3, momentum=0.9), {}, epochs=30)
    counts = [len(ref.loss_curve_) for ref in refs]
    assert_array_equal(ens.n_epochs_, counts)
    assert len(set(counts)) > 2 and max(counts) == 30 and ens.loss_curve_.shape == (4, 30)
    assert any(np.isnan(ref.loss_curve_[-1]) for ref in refs)  # (a member that diverged)
    for k, (ref, n) in enumerate(zip(refs, counts)):
        assert_allclose(ens._members[k]._params, ref._params, rtol=1e-6)
        assert_allclose(ens.loss_curve_[k, :n], ref.loss_curve_, rtol=1e-6)
        assert_allclose(ens.validation_loss_curve_[k, :n], ref.validation_loss_curve_, rtol=1e-6)
        assert_allclose(ens.grad_norms_[k, :n], ref.grad_norms_, rtol=1e-6)
        assert np.isnan(ens.loss_curve_[k, n:]).all() and np.isnan(ens.grad_norms_[k, n:]).all()
    ens.save(tmp_path / "e.fmlp")
    loaded = fastmlp.load(tmp_path / "e.fmlp")
    assert_array_equal(loaded.n_epochs_, ens.n_epochs_)
    assert_array_equal(loaded.loss_curve_, ens.loss_curve_)
    assert_array_equal(loaded.forward(X), ens.forward(X))
    with pytest.raises(ValueError, match="early_stopping=True needs validation_data"):
        ens.fit(X, _data(layers, None)[1], early_stopping=True)
    with pytest.raises(ValueError, match="patience"):
        ens.fit(X, _data(layers, None)[1], validation_data=(X_val, Y_val), early_stopping=True, patience=0)
    assert_array_equal(fastmlp.load(tmp_path / "e.fmlp").forward(X), ens.forward(X))  # (unchanged by them)


def test_members_equal_networks_trained_alone_float32():
    layers, member_params, fit_args, net_args = CASES["tanh-softmax-adam-l2"]
    ens, refs, X = _pair(layers, member_params, fit_args, net_args, dtype=np.float32)
    for k, ref in enumerate(refs):
        for W_ref, W in zip(_params(ref), _params(ens.member(k))):
            assert W.dtype == np.float32
            assert_allclose(W, W_ref, rtol=0, atol=1e-5)


@pytest.fixture
def forced_threads():
    """Every batch on the threads asked for (no fallback to one thread)."""
    _engine._set_thread_adaptation(False)
    yield
    _engine._set_thread_adaptation(True)


@pytest.mark.parametrize("n_groups", range(1, 18))
def test_the_threads_take_every_group_once_and_not_two_neighbours_at_once(n_groups):
    # a group's blocks lie next to its neighbours' in every array: two threads working on neighbours at once
    # lost 10-15% of the second one's time (PROFILE.md section 19), so the tasks go the even groups first
    order = _engine._ensemble_task_order(n_groups)
    assert sorted(order) == list(range(n_groups))
    side_by_side = [order[t:t + 2] for t in range(0, n_groups - 1, 2)]  # two threads' tasks, taken in pairs
    assert all(abs(a - b) > 1 for a, b in side_by_side[:n_groups // 2 - 1]), order


@pytest.mark.parametrize("sizes, acts, K, batch", [
    ([32, 64, 64, 1], [1, 1, 0], 16, 32),  # W2's four groups of four
    ([8, 16, 1], [1, 0], 32, 16),  # W3's two groups of sixteen
    ([30, 100, 50, 3], [8, 8, 0], 10, 32),  # PReLU slopes: ten members in groups of two and three
    ([40, 96, 64, 5], [1, 1, 0], 3, 16),  # members alone in their groups
])
def test_no_two_groups_parameters_share_a_page(sizes, acts, K, batch):
    # two threads working side by side on neighbouring groups' blocks lost 10-15% of the second group's time
    # (PROFILE.md section 19): between two groups' parts of every block, a gap of at least a page
    index, n_params = _engine.ensemble_index(np.array(sizes, dtype=np.intp), np.array(acts, dtype=np.intc), K, batch)
    groups = np.array(_engine._ensemble_groups(np.array(sizes, dtype=np.intp), np.array(acts, dtype=np.intc), K,
                                               batch))
    assert groups.max() > 0
    where = index.ravel()
    owner = np.repeat(groups, index.shape[1])
    order = np.argsort(where)
    where, owner = where[order], owner[order]
    assert where[-1] < n_params and len(np.unique(where)) == where.size
    changes = owner[1:] != owner[:-1]
    assert np.all(where[1:][changes] - where[:-1][changes] > 1024)


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: one thread only")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count(forced_threads, dtype):
    layers, member_params, fit_args, net_args = CASES["groups-logistic-dropout-adam"]
    X, Y = _data(layers, None, n=200, dtype=dtype)
    fits = []
    for n_threads in (1, 2, 3):
        # ten members in four groups (the threads' tasks), of two and three
        ens = NetworkEnsemble(layers, n_members=10, random_state=0, dtype=dtype, dropout=0.2,
                              member_params=[{"alpha": a} for a in np.linspace(0.0, 0.1, 10)])
        ens.fit(X, Y, epochs=2, batch_size=32, optimizer="adam", learning_rate=1e-3, clip_norm=1.0,
                n_threads=n_threads)
        fits.append(ens)
    assert fits[0]._clock[4] == 0 and fits[1]._clock[4] > 0  # batches run on more than one thread
    for ens in fits[1:]:
        assert_array_equal(_all(ens), _all(fits[0]))
        assert_array_equal(ens.loss_curve_, fits[0].loss_curve_)


def _epoch_by_epoch(n_threads, epochs):
    """Ten members in four groups (the threads' tasks) trained on 200 rows (seven batches) one epoch a call,
    with n_threads: the ensemble, and each epoch's losses."""
    layers, _, fit_args, net_args = CASES["groups-logistic-dropout-adam"]
    X, Y = _data(layers, None, n=200)
    ens = NetworkEnsemble(layers, n_members=10, random_state=0, **net_args)
    curve = []
    for _ in range(epochs):
        ens.fit(X, Y, epochs=1, batch_size=32, n_threads=n_threads, **fit_args)
        curve.append(ens.loss_curve_[:, -1])
    return ens, np.array(curve)


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: one thread only")
def test_short_epochs_are_placed_by_the_thread_clock(monkeypatch):
    # an epoch of little work is the ensemble's thread clock's batch, and the clock is kept across fits: a new
    # ensemble's first three epochs run on one thread (the clock's first measuring run, timed), the fourth on
    # the threads whatever the machine (the other choice is measured next, at once); the bits are one thread's
    monkeypatch.setattr(_engine, "_last_cut_run", -1e300)  # (no run of another clock cut moments ago)
    ens, curve = _epoch_by_epoch(2, 4)
    assert ens._clock[1] > 0 and ens._clock[6] > 0  # (one thread's seconds a row, and the clock's time)
    assert ens._clock[4] == 7  # the fourth epoch's seven batches on the threads, none of the first three's
    one, one_curve = _epoch_by_epoch(1, 4)
    assert one._clock[4] == 0 and one._clock[6] == 0  # (one thread asked for: nothing to choose, nothing timed)
    assert_array_equal(_all(ens), _all(one))
    assert_array_equal(curve, one_curve)


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: one thread only")
def test_long_epochs_always_run_on_the_threads():
    # above ENSEMBLE_CLOCK_WORK an epoch runs on the threads from the first, untimed (a busy core costs a long
    # epoch little, and measuring one thread now and then would cost more)
    before = _engine._set_ensemble_clock_work(1e3)
    try:
        ens, curve = _epoch_by_epoch(2, 2)
    finally:
        _engine._set_ensemble_clock_work(before)
    assert ens._clock[4] == 14 and ens._clock[6] == 0
    one, one_curve = _epoch_by_epoch(1, 2)
    assert_array_equal(_all(ens), _all(one))
    assert_array_equal(curve, one_curve)


@pytest.mark.parametrize("layers, K, batch, groups", [
    ([8, 16, 1], 32, 16, 2),  # W3's 32 members: too little work to share out, but blocks of 16 x 16 x 32 elements
    ([8, 16, 1], 32, 8, 1),  # (8 x 16 x 32: SMALL_GROUP_BLOCK's 4,096 exactly)
    ([8, 16, 1], 1, 64, 1),
    ([6, 40, 1], 8, 16, 2),
    ([32, 64, 64, 1], 16, 32, 4),  # W2's 16: by their work, four groups of four
    ([40, 96, 64, 5], 10, 32, 4),  # (ten: of two and three)
    ([40, 96, 64, 5], 10, 16, 2),
    ([40, 96, 64, 5], 3, 16, 2),  # (one alone, two together: the one-member-group cases)
])
def test_members_split_into_groups_by_work_or_by_block(layers, K, batch, groups):
    of = _engine._ensemble_groups(np.array(layers, dtype=np.intp), np.zeros(len(layers) - 2, dtype=np.int32), K,
                                  batch)
    assert sorted(set(of)) == list(range(groups)) and of == sorted(of)  # (each group's members side by side)
    assert max(of.count(g) for g in range(groups)) - min(of.count(g) for g in range(groups)) <= 1


def test_member_is_a_copy_and_members_differ():
    ens = NetworkEnsemble([3, 4, 1], n_members=3, random_state=0)
    net = ens.member(1)
    before = _all(ens).copy()
    net.coefs_[0][...] = 7.0
    assert_array_equal(_all(ens), before)
    assert not np.array_equal(ens.member(0).coefs_[0], ens.member(1).coefs_[0])
    assert len(ens.members_) == 3 and len(set(ens.seeds_)) == 3
    # member k starts as the Network of its seed
    assert_array_equal(ens.member(2).coefs_[0], Network([3, 4, 1], random_state=ens.seeds_[2]).coefs_[0])


@pytest.mark.parametrize("n_threads", [None, 1, 2])
@pytest.mark.parametrize("sparse", [False, True])
def test_forward_is_each_members_own_forward(n_threads, sparse):
    # the members' outputs come from one call of the engine: each member's bits are its own forward's
    ens = NetworkEnsemble([5, 8, 6, 3], n_members=4, output_activation="softmax", loss="log_loss", random_state=0)
    X = np.random.default_rng(0).normal(size=(700, 5))
    X[X < 0.3] = 0
    if sparse:
        X = scipy.sparse.csr_matrix(X)
    out = ens.forward(X, n_threads=n_threads)
    assert out.shape == (4, 700, 3)
    for k in range(4):
        assert_array_equal(out[k], ens.member(k).forward(X, n_threads=n_threads))
    assert ens.forward(X[:1]).shape == (4, 1, 3)
    with pytest.raises(ValueError, match="X is empty"):
        ens.forward(X[:0])


def test_divergence_restores_the_epoch_start():
    X, Y = _data([4, 6, 2], None)
    ens = NetworkEnsemble([4, 6, 2], n_members=2, random_state=0, member_params=[{}, {"learning_rate": 1e30}])
    before = _all(ens).copy()
    with pytest.raises(ValueError, match="diverged in epoch 1"):
        ens.fit(X, Y * 1e30, epochs=2)
    assert_array_equal(_all(ens), before)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_members=0), ValueError, "n_members"),
    (dict(n_members=2.5), TypeError, "n_members"),
    (dict(n_members=2, member_params=[{}]), ValueError, "member_params"),
    (dict(n_members=1, member_params={"alpha": 1.0}), TypeError, "member_params"),
    (dict(n_members=1, member_params=[{"lr": 1.0}]), ValueError, r"member_params\[0\].*'lr'"),
    (dict(n_members=2, member_params=[{}, 3]), TypeError, r"member_params\[1\]"),
    (dict(n_members=1, member_params=[{"learning_rate": 0.0}]), ValueError, r"member_params\[0\]\['learning_rate'\]"),
    (dict(n_members=1, member_params=[{"alpha": -1.0}]), ValueError, r"member_params\[0\]\['alpha'\]"),
    (dict(n_members=1, member_params=[{"alpha": "x"}]), TypeError, r"member_params\[0\]\['alpha'\]"),
    (dict(n_members=1, member_params=[{"dropout": 1.5}]), ValueError, r"member_params\[0\].*dropout"),
    (dict(n_members=1, member_params=[{"random_state": -1}]), ValueError, r"member_params\[0\]\['random_state'\]"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        NetworkEnsemble([3, 4, 1], **kwargs)


def test_bad_fit_input_leaves_the_model_as_it_was():
    ens = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0)
    X, Y = _data([3, 4, 1], None)
    before = _all(ens).copy()
    with pytest.raises(ValueError, match="learning_rate"):
        ens.fit(X, Y, learning_rate=-1.0)
    with pytest.raises(ValueError, match="X"):
        ens.fit(X[:, :2], Y)
    with pytest.raises(ValueError, match="k must be"):
        ens.member(2)
    assert_array_equal(_all(ens), before)
    assert not hasattr(ens, "loss_curve_")


@pytest.mark.parametrize("name, value", [("n_members", 3), ("layer_sizes", (3, 5, 1)), ("dtype", np.float32),
                                         ("seeds_", [1, 2])])
def test_a_setting_fixed_at_construction_is_refused(name, value):
    # each was ignored, or broke the next call inside (n_members: a reshape of the keep probabilities)
    ens = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0)
    X, Y = _data([3, 4, 1], None)
    before = getattr(ens, name)
    with pytest.raises(AttributeError, match=rf"NetworkEnsemble\.{name} is fixed when the NetworkEnsemble is built"):
        setattr(ens, name, value)
    assert getattr(ens, name) == before
    ens.fit(X, Y, epochs=1)


@pytest.mark.parametrize("change, error, match", [
    (lambda p: p[0].update(alpha=-1.0), ValueError, r"member_params\[0\]\['alpha'\]"),  # trained before
    (lambda p: p[1].update(learning_rate=float("nan")), ValueError, r"member_params\[1\]\['learning_rate'\]"),
    (lambda p: p[0].update(alpha="x"), TypeError, r"member_params\[0\]\['alpha'\]"),
    (lambda p: p.pop(), ValueError, r"member_params must hold one dict per member"),
    (lambda p: p[0].update(dropout=0.5), ValueError, r"member_params\[0\]\['dropout'\].*constructor's"),
    (lambda p: p[1].update(dropout=1.5), ValueError, r"member_params\[1\].*dropout"),
    (lambda p: p[1].update(random_state=99), ValueError, r"member_params\[1\]\['random_state'\].*constructor's"),
])
def test_member_params_changed_after_construction_is_checked_by_fit(change, error, match):
    ens = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0,
                          member_params=[{"alpha": 0.1, "dropout": 0.2}, {"random_state": 5}])
    X, Y = _data([3, 4, 1], None)
    before = _all(ens).copy()
    change(ens.member_params)
    with pytest.raises(error, match=match):
        ens.fit(X, Y, epochs=1)
    assert_array_equal(_all(ens), before)
    assert not hasattr(ens, "loss_curve_")


def test_member_params_learning_rate_and_alpha_may_change_between_fits():
    X, Y = _data([3, 4, 1], None)
    changed = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0, member_params=[{"alpha": 0.1}, {}])
    changed.member_params[0]["alpha"] = 0.01  # in place
    changed.member_params[1] = {"learning_rate": 0.05, "dropout": 0.0}  # (the dropout it was built with)
    built = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0,
                            member_params=[{"alpha": 0.01}, {"learning_rate": 0.05}])
    changed.fit(X, Y, epochs=2)
    built.fit(X, Y, epochs=2)
    assert_array_equal(_all(changed), _all(built))
    changed.member_params = [{"alpha": 1.0}, {}]  # a new list
    built.member_params = [{"alpha": 1.0}, {}]
    changed.fit(X, Y, epochs=1)
    built.fit(X, Y, epochs=1)
    assert_array_equal(_all(changed), _all(built))


def test_pickle_round_trip_and_further_fit():
    import pickle

    X, Y = _data([4, 6, 2], None)
    ens = NetworkEnsemble([4, 6, 2], n_members=3, random_state=0, dropout=0.2).fit(X, Y, epochs=2)
    copy = pickle.loads(pickle.dumps(ens))
    assert_array_equal(copy.forward(X), ens.forward(X))
    # the generators travel too: both continue alike
    ens.fit(X, Y, epochs=1)
    copy.fit(X, Y, epochs=1)
    assert_array_equal(_all(copy), _all(ens))


def test_sparse_and_weighted_input():
    import scipy.sparse as sp

    X, Y = _data([4, 6, 2], None)
    X[X < 0.5] = 0
    w = np.linspace(0.0, 2.0, len(X))
    seeds = [{"random_state": 3}, {"random_state": 4}]
    dense = NetworkEnsemble([4, 6, 2], n_members=2, random_state=0, member_params=seeds)
    dense.fit(X, Y, epochs=2, batch_size=BATCH, sample_weight=w)
    sparse = NetworkEnsemble([4, 6, 2], n_members=2, random_state=0, member_params=seeds)
    sparse.fit(sp.csr_matrix(X), Y, epochs=2, batch_size=BATCH, sample_weight=w)
    assert_array_equal(_all(sparse), _all(dense))
    # (sparse rows go through the engine's sparse product, dense ones through BLAS: the same sums in another
    # order, equal to the last bit only where the BLAS kernel adds in the same order, as SkylakeX's here)
    assert_allclose(sparse.forward(sp.csr_matrix(X)), dense.forward(X), rtol=1e-12, atol=1e-15)
    # the weights weight each member's loss: a member equals its Network trained alone with them
    ref = Network([4, 6, 2], random_state=4)
    shuffle = np.random.default_rng(0)
    ref._rng = _Replay(ref._rng, [shuffle.permutation(N) for _ in range(2)])
    ref.fit(X, Y, epochs=2, batch_size=BATCH, sample_weight=w)
    for W_ref, W in zip(_params(ref), _params(dense.member(1))):
        assert_allclose(W, W_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("epochs", [1, 20])
def test_divergence_takes_each_member_back_as_its_network_alone(epochs):
    # test_divergence.py's case: sgd with Nesterov momentum at learning_rate 1 on unscaled iris diverges;
    # the failed epoch's start comes back, or the call's when that start already overflows the outputs.
    # Each member is taken back as its Network's fit would take it (the one that diverged; the other at
    # the start of that epoch, or at its last epoch when the end's check failed), and its row of the records
    # holds the epochs its weights come from
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    member_params = [{"random_state": 1, "learning_rate": 1e-4}, {"random_state": 2, "learning_rate": 1.0}]
    ens = NetworkEnsemble([4, 100, 1], n_members=2, activation="identity", random_state=0,
                          member_params=member_params)
    refs = [Network([4, 100, 1], activation="identity", random_state=own["random_state"]) for own in member_params]
    ens.fit(X, y, epochs=1, batch_size=200, shuffle=False)
    for ref, own in zip(refs, member_params):
        ref.fit(X, y, epochs=1, batch_size=200, shuffle=False, learning_rate=own["learning_rate"])
    args = dict(epochs=epochs, batch_size=200, momentum=0.9, nesterov=True, shuffle=False,
                validation_data=(X[:20], y[:20]))
    y_big = y * 10.0 ** (153 if epochs == 1 else 0)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=r"diverged in epoch (\d+)") as info:
        ens.fit(X, y_big, **args)
    message = str(info.value)
    failed = int(message.split("diverged in epoch ")[1].split(":")[0])
    # a member that does not diverge stops where the pass stopped: at the start of the failed epoch, or after
    # its last epoch when the end's check failed
    stopped = epochs if "overflow" in message else failed - 1
    errors = []
    for k, own in enumerate(member_params):
        alone = copy.deepcopy(refs[k])
        with np.errstate(all="ignore"):
            try:
                alone.fit(X, y_big, learning_rate=own["learning_rate"], **args)
            except ValueError as exc:
                errors.append(str(exc))
                refs[k] = alone
                continue
        refs[k].fit(X, y_big, learning_rate=own["learning_rate"], **dict(args, epochs=stopped))
    assert errors and message == errors[0]  # the first member's to diverge
    if epochs == 1:  # the outputs overflow after the last update: the end-of-fit check rolls it back
        assert "overflow" in message
    assert np.isfinite(ens.forward(X)).all()
    for k, ref in enumerate(refs):
        n = len(ref.loss_curve_)
        assert ens.n_epochs_[k] == n
        assert_allclose(ens._members[k]._params, ref._params, rtol=1e-6)
        assert_allclose(ens.loss_curve_[k, :n], ref.loss_curve_, rtol=1e-6)
        assert_allclose(ens.validation_loss_curve_[k, :n], ref.validation_loss_curve_, rtol=1e-6)
        assert np.isnan(ens.loss_curve_[k, n:]).all() and np.isnan(ens.validation_loss_curve_[k, n:]).all()
        assert np.isnan(ens.grad_norms_[k, n:]).all() and np.isfinite(ens.grad_norms_[k, :n]).all()
    assert ens.loss_curve_.shape[1] == max(ens.n_epochs_)


def test_seeds_cannot_be_changed_in_place():
    # found by probing: seeds_.append(7) passed (a list), and the file save wrote was refused by load
    ens = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0)
    assert isinstance(ens.seeds_, tuple)
    with pytest.raises(AttributeError):
        ens.seeds_.append(7)
    assert isinstance(pickle.loads(pickle.dumps(ens)).seeds_, tuple)


def test_a_schedules_rates_are_checked_in_the_one_pass():
    # the one pass took a schedule's rates per batch unchecked (a user's schedule may give any): a Network's
    # epoch refuses negative, NaN or too many rates, and so does the pass now, leaving the members as they were
    class Bad:
        def __init__(self, rates):
            self.rates = rates

        def start(self, base_rate, max_epochs):
            bad = self

            class Run:
                def epoch_rates(self, epoch, n_batches):
                    return np.asarray(bad.rates(n_batches), dtype=np.float64)

                def step(self, *args, **kwargs):
                    pass

            return Run()

    rng = np.random.default_rng(0)
    X, Y = rng.random((50, 3)), rng.random((50, 1))
    for rates, match in ((lambda n: np.full(n, -0.01), "finite and >= 0"), (lambda n: np.full(n, np.nan), "finite"),
                         (lambda n: np.full(n + 3, 0.01), "one rate per batch")):
        with pytest.raises(ValueError, match=match):
            Network([3, 4, 1], random_state=0).fit(X, Y, epochs=2, batch_size=16, lr_schedule=Bad(rates))
        ens = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0)
        before = ens.forward(X)
        with pytest.raises(ValueError, match=match):
            ens.fit(X, Y, epochs=2, batch_size=16, lr_schedule=Bad(rates))
        assert_array_equal(ens.forward(X), before)


def test_save_checks_member_params_and_the_configuration_is_fixed(tmp_path):
    # found by probing: member_params edited after the fit saved a file load refused (over a good one), None
    # made save fail inside persistence, and activation, loss, dropout... could be assigned and were ignored
    rng = np.random.default_rng(0)
    X, Y = rng.random((30, 3)), rng.random((30, 1))
    ens = NetworkEnsemble([3, 4, 1], n_members=2, activation="tanh", dropout=0.1, random_state=0).fit(X, Y, epochs=1)
    path = tmp_path / "ens.fastmlp"
    ens.save(path)
    good = path.read_bytes()
    for bad, error in (({"learning_rate": -1.0}, ValueError), ({"foo": 1}, ValueError), ({"dropout": 0.5}, ValueError),
                       ({"random_state": 7}, ValueError), ({"learning_rate": "a"}, TypeError)):
        ens.member_params[0] = bad
        with pytest.raises(error, match=r"member_params\[0\]"):
            ens.save(path)
        assert path.read_bytes() == good  # the file as it was
    ens.member_params = None
    ens.save(path)
    assert fastmlp.load(path).member_params == [{}, {}]
    for name, value in (("activation", "relu"), ("loss", "poisson"), ("dropout", 0.5), ("loss_param", 1.0),
                        ("output_activation", "exp"), ("init", "he_uniform")):
        with pytest.raises(AttributeError, match=f"NetworkEnsemble.{name} is fixed"):
            setattr(ens, name, value)
    assert (ens.activation, ens.loss, ens.dropout) == ("tanh", "squared_error", (0.1,))
    loaded = fastmlp.load(path)
    assert (loaded.activation, loaded.dropout) == ("tanh", (0.1,))
    copied = pickle.loads(pickle.dumps(ens))
    assert copied.activation == "tanh"
    with pytest.raises(TypeError, match=r"member_params\[1\]\['random_state'\] must be a non-negative int"):
        NetworkEnsemble([3, 4, 1], n_members=2, member_params=[{}, {"random_state": "3"}])
    with pytest.raises(ValueError, match=r"member_params\[1\]\['random_state'\] must be a non-negative int"):
        NetworkEnsemble([3, 4, 1], n_members=2, member_params=[{}, {"random_state": -3}])


def test_ctrl_c_while_the_members_are_packed_leaves_them_as_they_were(monkeypatch):
    # found by probing: the pack was handed to the pass's clean-up before it held the members, and an
    # interrupt while it was filled gave every member the pack's uninitialised memory (weights of 1e276)
    from fastmlp import ensemble

    rng = np.random.default_rng(0)
    X, Y = rng.random((60, 3)), rng.random((60, 1))
    ens = NetworkEnsemble([3, 4, 1], n_members=3, random_state=0)
    before = [ens.member(k)._params.copy() for k in range(3)]
    original, calls = ensemble.MemberPack.pack, [0]

    def pack(self, flats, to=None):
        calls[0] += 1
        if calls[0] == 1:  # (nothing packed yet)
            raise KeyboardInterrupt
        return original(self, flats, to)

    monkeypatch.setattr(ensemble.MemberPack, "pack", pack)
    with pytest.raises(KeyboardInterrupt):
        ens.fit(X, Y, epochs=3, optimizer="adam")
    monkeypatch.undo()
    for k in range(3):
        np.testing.assert_array_equal(ens.member(k)._params, before[k])
    ens.fit(X, Y, epochs=2, optimizer="adam")
    assert np.isfinite(ens.forward(X)).all()
