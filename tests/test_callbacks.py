"""scikit-learn's callbacks (sklearn.callback, scikit-learn >= 1.9) on the estimators."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import fastmlp
from _helpers import QuietCallback
from fastmlp import MLPClassifier, MLPEnsembleClassifier, MLPRegressor

callback = pytest.importorskip("sklearn.callback")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)


class Recorder(QuietCallback):
    """Keeps what each epoch's on_fit_task_end gets; stops after `stop_at` epochs."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.ends = []

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None):
        if context.parent is None:  # the whole fit's task
            return False
        self.ends.append((X, y, metadata, fitted_estimator, fitted_estimator.predict_proba(X)))
        return self.stop_at is not None and len(self.ends) >= self.stop_at


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_one_subtask_per_epoch_with_a_ready_to_predict_estimator(data, solver):
    X, y = data
    w = np.linspace(0.5, 1.5, len(y))
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=4, random_state=0, learning_rate_init=0.01)
    rec = Recorder()
    clf = MLPClassifier(**kw).set_callbacks(rec).fit(X, y, sample_weight=w)
    assert len(rec.ends) == clf.n_iter_ == 4
    for X_, y_, metadata, _, _ in rec.ends:
        assert X_ is X and y_ is y and metadata["sample_weight"] is w
    # each epoch's fitted_estimator predicts as that epoch's weights do, after the fit went on
    # (L-BFGS's line search makes its iterations unlike shorter fits: its last one is compared)
    checked = range(1, 5) if solver != "lbfgs" else [4]
    for k in checked:
        shorter = MLPClassifier(**dict(kw, max_iter=k)).fit(X, y, sample_weight=w)
        fitted, proba = rec.ends[k - 1][3:]
        assert np.array_equal(proba, shorter.predict_proba(X)), k
        assert np.array_equal(fitted.predict_proba(X), proba)


def test_an_ensembles_callbacks_run_in_each_members_fit(data):
    X, y = data
    rec = Recorder()
    ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), max_iter=3, n_members=2, random_state=0)
    ens.set_callbacks(rec).fit(X, y)
    assert len(rec.ends) == 6  # three epochs of member 0, then three of member 1
    for k, end in ((0, rec.ends[2]), (1, rec.ends[5])):
        assert np.array_equal(end[4], ens.estimators_[k].predict_proba(X))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_callback_returning_true_stops_cleanly(data, solver):
    X, y = data
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=50, random_state=0)
    clf = MLPClassifier(**kw).set_callbacks(Recorder(stop_at=3)).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3 and len(clf.history_["loss"]) == 3
    assert clf.predict(X).shape == y.shape and np.isfinite(clf.predict_proba(X)).all()
    if solver == "adam":
        plain = MLPClassifier(**dict(kw, max_iter=3)).fit(X, y)
        assert np.array_equal(clf.predict_proba(X), plain.predict_proba(X))


def test_scoring_monitor_and_progress_bar(data):
    pytest.importorskip("rich")
    X, y = data
    monitor = callback.ScoringMonitor(scoring="accuracy")
    reg_monitor = callback.ScoringMonitor(scoring="r2")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    clf.set_callbacks(monitor, callback.ProgressBar()).fit(X, y)
    rows = monitor.get_logs().data
    epochs = [r for r in rows if len(r["task_id_path"]) == 2]
    assert [r["task_id"] for r in epochs] == list(range(5))
    assert epochs[-1]["accuracy"] == clf.score(X, y)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).set_callbacks(reg_monitor)
    reg.fit(X, y.astype(float))
    assert [r["r2"] for r in reg_monitor.get_logs().data][-1] == reg.score(X, y.astype(float))


def test_callbacks_inside_a_pipeline_and_a_grid_search(data):
    pytest.importorskip("rich")
    X, y = data
    monitor = callback.ScoringMonitor(scoring="accuracy")
    mlp = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).set_callbacks(monitor)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)])
    search = GridSearchCV(pipe, {"mlp__alpha": [1e-4, 1e-2]}, cv=2, n_jobs=2)
    search.set_callbacks(callback.ProgressBar(max_propagation_depth=None))  # auto-propagated down to the MLP
    search.fit(X, y)
    logs = monitor.get_logs(select="all")
    epochs = [r for log in logs for r in log.data if r["task_name"] == "epoch"]
    # 2 candidates x 2 folds, and the refit: 5 fits of 3 epochs, each reported from wherever it ran
    assert len(epochs) == 5 * 3
    assert search.best_estimator_.named_steps["mlp"].n_iter_ == 3


