"""The engine's choice between its threads and one thread (ThreadClock), on simulated machines.

The clock sees only how long each batch took with the choice it made, so it is
driven here with made-up batch times (_engine._clock_batch): nothing is timed,
the outcome is the same on any CPU. A "busy" machine is one where another
process keeps a core busy: n threads are no faster than one, and the first
batch on n threads after batches on one costs a wake of a thread on the busy
core (tens of milliseconds, measured on the 2-core VM of bench/PROFILE.md).
"""
import numpy as np
import pytest

from fastmlp import _engine

ROWS = 128


@pytest.fixture(autouse=True)
def no_recent_cut_run(monkeypatch):
    """Each test's new clocks start with no cut run of the process behind them (whatever ran before)."""
    monkeypatch.setattr(_engine, "_last_cut_run", -1e300)


def _simulate(clock, n_batches, seconds_n, seconds_1, wake=0.0):
    """Runs n_batches through clock; returns (seconds they took, the share run on n threads)."""
    previous, total, on_n = 1, 0.0, 0
    for _ in range(n_batches):
        t_n = seconds_n + (wake if previous == 1 else 0.0)
        choice = _engine._clock_batch(clock, t_n, seconds_1, ROWS)
        total += seconds_1 if choice else t_n
        on_n += choice == 0
        previous = choice
    return total, on_n / n_batches


def test_busy_machine_costs_little_over_one_thread():
    """Measuring n threads now and then (each time a 40 ms wake) costs at most 2% over one thread
    throughout, and less the longer the machine stays busy."""
    clock = _engine.new_thread_clock()
    total, on_n = _simulate(clock, 5000, 1e-3, 1e-3, wake=40e-3)
    assert total <= 1.02 * 5000 * 1e-3 and on_n < 0.01
    later, _ = _simulate(clock, 20000, 1e-3, 1e-3, wake=40e-3)
    assert later <= 1.01 * 20000 * 1e-3


def test_quiet_machine_runs_on_the_threads():
    """Where n threads are twice as fast, the measuring of one thread costs at most 2%."""
    clock = _engine.new_thread_clock()
    total, on_n = _simulate(clock, 20000, 0.5e-3, 1e-3, wake=0.1e-3)
    assert total <= 1.02 * 20000 * 0.5e-3 and on_n > 0.98


def test_the_choice_follows_the_machine():
    """Busy, then quiet: back on the threads within 20 s of training (the runs cut after their first
    batch, 40 ms each, spaced out to 400 times that: 16 s); quiet, then busy (the threads twice as slow):
    on one thread within a hundred batches."""
    clock = _engine.new_thread_clock()
    _simulate(clock, 20000, 1e-3, 1e-3, wake=40e-3)  # long enough for the cut runs to space out
    spent, on_n = 0.0, 0.0
    while on_n < 0.95:
        seconds, on_n = _simulate(clock, 1000, 0.5e-3, 1e-3, wake=0.1e-3)
        spent += seconds
        assert spent < 20.0
    _, on_n = _simulate(clock, 5000, 0.5e-3, 1e-3, wake=0.1e-3)
    assert on_n > 0.98
    _, on_n = _simulate(clock, 100, 2e-3, 1e-3)
    _, on_n = _simulate(clock, 1000, 2e-3, 1e-3)
    assert on_n < 0.02


def test_the_clock_counts_training_time_only():
    """The clock's time (the measuring's spacing) is the seconds of the batches it timed, not the wall's:
    a network trained now and then, between other work, measures as often per second of its training."""
    clock = _engine.new_thread_clock()
    total, _ = _simulate(clock, 300, 1e-3, 2e-3)
    assert clock[6] == pytest.approx(total)


def test_a_clock_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="thread_clock"):
        _engine._clock_batch(np.zeros(6), 1e-3, 1e-3, ROWS)


def test_a_slow_spell_does_not_keep_the_threads_away():
    """On a quiet machine where n threads are twice as fast, spells of 30 batches at four times the
    time (another process passing by) move the choice to one thread; the threads come back soon after
    each spell: the other choice is measured again within a few batches of the move, and at worst, when
    that run falls inside the spell and loses, after 50 times its cost."""
    clock = _engine.new_thread_clock()
    _simulate(clock, 5000, 0.5e-3, 1e-3)  # settled on the threads
    total = 0.0
    for _ in range(20):
        seconds, _ = _simulate(clock, 30, 2e-3, 1e-3)  # the spell: the choice moves to one thread
        total += seconds
        seconds, on_n = _simulate(clock, 3000, 0.5e-3, 1e-3)
        total += seconds
        assert on_n > 0.85
    assert total <= 1.15 * 20 * (30 * 1e-3 + 3000 * 0.5e-3)  # over the best choice throughout


