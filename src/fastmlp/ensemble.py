"""fastmlp.NetworkEnsemble: K networks of one architecture trained in one pass over the batches."""
import numbers
import time

import numpy as np

from . import _engine, _registry
from ._base import FixedSettings, _check_n_threads, _check_random_state
from ._training import (Divergence, EpochLoop, Patience, Trainer, Validation, check_schedule, draw_seed, drops,
                        epoch_total_weight, held_interrupts, next_order, warn_diverged)
from ._validation import (check_bool, check_float, check_int, check_weight_sum, check_writable, is_sparse,
                          line_aligned_empty)
from .network import Network, _check_rates, kept_clock

# What member_params may set per member: fit's learning_rate and alpha, the constructor's dropout and random_state.
MEMBER_PARAMS = ("learning_rate", "alpha", "dropout", "random_state")


def check_member_params(member_params, K, keys=MEMBER_PARAMS):
    """member_params as a list of K dicts (empty ones for None), each with only keys: TypeError or ValueError
    naming the entry. The values of learning_rate, alpha and random_state are checked here, others by their user."""
    if member_params is None:
        return [{} for _ in range(K)]
    if isinstance(member_params, (dict, str, bytes)) or not hasattr(member_params, "__len__"):
        raise TypeError(f"member_params must be None or a list of {K} dicts, got {member_params!r}.")
    if len(member_params) != K:
        raise ValueError(f"member_params must hold one dict per member (n_members={K}), "
                         f"got {len(member_params)}.")
    checked = []
    for k, own in enumerate(member_params):
        if not isinstance(own, dict):
            raise TypeError(f"member_params[{k}] must be a dict, got {own!r}.")
        unknown = sorted(set(own) - set(keys), key=str)
        if unknown:
            raise ValueError(f"member_params[{k}] has unknown keys {unknown}; "
                             f"valid keys are {list(keys)}.")
        own = dict(own)
        for name in ("learning_rate", "alpha"):
            if name in own:
                own[name] = check_float(own[name], f"member_params[{k}]['{name}']", 0.0,
                                        low_open=name == "learning_rate")
        seed = own.get("random_state")
        if "random_state" in own and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
            raise TypeError(f"member_params[{k}]['random_state'] must be a non-negative int, got {seed!r}.")
        if "random_state" in own and seed < 0:
            raise ValueError(f"member_params[{k}]['random_state'] must be a non-negative int, got {seed!r}.")
        checked.append(own)
    return checked


def dense(X):
    """X, a sparse matrix densified (the ensemble's engine reads dense rows)."""
    return X.toarray() if is_sparse(X) else X