def test_everything_works_without_sklearn_callback():
    code = textwrap.dedent("""
        import sys
        import sklearn.datasets, sklearn.metrics, sklearn.model_selection, sklearn.preprocessing  # (they use it)
        from sklearn.datasets import make_classification
        sys.modules["sklearn.callback"] = None  # for fastmlp, an older scikit-learn: no such module
        from fastmlp import MLPClassifier
        X, y = make_classification(n_samples=60, random_state=0)
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
        assert clf.n_iter_ == 3 and len(clf.history_["loss"]) == 3
        assert not hasattr(clf, "set_callbacks")
        print("ok")
    """)
    here = str(Path(fastmlp.__file__).resolve().parents[1])
    # (a clean environment, but for the sanitizers' runtime and options when tests/native/run_sanitizers.sh runs
    # this: an instrumented extension loaded without them crashes)
    keep = {k: os.environ[k] for k in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC")
            if k in os.environ}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": here, "PATH": "", **keep})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ------------------------------------------------------------- Checkpoint

def test_checkpoint_is_the_restored_best_model_bit_for_bit(tmp_path, data):
    from fastmlp.callbacks import Checkpoint

    X, y = data
    path = tmp_path / "best.fastmlp"
    check = Checkpoint(path)
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.05, early_stopping=True, n_iter_no_change=4,
                        max_iter=200, scoring="loss", random_state=3).set_callbacks(check)
    clf.fit(X[:120], y[:120], X_val=X[120:], y_val=y[120:])
    best = int(np.argmax(clf.validation_scores_))
    assert best < clf.n_iter_ - 1 and check.best_epoch_ == best + 1
    loaded = fastmlp.load(path)
    assert np.array_equal(loaded._network._params, clf._network._params)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.history_["val_score"] == clf.history_["val_score"][:best + 1]


def test_checkpoint_on_network_fit(tmp_path):
    from fastmlp.callbacks import Checkpoint

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    Y = np.tanh(X @ rng.standard_normal((4, 2)))
    path = tmp_path / "net.fastmlp"
    net = fastmlp.Network([4, 32, 2], random_state=1)
    net.fit(X[:80], Y[:80], epochs=300, batch_size=8, optimizer="adam", learning_rate=0.2,
            validation_data=(X[80:], Y[80:]), early_stopping=True, patience=3, callbacks=[Checkpoint(path)])
    loaded = fastmlp.load(path)
    assert np.array_equal(loaded._params, net._params)
    best = int(np.argmin(net.validation_loss_curve_))
    assert loaded.loss_curve_ == net.loss_curve_[:best + 1]
    # without a validation set: the lowest training loss
    check = Checkpoint(tmp_path / "train.fastmlp")
    net = fastmlp.Network([4, 8, 2], random_state=0).fit(X, Y, epochs=5, callbacks=[check])
    assert check.best_epoch_ == int(np.argmin(net.loss_curve_)) + 1
    assert fastmlp.load(tmp_path / "train.fastmlp").loss_curve_ == net.loss_curve_[:check.best_epoch_]


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, data, monkeypatch):
    from fastmlp.callbacks import Checkpoint

    X, y = data
    path = tmp_path / "best.fastmlp"
    real_write = np.lib.format.write_array
    writes = []

    def counted(*args, **kwargs):
        writes.append(1)
        if die_at is not None and len(writes) >= die_at:
            raise KeyboardInterrupt("killed")  # the process killed in the middle of a checkpoint
        return real_write(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", counted)
    die_at = None
    kw = dict(hidden_layer_sizes=(4,), tol=0, random_state=0)
    first = MLPClassifier(max_iter=1, **kw).set_callbacks(Checkpoint(tmp_path / "one")).fit(X, y)
    (tmp_path / "one").unlink()
    per_file = len(writes)  # arrays in one checkpoint
    writes.clear()
    die_at = per_file + 2  # in the middle of the second
    clf = MLPClassifier(max_iter=5, **kw).set_callbacks(Checkpoint(path))
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.undo()
    loaded = fastmlp.load(path)  # whole: the first epoch's checkpoint
    assert np.array_equal(loaded.predict_proba(X), first.predict_proba(X)) and loaded.n_iter_ == 1
    assert [p.name for p in tmp_path.iterdir()] == ["best.fastmlp"]  # no temporary file left


def test_checkpoint_bad_arguments():
    from fastmlp.callbacks import Checkpoint

    with pytest.raises(TypeError, match="path"):
        Checkpoint(3)
    with pytest.raises(ValueError, match="monitor"):
        Checkpoint("x", monitor="accuracy")


def test_checkpoint_of_an_lbfgs_fit_loads(data, tmp_path):
    # found by probing: best_loss_ stayed infinite through L-BFGS's iterations, so every checkpoint written
    # during the fit was refused by fastmlp.load
    from fastmlp.callbacks import Checkpoint

    X, y = data
    path = tmp_path / "best.fmlp"
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5, random_state=0)
    clf.set_callbacks(Checkpoint(path)).fit(X, y)
    loaded = fastmlp.load(path)
    assert loaded.best_loss_ == min(loaded.loss_curve_) and np.isfinite(loaded.best_loss_)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))  # (the last iteration is the best)


