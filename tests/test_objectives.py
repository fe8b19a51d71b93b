"""Issue 15's objectives at the estimator level: MLPRegressor's robust,
quantile and gamma losses, MLPClassifier's class_weight, their bad input,
persistence, and their quality on held-out data (fixed seeds, means over a
few seeds, each test a few seconds at most).
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score

from fastmlp import MLPRegressor, _registry
from fastmlp import reference as ref

# short fits: stopping at max_iter is expected
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

NEW_LOSSES = ["absolute_error", "huber", "quantile", "gamma"]
SOLVERS = ["lbfgs", "sgd", "adam"]


def _positive_regression(n=200, n_targets=1, seed=0):
    """X and a positive, right-skewed y (gamma-distributed around exp(linear))."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    mean = np.exp(0.4 * X[:, :1] - 0.3 * X[:, 1:2] + 0.2 * np.arange(n_targets))
    Y = rng.gamma(3.0, mean / 3.0)
    return X, Y.ravel() if n_targets == 1 else Y


def _reference_loss(reg, X, Y):
    """The mean loss of reg's loss on (X, Y) plus the L2 term, from fastmlp.reference."""
    spec = _registry.REGRESSION_OUTPUTS[reg.loss]
    P = reg.predict(X).astype(np.float64).reshape(len(X), -1)
    Z = np.log(P) if spec.activation == "exp" else P
    kwargs = {} if spec.param is None else {spec.param.name: getattr(reg, spec.param.argument)}
    loss = spec.loss(Y.reshape(len(X), -1), Z, **kwargs) / len(X)
    return loss + reg.alpha / (2 * len(X)) * sum(float(np.sum(W.astype(np.float64) ** 2)) for W in reg.coefs_)


# ------------------------------------------------------------------ MLPRegressor(loss=...)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_regressor_fits_each_new_loss(loss, solver):
    X, y = _positive_regression()
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(8,), solver=solver, learning_rate_init=0.01, max_iter=60,
                       random_state=0, huber_delta=0.5, quantile=0.7).fit(X, y)
    assert reg.out_activation_ == _registry.REGRESSION_OUTPUTS[loss].activation
    pred = reg.predict(X)
    assert np.isfinite(pred).all() and (loss != "gamma" or (pred > 0).all())
    assert np.isfinite(reg.loss_curve_).all() and reg.loss_curve_[-1] < reg.loss_curve_[0]
    assert reg._network.loss == loss
    assert reg._network.loss_param == {"huber": 0.5, "quantile": 0.7}.get(loss)
    assert reg.score(X, y) == r2_score(y, pred)  # R^2, whatever the loss


@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_loss_reports_the_loss_minimised(loss):
    # loss_ at the L-BFGS solution is the mean of that loss (not the squared error) plus the L2 term
    X, y = _positive_regression()
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(6,), solver="lbfgs", max_iter=30, alpha=0.01,
                       random_state=0, huber_delta=0.3, quantile=0.2).fit(X, y)
    assert_allclose(reg.loss_, _reference_loss(reg, X, y), rtol=1e-8)
    assert reg.loss_curve_[-1] == reg.loss_


def test_quantile_multi_output_fits_that_quantile_per_output():
    X, Y = _positive_regression(n=400, n_targets=2)
    for q in (0.2, 0.8):
        reg = MLPRegressor(loss="quantile", quantile=q, hidden_layer_sizes=(16,), solver="lbfgs", max_iter=400,
                           random_state=0).fit(X, Y)
        below = (Y <= reg.predict(X)).mean(axis=0)  # the training fraction under each output's prediction
        assert_allclose(below, q, atol=0.05)


def test_huber_delta_and_quantile_follow_set_params_between_partial_fit_calls():
    X, y = _positive_regression()
    reg = MLPRegressor(loss="huber", hidden_layer_sizes=(4,), solver="sgd", random_state=0).partial_fit(X, y)
    assert reg._network.loss_param == 1.0
    reg.set_params(huber_delta=0.25).partial_fit(X, y)
    assert reg._network.loss_param == 0.25
    assert_allclose(reg.loss_, _reference_loss(reg, X, y), rtol=0.5)  # an epoch's mean, of the new delta


def test_warm_start_refuses_a_changed_loss():
    X, y = _positive_regression()
    reg = MLPRegressor(loss="huber", hidden_layer_sizes=(4,), max_iter=5, warm_start=True, random_state=0).fit(X, y)
    before = [W.copy() for W in reg.coefs_]
    reg.set_params(loss="absolute_error")
    with pytest.raises(ValueError, match="loss"):
        reg.fit(X, y)
    for W, B in zip(reg.coefs_, before):
        np.testing.assert_array_equal(W, B)


@pytest.mark.parametrize("loss, bad", [("gamma", 0.0), ("gamma", -1.0), ("poisson", -1.0)])
def test_targets_outside_the_loss_domain(loss, bad):
    X, y = _positive_regression()
    y[5] = bad
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError, match=r"\by must be"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):  # the failed first fit left nothing behind
        reg.predict(X)
    fitted = MLPRegressor(loss=loss, hidden_layer_sizes=(4,), solver="sgd", random_state=0).partial_fit(X[6:], y[6:])
    before = [W.copy() for W in fitted.coefs_]
    with pytest.raises(ValueError, match=r"\by must be"):
        fitted.partial_fit(X, y)
    for W, B in zip(fitted.coefs_, before):
        np.testing.assert_array_equal(W, B)


@pytest.mark.parametrize("params, name", [
    ({"quantile": 0.0}, "quantile"), ({"quantile": 1.0}, "quantile"), ({"quantile": -0.5}, "quantile"),
    ({"quantile": "0.5"}, "quantile"), ({"huber_delta": 0.0}, "huber_delta"), ({"huber_delta": -1.0}, "huber_delta"),
    ({"loss": "log_loss"}, "loss"),
])
def test_bad_loss_parameters(params, name):
    X, y = _positive_regression()
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, **params)
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_reference_losses_are_hist_gradient_boostings():
    # the definitions HistGradientBoostingRegressor minimises (scikit-learn's _loss module):
    # absolute_error |r|, pinball, half gamma deviance (with its constant); huber as HuberRegressor's
    from sklearn._loss.loss import AbsoluteError, HalfGammaLoss, PinballLoss
    rng = np.random.default_rng(0)
    y, z = rng.gamma(2.0, 1.0, 50), rng.normal(size=50)
    Y, Z = y[:, None], z[:, None]
    assert_allclose(ref.absolute_error(Y, Z), AbsoluteError().loss(y, z).sum(), rtol=1e-12)
    assert_allclose(ref.quantile_loss(Y, Z, quantile=0.3), PinballLoss(quantile=0.3).loss(y, z).sum(), rtol=1e-12)
    gamma = HalfGammaLoss()
    assert_allclose(ref.gamma_loss(Y, Z), (gamma.loss(y, z) + gamma.constant_to_optimal_zero(y)).sum(), rtol=1e-10)
    r = np.abs(z - y)
    assert_allclose(ref.huber_loss(Y, Z, delta=0.7),
                    np.sum(np.where(r <= 0.7, 0.5 * r ** 2, 0.7 * r - 0.5 * 0.7 ** 2)), rtol=1e-12)
