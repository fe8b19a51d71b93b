"""The math of the engine in plain NumPy (and scipy.special): a leaf module.

Activations and their derivatives, output activation + loss pairs, the
initialisation schemes and the optimizer updates, each written to be read.
``fastmlp.reference`` re-exports all of them beside its ``Network``; the
registry points at them. Nothing of fastmlp is imported here, so the oracle
never depends on the package it checks.
"""
import numpy as np
from scipy.special import expit, softmax, xlogy

# ---------------------------------------------------------------------------
# Hidden activations. Each derivative takes z and a = f(z), and returns f'(z).


def identity(z):
    """Identity activation: f(z) = z.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).

    Returns
    -------
    ndarray
        The activation f(z), of z's shape and dtype.
    """
    return z.copy()


def identity_derivative(z, a):
    """Derivative of identity: f'(z) = 1.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    a : ndarray
        The activation's output f(z), of z's shape.

    Returns
    -------
    ndarray
        The derivative f'(z), of z's shape and dtype.
    """
    return np.ones_like(z)


def logistic(z):
    """Logistic activation: f(z) = 1 / (1 + exp(-z)), the sigmoid.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).

    Returns
    -------
    ndarray
        The activation f(z), of z's shape and dtype.
    """
    return expit(z)


def logistic_derivative(z, a):
    """Derivative of logistic: f'(z) = f(z) (1 - f(z)).

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    a : ndarray
        The activation's output f(z), of z's shape.

    Returns
    -------
    ndarray
        The derivative f'(z), of z's shape and dtype.
    """
    return a * (1 - a)


def tanh(z):
    """Hyperbolic tangent activation: f(z) = tanh(z).

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).

    Returns
    -------
    ndarray
        The activation f(z), of z's shape and dtype.
    """
    return np.tanh(z)


def tanh_derivative(z, a):
    """Derivative of tanh: f'(z) = 1 - tanh(z)^2.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    a : ndarray
        The activation's output f(z), of z's shape.

    Returns
    -------
    ndarray
        The derivative f'(z), of z's shape and dtype.
    """
    return 1 - a * a


def relu(z):
    """Rectified linear unit: f(z) = max(z, 0).

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).

    Returns
    -------
    ndarray
        The activation f(z), of z's shape and dtype.
    """
    return np.maximum(z, 0)


def relu_derivative(z, a):
    """Derivative of relu: f'(z) = 1 for z > 0, else 0 (0 at z = 0).

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    a : ndarray
        The activation's output f(z), of z's shape.

    Returns
    -------
    ndarray
        The derivative f'(z), of z's shape and dtype.
    """
    return (z > 0).astype(z.dtype)


LEAKY_RELU_SLOPE = 0.01


def leaky_relu(z):
    """Leaky rectified linear unit: f(z) = z for z > 0, else 0.01 z.

    The slope 0.01 is LEAKY_RELU_SLOPE.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).

    Returns
    -------
    ndarray
        The activation f(z), of z's shape and dtype.
    """
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_RELU_SLOPE))


def leaky_relu_derivative(z, a):
    """Derivative of leaky_relu: f'(z) = 1 for z > 0, else 0.01.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    a : ndarray
        The activation's output f(z), of z's shape.

    Returns
    -------
    ndarray
        The derivative f'(z), of z's shape and dtype.
    """
    return np.where(z > 0, z.dtype.type(1), z.dtype.type(LEAKY_RELU_SLOPE))


def swish(z):
    """Swish activation, also called SiLU: f(z) = z * sigmoid(z).

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).

    Returns
    -------
    ndarray
        The activation f(z), of z's shape and dtype.
    """
    return z * expit(z)


def swish_derivative(z, a):
    """Derivative of swish: f'(z) = s (1 + z (1 - s)) with s = sigmoid(z).

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    a : ndarray
        The activation's output f(z), of z's shape.

    Returns
    -------
    ndarray
        The derivative f'(z), of z's shape and dtype.
    """
    s = expit(z)
    return s * (1 + z * (1 - s))


PRELU_INITIAL_SLOPE = 0.25


def prelu(z, slopes):
    """Parametric ReLU: f(z) = z for z > 0, else a z, with a learnable slope a per unit.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    slopes : ndarray of shape (n_units,)
        The learnable slope a of each unit (column).

    Returns
    -------
    ndarray
        The activation f(z), of z's shape and dtype.
    """
    return np.where(z > 0, z, z * slopes)


