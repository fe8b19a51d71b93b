"""The same math as the compiled engine, in plain NumPy (and scipy.special).

Read this side by side with ``fastmlp.Network``: ``reference.Network`` has the
same interface and computes the same numbers, one layer and one batch at a
time in Python. It is the test oracle and the "NumPy baseline" of the
benchmarks. Nothing here is clever on purpose.

Conventions (DESIGN.md): a batch ``X`` is ``(n_samples, n_features)``;
``W`` is ``(fan_in, fan_out)``; layer l computes ``Z = A_prev @ W + b`` and
``A = f(Z)``; ``delta = dL/dZ``.

Examples
--------
One layer's forward and backward step, by hand:

>>> import numpy as np
>>> from fastmlp import reference
>>> z = np.array([[-1.0, 0.0, 2.0]])
>>> reference.relu(z)
array([[0., 0., 2.]])
>>> reference.relu_derivative(z, reference.relu(z))
array([[0., 0., 1.]])
>>> Y, Z = np.array([[1.0]]), np.array([[0.0]])
>>> round(float(reference.binary_log_loss(Y, Z)), 6)  # -log(sigmoid(0)) = log 2
0.693147
>>> reference.output_delta("logistic", Y, reference.output_forward("logistic", Z))
array([[-0.5]])
"""
import numpy as np
from scipy.special import expit, log_softmax, softmax, xlogy

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


def _row_sum(terms, sample_weight):
    """sum_i w_i sum_k terms_ik, with w_i = 1 without weights."""
    rows = terms.sum(axis=1)
    return np.sum(rows if sample_weight is None else sample_weight * rows)


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
    return _row_sum(-Y * log_softmax(Z, axis=1), sample_weight)


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
    """Absolute error: the sum over rows and outputs of |y - z| (identity output).

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
    """Huber loss: sum over rows and outputs of 0.5 r^2 where |r| <= delta, else delta (|r| - delta / 2), r = z - y.

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


# The Network class sits on the shared base (validation, parameters, the epoch
# loop), which reads the registry, which points at the functions above: so it
# is imported here, after them.
from . import _registry  # noqa: E402
from ._base import BaseNetwork  # noqa: E402