def test_a_checkpoint_of_validation_numbers_without_a_validation_set_is_refused(data, tmp_path):
    # found by probing: it never wrote anything, in silence (and load of the missing file failed later)
    from fastmlp.callbacks import Checkpoint

    X, y = data
    for monitor in ("val_loss", "val_score"):
        with pytest.raises(ValueError, match=f"monitor='{monitor}'.*has none"):
            fastmlp.Network([6, 4, 1], random_state=0).fit(X, y, epochs=2,
                                                           callbacks=[Checkpoint(tmp_path / "n", monitor=monitor)])
        with pytest.raises(ValueError, match=f"monitor='{monitor}'.*has none"):
            MLPClassifier((4,), max_iter=2, random_state=0).set_callbacks(
                Checkpoint(tmp_path / "e", monitor=monitor)).fit(X, y)
    # refused before the first epoch (found by probing: after it, a first fit was left fitted with one epoch,
    # a warm start one epoch further): the estimator as it was
    clf = MLPClassifier((4,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="has none"):
        clf.set_callbacks(Checkpoint(tmp_path / "e", monitor="val_score")).fit(X, y)
    assert not hasattr(clf, "n_iter_") and not hasattr(clf, "coefs_")
    warm = MLPClassifier((4,), max_iter=2, warm_start=True, random_state=0).fit(X, y)
    before, curve = [w.copy() for w in warm.coefs_], list(warm.loss_curve_)
    with pytest.raises(ValueError, match="has none"):
        warm.set_callbacks(Checkpoint(tmp_path / "e", monitor="val_loss")).fit(X, y)
    assert warm.loss_curve_ == curve and all(np.array_equal(a, b) for a, b in zip(warm.coefs_, before))
    MLPClassifier((4,), max_iter=2, early_stopping=True, random_state=0).set_callbacks(
        Checkpoint(tmp_path / "v", monitor="val_loss")).fit(X, y)
    assert fastmlp.load(tmp_path / "v").n_features_in_ == X.shape[1]


def test_checkpoint_refuses_what_it_could_not_write_before_the_first_epoch(tmp_path):
    # a callable scoring (no file holds one) and a folder that does not exist failed at the first write, after
    # an epoch: a first fit that raised then left the estimator counted as fitted, with one epoch
    from sklearn.metrics import accuracy_score, make_scorer

    from fastmlp.callbacks import Checkpoint

    X, y = make_classification(60, 4, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, early_stopping=True,
                        scoring=make_scorer(accuracy_score))
    clf.set_callbacks(Checkpoint(tmp_path / "best.fastmlp"))
    with pytest.raises(TypeError, match="cannot save estimator.params.scoring"):
        clf.fit(X, y)
    assert not hasattr(clf, "n_iter_") and not (tmp_path / "best.fastmlp").exists()
    missing = tmp_path / "no such folder" / "best.fastmlp"
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3)
    clf.set_callbacks(Checkpoint(missing))
    with pytest.raises(ValueError, match="path=.*its folder .*no such folder.* does not exist"):
        clf.fit(X, y)
    assert not hasattr(clf, "n_iter_")
    net = fastmlp.Network([4, 3, 1], random_state=0)
    before = net.coefs_[0].copy()
    with pytest.raises(ValueError, match="does not exist"):
        net.fit(X, y, epochs=2, callbacks=[Checkpoint(missing)])
    np.testing.assert_array_equal(net.coefs_[0], before)
    assert len(getattr(net, "loss_curve_", [])) == 0


def test_a_fitted_estimator_stays_as_the_fit_was_at_its_epoch(data, tmp_path):
    # found by probing: the copy shared the live estimator's record (lists extended in place) and optimizer
    # state, so that after the fit it said 2 epochs with a curve of 6, saved a file load refused, and its
    # partial_fit moved the live estimator's Adam state
    from fastmlp.schedules import ReduceOnPlateau

    X, y = data

    class Keep(Recorder):
        def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None):
            if context.parent is not None and not self.ends:
                self.ends.append(fitted_estimator)
            return False

    keep = Keep()
    clf = MLPClassifier((6,), max_iter=6, random_state=0, learning_rate=ReduceOnPlateau(patience=0, factor=0.5),
                        early_stopping=True, n_iter_no_change=50)
    clf.set_callbacks(keep).fit(X, y)
    kept = keep.ends[0]
    assert clf.n_iter_ == 6 and kept.n_iter_ == 1
    assert len(kept.loss_curve_) == len(kept.history_["loss"]) == len(kept.validation_scores_) == 1
    assert kept.grad_norms_.shape == (1, 2) and kept._trainer.settings["step"] < clf._trainer.settings["step"]
    assert kept._trainer is not clf._trainer and kept._lr_run[0] is not clf._lr_run[0]
    kept.save(tmp_path / "kept")
    assert fastmlp.load(tmp_path / "kept").n_iter_ == 1
    state = [s.copy() for s in clf._trainer.state]
    kept.set_params(early_stopping=False).set_callbacks().partial_fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(state, clf._trainer.state))
    assert clf.n_iter_ == len(clf.loss_curve_) == 6
