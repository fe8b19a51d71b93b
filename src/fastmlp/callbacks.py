"""Callbacks for fastmlp's training loop and for scikit-learn's (``set_callbacks``).

A callback here works in both places: in ``Network.fit(..., callbacks=[...])``
it is a hook of the training loop (``on_fit_begin``, ``on_epoch_end``), and on
an estimator's ``set_callbacks`` (scikit-learn >= 1.9) it follows
``sklearn.callback``'s protocol, one task per epoch.
"""
import math
import os

from ._training import held_interrupts
from .persistence import _check_savable, save

__all__ = ["Checkpoint"]

_MONITORS = ("auto", "val_score", "val_loss", "loss")


class Checkpoint:
    """Write the best model so far to one file, in fastmlp's safe format, atomically.

    After each epoch whose score beats every earlier epoch of the fit, the
    model (with the weights of that epoch, its history and optimizer state) is
    written to a temporary file next to ``path`` and renamed over it, so
    ``fastmlp.load(path)`` always reads a whole checkpoint: the previous one if
    the process dies while writing.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (no extension is added).
    monitor : {"auto", "val_score", "val_loss", "loss"}, default="auto"
        What "best" means: the highest validation score ("val_score", as
        early stopping follows it), the lowest validation loss ("val_loss"),
        the lowest training loss ("loss"); "auto" is the validation score
        where there is a validation set, else the training loss.

    Attributes
    ----------
    best_epoch_ : int or None
        The epoch (1-based, in the current fit) last written, None before one is.
    best_score_ : float
        Its score: higher is better (minus the loss for the losses).

    See Also
    --------
    fastmlp.load : Read the checkpoint back.

    Notes
    -----
    Inside a grid search every fit writes the same file: give each estimator
    its own Checkpoint. The best is per fit (or ``partial_fit``) call.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fastmlp
    >>> from fastmlp.callbacks import Checkpoint
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3))
    >>> Y = X @ np.array([[1.0], [-1.0], [0.5]])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "best.fastmlp")
    ...     net = fastmlp.Network([3, 8, 1], random_state=0)
    ...     net = net.fit(X[:40], Y[:40], epochs=20, validation_data=(X[40:], Y[40:]),
    ...                   early_stopping=True, callbacks=[Checkpoint(path)])
    ...     best = fastmlp.load(path)
    >>> bool((best.predict(X) == net.predict(X)).all())
    True
    """

    def __init__(self, path, monitor="auto"):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
        if monitor not in _MONITORS:
            raise ValueError(f"monitor={monitor!r} is not supported; valid values are "
                             f"{', '.join(map(repr, _MONITORS))}.")
        self.path = path
        self.monitor = monitor
        self._reset()

    def __repr__(self):
        return f"Checkpoint({os.fspath(self.path)!r}, monitor={self.monitor!r})"

    def _reset(self):
        self.best_epoch_ = None
        self.best_score_ = -math.inf
        self._epoch = 0

    def _score(self, record):
        """The epoch's score from its record (a dict of numbers), higher is better; NaN if it has none."""
        val_score = record.get("val_score", math.nan)
        if self.monitor == "val_score" or (self.monitor == "auto" and not math.isnan(val_score)):
            return val_score
        if self.monitor == "val_loss":
            return -record.get("val_loss", math.nan)
        return -record["loss"]

    def _needs_validation(self, has_validation):
        """A ValueError for a monitor of validation numbers in a fit without a validation set (it would never
        write anything)."""
        if self.monitor in ("val_score", "val_loss") and not has_validation:
            raise ValueError(f"Checkpoint(monitor={self.monitor!r}) follows the validation set's numbers, and this "
                             "fit has none: fit with one (validation_data=, X_val= and y_val=, or "
                             "early_stopping=True), or monitor 'loss' or 'auto'.")

    def _offer(self, model, record):
        """Write model if this epoch's record beats the best so far."""
        # (scikit-learn's hooks: told at the first epoch, by the record's keys; a NaN validation loss, of outputs
        # that were not finite, is one)
        self._needs_validation(self._epoch > 0 or "val_loss" in record)
        self._epoch += 1
        score = self._score(record)
        if score > self.best_score_:  # (never for NaN)
            with held_interrupts():  # (a Ctrl-C while it writes: after the file and the best say the same)
                save(model, self.path)
                self.best_score_, self.best_epoch_ = score, self._epoch

    # ------------------------------------------------ fastmlp's training loop

    def on_fit_begin(self, loop):
        """Start a fit: no best yet.

        Parameters
        ----------
        loop : fastmlp._training.EpochLoop
            The training loop of the fit.

        Raises
        ------
        ValueError
            For monitor "val_score" or "val_loss" in a fit without a validation set, or a path whose
            folder does not exist.
        """
        self._needs_validation(loop.validation is not None)
        _check_savable(loop.net, self.path)
        self._reset()

    def on_epoch_end(self, loop, logs):
        """Write the network if this epoch is the best so far.

        Parameters
        ----------
        loop : fastmlp._training.EpochLoop
            The training loop; ``loop.net`` is the network, with this epoch's weights.
        logs : dict
            The epoch's record: "loss", and "val_loss", "val_score" with a validation set.

        Returns
        -------
        bool
            False: a checkpoint never stops training.
        """
        self._offer(loop.net, logs)
        return False

    def on_fit_end(self, loop):
        """End a fit: write the last epoch if it is the best and was never offered.

        An epoch is never offered when a Ctrl-C stopped a callback before this
        one at its end; it is written here if the network still holds its
        weights (without early stopping, or where it is the best).

        Parameters
        ----------
        loop : fastmlp._training.EpochLoop
            The training loop of the fit.
        """
        logs = loop.logs
        if logs is None or self._epoch >= len(loop.grad_norms) or not math.isfinite(logs["loss"]):
            return
        # (early stopping put the best weights back: the last epoch's only if it was the best)
        if not loop.keep_best or logs.get("val_score") == loop.best_score:
            self._offer(loop.net, logs)

    # ---------------------------------------------- scikit-learn's callbacks

    def setup(self, estimator, context):
        """Start a fit of the estimator: no best yet (scikit-learn's hook).

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being fitted.
        context : sklearn.callback.CallbackContext
            The fit's task.

        Raises
        ------
        ValueError
            For a path whose folder does not exist.
        TypeError
            For an estimator parameter a file cannot hold (a callable ``scoring``): before the first
            epoch, not at the first write.
        """
        _check_savable(estimator, self.path)
        self._reset()

    def teardown(self, estimator, context):
        """End a fit (scikit-learn's hook): nothing to do, every write is complete.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator fitted.
        context : sklearn.callback.CallbackContext
            The fit's task.
        """

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None):
        """Begin a task (scikit-learn's hook): nothing to do.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being fitted.
        context : sklearn.callback.CallbackContext
            The task: the fit, or one of its epochs.
        X, y, metadata, fitted_estimator : object, default=None
            The task's data and model, unused.
        """

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None):
        """Write the epoch's ready-to-predict estimator if it is the best so far (scikit-learn's hook).

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being fitted; its ``history_`` holds the epoch's record.
        context : sklearn.callback.CallbackContext
            The task: the fit, or one of its epochs (only those are offered).
        X, y, metadata : object, default=None
            The task's data, unused.
        fitted_estimator : MLPClassifier or MLPRegressor, default=None
            A copy of the estimator with the epoch's weights: what is written.

        Returns
        -------
        bool
            False: a checkpoint never stops training.
        """
        if context.task_name != "epoch" or fitted_estimator is None:
            return False  # the fit's own task: its epochs were offered already
        history = estimator.history_
        self._offer(fitted_estimator, {key: values[-1] for key, values in history.items()})
        return False