class Network(BaseNetwork):
    """The same network as ``fastmlp.Network``, computed in plain NumPy.

    Same constructor, attributes and methods (see ``fastmlp.Network``). Given
    the same ``coefs_`` and ``intercepts_`` it returns the same outputs, losses
    and gradients; one epoch with the same shuffling gives the same weights.

    Parameters
    ----------
    layer_sizes : sequence of int
        The number of units of each layer, ``[n_inputs, hidden..., n_outputs]``.
    activation : str, default="relu"
        Hidden activation, as in ``fastmlp.Network``.
    output_activation : {"identity", "logistic", "softmax", "exp"}, default="identity"
        Activation of the output layer, paired with ``loss``.
    loss : {"squared_error", "log_loss", "poisson", "absolute_error", "huber", \
            "quantile", "gamma"}, default="squared_error"
        The loss, as in ``fastmlp.Network``.
    init : str, default="auto"
        The initialisation scheme, as in ``fastmlp.Network``.
    dtype : {"float32", "float64"}, default="float64"
        Kept through everything: weights, gradients, outputs.
    dropout : float or list of float, default=0.0
        Inverted-dropout rate of every hidden layer, or one per hidden layer.
    random_state : None, int, numpy.random.Generator or RandomState, default=None
        Source of the initial weights, the shuffling and the dropout masks;
        the same seed gives the same initial weights as ``fastmlp.Network``.
    loss_param : float, default=None
        The loss's parameter (huber's delta, quantile's q), as in ``fastmlp.Network``.

    See Also
    --------
    fastmlp.Network : The same model, computed in compiled code.

    Examples
    --------
    >>> import numpy as np
    >>> import fastmlp
    >>> from fastmlp import reference
    >>> slow = reference.Network([3, 4, 2], activation="tanh", random_state=0)
    >>> fast = fastmlp.Network([3, 4, 2], activation="tanh", random_state=0)
    >>> X = np.random.default_rng(1).standard_normal((5, 3))
    >>> bool(np.allclose(slow.forward(X), fast.forward(X)))
    True
    """

    def _forward_pass(self, X, keep=None, rng=None):
        """Every layer's values: lists Z[l], F[l] = f(Z[l]), A[l] (what layer l + 1 reads), M[l].

        A[0] = X. With keep (a keep probability per hidden layer) and rng,
        hidden layers use inverted dropout: A_l = F_l * M_l, M_l in {0, 1/keep};
        otherwise A_l = F_l and M_l is None.
        """
        Z, F, A, M = [None], [None], [X], [None]
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_), start=1):
            z = np.asarray(A[-1] @ W) + b  # Z_l = A_{l-1} W_l + b_l (A_0 may be sparse)
            Z.append(z)
            if l == self.n_layers_:
                break  # the output activation is applied with the loss
            f = self._activate(l, z)  # F_l = f(Z_l)
            m = None
            if keep is not None and keep[l - 1] < 1:
                m = ((rng.random(f.shape) < keep[l - 1]) / keep[l - 1]).astype(f.dtype)
            F.append(f)
            M.append(m)
            A.append(f if m is None else f * m)
        return Z, F, A, M

    def _gradients(self, X, Y, scale, sample_weight=None, keep=None, rng=None, unit_max=None):
        """Sum over rows of (weight times) the loss, and scale times its gradient (flat).

        unit_max, when given, gets each hidden unit's largest z (the dead-unit report).
        """
        Z, F, A, M = self._forward_pass(X, keep, rng)
        if unit_max is not None:
            np.maximum(unit_max, np.concatenate([z.max(axis=0) for z in Z[1:-1]] or [unit_max[:0]]), out=unit_max)
        L = self.n_layers_
        slope_of = self._slope_views()
        out, kwargs = self._output, self._loss_kwargs()
        if out.gradient is None:
            delta = scale * output_delta(out.activation, Y, output_forward(out.activation, Z[L]))  # delta_L
        else:
            delta = scale * out.gradient(Y, Z[L], **kwargs)
        loss = out.loss(Y, Z[L], sample_weight, **kwargs)
        if sample_weight is not None:
            delta *= sample_weight[:, None]
        grads = np.empty_like(self._params)
        dW, db = self._split(grads)
        dslope = dict(zip(slope_of, self._split_slopes(grads)))
        for l in range(L, 0, -1):
            dW[l - 1][...] = A[l - 1].T @ delta  # dW_l = A_{l-1}^T delta_l
            db[l - 1][...] = delta.sum(axis=0)  # db_l = sum over rows of delta_l
            if l > 1:
                # delta_{l-1} = (delta_l W_l^T) * M_{l-1} * f'(Z_{l-1})
                back = delta @ self.coefs_[l - 1].T
                if M[l - 1] is not None:
                    back = back * M[l - 1]
                if l - 1 in slope_of:  # prelu: the slopes' gradient, then through f'
                    dslope[l - 1][...] = prelu_slope_gradient(Z[l - 1], back)
                    delta = back * prelu_derivative(Z[l - 1], F[l - 1], slope_of[l - 1])
                else:
                    delta = back * self._hidden[l - 2].derivative(Z[l - 1], F[l - 1])
        return loss, grads

    def _slope_views(self):
        """{hidden layer l: its PReLU slopes} for the layers that have them."""
        layers = [l for l in range(1, self.n_layers_) if self._hidden[l - 1].learnable_slope]
        return dict(zip(layers, self.prelu_slopes_))

    def _activate(self, l, z):
        """F_l = f(Z_l) for hidden layer l."""
        if self._hidden[l - 1].learnable_slope:
            return prelu(z, self._slope_views()[l])
        return self._hidden[l - 1].forward(z)

    def _l2(self, grads, alpha, n):
        """Adds alpha/n W to dW and returns alpha/(2n) sum ||W||^2."""
        dW, _ = self._split(grads)
        for W, g in zip(self.coefs_, dW):
            g += (alpha / n) * W
        return 0.5 * alpha * sum(float(np.sum(W * W)) for W in self.coefs_) / n

    def _forward(self, X, training, seed, n_threads=None):
        rng = np.random.default_rng(seed)
        Z, _, _, _ = self._forward_pass(X, self._keep if training else None, rng)
        return output_forward(self._output.activation, Z[-1])

    def _loss_and_gradients(self, X, Y, alpha, sample_weight):
        n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight, dtype=np.float64))
        loss, grads = self._gradients(X, Y, 1.0 / n, sample_weight)
        loss = float(loss) / n
        if alpha > 0:
            loss += self._l2(grads, alpha, n)
        return loss, grads

    def _train_epoch(self, trainer, X, Y, sample_weight, order, batch_size, n_threads=None):
        s = trainer.settings
        n, B = X.shape[0], batch_size
        rng = np.random.default_rng(s["seed"])
        keep = self._keep if s["dropout"] else None
        update = _registry.OPTIMIZERS[s["optimizer"]].update
        rates = getattr(trainer, "rates", None)  # a schedule's rate per batch, or None: s["learning_rate"]
        loss_sum, n_batches = 0.0, 0
        for k, start in enumerate(range(0, n, B)):
            rows = order[start:start + B] if order is not None else slice(start, start + B)
            Xb, Yb = X[rows], Y[rows]
            swb = None if sample_weight is None else sample_weight[rows]
            b = Xb.shape[0] if swb is None else float(np.sum(swb, dtype=np.float64))
            if b <= 0:
                continue  # a batch of zero weight is skipped
            loss, grads = self._gradients(Xb, Yb, 1.0 / b, swb, keep, rng, trainer.unit_max)
            loss = float(loss) / b
            if s["alpha"] > 0:
                loss += self._l2(grads, s["alpha"], b)
            if not np.isfinite(loss):
                return loss_sum, n_batches, False
            dW, _ = self._split(grads)
            trainer.grad_norm_sums += [np.sqrt(np.sum(g * g)) for g in dW]
            total = np.sqrt(np.sum(grads.astype(np.float64) ** 2))
            if s["clip_norm"] is not None and total > s["clip_norm"]:
                grads *= grads.dtype.type(s["clip_norm"] / total)
            if s["optimizer"] == "adam":
                s["step"] += 1
            update(self._params, grads, trainer.state, **(s if rates is None else dict(s, learning_rate=rates[k])))
            loss_sum += loss * b
            n_batches += 1
        return loss_sum, n_batches, True
