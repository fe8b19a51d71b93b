"""Training diagnostics as matplotlib figures: loss curves and per-layer gradient norms.

matplotlib is an optional dependency (``pip install "fastmlp[plot]"``) and is
imported here only: ``import fastmlp`` never imports it. Each function draws on
the Axes it is given (``ax=``) or on a new figure, and returns the Axes, so a
learner can put several plots side by side and save them::

    import matplotlib.pyplot as plt
    from fastmlp.plot import plot_gradient_norms, plot_loss_curve

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    plot_loss_curve(model, ax=left)
    plot_gradient_norms(model, ax=right)
    fig.savefig("training.png")

They work with ``fastmlp.Network``, ``fastmlp.reference.Network`` and the
estimators ``fastmlp.MLPClassifier`` / ``fastmlp.MLPRegressor``: they read the
fitted attributes ``loss_curve_``, ``grad_norms_``, ``history_`` and, with a
validation set, ``validation_loss_curve_`` and (estimators with
``early_stopping=True``) ``validation_scores_``. ``plot_loss_curve`` also
draws an ensemble (``NetworkEnsemble``, ``MLPEnsembleClassifier``,
``MLPEnsembleRegressor``): every member's curves; the other two plot one
member at a time.
"""
import numpy as np

try:
    import matplotlib.axes
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
except ImportError as exc:  # the plot extra is not installed
    raise ImportError(
        "fastmlp.plot needs matplotlib; install it with: pip install \"fastmlp[plot]\" "
        "(or pip install matplotlib)."
    ) from exc

__all__ = ["plot_gradient_norms", "plot_learning_rate", "plot_loss_curve"]


def _fitted(model, name):
    """model.<name> as a non-empty array, or a ValueError saying the model is not fitted."""
    value = getattr(model, name, None)
    if value is None or len(value) == 0:
        raise ValueError(
            f"{type(model).__name__} has no {name}: fit the model before plotting "
            f"(the plot reads the fitted attribute {name})."
        )
    return np.asarray(value, dtype=np.float64)


def _member_curves(model):
    """Each member's (training, validation or None) loss curve for an ensemble (an MLPEnsembleClassifier or
    MLPEnsembleRegressor fitted, a NetworkEnsemble), None for one network."""
    members = getattr(model, "estimators_", None)
    if members is not None:
        return [(np.asarray(m.loss_curve_, dtype=np.float64), getattr(m, "validation_loss_curve_", None))
                for m in members]
    if hasattr(model, "_members"):  # a NetworkEnsemble: (n_members, epochs) arrays
        loss = _fitted(model, "loss_curve_")
        val = getattr(model, "validation_loss_curve_", None)
        return [(loss[k], None if val is None else val[k]) for k in range(len(loss))]
    return None


def _score_name(model):
    """What an estimator's validation_scores_ are: its scoring's name (None: accuracy or R^2)."""
    scoring = getattr(model, "scoring", None)
    if scoring is None:
        return "accuracy" if hasattr(model, "classes_") else "R^2"
    if scoring == "loss":
        return "minus the loss"
    return scoring if isinstance(scoring, str) else getattr(scoring, "__name__", "scoring")


def _one_network(model, plot):
    """A ValueError for an ensemble, whose members each have their own record: the plot draws one network's."""
    if getattr(model, "estimators_", None) is not None:
        raise ValueError(f"{plot} draws one network's record, and {type(model).__name__} is an ensemble: plot a "
                         f"member, {plot}(model.estimators_[k]).")
    if hasattr(model, "_members"):  # a NetworkEnsemble
        raise ValueError(f"{plot} draws one network's record, and {type(model).__name__} is an ensemble (its "
                         "members' records are rows of its own arrays: grad_norms_[k] is member k's).")


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots()
    elif not isinstance(ax, matplotlib.axes.Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}.")
    return ax


def _marker(n_points):
    """A marker for a line of one point, which would draw nothing visible (a fit of one epoch)."""
    return "o" if n_points == 1 else None


