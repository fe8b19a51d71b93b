"""scikit-learn ensembles of MLPs: fastmlp.MLPEnsembleClassifier and fastmlp.MLPEnsembleRegressor.

K members of one architecture, each a complete MLPClassifier / MLPRegressor
(``estimators_``), that differ in their seed and in what ``member_params``
sets per member. The ensemble predicts the members' mean: probabilities for
the classifier, values (and with ``return_std=True`` their spread) for the
regressor. With sgd and adam the members train in one pass over the batches
(fastmlp.ensemble.run_in_one_pass), each through its own training loop, as
the MLPClassifier / MLPRegressor with its parameters would on the same
batches (with a fastmlp.schedules learning rate too: each member its own
course of it); lbfgs and scikit-learn's callbacks fit them one after
another.
"""
import copy
import functools
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._training import held_interrupts
from .ensemble import check_member_params, run_in_one_pass
from .network import Network, kept_clock
from .estimators import (_INTERRUPTED, _STOCHASTIC_SOLVERS, INTERRUPTED_MESSAGE, MLPClassifier, MLPRegressor, _BaseMLP,
                         _param_names, check_validation_args, refuse_non_numeric, validate_X_val)
from ._validation import all_finite, check_sample_weight

# What member_params may set per member (the estimator parameters of those names).
MEMBER_PARAMS = ("learning_rate_init", "alpha", "dropout", "random_state")


_SHARED_ATTRIBUTES = """\
    best_index_ : int
        The member with the best validation score: with ``early_stopping``
        (sgd, adam) its best one, else with ``X_val`` its last one; without a
        validation set the member with the lowest final training loss.
    n_iter_ : ndarray of shape (n_members,)
        Each member's number of epochs (L-BFGS iterations).
    loss_curve_ : list of ndarray
        Each member's training loss per epoch.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during fit, when X has string feature names.
    n_outputs_ : int
        Number of outputs of each member's network.
    n_layers_ : int
        Number of layers of each member's network.
    out_activation_ : str
        The output activation of each member's network.
"""


def _with_member_parameters(cls):
    """cls, its docstring's ``{member_parameters}`` replaced by its members' Parameters (one source of their
    text), and ``{shared_attributes}`` by the attributes both ensembles have."""
    doc = cls._member_class.__doc__
    start = doc.index("----------\n", doc.index("    Parameters\n")) + len("----------\n")
    cls.__doc__ = (cls.__doc__.replace("    {member_parameters}\n", doc[start:doc.index("    Attributes\n")])
                   .replace("    {shared_attributes}\n", _SHARED_ATTRIBUTES))
    return cls


def _members_only(name):
    """An attribute of the member class that an ensemble has no one value of (each member its own): reading or
    assigning it raises AttributeError saying where it is."""
    def refuse(self, *value):
        raise AttributeError(f"{type(self).__name__} has no {name} of its own: each member has its own, "
                             f"estimators_[k].{name}.")

    return property(refuse, refuse, doc=f"Not an ensemble's: each member's is ``estimators_[k].{name}``.")


