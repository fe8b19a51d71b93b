"""The training loop's features: history_, a validation set given by the user, scoring, early stopping on it."""
import warnings

import numpy as np
import pytest
import scipy.sparse
import sklearn
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, Network

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

HISTORY = ["loss", "learning_rate", "seconds"]
VALIDATED = HISTORY + ["val_loss", "val_score"]


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0)
    return X[:200], y[:200], X[200:], y[200:]


def _equal_lengths(history, n):
    assert all(len(v) == n for v in history.values()), {k: len(v) for k, v in history.items()}


# ----------------------------------------------------------------- history_

@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_estimator_history_has_one_entry_per_epoch(data, solver):
    X, y, _, _ = data
    clf = MLPClassifier(hidden_layer_sizes=(10,), solver=solver, max_iter=7, random_state=0).fit(X, y)
    assert list(clf.history_) == HISTORY
    _equal_lengths(clf.history_, len(clf.loss_curve_))
    assert clf.history_["loss"] == clf.loss_curve_
    assert all(s >= 0 for s in clf.history_["seconds"])
    rates = np.array(clf.history_["learning_rate"])
    if solver == "lbfgs":
        assert np.isnan(rates).all()
    else:
        assert (rates == clf.learning_rate_init).all()
    assert not hasattr(clf, "validation_loss_curve_")


def test_invscaling_rates_are_recorded(data):
    X, y, _, _ = data
    clf = MLPClassifier(hidden_layer_sizes=(10,), solver="sgd", learning_rate="invscaling", power_t=0.5,
                        learning_rate_init=0.1, max_iter=4, random_state=0).fit(X, y)
    expected = [0.1] + [0.1 / (len(X) * k + 1) ** 0.5 for k in range(1, 4)]
    np.testing.assert_allclose(clf.history_["learning_rate"], expected, rtol=1e-15)


def test_partial_fit_and_warm_start_extend_the_history(data):
    X, y, X_val, y_val = data
    clf = MLPClassifier(hidden_layer_sizes=(10,), random_state=0)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
    _equal_lengths(clf.history_, 3)
    clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, warm_start=True, random_state=0).fit(X, y)
    clf.fit(X, y, X_val=X_val, y_val=y_val)  # validation from the second call on: NaN before it
    _equal_lengths(clf.history_, 6)
    assert np.isnan(clf.history_["val_loss"][:3]).all() and np.isfinite(clf.history_["val_loss"][3:]).all()


def test_loss_curves_follow_the_history_over_partial_fit_calls_and_refits(data):
    # the curves are extended call by call (not copied whole); they must stay equal to the history,
    # copies of it, and start over with a new fit
    X, y, X_val, y_val = data
    clf = MLPClassifier(hidden_layer_sizes=(10,), random_state=0)
    for calls in range(1, 6):
        clf.partial_fit(X, y, classes=np.unique(y))
        assert clf.loss_curve_ == clf.history_["loss"] and len(clf.loss_curve_) == calls
    assert clf.loss_curve_ is not clf.history_["loss"]
    clf.loss_curve_.append(0.0)  # a user's change is not the history's
    clf.partial_fit(X, y)
    assert clf.loss_curve_ == clf.history_["loss"] and len(clf.loss_curve_) == 6
    clf.set_params(max_iter=2).fit(X, y, X_val=X_val, y_val=y_val)
    assert clf.loss_curve_ == clf.history_["loss"] and len(clf.loss_curve_) == 2
    assert clf.validation_loss_curve_ == clf.history_["val_loss"]