def test_runs_that_lose_in_full_do_not_wait_longer():
    """A quiet but noisy machine: n threads twice as fast as one, but one batch in five (either choice)
    takes three times as long. Runs that lose by such bad luck wait 50 times their cost, never more, so
    the fit stays on the threads but for a few percent (the clock's bad luck) of its time."""
    rng = np.random.default_rng(0)
    clock = _engine.new_thread_clock()
    total = best = 0.0
    for _ in range(20000):
        slow = 3.0 if rng.random() < 0.2 else 1.0
        choice = _engine._clock_batch(clock, 0.5e-3 * slow, 1e-3 * slow, ROWS)
        total += (1e-3 if choice else 0.5e-3) * slow
        best += 0.5e-3 * slow
    assert total <= 1.1 * best


def test_after_a_long_slow_spell_the_threads_come_back_soon():
    """The machine's second core taken for three seconds (n threads twice as slow as one, no wake cost: the
    runs lose in full), then given back: the threads are back within 50 times a run's cost (0.3 s of
    training here), not after runs that lost in a row have spaced the measuring out."""
    clock = _engine.new_thread_clock()
    _simulate(clock, 5000, 0.5e-3, 1e-3)  # settled on the threads
    _simulate(clock, 3000, 2e-3, 1e-3)  # three seconds on one thread
    spent, on_n = 0.0, 0.0
    while on_n < 0.5:
        seconds, on_n = _simulate(clock, 50, 0.5e-3, 1e-3)
        spent += seconds
    assert spent < 0.35


def test_batches_that_wait_a_time_slice_count():
    """Another process on the machine: a thread of ours now and then (one batch in a hundred) waits
    100 ms for its core, and between those waits n threads are only a little faster than one. The clock
    counts those waits for what they cost and the fit runs near one thread's time (a short run of n
    threads that met no such wait does not undo what the average of many batches counted)."""
    rng = np.random.default_rng(0)
    clock = _engine.new_thread_clock()
    _simulate(clock, 2000, 1.5e-3, 1.6e-3)
    total = 0.0
    for _ in range(20000):
        t_n = 1.5e-3 + (100e-3 if rng.random() < 0.01 else 0.0)
        choice = _engine._clock_batch(clock, t_n, 1.6e-3, ROWS)
        total += 1.6e-3 if choice else t_n
    assert total <= 1.1 * 20000 * 1.6e-3


def _first_on_n(clock, seconds_n, seconds_1):
    """The batch (counted from 1) at which the clock first chooses n threads."""
    for i in range(1, 100_000):
        if _engine._clock_batch(clock, seconds_n, seconds_1, ROWS) == 0:
            return i
    return None


def test_a_new_clock_waits_when_a_run_was_cut_moments_ago(monkeypatch):
    """A fit on a busy machine whose thread was woken on the busy core tells the process's next new clocks:
    they train on one thread for 100 times their first run before they try the threads (a grid search's
    short fits do not each pay the wake); without it, or after it (ten seconds at most), they try them at
    once."""
    assert _first_on_n(_engine.new_thread_clock(), 1e-3, 1e-3) == 4  # after one run of 3 batches on one
    cut = _engine.new_thread_clock()
    cut[7] = 1  # (as _clock_record leaves a clock whose run was cut)
    _engine.note_cut_runs(0, cut)
    hinted = _engine.new_thread_clock()
    assert hinted[7] == 1
    assert _first_on_n(hinted, 1e-3, 1e-3) == 3 + 300 + 1  # 100 times the first run's seconds
    monkeypatch.setattr(_engine, "_last_cut_run", _engine._last_cut_run - _engine.CUT_HINT_SECONDS)
    assert _engine.new_thread_clock()[7] == 0


def test_only_a_new_cut_run_is_noted():
    clock = _engine.new_thread_clock()
    clock[7] = 2
    _engine.note_cut_runs(2, clock)  # (the count it began the epoch with: none cut in this epoch)
    _engine.note_cut_runs(3, clock)  # (a run that won since: the count went back down)
    assert _engine.new_thread_clock()[7] == 0
    _engine.note_cut_runs(1, clock)
    assert _engine.new_thread_clock()[7] == 1


def test_a_hinted_clock_on_a_quiet_machine_takes_the_threads_after_its_wait():
    """A new clock told of a cut run elsewhere, on a machine that turned quiet: one wait, then the threads."""
    clock = _engine.new_thread_clock()
    clock[7] = 1
    total, on_n = _simulate(clock, 5000, 0.55e-3, 1e-3)
    assert on_n > 0.9