class MemberPack:
    """K members' parameters, optimizer state and Adam steps in the engine's ensemble layout, and their epochs.

    The engine trains K networks of one architecture at once from buffers
    laid out as described above ``Ens`` in ``_engine.pyx`` (the first layer's
    weights side by side). ``index[k]`` lists where member k's parameters, in
    a Network's order (W_1, b_1, W_2, ..., then the PReLU slopes), sit in
    that layout, so that moving all members in or out is one gather or
    scatter; ``unit_index[k]`` does the same for the hidden units' maxima.

    Parameters
    ----------
    net : Network
        A member: the architecture (sizes, activations, loss, dtype).
    keep : ndarray of shape (K, n_hidden_layers)
        Each member's keep probability per hidden layer.
    n_state : int
        The optimizer's state buffers (of the parameters' size).
    batch_size : int
        The rows of a batch (the layout depends on it: see ``_engine.ensemble_index``).
    """

    def __init__(self, net, keep, n_state, batch_size):
        self.net, self.keep = net, np.ascontiguousarray(keep, dtype=np.float64)
        K = self.K = keep.shape[0]
        self.index, n_params = _engine.ensemble_index(net._sizes, net._act_codes, K, batch_size)
        sizes, members = net.layer_sizes, np.arange(K)[:, None]
        starts = np.concatenate([[0], np.cumsum([K * n for n in sizes[1:-1]])])
        self.unit_index = np.concatenate(
            [starts[l] + members * n + np.arange(n) for l, n in enumerate(sizes[1:-1])] or [np.empty((K, 0), int)],
            axis=1)
        self.params = line_aligned_empty(n_params, net.dtype, fill=0)  # (on a line, as every array the engine
        # writes; the gaps between the groups' blocks, ENSEMBLE_GROUP_GAP, hold zeros)
        self.state = [line_aligned_empty(n_params, net.dtype, fill=0) for _ in range(max(n_state, 1))]
        self.steps = np.zeros(K, dtype=np.int64)
        self.batch_size = batch_size
        self._grads = line_aligned_empty(n_params, net.dtype)
        self._work = line_aligned_empty(
            _engine.ensemble_workspace_size(net._sizes, net._act_codes, self.keep, K, batch_size), net.dtype)

    def pack(self, flats, to=None):
        """Write the members' flat arrays (K of them, a Network's layout) into `to` (default: params)."""
        (self.params if to is None else to)[self.index] = np.stack(flats)

    def unpack(self, k, out, frm=None):
        """Member k's part of `frm` (default: params) into its flat array out."""
        np.take(self.params if frm is None else frm, self.index[k], out=out)

    def epoch(self, settings, learning_rates, alphas, seeds, X, Y, sample_weight, order, clock, batch_rates=None):
        """One epoch of the K members on dense, checked X; returns (loss_sums, norm_sums, unit_max, n_batches)
        as train_ensemble_epoch gives them (a member's loss sum NaN: its loss was not finite). learning_rates:
        each member's rate for the epoch; batch_rates (None, or per member None or a schedule's rate per batch,
        trainer.rates): the rates of each batch instead."""
        net = self.net
        rates = np.array([learning_rates], dtype=np.float64)  # (1, K): one rate per member for the epoch
        if batch_rates is not None and any(r is not None for r in batch_rates):
            n_batches = next(len(r) for r in batch_rates if r is not None)
            rates = np.repeat(rates, n_batches, axis=0)
            for k, r in enumerate(batch_rates):
                if r is not None:
                    rates[:, k] = r
        if settings["batch_size"] != self.batch_size:  # (the layout and the workspace are this batch size's)
            raise ValueError(f"MemberPack: made for batches of {self.batch_size} rows, not {settings['batch_size']}")
        loss_sums = np.zeros(self.K)
        norm_sums = np.zeros((self.K, len(net.layer_sizes) - 1))
        unit_max = line_aligned_empty(self.unit_index.size, self.params.dtype, fill=-np.inf)
        n_batches = _engine.train_ensemble_epoch(
            net._sizes, net._act_codes, self.keep, settings, rates,
            np.asarray(alphas, dtype=np.float64), np.asarray(seeds, dtype=np.uint64), self.steps, self.params,
            self._grads, self.state[0], self.state[-1], self._work, X, Y, sample_weight, order, loss_sums, norm_sums,
            unit_max, clock)
        return loss_sums, norm_sums, unit_max, n_batches

    def member_finite(self):
        """Per member, whether its parameters are all finite."""
        if np.isfinite(self.params).all():
            return np.ones(self.K, dtype=bool)
        return np.isfinite(self.params[self.index]).all(axis=1)