def test_grad_norms_grow_call_by_call_and_no_earlier_row_changes(data):
    # grad_norms_ over a stream of partial_fit calls (past its buffer's first sizes): each call adds its
    # epoch's row and leaves the earlier ones as they were; pickling, refitting and an array of the
    # user's set as grad_norms_ all start a record of their own (the user's array is never written)
    import pickle
    X, y, _, _ = data
    clf = MLPClassifier(hidden_layer_sizes=(10, 5), random_state=0)
    rows = []
    for calls in range(1, 41):
        clf.partial_fit(X, y, classes=np.unique(y))
        assert clf.grad_norms_.shape == (calls, 3) and clf.grad_norms_.dtype == np.float64
        assert np.array_equal(clf.grad_norms_[:-1], np.array(rows).reshape(-1, 3))
        rows.append(clf.grad_norms_[-1].copy())
        if calls == 20:
            copy = pickle.loads(pickle.dumps(clf))
    for _ in range(20):
        copy.partial_fit(X, y)
    assert np.array_equal(copy.grad_norms_, clf.grad_norms_)
    assert np.all(np.isfinite(clf.grad_norms_)) and np.all(clf.grad_norms_ > 0)
    mine = np.zeros((100, 3))
    mine[:40] = clf.grad_norms_
    clf.grad_norms_ = mine[:40]
    clf.partial_fit(X, y)
    assert clf.grad_norms_.shape == (41, 3) and not mine[40:].any()
    assert np.array_equal(clf.grad_norms_[:40], np.array(rows))
    clf.set_params(max_iter=3).fit(X, y)
    assert clf.grad_norms_.shape == (3, 3)


# ------------------------------------------------------- X_val, y_val, scoring

def test_given_validation_set_is_recorded_without_early_stopping(data):
    X, y, X_val, y_val = data
    clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0).fit(X, y, X_val=X_val, y_val=y_val)
    assert list(clf.history_) == VALIDATED
    _equal_lengths(clf.history_, 5)
    assert clf.validation_loss_curve_ == clf.history_["val_loss"]
    assert clf.validation_scores_ is None  # scikit-learn's: early stopping's only
    # the last epoch's record is the model's own loss and accuracy on the given set
    P = clf.predict_proba(X_val)
    loss = -np.mean(np.log(P[np.arange(len(y_val)), y_val]))
    assert clf.history_["val_loss"][-1] == pytest.approx(loss, rel=1e-12)
    assert clf.history_["val_score"][-1] == clf.score(X_val, y_val)
    # the data trained on is X alone: the same weights as without a validation set
    plain = MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0).fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(clf.coefs_, plain.coefs_))


def test_x_val_early_stopping_picks_the_epoch_with_the_best_given_set_score(data):
    X, y, X_val, y_val = data
    params = dict(hidden_layer_sizes=(16,), solver="adam", learning_rate_init=0.05, random_state=3)
    clf = MLPClassifier(early_stopping=True, n_iter_no_change=5, max_iter=200, scoring="loss", **params)
    clf.fit(X, y, X_val=X_val, y_val=y_val)
    scores = clf.validation_scores_
    best = int(np.argmax(scores))
    assert best < len(scores) - 1  # it trained past its best epoch, and went back to it
    assert clf.best_validation_score_ == scores[best]
    assert clf.history_["val_score"] == scores
    # no split was made: the best epoch's weights are those of a plain fit of best + 1 epochs
    plain = MLPClassifier(max_iter=best + 1, **params).fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(clf.coefs_, plain.coefs_))
    assert -clf.history_["val_loss"][best] == scores[best]


def test_scoring_names_and_callables(data):
    X, y, X_val, y_val = data
    kw = dict(hidden_layer_sizes=(10,), max_iter=4, random_state=0, early_stopping=True)
    named = MLPClassifier(scoring="neg_log_loss", **kw).fit(X, y, X_val=X_val, y_val=y_val)
    by_loss = MLPClassifier(scoring="loss", **kw).fit(X, y, X_val=X_val, y_val=y_val)
    np.testing.assert_allclose(named.validation_scores_, by_loss.validation_scores_, rtol=1e-9)
    calls = []

    def scorer(est, X_, y_):
        calls.append(len(y_))
        return -abs(est.predict(X_) - y_).mean()

    MLPClassifier(scoring=scorer, **kw).fit(X, y, X_val=X_val, y_val=y_val)
    assert calls == [len(y_val)] * 4