class _BaseEnsemble:
    """What both ensembles share: the members' parameters, their fit, their predictions."""

    _member_class = None  # MLPClassifier or MLPRegressor

    # (the member class's views of its one network: an ensemble has K)
    coefs_ = _members_only("coefs_")
    intercepts_ = _members_only("intercepts_")
    prelu_slopes_ = _members_only("prelu_slopes_")

    # What fastmlp.save keeps of a fitted ensemble (persistence.py): the members whole, each as an
    # estimator of its own; the rest of the fitted attributes follow from them (_from_members).
    _SAVED_FITTED = {"n_features_in_": ("count", True), "feature_names_in_": ("names", False),
                     "best_index_": ("count", True), "estimators_": ("members", True)}

    _ENSEMBLE_CONSTRAINTS = {
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "member_params": [None, list, tuple],
    }

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimators_")

    def _new_members(self, member_params, rng):
        """K unfitted members: this ensemble's parameters, each with its member_params and seed.

        A member whose member_params give no random_state gets a seed drawn (in
        member order) from rng, the ensemble's random_state.
        """
        # (copies: a member's parameters are its own, not objects the ensemble's set_params may change later)
        shared = {name: copy.deepcopy(getattr(self, name)) for name in _param_names(self._member_class)}
        members = []
        for k, own in enumerate(member_params):
            seed = own["random_state"] if "random_state" in own else int(rng.randint(np.iinfo(np.int32).max))
            member = self._member_class(**{**shared, **own, "random_state": seed})
            try:
                member._validate_params()
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"member_params[{k}]: {exc}") from None
            if "dropout" in own:  # (its rates, one per hidden layer: checked here, so that the error names it)
                n_hidden = len(member._hidden_sizes())
                try:
                    Network._check_dropout(own["dropout"], n_hidden)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"member_params[{k}]: {exc}") from None
            members.append(member)
        return members

    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit every member to X and y: with sgd and adam in one pass over the batches.

        With ``solver="sgd"`` or ``"adam"`` and one of scikit-learn's
        ``learning_rate`` strings, the members train together, one shuffle per
        epoch (from ``random_state``, after the members' seeds) for all; each
        member stops, validates, keeps its best weights and handles a
        divergence as the single estimator does, and leaves the pass when its
        own rule stops it (a sparse X is densified once for the pass).
        A ``fastmlp.schedules`` learning rate runs its own course in each
        member, in the pass. Otherwise (lbfgs, callbacks given to
        ``set_callbacks``, which then run in each member's fit) the members
        are fitted one after another.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets: as for the member class's ``fit`` (class labels or a
            label indicator matrix for the classifier).
        sample_weight : array-like of shape (n_samples,), default=None
            As for the member class's ``fit``, for every member.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            A validation set for every member (as for the member class's
            ``fit``): the one ``best_index_`` compares them on. With
            ``early_stopping`` and no X_val, a ``validation_fraction`` of X
            (from ``random_state``; stratified by class where every class can
            be on both sides) is split off once and is every member's X_val.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            The targets of X_val.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples.

        Returns
        -------
        MLPEnsembleClassifier or MLPEnsembleRegressor
            The fitted ensemble.

        Raises
        ------
        ValueError
            On invalid parameters or input, or when a member's fit fails; the
            ensemble is then as it was.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPEnsembleClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=3,
        ...                             random_state=0).fit(X, y)
        >>> ens.n_iter_.shape, ens.classes_
        ((3,), array([0, 1, 2]))
        """
        self._validate_params()
        member_params = check_member_params(self.member_params, self.n_members, MEMBER_PARAMS)
        check_validation_args(X_val, y_val, sample_weight_val)  # (before early stopping's split would hide them)
        rng = check_random_state(self.random_state)
        old = self.__dict__.get("estimators_")
        goes_on = self.warm_start and old is not None
        if goes_on and len(old) != self.n_members:
            raise ValueError(f"n_members={self.n_members}, but the ensemble has {len(old)} members: warm_start "
                             "goes on with the members it has (set warm_start=False to start anew).")
        # (a warm start goes on in the members' dtype, as the member class's does)
        dtype = old[0]._network.dtype if goes_on else self._fit_dtype(X)
        members = self._members_of_call(member_params, rng, old if goes_on else None)
        checked = copy.copy(self)  # validate_data records n_features_in_ (and names) on it, not yet on self
        # (a classifier's labels stay as given: each member encodes them, the same way)
        # (a warm start checks X's features, and their names, against the first fit's, as partial_fit does)
        X, y = validate_data(checked, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=not is_classifier(self), dtype=dtype, reset=not goes_on)
        if X_val is not None:
            X_val = validate_X_val(checked, X_val, dtype)
        elif self.early_stopping and self.solver in _STOCHASTIC_SOLVERS:
            # (the weights checked before the split, so that an error names what the user gave)
            sample_weight = check_sample_weight(sample_weight, X.shape[0], dtype)
            X, y, sample_weight, X_val, y_val, sample_weight_val = self._validation_split(X, y, sample_weight)
        callbacks = self.__dict__.get("_skl_callbacks")
        if self._in_one_pass():  # (one shuffle per epoch, from random_state after the members' seeds)
            self._one_pass(members, rng, X, y, sample_weight, X_val=X_val, y_val=y_val,
                           sample_weight_val=sample_weight_val)
        else:  # one member after another (set_callbacks: each member's fit runs them)
            self._one_after_another(members, callbacks, lambda member: member.fit(
                X, y, sample_weight, X_val=X_val, y_val=y_val, sample_weight_val=sample_weight_val),
                lambda member: member._set_up_only(X, y, sample_weight, X_val=X_val, y_val=y_val,
                                                   sample_weight_val=sample_weight_val))
        self._settle(members, X_val is not None, checked)
        return self

    @staticmethod
    def _one_after_another(members, callbacks, fit, set_up):
        """fit(member) for each member in turn, with the ensemble's scikit-learn callbacks; once Ctrl-C has ended
        one member's fit (which warns and returns), set_up(member) for each member after it: where a fit
        interrupted before its first epoch leaves it (as the one pass leaves every member at the same epoch)."""
        interrupted = False
        for member in members:
            if callbacks:
                member.set_callbacks(*callbacks)
            if interrupted:
                set_up(member)
            else:
                fit(member)
                interrupted = member in _INTERRUPTED

    def _settle(self, members, validated, checked=None):
        """The call's end: the members and the ensemble's fitted attributes (_set_members) and, from checked,
        what validate_data recorded (_record_input), set whole; a Ctrl-C meanwhile ends the call after them
        as one in training does (a warning, unless a member's fit gave it)."""
        try:
            with held_interrupts():
                self._set_members(members, validated)
                if checked is not None:
                    self._record_input(checked)
        except KeyboardInterrupt:
            if not any(member in _INTERRUPTED for member in members):
                warnings.warn(INTERRUPTED_MESSAGE)

    def _set_members(self, members, validated):
        """The fitted members, best_index_ among them (validated: by their X_val's last score) and the fitted
        attributes that are the members', all set at once, after the scores are known."""
        best = int(np.argmax(self._member_scores(validated, members)))
        for member in members:  # (its lines said which member it was during this fit; alone, it says nothing)
            member.__dict__.pop("_verbose_label", None)
        self.estimators_, self.best_index_ = members, best
        self._from_members()

    def _members_of_call(self, member_params, rng, old=None, keep_seeds=False):
        """The members a call trains: new ones (_new_members, seeds from rng), or copies of old that go on
        from their weights (a failed call keeps old as it was) with the ensemble's parameters now, each with
        its member_params, and with keep_seeds the seed their weights came from (partial_fit: a seed drawn
        anew, random_state=None, would name weights it did not make; a warm start re-seeds as fit does)."""
        fresh = self._new_members(member_params, rng)
        if old is None:
            members = fresh
        else:
            members = copy.deepcopy(old)
            for member, new in zip(members, fresh):
                params = new.get_params(deep=False)
                if keep_seeds:
                    del params["random_state"]
                member.set_params(**params)
        for k, member in enumerate(members):  # (verbose: each member's lines say whose they are)
            member.__dict__["_verbose_label"] = f"member {k}: "
        return members

    def _one_pass(self, members, rng, X, y, sample_weight, incremental=False, **validation):
        """Every member's fit (incremental: partial_fit) set up as its own would be (the first checks the data,
        the others take it as checked: the same arguments and settings), their epochs trained together on
        one shuffle per epoch from rng (None: the first member's generator, once set up), each fit ended as
        its own would end."""
        fits = [members[0]._prepared_fit(X, y, sample_weight, incremental=incremental, **validation)]
        fits += [member._prepared_fit(X, y, sample_weight, incremental=incremental, like=fits[0], **validation)
                 for member in members[1:]]
        rng = members[0]._random_state if rng is None else rng
        # (the pass's thread clock kept across fit and partial_fit calls, as a Network keeps its own: partial_fit's
        # epochs, one a call, choose between the threads and one thread as one fit's would)
        train = functools.partial(run_in_one_pass, [fit.loop for fit in fits], rng, self.shuffle,
                                  kept_clock(self, "_clock"))
        for fit in reversed(fits):
            train = functools.partial(fit.guard, train)
        train()

    def __getstate__(self):
        state = dict(super().__getstate__())  # (scikit-learn's may be this object's own __dict__)
        state.pop("_clock", None)  # (kept_clock's: this process's timings, measured anew)
        return state

    def _record_input(self, checked):
        """What validate_data recorded on checked (a copy of this ensemble), now this ensemble's."""
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(checked, name):
                setattr(self, name, getattr(checked, name))
            else:
                self.__dict__.pop(name, None)

    def _partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch of every member on X and y (see partial_fit): with sgd and adam in one pass over the
        batches, one shuffle of the rows for all (from the first member's generator)."""
        self._validate_params()
        member_params = check_member_params(self.member_params, self.n_members, MEMBER_PARAMS)
        old = self.__dict__.get("estimators_")
        if old is not None and len(old) != self.n_members:
            raise ValueError(f"n_members={self.n_members}, but the ensemble has {len(old)} members: partial_fit "
                             "goes on with the members it has (fit starts anew).")
        members = self._members_of_call(member_params, check_random_state(self.random_state), old,
                                        keep_seeds=True)
        dtype = self._fit_dtype(X) if old is None else members[0]._network.dtype
        checked = copy.copy(self)  # validate_data records n_features_in_ (and names) on it, not yet on self
        X, y = validate_data(checked, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=not is_classifier(self), dtype=dtype, reset=old is None)
        for member in members:
            member._start_partial_fit(y, classes)
        if self._in_one_pass():
            self._one_pass(members, None, X, y, sample_weight, incremental=True)
        else:  # scikit-learn's callbacks: each member's own partial_fit
            labels = {"classes": classes} if is_classifier(self) else {}
            self._one_after_another(members, self.__dict__.get("_skl_callbacks"),
                                    lambda member: member.partial_fit(X, y, sample_weight, **labels),
                                    lambda member: member._set_up_only(X, y, sample_weight, incremental=True))
        self._settle(members, False, checked if old is None else None)
        return self

    def _in_one_pass(self):
        """Whether fit trains the members together: sgd and adam (with scikit-learn's learning_rate strings or a
        fastmlp.schedules schedule: each member its own course of it), and no scikit-learn callbacks (which see
        one fit at a time); else one member after another."""
        return (self.solver in _STOCHASTIC_SOLVERS
                and not self.__dict__.get("_skl_callbacks") and not hasattr(self, "_parent_callback_ctx"))

    def _validation_split(self, X, y, sample_weight):
        """(X, y, sample_weight) split once for all members into a training and a validation part, so that
        their validation scores (best_index_) are on the same rows; stratified by the labels (1-D y) where
        every class can be on both sides (else not: a member alone, as scikit-learn's, fits such data)."""
        arrays = [X, y] if sample_weight is None else [X, y, np.asarray(sample_weight)]
        stratify = None
        if is_classifier(self) and np.ndim(y) == 1:
            check_classification_targets(y)  # (a continuous y: the member's error, not the split's)
            _, counts = np.unique(y, return_counts=True)
            n_val = int(np.ceil(self.validation_fraction * len(y)))
            if counts.min() >= 2 and len(counts) <= min(n_val, len(y) - n_val):
                stratify = y
        split = train_test_split(*arrays, test_size=self.validation_fraction, stratify=stratify,
                                 random_state=check_random_state(self.random_state))
        if split[1].shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your "
                             "dataset.")
        X, X_val, y, y_val = split[:4]
        sample_weight, sample_weight_val = (split[4], split[5]) if sample_weight is not None else (None, None)
        return X, y, sample_weight, X_val, y_val, sample_weight_val

    def _from_members(self):
        """The fitted attributes that are the members' (after fit, and after fastmlp.load)."""
        members = self.estimators_
        first = members[0]
        self.n_outputs_, self.n_layers_, self.out_activation_ = first.n_outputs_, first.n_layers_, first.out_activation_
        self.n_iter_ = np.array([m.n_iter_ for m in members])
        self.loss_curve_ = [np.asarray(m.loss_curve_) for m in members]
        if hasattr(first, "classes_"):
            self.classes_ = first.classes_

    def _member_scores(self, validated, members=None):
        """Each member's (of estimators_, or members) score for best_index_, higher is better: with early
        stopping (sgd, adam) its best validation score, else with X_val given (validated) its last one, else
        minus its last training loss; -inf for one with no epoch (a fit Ctrl-C ended in its first)."""
        scores = []
        for m in self.estimators_ if members is None else members:
            if m.early_stopping and m.solver in _STOCHASTIC_SOLVERS:
                scores.append(m.best_validation_score_)
            elif validated:
                scores.append(m.history_["val_score"][-1] if m.history_.get("val_score") else -np.inf)
            else:
                scores.append(-m.loss_curve_[-1] if m.loss_curve_ else -np.inf)
        return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)  # (NaN: a diverged member)

    @property
    def best_estimator_(self):
        """The member with the best validation score (``estimators_[best_index_]``)."""
        check_is_fitted(self)
        return self.estimators_[self.best_index_]

    def _checked_X(self, X):
        check_is_fitted(self)
        refuse_non_numeric(X)
        return validate_data(self, X, accept_sparse=["csr", "csc"], dtype=self.estimators_[0]._network.dtype,
                             reset=False)

    def _member_outputs(self, X, method):
        """(n_members, ...) stack of each member's `method` on X, checked once: scikit-learn's validation
        (most of a row's prediction: 100 us for 8 members) skipped, as a member's own predict skips it,
        for a finite C-contiguous array of the members' dtype and width (no feature names to check)."""
        check_is_fitted(self)
        if not (type(X) is np.ndarray and X.ndim == 2 and X.dtype == self.estimators_[0]._network.dtype
                and X.flags.c_contiguous and 0 < X.shape[0] and X.shape[1] == self.n_features_in_
                and not hasattr(self, "feature_names_in_") and all_finite(X)):
            X = self._checked_X(X)
        return np.stack([getattr(m, method)(X) for m in self.estimators_])

    def to_onnx(self, **kwargs):
        """Export the averaged model as ONNX: every member's network and the Mean of their outputs.

        Parameters
        ----------
        **kwargs
            Passed to :func:`fastmlp.onnx.to_onnx`: ``opset`` and ``name``.

        Returns
        -------
        onnx.ModelProto
            Outputs as the member class's export: a classifier's "label" and
            "probabilities" (as ``predict`` and ``predict_proba``), a
            regressor's "variable" (the mean of ``predict``).

        Examples
        --------
        >>> from fastmlp import MLPEnsembleRegressor
        >>> ens = MLPEnsembleRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=50, n_members=2,
        ...                            random_state=0).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        >>> [o.name for o in ens.to_onnx().graph.output]
        ['variable']
        """
        from .onnx import to_onnx
        return to_onnx(self, **kwargs)

    def __sklearn_tags__(self):
        return self._member_class().__sklearn_tags__()