def prelu_derivative(z, a, slopes):
    """Derivative of prelu in z: f'(z) = 1 for z > 0, else the unit's slope.

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    a : ndarray
        The activation's output f(z), of z's shape.
    slopes : ndarray of shape (n_units,)
        The learnable slope a of each unit (column).

    Returns
    -------
    ndarray
        The derivative f'(z), of z's shape and dtype.
    """
    return np.where(z > 0, z.dtype.type(1), slopes)


def prelu_slope_gradient(z, upstream):
    """Derivative of prelu in its slope: dL/da = sum over rows of dL/df * min(z, 0).

    Parameters
    ----------
    z : ndarray
        The pre-activations Z of a layer, of shape (n_samples, n_units).
    upstream : ndarray
        The gradient dL/df of the loss in the layer's output, of z's shape.

    Returns
    -------
    ndarray of shape (n_units,)
        The gradient of the loss in each unit's slope.
    """
    return np.sum(upstream * np.minimum(z, 0), axis=0)


# ---------------------------------------------------------------------------
# Output activation + loss pairs. Each loss is written from Z (the output
# layer's pre-activation), which is stable where P is 0 or 1, and summed over
# the rows (each row times its sample weight, when given); its gradient with
# respect to Z is output_delta.


def _log_softmax(Z):
    """log softmax(z) of each row (along the last axis): z - max z - log sum exp(z - max z), stable for
    any finite z.

    (scipy.special.log_softmax computes the same; its array-API dispatch costs
    more than the arithmetic at a validation set's size.)
    """
    shifted = Z - Z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _row_sum(terms, sample_weight):
    """sum_i w_i sum_k terms_ik, with w_i = 1 without weights.

    terms may have leading axes (several networks' outputs stacked, (K, n,
    n_outputs)): then one sum per network, each with the same bits as the
    sum of its own (n, n_outputs) terms.
    """
    rows = terms.sum(axis=-1)
    return np.sum(rows if sample_weight is None else sample_weight * rows, axis=-1)


def squared_error(Y, Z, sample_weight=None):
    """Squared error: the sum over rows of 0.5 ||y - z||^2 (identity output).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    return _row_sum(0.5 * (Y - Z) ** 2, sample_weight)


def binary_log_loss(Y, Z, sample_weight=None):
    """Binary log-loss: sum over rows and outputs of -[y log p + (1 - y) log(1 - p)], p = sigmoid(z).

    Written as softplus(z) - y z, with softplus(z) = log(1 + exp(z)).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    return _row_sum(np.logaddexp(0, Z) - Y * Z, sample_weight)


def softmax_log_loss(Y, Z, sample_weight=None):
    """Categorical log-loss: the sum over rows of -sum_k y_k log p_k, p = softmax(z).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    return _row_sum(-Y * _log_softmax(Z), sample_weight)


def poisson_loss(Y, Z, sample_weight=None):
    """Poisson loss: sum over rows and outputs of p - y log p + y log y - y, p = exp(z).

    Half the Poisson deviance, written with log p = z (0 log 0 = 0).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    return _row_sum(np.exp(Z) - Y * Z + xlogy(Y, Y) - Y, sample_weight)


def absolute_error(Y, Z, sample_weight=None):
    """Absolute error: the sum over rows and outputs of ``|y - z|`` (identity output).

    Its gradient is absolute_error_gradient.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    return _row_sum(np.abs(Z - Y), sample_weight)


def absolute_error_gradient(Y, Z):
    """Compute the gradient of absolute_error in Z: sign(z - y), and 0 at z = y (a subgradient).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        The gradient of the row-summed loss in Z.
    """
    return np.sign(Z - Y)


def huber_loss(Y, Z, sample_weight=None, delta=1.0):
    """Huber loss, r = z - y: summed over rows and outputs, 0.5 r^2 if ``|r| <= delta``, else ``delta (|r| - delta/2)``.

    Squared error near the target, absolute error (times delta) beyond
    delta: outliers pull with a bounded force. Its gradient is huber_gradient.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations (identity output).
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.
    delta : float, default=1.0
        Where the loss turns from quadratic to linear; positive.

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    r = np.abs(Z - Y)
    return _row_sum(np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)), sample_weight)


def huber_gradient(Y, Z, delta=1.0):
    """Compute the gradient of huber_loss in Z: clip(z - y, -delta, delta).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.
    delta : float, default=1.0
        Huber's threshold.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        The gradient of the row-summed loss in Z.
    """
    return np.clip(Z - Y, -delta, delta)