def test_regressor_validation_set_and_sample_weight_val():
    X, y = make_regression(n_samples=160, n_features=5, noise=0.1, random_state=0)
    y = y / y.std()
    w = np.random.default_rng(0).uniform(0.5, 2.0, 60)
    reg = MLPRegressor(hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    reg.fit(X[:100], y[:100], X_val=X[100:], y_val=y[100:], sample_weight_val=w)
    pred = reg.predict(X[100:])
    assert reg.history_["val_loss"][-1] == pytest.approx(np.average(0.5 * (pred - y[100:]) ** 2, weights=w))
    assert reg.history_["val_score"][-1] == pytest.approx(reg.score(X[100:], y[100:], sample_weight=w))


@pytest.mark.parametrize("kwargs, match", [
    ({"X_val": np.zeros((3, 8))}, "y_val was not provided"),
    ({"y_val": [0, 1, 2]}, "X_val was not provided"),
    ({"sample_weight_val": [1.0]}, "X_val and y_val were not"),
    ({"X_val": np.zeros((3, 7)), "y_val": [0, 1, 2]}, "features"),
    ({"X_val": np.zeros((3, 8)), "y_val": [0, 1, 7]}, "y_val has classes"),
    ({"X_val": np.zeros((3, 8)), "y_val": [0, 1]}, "y_val"),
    ({"X_val": np.full((3, 8), np.nan), "y_val": [0, 1, 2]}, "NaN"),
])
def test_bad_validation_set_raises(data, kwargs, match):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=match):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y, **kwargs)


def test_bad_scoring_raises(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="scoring"):
        MLPClassifier(scoring="no_such_score").fit(X, y)


def test_pipeline_transforms_x_val_through_metadata_routing(data):
    X, y, X_val, y_val = data
    scale = 1000.0
    with sklearn.config_context(enable_metadata_routing=True):
        clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0)
        clf.set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", clf)], transform_input=["X_val"])
        pipe.fit(X * scale, y, X_val=X_val * scale, y_val=y_val)
    mlp = pipe.named_steps["mlp"]
    # the score recorded is that of the scaled X_val, as the pipeline predicts it
    assert mlp.history_["val_score"][-1] == pipe.score(X_val * scale, y_val)


# ------------------------------------------------------------ Network.fit

def _net_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    Y = np.tanh(X @ rng.standard_normal((4, 2)))
    return X[:80], Y[:80], X[80:], Y[80:]


def test_network_validation_data_and_history():
    X, Y, X_val, Y_val = _net_data()
    net = Network([4, 8, 2], random_state=0).fit(X, Y, epochs=6, validation_data=(X_val, Y_val))
    assert list(net.history_) == VALIDATED
    _equal_lengths(net.history_, 6)
    assert net.validation_loss_curve_ == net.history_["val_loss"]
    assert net.history_["val_loss"][-1] == pytest.approx(0.5 * np.mean(np.sum((net.predict(X_val) - Y_val) ** 2, 1)))
    plain = Network([4, 8, 2], random_state=0).fit(X, Y, epochs=6)
    assert np.array_equal(plain._params, net._params) and not hasattr(plain, "validation_loss_curve_")


def test_network_early_stopping_keeps_the_best_epoch():
    X, Y, X_val, Y_val = _net_data()
    kw = dict(batch_size=8, optimizer="adam", learning_rate=0.2)
    net = Network([4, 32, 2], random_state=1).fit(X, Y, epochs=300, validation_data=(X_val, Y_val),
                                                  early_stopping=True, patience=3, **kw)
    val = net.validation_loss_curve_
    best = int(np.argmin(val))
    assert len(val) == best + 1 + 3  # stopped after `patience` epochs without a better one
    again = Network([4, 32, 2], random_state=1).fit(X, Y, epochs=best + 1, **kw)
    assert np.array_equal(again._params, net._params)