def test_untimed_work_takes_the_threads_the_clock_prefers():
    """A fit's work the clock does not time (the validation set's forward pass after each epoch) runs on one
    thread while the clock measures one thread, where it has measured one thread faster, or one thread and not
    yet the threads; else on the threads asked for (None: the default)."""
    clock = _engine.new_thread_clock()
    assert _engine.clock_threads(clock, None) is None and _engine.clock_threads(clock, 3) == 3
    _engine._clock_batch(clock, 1e-3, 1e-3, ROWS)  # the first batch: a run measuring one thread under way
    assert clock[3] < 0 and _engine.clock_threads(clock, 2) == 1
    clock[:] = _engine.new_thread_clock()
    clock[1] = 1e-6  # one thread measured, the threads not yet
    assert _engine.clock_threads(clock, 2) == 1
    clock[0] = 0.6e-6  # the threads faster
    assert _engine.clock_threads(clock, 2) == 2 and _engine.clock_threads(clock, None) is None
    clock[0] = 1.5e-6  # slower
    assert _engine.clock_threads(clock, 2) == 1 and _engine.clock_threads(clock, None) == 1
    with pytest.raises(ValueError, match="thread_clock"):
        _engine.clock_threads(np.zeros(6), 2)


@pytest.mark.parametrize("ensemble", [False, True])
def test_the_validation_forward_follows_the_clock(monkeypatch, ensemble):
    """A Network's and an ensemble's validation after each epoch on the threads the fit's clock prefers: one
    thread where another process has made one thread faster, the fit's threads where they are faster."""
    from fastmlp import Network, NetworkEnsemble
    from fastmlp._training import Validation
    from fastmlp.network import kept_clock

    seen = []
    together, alone = Validation.evaluate_together, Validation.evaluate
    monkeypatch.setattr(Validation, "evaluate_together", staticmethod(
        lambda validations, nets, n_threads=None: seen.append(n_threads) or together(validations, nets, n_threads)))
    monkeypatch.setattr(Validation, "evaluate", lambda self, net, n_threads=None: seen.append(n_threads)
                        or alone(self, net, n_threads))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(64, 3)), rng.normal(size=(64, 1))
    model = NetworkEnsemble([3, 4, 1], n_members=2, random_state=0) if ensemble else Network([3, 4, 1], random_state=0)
    clock = kept_clock(model, "_clock")  # (the fit's: too small to run on threads, left as set)
    for per_row, expected in (((2e-6, 1e-6), 1), ((0.5e-6, 1e-6), 2)):
        clock[:2] = per_row
        seen.clear()
        model.fit(X, Y, epochs=2, batch_size=16, n_threads=2, validation_data=(X[:20], Y[:20]))
        assert seen and set(seen) == {expected}


@pytest.mark.skipif(not _engine.OPENMP, reason="built without OpenMP: one thread only")
@pytest.mark.parametrize("ensemble", [False, True])
def test_predictions_of_many_rows_are_placed_by_a_forward_clock(two_cpus, ensemble):
    """Each prediction call of many rows is the batch of the model's forward clock, which starts on the threads
    (a model's first prediction, often its only one, gets them) and measures one thread next: the first three
    calls on the threads, the fourth on one, whatever the machine; the same bits throughout. A call of one row
    is not timed. The clock is not pickled (the timings are this process's)."""
    import pickle

    from fastmlp import Network, NetworkEnsemble

    X = np.random.default_rng(0).normal(size=(2000, 100))
    model = (NetworkEnsemble([100, 200, 10], n_members=2, random_state=0) if ensemble
             else Network([100, 200, 10], random_state=0))
    outputs = [model.forward(X, n_threads=2) for _ in range(4)]
    clock = model._forward_clock_values
    assert clock[4] == 3 and clock[0] > 0 and clock[6] > 0  # (three calls on the threads, timed)
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])
    elapsed = clock[6]
    model.forward(X[:1])
    assert clock[6] == elapsed
    copy = pickle.loads(pickle.dumps(model))
    assert "_forward_clock_values" not in copy.__dict__
    np.testing.assert_array_equal(copy.forward(X, n_threads=2), outputs[0])
    if not ensemble:  # the default's fast path (_engine.Predictor: a service's calls) has the clock too
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=2, user_api="openmp"):
            for _ in range(4):
                np.testing.assert_array_equal(copy.forward(X), outputs[0])
        assert copy._forward_clock_values[4] == 1 + 2  # (the copy's one call above, then two more of its run)


