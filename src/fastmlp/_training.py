"""The training loop every fit shares: optimizer state, the epochs, validation,
early stopping, the history, callbacks and the roll-back of a divergence.

``Network.fit``, the estimators' stochastic solvers and ``partial_fit`` run
their epochs through ``EpochLoop``; the estimators' L-BFGS calls the same
hooks once per iteration (``EpochLoop.bridge``). What differs between them is
a hook: an object with any of

    on_fit_begin(loop)
    on_epoch_begin(loop)
    on_epoch_end(loop, logs) -> True to stop
    on_fit_end(loop)

called in order for each hook. ``logs`` holds the epoch's record: loss,
learning_rate (a schedule's: the mean of the epoch's batch rates), seconds,
grad_norms, and val_loss and val_score when there is a validation set. The compiled epoch itself is the network's
(``_train_epoch``); Python runs here once per epoch.
"""
import contextlib
import contextvars
import signal
import threading
import time
import warnings

import numpy as np

from . import _registry
from ._progress import EpochReporter
from ._validation import all_finite, check_bool, check_float, check_int, is_sparse, line_aligned, line_aligned_empty

# scikit-learn's words for the same failure, kept so that code matching them keeps working
SKLEARN_DIVERGENCE = ("Solver produced non-finite parameter weights. The input data may contain large values "
                      "and need to be preprocessed.")


class Divergence(ValueError):
    """Training diverged; the weights were rolled back (the message says to what).

    A ValueError to the user; a loop with a validation set catches it to return
    the best-validation weights instead. to_call_start: the roll-back went past
    the failed epoch's start, to the state before the call.
    """

    def __init__(self, message, to_call_start=False):
        super().__init__(message)
        self.to_call_start = to_call_start


# The optimizer's hyperparameters, listed once: name -> (check, default). The
# Trainer validates them, persistence saves them, Network.fit takes them by
# these names (the estimators map scikit-learn's: nesterovs_momentum -> nesterov).
HYPERPARAMETERS = {
    "momentum": (lambda v: check_float(v, "momentum", 0.0, 1.0), 0.0),
    "nesterov": (lambda v: check_bool(v, "nesterov"), False),
    "beta_1": (lambda v: check_float(v, "beta_1", 0.0, 1.0, high_open=True), 0.9),
    "beta_2": (lambda v: check_float(v, "beta_2", 0.0, 1.0, high_open=True), 0.999),
    "epsilon": (lambda v: check_float(v, "epsilon", 0.0, low_open=True), 1e-8),
    "alpha": (lambda v: check_float(v, "alpha", 0.0), 0.0),
    "clip_norm": (lambda v: None if v is None else check_float(v, "clip_norm", 0.0, low_open=True), None),
}
# The Trainer's arguments; its other settings (dropout, step, seed) follow from the network and the epochs.
TRAINER_ARGS = ("optimizer", "batch_size", "learning_rate", *HYPERPARAMETERS)