def quantile_loss(Y, Z, sample_weight=None, quantile=0.5):
    """Pinball loss: sum over rows and outputs of q (y - z) where y >= z, else (1 - q) (z - y), q = quantile.

    Minimised by the q-quantile of y given x (HistGradientBoosting's
    loss="quantile"). Its gradient is quantile_gradient.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations (identity output).
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.
    quantile : float, default=0.5
        The quantile q, in (0, 1).

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    r = Z - Y
    return _row_sum(np.where(r < 0, -quantile * r, (1 - quantile) * r), sample_weight)


def quantile_gradient(Y, Z, quantile=0.5):
    """Compute the gradient of quantile_loss in Z: -q where z < y, 1 - q where z > y, 0 at z = y (a subgradient).

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.
    quantile : float, default=0.5
        The quantile q.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        The gradient of the row-summed loss in Z.
    """
    r = Z - Y
    return np.where(r < 0, -quantile, np.where(r > 0, 1 - quantile, 0.0))


def gamma_loss(Y, Z, sample_weight=None):
    """Gamma loss: sum over rows and outputs of log p - log y + y / p - 1, p = exp(z).

    Half the gamma deviance (scikit-learn's mean_gamma_deviance is twice its
    mean), written from z: z - log y + y exp(-z) - 1. Targets must be positive.
    Its gradient is gamma_gradient.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets, positive.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations (exp output).
    sample_weight : ndarray of shape (n_samples,), default=None
        A weight per row; None weighs every row 1.

    Returns
    -------
    float
        The loss summed over the rows (not averaged).
    """
    log_y = np.log(Y)
    return _row_sum(Z - log_y + np.exp(log_y - Z) - 1, sample_weight)


def gamma_gradient(Y, Z):
    """Compute the gradient of gamma_loss in Z: 1 - y exp(-z) = 1 - y / p.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
        The targets, positive.
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        The gradient of the row-summed loss in Z.
    """
    return 1 - np.exp(np.log(Y) - Z)


def output_delta(output_activation, Y, P):
    """Compute dL/dZ of the row-summed loss: P - Y for the log-likelihood pairs.

    These are squared_error, log_loss and poisson, each with its own output;
    the other losses have a gradient function of their own.

    For softmax with targets that do not sum to one per row, the exact
    gradient is m P - Y with m = sum_k y_k.

    Parameters
    ----------
    output_activation : {"identity", "logistic", "softmax", "exp"}
        The output activation, paired with its loss.
    Y : ndarray of shape (n_samples, n_outputs)
        The targets.
    P : ndarray of shape (n_samples, n_outputs)
        The network's output, ``output_forward(output_activation, Z)``.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        The sensitivity delta_L: the gradient of the row-summed loss in Z.
    """
    if output_activation == "softmax":
        return Y.sum(axis=1, keepdims=True) * P - Y
    return P - Y


def output_forward(output_activation, Z):
    """Compute the network's output P = g(Z).

    Parameters
    ----------
    output_activation : {"identity", "logistic", "softmax", "exp"}
        The output activation g (softmax is taken over each row).
    Z : ndarray of shape (n_samples, n_outputs)
        The output layer's pre-activations.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        P = g(Z).
    """
    if output_activation == "softmax":
        return softmax(Z, axis=1)
    if output_activation == "logistic":
        return expit(Z)
    if output_activation == "exp":
        return np.exp(Z)
    return Z.copy()


# ---------------------------------------------------------------------------
# Initialisation: each returns (W, b) for one layer, drawn from rng (a NumPy
# Generator or RandomState) in float64. `factor` is the activation's Glorot
# factor for "auto" (6, or 2 for logistic, as scikit-learn); the others ignore it.


def init_auto(fan_in, fan_out, rng, factor):
    """Draw scikit-learn's scheme: W and b ~ U(-r, r), r = sqrt(factor / (fan_in + fan_out)).

    Parameters
    ----------
    fan_in : int
        The number of inputs of the layer.
    fan_out : int
        The number of units of the layer.
    rng : numpy.random.Generator or numpy.random.RandomState
        The source of the random draws.
    factor : float
        The activation's Glorot factor (6, or 2 for logistic).

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out)
        The weights, float64.
    b : ndarray of shape (fan_out,)
        The biases, float64.
    """
    bound = np.sqrt(factor / (fan_in + fan_out))
    W = rng.uniform(-bound, bound, (fan_in, fan_out))
    b = rng.uniform(-bound, bound, fan_out)
    return W, b


def glorot_uniform(fan_in, fan_out, rng, factor):
    """Glorot uniform initialisation: W ~ U(-r, r), r = sqrt(6 / (fan_in + fan_out)); b = 0.

    Parameters
    ----------
    fan_in : int
        The number of inputs of the layer.
    fan_out : int
        The number of units of the layer.
    rng : numpy.random.Generator or numpy.random.RandomState
        The source of the random draws.
    factor : float
        The activation's Glorot factor (6, or 2 for logistic); not used here.

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out)
        The weights, float64.
    b : ndarray of shape (fan_out,)
        The biases, float64.
    """
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, (fan_in, fan_out)), np.zeros(fan_out)


def glorot_normal(fan_in, fan_out, rng, factor):
    """Glorot normal initialisation: W ~ N(0, 2 / (fan_in + fan_out)); b = 0.

    Parameters
    ----------
    fan_in : int
        The number of inputs of the layer.
    fan_out : int
        The number of units of the layer.
    rng : numpy.random.Generator or numpy.random.RandomState
        The source of the random draws.
    factor : float
        The activation's Glorot factor (6, or 2 for logistic); not used here.

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out)
        The weights, float64.
    b : ndarray of shape (fan_out,)
        The biases, float64.
    """
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, (fan_in, fan_out)), np.zeros(fan_out)


def he_uniform(fan_in, fan_out, rng, factor):
    """He uniform initialisation: W ~ U(-r, r), r = sqrt(6 / fan_in); b = 0.

    Parameters
    ----------
    fan_in : int
        The number of inputs of the layer.
    fan_out : int
        The number of units of the layer.
    rng : numpy.random.Generator or numpy.random.RandomState
        The source of the random draws.
    factor : float
        The activation's Glorot factor (6, or 2 for logistic); not used here.

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out)
        The weights, float64.
    b : ndarray of shape (fan_out,)
        The biases, float64.
    """
    bound = np.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, (fan_in, fan_out)), np.zeros(fan_out)


def he_normal(fan_in, fan_out, rng, factor):
    """He normal initialisation: W ~ N(0, 2 / fan_in); b = 0.

    Parameters
    ----------
    fan_in : int
        The number of inputs of the layer.
    fan_out : int
        The number of units of the layer.
    rng : numpy.random.Generator or numpy.random.RandomState
        The source of the random draws.
    factor : float
        The activation's Glorot factor (6, or 2 for logistic); not used here.

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out)
        The weights, float64.
    b : ndarray of shape (fan_out,)
        The biases, float64.
    """
    std = np.sqrt(2.0 / fan_in)
    return rng.normal(0.0, std, (fan_in, fan_out)), np.zeros(fan_out)


# ---------------------------------------------------------------------------
# Optimizer updates on the flat parameter vector, in place (scikit-learn's
# _stochastic_optimizers.py). `state` is the list of the optimizer's buffers.


def sgd_update(params, grads, state, step, learning_rate, momentum, nesterov, **_):
    """Apply one SGD step with momentum: v = momentum v - lr g; p += momentum v - lr g (Nesterov) or p += v.

    Parameters
    ----------
    params : ndarray
        The flat parameter vector, updated in place.
    grads : ndarray
        The gradient of the loss in params, of params' shape.
    state : list of ndarray
        The optimizer's buffers, each of params' shape, updated in place:
        [v], the velocity.
    step : int
        The number of updates so far, this one included (Adam's t).
    learning_rate : float
        The step size.
    momentum : float
        The momentum, in [0, 1].
    nesterov : bool
        Whether to use Nesterov's momentum.
    **_
        Other settings, ignored (every optimizer takes the same settings).
    """
    velocity = state[0]
    velocity *= momentum
    velocity -= learning_rate * grads
    if nesterov:
        params += momentum * velocity - learning_rate * grads
    else:
        params += velocity


def adam_update(params, grads, state, step, learning_rate, beta_1, beta_2, epsilon, **_):
    """Apply one Adam step: m, v = moving averages of g and g^2; p -= lr_t m / (sqrt(v) + eps).

    lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t) is the bias correction, t = step.

    Parameters
    ----------
    params : ndarray
        The flat parameter vector, updated in place.
    grads : ndarray
        The gradient of the loss in params, of params' shape.
    state : list of ndarray
        The optimizer's buffers, each of params' shape, updated in place:
        [m, v], the moment estimates.
    step : int
        The number of updates so far, this one included (Adam's t).
    learning_rate : float
        The step size.
    beta_1 : float
        Decay rate of m, in [0, 1).
    beta_2 : float
        Decay rate of v, in [0, 1).
    epsilon : float
        The term added to the denominator.
    **_
        Other settings, ignored (every optimizer takes the same settings).
    """
    m, v = state
    m *= beta_1
    m += (1 - beta_1) * grads
    v *= beta_2
    v += (1 - beta_2) * grads * grads
    step_size = learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
    params -= step_size * m / (np.sqrt(v) + epsilon)
