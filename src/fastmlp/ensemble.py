"""fastmlp.NetworkEnsemble: K networks of one architecture trained in one pass over the batches."""
import numbers

import numpy as np

from . import _engine, _registry
from ._base import _check_n_threads, _check_random_state
from ._training import SKLEARN_DIVERGENCE, Trainer, draw_seed
from ._validation import check_bool, check_float, check_int, is_sparse
from .network import Network

# What member_params may set per member: fit's learning_rate and alpha, the constructor's dropout and random_state.
MEMBER_PARAMS = ("learning_rate", "alpha", "dropout", "random_state")


class NetworkEnsemble:
    """K networks of one architecture, trained together in one pass over the batches.

    The members share the layer sizes, activations, loss, dtype, the batches
    (one shuffle per epoch) and the optimizer; each has its own initial weights
    and dropout masks (from its own seed) and may have its own learning rate,
    L2 alpha and dropout rates (``member_params``). Each member is trained
    exactly as a ``Network`` with its seed would be on the same batches: the
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
        One dict per member (empty ones where none were given).
    seeds_ : list of int
        Each member's seed: ``member(k)`` starts as
        ``Network(layer_sizes, ..., random_state=seeds_[k])``.
    loss_curve_ : ndarray of shape (n_members, epochs)
        After fit: each member's mean training loss per epoch, L2 term included.

    See Also
    --------
    Network : One member alone.

    Notes
    -----
    Parameters live in one buffer: per layer, the weights of all members
    (the first hidden layer's side by side as one (n_inputs, K fan_out)
    matrix, the others one block per member), then their biases side by
    side; ``member(k)`` copies member k's out into a standalone Network.
    Sparse X is densified.

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

    def __init__(self, layer_sizes, n_members=8, activation="relu", output_activation="identity",
                 loss="squared_error", init="auto", dtype="float64", dropout=0.0, random_state=None,
                 loss_param=None, member_params=None):
        K = self.n_members = check_int(n_members, "n_members", 1)
        self.member_params = self._check_member_params(member_params, K)
        self._rng = _check_random_state(random_state)
        config = dict(activation=activation, output_activation=output_activation, loss=loss, init=init,
                      dtype=dtype, loss_param=loss_param)
        self.seeds_, members = [], []
        for k, own in enumerate(self.member_params):
            seed = own["random_state"] if "random_state" in own else draw_seed(self._rng)
            try:
                members.append(Network(layer_sizes, dropout=own.get("dropout", dropout), random_state=seed, **config))
            except (TypeError, ValueError) as exc:
                if "dropout" in own or "random_state" in own:  # name the member whose setting it was
                    raise type(exc)(f"member_params[{k}]: {exc}") from None
                raise
            self.seeds_.append(seed)
        # member k's Network: its configuration, and its generator for the dropout seeds of each epoch
        self._members = members
        net = members[0]
        self.layer_sizes = net.layer_sizes
        self.dtype = net.dtype
        self._sizes, self._act_codes = net._sizes, net._act_codes
        self._keep = np.array([m._keep for m in members], dtype=np.float64).reshape(K, len(net._keep))
        w_off, b_off, s_off, n_params = _engine.ensemble_layout(self._sizes, self._act_codes, K)
        self._layout = (w_off, b_off, s_off)
        self._params = np.empty(n_params, dtype=self.dtype)
        for k, m in enumerate(members):
            for view, value in zip(self._member_views(k), m._coefs + m._intercepts + m._slopes):
                view[...] = value
        self._clock = _engine.new_thread_clock()

    @staticmethod
    def _check_member_params(member_params, K):
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
            unknown = sorted(set(own) - set(MEMBER_PARAMS), key=str)
            if unknown:
                raise ValueError(f"member_params[{k}] has unknown keys {unknown}; "
                                 f"valid keys are {list(MEMBER_PARAMS)}.")
            own = dict(own)
            for name in ("learning_rate", "alpha"):
                if name in own:
                    own[name] = check_float(own[name], f"member_params[{k}]['{name}']", 0.0,
                                            low_open=name == "learning_rate")
            seed = own.get("random_state")
            if "random_state" in own and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)
                                          or seed < 0):
                raise ValueError(f"member_params[{k}]['random_state'] must be a non-negative int, got {seed!r}.")
            checked.append(own)
        return checked

    def _member_views(self, k):
        """Member k's parameters as views into the buffer: its W_l, then its b_l, then its PReLU slopes."""
        w_off, b_off, s_off = self._layout
        K, sizes, L = self.n_members, self.layer_sizes, len(self.layer_sizes) - 1
        coefs, intercepts, slopes = [], [], []
        for l in range(1, L + 1):
            fan_in, fan_out = sizes[l - 1], sizes[l]
            block = self._params[w_off[l]:w_off[l] + K * fan_in * fan_out]
            if l == 1 and L > 1:  # the wide first layer: member k's columns
                coefs.append(block.reshape(fan_in, K * fan_out)[:, k * fan_out:(k + 1) * fan_out])
            else:
                coefs.append(block[k * fan_in * fan_out:(k + 1) * fan_in * fan_out].reshape(fan_in, fan_out))
            intercepts.append(self._params[b_off[l] + k * fan_out:b_off[l] + (k + 1) * fan_out])
            if s_off[l] >= 0:
                slopes.append(self._params[s_off[l] + k * fan_out:s_off[l] + (k + 1) * fan_out])
        return coefs + intercepts + slopes

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
        m = self._members[k]
        net = Network(self.layer_sizes, activation=m.activation, output_activation=m.output_activation,
                      loss=m.loss, init=m.init, dtype=self.dtype, dropout=m.dropout, random_state=self.seeds_[k],
                      loss_param=m.loss_param)
        for view, value in zip(net._coefs + net._intercepts + net._slopes, self._member_views(k)):
            view[...] = value
        return net

    @property
    def members_(self):
        """Every member as a standalone Network (copies, as ``member(k)`` gives them)."""
        return [self.member(k) for k in range(self.n_members)]

    def _flat(self, k):
        """Member k's parameters in a Network's layout (W_1, b_1, W_2, ..., then the slopes: one vector)."""
        views, L = self._member_views(k), len(self.layer_sizes) - 1
        layers = [v for l in range(L) for v in (views[l], views[L + l])]
        return np.concatenate([v.ravel() for v in layers + views[2 * L:]])

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
        X = self._dense(self._members[0]._check_X(X))
        out = np.empty((self.n_members, X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        for k in range(self.n_members):
            _engine.forward(self._sizes, self._act_codes, self._flat(k), X, out[k], None, 0, False,
                            _engine.effective_n_threads(n_threads))
        return out

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

    @staticmethod
    def _dense(X):
        return X.toarray() if is_sparse(X) else X

    def fit(self, X, Y, epochs=10, batch_size=32, optimizer="sgd", learning_rate=0.01, momentum=0.0,
            nesterov=False, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=0.0, clip_norm=None,
            shuffle=True, sample_weight=None, n_threads=None):
        """Train every member with mini-batch gradient descent, in one pass over the batches per epoch.

        The arguments are ``Network.fit``'s; ``learning_rate`` and ``alpha``
        are those of the members whose ``member_params`` set none. Each epoch
        shuffles the rows once (from random_state) for all members; each
        member with dropout draws its masks' seed from its own generator, as
        a Network would. Clipping applies to each member's own gradient.

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

        Returns
        -------
        NetworkEnsemble
            Itself, trained; ``loss_curve_`` holds this call's epochs.

        Raises
        ------
        ValueError
            On bad input, and when a member's loss or weights become
            non-finite: all members' weights are then those of the start of
            that epoch.

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
        net = self._members[0]
        X = self._dense(net._check_X(X))
        Y = net._check_Y(Y, X.shape[0])
        sample_weight = net._check_sample_weight(sample_weight, X.shape[0])
        epochs = check_int(epochs, "epochs", 1)
        shuffle = check_bool(shuffle, "shuffle")
        n_threads = _check_n_threads(n_threads)
        trainer = Trainer(net, optimizer, batch_size, learning_rate, momentum=momentum, nesterov=nesterov,
                          beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, alpha=alpha, clip_norm=clip_norm)
        spec = _registry.OPTIMIZERS[trainer.settings["optimizer"]]
        rates = np.array([p.get("learning_rate", trainer.settings["learning_rate"]) for p in self.member_params])
        alphas = np.array([p.get("alpha", trainer.settings["alpha"]) for p in self.member_params])
        n = X.shape[0]
        batch = min(trainer.settings["batch_size"], n)
        settings = dict(trainer.settings, batch_size=batch, optimizer=spec.code, loss=net._output.loss_code,
                        loss_param=net._loss_param_c(), dropout=bool((self._keep < 1).any()),
                        n_threads=_engine.effective_n_threads(n_threads))
        grads = np.empty_like(self._params)
        state = [np.zeros_like(self._params) for _ in range(max(spec.n_state, 1))]
        work = np.empty(_engine.ensemble_workspace_size(self._sizes, self._act_codes, self._keep, self.n_members,
                                                        batch), dtype=self.dtype)
        start_params = np.empty_like(self._params)
        total_weight = n if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
        losses = np.zeros((self.n_members, 0))
        for epoch in range(1, epochs + 1):
            order = self._rng.permutation(n).astype(np.intp, copy=False) if shuffle else None
            # a member's dropout seed, drawn from its generator as its Network's fit would; a member without
            # dropout draws none (its generator serves nothing else, so nothing a user can see changes)
            seeds = np.array([draw_seed(m._rng) if m.dropout and max(m.dropout) > 0 else 0 for m in self._members],
                             dtype=np.uint64)
            np.copyto(start_params, self._params)
            loss_sums = np.zeros(self.n_members)
            _, step, finite = _engine.train_ensemble_epoch(
                self._sizes, self._act_codes, self._keep, settings, rates, alphas, seeds, self._params, grads,
                state[0], state[-1], work, X, Y, sample_weight, order, loss_sums, self._clock)
            if not (finite and np.isfinite(self._params).all()):
                np.copyto(self._params, start_params)
                self.loss_curve_ = losses
                raise ValueError(f"{SKLEARN_DIVERGENCE} Training diverged in epoch {epoch}: a member's loss or "
                                 f"weights became NaN or infinite. The weights are those of the start of epoch "
                                 f"{epoch}. Try a lower learning_rate or set clip_norm.")
            settings["step"] = step
            losses = np.column_stack([losses, loss_sums / total_weight])
        self.loss_curve_ = losses
        return self

    def __repr__(self):
        return f"NetworkEnsemble({list(self.layer_sizes)}, n_members={self.n_members})"