class NetworkEnsemble(FixedSettings):
    """K networks of one architecture, trained together in one pass over the batches.

    The members share the layer sizes, activations, loss, dtype, the batches
    (one shuffle per epoch) and the optimizer; each has its own initial weights
    and dropout masks (from its own seed) and may have its own learning rate,
    L2 alpha and dropout rates (``member_params``). Each member is trained
    as a ``Network`` with its seed would be on the same batches (the same
    updates, equal to rounding: the products are summed in another order): the
    engine runs all members' batch at once (the first layer's product for all
    members is one wide product) and splits the members over its threads.

    Parameters
    ----------
    layer_sizes : sequence of int
        As for ``Network``: ``[n_inputs, hidden..., n_outputs]``.
    n_members : int, default=8
        K, the number of members (at least 1).
    activation : str, default="relu"
        Hidden activation, as for ``Network``.
    output_activation : str, default="identity"
        Output activation, as for ``Network``.
    loss : str, default="squared_error"
        The loss, paired with the output activation as for ``Network``.
    init : str, default="auto"
        The initialisation scheme, as for ``Network``.
    dtype : {"float32", "float64"}, default="float64"
        Of every member's weights and outputs.
    dropout : float or list of float, default=0.0
        Every member's dropout rate(s), as for ``Network``, unless its
        ``member_params`` entry sets its own.
    random_state : None, int, numpy.random.Generator or RandomState, default=None
        Source of the shuffling and of the seeds of the members that
        ``member_params`` gives none (drawn in member order).
    loss_param : float, default=None
        The loss's parameter, as for ``Network``.
    member_params : list of dict, default=None
        One dict per member (K of them), each setting any of
        ``"learning_rate"`` and ``"alpha"`` (overriding fit's), ``"dropout"``
        and ``"random_state"`` (an int: the member's seed, as a ``Network``'s).

    Attributes
    ----------
    n_members : int
        K.
    member_params : list of dict
        One dict per member (empty ones where none were given). Read again
        by every fit for ``"learning_rate"`` and ``"alpha"`` (they may be
        changed between fits); ``"dropout"`` and ``"random_state"`` are the
        constructor's (fit raises a ValueError if they changed).
    seeds_ : tuple of int
        Each member's seed: ``member(k)`` starts as
        ``Network(layer_sizes, ..., random_state=seeds_[k])``.
    activation, output_activation, loss, init, loss_param : str, str, str, str, float or None
        The configuration every member was built with (fixed, as
        ``layer_sizes`` and ``dtype``).
    dropout : tuple of float or None
        The constructor's rates, which members without a ``"dropout"`` in
        ``member_params`` have; None when every member has its own (fixed).
    n_epochs_ : ndarray of shape (n_members,)
        After fit: the epochs each member trained in the last call (fewer
        than ``epochs`` where early stopping or a divergence ended it).
    loss_curve_ : ndarray of shape (n_members, epochs)
        After fit: each member's mean training loss per epoch, L2 term
        included; ``epochs`` is the most any member trained, and a member's
        row is NaN after its ``n_epochs_``.
    grad_norms_ : ndarray of shape (n_members, epochs, n_layers)
        After fit: each member's mean over the batches of ``||dW_l||`` per
        epoch and layer (as ``Network.grad_norms_``, NaN after its
        ``n_epochs_``); each member's ``dead_units_`` is that of ``member(k)``.
    validation_loss_curve_ : ndarray of shape (n_members, epochs)
        After a fit given ``validation_data``: each member's loss on it after
        every epoch (as ``Network.validation_loss_curve_``, NaN after its
        ``n_epochs_``).

    See Also
    --------
    Network : One member alone.

    Notes
    -----
    Each member keeps its weights as a Network does; fit moves them into one
    buffer (``MemberPack``) for its epochs: per layer, the weights of all
    members (the first hidden layer's side by side as one (n_inputs, K
    fan_out) matrix, the others one block per member), then their biases
    side by side, and back when it returns. Sparse X is densified.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import NetworkEnsemble
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((64, 3))
    >>> Y = X @ np.array([[1.0], [-1.0], [0.5]])
    >>> ens = NetworkEnsemble([3, 8, 1], n_members=4, random_state=0,
    ...                       member_params=[{"alpha": a} for a in (0.0, 1e-4, 1e-3, 1e-2)])
    >>> ens = ens.fit(X, Y, epochs=20, batch_size=16, optimizer="adam", learning_rate=0.01)
    >>> ens.loss_curve_.shape, ens.forward(X).shape, ens.predict(X).shape
    ((4, 20), (4, 64, 1), (64, 1))
    >>> ens.member(2).coefs_[0].shape
    (3, 8)
    """

    # (member_params is read at every fit, checked: _fit_member_params)
    _FIXED = ("n_members", "layer_sizes", "dtype", "seeds_", "activation", "output_activation", "loss", "init",
              "dropout", "loss_param")

    def __init__(self, layer_sizes, n_members=8, activation="relu", output_activation="identity",
                 loss="squared_error", init="auto", dtype="float64", dropout=0.0, random_state=None,
                 loss_param=None, member_params=None):
        K = self.n_members = check_int(n_members, "n_members", 1)
        self.member_params = check_member_params(member_params, K)
        self._rng = _check_random_state(random_state)
        config = dict(activation=activation, output_activation=output_activation, loss=loss, init=init,
                      dtype=dtype, loss_param=loss_param)
        seeds, members = [], []
        for k, own in enumerate(self.member_params):
            seed = own["random_state"] if "random_state" in own else draw_seed(self._rng)
            try:
                members.append(Network(layer_sizes, dropout=own.get("dropout", dropout), random_state=seed, **config))
            except (TypeError, ValueError) as exc:
                if "dropout" in own or "random_state" in own:  # name the member whose setting it was
                    raise type(exc)(f"member_params[{k}]: {exc}") from None
                raise
            seeds.append(seed)
        self.seeds_ = tuple(seeds)  # (a tuple: fixed, as n_members is)
        # member k's Network: its configuration, its generator for the dropout seeds of each epoch, and its
        # weights between fits (a fit trains them in a MemberPack)
        self._members = members
        self._adopt_members()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_clock", None)  # the engine's thread timings: this process's, measured anew
        state.pop("_forward_clock_values", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__["seeds_"] = tuple(self.seeds_)  # (pickled when it was a list)
        if "activation" not in state:  # (pickled before the configuration was the ensemble's to read)
            self._adopt_members()
        if "loss_curve_" in state and "n_epochs_" not in state:  # (pickled before early stopping: every epoch)
            self.n_epochs_ = np.full(self.n_members, np.shape(self.loss_curve_)[1], dtype=np.intp)

    def _adopt_members(self):
        """What the ensemble reads from its member networks (after __init__, and after fastmlp.load)."""
        net = self._members[0]
        self.layer_sizes = net.layer_sizes
        self.dtype = net.dtype
        # the configuration the members were built with, readable and fixed (a new value would be ignored);
        # dropout: the constructor's, which members without their own member_params entry have
        for name in ("activation", "output_activation", "loss", "init", "loss_param"):
            self.__dict__[name] = getattr(net, name)
        self.__dict__["dropout"] = next((m.dropout for m, own in zip(self._members, self.member_params)
                                         if "dropout" not in own), None)
        self._keep = np.array([m._keep for m in self._members], dtype=np.float64).reshape(self.n_members,
                                                                                        len(net._keep))

    def _fit_member_params(self):
        """member_params as it is now (its dicts may have been changed in place, or the list replaced),
        checked as the constructor's; its dropout and random_state entries must be those the members were
        built with."""
        params = check_member_params(self.member_params, self.n_members)
        for k, (own, member) in enumerate(zip(params, self._members)):
            if "random_state" in own and own["random_state"] != self.seeds_[k]:
                raise ValueError(f"member_params[{k}]['random_state'] is {own['random_state']}, but member {k} was "
                                 f"built with seed {self.seeds_[k]}: a member's seed is the constructor's "
                                 "(make a new NetworkEnsemble to change it).")
            if "dropout" in own:
                try:
                    rates = tuple(member._check_dropout(own["dropout"], len(self.layer_sizes) - 2))
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"member_params[{k}]: {exc}") from None
                if rates != member.dropout:
                    raise ValueError(f"member_params[{k}]['dropout'] is {own['dropout']!r}, but member {k} was "
                                     f"built with {list(member.dropout)}: a member's dropout is the constructor's "
                                     "(make a new NetworkEnsemble to change it).")
        return params

    def member(self, k):
        """Member k as a standalone Network (a copy of its weights, the configuration it was built with).

        Parameters
        ----------
        k : int
            The member, 0 <= k < n_members.

        Returns
        -------
        Network
            A new Network holding a copy of member k's weights.
        """
        k = check_int(k, "k", 0, self.n_members - 1)
        return self._members[k]._snapshot()

    @property
    def members_(self):
        """Every member as a standalone Network (copies, as ``member(k)`` gives them)."""
        return [self.member(k) for k in range(self.n_members)]

    def forward(self, X, n_threads=None):
        """Every member's output.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (n_samples, n_inputs)
            The rows to evaluate.
        n_threads : int or None, default=None
            As for ``Network.forward``.

        Returns
        -------
        ndarray of shape (n_members, n_samples, n_outputs)
            Member k's output (no dropout) at ``[k]``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import NetworkEnsemble
        >>> ens = NetworkEnsemble([2, 4, 1], n_members=3, random_state=0)
        >>> ens.forward(np.zeros((5, 2))).shape
        (3, 5, 1)
        """
        n_threads = _check_n_threads(n_threads)
        first = self._members[0]
        return first._forward_members(self._members, first._check_X(X), n_threads,
                                      clock=kept_clock(self, "_forward_clock_values", _engine.new_forward_clock))

    def predict(self, X, n_threads=None):
        """The members' mean output.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (n_samples, n_inputs)
            The rows to evaluate.
        n_threads : int or None, default=None
            As for ``Network.forward``.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            The mean over the members of ``forward(X)``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import NetworkEnsemble
        >>> ens = NetworkEnsemble([2, 4, 1], n_members=3, random_state=0)
        >>> X = np.ones((5, 2))
        >>> bool(np.allclose(ens.predict(X), ens.forward(X).mean(axis=0)))
        True
        """
        return self.forward(X, n_threads).mean(axis=0)

    def fit(self, X, Y, epochs=10, batch_size=32, optimizer="sgd", learning_rate=0.01, momentum=0.0,
            nesterov=False, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=0.0, clip_norm=None,
            shuffle=True, sample_weight=None, n_threads=None, validation_data=None, early_stopping=False,
            patience=10, lr_schedule=None):
        """Train every member with mini-batch gradient descent, in one pass over the batches per epoch.

        The arguments are ``Network.fit``'s; ``learning_rate`` and ``alpha``
        are those of the members whose ``member_params`` set none. Each member
        is trained as ``Network.fit`` would train it (its own training loop:
        validation, early stopping, divergence), but the epochs of all members
        run together on the same batches: each epoch shuffles the rows once
        (from random_state) for all members; each member with dropout draws its
        masks' seed from its own generator, as a Network would. Clipping
        applies to each member's own gradient.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (n_samples, n_inputs)
            Training rows (sparse input is densified).
        Y : array-like of shape (n_samples, n_outputs), or (n_samples,) for one output
            Targets, as for ``Network.fit``.
        epochs : int, default=10
            Passes over the data.
        batch_size : int, default=32
            Rows per update (at most n_samples); the last batch may be smaller.
        optimizer : {"sgd", "adam"}, default="sgd"
            Shared by the members; the optimizer state starts fresh at every call.
        learning_rate : float, default=0.01
            The step size of members whose ``member_params`` set none.
        momentum : float in [0, 1], default=0.0
            SGD momentum.
        nesterov : bool, default=False
            Nesterov's momentum (SGD).
        beta_1 : float, default=0.9
            Adam's first-moment decay.
        beta_2 : float, default=0.999
            Adam's second-moment decay.
        epsilon : float, default=1e-8
            Adam's denominator term.
        alpha : float, default=0.0
            The L2 penalty of members whose ``member_params`` set none.
        clip_norm : float or None, default=None
            Each member's gradient is rescaled to a global norm of at most clip_norm.
        shuffle : bool, default=True
            Shuffle the rows every epoch (from random_state), once for all members.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, as for ``Network.fit``.
        n_threads : int or None, default=None
            The engine's threads, as for ``Network.fit``; groups of members
            (fixed by the sizes) are shared by the threads, so the weights are
            the same bits for any count.
        validation_data : tuple (X_val, Y_val) or (X_val, Y_val, sample_weight_val), default=None
            Scored after every epoch, as for ``Network.fit``: each member's
            validation loss per epoch in ``validation_loss_curve_``.
        early_stopping : bool, default=False
            Per member, as for ``Network.fit``: a member stops when its
            validation score has not improved for ``patience`` epochs (the
            others go on), and ends with the weights of its best epoch; a
            member whose epoch diverges ends with them too, the diverged epoch
            recorded as NaN. Needs ``validation_data``.
        patience : int, default=10
            Epochs without improvement before a member stops (early_stopping).
        lr_schedule : schedule, default=None
            A learning-rate schedule of :mod:`fastmlp.schedules`, as for
            ``Network.fit``: each member runs its own course of it, started
            from its own learning rate (ReduceOnPlateau follows each member's
            own loss), its rates per batch as a Network's. None: each member's
            ``learning_rate`` throughout.

        Returns
        -------
        NetworkEnsemble
            Itself, trained; ``loss_curve_`` holds this call's epochs,
            ``n_epochs_`` how many each member trained.

        Raises
        ------
        ValueError
            On bad input, and (without early stopping) when a member's loss or
            weights become non-finite, or its outputs on X overflow after the
            last epoch: that member's weights are then those of the start of
            that epoch, or those before the call when those already overflow
            the outputs (as ``Network.fit``); the other members' are those of
            the start of that epoch, or of their last epoch when the end's
            check failed; every member's row of the records holds the epochs
            its weights come from (NaN after them).

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import NetworkEnsemble
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((64, 3))
        >>> Y = X.sum(axis=1)
        >>> ens = NetworkEnsemble([3, 8, 1], n_members=3, random_state=0,
        ...                       member_params=[{"learning_rate": lr} for lr in (1e-3, 1e-2, 1e-1)])
        >>> ens = ens.fit(X, Y, epochs=5, optimizer="adam")
        >>> ens.loss_curve_.shape
        (3, 5)
        """
        members = self._members
        net = members[0]
        member_params = self._fit_member_params()
        X = dense(net._check_X(X))
        Y = net._check_Y(Y, X.shape[0])
        sample_weight = net._check_sample_weight(sample_weight, X.shape[0])
        validation = net._check_validation_data(validation_data)
        epochs = check_int(epochs, "epochs", 1)
        shuffle = check_bool(shuffle, "shuffle")
        n_threads = _check_n_threads(n_threads)
        early_stopping = check_bool(early_stopping, "early_stopping")
        patience = check_int(patience, "patience", 1)
        if early_stopping and validation is None:
            raise ValueError("early_stopping=True needs validation_data=(X_val, Y_val) to stop on.")
        check_writable([m._params for m in members], "NetworkEnsemble")
        shared = dict(momentum=momentum, nesterov=nesterov, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                      clip_norm=clip_norm)
        checked = Trainer(net, optimizer, batch_size, learning_rate, alpha=alpha, **shared)  # (the call's own)
        check_weight_sum(sample_weight, net.dtype, checked.settings["batch_size"])
        schedule = check_schedule(lr_schedule, "lr_schedule")
        # each member's own loop, as its Network's fit would run it (the optimizer state starts fresh at every
        # call; a schedule's course from its own rate), all trained in one pass over the batches
        trainers = [Trainer(m, optimizer, batch_size, own.get("learning_rate", learning_rate),
                            alpha=own.get("alpha", alpha), **shared) for own, m in zip(member_params, members)]
        runs = [None if schedule is None else schedule.start(t.settings["learning_rate"], epochs) for t in trainers]
        loops = [EpochLoop(m, trainer, X, Y, sample_weight, max_epochs=epochs, shuffle=shuffle, n_threads=n_threads,
                           validation=validation, keep_best=early_stopping,
                           hooks=[Patience(patience)] if early_stopping else (), schedule=run)
                 for m, trainer, run in zip(members, trainers, runs)]
        try:
            run_in_one_pass(loops, self._rng, shuffle, kept_clock(self, "_clock"))
        finally:  # (whatever ends it: each member's record holds the epochs its weights come from)
            self._record(loops, validation is not None)
        for k, loop in enumerate(loops):
            if loop.diverged is not None:
                warn_diverged(loop.epoch, loop.best_score, loop.trainer.settings["learning_rate"], f"Member {k}: ")
        return self

    def _record(self, loops, validated):
        """The members' records of the call, as rows of (n_members, epochs) arrays (NaN after a member's
        last epoch), written whole (a Ctrl-C meanwhile waits for it)."""
        with held_interrupts():
            self._write_record(loops, validated)

    def _write_record(self, loops, validated):
        counts = np.array([len(loop.grad_norms) for loop in loops], dtype=np.intp)
        shape = (self.n_members, int(counts.max()))
        losses, val_losses = np.full(shape, np.nan), np.full(shape, np.nan)
        norms = np.full((*shape, len(self.layer_sizes) - 1), np.nan)
        for k, (loop, n) in enumerate(zip(loops, counts)):
            losses[k, :n] = loop.history["loss"]
            if n:
                norms[k, :n] = loop.grad_norms
            if validated:
                val_losses[k, :n] = loop.history["val_loss"]
        self.n_epochs_, self.loss_curve_, self.grad_norms_ = counts, losses, norms
        if validated:
            self.validation_loss_curve_ = val_losses
        else:
            self.__dict__.pop("validation_loss_curve_", None)  # (an earlier call's)

    def save(self, path):
        """Write the ensemble to one file at exactly `path`, without pickle.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write, used as given (no extension is added); an existing
            file is replaced whole or not at all.

        See Also
        --------
        fastmlp.load : Read the file back: an ensemble that predicts the same
            bits and continues training as this one would.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import fastmlp
        >>> ens = fastmlp.NetworkEnsemble([2, 4, 1], n_members=3, random_state=0)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "ens.fastmlp")
        ...     ens.save(path)
        ...     loaded = fastmlp.load(path)
        >>> X = np.ones((5, 2))
        >>> bool((loaded.forward(X) == ens.forward(X)).all())
        True
        """
        from .persistence import save
        save(self, path)

    def __repr__(self):
        return f"NetworkEnsemble({list(self.layer_sizes)}, n_members={self.n_members})"