@_with_member_parameters
class MLPEnsembleClassifier(_BaseEnsemble, ClassifierMixin, _BaseMLP):
    """An ensemble of multi-layer perceptron classifiers: the mean of K members' probabilities.

    Every parameter of :class:`MLPClassifier` (same names and defaults), which
    each member takes, plus ``n_members`` and ``member_params``. The members
    differ in their seed (drawn from ``random_state``) and in what
    ``member_params`` sets; with sgd and adam they train in one pass over the
    batches, each as an MLPClassifier with its parameters would on the same
    batches (see ``fit``).

    Parameters
    ----------
    {member_parameters}
    n_members : int, default=8
        K, the number of members.

    member_params : list of dict, default=None
        One dict per member (K of them), each overriding for its member any of
        ``learning_rate_init``, ``alpha``, ``dropout`` and ``random_state``
        (an int: the member's seed). A grid over them is a search in one fit:
        see ``best_index_``. ``random_state`` above is the source of the
        seeds of the members given none (drawn in member order).

    Attributes
    ----------
    estimators_ : list of MLPClassifier
        The K fitted members, each a complete model (predict, save, to_onnx).
    best_estimator_ : MLPClassifier
        ``estimators_[best_index_]``.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    {shared_attributes}

    See Also
    --------
    MLPClassifier : One member alone.
    MLPEnsembleRegressor : The regressor.
    NetworkEnsemble : K networks trained in one pass over the batches.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastmlp import MLPEnsembleClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=3,
    ...                             random_state=0).fit(X, y)
    >>> ens.predict_proba(X[:2]).shape, len(ens.estimators_)
    ((2, 3), 3)
    """

    _member_class = MLPClassifier
    _parameter_constraints: dict = {**MLPClassifier._parameter_constraints, **_BaseEnsemble._ENSEMBLE_CONSTRAINTS}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, clip_norm=None, dtype=None,
                 scoring=None, class_weight=None, n_members=8, member_params=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss="log_loss", shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout, clip_norm=clip_norm, dtype=dtype,
            scoring=scoring,
        )
        self.class_weight = class_weight
        self.n_members = n_members
        self.member_params = member_params

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update every member with one epoch of the stochastic solver on X and y, in one pass.

        As :meth:`MLPClassifier.partial_fit` for each member: the first call
        starts new members (their seeds as ``fit`` draws them; ``classes`` is
        then required), later calls (and calls after ``fit``) go on from them
        with their optimizer state. The members train in one pass over the
        batches (a ``fastmlp.schedules`` learning rate too), the rows shuffled
        once for all (from the first member's generator); with scikit-learn's
        callbacks each member's own ``partial_fit`` runs instead. Only for ``solver="sgd"`` or ``"adam"``; not with
        ``early_stopping=True``. ``best_index_`` names the member with the
        lowest training loss of the call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target class labels, all in ``classes``, or a label indicator
            matrix (multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, for every member.
        classes : array-like of shape (n_classes,), default=None
            Every class label that any call will see. Required on the first
            call; on later ones it may be given again and must be the same.

        Returns
        -------
        MLPEnsembleClassifier
            The updated ensemble; a failed call leaves it as it was.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPEnsembleClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), n_members=3, random_state=0)
        >>> for batch in np.array_split(np.random.default_rng(0).permutation(150), 3):
        ...     ens = ens.partial_fit(X[batch], y[batch], classes=[0, 1, 2])
        >>> [len(curve) for curve in ens.loss_curve_]
        [3, 3, 3]
        """
        return self._partial_fit(X, y, sample_weight, classes)

    def predict_proba(self, X):
        """The mean over the members of their class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The members' mean ``predict_proba``, in the model's dtype.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPEnsembleClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=3,
        ...                             random_state=0).fit(X, y)
        >>> import numpy as np
        >>> members = np.mean([m.predict_proba(X[:5]) for m in ens.estimators_], axis=0)
        >>> bool(np.allclose(ens.predict_proba(X[:5]), members))
        True
        """
        return self._member_outputs(X, "predict_proba").mean(axis=0)

    def decision_function(self, X):
        """The logits of the mean probabilities: the output activation's inverse of ``predict_proba(X)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            For binary problems one value per sample, positive where
            ``classes_[1]`` is predicted (the logit of its mean probability);
            multilabel, the logit of each label's; multiclass, the log of each
            class's mean probability (the softmax of which it is).

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPEnsembleClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=3,
        ...                             random_state=0).fit(X, y)
        >>> import numpy as np
        >>> bool((ens.decision_function(X).argmax(axis=1) == ens.predict_proba(X).argmax(axis=1)).all())
        True
        """
        P = self.predict_proba(X)
        tiny = np.finfo(P.dtype).tiny  # a member's certainty (p = 0 or 1 in floating point) stays finite
        if self.out_activation_ == "softmax":
            return np.log(np.maximum(P, tiny))
        p = np.clip(P[:, 1] if self.n_outputs_ == 1 else P, tiny, 1 - np.finfo(P.dtype).epsneg)
        return np.log(p) - np.log1p(-p)

    def predict_log_proba(self, X):
        """The natural logarithm of ``predict_proba(X)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPEnsembleClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=3,
        ...                             random_state=0).fit(X, y)
        >>> import numpy as np
        >>> bool(np.allclose(np.exp(ens.predict_log_proba(X[:5])), ens.predict_proba(X[:5])))
        True
        """
        P = self.predict_proba(X)
        return np.log(P, out=P)

    def predict(self, X):
        """The class labels of the mean probabilities (their argmax; > 0.5 per label when multilabel).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted labels.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from fastmlp import MLPEnsembleClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> ens = MLPEnsembleClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=3,
        ...                             random_state=0).fit(X, y)
        >>> ens.predict(X[:3])
        array([0, 0, 0])
        """
        P = self.predict_proba(X)
        first = self.estimators_[0]
        return first._decode(P[:, 1:] if first.n_outputs_ == 1 else P)


@_with_member_parameters
class MLPEnsembleRegressor(_BaseEnsemble, RegressorMixin, _BaseMLP):
    """An ensemble of multi-layer perceptron regressors: the mean of K members, and their spread.

    Every parameter of :class:`MLPRegressor` (same names and defaults), which
    each member takes, plus ``n_members`` and ``member_params``. The members
    differ in their seed (drawn from ``random_state``) and in what
    ``member_params`` sets; with sgd and adam they train in one pass over the
    batches, each as an MLPRegressor with its parameters would on the same
    batches (see ``fit``). ``predict(X,
    return_std=True)`` also gives the members' standard deviation, a measure
    of the model's uncertainty (GaussianProcessRegressor's convention): it
    grows where the data leave the members free to disagree.

    Parameters
    ----------
    {member_parameters}
    n_members : int, default=8
        K, the number of members.

    member_params : list of dict, default=None
        One dict per member (K of them), each overriding for its member any of
        ``learning_rate_init``, ``alpha``, ``dropout`` and ``random_state``
        (an int: the member's seed). ``random_state`` above is the source of
        the seeds of the members given none (drawn in member order).

    Attributes
    ----------
    estimators_ : list of MLPRegressor
        The K fitted members, each a complete model (predict, save, to_onnx).
    best_estimator_ : MLPRegressor
        ``estimators_[best_index_]``.
    {shared_attributes}

    See Also
    --------
    MLPRegressor : One member alone.
    MLPEnsembleClassifier : The classifier.
    NetworkEnsemble : K networks trained in one pass over the batches.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmlp import MLPEnsembleRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (100, 2))
    >>> y = X @ [1.0, -2.0]
    >>> ens = MLPEnsembleRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=4,
    ...                            random_state=0).fit(X, y)
    >>> mean, std = ens.predict(X[:3], return_std=True)
    >>> mean.shape, std.shape
    ((3,), (3,))
    """

    _member_class = MLPRegressor
    _parameter_constraints: dict = {**MLPRegressor._parameter_constraints, **_BaseEnsemble._ENSEMBLE_CONSTRAINTS}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, clip_norm=None,
                 dtype=None, scoring=None, huber_delta=1.0, quantile=0.5, n_members=8, member_params=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss=loss, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout,
            clip_norm=clip_norm, dtype=dtype, scoring=scoring,
        )
        self.huber_delta = huber_delta
        self.quantile = quantile
        self.n_members = n_members
        self.member_params = member_params

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update every member with one epoch of the stochastic solver on X and y, in one pass.

        As :meth:`MLPRegressor.partial_fit` for each member: the first call
        starts new members (their seeds as ``fit`` draws them), later calls
        (and calls after ``fit``) go on from them with their optimizer state.
        The members train in one pass over the batches (a
        ``fastmlp.schedules`` learning rate too), the rows shuffled once for
        all (from the first member's generator); with scikit-learn's
        callbacks each member's own ``partial_fit`` runs instead. Only for ``solver="sgd"`` or
        ``"adam"``; not with ``early_stopping=True``. ``best_index_`` names
        the member with the lowest training loss of the call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, for every member.

        Returns
        -------
        MLPEnsembleRegressor
            The updated ensemble; a failed call leaves it as it was.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPEnsembleRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, (100, 3))
        >>> y = X @ [1.0, -2.0, 0.5]
        >>> ens = MLPEnsembleRegressor(hidden_layer_sizes=(16,), n_members=4, random_state=0)
        >>> for start in range(0, 100, 25):
        ...     ens = ens.partial_fit(X[start:start + 25], y[start:start + 25])
        >>> ens.predict(X[:2], return_std=True)[1].shape
        (2,)
        """
        return self._partial_fit(X, y, sample_weight)

    def predict(self, X, return_std=False):
        """The members' mean prediction, and with return_std their standard deviation.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        return_std : bool, default=False
            Also return the standard deviation over the members.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The members' mean ``predict``, in the model's dtype.
        y_std : ndarray of the same shape
            Only with return_std=True: the members' standard deviation.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmlp import MLPEnsembleRegressor
        >>> X = np.linspace(-1, 1, 40).reshape(-1, 1)
        >>> ens = MLPEnsembleRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, n_members=3,
        ...                            random_state=0).fit(X, X.ravel() ** 2)
        >>> mean, std = ens.predict([[0.5], [3.0]], return_std=True)
        >>> bool(std[1] > std[0])  # outside the data, the members disagree more
        True
        """
        P = self._member_outputs(X, "predict")
        if return_std:
            return P.mean(axis=0), P.std(axis=0)
        return P.mean(axis=0)
