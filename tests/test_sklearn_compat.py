"""Behaviours scikit-learn's own MLP tests rely on (issue 12, items 4 and 5).

* coefs_ and intercepts_ assigned to an unfitted estimator are kept, checked
  against the layer sizes on the first partial_fit (or fit with
  warm_start=True), and training starts from them: scikit-learn's test_fit,
  a worked example of one sgd step, with its numbers, and the same step
  against scikit-learn's estimator itself.
* The stratified early-stopping split names the user's labels in its error.
"""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_almost_equal, assert_array_equal
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from fastmlp import MLPClassifier, MLPRegressor

# scikit-learn's test_fit: one sample, logistic hidden units, one sgd step without momentum
X_FIT = np.array([[0.6, 0.8, 0.7]])
Y_FIT = np.array([0])
FIT_PARAMS = dict(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic", random_state=1,
                  max_iter=1, hidden_layer_sizes=2, momentum=0)


def _fit_weights():
    coefs = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
    intercepts = [np.array([0.1, 0.1]), np.array([1.0])]
    return coefs, intercepts


def _params(est):
    return [np.array(a) for a in list(est.coefs_) + list(est.intercepts_)]


def _sklearn_one_step():
    """scikit-learn's estimator after test_fit's step (its test sets this private state)."""
    coefs, intercepts = _fit_weights()
    sk = SkMLPClassifier(**FIT_PARAMS)
    sk.coefs_, sk.intercepts_ = coefs, intercepts
    sk.n_outputs_, sk.n_features_in_, sk.n_iter_, sk.n_layers_ = 1, 3, 0, 3
    sk.out_activation_, sk.t_, sk.best_loss_, sk.loss_curve_, sk._no_improvement_count = "logistic", 0, np.inf, [], 0
    return sk.partial_fit(X_FIT, Y_FIT, classes=[0, 1])


