"""Name -> spec tables for activations, output/loss pairs, optimizers and inits.

The one list of valid names: validation messages, the estimators' parameter
constraints and the tests all read these tables. Each entry ties a name to its
C code (the enum in csrc/fastmlp.h, checked by tests/test_kernels.py) and to
its plain-NumPy definition in _math.py (what reference.py re-exports). No math here.
"""
import numbers
from typing import Callable, NamedTuple

import numpy as np

from . import _math


class Activation(NamedTuple):
    name: str
    code: int  # FM_* in csrc/fastmlp.h
    forward: Callable  # f(z)
    derivative: Callable  # f'(z), given (z, f(z)) (and the slopes, for a learnable slope)
    auto_init_factor: float  # Glorot factor of init="auto" (scikit-learn's)
    learnable_slope: bool = False  # one trained slope per unit (prelu): its own kernels and parameters
    rectifier: bool = False  # ReLU family: a unit whose z never exceeds 0 is dead (dead_units_)
    bounded: bool = False  # |f(z)| <= 1 everywhere; the others satisfy |f(z)| <= slope * |z|


class LossParam(NamedTuple):
    name: str  # the keyword of the reference loss
    argument: str  # MLPRegressor's parameter that holds it
    default: float
    low: float  # the valid open interval (low, high)
    high: float


class Output(NamedTuple):
    activation: str
    loss_name: str
    code: int  # the output activation's FM_* code (prediction)
    loss_code: int  # FM_SQUARED_ERROR, ...: the fused output + loss kernel (training)
    loss: Callable  # sum over rows of the loss, given (Y, Z, sample_weight=None, **{param.name: c})
    gradient: Callable = None  # its gradient in Z, given (Y, Z, **{param.name: c}); None: output_delta
    param: LossParam = None  # the loss's one parameter, if it has one
    positive_targets: bool = False  # the loss needs Y > 0 (gamma: log y)


class Optimizer(NamedTuple):
    name: str
    code: int  # FM_SGD / FM_ADAM
    n_state: int  # buffers of the flat parameter size it keeps
    update: Callable  # reference update, in place on the flat parameters


ACTIVATIONS = {
    "identity": Activation("identity", 0, _math.identity, _math.identity_derivative, 6.0),
    "logistic": Activation("logistic", 1, _math.logistic, _math.logistic_derivative, 2.0, bounded=True),
    "tanh": Activation("tanh", 2, _math.tanh, _math.tanh_derivative, 6.0, bounded=True),
    "relu": Activation("relu", 3, _math.relu, _math.relu_derivative, 6.0, rectifier=True),
    "leaky_relu": Activation("leaky_relu", 4, _math.leaky_relu, _math.leaky_relu_derivative, 6.0, rectifier=True),
    "swish": Activation("swish", 5, _math.swish, _math.swish_derivative, 6.0),
    "prelu": Activation("prelu", 8, _math.prelu, _math.prelu_derivative, 6.0, learnable_slope=True, rectifier=True),
}
ACTIVATION_ALIASES = {"sigmoid": "logistic", "silu": "swish"}

SOFTMAX_CODE = 6
OUTPUTS = {
    ("identity", "squared_error"): Output("identity", "squared_error", 0, 0, _math.squared_error),
    ("logistic", "log_loss"): Output("logistic", "log_loss", 1, 1, _math.binary_log_loss),
    ("softmax", "log_loss"): Output("softmax", "log_loss", SOFTMAX_CODE, 2, _math.softmax_log_loss),
    ("exp", "poisson"): Output("exp", "poisson", 7, 3, _math.poisson_loss),
    ("identity", "absolute_error"): Output("identity", "absolute_error", 0, 4, _math.absolute_error,
                                           _math.absolute_error_gradient),
    ("identity", "huber"): Output("identity", "huber", 0, 5, _math.huber_loss, _math.huber_gradient,
                                  LossParam("delta", "huber_delta", 1.0, 0.0, float("inf"))),
    ("identity", "quantile"): Output("identity", "quantile", 0, 6, _math.quantile_loss, _math.quantile_gradient,
                                     LossParam("quantile", "quantile", 0.5, 0.0, 1.0)),
    ("exp", "gamma"): Output("exp", "gamma", 7, 7, _math.gamma_loss, _math.gamma_gradient, positive_targets=True),
}
# The C name of each loss code (checked against the enum by tests/test_kernels.py).
LOSS_ENUMS = {
    ("identity", "squared_error"): "FM_SQUARED_ERROR", ("logistic", "log_loss"): "FM_LOGISTIC_LOG_LOSS",
    ("softmax", "log_loss"): "FM_SOFTMAX_LOG_LOSS", ("exp", "poisson"): "FM_POISSON",
    ("identity", "absolute_error"): "FM_ABSOLUTE_ERROR", ("identity", "huber"): "FM_HUBER",
    ("identity", "quantile"): "FM_QUANTILE", ("exp", "gamma"): "FM_GAMMA",
}
# MLPRegressor's losses: each fixes its output (the log-likelihood of labels is MLPClassifier's)
REGRESSION_OUTPUTS = {loss: spec for (_, loss), spec in OUTPUTS.items() if loss != "log_loss"}
OUTPUT_ACTIVATIONS = sorted({activation for activation, _ in OUTPUTS})
LOSSES = sorted({loss for _, loss in OUTPUTS})

