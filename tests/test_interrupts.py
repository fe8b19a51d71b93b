"""A real Ctrl-C (SIGINT, Python's own handler) while fastmlp keeps a fit's record.

A fit's own record completes what a Ctrl-C interrupted (its end, the stopping rule); an ensemble's record and
a checkpoint's write hold the signal until they are whole (held_interrupts). Each test sends the signal from
inside the code that keeps the record (a wrapper around one of its steps), so it lands exactly there. A
KeyboardInterrupt that escapes where a fit should have warned and returned fails the test, not the session.
"""
import functools
import signal
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import fastmlp
from _helpers import QuietCallback
from fastmlp import MLPClassifier, MLPRegressor, _training, callbacks, ensemble, estimators
from fastmlp._training import held_interrupts
from fastmlp.ensemble_estimators import MLPEnsembleRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True)
def python_handler():
    """Python's own SIGINT handler (what the hold works with), given back as it was after the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
    _training._Held.depth, _training._Held.pending = 0, False


def _no_escape(test):
    """The test, failing (not stopping pytest's whole run, as a KeyboardInterrupt does) when a KeyboardInterrupt
    escapes a fit that should have warned and returned."""
    @functools.wraps(test)
    def wrapped(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except KeyboardInterrupt:
            pytest.fail("a KeyboardInterrupt escaped the fit")

    return wrapped


def _ctrl_c():
    signal.raise_signal(signal.SIGINT)  # (Python runs the handler at its next check: before this returns)


def _ctrl_c_in(owner, name, at=1):
    """owner.name, sending SIGINT at the start of its call number `at`, then running as it was (to patch)."""
    function, calls = getattr(owner, name), [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            _ctrl_c()
        return function(*args, **kwargs)

    return wrapped


def _regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, np.sin(X @ rng.standard_normal(5))


def _params(model):
    return np.concatenate([c.ravel() for c in model.coefs_ + model.intercepts_])


# ---------------------------------------------------------------------------
# The hold itself

def test_a_ctrl_c_in_a_hold_comes_at_its_end():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with held_interrupts():
            _ctrl_c()
            done.append("after the signal")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_holds_are_one_and_an_exception_of_the_block_goes_on():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with held_interrupts():
            with held_interrupts():
                _ctrl_c()
            done.append("after the inner hold")
    assert done == ["after the inner hold"]
    with pytest.raises(ValueError, match="the block's"):  # (not replaced by the pending KeyboardInterrupt)
        with held_interrupts():
            _ctrl_c()
            raise ValueError("the block's")
    with held_interrupts():  # (and nothing pending is left over)
        pass


def test_a_second_ctrl_c_interrupts_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with held_interrupts():
            _ctrl_c()
            done.append("after the first")
            _ctrl_c()
            done.append("after the second")
    assert done == ["after the first"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_programs_own_handler_and_other_threads_are_left_alone():
    seen = []

    def own(signum, frame):
        seen.append(signum)

    signal.signal(signal.SIGINT, own)
    with held_interrupts():
        assert signal.getsignal(signal.SIGINT) is own
        _ctrl_c()
    assert seen == [signal.SIGINT]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    handlers = []
    thread = threading.Thread(target=lambda: handlers.append(_enter_and_look()))
    thread.start()
    thread.join()
    assert handlers == [signal.default_int_handler]


def _enter_and_look():
    with held_interrupts():
        return signal.getsignal(signal.SIGINT)


# ---------------------------------------------------------------------------
# Where fits keep their record

@_no_escape
def test_ctrl_c_while_an_estimator_ends_its_fit_warns_and_returns(monkeypatch):
    # found by probing: after the epochs (the record complete), the estimator's own end (early stopping's best
    # score and weights) ran unguarded: the KeyboardInterrupt escaped fit
    X, y = _regression()
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, random_state=0, early_stopping=True,
              max_iter=6, n_iter_no_change=50)
    replay = MLPRegressor(**kw).fit(X, y)
    monkeypatch.setattr(MLPRegressor, "_after_stochastic", _ctrl_c_in(MLPRegressor, "_after_stochastic"))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw).fit(X, y)
    assert est.n_iter_ == replay.n_iter_ == 6
    assert est.best_validation_score_ == replay.best_validation_score_
    assert_array_equal(_params(est), _params(replay))


@_no_escape
def test_ctrl_c_in_an_lbfgs_fits_end_warns_and_returns(monkeypatch):
    X, y = _regression()
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0, max_iter=20)
    replay = MLPRegressor(**kw).fit(X, y)
    monkeypatch.setattr(estimators._Record, "on_fit_end", _ctrl_c_in(estimators._Record, "on_fit_end"))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw).fit(X, y)
    assert est.n_iter_ == len(est.loss_curve_) == replay.n_iter_
    assert_array_equal(_params(est), _params(replay))


@_no_escape
def test_ctrl_c_in_the_callbacks_end_of_a_complete_fit_warns_and_returns():
    # found by probing: scikit-learn's callbacks end the fit's task after training (a ScoringMonitor scores the
    # fitted model there, a long window): a Ctrl-C there escaped fit
    pytest.importorskip("sklearn.callback")  # (scikit-learn >= 1.9)

    class InterruptedAtTheEnd(QuietCallback):
        def on_fit_task_end(self, estimator, context, **kwargs):
            if context.parent is None:  # the whole fit's task
                _ctrl_c()
            return False

    X, y = _regression()
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, random_state=0, max_iter=4)
    replay = MLPRegressor(**kw).fit(X, y)
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw).set_callbacks(InterruptedAtTheEnd()).fit(X, y)
    assert est.n_iter_ == len(est.loss_curve_) == 4
    assert_array_equal(_params(est), _params(replay))


@_no_escape
def test_ctrl_c_in_the_stopping_rule_lets_sgds_schedule_follow(monkeypatch):
    # found by probing: a Ctrl-C after the stopping rule saw an epoch and before invscaling's next rate was set
    # left the kept optimizer with the rate of the epoch before: the next partial_fit trained at another rate
    X, y = _regression()
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", shuffle=False, random_state=0, learning_rate="invscaling",
              learning_rate_init=0.01)
    replay = MLPRegressor(**kw, max_iter=3).fit(X, y)
    monkeypatch.setattr(MLPRegressor, "_update_no_improvement_count",
                        _ctrl_c_in(MLPRegressor, "_update_no_improvement_count", at=3))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw, max_iter=10).fit(X, y)
    assert est.n_iter_ == 3
    assert est._trainer.settings["learning_rate"] == replay._trainer.settings["learning_rate"]
    assert_array_equal(_params(est), _params(replay))


@_no_escape
def test_ctrl_c_in_adaptives_rule_divides_the_rate_once(monkeypatch):
    # a Ctrl-C after the no-improvement count passed n_iter_no_change and before adaptive divided the rate (and
    # reset the count): the fit's end applies the rule to that epoch again, from the state before it
    X, y = _regression()
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", shuffle=False, random_state=0, learning_rate="adaptive",
              learning_rate_init=0.05, n_iter_no_change=1, tol=10.0)
    replay = MLPRegressor(**kw, max_iter=3).fit(X, y)  # (the count passes 1 at the third epoch)
    assert replay._trainer.settings["learning_rate"] == 0.01 and replay._no_improvement_count == 0
    monkeypatch.setattr(MLPRegressor, "_trigger_stopping", _ctrl_c_in(MLPRegressor, "_trigger_stopping"))
    with pytest.warns(UserWarning, match="interrupted"):
        est = MLPRegressor(**kw, max_iter=10).fit(X, y)
    assert est.n_iter_ == 3
    assert est._trainer.settings["learning_rate"] == 0.01 and est._no_improvement_count == 0
    assert_array_equal(_params(est), _params(replay))


def test_ctrl_c_while_a_checkpoint_is_written_keeps_the_file_and_the_best_together(monkeypatch, tmp_path):
    # found by probing: a Ctrl-C while Checkpoint wrote the best epoch's file (the slowest part of an epoch that
    # checkpoints) left the file of an earlier epoch, the training loop keeping the newer one
    X, y = _regression()
    path = tmp_path / "best.fastmlp"
    check = callbacks.Checkpoint(path, monitor="loss")
    monkeypatch.setattr(callbacks, "save", _ctrl_c_in(callbacks, "save", at=3))
    net = fastmlp.Network([5, 8, 1], random_state=0)
    with pytest.raises(KeyboardInterrupt):  # (Network.fit: Ctrl-C goes on, after the epoch's record)
        net.fit(X, y, epochs=10, optimizer="adam", shuffle=False, callbacks=[check])
    assert len(net.loss_curve_) == check.best_epoch_ == 3
    assert_array_equal(fastmlp.load(path).predict(X), net.predict(X))


def test_a_checkpoint_writes_the_last_epoch_that_a_ctrl_c_in_a_callback_before_it_kept_from_it(tmp_path):
    X, y = _regression()
    path = tmp_path / "best.fastmlp"

    class StopsAtThree:
        def on_epoch_end(self, loop, logs):
            if loop.epoch == 3:
                raise KeyboardInterrupt
            return False

    check = callbacks.Checkpoint(path, monitor="loss")
    net = fastmlp.Network([5, 8, 1], random_state=0)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=10, optimizer="adam", shuffle=False, callbacks=[StopsAtThree(), check])
    assert len(net.loss_curve_) == check.best_epoch_ == 3  # (the loss goes down every epoch here)
    assert_array_equal(fastmlp.load(path).predict(X), net.predict(X))


@_no_escape
def test_ctrl_c_while_an_ensemble_sets_its_fitted_attributes_warns_and_returns(monkeypatch, tmp_path):
    # found by probing: after every member trained, the ensemble's own attributes (n_iter_, loss_curve_,
    # n_features_in_) were set unguarded: the KeyboardInterrupt escaped fit, and the ensemble did not predict
    from fastmlp import ensemble_estimators

    X, y = _regression()
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, max_iter=3, n_members=3, random_state=0)
    replay = MLPEnsembleRegressor(**kw).fit(X, y)
    cls = ensemble_estimators.MLPEnsembleRegressor
    monkeypatch.setattr(cls, "_from_members", _ctrl_c_in(cls, "_from_members"))
    with pytest.warns(UserWarning, match="interrupted"):
        ens = MLPEnsembleRegressor(**kw).fit(X, y)
    assert list(ens.n_iter_) == [3, 3, 3] and ens.n_features_in_ == 5
    assert_array_equal(ens.predict(X), replay.predict(X))
    ens.save(tmp_path / "ens.fastmlp")
    assert_array_equal(fastmlp.load(tmp_path / "ens.fastmlp").predict(X), ens.predict(X))


@_no_escape
def test_ctrl_c_while_the_members_loops_end_ends_every_member(monkeypatch, tmp_path):
    # the one pass ends each member's loop in turn, all of them in one hold (a Ctrl-C between two ends skipped
    # the ends after it: those members' loss_curve_ empty beside n_iter_ 3, saved and not loaded)
    X, y = _regression()
    kw = dict(hidden_layer_sizes=(8,), solver="adam", shuffle=False, max_iter=3, n_members=3, random_state=0)
    monkeypatch.setattr(_training.EpochLoop, "finish", _ctrl_c_in(_training.EpochLoop, "finish"))
    with pytest.warns(UserWarning, match="interrupted"):
        ens = MLPEnsembleRegressor(**kw).fit(X, y)
    for member in ens.estimators_:
        assert member.n_iter_ == len(member.loss_curve_) == member.grad_norms_.shape[0] == 3
    ens.save(tmp_path / "ens.fastmlp")
    assert_array_equal(fastmlp.load(tmp_path / "ens.fastmlp").predict(X), ens.predict(X))


def test_ctrl_c_while_a_network_ensemble_writes_its_record_writes_it_whole(monkeypatch, tmp_path):
    # found by probing: NetworkEnsemble's record (n_epochs_, loss_curve_, grad_norms_) written one name after
    # another: a Ctrl-C between them left arrays of two calls (saved, not loaded)
    X, y = _regression()
    net = ensemble.NetworkEnsemble([5, 8, 1], n_members=3, random_state=0)
    net.fit(X, y, epochs=2, optimizer="adam", shuffle=False)
    monkeypatch.setattr(ensemble.NetworkEnsemble, "_write_record",
                        _ctrl_c_in(ensemble.NetworkEnsemble, "_write_record"))
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=3, optimizer="adam", shuffle=False)
    assert net.loss_curve_.shape == (3, 3) and net.grad_norms_.shape[:2] == (3, 3) and list(net.n_epochs_) == [3] * 3
    net.save(tmp_path / "net.fastmlp")
    assert_array_equal(fastmlp.load(tmp_path / "net.fastmlp").predict(X), net.predict(X))


def test_estimators_still_train_in_threads(tmp_path):
    # (no hold where Python runs no signal handler: a fit in another thread is as it was)
    X, y = _regression()
    out = []
    thread = threading.Thread(target=lambda: out.append(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3,
                                                                      random_state=0).fit(X, y > 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        thread.start()
        thread.join()
    assert out[0].n_iter_ == 3


def test_ctrl_c_in_a_callback_of_yours_is_not_held():
    # (your code may run long: Ctrl-C stops it where it is, after the epoch's record)
    X, y = _regression()
    done = []

    class Interrupts:
        def on_epoch_end(self, loop, logs):
            if loop.epoch == 2:
                _ctrl_c()
                done.append("after the signal")
            return False

    net = fastmlp.Network([5, 8, 1], random_state=0)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, callbacks=[Interrupts()])
    assert done == [] and len(net.loss_curve_) == 2