def test_network_bad_validation_arguments():
    X, Y, X_val, Y_val = _net_data()
    net = Network([4, 3, 2], random_state=0)
    with pytest.raises(ValueError, match="early_stopping=True needs validation_data"):
        net.fit(X, Y, early_stopping=True)
    with pytest.raises(TypeError, match="validation_data.*got ndarray"):
        net.fit(X, Y, validation_data=X_val)
    with pytest.raises(TypeError, match="validation_data.*got a tuple of 1"):
        net.fit(X, Y, validation_data=(X_val,))
    with pytest.raises(ValueError, match="X_val"):
        net.fit(X, Y, validation_data=(X_val[:, :3], Y_val))
    with pytest.raises(ValueError, match="patience"):
        net.fit(X, Y, validation_data=(X_val, Y_val), patience=0)
    with pytest.raises(TypeError, match="callbacks"):
        net.fit(X, Y, callbacks=[object()])


def test_history_survives_save_and_load(tmp_path, data):
    X, y, X_val, y_val = data
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X, y, X_val=X_val, y_val=y_val)
    clf.save(tmp_path / "clf")
    loaded = fastmlp.load(tmp_path / "clf")
    assert loaded.history_ == clf.history_ and loaded.validation_loss_curve_ == clf.validation_loss_curve_
    Xn, Yn, Xv, Yv = _net_data()
    net = Network([4, 3, 2], random_state=0).fit(Xn, Yn, epochs=2, validation_data=(Xv, Yv))
    net.save(tmp_path / "net")
    loaded = fastmlp.load(tmp_path / "net")
    assert loaded.history_ == net.history_ and loaded.validation_loss_curve_ == net.validation_loss_curve_


# ------------------------------------------------------------- schedules

class RecordingSchedule:
    """A schedule (the contract of fastmlp.schedules) that records what the loop asks and tells it."""

    def __init__(self, rate=0.01):
        self.rate = rate

    def get_params(self, deep=True):
        return {"rate": self.rate}

    def set_params(self, **params):
        self.rate = params.get("rate", self.rate)
        return self

    def start(self, base_rate, max_epochs):
        self.started = (base_rate, max_epochs)
        self.asked, self.told = [], []
        return self

    per_batch = True

    def epoch_rates(self, epoch, n_batches):
        self.asked.append((epoch, n_batches))
        return np.full(n_batches, self.rate)

    def end_epoch(self, monitored_loss):
        self.told.append(monitored_loss)


def test_the_loop_asks_the_rates_once_per_epoch_and_tells_the_monitored_loss():
    X, Y, X_val, Y_val = _net_data()
    schedule = RecordingSchedule()
    net = Network([4, 8, 2], random_state=0).fit(X, Y, epochs=4, batch_size=32, learning_rate=0.5,
                                                 lr_schedule=schedule)
    assert schedule.started == (0.5, 4)
    assert schedule.asked == [(e, 3) for e in range(4)]  # 80 rows in batches of 32
    assert schedule.told == net.loss_curve_ and net.history_["learning_rate"] == [0.01] * 4
    net.fit(X, Y, epochs=3, validation_data=(X_val, Y_val), lr_schedule=schedule)
    assert schedule.told == net.validation_loss_curve_  # the validation loss, when there is one


def test_network_schedule_rates_reach_the_engine():
    from fastmlp.schedules import StepDecay

    X, Y, _, _ = _net_data()
    scheduled = Network([4, 8, 2], random_state=0).fit(X, Y, epochs=3, learning_rate=0.1,
                                                       lr_schedule=StepDecay(step_size=1, gamma=0.5))
    by_hand = Network([4, 8, 2], random_state=0)
    for rate in (0.1, 0.05, 0.025):  # plain sgd keeps no state between calls
        by_hand.fit(X, Y, epochs=1, learning_rate=rate)
    assert np.array_equal(scheduled._params, by_hand._params)
    assert scheduled.history_["learning_rate"] == [0.1, 0.05, 0.025]
    with pytest.raises(TypeError, match="lr_schedule"):
        by_hand.fit(X, Y, lr_schedule="step")


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_estimator_takes_a_schedule_as_learning_rate(data, solver):
    from sklearn.base import clone
    from fastmlp.schedules import StepDecay

    X, y, _, _ = data
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, learning_rate=StepDecay(step_size=2, gamma=0.5),
                        learning_rate_init=0.02, max_iter=5, random_state=0).fit(X, y)
    assert clf.history_["learning_rate"] == [0.02, 0.02, 0.01, 0.01, 0.005]
    twin = clone(clf)
    assert twin.learning_rate is not clf.learning_rate and repr(twin.learning_rate) == repr(clf.learning_rate)
    assert clf.get_params()["learning_rate__gamma"] == 0.5
    twin.set_params(learning_rate__gamma=0.1).fit(X, y)
    assert twin.history_["learning_rate"][2] == pytest.approx(0.002)