def draw_seed(rng):
    """A 63-bit seed from a Generator or a RandomState (for the C PRNG)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63, dtype=np.int64))
    return int(rng.randint(0, 2**63 - 1, dtype=np.int64))


def epoch_total_weight(n, sample_weight, order, batch_size, loss_per_row):
    """What an epoch's loss sum over n rows is divided by for its mean: the rows (loss_per_row, scikit-learn's
    batch means weighed by their rows), or the weights, of the batches that trained. A batch whose weights are
    all zero does not train and adds nothing to the sum; counted by its rows, it made the mean smaller, by a
    different amount every shuffle (scikit-learn's MLP divides by zero there)."""
    if sample_weight is None:
        return n
    if not loss_per_row:
        return float(sample_weight.sum(dtype=np.float64))
    w = sample_weight if order is None else sample_weight[order]
    starts = np.arange(0, n, batch_size)
    sums = np.add.reduceat(w.astype(np.float64, copy=False), starts)
    return int(np.diff(np.append(starts, n))[sums > 0].sum())


def next_order(rng, n, order=None):
    """The rows' order for the next epoch: a permutation drawn from rng, applied to order when given.

    order: the last epoch's order where each epoch shuffles the one before, as
    scikit-learn's MLP shuffles its sample indices within a fit (the estimators
    do the same, so that their batches are scikit-learn's in every epoch); None
    for the rows' own order (a Network's epochs: a fit of n epochs is then n
    fits of one, so that a fit resumes exactly where another stopped).
    """
    perm = rng.permutation(n).astype(np.intp, copy=False)
    return perm if order is None else order[perm]


def drops(net):
    """Whether the network drops units of any hidden layer in training."""
    return any(keep < 1 for keep in net._keep.tolist())


class Trainer:
    """A network's optimizer settings and state, and the workspaces of its epochs.

    Every field is set here. A trainer may be kept across calls (the
    estimators' partial_fit does); its learning rate may change between epochs
    (schedules). Pickles as its settings and optimizer state only (what
    fastmlp.save keeps): the rest is scratch, made again by the next epoch.
    """

    _SCRATCH = ("grads", "work", "capacity", "capacity_dense", "keep_sized", "start_of_epoch", "state_at_start",
                "step_at_start", "rates")

    def __init__(self, net, optimizer, batch_size, learning_rate, **hyperparameters):
        spec = _registry.lookup(_registry.OPTIMIZERS, optimizer, "optimizer")
        unknown = sorted(set(hyperparameters) - set(HYPERPARAMETERS))
        if unknown:
            raise TypeError(f"unknown optimizer setting {unknown[0]!r}; the settings are {', '.join(HYPERPARAMETERS)}.")
        self.settings = dict(
            batch_size=check_int(batch_size, "batch_size", 1),
            optimizer=spec.name,
            learning_rate=check_float(learning_rate, "learning_rate", 0.0, low_open=True),
            **{name: check(hyperparameters.get(name, default)) for name, (check, default) in HYPERPARAMETERS.items()},
            dropout=drops(net),
            step=0,  # updates so far (Adam's t)
            seed=0,  # the dropout masks' seed of the epoch
        )
        self.state = [line_aligned_empty(net._params.shape[0], net.dtype, fill=0) for _ in range(spec.n_state)]
        self.grad_norm_sums = np.zeros(net.n_layers_)  # per layer, the sum over an epoch's batches of ||dW||
        self.unit_max = np.empty(sum(net.layer_sizes[1:-1]), dtype=net.dtype)  # per hidden unit, its largest z
        self._scratch_like(net._params)

    def __getstate__(self):
        return {k: v for k, v in vars(self).items() if k not in self._SCRATCH}

    def __setstate__(self, fields):
        vars(self).update(fields)
        self.state = [line_aligned(s) for s in self.state]
        self._scratch_like(self.state[0])

    def _scratch_like(self, params):
        self.grads = self.work = None  # the engine's workspaces, sized by net._workspaces for `capacity` rows
        self.capacity = 0
        self.capacity_dense = False  # (whether they hold room for gathered rows of a dense X)
        self.keep_sized = None  # and for these keep probabilities (follow_dropout)
        self.start_of_epoch = np.empty_like(params)  # what a divergence rolls back to
        self.state_at_start = [np.empty_like(s) for s in self.state]
        self.step_at_start = 0
        self.rates = None  # the epoch's rate per batch (a schedule's), None: settings["learning_rate"]

    def follow_dropout(self, net):
        """The network's dropout as it is now (it may change between calls and, by a callback, between
        epochs): the flag, and the workspaces, which hold the masks of the layers that drop, made again
        when the rates changed."""
        keep = net._keep.tolist()
        if keep != self.keep_sized:
            self.settings["dropout"] = any(k < 1 for k in keep)
            self.keep_sized = keep
            self.capacity = 0

    def size_for(self, net, batch_size, dense_x=True):
        """Workspaces for batches of batch_size rows of a dense X or (dense_x=False) a CSR one, whose rows are
        not gathered (kept while large enough: a dense X's fit a CSR X's batches too)."""
        if batch_size > self.capacity or (dense_x and not self.capacity_dense):
            self.grads, self.work = net._workspaces(batch_size, self.settings["dropout"], dense_x)
            self.capacity, self.capacity_dense = batch_size, dense_x

    def save_epoch_start(self, params):
        np.copyto(self.start_of_epoch, params)
        for saved, s in zip(self.state_at_start, self.state):
            np.copyto(saved, s)
        self.step_at_start = self.settings["step"]

    def restore_epoch_start(self, params):
        np.copyto(params, self.start_of_epoch)
        for s, saved in zip(self.state, self.state_at_start):
            np.copyto(s, saved)
        self.settings["step"] = self.step_at_start


# Set while a fit is only set up (an ensemble's members after the one Ctrl-C stopped, fitted one after another):
# its loop (or L-BFGS run) stops as Ctrl-C before the first epoch would stop it, so that it is left as such a fit
# leaves a model.
BEFORE_FIRST_EPOCH = contextvars.ContextVar("fastmlp_before_first_epoch", default=False)


def completed(step):
    """step(); if Ctrl-C interrupts it, step() once more, to its end, and True (else False): for the steps that
    keep a fit's record and only set what their inputs hold, so that running one again completes it. (Cheaper
    than held_interrupts, whose two system calls would cost a small fit several per cent.)"""
    try:
        step()
    except KeyboardInterrupt:
        step()
        return True
    return False


class _Held:
    """The state of held_interrupts: how deep the holds nest, the handler they replaced, whether a Ctrl-C
    came while held."""
    depth = 0
    previous = None
    pending = False


def _hold(signum, frame):
    """SIGINT's handler while held: the first Ctrl-C waits for the hold's end; a second one interrupts at once
    (someone who presses twice wants out, whatever it costs)."""
    if _Held.pending:
        signal.signal(signal.SIGINT, _Held.previous)
        _Held.depth = 0
        _Held.pending = False
        raise KeyboardInterrupt
    _Held.pending = True


class held_interrupts:
    """A Ctrl-C that comes while the block runs raises its KeyboardInterrupt when the block ends (a second
    Ctrl-C at once): for code that keeps a record which must not be left half written and which cannot
    simply run again (an ensemble's attributes and record, a checkpoint's file and best), and is long or
    rare enough for the hold's cost (two system calls, about 10 us; a fit's own record instead completes
    what Ctrl-C interrupted, EpochLoop._ending). Only in the main thread (where Python runs its signal
    handlers) and with Python's own SIGINT handler in place (a program's own handler is left as it is);
    nested holds are one hold."""

    def __enter__(self):
        self.holds = threading.current_thread() is threading.main_thread() and (
            _Held.depth > 0 or signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self.holds and _Held.depth == 0:
            try:
                _Held.previous = signal.signal(signal.SIGINT, _hold)
            except (ValueError, OSError):  # (a subinterpreter's main thread: no signal handlers there)
                self.holds = False
                return self
            _Held.pending = False
        if self.holds:
            _Held.depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.holds or _Held.depth == 0:  # (a second Ctrl-C gave the handler back already)
            return False
        _Held.depth -= 1
        if _Held.depth > 0:
            return False
        signal.signal(signal.SIGINT, _Held.previous)
        pending, _Held.pending = _Held.pending, False
        if pending and exc_type is None:  # (the block's own exception goes on)
            raise KeyboardInterrupt
        return False


class Validation:
    """A validation set and how to score the network on it.

    score: None (minus the validation loss) or a callable score(X, Y,
    sample_weight) -> float, higher is better, NaN when the predictions are
    not finite. score_output: instead of score, a callable score_output(P,
    sample_weight) of the network's outputs P on X: then one forward pass
    serves the loss and the score.
    """

    def __init__(self, X, Y, sample_weight=None, score=None, score_output=None):
        self.X, self.Y, self.sample_weight, self.score = X, Y, sample_weight, score
        self.score_output = score_output

    def same_data(self, other):
        """Whether other holds the same rows, targets and weights (dense, equal values) and scores from the
        outputs or by the loss as this one does: then evaluate_together may serve both."""
        if self.score is not None or other.score is not None:
            return False
        if (self.score_output is None) != (other.score_output is None):
            return False
        pairs = ((self.X, other.X), (self.Y, other.Y), (self.sample_weight, other.sample_weight))
        return all(a is b or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                              and np.array_equal(a, b)) for a, b in pairs)

    @staticmethod
    def evaluate_together(validations, nets, n_threads=None):
        """[(val_loss, val_score)] of each network on its validation (evaluate's, with no score callable),
        for validations of the same data (same_data) and networks of one output and loss: their forward
        passes in one call (Networks of one architecture: the engine's threads share them), then the losses
        and outputs of their stacked logits in one call (a Network's: one pass of the training's output
        kernel over each); each network's with the bits of its own (tests/test_training.py);
        run_in_one_pass's members in a call. n_threads: the engine's threads for them (the fit's)."""
        v = validations[0]
        Z = nets[0]._logits_of(nets, v.X, n_threads)
        losses, P = nets[0]._losses_and_outputs_of_logits(Z, v.Y, v.sample_weight,
                                                          outputs=v.score_output is not None, n_threads=n_threads)
        if v.score_output is None:  # scored by the loss
            return [(float(loss), -float(loss)) for loss in losses]
        return [(float(loss), float(w.score_output(P[k], v.sample_weight)))
                for k, (loss, w) in enumerate(zip(losses, validations))]

    def evaluate(self, net, n_threads=None):
        """(val_loss, val_score) of the network's current weights (the engine's work on n_threads threads)."""
        if self.score is None:
            return Validation.evaluate_together([self], [net], n_threads)[0]
        loss = net._mean_loss(self.X, self.Y, self.sample_weight, n_threads)
        return loss, float(self.score(self.X, self.Y, self.sample_weight))


class EpochLoop:
    """One call's epochs of a network on (X, Y), through the hooks.

    Parameters
    ----------
    net : BaseNetwork
        The network trained; X, Y and sample_weight are already checked by it.
    trainer : Trainer or None
        Its optimizer settings and state (kept by the caller across calls);
        None for an outside optimizer that reports through ``bridge``.
    X, Y, sample_weight : arrays
        The training set.
    max_epochs : int
        Epochs of this call at most.
    shuffle : bool
        Shuffle the rows every epoch (from the network's random_state).
    n_threads : int or None
        The engine's threads.
    validation : Validation or None
        Scored after every epoch: logs get val_loss and val_score.
    keep_best : bool
        Track the weights of the best val_score (``best_params``), return to
        them at the end and when an epoch diverges (the loop then ends with
        ``diverged`` set instead of raising). Needs a validation set.
    best_score, best_params : float, ndarray or None
        The best so far from an earlier call (a warm start).
    hooks : sequence
        Objects with any of on_fit_begin, on_epoch_begin, on_epoch_end, on_fit_end.
    history : dict of lists or None
        Where each epoch's logs are appended (the owner's history_, kept across
        calls); the loop removes what a roll-back takes back.
    schedule : run of a fastmlp.schedules schedule, or None
        Gives each epoch's rate per batch (``trainer.rates``) before it runs,
        ``epoch_rates(schedule_epoch, n_batches)``, and is told the monitored
        loss after it (``end_epoch``: the validation loss, else the training loss).
    schedule_epoch : int
        The epoch of the schedule's run the first epoch of this call is (a
        run continues across partial_fit calls); ``schedule_epoch`` counts on.
    loss_per_row : bool
        The epoch's loss with sample weights as scikit-learn's MLP reports it
        (the estimators): each batch's weighted mean loss weighted by its
        rows, over the rows; else by its weight, over the total weight (the
        weighted mean over the epoch's batches). The same without weights.

    Attributes
    ----------
    epoch : int
        Epochs completed in this call (the one running, inside on_epoch_begin).
    logs : dict or None
        The last epoch's record.
    diverged : Divergence or None
        With keep_best: the divergence that ended the loop.
    """

    def __init__(self, net, trainer, X, Y, sample_weight=None, *, max_epochs, shuffle=True, n_threads=None,
                 validation=None, keep_best=False, best_score=-np.inf, best_params=None, hooks=(), history=None,
                 schedule=None, schedule_epoch=0, carry_order=False, loss_per_row=False):
        self.net, self.trainer = net, trainer
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.max_epochs, self.shuffle, self.n_threads = max_epochs, shuffle, n_threads
        self.validation, self.keep_best = validation, keep_best
        self.best_score = best_score
        self.best_params = best_params
        if keep_best and best_params is None:
            self.best_params = net._params.copy()  # what a first epoch that diverges returns to
        self.hooks = list(hooks)
        # whether a hook may look at the model between epochs (a user's callback): then the records
        # keep the model's attributes current after every epoch, else only when the loop ends
        self.observed = any(getattr(hook, "watches_model", True) for hook in self.hooks)
        self.schedule, self.schedule_epoch = schedule, schedule_epoch
        self.history = history if history is not None else new_history(validation is not None)
        if validation is not None:  # a first call with a validation set: NaN for the epochs before it
            for key in new_history(True):
                self.history.setdefault(key, [np.nan] * len(self.history["loss"]))
        self.grad_norms = []  # per epoch of this call, the per-layer mean ||dW|| (grad_norms_)
        self.carry_order = carry_order
        self.loss_per_row = loss_per_row
        self.order = None  # with carry_order, the last epoch's order of the rows (next_order)
        self.epoch = 0
        self.rate = None  # the running epoch's learning rate (begin_epoch's)
        self.logs = None
        self.diverged = None
        self.forgotten = False  # (forget_call: the call's epochs were taken back, weights and record)
        # From the moment an epoch starts changing the weights until its record is complete (open_epoch to
        # _append): the history's length, the schedule's state and the best before it (take_back_open_epoch)
        self._open = None
        self._finished = -1  # (finish: -1 before its first steps, then the hooks whose fit end returned)
        self._n_at_start = len(self.history["loss"])
        # The state before the call, for a roll-back past the start of the failed
        # epoch (None for one epoch: that epoch's start is the call's).
        self._before = None
        if max_epochs > 1 and trainer is not None:
            self._before = net._params.copy(), [s.copy() for s in trainer.state], dict(trainer.settings)

    # ------------------------------------------------------------------ run

    def run(self):
        """Run the epochs; returns self. Raises Divergence (the records taken back with the weights)."""
        self.start()
        try:
            return self._epochs()
        except KeyboardInterrupt:
            self._ending(self.finish)  # (complete, also when Ctrl-C came before the end began: it resumes)
            raise

    def _epochs(self):
        """run's epochs, then its end (finish), whatever ends them."""
        try:
            try:
                if BEFORE_FIRST_EPOCH.get():
                    raise KeyboardInterrupt
                for _ in range(self.max_epochs):
                    rate = self.begin_epoch()
                    tic = time.perf_counter()
                    loss, norms = self._epoch()
                    if self.end_epoch(loss, norms, rate, time.perf_counter() - tic):
                        break
                if not self.keep_best:
                    self._check_outputs()
            except Divergence as exc:
                if not self.keep_best:
                    if exc.to_call_start:
                        self.forget_call()
                    raise
                self._record_diverged(exc)
        except BaseException:
            # Ctrl-C (seen when the compiled epoch returns, or anywhere in the Python between it and the
            # record), or a scorer or schedule that raised: an epoch trained but not recorded is undone, so
            # the weights are those of the last epoch recorded
            if self.take_back_open_epoch():
                self.trainer.restore_epoch_start(self.net._params)
            raise
        finally:
            self._ending(self.finish)
        return self

    # The steps of run, for a driver that trains several loops' networks at once (fastmlp.ensemble's
    # one pass): start, then per epoch begin_epoch, the training, end_epoch; finish whatever ends it.

    def start(self):
        """The hooks' fit begin."""
        self._dispatch("on_fit_begin")

    def begin_epoch(self):
        """Count the epoch and run the hooks' epoch begin; returns the epoch's learning rate (the mean of a
        schedule's rates per batch, which it sets as trainer.rates)."""
        self.epoch += 1
        self._dispatch("on_epoch_begin")
        trainer = self.trainer
        if self.schedule is None:
            self.rate = trainer.settings["learning_rate"]
            return self.rate
        n_batches = -(-self.X.shape[0] // min(trainer.settings["batch_size"], self.X.shape[0]))
        rates = trainer.rates = self.schedule.epoch_rates(self.schedule_epoch, n_batches)
        self.rate = float(rates[0] if (rates == rates[0]).all() else rates.mean())  # (a mean of equal rates rounds)
        return self.rate

    def open_epoch(self):
        """Mark the start of an epoch's changes to the weights: until its record is complete, an exception
        takes it back (take_back_open_epoch)."""
        schedule = None
        if self.schedule is not None:  # (a user's run may keep no state to give: only its epoch comes back)
            get_state = getattr(self.schedule, "get_state", None)
            schedule = self.schedule_epoch, None if get_state is None else get_state()
        self._open = len(self.history["loss"]), schedule, self.best_score, self.best_params

    def take_back_open_epoch(self):
        """After an exception: the record of an epoch opened and not completely recorded taken back (what
        was appended of it, the schedule's step); True if there was one (its weights are the caller's to
        take back)."""
        if self._open is None:
            return False
        n, schedule, self.best_score, self.best_params = self._open  # (best_params is replaced, never written)
        self._open = None
        self._truncate(n)
        if schedule is not None:
            self.schedule_epoch = schedule[0]
            if schedule[1] is not None:
                self.schedule.set_state(schedule[1])
        return True

    def end_epoch(self, loss, norms, rate, seconds, evaluation=None):
        """The record of an epoch trained (its mean loss, per-layer mean ||dW||): validation, best weights,
        the schedule, the history and the hooks' epoch end; True to stop. evaluation: the validation's
        (val_loss, val_score) of the network now when the caller has it (Validation.evaluate_together)."""
        logs = {"loss": loss, "learning_rate": rate, "seconds": seconds, "grad_norms": norms}
        if self.validation is not None:
            if evaluation is None:
                evaluation = self.validation.evaluate(self.net, self.net._untimed_threads(self.n_threads))
            logs["val_loss"], logs["val_score"] = evaluation
            if self.keep_best and logs["val_score"] > self.best_score:
                self.best_score = logs["val_score"]
                self.best_params = self.net._params.copy()
        if self.schedule is not None:
            self.schedule.end_epoch(logs["val_loss"] if self.validation is not None else loss)
            self.schedule_epoch += 1
        self._append(logs)
        return self._dispatch("on_epoch_end", logs)

    def finish(self):
        """The end of the call, whatever ends it: the best weights back (keep_best), the hooks' fit end.
        Whatever of it a Ctrl-C interrupted runs again when called again."""
        if self._finished < 0:
            if self.keep_best:
                np.copyto(self.net._params, self.best_params)
            if self.schedule is not None:
                self.trainer.rates = None  # the next call's rates are its own
            self._finished = 0
        self._fit_end()

    def _fit_end(self):
        """The hooks' fit end, from the first hook whose fit end has not returned yet."""
        while self._finished < len(self.hooks):
            method = getattr(self.hooks[self._finished], "on_fit_end", None)
            if method is not None:
                method(self)
            self._finished += 1

    def _ending(self, end):
        """end() (finish, or the bridge's fit end), completed if Ctrl-C interrupts it, then the
        KeyboardInterrupt: the record and the weights the call ends with are complete however it ends
        (the hooks' fit end writes the model's record; a Ctrl-C near the end of a fit lands there)."""
        if completed(end):
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def bridged(self):
        """The fit of an outside optimizer (L-BFGS), reporting each iteration through ``bridge``:
        the hooks' fit begin before it, their fit end after it, whatever ends it."""
        self._dispatch("on_fit_begin")
        self._finished = 0
        try:
            yield self
        finally:
            self._ending(self._fit_end)

    def forget_call(self):
        """Take back the record of this call's epochs (its weights were taken back)."""
        self._truncate(self._n_at_start)
        self.forgotten = True

    def bridge(self, loss, norms, seconds):
        """The record and hooks of one iteration of an outside optimizer (L-BFGS); True to stop."""
        self.epoch += 1
        self._dispatch("on_epoch_begin")
        self.open_epoch()  # (the caller takes an iteration not completely recorded back: take_back_open_epoch)
        logs = {"loss": loss, "learning_rate": np.nan, "seconds": seconds, "grad_norms": norms}
        if self.validation is not None:
            threads = self.net._untimed_threads(self.n_threads)
            logs["val_loss"], logs["val_score"] = self.validation.evaluate(self.net, threads)
        self._append(logs)
        return self._dispatch("on_epoch_end", logs)

    def _dispatch(self, event, *args):
        stop = False
        for hook in self.hooks:
            method = getattr(hook, event, None)
            if method is not None:
                stop = bool(method(self, *args)) or stop
        return stop

    # -------------------------------------------------------------- history

    def _append(self, logs):
        self.logs = logs
        for key, values in self.history.items():
            values.append(logs.get(key, np.nan))  # (val_loss, val_score: NaN in a call without validation)
        self.grad_norms.append(logs["grad_norms"])
        self._open = None  # (the epoch is recorded)

    def _truncate(self, n):
        """Keep the first n epochs of the history (those before this call and some of its own)."""
        for values in self.history.values():
            del values[n:]
        del self.grad_norms[max(n - self._n_at_start, 0):]
        self.logs = None

    def _record_diverged(self, exc):
        """With keep_best, as scikit-learn (its issue #29504): the diverged epoch recorded as NaN."""
        self.diverged = exc
        logs = {"loss": np.nan, "learning_rate": self.rate, "seconds": np.nan,  # (the epoch's, begin_epoch's)
                "grad_norms": np.full(self.net.n_layers_, np.nan), "val_loss": np.nan, "val_score": np.nan}
        self._append(logs)
        self._dispatch("on_epoch_end", logs)

    # ---------------------------------------------------------------- epoch

    def _epoch(self):
        """One epoch on checked arrays; returns (mean loss, per-layer mean ||dW||).

        On divergence rolls back (_roll_back) and raises Divergence.
        """
        net, trainer, X = self.net, self.trainer, self.X
        n = X.shape[0]
        batch = min(trainer.settings["batch_size"], n)
        trainer.follow_dropout(net)
        trainer.size_for(net, batch, not is_sparse(X))
        order = None
        if self.shuffle:
            order = next_order(net._rng, n, self.order)
            if self.carry_order:
                self.order = order
        # the dropout masks' seed, drawn only where there are masks: without dropout the generator gives the
        # shuffles alone, scikit-learn's sequence (its MLP draws nothing else), so that an estimator's epochs
        # follow scikit-learn's batches epoch after epoch, not only in the first
        trainer.settings["seed"] = draw_seed(net._rng) if trainer.settings["dropout"] else 0
        trainer.grad_norm_sums[:] = 0
        trainer.unit_max[:] = -np.inf
        trainer.save_epoch_start(net._params)
        self.open_epoch()
        loss_sum, n_batches, finite = net._train_epoch(trainer, X, self.Y, self.sample_weight, order, batch,
                                                       self.n_threads, self.loss_per_row)
        if not (finite and all_finite(net._params)):
            raise self._roll_back("the loss or the weights became NaN or infinite")
        net._record_dead_units(trainer.unit_max)
        total_weight = epoch_total_weight(n, self.sample_weight, order, batch, self.loss_per_row)
        return float(loss_sum / total_weight), trainer.grad_norm_sums / max(n_batches, 1)

    def _check_outputs(self):
        """After the last epoch: raise (rolled back, its record dropped) if the outputs on X overflow.

        Every batch's loss was checked before its update; the last update of the
        last epoch was not, and finite weights can still overflow the outputs.
        A fit that returns never predicts NaN.
        """
        if self.epoch == 0 or self.net._outputs_in_range(self.X):
            return
        exc = self._roll_back(f"the network's outputs on the training data overflow {self.net.dtype}")
        self._truncate(self._n_at_start if exc.to_call_start else len(self.history["loss"]) - 1)
        raise exc

    def _roll_back(self, what):
        """After a divergence in this epoch: restore the weights of its start and return the Divergence to raise.

        Those weights passed their first batch but may still overflow the outputs
        on the rest of X (|W| ~ 1e158 after an epoch at a huge learning rate);
        then the state before the call comes back.
        """
        net, trainer = self.net, self.trainer
        self._open = None  # (taken back here, to the epoch's start or further)
        trainer.restore_epoch_start(net._params)
        to_call_start = self._before is not None and not net._outputs_in_range(self.X)
        if to_call_start:
            params, state, settings = self._before
            np.copyto(net._params, params)
            for s, saved in zip(trainer.state, state):
                np.copyto(s, saved)
            trainer.settings.update(settings)  # the step, and a learning rate a schedule changed
            where = (f"those before this call (the outputs of the weights of the start of epoch {self.epoch} "
                     f"overflow on the training data)")
        else:
            where = f"those of the start of epoch {self.epoch}"
        return Divergence(
            f"{SKLEARN_DIVERGENCE} Training diverged in epoch {self.epoch}: {what}. The weights are {where}. "
            f"Try a lower learning_rate (now {trainer.settings['learning_rate']:g}) or set clip_norm.",
            to_call_start,
        )


def warn_diverged(epoch, best_score, learning_rate, who=""):
    """The ConvergenceWarning of a loop with early stopping that ended on a divergence (keep_best: it
    returns the weights of the best validation score instead of raising)."""
    from sklearn.exceptions import ConvergenceWarning

    best = "those with the best validation score" if np.isfinite(best_score) else "those from before this fit"
    warnings.warn(f"{who}Training diverged in epoch {epoch}: the loss or the weights became NaN or infinite. With "
                  f"early_stopping=True the weights are {best}. Try a lower learning_rate (now {learning_rate:g}) "
                  "or set clip_norm.", ConvergenceWarning, stacklevel=3)


def new_history(validation):
    """An empty history_: one list per record, val_loss and val_score with a validation set."""
    keys = ("loss", "learning_rate", "seconds") + (("val_loss", "val_score") if validation else ())
    return {key: [] for key in keys}


class Patience:
    """A hook that stops when val_score has not improved by more than tol for `patience` epochs."""

    watches_model = False

    def __init__(self, patience, tol=0.0):
        self.patience, self.tol = patience, tol
        self.best, self.count = -np.inf, 0

    def on_epoch_end(self, loop, logs):
        score = logs["val_score"]
        self.count = self.count + 1 if not score > self.best + self.tol else 0
        self.best = max(self.best, score) if np.isfinite(score) else self.best
        return self.count >= self.patience


class Reporter:
    """The verbose hook: one line per epoch (EpochReporter), closed at the end."""

    watches_model = False

    def __init__(self, total, n_samples, label="epoch"):
        self.reporter = EpochReporter(total, label=label)
        self.n_samples = n_samples

    def on_epoch_end(self, loop, logs):
        if np.isfinite(logs["loss"]):
            self.reporter.epoch(loop.epoch, logs["loss"], logs["grad_norms"], logs["seconds"], self.n_samples)

    def on_fit_end(self, loop):
        self.reporter.close()


def check_schedule(schedule, name):
    """None, or an object that starts a learning-rate schedule (fastmlp.schedules)."""
    if isinstance(schedule, type):
        raise TypeError(f"{name} must be a schedule object, an instance such as {schedule.__name__}(), got the "
                        f"class {schedule.__name__} itself.")
    if schedule is not None and not callable(getattr(schedule, "start", None)):
        raise TypeError(f"{name} must be a schedule of fastmlp.schedules (an object with start(base_rate, "
                        f"max_epochs)), got {schedule!r}.")
    return schedule