def test_a_passing_wait_does_not_keep_the_threads_away():
    """A fit that starts while another library's BLAS threads still spin on the cores ours wake on (NumPy's, for
    a while after a product): the first batch on the threads waits 45 ms, then the machine is quiet and the
    threads twice as fast. The cut run is tried again after 10 times its cost, not 100: the fit is back on
    the threads within 0.6 s of training. The process's new clocks, told of the cut, are told too when the
    threads have won clearly since."""
    clock = _engine.new_thread_clock()
    spent, choices = 0.0, []
    while spent < 0.6:
        t_n = 0.5e-3 + (45e-3 if spent < 0.05 else 0.0)
        cut_before = clock[7]
        choices.append(_engine._clock_batch(clock, t_n, 1e-3, ROWS))
        spent += 1e-3 if choices[-1] else t_n
        _engine.note_cut_runs(cut_before, clock)  # (as train_epoch does after each epoch)
        if len(choices) == 5:
            assert choices == [1, 1, 1, 0, 1] and _engine.new_thread_clock()[7] == 1  # (cut: new clocks told)
    assert choices[-20:] == [0] * 20 and clock[7] == 0
    assert _engine.new_thread_clock()[7] == 0  # (the threads won clearly: the cut has passed)


def test_threads_no_faster_after_a_cut_leave_the_cut_noted():
    """On a busy core the threads, once back after a cut, are about as fast as one thread: that is no sign that
    what cut them has passed, and the process's new clocks still wait."""
    clock = _engine.new_thread_clock()
    _simulate(clock, 3, 1e-3, 1e-3)  # one thread measured
    cut_before = clock[7]
    _simulate(clock, 1, 1e-3, 1e-3, wake=40e-3)  # the threads' first batch waits: cut
    _engine.note_cut_runs(cut_before, clock)
    assert clock[7] == 1 and _engine.new_thread_clock()[7] == 1
    cut_before = clock[7]
    _simulate(clock, 1000, 0.9e-3, 1e-3)  # back on the threads, a little faster than one
    _engine.note_cut_runs(cut_before, clock)
    assert clock[7] == 0 and _engine.new_thread_clock()[7] == 1


def test_a_cut_alone_is_a_moment_and_a_second_confirms_a_busy_machine(monkeypatch):
    """A cut run with no other in the last CUT_CONFIRM_SECONDS (a quiet machine's moment: another library's BLAS
    threads spinning after a product) keeps the process's new clocks off the threads for a second; another
    cut within that time, or a clock's second cut in a row, confirms a busy core: ten seconds."""
    def cut(clock):
        before = clock[7]
        clock[7] += 1  # (as _clock_record leaves a clock whose run was cut)
        _engine.note_cut_runs(before, clock)

    def later(seconds):  # (the process's last cut that many seconds ago)
        monkeypatch.setattr(_engine, "_last_cut_run", _engine._last_cut_run - seconds)

    cut(_engine.new_thread_clock())
    assert _engine.new_thread_clock()[7] == 1
    later(_engine.FIRST_CUT_HINT_SECONDS)
    assert _engine.new_thread_clock()[7] == 0
    cut(_engine.new_thread_clock())  # another cut, within CUT_CONFIRM_SECONDS of the first
    later(_engine.FIRST_CUT_HINT_SECONDS)
    assert _engine.new_thread_clock()[7] == 1
    later(_engine.CUT_HINT_SECONDS)
    assert _engine.new_thread_clock()[7] == 0
    later(_engine.CUT_CONFIRM_SECONDS)
    clock = _engine.new_thread_clock()
    cut(clock)  # alone again: a moment
    later(_engine.FIRST_CUT_HINT_SECONDS)
    assert _engine.new_thread_clock()[7] == 0
    later(_engine.CUT_CONFIRM_SECONDS)
    cut(clock)  # the same clock's second cut in a row: busy
    later(_engine.FIRST_CUT_HINT_SECONDS)
    assert _engine.new_thread_clock()[7] == 1


def test_a_first_cut_moments_after_another_clocks_waits_as_long_as_a_busy_cores():
    """A clock's first cut run is tried again after 10 times its seconds when it is the process's only cut (a
    passing moment); where another clock was cut moments ago (a busy core, as a second cut confirms), after
    100 times, so that on a busy machine a fresh clock pays one wake, not two."""
    def batches_on_one_thread_after_a_cut(clock):
        _simulate(clock, 3, 1e-3, 1e-3)  # one thread measured
        _simulate(clock, 1, 1e-3, 1e-3, wake=40e-3)  # the threads' first batch waits: cut
        n = 0
        while _engine._clock_batch(clock, 1e-3, 1e-3, ROWS) == 1:
            n += 1
        return n

    assert 300 < batches_on_one_thread_after_a_cut(_engine.new_thread_clock()) < 500  # 10 x 41 ms of 1 ms batches
    clock = _engine.new_thread_clock()  # (made before the other's cut: no hint)
    other = _engine.new_thread_clock()
    other[7] = 1  # (as _clock_record leaves a clock whose run was cut)
    _engine.note_cut_runs(0, other)
    assert 3000 < batches_on_one_thread_after_a_cut(clock) < 5000  # 100 x 41 ms