def test_grid_search_over_a_schedule_parameter(data):
    from sklearn.model_selection import GridSearchCV
    from fastmlp.schedules import ExponentialDecay

    X, y, _, _ = data
    search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(4,), learning_rate=ExponentialDecay(), max_iter=3,
                                        random_state=0), {"learning_rate__gamma": [0.5, 0.9]}, cv=2).fit(X, y)
    assert search.best_estimator_.learning_rate.gamma in (0.5, 0.9)


def test_partial_fit_continues_the_run_and_save_load_keeps_it(tmp_path, data):
    from fastmlp.schedules import LinearWarmup, OneCycle, ReduceOnPlateau, StepDecay

    X, y, _, _ = data
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate=StepDecay(step_size=1, gamma=0.5),
                        learning_rate_init=0.01, random_state=0)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert clf.history_["learning_rate"] == [0.01, 0.005, 0.0025]
    schedule = LinearWarmup(ReduceOnPlateau(patience=0, factor=0.5, threshold=0.5), warmup_epochs=2)
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate=schedule, learning_rate_init=0.01, random_state=0)
    for _ in range(4):
        clf.partial_fit(X, y, classes=np.unique(y))
    clf.save(tmp_path / "clf")
    loaded = fastmlp.load(tmp_path / "clf")
    assert repr(loaded.learning_rate) == repr(clf.learning_rate) and loaded.history_ == clf.history_
    assert loaded._lr_run[0].get_state() == clf._lr_run[0].get_state() and loaded._lr_run[1] == 4
    for model in (clf, loaded):
        for _ in range(3):
            model.partial_fit(X, y)
    assert loaded.history_["learning_rate"] == clf.history_["learning_rate"]
    assert len(set(clf.history_["learning_rate"][2:])) > 1  # the plateau rule did cut the rate
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match="max_epochs"):
        MLPClassifier(learning_rate=OneCycle()).partial_fit(X, y, classes=np.unique(y))


@pytest.mark.parametrize("case", ["multiclass", "binary", "multilabel", "string-labels", "regression",
                                  "two-outputs", "constant-output"])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_default_validation_score_is_scikit_learns_score(case, weighted):
    # scoring=None: the validation score the loop records (computed by fastmlp, not by scikit-learn's
    # metrics) equals est.score(X_val, y_val, sample_weight_val) after every kind of fit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    targets = {
        "multiclass": rng.integers(0, 3, 120), "binary": rng.integers(0, 2, 120),
        "multilabel": rng.integers(0, 2, (120, 3)), "string-labels": np.array(["a", "b", "c"])[rng.integers(0, 3, 120)],
        "regression": X @ [1.0, -1.0, 0.5, 0.0] + rng.normal(size=120),
        "two-outputs": np.column_stack([X[:, 0], X[:, 1] ** 2]),
        "constant-output": np.column_stack([X[:, 0], np.full(120, 2.0)]),
    }
    y = targets[case]
    Est = fastmlp.MLPRegressor if case in ("regression", "two-outputs", "constant-output") else fastmlp.MLPClassifier
    sw = rng.uniform(0.5, 2.0, 40) if weighted else None
    est = Est(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[:80], y[:80], X_val=X[80:], y_val=y[80:], sample_weight_val=sw)
    assert est.history_["val_score"][-1] == pytest.approx(est.score(X[80:], y[80:], sample_weight=sw), rel=1e-9)