OPTIMIZERS = {
    "sgd": Optimizer("sgd", 0, 1, _math.sgd_update),
    "adam": Optimizer("adam", 1, 2, _math.adam_update),
}

# The estimators' solvers: scipy's L-BFGS-B, and the engine's optimizers (the stochastic ones)
STOCHASTIC_SOLVERS = tuple(OPTIMIZERS)
SOLVERS = ("lbfgs", *STOCHASTIC_SOLVERS)

# The engine's floating types (one fused source, both compiled)
DTYPES = ("float32", "float64")

INITS = {
    "auto": _math.init_auto,
    "glorot_uniform": _math.glorot_uniform,
    "glorot_normal": _math.glorot_normal,
    "he_uniform": _math.he_uniform,
    "he_normal": _math.he_normal,
}


def _valid(names):
    return ", ".join(repr(n) for n in names)


def lookup(table, name, argument, aliases=None):
    """table[name] (after aliases), or a ValueError that lists the valid names."""
    aliases = aliases or {}
    if isinstance(name, str):
        key = aliases.get(name, name)
        if key in table:
            return table[key]
    valid = sorted(table) + sorted(aliases)
    raise ValueError(f"{argument}={name!r} is not supported; valid values are {_valid(valid)}.")


def activation(name, argument="activation"):
    return lookup(ACTIVATIONS, name, argument, ACTIVATION_ALIASES)


def output(activation_name, loss_name):
    """The registered output activation + loss pair, or a ValueError naming the valid pairs."""
    if activation_name not in OUTPUT_ACTIVATIONS:
        lookup({n: None for n in OUTPUT_ACTIVATIONS}, activation_name, "output_activation")
    if loss_name not in LOSSES:
        lookup({n: None for n in LOSSES}, loss_name, "loss")
    try:
        return OUTPUTS[(activation_name, loss_name)]
    except KeyError:
        pairs = ", ".join(f"{a}+{l}" for a, l in OUTPUTS)
        raise ValueError(
            f"output_activation={activation_name!r} with loss={loss_name!r} is not a supported pair; "
            f"the supported pairs are {pairs}."
        ) from None


def loss_param(spec, value, argument="loss_param", dtype=None):
    """The checked parameter of an Output's loss: its default for None, a float in (low, high), or
    None for a loss without one (which takes None only). dtype (the model's, when known): the value
    must also be at least its smallest normal number from each bound, which the engine would
    otherwise take as the bound itself (training flushes subnormal numbers to zero)."""
    if spec.param is None:
        if value is not None:
            raise ValueError(f"{argument}={value!r}: loss={spec.loss_name!r} takes no parameter; pass None.")
        return None
    if value is None:
        return spec.param.default
    low, high = spec.param.low, spec.param.high
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not low < value < high):  # (NaN fails the comparison)
        raise ValueError(f"{argument} must be a number in ({low}, {high}) for loss={spec.loss_name!r} "
                         f"(its {spec.param.name}), got {value!r}.")
    try:
        value = float(value)
    except OverflowError:  # (an int past float64: it passed the comparison with an infinite bound)
        raise ValueError(f"{argument} must be a number in ({low}, {high}) for loss={spec.loss_name!r} "
                         f"(its {spec.param.name}), got an integer too large for a float.") from None
    if dtype is not None:
        tiny = float(np.finfo(dtype).tiny)
        if min(value - low, high - value) < tiny:
            raise ValueError(f"{argument}={value!r} is nearer {low if value - low < tiny else high} than the "
                             f"smallest normal {np.dtype(dtype).name} number ({tiny:.4g}), which a "
                             f"{np.dtype(dtype).name} model cannot tell from it: training flushes subnormal "
                             "numbers to zero.")
    return value