def plot_loss_curve(model, ax=None):
    """Plot the training loss of each epoch, the validation loss and the validation score when there are.

    Parameters
    ----------
    model : fastmlp.Network, fastmlp.reference.Network, MLPClassifier, MLPRegressor or an ensemble
        A fitted model: its ``loss_curve_`` (mean training loss per epoch, one
        entry per iteration for the lbfgs solver) is drawn (for an ensemble,
        NetworkEnsemble or MLPEnsembleClassifier / MLPEnsembleRegressor, one
        line per member, and one per member for its validation loss), and beside it its
        ``validation_loss_curve_`` when it had a validation set (label
        "validation loss"; NaN epochs, without one, leave gaps). If the model
        also has a non-empty ``validation_scores_`` (an estimator fitted with
        ``early_stopping=True``: accuracy for a classifier, R^2 for a
        regressor, by default; else its ``scoring``, named in the label), it
        is drawn on a secondary y axis on the right.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes of the losses. Its first line is the training loss (label
        "training loss"), the second the validation loss if any; its legend
        also lists the validation score line and the dotted line of the best
        validation score, which live on a twin Axes (``ax.figure.axes`` holds
        both).

    Raises
    ------
    ValueError
        If the model has no ``loss_curve_`` (not fitted) or it is empty.
    TypeError
        If ax is not a matplotlib Axes (or None).

    See Also
    --------
    plot_gradient_norms : The per-layer gradient norms of the same fit.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_iris
    >>> from fastmlp import MLPClassifier
    >>> from fastmlp.plot import plot_loss_curve
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, early_stopping=True,
    ...                     random_state=0).fit(X, y)
    >>> ax = plot_loss_curve(clf)
    >>> ax.get_xlabel(), len(ax.figure.axes)
    ('epoch', 2)
    >>> plt.close("all")
    """
    curves = _member_curves(model)
    if curves is not None:
        return _plot_member_losses(model, curves, _axes(ax))
    loss = _fitted(model, "loss_curve_")
    ax = _axes(ax)
    epochs = np.arange(1, len(loss) + 1)
    handles = ax.plot(epochs, loss, color="C0", marker=_marker(len(loss)), label="training loss")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss")
    val_loss = getattr(model, "validation_loss_curve_", None)
    if val_loss is not None and len(val_loss) > 0:
        handles += ax.plot(np.arange(1, len(val_loss) + 1), np.asarray(val_loss, dtype=np.float64), color="C2",
                           marker=_marker(len(val_loss)), label="validation loss")
        ax.set_ylabel("loss")
    ax.set_title(f"{type(model).__name__}: loss curve")

    scores = getattr(model, "validation_scores_", None)
    if scores is not None and len(scores) > 0:
        scores = np.asarray(scores, dtype=np.float64)
        twin = ax.twinx()
        what = _score_name(model)
        handles += twin.plot(np.arange(1, len(scores) + 1), scores, color="C1", marker=_marker(len(scores)),
                             label=f"validation score ({what})")
        twin.set_ylabel(f"validation score ({what})")
        best = getattr(model, "best_validation_score_", None)
        if best is not None and np.isfinite(best):  # the score of the weights early stopping kept
            handles.append(twin.axhline(best, color="C1", linestyle=":", linewidth=1,
                                        label=f"best validation score ({best:.3g})"))
    # a falling loss leaves the upper right empty; with a rising score, the middle right
    ax.legend(handles=handles, loc="upper right" if len(handles) == 1 else "center right")
    return ax


def _plot_member_losses(model, curves, ax):
    """plot_loss_curve of an ensemble: each member's training loss (and validation loss), one line each."""
    handles = {}  # legend entry -> its first line
    for loss, val in curves:
        # (a member's row: NaN after its last epoch, so its points are the finite ones)
        line, = ax.plot(np.arange(1, len(loss) + 1), loss, color="C0", alpha=0.7,
                        marker=_marker(int(np.isfinite(loss).sum())))
        handles.setdefault("training loss (each member)", line)
        if val is not None and len(val) > 0:
            line, = ax.plot(np.arange(1, len(val) + 1), np.asarray(val, dtype=np.float64), color="C2", alpha=0.7,
                            linestyle="--", marker=_marker(int(np.isfinite(np.asarray(val, dtype=float)).sum())))
            handles.setdefault("validation loss (each member)", line)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax.set_title(f"{type(model).__name__}: loss curves of {len(curves)} members")
    ax.legend(list(handles.values()), list(handles), loc="upper right")
    return ax