@pytest.mark.parametrize("output_activation, loss", [("identity", "squared_error"), ("logistic", "log_loss"),
                                                     ("softmax", "log_loss"), ("exp", "poisson")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("Net", [Network, fastmlp.reference.Network], ids=["engine", "reference"])
def test_outputs_from_logits_are_the_forward_pass_bit_for_bit(Net, dtype, output_activation, loss):
    # the validation's one forward pass: the outputs made from the logits are exactly what forward gives,
    # so a score computed from them is est.score's, bit for bit (also for a batched, threaded forward)
    rng = np.random.default_rng(0)
    X = (4 * rng.normal(size=(3000, 6))).astype(dtype)
    net = Net([6, 9, 3], output_activation=output_activation, loss=loss, dtype=dtype, random_state=1)
    Z = net._forward(X, False, 0, logits=True)
    np.testing.assert_array_equal(net._outputs_from_logits(Z), net._forward(X, False, 0))
    Y = np.abs(rng.normal(size=(3000, 3))).astype(dtype)
    assert net._mean_loss_of_logits(Z, Y, None) == net._mean_loss(X, Y, None)


@pytest.mark.parametrize("output_activation, loss", [("identity", "squared_error"), ("logistic", "log_loss"),
                                                     ("softmax", "log_loss"), ("exp", "poisson"),
                                                     ("identity", "huber")])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("Net", [Network, fastmlp.reference.Network], ids=["engine", "reference"])
def test_stacked_outputs_give_each_networks_own_loss_and_outputs(Net, weighted, output_activation, loss):
    # run_in_one_pass scores its members together: the loss and outputs of K networks' stacked logits
    # (K, n, n_outputs) are each network's own, bit for bit, at sizes where NumPy's sums block
    rng = np.random.default_rng(0)
    for n in (1, 9, 360, 1000):
        X = 3 * rng.normal(size=(n, 6))
        Y = np.abs(rng.normal(size=(n, 3)))
        sw = rng.uniform(0.5, 2.0, n) if weighted else None
        nets = [Net([6, 9, 3], output_activation=output_activation, loss=loss, random_state=k) for k in range(3)]
        Z = np.stack([net._forward(X, False, 0, logits=True) for net in nets])
        losses = nets[0]._mean_loss_of_logits(Z, Y, sw)
        assert losses.tolist() == [net._mean_loss(X, Y, sw) for net in nets]
        P = nets[0]._outputs_from_logits(Z)
        for k, net in enumerate(nets):
            np.testing.assert_array_equal(P[k], net._forward(X, False, 0))


@pytest.mark.parametrize("output_activation, loss", sorted(fastmlp._registry.OUTPUTS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_engines_validation_loss_is_the_numpy_formulas(output_activation, loss, dtype, weighted):
    # Network scores a validation by the training's output kernel (one pass for the loss and the outputs);
    # the reference's NumPy formulas, read by BaseNetwork, give the same to rounding, for every loss
    from fastmlp._base import BaseNetwork

    rng = np.random.default_rng(0)
    X = (2 * rng.normal(size=(300, 5))).astype(dtype)
    Y = np.abs(rng.normal(size=(300, 3))).astype(dtype) + 0.1
    if loss == "log_loss" and output_activation == "softmax":
        Y /= Y.sum(axis=1, keepdims=True)
    elif loss == "log_loss":
        Y = (Y > 0.8).astype(dtype)
    sw = rng.uniform(0.5, 2.0, 300).astype(dtype) if weighted else None
    nets = [Network([5, 7, 3], output_activation=output_activation, loss=loss, dtype=dtype, random_state=k)
            for k in range(3)]
    Z = np.stack([net._forward(X, False, 0, logits=True) for net in nets])
    numpy_losses = BaseNetwork._mean_loss_of_logits(nets[0], Z, Y, sw)
    losses, P = nets[0]._losses_and_outputs_of_logits(Z.copy(), Y, sw)
    np.testing.assert_allclose(losses, numpy_losses, rtol=1e-12)
    assert losses.tolist() == [net._mean_loss(X, Y, sw) for net in nets]  # each network's own bits
    for k, net in enumerate(nets):
        np.testing.assert_array_equal(P[k], net._forward(X, False, 0))
        assert P[k].dtype == np.dtype(dtype)
    # a network whose logits are not finite: NaN, as the NumPy formulas give
    Z[1, 0, 0] = np.inf if output_activation in ("identity", "exp") else np.nan
    losses, _ = nets[0]._losses_and_outputs_of_logits(Z, Y, sw)
    assert np.isnan(losses[1]) and np.isfinite(losses[[0, 2]]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sparse", [False, True])
def test_logits_of_several_networks_are_each_ones_own(dtype, sparse):
    # the validation's forward passes of run_in_one_pass's members in one call: each network's logits are
    # its own _forward's, bit for bit (several chunks of rows); networks of other layers are passed one by one
    rng = np.random.default_rng(0)
    X = 2 * rng.normal(size=(600, 6))
    X[rng.random(X.shape) < 0.5] = 0
    X = (scipy.sparse.csr_matrix(X) if sparse else X).astype(dtype)
    if sparse:  # (checked input: the engine's index type)
        X.indptr, X.indices = X.indptr.astype(np.intp), X.indices.astype(np.intp)
    nets = [Network([6, 9, 4, 3], output_activation="softmax", loss="log_loss", dtype=dtype, random_state=k)
            for k in range(3)]
    own = np.stack([net._forward(X, False, 0, logits=True) for net in nets])
    np.testing.assert_array_equal(nets[0]._logits_of(nets, X), own)
    other = Network([6, 5, 3], output_activation="softmax", loss="log_loss", dtype=dtype, random_state=7)
    mixed = nets[0]._logits_of([nets[0], other], X)
    np.testing.assert_array_equal(mixed[1], other._forward(X, False, 0, logits=True))
    np.testing.assert_array_equal(mixed[0], own[0])


def test_validations_of_the_same_data_are_scored_together():
    from fastmlp._training import Validation

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 3, 200)
    members = [MLPClassifier((5,), max_iter=2, random_state=k).fit(X[:150], y[:150]) for k in range(3)]
    Y = np.eye(3)[y[150:]]
    sw = rng.uniform(0.5, 2.0, 50)
    validations = [m._validation(X[150:].copy(), Y.copy(), sw.copy()) for m in members]  # equal, not the same
    assert all(validations[0].same_data(v) for v in validations)
    nets = [m._network for m in members]
    together = Validation.evaluate_together(validations, nets)
    assert together == [v.evaluate(net) for v, net in zip(validations, nets)]
    assert [score for _, score in together] == pytest.approx([m.score(X[150:], y[150:], sw) for m in members],
                                                             rel=1e-9)  # (scikit-learn's formula)
    by_loss = Validation(X[150:], Y, sw)
    assert Validation.evaluate_together([by_loss, by_loss], nets[:2]) == [
        (loss, -loss) for loss in (nets[0]._mean_loss(X[150:], Y, sw), nets[1]._mean_loss(X[150:], Y, sw))]
    # what cannot share a pass
    other_rows = members[0]._validation(X[150:] + 1, Y, sw)
    with_callable = Validation(X[150:], Y, sw, score=lambda X, Y, sw: 0.0)
    sparse_rows = members[0]._validation(scipy.sparse.csr_matrix(X[150:]), Y, sw)
    assert not validations[0].same_data(other_rows)
    assert not validations[0].same_data(with_callable) and not with_callable.same_data(validations[0])
    assert not validations[0].same_data(by_loss)  # one scored from the outputs, the other by the loss
    assert not sparse_rows.same_data(members[1]._validation(scipy.sparse.csr_matrix(X[150:]), Y, sw))
    assert not validations[0].same_data(members[1]._validation(X[150:], Y, None))