def test_weights_assigned_before_fitting_are_where_partial_fit_starts():
    mlp = MLPClassifier(**FIT_PARAMS)
    # assigned as scikit-learn's test_fit does: a list first, then item by item
    mlp.coefs_ = [0] * 2
    mlp.intercepts_ = [0] * 2
    coefs, intercepts = _fit_weights()
    mlp.coefs_[0], mlp.coefs_[1] = coefs
    mlp.intercepts_[0], mlp.intercepts_[1] = intercepts
    assert_array_equal(mlp.coefs_[1], coefs[1])  # kept as assigned until the first fit
    mlp.partial_fit(X_FIT, Y_FIT, classes=[0, 1])
    # test_fit's worked-out numbers
    assert_almost_equal(mlp.coefs_[0], [[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]],
                        decimal=3)
    assert_almost_equal(mlp.coefs_[1], [[0.04706], [0.154089]], decimal=3)
    assert_almost_equal(mlp.intercepts_[0], [0.098333, 0.09626], decimal=3)
    assert_almost_equal(mlp.intercepts_[1], [0.9235], decimal=3)
    assert_almost_equal(mlp.predict_proba(X_FIT)[0, 1], 0.739, decimal=3)
    # and scikit-learn's estimator from the same weights, to rounding
    sk = _sklearn_one_step()
    for p, q in zip(_params(mlp), _params(sk), strict=True):
        assert_allclose(p, np.reshape(q, p.shape), rtol=1e-12)
    assert_allclose(mlp.predict_proba(X_FIT), sk.predict_proba(X_FIT), rtol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_warm_start_fit_starts_from_assigned_weights_and_a_cold_fit_ignores_them(solver):
    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=3, shuffle=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        donor = MLPClassifier(**params).fit(X, y)
        # continuing the donor, and a new estimator given the donor's weights, take the same steps
        given = MLPClassifier(**params, warm_start=True)
        given.coefs_, given.intercepts_ = list(donor.coefs_), list(donor.intercepts_)
        given.fit(X, y)
        donor.set_params(warm_start=True)
        if solver == "sgd":
            donor._trainer = None  # a warm-start fit starts a fresh optimizer (as the new estimator does)
        donor.fit(X, y)
        for p, q in zip(_params(given), _params(donor), strict=True):
            assert_allclose(p, q, rtol=1e-12, atol=1e-14)
        # without warm_start, fit starts over, as scikit-learn's does
        cold = MLPClassifier(**params)
        cold.coefs_, cold.intercepts_ = [c * 0 + 9 for c in donor.coefs_], list(donor.intercepts_)
        fresh = MLPClassifier(**params)
        for p, q in zip(_params(cold.fit(X, y)), _params(fresh.fit(X, y)), strict=True):
            assert_array_equal(p, q)


def _assigned(coefs=None, intercepts=None):
    mlp = MLPClassifier(**FIT_PARAMS)
    good_coefs, good_intercepts = _fit_weights()
    if coefs is not False:
        mlp.coefs_ = good_coefs if coefs is None else coefs
    if intercepts is not False:
        mlp.intercepts_ = good_intercepts if intercepts is None else intercepts
    return mlp


@pytest.mark.parametrize("coefs, intercepts, error, pattern", [
    ([np.zeros((2, 2)), np.zeros((2, 1))], None, ValueError, r"coefs_\[0\] must have shape \(3, 2\).*\[3, 2, 1\]"),
    ([np.zeros((3, 2))], None, ValueError, r"coefs_ must hold 2 arrays"),
    (None, [np.zeros(2), np.zeros(3)], ValueError, r"intercepts_\[1\] must have shape \(1,\)"),
    ([np.zeros((3, 2)), np.full((2, 1), np.nan)], None, ValueError, r"coefs_\[1\] contains NaN"),
    ([np.zeros((3, 2)), np.array([["a"], ["b"]])], None, TypeError, r"coefs_\[1\] must hold real numbers"),
    (None, False, ValueError, r"intercepts_ must be assigned too"),
    (False, None, ValueError, r"coefs_ must be assigned too"),
])
def test_assigned_weights_that_do_not_fit_the_data_raise_and_leave_no_fitted_state(coefs, intercepts, error,
                                                                                   pattern):
    mlp = _assigned(coefs, intercepts)
    with pytest.raises(error, match=pattern):
        mlp.partial_fit(X_FIT, Y_FIT, classes=[0, 1])
    with pytest.raises(NotFittedError):
        mlp.predict(X_FIT)
    # the assignment is kept: corrected, the next call starts from it
    good_coefs, good_intercepts = _fit_weights()
    mlp.coefs_, mlp.intercepts_ = good_coefs, good_intercepts
    mlp.partial_fit(X_FIT, Y_FIT, classes=[0, 1])
    assert_almost_equal(mlp.intercepts_[1], [0.9235], decimal=3)


@pytest.mark.parametrize("value", [np.zeros((3, 2)), 0, "coefs", None])
def test_assigning_something_other_than_a_list_raises_type_error(value):
    mlp = MLPRegressor()
    with pytest.raises(TypeError, match="coefs_ must be a list"):
        mlp.coefs_ = value
    with pytest.raises(AttributeError):
        mlp.coefs_


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_unfitted_estimator_without_assigned_weights_has_no_coefs(Est):
    est = Est()
    for name in ("coefs_", "intercepts_"):
        with pytest.raises(AttributeError, match="not fitted"):
            getattr(est, name)
        assert not hasattr(est, name)
    with pytest.raises(NotFittedError):
        est.predict(X_FIT)
    est.coefs_ = [np.zeros((3, 2))]  # assigned: readable, but still not fitted
    assert len(est.coefs_) == 1
    with pytest.raises(AttributeError):
        est.intercepts_
    with pytest.raises(NotFittedError):
        est.predict(X_FIT)


def test_assigned_weights_after_fitting_go_into_the_model():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(4, 3\)"):
        clf.coefs_ = [np.zeros((3, 3)), np.zeros((3, 3))]
    clf.coefs_ = [np.zeros((4, 3)), np.zeros((3, 3))]
    clf.intercepts_ = [np.zeros(3), np.zeros(3)]
    assert_array_equal(clf.predict_proba(X), np.full((150, 3), 1 / 3))


# ------------------------------------------------------ stratified early stopping


@pytest.mark.parametrize("labels, named", [(["a", "a", "a", "b"], r"\['b'\]"), ([5, 5, 5, 7], r"\[7\]")])
def test_stratified_early_stopping_error_names_the_users_labels(labels, named):
    X = [[1, 2], [2, 3], [3, 4], [4, 5]]
    with pytest.raises(ValueError, match=r"The least populated classes in y have only 1 member.*"
                                         r"Classes with too few members are: " + named):
        MLPClassifier(early_stopping=True).fit(X, labels)


def test_stratified_split_is_the_same_for_any_spelling_of_the_labels():
    # the split is stratified by the user's labels, which sort as the encoded ones do:
    # renaming the classes changes nothing in the fit
    X, y = load_iris(return_X_y=True)
    X, y = X[y > 0], y[y > 0]
    params = dict(hidden_layer_sizes=(5,), early_stopping=True, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**params).fit(X, y)
        b = MLPClassifier(**params).fit(X, np.array(["b", "c"])[y - 1])
    assert a.validation_scores_ == b.validation_scores_
    for p, q in zip(_params(a), _params(b), strict=True):
        assert_array_equal(p, q)
