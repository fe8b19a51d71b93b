"""fastmlp.plot: loss curves and per-layer gradient norms, drawn without a display."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import same_color  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fastmlp import MLPClassifier, MLPRegressor, Network, reference  # noqa: E402
from fastmlp.plot import plot_gradient_norms, plot_learning_rate, plot_loss_curve  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)
    return X, y


def _fitted_network(cls, data, layer_sizes=(4, 6, 5, 1), epochs=7):
    X, y = data
    net = cls(list(layer_sizes), activation="tanh", output_activation="logistic", loss="log_loss",
              random_state=0)
    return net.fit(X, y.astype(np.float64), epochs=epochs, batch_size=16, learning_rate=0.1)


def _classifier(data, **params):
    X, y = data
    clf = MLPClassifier(hidden_layer_sizes=(8, 8), max_iter=15, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y)


def _regressor(data, **params):
    X, y = data
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=12, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return reg.fit(X, X[:, 0] - y)


@pytest.fixture(scope="module")
def models(data):
    """One fitted model of each kind (the plots only read them)."""
    return {
        "Network": _fitted_network(Network, data),
        "reference.Network": _fitted_network(reference.Network, data),
        "MLPClassifier": _classifier(data),
        "MLPRegressor": _regressor(data),
        "MLPClassifier-lbfgs": _classifier(data, solver="lbfgs"),
    }


# ----------------------------------------------------------- gradient norms


@pytest.mark.parametrize("name", ["Network", "reference.Network", "MLPClassifier", "MLPRegressor",
                                  "MLPClassifier-lbfgs"])
def test_gradient_norms_one_line_per_layer_on_log_scale(models, name):
    model = models[name]
    norms = np.asarray(model.grad_norms_)
    n_epochs, n_layers = norms.shape
    ax = plot_gradient_norms(model)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == n_layers
    assert [line.get_label() for line in ax.lines] == [f"layer {l}" for l in range(1, n_layers + 1)]
    for l, line in enumerate(ax.lines):  # each line is that layer's column, against epochs 1..n
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, n_epochs + 1))
        np.testing.assert_array_equal(line.get_ydata(), norms[:, l])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"layer {l}" for l in range(1, n_layers + 1)]


def test_gradient_norms_ten_layers_distinct_colors(data):
    X, y = data
    net = Network([4] + [5] * 9 + [1], activation="logistic", output_activation="logistic", loss="log_loss",
                  init="glorot_uniform", random_state=0).fit(X, y.astype(float), epochs=3, learning_rate=0.1)
    ax = plot_gradient_norms(net)
    assert len(ax.lines) == 10 == net.n_layers_
    colors = [line.get_color() for line in ax.lines]
    assert not any(same_color(a, b) for i, a in enumerate(colors) for b in colors[i + 1:])
    # the sigmoid stack's vanishing gradient: layer 1's line is far below layer 10's
    assert ax.lines[0].get_ydata()[0] < 1e-2 * ax.lines[-1].get_ydata()[0]


def test_gradient_norms_single_epoch_is_visible(data):
    net = _fitted_network(Network, data, epochs=1)
    ax = plot_gradient_norms(net)
    assert len(ax.lines) == 3
    assert all(line.get_marker() == "o" for line in ax.lines)


def test_gradient_norms_draws_on_given_axes(data):
    net = _fitted_network(Network, data)
    fig, (left, right) = plt.subplots(1, 2)
    out = plot_gradient_norms(net, ax=right)
    assert out is right
    assert len(right.lines) == net.n_layers_ and len(left.lines) == 0
    assert len(fig.axes) == 2


# --------------------------------------------------------------- loss curve


@pytest.mark.parametrize("name", ["Network", "reference.Network", "MLPClassifier", "MLPRegressor",
                                  "MLPClassifier-lbfgs"])
def test_loss_curve_has_the_loss_line(models, name):
    model = models[name]
    ax = plot_loss_curve(model)
    assert len(ax.lines) == 1
    line = ax.lines[0]
    assert line.get_label() == "training loss"
    np.testing.assert_array_equal(line.get_ydata(), model.loss_curve_)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(model.loss_curve_) + 1))
    assert len(ax.figure.axes) == 1  # no validation axis without early stopping
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training loss"]


@pytest.mark.parametrize("make, what, scoring", [(_classifier, "accuracy", None), (_regressor, "R^2", None),
                                                 (_classifier, "neg_log_loss", "neg_log_loss"),
                                                 (_regressor, "minus the loss", "loss")])
def test_loss_curve_with_early_stopping_adds_validation_line(data, make, what, scoring):
    # (the score named by its scoring: found by probing, a classifier's neg_log_loss was labelled accuracy)
    model = make(data, early_stopping=True, validation_fraction=0.25, scoring=scoring)
    assert len(model.validation_scores_) == len(model.loss_curve_) > 0
    ax = plot_loss_curve(model)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), model.loss_curve_)
    twins = [a for a in ax.figure.axes if a is not ax]
    assert len(twins) == 1
    twin = twins[0]
    assert twin.bbox.bounds == ax.bbox.bounds  # a secondary y axis over the same plot
    scores = [line for line in twin.lines if line.get_label().startswith("validation score")]
    assert len(scores) == 1
    np.testing.assert_array_equal(scores[0].get_ydata(), model.validation_scores_)
    assert twin.get_ylabel() == f"validation score ({what})"
    # the dotted line at the best score (the weights early stopping kept) is in the legend too
    (best,) = [line for line in twin.lines if line.get_linestyle() == ":"]
    np.testing.assert_array_equal(best.get_ydata(), [model.best_validation_score_] * 2)
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), model.validation_loss_curve_)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["training loss", "validation loss", f"validation score ({what})",
                      f"best validation score ({model.best_validation_score_:.3g})"]
    assert len(legend) == len(ax.lines) + len(twin.lines)  # every line drawn is in the legend


def test_loss_curve_draws_on_given_axes(data):
    net = _fitted_network(Network, data)
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_loss_curve(net, ax=left) is left
    assert len(left.lines) == 1 and len(right.lines) == 0
    clf = _classifier(data, early_stopping=True, validation_fraction=0.25)
    assert plot_loss_curve(clf, ax=right) is right
    assert len(right.lines) == 2 and len(fig.axes) == 3  # right (both losses) and its validation twin


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("make", [
    lambda: Network([3, 4, 1]),
    lambda: reference.Network([3, 4, 1]),
    lambda: MLPClassifier(),
    lambda: MLPRegressor(),
], ids=["Network", "reference.Network", "MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("plot, attribute", [(plot_loss_curve, "loss_curve_"),
                                             (plot_gradient_norms, "grad_norms_")])
def test_unfitted_model_raises_naming_the_attribute(make, plot, attribute):
    model = make()
    with pytest.raises(ValueError, match=attribute):
        plot(model)
    assert plt.get_fignums() == []  # no empty figure left behind


def test_gradient_norms_of_wrong_shape_raise(data):
    net = _fitted_network(Network, data)
    net.grad_norms_ = net.grad_norms_.ravel()
    with pytest.raises(ValueError, match=r"grad_norms_ must have shape \(n_epochs, n_layers\)"):
        plot_gradient_norms(net)


# ----------------------------------------------------- saving, no display


def test_figures_save_without_a_display(data, tmp_path):
    assert matplotlib.get_backend().lower() == "agg"
    clf = _classifier(data, early_stopping=True, validation_fraction=0.25)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    plot_loss_curve(clf, ax=left)
    plot_gradient_norms(clf, ax=right)
    for suffix in ("png", "svg"):
        path = tmp_path / f"training.{suffix}"
        fig.savefig(path)
        assert path.stat().st_size > 1000
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = plot_gradient_norms(_fitted_network(Network, data))  # a figure of its own
    ax.figure.savefig(tmp_path / "own.png")
    assert (tmp_path / "own.png").stat().st_size > 1000


# ---------------------------------------------------------- import isolation


def test_import_fastmlp_does_not_import_matplotlib():
    code = ("import fastmlp, fastmlp.reference, fastmlp.network, fastmlp.estimators, sys; "
            "assert 'matplotlib' not in sys.modules, sorted(m for m in sys.modules if 'matplotlib' in m); "
            "import fastmlp.plot; assert 'matplotlib' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------- learning rate


def test_network_validation_loss_is_drawn_beside_the_training_loss(data):
    X, Y = np.random.default_rng(0).standard_normal((40, 3)), np.random.default_rng(1).standard_normal((40, 1))
    net = Network([3, 4, 1], random_state=0).fit(X[:30], Y[:30], epochs=4, validation_data=(X[30:], Y[30:]))
    ax = plot_loss_curve(net)
    assert [line.get_label() for line in ax.lines] == ["training loss", "validation loss"]
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), net.validation_loss_curve_)
    assert len(ax.figure.axes) == 1  # no score axis: a Network has no validation_scores_


def test_learning_rate_plot_shows_the_schedule(data):
    from fastmlp.schedules import ExponentialDecay

    X, y = data
    clf = MLPClassifier(hidden_layer_sizes=(4,), learning_rate=ExponentialDecay(gamma=0.1), max_iter=4,
                        random_state=0).fit(X, y)
    ax = plot_learning_rate(clf)
    (line,) = ax.lines
    assert line.get_label() == "learning rate"
    np.testing.assert_array_equal(line.get_ydata(), clf.history_["learning_rate"])
    assert ax.get_yscale() == "log"  # 0.001 down to 1e-6
    flat = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    assert plot_learning_rate(flat).get_yscale() == "linear"
    with pytest.raises(ValueError, match="L-BFGS"):
        plot_learning_rate(MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=3).fit(X, y))
    with pytest.raises(ValueError, match="history_"):
        plot_learning_rate(MLPClassifier())


def test_an_ensembles_loss_curve_is_one_line_per_member():
    # an ensemble's loss_curve_ holds a curve per member: drawn as one array it plotted epochs against members
    from fastmlp import MLPEnsembleRegressor, NetworkEnsemble

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    ens = NetworkEnsemble([3, 4, 1], n_members=3, random_state=0).fit(X[:30], y[:30], epochs=5,
                                                                        validation_data=(X[30:], y[30:]))
    ax = plot_loss_curve(ens)
    assert len(ax.lines) == 6
    for k in range(3):
        np.testing.assert_array_equal(ax.lines[2 * k].get_xdata(), np.arange(1, 6))
        np.testing.assert_array_equal(ax.lines[2 * k].get_ydata(), ens.loss_curve_[k])
        np.testing.assert_array_equal(ax.lines[2 * k + 1].get_ydata(), ens.validation_loss_curve_[k])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training loss (each member)",
                                                                   "validation loss (each member)"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPEnsembleRegressor(hidden_layer_sizes=(4,), n_members=2, max_iter=4, random_state=0).fit(X, y)
    ax = plot_loss_curve(est)
    assert len(ax.lines) == 2
    for line, member in zip(ax.lines, est.estimators_):
        np.testing.assert_array_equal(line.get_ydata(), member.loss_curve_)
    for plot in (plot_gradient_norms, plot_learning_rate):  # one network's record: a member's
        with pytest.raises(ValueError, match=r"ensemble: plot a member, .*\(model.estimators_\[k\]\)"):
            plot(est)
        with pytest.raises(ValueError, match="is an ensemble"):
            plot(ens)
        plot(est.estimators_[1])
    with pytest.raises(ValueError, match="has no loss_curve_: fit the model"):
        plot_loss_curve(MLPEnsembleRegressor())


def test_one_epoch_draws_points_and_a_bad_ax_is_named():
    import fastmlp

    # found by probing: after a fit of one epoch plot_loss_curve drew lines of one point, invisible (a legend
    # over empty axes); ax="..." or a Figure raised "'str' object has no attribute 'plot'"
    import matplotlib.pyplot as plt

    from fastmlp.plot import plot_gradient_norms, plot_learning_rate, plot_loss_curve

    rng = np.random.default_rng(0)
    X, Y = rng.random((40, 3)), rng.random((40, 1))
    net = fastmlp.Network([3, 4, 1], random_state=0).fit(X, Y, epochs=1, validation_data=(X[:10], Y[:10]))
    ax = plot_loss_curve(net)
    assert all(line.get_marker() == "o" for line in ax.lines)
    ens = fastmlp.NetworkEnsemble([3, 4, 1], n_members=2, random_state=0).fit(X, Y, epochs=1)
    ax = plot_loss_curve(ens)
    assert all(line.get_marker() == "o" for line in ax.lines)
    net.fit(X, Y, epochs=3)
    assert all(line.get_marker() in (None, "None") for line in plot_loss_curve(net).lines)
    fig = plt.figure()
    for plot in (plot_loss_curve, plot_learning_rate, plot_gradient_norms):
        for bad in ("axes", fig):
            with pytest.raises(TypeError, match="ax must be a matplotlib Axes or None"):
                plot(net, ax=bad)
    plt.close("all")


def test_gradient_norms_that_are_all_zero_are_said_so_without_a_warning():
    # found by probing: a network whose units are all dead drew empty log axes and matplotlib warned twice
    from fastmlp.plot import plot_gradient_norms

    net = Network([3, 4, 1], random_state=0)
    net.grad_norms_ = np.zeros((3, 2))  # (as a fit with every unit dead records them)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plot_gradient_norms(net)
    assert ax.get_yscale() == "linear" and "zero" in ax.texts[0].get_text()
    plt.close("all")