def plot_learning_rate(model, ax=None):
    """Plot the learning rate of each epoch: the schedule a fit followed.

    Parameters
    ----------
    model : fastmlp.Network, fastmlp.reference.Network, MLPClassifier or MLPRegressor
        A model fitted by a stochastic solver: its ``history_["learning_rate"]``
        is drawn (a per-batch schedule's epoch is the mean of its batches'
        rates; "invscaling" and "adaptive" show their steps).
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        With one line, labelled "learning rate"; a log y scale when the rates
        span more than a factor of 10.

    Raises
    ------
    ValueError
        If the model has no ``history_`` (not fitted), or no learning rate in
        it (L-BFGS has none).
    TypeError
        If ax is not a matplotlib Axes (or None).

    See Also
    --------
    plot_loss_curve : The losses of the same fit.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastmlp import Network
    >>> from fastmlp.plot import plot_learning_rate
    >>> from fastmlp.schedules import StepDecay
    >>> X = np.random.default_rng(0).standard_normal((32, 4))
    >>> net = Network([4, 8, 1], random_state=0).fit(X, X[:, :1], epochs=6,
    ...                                              lr_schedule=StepDecay(step_size=2, gamma=0.5))
    >>> ax = plot_learning_rate(net)
    >>> ax.get_lines()[0].get_ydata().tolist()
    [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    >>> plt.close("all")
    """
    _one_network(model, "plot_learning_rate")
    history = getattr(model, "history_", None)
    if not history or not len(history["learning_rate"]):
        raise ValueError(f"{type(model).__name__} has no history_: fit the model before plotting "
                         "(the plot reads history_['learning_rate']).")
    rates = np.asarray(history["learning_rate"], dtype=np.float64)
    if np.isnan(rates).all():
        raise ValueError(f"{type(model).__name__} has no learning rates to plot: its solver (L-BFGS) keeps none.")
    ax = _axes(ax)
    epochs = np.arange(1, len(rates) + 1)
    ax.plot(epochs, rates, color="C3", marker=_marker(len(rates)), label="learning rate")
    finite = rates[np.isfinite(rates) & (rates > 0)]
    if len(finite) and finite.max() > 10 * finite.min():
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("learning rate")
    ax.set_title(f"{type(model).__name__}: learning rate")
    return ax


def plot_gradient_norms(model, ax=None):
    """Plot each layer's weight-gradient norm per epoch, on a log scale.

    One line per weight layer, coloured from the first layer (dark) to the
    output layer (light). Lines far below the others mean vanishing gradients
    in those layers (their weights barely move); lines climbing by orders of
    magnitude mean exploding gradients.

    Parameters
    ----------
    model : fastmlp.Network, fastmlp.reference.Network, MLPClassifier or MLPRegressor
        A fitted model: its ``grad_norms_``, an array of shape
        (n_epochs, n_layers) holding per epoch the mean over batches of
        ``||dW_l||_F`` for each weight layer l, is drawn.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        With one line per layer, labelled "layer 1" (the first, next to the
        inputs) to "layer n_layers" (the output layer), and a log y scale.
        Zero norms (a layer with no gradient at all) are not drawn; when all
        are zero, the axis is linear and says so.

    Raises
    ------
    ValueError
        If the model has no ``grad_norms_`` (not fitted), it is empty or it is
        not 2-D.
    TypeError
        If ax is not a matplotlib Axes (or None).

    See Also
    --------
    plot_loss_curve : The training loss of the same fit.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastmlp import Network
    >>> from fastmlp.plot import plot_gradient_norms
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((32, 4))
    >>> net = Network([4, 8, 8, 1], random_state=0).fit(X, X[:, :1], epochs=5)
    >>> ax = plot_gradient_norms(net)
    >>> [line.get_label() for line in ax.get_lines()]
    ['layer 1', 'layer 2', 'layer 3']
    >>> ax.get_yscale()
    'log'
    >>> plt.close("all")
    """
    _one_network(model, "plot_gradient_norms")
    norms = _fitted(model, "grad_norms_")
    if norms.ndim != 2:
        raise ValueError(f"{type(model).__name__}.grad_norms_ must have shape (n_epochs, n_layers), "
                         f"got {norms.shape}.")
    ax = _axes(ax)
    n_epochs, n_layers = norms.shape
    epochs = np.arange(1, n_epochs + 1)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, n_layers))
    marker = _marker(n_epochs)
    for l in range(n_layers):
        ax.plot(epochs, norms[:, l], color=colors[l], marker=marker, label=f"layer {l + 1}")
    if (norms > 0).any():
        ax.set_yscale("log", nonpositive="mask")
    else:  # (no gradient at all, every unit dead: a log axis would have nothing to show, and warn)
        ax.text(0.5, 0.5, "every gradient norm is zero (no unit active?)", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("mean gradient norm ||dW||")
    ax.set_title(f"{type(model).__name__}: gradient norm per layer")
    ax.legend(loc="best", fontsize="small", ncol=2 if n_layers > 5 else 1)
    return ax