# The settings every member of one pass shares (the learning rate and alpha may differ, and the step counts).
_SHARED_SETTINGS = ("batch_size", "optimizer", "momentum", "nesterov", "beta_1", "beta_2", "epsilon", "clip_norm")


def run_in_one_pass(loops, rng, shuffle=True, clock=None):
    """Run the EpochLoops of K networks of one architecture on the same data in one pass over the batches.

    Each loop goes through what its own ``run()`` would (its hooks, validation,
    best weights, stopping rule, divergence and end-of-fit checks), but the
    epochs of all members still running are trained together by the engine's
    ensemble epoch (``MemberPack``), on the same batches: one shuffle per epoch
    from ``rng``. Each member keeps its own learning rate and L2 alpha (read
    from its trainer every epoch, so that its stopping rules may change them),
    its dropout masks (a seed drawn from its network's generator every epoch,
    as its own loop would) and its Adam step count. A member whose loop stops
    leaves the pass. A member whose epoch diverges is taken back to that
    epoch's start and handled as its own loop would: with keep_best it is
    recorded and stopped, and the others train that epoch again without it,
    on the same batches, so that no member depends on another; else its
    Divergence is raised (the first member's, in order), every other member
    back at the start of that epoch with the record of the epochs before it.
    The end-of-fit check of the members that finish together runs for each;
    the first that fails raises, the others keep their last epoch.

    Parameters
    ----------
    loops : list of EpochLoop
        Loops of networks of one architecture, loss and dtype, on the same X,
        Y and sample_weight, with trainers of the same batch size, optimizer
        and settings but for ``learning_rate`` and ``alpha``; each may have its own schedule (its rates per
        batch, as its own loop would train them).
    rng : numpy.random.Generator or RandomState
        The source of the shared shuffle.
    shuffle : bool, default=True
        Shuffle the rows every epoch.
    clock : ndarray or None, default=None
        The engine's thread timings to add to (``_engine.new_thread_clock``);
        None: a clock of the call's own.
    """
    first = loops[0]
    net = first.net
    for loop in loops:
        if loop.trainer is None:
            raise ValueError("run_in_one_pass: every loop needs a trainer")
        if (loop.net.layer_sizes != net.layer_sizes or list(loop.net._act_codes) != list(net._act_codes)
                or loop.net.dtype != net.dtype or loop.net.loss != net.loss or loop.net.loss_param != net.loss_param):
            raise ValueError("run_in_one_pass: the networks differ in architecture, loss or dtype")
        if any(loop.trainer.settings[key] != first.trainer.settings[key] for key in _SHARED_SETTINGS):
            raise ValueError("run_in_one_pass: the trainers differ in a shared setting")
        if loop.carry_order != first.carry_order or loop.loss_per_row != first.loss_per_row:
            raise ValueError("run_in_one_pass: the loops shuffle or report their loss differently")
        if not (_same(loop.X, first.X) and _same(loop.Y, first.Y) and _same(loop.sample_weight, first.sample_weight)):
            raise ValueError("run_in_one_pass: the loops train on different data")
    X, Y, sample_weight = dense(first.X), first.Y, first.sample_weight
    n = X.shape[0]
    n_state = _registry.OPTIMIZERS[first.trainer.settings["optimizer"]].n_state
    clock = _engine.new_thread_clock() if clock is None else clock
    active = list(range(len(loops)))
    # validations of the same data: every epoch's scores of all members in one Validation.evaluate_together
    together = first.validation is not None and all(
        loop.validation is not None and first.validation.same_data(loop.validation) for loop in loops[1:])
    pack = start = settings = order = None
    unset = object()
    last_dead = [unset] * len(loops)  # each member's dead_units_ after its last epoch completed (given back with it)

    def build():  # the pack of the active members, from their networks and trainers
        nonlocal pack, start, settings
        members = [loops[k] for k in active]
        built = net._engine_settings(first.trainer, min(first.trainer.settings["batch_size"], n), first.n_threads)
        built["dropout"] = any(drops(m.net) for m in members)
        built["loss_per_row"] = first.loss_per_row
        packed = MemberPack(net, np.array([m.net._keep for m in members]).reshape(len(members), -1), n_state,
                            built["batch_size"])
        packed.pack([m.net._params for m in members])
        for j in range(n_state):
            packed.pack([m.trainer.state[j] for m in members], to=packed.state[j])
        packed.steps[:] = [m.trainer.settings["step"] for m in members]
        # (the pack only once it holds every member: an interrupt before gives back nothing from it)
        start = [packed.params.copy(), *(s.copy() for s in packed.state)], packed.steps.copy()
        pack, settings = packed, built

    def give_back(i, at_start=False):  # member i of the pack to its network and trainer
        loop = loops[active[i]]
        buffers = start[0] if at_start else [pack.params, *pack.state]
        pack.unpack(i, loop.net._params, buffers[0])
        for j in range(n_state):
            pack.unpack(i, loop.trainer.state[j], buffers[1 + j])
        loop.trainer.settings["step"] = int((start[1] if at_start else pack.steps)[i])
        if last_dead[active[i]] is not unset:  # (those of its last epoch completed, if any)
            loop.net.dead_units_ = last_dead[active[i]]

    def mark_start(i):  # the start of this epoch as member i's trainer keeps it (what its roll-backs return to)
        trainer = loops[active[i]].trainer
        pack.unpack(i, trainer.start_of_epoch, start[0][0])
        for j in range(n_state):
            pack.unpack(i, trainer.state_at_start[j], start[0][1 + j])
        trainer.step_at_start = int(start[1][i])

    error = None
    for loop in loops:
        loop.start()
    try:
        while active:
            if pack is None:
                build()
            rates = [loops[k].begin_epoch() for k in active]  # (their means, for the record)
            # a schedule's rates per batch, checked as a Network's epoch checks them (a user's schedule may give any)
            batch_rates = [_check_rates(loops[k].trainer.rates, -(-n // min(settings["batch_size"], n)))
                           if loops[k].schedule is not None else None for k in active]
            tic = time.perf_counter()
            order = next_order(rng, n, order if first.carry_order else None) if shuffle else None
            seeds = []
            for k in active:  # (as its own loop draws and records the epoch's masks' seed)
                trained = loops[k].trainer.settings
                trained["seed"] = draw_seed(loops[k].net._rng) if trained["dropout"] else 0
                seeds.append(trained["seed"])
            for saved, now in zip(start[0], [pack.params, *pack.state]):
                np.copyto(saved, now)
            start[1][:] = pack.steps
            for k in active:
                loops[k].open_epoch()
            while True:
                alphas = [loops[k].trainer.settings["alpha"] for k in active]
                loss_sums, norm_sums, unit_max, n_batches = pack.epoch(settings, rates, alphas, seeds, X, Y,
                                                                       sample_weight, order, clock, batch_rates)
                bad = np.flatnonzero(~(np.isfinite(loss_sums) & pack.member_finite()))
                if bad.size == 0:
                    break
                # back to the epoch's start: each diverged member as its own loop would take it, then the
                # others train this epoch again without it
                for i in range(len(active)):
                    give_back(i, at_start=True)
                for i in bad:
                    loop = loops[active[i]]
                    mark_start(i)
                    exc = loop._roll_back("the loss or the weights became NaN or infinite")
                    if loop.keep_best:
                        loop._record_diverged(exc)
                    elif error is None:
                        if exc.to_call_start:
                            loop.forget_call()
                        error = exc
                if error is not None:
                    pack = None  # (every member is back at the epoch's start, the one raising as its loop left it)
                    raise error
                pack = None  # (every member given back: the pack's slots are no longer those of active)
                keep = [i for i in range(len(active)) if i not in set(bad)]
                rates, seeds, batch_rates = ([x[i] for i in keep] for x in (rates, seeds, batch_rates))
                active = [active[i] for i in keep]
                if not active:
                    break
                build()
                for saved, now in zip(start[0], [pack.params, *pack.state]):
                    np.copyto(saved, now)
                start[1][:] = pack.steps
            if not active:
                break
            seconds = time.perf_counter() - tic
            leaving = []
            for i, k in enumerate(active):  # the weights of now, where the epoch's end looks at them
                if loops[k].validation is not None or loops[k].observed:
                    pack.unpack(i, loops[k].net._params)
            # the validations (before any member records the epoch: an interrupt here takes every member
            # back to the epoch's start, as one anywhere before a member's record takes that member back)
            threads = _engine.clock_threads(clock, first.n_threads)  # (the threads the pass's clock prefers)
            if together:
                evaluations = Validation.evaluate_together([loops[k].validation for k in active],
                                                           [loops[k].net for k in active], threads)
            else:
                evaluations = [None if loops[k].validation is None
                               else loops[k].validation.evaluate(loops[k].net, threads) for k in active]
            dead = net._dead_fractions(unit_max[pack.unit_index])  # every member's dead_units_, in one call
            total_weight = epoch_total_weight(n, sample_weight, order, settings["batch_size"], first.loss_per_row)
            means, norms = (loss_sums / total_weight).tolist(), norm_sums / max(n_batches, 1)
            for i, k in enumerate(active):
                loop = loops[k]
                last_dead[k] = None if dead is None else dead[i]
                if loop.observed:  # (a callback may look: the network and trainer as its own loop keeps them)
                    loop.trainer.settings["step"] = int(pack.steps[i])
                    loop.net.dead_units_ = last_dead[k]
                if loop.end_epoch(means[i], norms[i], rates[i], seconds, evaluations[i]) \
                        or loop.epoch >= loop.max_epochs:
                    leaving.append(i)
            if not leaving:
                continue
            for i in range(len(active)):
                give_back(i)
            # the end-of-fit check of the members leaving (those without keep_best): a bound on the outputs for
            # all of them at once (X's part computed once), each loop's own check where it does not clear them
            checked = [i for i in leaving if not loops[active[i]].keep_best]
            bounds = net._output_bound(X, np.stack([loops[active[i]].net._params for i in checked])) if checked \
                else []
            for i, bound in zip(checked, bounds):
                if bound < net._safe_output_magnitude():
                    continue
                loop = loops[active[i]]
                mark_start(i)
                try:
                    loop._check_outputs()
                except Divergence as exc:
                    if exc.to_call_start:
                        loop.forget_call()
                    error = error or exc
            pack = None  # (first: the pack's slots are those of active)
            active = [k for i, k in enumerate(active) if i not in set(leaving)]
            if error is not None:
                raise error
    except BaseException:
        opened = [loops[k].take_back_open_epoch() for k in active]
        if pack is not None:  # the members still training: the state of the last epoch they recorded
            for i in range(len(active)):
                give_back(i, at_start=opened[i])
        raise
    finally:
        _end_all(loops)


def _end_all(loops):
    """Every loop's end (EpochLoop.finish), each complete, also after one that raised; then the first exception
    raised (a Ctrl-C that interrupted an end: that end completes first)."""
    error = None
    with held_interrupts():  # (a Ctrl-C between two loops' ends: after every end)
        for loop in loops:
            try:
                loop._ending(loop.finish)
            except BaseException as exc:  # (the loop's end is complete when Ctrl-C interrupted it, see _ending)
                error = error or exc
    if error is not None:
        raise error


def _same(a, b):
    """Whether two checked arrays (or None) hold the same data."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    if is_sparse(a) or is_sparse(b):
        return is_sparse(a) and is_sparse(b) and a.shape == b.shape and (a != b).nnz == 0
    return a.shape == b.shape and np.array_equal(a, b)
