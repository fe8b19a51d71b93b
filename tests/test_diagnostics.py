"""Training diagnostics: verbose output, the progress line, the dead-unit report, PReLU in use."""
import io
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastmlp
from fastmlp import _engine, reference
from fastmlp._progress import EpochReporter

NETWORKS = [fastmlp.Network, reference.Network]


def _data(n=120, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, (X[:, :1] - X[:, 1:2] > 0).astype(float)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("Net", NETWORKS)
def test_verbose_prints_one_line_per_epoch(Net, capsys):
    X, y = _data()
    net = Net([5, 6, 4, 1], output_activation="logistic", loss="log_loss", random_state=0)
    net.fit(X, y, epochs=3, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3  # captured output is not a terminal: plain lines only
    for k, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {k}/3, loss = ")
        assert f"{net.loss_curve_[k - 1]:.8f}" in line
        low, high = net.grad_norms_[k - 1].min(), net.grad_norms_[k - 1].max()
        assert f"|dW| {low:.2e}..{high:.2e}" in line
        assert " s  " in line and line.endswith("samples/s")
        assert "\r" not in line


def test_quiet_fit_prints_nothing(capsys):
    X, y = _data()
    fastmlp.Network([5, 3, 1]).fit(X, y, epochs=2)
    assert capsys.readouterr().out == ""


def test_progress_line_updates_in_place_on_a_terminal():
    stream = _Terminal()
    reporter = EpochReporter(4, stream=stream)
    for k in range(1, 5):
        reporter.epoch(k, 1.0 / k, [0.5, 2.0], 0.25, 1000)
    reporter.close()
    text = stream.getvalue()
    # each epoch: clear the line, the epoch's line, then the progress bar without a newline
    assert text.count("\r\x1b[K") == 5
    assert text.count("\n") == 4
    assert "[" + "#" * 15 + "." * 15 + "] 2/4" in text
    assert text.endswith("\r\x1b[K")  # the progress line is cleared at the end
    assert "epoch 4/4, loss = 0.25000000" in text


def test_estimator_verbose_lines(capsys):
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fastmlp.MLPClassifier((4,), max_iter=2, verbose=True, random_state=0).fit(X, y.ravel())
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1/2", "Iteration 2/2"]
    assert all("|dW|" in line and "samples/s" in line for line in lines)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu"])
@pytest.mark.parametrize("Net", NETWORKS)
def test_dead_units_on_a_net_built_to_have_them(Net, activation):
    X, y = _data(200)
    net = Net([5, 20, 10, 1], activation=activation, random_state=0)
    net.intercepts_[0][:5] = -50.0  # five of the first layer's 20 units can never switch on
    net.coefs_[1][:5, :] = 0  # (and their leak, for leaky_relu and prelu, reaches no one)
    net.coefs_[1][:, :3] = 0
    net.intercepts_[1][:3] = -1.0  # and three of the second layer's 10
    net.fit(X, y, epochs=2, learning_rate=1e-3)
    assert net.dead_units_ == [0.25, 0.3]
    assert "dead units (last epoch): layer 1 25%, layer 2 30%" in net.summary()


@pytest.mark.parametrize("activation", ["tanh", "logistic", "swish", "identity"])
def test_no_dead_unit_report_outside_the_relu_family(activation):
    X, y = _data()
    net = fastmlp.Network([5, 4, 1], activation=activation).fit(X, y, epochs=1)
    assert net.dead_units_ is None
    assert "dead units" not in net.summary()


def test_engine_and_reference_agree_on_dead_units():
    X, y = _data(300, seed=3)
    reports = []
    for Net in NETWORKS:
        net = Net([5, 30, 1], random_state=4)
        net.intercepts_[0][::3] = -2.0
        net.fit(X, y, epochs=3, shuffle=False)
        reports.append(net.dead_units_)
    assert reports[0] == reports[1]
    assert 0 < reports[0][0] < 1


def test_estimator_with_prelu_trains_its_slopes():
    X, y = _data(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = fastmlp.MLPClassifier((8, 6), activation="prelu", max_iter=300, learning_rate_init=0.01,
                                    random_state=0).fit(X, y.ravel())
    slopes = clf.prelu_slopes_
    assert [s.shape for s in slopes] == [(8,), (6,)]
    assert not np.allclose(np.concatenate(slopes), 0.25)  # trained away from their start
    assert clf._network.n_params_ == 5 * 8 + 8 + 8 * 6 + 6 + 6 * 1 + 1 + 8 + 6
    assert clf.score(X, y.ravel()) > 0.9
    assert isinstance(clf.dead_units_, list) and len(clf.dead_units_) == 2


def test_engine_refuses_unit_maxima_of_another_length(monkeypatch):
    # the engine merges its parts' maxima into every element of unit_max: one of another length is refused
    # before any batch, and the network keeps its weights
    train_epoch = fastmlp.network._engine.train_epoch

    def short_unit_max(*args):
        args = list(args)
        args[14] = args[14][:-1]
        return train_epoch(*args)

    monkeypatch.setattr(fastmlp.network._engine, "train_epoch", short_unit_max)
    X, y = _data(50)
    net = fastmlp.Network([5, 6, 1], random_state=0)
    before = net._params.copy()
    with pytest.raises(ValueError, match="unit_max has 5 elements for 6 hidden units"):
        net.fit(X, y, epochs=1)
    assert_array_equal(net._params, before)


@pytest.mark.parametrize("position, cut, message", [
    (8, 1, "params and grads have"),  # params
    (10, 1, "the optimizer's state has"),  # state_1
    (12, 1, "work has"),  # work
    (19, 1, r"unit_max has 5 elements for 2 members of 3 hidden units"),  # unit_max
])
def test_ensemble_engine_refuses_arrays_of_other_sizes(monkeypatch, position, cut, message):
    # the ensemble's batches write every element of the layout, the workspace and the units' maxima: a shorter
    # array is refused before any batch, and every member keeps its weights
    train = _engine.train_ensemble_epoch

    def shorter(*args):
        args = list(args)
        args[position] = args[position][:-cut]
        return train(*args)

    monkeypatch.setattr(_engine, "train_ensemble_epoch", shorter)
    X, y = _data(50)
    ens = fastmlp.NetworkEnsemble([5, 3, 1], n_members=2, random_state=0)
    before = [m._params.copy() for m in ens.members_]
    with pytest.raises(ValueError, match=message):
        ens.fit(X, y, epochs=1, optimizer="adam")
    for m, b in zip(ens.members_, before):
        assert_array_equal(m._params, b)
