"""fastmlp.MLPClassifier / MLPRegressor as drop-in scikit-learn estimators (issue 4).

scikit-learn's own estimator checks with every check run, the constructor
signature against scikit-learn's, the parity table against scikit-learn's MLP
(run as a test), partial_fit == fit, sample weights, sparse input, the
meta-estimator / pickle / pandas interplay, the target types, dtypes, the
training-loop semantics (early stopping, warm start, schedules, convergence
and divergence), the fitted attributes, the one-row predict path and the
validation of hyperparameters.

Set FASTMLP_WRITE_PARITY=path to write the parity table (markdown) to path.
"""
import inspect
import os
import pickle
import re
import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

import fastmlp.estimators
from fastmlp import MLPClassifier, MLPEnsembleClassifier, MLPEnsembleRegressor, MLPRegressor

# Training noise on purpose (small max_iter); the tests that are about the
# warning use pytest.warns, which records it regardless of this filter.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SOLVERS = ("sgd", "adam", "lbfgs")
ESTIMATORS = {"classifier": MLPClassifier, "regressor": MLPRegressor}
EXTRA_PARAMS = {"dropout": 0.0, "clip_norm": None, "dtype": None, "scoring": None}


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread for both libraries: the networks here are tiny, and with
    two OpenBLAS threads on two cores shared with other work, per-batch GEMMs
    spin-wait (a 15x slowdown was seen); the results do not depend on it."""
    with threadpool_limits(limits=1):
        yield


# ----------------------------------------------------------------- data sets


def _iris():
    X, y = datasets.load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _regression(n_samples=150, n_targets=1):
    X, y = datasets.make_regression(n_samples=n_samples, n_features=6, n_informative=4, n_targets=n_targets,
                                    noise=5.0, random_state=0)
    return StandardScaler().fit_transform(X), (y - y.mean(axis=0)) / y.std(axis=0)


def _data(kind):
    """(X, y) of 150 standardized rows for the kind of estimator."""
    return _iris() if kind == "classifier" else _regression()


def _params(est):
    """Copies of all weights then all biases."""
    return [np.array(a) for a in list(est.coefs_) + list(est.intercepts_)]


def _assert_same_params(a, b, rtol, atol=0.0):
    for i, (p, q) in enumerate(zip(_params(a), _params(b), strict=True)):
        assert_allclose(p, q, rtol=rtol, atol=atol, err_msg=f"parameter array {i}")


def _output(est, X):
    """predict_proba for a classifier, predict for a regressor."""
    return est.predict_proba(X) if isinstance(est, MLPClassifier) else est.predict(X)


# ----------------------------------------------------------- estimator checks

CHECKED = [
    MLPClassifier(),
    MLPRegressor(),
    MLPClassifier(solver="sgd"),
    MLPRegressor(solver="sgd"),
    MLPRegressor(solver="lbfgs"),
    MLPEnsembleClassifier(n_members=3),
    MLPEnsembleRegressor(n_members=3),
    MLPEnsembleClassifier(n_members=2, solver="sgd"),
    MLPEnsembleRegressor(n_members=2, solver="lbfgs"),
]


@pytest.mark.parametrize("estimator", CHECKED, ids=repr)
def test_check_estimator_every_check_passes(estimator):
    # conftest.py sets it; without it check_array_api_input is skipped.
    assert os.environ.get("SCIPY_ARRAY_API") == "1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = check_estimator(estimator, on_fail=None, on_skip=None)
    assert len(results) > 50
    not_passed = [f"{r['check_name']} [{r['status']}]: {str(r['exception']).strip()[:300]}"
                  for r in results if r["status"] != "passed"]
    assert not not_passed, f"{len(not_passed)} of {len(results)} checks did not pass:\n" + "\n".join(not_passed)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_tags_do_not_weaken_the_checks(Est):
    tags = Est().__sklearn_tags__()
    assert not tags.non_deterministic
    assert tags.requires_fit
    assert tags.input_tags.sparse
    assert not tags.input_tags.allow_nan
    if Est is MLPClassifier:
        assert not tags.classifier_tags.poor_score
        assert tags.classifier_tags.multi_label
    else:
        assert not tags.regressor_tags.poor_score
        assert tags.target_tags.multi_output


# ------------------------------------------------------------------ signature


# each estimator's own additions, after EXTRA_PARAMS
OWN_EXTRA_PARAMS = {MLPClassifier: {"class_weight": None}, MLPRegressor: {"huber_delta": 1.0, "quantile": 0.5}}


@pytest.mark.parametrize("ours, theirs, positional", [
    (MLPClassifier, SkMLPClassifier, ["hidden_layer_sizes", "activation"]),
    (MLPRegressor, SkMLPRegressor, ["loss", "hidden_layer_sizes", "activation"]),
], ids=["classifier", "regressor"])
def test_signature_matches_sklearn(ours, theirs, positional):
    extra_params = {**EXTRA_PARAMS, **OWN_EXTRA_PARAMS[ours]}
    our_params = list(inspect.signature(ours).parameters.values())
    their_params = list(inspect.signature(theirs).parameters.values())
    n = len(their_params)
    # scikit-learn's parameters first, same names in the same order
    assert [p.name for p in our_params[:n]] == [p.name for p in their_params]
    for p, q in zip(our_params[:n], their_params):
        assert p.kind == q.kind, p.name
        assert p.default == q.default and type(p.default) is type(q.default), p.name
    assert [p.name for p in our_params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == positional
    # then the additions, keyword-only, with defaults that keep scikit-learn's behaviour
    extras = our_params[n:]
    assert {p.name: p.default for p in extras} == extra_params
    assert [p.name for p in extras] == list(extra_params)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras)
    assert ours().get_params() == {**theirs().get_params(), **extra_params}


def test_positional_arguments_as_in_sklearn():
    reg = MLPRegressor("poisson", (5, 3), "tanh")
    assert (reg.loss, reg.hidden_layer_sizes, reg.activation) == ("poisson", (5, 3), "tanh")
    clf = MLPClassifier((7,), "logistic")
    assert (clf.hidden_layer_sizes, clf.activation) == ((7,), "logistic")
    with pytest.raises(TypeError):
        MLPClassifier((7,), "logistic", "sgd")  # solver is keyword-only, as in scikit-learn


# ------------------------------------------------------------------- parity

PARITY_DATASETS = {
    "iris": (datasets.load_iris, "classifier"),
    "wine": (datasets.load_wine, "classifier"),
    "breast_cancer": (datasets.load_breast_cancer, "classifier"),
    "digits": (datasets.load_digits, "classifier"),
    "diabetes": (datasets.load_diabetes, "regressor"),
}
PARITY_SEEDS = (0, 1, 2)
PARITY_TOLERANCE = 0.02
# Each cell must be decided by the data and the algorithm, not by the last bits of
# the machine's arithmetic (issue 12). Measured: refitted from initial weights
# perturbed by 1e-15 (relative), and under OPENBLAS_CORETYPE=SkylakeX, Haswell,
# Sandybridge and Prescott over seeds 0-19, every cell's test score stays the
# same to 1e-15, except diabetes with lbfgs at the default alpha: it overfits
# (test R^2 about -0.5) and ends where the rounding sends it, with a spread of
# 0.020 per seed (pooled over 30 seeds x 7 runs), 0.07 between two kernels on one
# seed, and fastmlp - scikit-learn = -0.04 on seeds 0-2 on one machine, -0.006 on
# another. With alpha=10 the same cell is regularised (test R^2 0.34-0.60) and
# the perturbed runs and scikit-learn agree to 1e-4 on every seed: that cell is
# compared there, and test_lbfgs_first_iterations_equal_sklearns compares the
# default-alpha run where it is still deterministic.
PARITY_ALPHA = {("diabetes", "lbfgs"): 10.0}


def _parity_max_iter(dataset, solver):
    return 100 if (dataset, solver) == ("digits", "sgd") else 300  # the slow one, for both libraries


def _parity_score(Classifier, Regressor, dataset, solver, seed):
    """Test accuracy (classifier) or R^2 (regressor, y standardized) of one split and seed."""
    loader, kind = PARITY_DATASETS[dataset]
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=seed, stratify=y if kind == "classifier" else None)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    params = dict(hidden_layer_sizes=(64,), solver=solver, max_iter=_parity_max_iter(dataset, solver),
                  alpha=PARITY_ALPHA.get((dataset, solver), 1e-4), random_state=seed)
    if kind == "classifier":
        est = Classifier(**params)
    else:
        mean, std = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
        est = Regressor(**params)
    return est.fit(X_train, y_train).score(X_test, y_test)


def test_parity_with_sklearn():
    rows = []
    for dataset in PARITY_DATASETS:
        for solver in SOLVERS:
            ours = np.mean([_parity_score(MLPClassifier, MLPRegressor, dataset, solver, s) for s in PARITY_SEEDS])
            theirs = np.mean([_parity_score(SkMLPClassifier, SkMLPRegressor, dataset, solver, s)
                              for s in PARITY_SEEDS])
            rows.append((dataset, solver, ours, theirs, ours - theirs))

    path = os.environ.get("FASTMLP_WRITE_PARITY")
    if path:
        lines = [
            f"Mean over seeds {list(PARITY_SEEDS)} (train_test_split and estimator random_state) of test accuracy "
            "(classifiers) or R^2 (diabetes, y standardized); StandardScaler on X, hidden_layer_sizes=(64,), "
            "max_iter=300 (digits with sgd: 100), diabetes with lbfgs alpha=10 (at the default alpha it overfits "
            "and its score depends on the machine's rounding), other parameters at their defaults.",
            "",
            "| dataset | solver | fastmlp | scikit-learn | diff |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [f"| {d} | {s} | {a:.4f} | {b:.4f} | {diff:+.4f} |" for d, s, a, b, diff in rows]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    worse = [f"{d}/{s}: fastmlp {a:.4f} < scikit-learn {b:.4f} - {PARITY_TOLERANCE}"
             for d, s, a, b, diff in rows if diff < -PARITY_TOLERANCE]
    assert not worse, "\n".join(worse)
    assert all(np.isfinite(a) for _, _, a, _, _ in rows)


def test_lbfgs_first_iterations_equal_sklearns():
    # diabetes with lbfgs at the default alpha, the chaotic cell above, while it is
    # still deterministic: from the same initial weights the two libraries' test
    # predictions after 20 iterations differ by at most 5e-13 (1e-12 between fastmlp
    # runs perturbed by 1e-15), growing about 1000-fold every 20 iterations (1e-9 at
    # 40, 2e-5 at 80). 1e-8 leaves four orders of magnitude for other arithmetic.
    X, y = datasets.load_diabetes(return_X_y=True)
    for seed in PARITY_SEEDS:
        X_train, X_test, y_train, _ = train_test_split(X, y, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        y_train = (y_train - y_train.mean()) / y_train.std()
        params = dict(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=20, random_state=seed)
        ours = MLPRegressor(**params).fit(X_train, y_train)
        theirs = SkMLPRegressor(**params).fit(X_train, y_train)
        assert ours.n_iter_ == theirs.n_iter_ == 20
        assert_allclose(ours.predict(X_test), theirs.predict(X_test), rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("params", [
    dict(solver="sgd"), dict(solver="adam"), dict(solver="adam", early_stopping=True, n_iter_no_change=50),
    dict(solver="sgd", learning_rate="adaptive", momentum=0.5, nesterovs_momentum=False),
    dict(solver="sgd", learning_rate="invscaling", batch_size=7),
], ids=["sgd", "adam", "early_stopping", "adaptive", "invscaling"])
def test_stochastic_solvers_train_on_sklearns_batches_in_every_epoch(kind, params):
    # the same initial weights, the same shuffles epoch after epoch (each epoch's permutation applied
    # to the last one's order, as scikit-learn's sample indices; no dropout seed drawn between them),
    # the same validation split: after 25 epochs the weights agree to rounding (measured: 2e-16; 1e-9
    # leaves room for other BLAS kernels' rounding, grown over the epochs)
    X, y = datasets.load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if kind == "regressor":
        y = X[:, 0] * 0.5 - X[:, 2]
        X = X[:, 1:]
    args = dict(dict(hidden_layer_sizes=(6,), max_iter=25, tol=0.0, random_state=3, batch_size=16), **params)
    Ours, Theirs = (MLPClassifier, SkMLPClassifier) if kind == "classifier" else (MLPRegressor, SkMLPRegressor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = Ours(**args).fit(X, y), Theirs(**args).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 25
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=0, atol=1e-9)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


# ---------------------------------------------------------------- partial_fit


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_partial_fit_equals_fit(kind, solver):
    X, y = _data(kind)
    est = ESTIMATORS[kind](hidden_layer_sizes=(8,), solver=solver, shuffle=False, tol=0.0, n_iter_no_change=10**6,
                           batch_size=32, learning_rate_init=0.01, max_iter=5, random_state=0)
    fitted = clone(est).fit(X, y)
    assert fitted.n_iter_ == 5
    incremental = clone(est)
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    for _ in range(5):
        incremental.partial_fit(X, y, **extra)
    _assert_same_params(incremental, fitted, rtol=1e-12, atol=1e-12)
    assert_allclose(incremental.loss_curve_, fitted.loss_curve_, rtol=1e-12)
    assert incremental.t_ == fitted.t_ == 5 * len(X)
    assert_array_equal(incremental.predict(X), fitted.predict(X))


def test_partial_fit_classes():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)  # required on the first call
    clf.partial_fit(X, y, classes=[0, 1, 2])
    assert_array_equal(clf.classes_, [0, 1, 2])
    # accepted again on later calls (dask-ml's Incremental passes it every time), in any order
    clf.partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y, classes=np.array([2, 0, 1]))
    clf.partial_fit(X[y == 0], y[y == 0])  # a batch need not hold every class
    before = _params(clf)
    for classes in ([0, 1, 2, 3], [0, 1]):
        with pytest.raises(ValueError, match="classes"):
            clf.partial_fit(X, y, classes=classes)
    with pytest.raises(ValueError):
        clf.partial_fit(X, np.where(y == 2, 5, y))  # a label outside classes_
    for got, want in zip(_params(clf), before):
        assert_array_equal(got, want)  # the refused calls did not train
    assert_array_equal(clf.classes_, [0, 1, 2])


@pytest.mark.parametrize("labels", [
    [0, 1], [3, 7, 9], [-1.0, 2.0], ["cat", "dog"], ["a", "b", "c", "d"], [True, False], [np.int8(2), np.int8(5)],
], ids=["binary", "multiclass", "float", "str-binary", "str-multiclass", "bool", "int8"])
def test_label_encoding_is_the_binarizers(labels):
    # The fast encoding of known labels gives LabelBinarizer's targets exactly; an
    # unknown or NaN label falls back to the binarizer's path and its error.
    from sklearn.preprocessing import LabelBinarizer

    rng = np.random.default_rng(0)
    labels = np.array(labels)
    y = labels[rng.integers(0, len(labels), 60)]
    y[: len(labels)] = labels  # every class present
    X = rng.standard_normal((60, 3))
    clf = MLPClassifier(hidden_layer_sizes=(3,), solver="sgd", random_state=0).partial_fit(X, y, classes=labels)
    want = LabelBinarizer().fit(labels).transform(y).astype(np.float64)
    for part in (y, y[5:], y[y == labels[0]]):
        got = clf._encode_known_labels(part, np.float64)
        assert got is not None
        assert_array_equal(got, LabelBinarizer().fit(labels).transform(part).astype(np.float64))
    _, Y = clf._validate_input(X, y, incremental=True, reset=False, dtype=np.float64)
    assert_array_equal(Y, want)
    if labels.dtype.kind in "iuf":
        unknown = y.astype(np.float64)
        unknown[3] = 0.5
        assert clf._encode_known_labels(unknown, np.float64) is None
        with pytest.raises(ValueError):
            clf.partial_fit(X, unknown)
    else:
        unknown = y.astype(object)
        unknown[3] = "zebra" if labels.dtype.kind == "U" else None
        with pytest.raises((ValueError, TypeError)):
            clf.partial_fit(X, unknown)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_partial_fit_only_for_stochastic_solvers(Est):
    assert not hasattr(Est(solver="lbfgs"), "partial_fit")
    assert hasattr(Est(solver="sgd"), "partial_fit")


# -------------------------------------------------------------- sample weight


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weighted_mini_batch_loss_and_stopping_as_scikit_learn(solver):
    # found by probing: with sample weights and several batches the loss was the weighted mean over the epoch,
    # where scikit-learn weighs each batch's weighted mean by its rows: the same weights, another loss_curve_,
    # so its tol / n_iter_no_change stopping came at another epoch (81 against 96 here)
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    sw = np.random.default_rng(0).random(150) * 3
    kw = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=300, random_state=0, tol=1e-3, n_iter_no_change=3,
              batch_size=32, learning_rate_init=0.01)
    ours = MLPClassifier(**kw).fit(X, y, sample_weight=sw)
    theirs = SkMLPClassifier(**kw).fit(X, y, sample_weight=sw)
    assert ours.n_iter_ == theirs.n_iter_
    # (measured 1e-16 apart here; about 80 epochs leave room for other BLAS kernels' rounding to grow)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-7)
    assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-7, atol=1e-9)
    # Network.fit keeps the weighted mean over the epoch (its loss_curve_, as documented)
    net = fastmlp.Network([4, 3], output_activation="softmax", loss="log_loss", random_state=0)
    Y = np.eye(3)[y]
    net.fit(X, Y, epochs=1, batch_size=32, shuffle=False, sample_weight=sw, learning_rate=1e-300)
    P = net.forward(X)
    assert_allclose(net.loss_curve_[0], np.average(-np.log(P[np.arange(150), y]), weights=sw), rtol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_zero_sample_weight_equals_dropping_rows(kind, solver):
    X, y = _data(kind)
    keep = np.ones(len(X), dtype=bool)
    keep[::7] = False
    # batch_size="auto" is min(200, n_samples): one full batch, the same in both fits
    est = ESTIMATORS[kind](hidden_layer_sizes=(8,), solver=solver, max_iter=30, learning_rate_init=0.01,
                           random_state=0)
    weighted = clone(est).fit(X, y, sample_weight=keep.astype(float))
    dropped = clone(est).fit(X[keep], y[keep])
    # (the two fits' sums differ in their last bits on other BLAS kernels, and L-BFGS's 30 iterations amplify
    # that: 2.4e-9 apart with OpenBLAS's Prescott kernels; see the next test)
    tol = dict(rtol=1e-7, atol=1e-9) if solver == "lbfgs" else dict(rtol=1e-9, atol=1e-12)
    _assert_same_params(weighted, dropped, **tol)
    assert_allclose(_output(weighted, X), _output(dropped, X), **tol)
    if kind == "classifier":
        assert_array_equal(weighted.predict(X), dropped.predict(X))


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_lbfgs_integer_sample_weight_equals_repeating_rows(kind):
    X, y = _data(kind)
    weights = np.random.RandomState(0).randint(0, 4, len(X))
    # The two fits sum in different orders (and GEMM shapes), and L-BFGS amplifies the
    # difference about 100-fold every 30 iterations: measured largest relative output
    # difference 6e-12 after 30 iterations, 6e-9 after 50 (20x under the tolerance,
    # too close for another machine's rounding), 7e-7 after 80. 30 iterations leave 1e4.
    est = ESTIMATORS[kind](hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    weighted = clone(est).fit(X, y, sample_weight=weights)
    repeated = clone(est).fit(np.repeat(X, weights, axis=0), np.repeat(y, weights, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_
    assert_allclose(_output(weighted, X), _output(repeated, X), rtol=1e-7, atol=1e-9)


def test_sample_weight_changes_the_model():
    X, y = _iris()
    weights = np.where(y == 0, 10.0, 1.0)
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20, random_state=0)
    plain = clone(est).fit(X, y)
    weighted = clone(est).fit(X, y, sample_weight=weights)
    assert not np.allclose(plain.coefs_[0], weighted.coefs_[0])
    with pytest.raises(ValueError):
        clone(est).fit(X, y, sample_weight=-weights)


# ----------------------------------------------------------------- sparse X


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_sparse_input_same_model_as_dense(kind, solver, fmt):
    X, y = _data(kind)
    X = np.where(np.abs(X) < 0.7, 0.0, X)  # about half zeros
    X_sparse = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    est = ESTIMATORS[kind](hidden_layer_sizes=(8,), solver=solver, max_iter=20, learning_rate_init=0.01,
                           random_state=0)
    dense = clone(est).fit(X, y)
    sparse = clone(est).fit(X_sparse, y)
    _assert_same_params(sparse, dense, rtol=1e-9, atol=1e-12)
    if kind == "classifier":
        assert_array_equal(sparse.predict(X_sparse), dense.predict(X))
    assert_allclose(_output(sparse, X_sparse), _output(dense, X), rtol=1e-9, atol=1e-12)
    assert_allclose(_output(dense, X_sparse), _output(dense, X), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------- scikit-learn machinery


def test_pipeline_and_cross_val_score():
    X, y = datasets.load_iris(return_X_y=True)  # unscaled: the pipeline scales
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100,
                                                         random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.95
    scores = cross_val_score(pipe, X, y, cv=5)
    assert scores.shape == (5,)
    assert scores.min() > 0.8 and scores.mean() > 0.9


def test_grid_search_cv_two_jobs():
    X, y = datasets.load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(solver="adam", learning_rate_init=0.01, max_iter=100,
                                                         random_state=0))
    grid = {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)], "mlpclassifier__alpha": [1e-4, 1.0]}
    parallel = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    serial = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    assert len(parallel.cv_results_["params"]) == 4
    # the estimators travel to the workers and back by pickle: same results as in-process
    assert_allclose(parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"], atol=1e-12)
    assert parallel.best_params_ == serial.best_params_
    assert parallel.best_score_ > 0.9
    assert isinstance(parallel.best_estimator_[-1], MLPClassifier)
    assert parallel.score(X, y) > 0.9


def test_clone():
    X, y = _iris()
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0, dropout=0.0,
                        clip_norm=5.0, dtype="float32").fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(X)
    with pytest.raises(AttributeError):
        copy.coefs_
    copy.fit(X, y)
    assert_array_equal(copy.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_pickle_round_trip(kind):
    X, y = _data(kind)
    est = ESTIMATORS[kind](hidden_layer_sizes=(8, 4), solver="sgd", max_iter=20, learning_rate_init=0.01,
                           random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    assert_array_equal(loaded.predict(X), est.predict(X))
    assert_array_equal(_output(loaded, X), _output(est, X))
    assert_array_equal(loaded.predict(X[:1]), est.predict(X[:1]))
    assert [c.shape for c in loaded.coefs_] == [c.shape for c in est.coefs_]
    for got, want in zip(_params(loaded), _params(est)):
        assert_array_equal(got, want)
    # training continues the same way in both
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    est.partial_fit(X, y, **extra)
    loaded.partial_fit(X, y, **extra)
    _assert_same_params(loaded, est, rtol=0)
    # coefs_ of the loaded model are still live views of its own weights
    before = _output(loaded, X)
    loaded.coefs_[0][...] = 0.0
    assert not np.allclose(_output(loaded, X), before)
    assert np.allclose(_output(est, X), before)  # the original is untouched
    loaded.coefs_ = [np.array(c) for c in est.coefs_]
    assert_array_equal(_output(loaded, X), _output(est, X))


def test_pandas_dataframe_feature_names():
    X, y = _iris()
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    df = pd.DataFrame(X, columns=columns)
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    from_df = clone(est).fit(df, pd.Series(y))
    from_array = clone(est).fit(X, y)
    assert_array_equal(from_df.feature_names_in_, columns)
    assert not hasattr(from_array, "feature_names_in_")
    assert from_df.n_features_in_ == 4
    assert_array_equal(from_df.predict_proba(df), from_array.predict_proba(X))
    assert_array_equal(from_df.predict(df.iloc[:1]), from_array.predict(X[:1]))
    with pytest.warns(UserWarning, match="feature names"):
        from_df.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        from_df.predict(df.rename(columns={"sepal_length": "other"}))
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    reg.fit(df, pd.Series(X[:, 0] * 2.0))
    assert_array_equal(reg.feature_names_in_, columns)


# ------------------------------------------------------------------ targets


def test_binary():
    X, y = datasets.make_classification(n_samples=200, n_features=8, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="adam", learning_rate_init=0.01, max_iter=100,
                        random_state=0).fit(X, y)
    assert_array_equal(clf.classes_, [0, 1])
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 2)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.score(X, y) > 0.9


def test_multiclass():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100, random_state=0).fit(X, y)
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(X), proba.argmax(axis=1))
    assert clf.score(X, y) > 0.95


def test_multilabel_indicator():
    X, Y = datasets.make_multilabel_classification(n_samples=200, n_features=10, n_classes=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200, random_state=0).fit(X, Y)
    assert_array_equal(clf.classes_, [0, 1, 2, 3])
    assert clf.n_outputs_ == 4 and clf.out_activation_ == "logistic"
    pred = clf.predict(X)
    assert pred.shape == (200, 4)
    assert set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 4)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert_array_equal(pred, (proba > 0.5).astype(pred.dtype))
    assert (pred == Y).mean() > 0.95  # per-label accuracy on the training set


@pytest.mark.parametrize("labels", [
    np.array(["setosa", "versicolor", "virginica"]),
    np.array([-3, 7, 42]),
], ids=["strings", "integers"])
def test_string_and_integer_labels(labels):
    X, y = _iris()
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="adam", learning_rate_init=0.01, max_iter=50,
                        random_state=0)
    plain = clone(est).fit(X, y)
    named = clone(est).fit(X, labels[y])
    assert_array_equal(named.classes_, labels)
    assert_array_equal(named.predict(X), labels[plain.predict(X)])
    assert_array_equal(named.predict_proba(X), plain.predict_proba(X))
    assert named.score(X, labels[y]) == plain.score(X, y)


def test_binary_string_labels():
    X, y = datasets.make_classification(n_samples=100, n_features=5, random_state=1)
    names = np.array(["no", "yes"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100, random_state=0).fit(X, names)
    assert_array_equal(clf.classes_, ["no", "yes"])
    assert set(clf.predict(X)) <= {"no", "yes"}
    assert clf.score(X, names) > 0.9


def test_multi_output_regression():
    X, Y = _regression(n_targets=3)
    reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200, random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.out_activation_ == "identity"
    assert reg.predict(X).shape == (150, 3)
    assert reg.score(X, Y) > 0.9
    assert reg.predict(X[:1]).shape == (1, 3)


@pytest.mark.parametrize("solver", SOLVERS)
def test_poisson_regression_on_counts(solver):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    rate = np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1] + 0.5)
    y = rng.poisson(rate).astype(float)
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), solver=solver, learning_rate_init=0.01,
                       max_iter=200, random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp"
    pred = reg.predict(X)
    assert (pred > 0).all() and np.isfinite(pred).all()
    assert np.isfinite(reg.loss_)
    assert abs(pred.mean() - y.mean()) < 0.2 * y.mean()
    assert np.corrcoef(pred, rate)[0, 1] > 0.8
    with pytest.raises(ValueError):
        clone(reg).fit(X, y - 5.0)  # negative counts


# -------------------------------------------------------------------- dtype


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_dtype_follows_input(kind, solver):
    X, y = _data(kind)
    Est = ESTIMATORS[kind]
    params = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=10, random_state=0)

    def dtypes(est):
        out = _output(est, X), _output(est, X.astype(np.float32)), _output(est, X[:1].astype(est.coefs_[0].dtype))
        return {a.dtype for a in list(est.coefs_) + list(est.intercepts_) + list(out)}

    assert dtypes(Est(**params).fit(X.astype(np.float32), y)) == {np.dtype(np.float32)}
    assert dtypes(Est(**params).fit(X, y)) == {np.dtype(np.float64)}
    assert dtypes(Est(**params).fit((X * 10).astype(np.int64), y)) == {np.dtype(np.float64)}
    assert dtypes(Est(**params, dtype="float32").fit(X, y)) == {np.dtype(np.float32)}
    assert dtypes(Est(**params, dtype="float64").fit(X.astype(np.float32), y)) == {np.dtype(np.float64)}


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_dtype_may_be_given_as_numpys_type_or_dtype(kind, tmp_path):
    # as Network takes it; only the names were accepted
    X, y = _data(kind)
    params = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    named = ESTIMATORS[kind](**params, dtype="float32").fit(X, y)
    for dtype in (np.float32, np.dtype(np.float32)):
        est = ESTIMATORS[kind](**params, dtype=dtype).fit(X, y)
        assert est.coefs_[0].dtype == np.float32
        assert_array_equal(_output(est, X), _output(named, X))
        est.save(tmp_path / "m.fmlp")  # kept by its name
        loaded = fastmlp.load(tmp_path / "m.fmlp")
        assert loaded.get_params()["dtype"] == "float32"
        assert_array_equal(_output(loaded, X), _output(est, X))
    for bad in (np.float16, np.int32, np.dtype(np.float16), "float16", 32):
        with pytest.raises(ValueError, match="dtype"):
            ESTIMATORS[kind](**params, dtype=bad).fit(X, y)


@pytest.mark.parametrize("container", ["csr", "csc", "dataframe"])
def test_float32_containers_give_float32_models(container):
    X, y = _iris()
    X32 = X.astype(np.float32)
    data = {"csr": sp.csr_matrix, "csc": sp.csc_matrix,
            "dataframe": lambda a: pd.DataFrame(a, columns=list("abcd"))}[container](X32)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(data, y)
    assert clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(data).dtype == np.float32


def test_float32_model_close_to_float64_model():
    X, y = _iris()
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20, random_state=0)
    m32 = clone(est).fit(X.astype(np.float32), y)
    m64 = clone(est).fit(X, y)
    assert_allclose(m32.predict_proba(X), m64.predict_proba(X), atol=1e-3)


# ------------------------------------------------------- the training loop


def test_early_stopping():
    X, y = datasets.make_blobs(n_samples=300, centers=3, n_features=4, cluster_std=1.5, random_state=0)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="adam", learning_rate_init=0.01, early_stopping=True,
                        max_iter=500, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500
    assert isinstance(clf.validation_scores_, list)
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert all(0.0 <= s <= 1.0 for s in clf.validation_scores_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None  # as scikit-learn with early stopping
    # stopped n_iter_no_change epochs after the last improvement (by more than tol)
    best_epoch = int(np.argmax(clf.validation_scores_))
    assert clf.n_iter_ - 1 - best_epoch >= clf.n_iter_no_change
    # It stops after 15-30 epochs, wherever the 30 validation samples are first all
    # right: over random_state 0-7 the best validation score was 0.967-1.0 and the
    # training-set accuracy 0.927-0.997 (0.98 for 0), so the bounds leave a margin
    # for any seed, not only for the last bits of this one.
    assert clf.best_validation_score_ > 0.9
    assert clf.score(X, y) > 0.85
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(solver="sgd", early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_early_stopping_regressor_keeps_best_weights():
    X, y = _regression()
    reg = MLPRegressor(hidden_layer_sizes=(16,), solver="adam", learning_rate_init=0.01, early_stopping=True,
                       max_iter=300, random_state=0).fit(X, y)
    assert reg.n_iter_ < 300
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert reg.best_validation_score_ > 0.5


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_warm_start_continues(solver):
    X, y = _iris()
    params = dict(hidden_layer_sizes=(8,), solver=solver, learning_rate_init=0.01, max_iter=10, random_state=0)
    fresh = MLPClassifier(**params).fit(X, y)
    warm = MLPClassifier(warm_start=True, **params).fit(X, y)
    _assert_same_params(warm, fresh, rtol=0)  # the first fit is an ordinary one
    n1, shapes = len(warm.loss_curve_), [c.shape for c in warm.coefs_]
    warm.fit(X, y)
    assert [c.shape for c in warm.coefs_] == shapes
    assert len(warm.loss_curve_) == n1 + warm.n_iter_  # the curve goes on
    assert warm.loss_ < fresh.loss_  # from where the first fit ended, not from the initial weights
    assert not np.allclose(warm.coefs_[0], fresh.coefs_[0])
    if solver == "adam":
        assert warm.n_iter_ == 10  # per call, as scikit-learn
        assert warm.t_ == 2 * fresh.t_
        assert warm.loss_curve_[n1] < fresh.loss_curve_[0]
    # without warm_start a second fit starts over
    cold = MLPClassifier(**params).fit(X, y).fit(X, y)
    _assert_same_params(cold, fresh, rtol=0)
    assert len(cold.loss_curve_) == len(fresh.loss_curve_)
    with pytest.raises(ValueError, match="classes"):
        warm.fit(X[y < 2], y[y < 2])


def test_adaptive_learning_rate_divides_by_five(capsys):
    X, y = _regression()
    params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.01, tol=1e-2, max_iter=1000,
                  random_state=0)
    constant = MLPRegressor(**params).fit(X, y)
    capsys.readouterr()
    adaptive = MLPRegressor(learning_rate="adaptive", verbose=True, **params).fit(X, y)
    out = capsys.readouterr().out
    rates = [float(r) for r in re.findall(r"Setting learning rate to ([0-9.]+)", out)]
    assert len(rates) >= 3
    assert rates[:3] == pytest.approx([0.01 / 5, 0.01 / 25, 0.01 / 125], abs=1e-6)
    assert "Learning rate too small. Stopping." in out
    assert adaptive.n_iter_ < 1000  # it stops once the rate is too small
    assert adaptive.n_iter_ > constant.n_iter_  # where the constant rate stopped at the first plateau
    assert out.count("Iteration ") == adaptive.n_iter_
    # scikit-learn's order: an epoch's line, then what the rule says of it (found by probing: the other way round)
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if "Setting learning rate to" in line)
    assert lines[first - 1].startswith("Iteration ")


def test_invscaling_learning_rate():
    X, y = _regression()
    params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.01, max_iter=30, random_state=0)
    constant = MLPRegressor(**params).fit(X, y)
    # power_t=0: learning_rate_init / (t + 1) ** 0 is the constant rate
    flat = MLPRegressor(learning_rate="invscaling", power_t=0.0, **params).fit(X, y)
    _assert_same_params(flat, constant, rtol=1e-12, atol=1e-14)
    scaled = MLPRegressor(learning_rate="invscaling", power_t=0.5, **params).fit(X, y)
    assert np.isfinite(scaled.loss_curve_).all()
    assert scaled.loss_curve_[-1] < scaled.loss_curve_[0]
    # the same first epoch (the rate changes at the end of each epoch), then smaller steps
    assert scaled.loss_curve_[0] == pytest.approx(constant.loss_curve_[0], rel=1e-12)
    assert scaled.loss_ > constant.loss_


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_convergence_warning_at_max_iter(kind, solver):
    X, y = _data(kind)
    est = ESTIMATORS[kind](hidden_layer_sizes=(8,), solver=solver, max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.n_iter_ == 3


def test_no_convergence_warning_when_converged():
    X, y = _iris()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), solver="adam", learning_rate_init=0.01, tol=1e-2,
                            max_iter=1000, random_state=0).fit(X, y)
    assert clf.n_iter_ < 1000


def test_divergence_raises_clear_error():
    X, y = datasets.load_diabetes(return_X_y=True)
    X = X * 1000.0  # unscaled
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e6, max_iter=50, random_state=0)
    with pytest.raises(ValueError, match="diverged"):
        reg.fit(X, y)
    for a in _params(reg):
        assert np.isfinite(a).all()
    assert np.isfinite(reg.predict(X)).all()


# ------------------------------------------------------- fitted attributes


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_fitted_attributes(kind, solver):
    X, y = _data(kind)
    Est = ESTIMATORS[kind]
    est = Est(hidden_layer_sizes=(8, 5), solver=solver, max_iter=15, random_state=0).fit(X, y)
    reference = (SkMLPClassifier if kind == "classifier" else SkMLPRegressor)(
        hidden_layer_sizes=(8, 5), solver=solver, max_iter=15, random_state=0).fit(X, y)
    theirs = {a for a in dir(reference) if a.endswith("_") and not a.startswith("_") and hasattr(reference, a)}
    ours = {a for a in dir(est) if a.endswith("_") and not a.startswith("_") and hasattr(est, a)}
    assert theirs <= ours, f"missing: {theirs - ours}"
    for name in ("coefs_", "intercepts_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
                 "best_validation_score_", "n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_", "grad_norms_"):
        assert hasattr(est, name), name

    n_out = 3 if kind == "classifier" else 1
    assert est.n_layers_ == 4 and est.n_outputs_ == n_out and est.n_features_in_ == X.shape[1]
    assert [c.shape for c in est.coefs_] == [(X.shape[1], 8), (8, 5), (5, n_out)]
    assert [b.shape for b in est.intercepts_] == [(8,), (5,), (n_out,)]
    assert est.out_activation_ == ("softmax" if kind == "classifier" else "identity")
    if kind == "classifier":
        assert_array_equal(est.classes_, [0, 1, 2])
    else:
        assert not hasattr(est, "classes_")
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert 1 <= est.n_iter_ <= 15
    assert len(est.loss_curve_) == est.n_iter_
    assert est.loss_ == pytest.approx(est.loss_curve_[-1], rel=1e-12)
    # "the minimum loss reached by the solver throughout fitting" (scikit-learn's definition)
    assert est.best_loss_ == pytest.approx(min(est.loss_curve_), rel=1e-12)
    # grad_norms_: one row per epoch (per iteration for lbfgs), one column per weight layer
    assert est.grad_norms_.shape == (est.n_iter_, est.n_layers_ - 1)
    assert np.isfinite(est.grad_norms_).all() and (est.grad_norms_ > 0).all()
    if solver == "lbfgs":
        assert est.t_ == reference.t_ == 0
    else:
        assert est.t_ == est.n_iter_ * len(X)
        assert est.loss_curve_ == pytest.approx(reference.loss_curve_, rel=0.05)  # same problem, same start


# ------------------------------------------------------------ one-row predict


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_one_row_fast_path_equals_slow_path(kind, dtype, monkeypatch):
    X, y = _data(kind)
    X = X.astype(dtype)
    est = ESTIMATORS[kind](hidden_layer_sizes=(16,), solver="lbfgs", max_iter=30, random_state=0).fit(X, y)
    calls = []
    real_validate_data = fastmlp.estimators.validate_data

    def counting_validate_data(*args, **kwargs):
        calls.append(1)
        return real_validate_data(*args, **kwargs)

    monkeypatch.setattr(fastmlp.estimators, "validate_data", counting_validate_data)

    row = np.ascontiguousarray(X[3:4])
    fast = _output(est, row)
    fast_label = est.predict(row)
    assert not calls  # the fast path skips scikit-learn's validation

    two_rows_f = np.asfortranarray(X[3:5])
    strided = np.zeros((len(X), 2 * X.shape[1]), dtype=dtype)
    strided[:, ::2] = X
    slow_inputs = {"list": X[3:4].tolist(), "fortran": two_rows_f[:1], "strided": strided[3:4, ::2]}
    assert not slow_inputs["fortran"].flags.c_contiguous and not slow_inputs["strided"].flags.c_contiguous
    for name, slow_input in slow_inputs.items():
        n = len(calls)
        assert_array_equal(_output(est, slow_input), fast, err_msg=name)
        assert_array_equal(est.predict(slow_input), fast_label, err_msg=name)
        assert len(calls) > n, name  # went through validation
    assert fast.dtype == dtype
    assert_allclose(fast[0], _output(est, X)[3], rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_one_row_non_finite_raises(kind, bad):
    X, y = _data(kind)
    est = ESTIMATORS[kind](hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10, random_state=0).fit(X, y)
    row = X[3:4].copy()
    row[0, 1] = bad
    for data in (row, row.tolist(), np.vstack([X[:5], row])):
        with pytest.raises(ValueError):
            est.predict(data)
        if kind == "classifier":
            with pytest.raises(ValueError):
                est.predict_proba(data)
    with pytest.raises(ValueError, match="features"):
        est.predict(np.ascontiguousarray(X[3:4, :-1]))  # wrong width, contiguous


# ---------------------------------------------------------- hyperparameters


@pytest.mark.parametrize("Est, params, name", [
    (MLPClassifier, {"activation": "nope"}, "activation"),
    (MLPClassifier, {"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
    (MLPClassifier, {"hidden_layer_sizes": (8, -1)}, "hidden_layer_sizes"),
    (MLPClassifier, {"dropout": 1.5}, "dropout"),
    (MLPClassifier, {"dropout": [1.5]}, "dropout"),
    (MLPClassifier, {"dtype": "int8"}, "dtype"),
    (MLPClassifier, {"solver": "newton"}, "solver"),
    (MLPClassifier, {"clip_norm": 0.0}, "clip_norm"),
    (MLPClassifier, {"learning_rate": "fast"}, "learning_rate"),
    (MLPClassifier, {"batch_size": 0}, "batch_size"),
    (MLPClassifier, {"momentum": 1.5}, "momentum"),
    (MLPClassifier, {"alpha": -1.0}, "alpha"),
    (MLPRegressor, {"loss": "log_loss"}, "loss"),
    (MLPRegressor, {"huber_delta": 0.0}, "huber_delta"),
    (MLPRegressor, {"quantile": 0.0}, "quantile"),
    (MLPRegressor, {"quantile": 1.0}, "quantile"),
    (MLPRegressor, {"activation": "nope"}, "activation"),
    (MLPRegressor, {"dtype": "int8"}, "dtype"),
    (MLPRegressor, {"dropout": 1.5}, "dropout"),
    (MLPRegressor, {"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
])
def test_bad_hyperparameters_raise(Est, params, name):
    X, y = _iris()
    with pytest.raises(ValueError, match=name):
        Est(max_iter=2, **params).fit(X, y)


@pytest.mark.parametrize("params, name", [
    ({"activation": "nope"}, "activation"),
    ({"alpha": -1.0}, "alpha"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"dropout": 1.5}, "dropout"),
    ({"clip_norm": -1.0}, "clip_norm"),
    ({"dtype": "int8"}, "dtype"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
])
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_set_params_then_partial_fit_validates_again(kind, params, name):
    X, y = _data(kind)
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    est = ESTIMATORS[kind](hidden_layer_sizes=(8,), solver="sgd", random_state=0).partial_fit(X, y, **extra)
    before = _params(est)
    est.set_params(**params)
    with pytest.raises(ValueError, match=name):
        est.partial_fit(X, y, **extra)
    for got, want in zip(_params(est), before):
        assert_array_equal(got, want)


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_partial_fit_sees_every_kind_of_hyperparameter_change(kind):
    # partial_fit skips validation while nothing changed; a change by plain
    # assignment or in place must still be validated
    X, y = _data(kind)
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    est = ESTIMATORS[kind](hidden_layer_sizes=[8], solver="sgd", random_state=0).partial_fit(X, y, **extra)
    est.partial_fit(X, y)
    before = _params(est)
    est.alpha = -1.0  # plain assignment
    with pytest.raises(ValueError, match="alpha"):
        est.partial_fit(X, y)
    est.alpha = 1e-4
    est.partial_fit(X, y)
    before = _params(est)
    est.hidden_layer_sizes.append(0)  # in place
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        est.partial_fit(X, y)
    for got, want in zip(_params(est), before):
        assert_array_equal(got, want)
    est.hidden_layer_sizes.pop()
    est.partial_fit(X, y)
    est.alpha = np.array(1e-4)  # a 0-d array: snapshotted without error, then refused as scikit-learn does
    with pytest.raises(ValueError, match="alpha"):
        est.partial_fit(X, y)


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_a_dropout_changed_between_calls_is_the_one_that_trains(kind):
    # set_params(dropout=...) before a partial_fit or a warm start: that call trains with the new rate
    # (it kept the first fit's before); a failed call leaves the old rate
    X, y = _data(kind)
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    est = ESTIMATORS[kind](hidden_layer_sizes=[8, 6], solver="sgd", random_state=0).partial_fit(X, y, **extra)
    est.set_params(dropout=[0.5, 0.0]).partial_fit(X, y)
    assert est._network.dropout == (0.5, 0.0) and est._trainer.settings["dropout"]
    assert_array_equal(est._network._keep, [0.5, 1.0])
    plain = copy.deepcopy(est)
    plain.set_params(dropout=0.0).partial_fit(X, y)
    est.partial_fit(X, y)
    assert not all(np.array_equal(a, b) for a, b in zip(_params(est), _params(plain)))  # the masks applied
    assert not plain._trainer.settings["dropout"] and (plain._network._keep == 1).all()
    with pytest.raises(ValueError, match="sample_weight"):
        est.set_params(dropout=0.2).partial_fit(X, y, sample_weight=-np.ones(len(y)))
    assert est._network.dropout == (0.5, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert est._network.dropout == (0.2, 0.2)


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_partial_fit_plain_input_path_equals_the_validated_path(kind):
    # later partial_fit calls with X already as the engine takes it skip
    # validate_data; the results must be those of the validated path, and bad
    # values must still be refused without training
    X, y = _data(kind)
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    fast, slow = (ESTIMATORS[kind](hidden_layer_sizes=(8,), solver="sgd", random_state=0).partial_fit(X, y, **extra)
                  for _ in range(2))
    for _ in range(3):
        fast.partial_fit(np.ascontiguousarray(X), np.asarray(y))
        slow.partial_fit(np.asfortranarray(X), list(y))
    for got, want in zip(_params(fast), _params(slow)):
        assert_array_equal(got, want)
    before = _params(fast)
    bad_X = X.copy()
    bad_X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fast.partial_fit(bad_X, y)
    bad_y = np.asarray(y, dtype=np.float64).copy()
    bad_y[2] = np.inf if kind == "regressor" else 0.5
    with pytest.raises(ValueError):
        fast.partial_fit(X, bad_y)
    with pytest.raises(ValueError):
        fast.partial_fit(X[:, :-1].copy(), y)  # one feature short: validate_data's message
    with pytest.raises(ValueError):
        fast.partial_fit(X, y[:-1])
    for got, want in zip(_params(fast), before):
        assert_array_equal(got, want)


def test_partial_fit_keeps_one_generator_so_dropout_masks_change():
    # partial_fit draws from one generator across calls (re-seeding each call, as
    # scikit-learn does, would repeat one dropout mask in every epoch): N calls
    # equal fit with max_iter=N, dropout on.
    rng = np.random.RandomState(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] > 0).astype(int)
    params = dict(hidden_layer_sizes=(16,), solver="sgd", shuffle=False, tol=0.0, n_iter_no_change=10**6,
                  dropout=0.5, random_state=3, learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = fastmlp.MLPClassifier(max_iter=5, **params).fit(X, y)
    inc = fastmlp.MLPClassifier(max_iter=5, **params)
    for _ in range(5):
        inc.partial_fit(X, y, classes=[0, 1])
    for a, b in zip(full.coefs_, inc.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("first, then, method", [(True, False, "partial_fit"), (False, True, "fit"),
                                                 (True, False, "fit")])
def test_early_stopping_switched_between_calls_goes_on(first, then, method, tmp_path):
    # found by probing: a warm start or partial_fit after set_params(early_stopping=...) compared a loss with
    # the other mode's None (a TypeError, as scikit-learn's MLP raises), the model left changed
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, early_stopping=first, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        n = len(clf.loss_curve_)
        getattr(clf.set_params(early_stopping=then), method)(X, y)
    assert len(clf.loss_curve_) > n and np.isfinite(clf.loss_curve_).all()
    if then:
        assert len(clf.validation_scores_) >= len(clf.loss_curve_) - n and np.isfinite(clf.best_validation_score_)
    else:
        assert np.isfinite(clf.best_loss_)
    clf.save(tmp_path / "m.fmlp")
    assert np.array_equal(fastmlp.load(tmp_path / "m.fmlp").predict_proba(X), clf.predict_proba(X))


def test_multiclass_decision_function_ranks_each_class_as_its_probability():
    # found by probing: the multiclass logits ranked a class's samples otherwise than its probability (which
    # depends on the other logits too), and scikit-learn's scorers, which prefer decision_function, gave
    # another average precision than with scikit-learn's MLP (0.396 against 0.425); now the log-probabilities
    from sklearn.metrics import average_precision_score, get_scorer
    from sklearn.preprocessing import label_binarize

    rng = np.random.RandomState(0)
    X = rng.randn(120, 4)
    y = rng.randint(0, 3, 120)
    kw = dict(hidden_layer_sizes=(6,), max_iter=30, random_state=0)
    clf = MLPClassifier(**kw).fit(X, y)
    scores, P = clf.decision_function(X), clf.predict_proba(X)
    assert_allclose(np.exp(scores), P, rtol=1e-12, atol=1e-15)
    assert_array_equal(scores.argmax(axis=1), clf.predict(X))
    Y = label_binarize(y, classes=[0, 1, 2])
    expected = average_precision_score(Y, P)
    assert get_scorer("average_precision")(clf, X, y) == pytest.approx(expected, abs=1e-12)
    sk = SkMLPClassifier(**kw).fit(X, y)
    assert get_scorer("average_precision")(sk, X, y) == pytest.approx(
        average_precision_score(Y, sk.predict_proba(X)), abs=1e-12)
    # binary: still the logit
    binary = MLPClassifier(**kw).fit(X, y > 0)
    assert_allclose(1 / (1 + np.exp(-binary.decision_function(X))), binary.predict_proba(X)[:, 1], rtol=1e-12)


def test_a_batch_of_zero_weights_is_not_counted_in_the_epoch_loss():
    # found by probing: such a batch (which does not train) counted as loss 0 over its rows, so loss_ was the
    # weighted rows' loss times 10/40 here, and by another fraction every shuffle (scikit-learn divides by 0)
    rng = np.random.RandomState(0)
    X, y = rng.randn(40, 3), rng.randint(0, 3, 40)
    sw = np.zeros(40)
    sw[:10] = 1.0
    kw = dict(hidden_layer_sizes=(5,), max_iter=1, random_state=0, batch_size=10, solver="sgd", learning_rate_init=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MLPClassifier(**kw, shuffle=False).fit(X, y, sample_weight=sw)
        alone = MLPClassifier(**kw, shuffle=False).fit(X[:10], y[:10])
        assert weighted.loss_ == pytest.approx(alone.loss_, rel=1e-12)
    # the ensembles' one pass reports the same
    ens = fastmlp.MLPEnsembleClassifier(**kw, shuffle=False, n_members=2).fit(X, y, sample_weight=sw)
    assert ens.estimators_[0].loss_ == pytest.approx(ens.estimators_[0].loss_curve_[0])
    member = MLPClassifier(**dict(kw, random_state=ens.estimators_[1].random_state), shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        member.fit(X, y, sample_weight=sw)
    assert ens.estimators_[1].loss_ == pytest.approx(member.loss_, rel=1e-9)


def test_a_regressor_refuses_strings_of_numbers_as_targets():
    # found by probing: y = ["1.5", "2", ...] was parsed and fitted; scikit-learn's regressor refuses it
    rng = np.random.RandomState(0)
    X = rng.randn(20, 3)
    y = np.where(X[:, 0] > 0, "1.5", "2")
    with pytest.raises(ValueError, match="^y: dtype='numeric'"):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="^y_val: dtype='numeric'"):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, y.astype(float), X_val=X, y_val=y)


@pytest.mark.parametrize("sizes", [(2.0,), (True,), ("3",)])
def test_hidden_layer_sizes_of_non_integers_is_a_type_error(sizes):
    # as scikit-learn's (a ValueError before)
    with pytest.raises(TypeError, match="hidden_layer_sizes must be positive integers"):
        MLPRegressor(hidden_layer_sizes=sizes, max_iter=2).fit(np.ones((4, 2)), np.arange(4.0))
