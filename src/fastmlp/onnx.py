"""Export fastmlp models to ONNX, and a converter for skl2onnx.

``to_onnx(model)`` turns a fitted ``Network`` (or ``reference.Network``),
``MLPClassifier`` or ``MLPRegressor`` into an ``onnx.ModelProto``: per layer a
MatMul and an Add, then the activation, all in the model's dtype, with a
dynamic batch dimension. An ``MLPEnsembleClassifier`` or
``MLPEnsembleRegressor`` is every member's network side by side and the Mean
of their outputs (the averaged model: predict_proba, predict's mean).
Importing this module also registers a converter with skl2onnx (when it is
installed) for the four estimators, so that ``skl2onnx.to_onnx`` converts
pipelines that end in a fastmlp estimator or ensemble.

Both paths build the graph with the same functions (``_emit_*``), which write
through a small interface: ``g.constant(hint, array)`` adds an initializer and
``g.node(op_type, inputs, hint, output=None, **attributes)`` adds a node; each
returns the name of the value it made. ``_ModelGraph`` collects them into a
ModelProto; ``_Skl2onnxGraph`` hands them to skl2onnx's scope and container.

Outputs follow skl2onnx's convention, so serving code written for scikit-learn
models keeps working: a classifier gives "label" (int64 or string class
labels, shape (N,); an (N, n_labels) int64 indicator for multilabel) and
"probabilities" (N, n_classes), as predict and predict_proba; a regressor
gives "variable" (N, n_outputs); a Network gives "output" (N, n_outputs).
"""
import numbers

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError

from ._base import BaseNetwork
from .ensemble_estimators import MLPEnsembleClassifier, MLPEnsembleRegressor
from .estimators import MLPClassifier, MLPRegressor
from .reference import LEAKY_RELU_SLOPE

__all__ = ["to_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17  # run by onnxruntime >= 1.13 (the [onnx] extra asks for >= 1.17)
MIN_OPSET = 13  # Softmax normalizing one axis (axis=-1) is opset 13's; no op used is newer

_ELEMENT_TYPE = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
_BATCH = "N"  # the dynamic batch dimension


# --------------------------------------------------------------------------
# Where the builder writes: a standalone model, or skl2onnx's container.


class _ModelGraph:
    """Collects nodes and initializers for a standalone ModelProto."""

    def __init__(self):
        self.nodes, self.initializers, self._names = [], [], set()

    def _unique(self, hint):
        name, i = hint, 1
        while name in self._names:
            name, i = f"{hint}_{i}", i + 1
        self._names.add(name)
        return name

    def constant(self, hint, value):
        name = self._unique(hint)
        self.initializers.append(_tensor(name, value))
        return name

    def node(self, op_type, inputs, hint, output=None, **attributes):
        if output in self._names:
            raise AssertionError(f"graph output name {output!r} is already taken")
        output = self._unique(hint if output is None else output)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=self._unique(f"{op_type}_{hint}"),
                                           **attributes))
        return output


class _Skl2onnxGraph:
    """Writes into a skl2onnx conversion (its scope names, its container holds)."""

    def __init__(self, scope, container):
        self._scope, self._container = scope, container

    def constant(self, hint, value):
        name = self._scope.get_unique_variable_name(hint)
        value = np.asarray(value)
        if _is_text(value):
            self._container.add_initializer(name, TensorProto.STRING, list(value.shape),
                                            [s.encode("utf-8") for s in value.ravel()])
        else:  # raw bytes: float64 weights stay exact
            self._container.add_initializer(name, None, None, numpy_helper.from_array(value))
        return name

    def node(self, op_type, inputs, hint, output=None, **attributes):
        output = self._scope.get_unique_variable_name(hint) if output is None else output
        self._container.add_node(op_type, list(inputs), [output],
                                 name=self._scope.get_unique_operator_name(op_type), **attributes)
        return output


def _is_text(value):
    return value.dtype.kind in "US" or (value.dtype.kind == "O" and all(isinstance(v, str) for v in value.ravel()))


def _tensor(name, value):
    value = np.asarray(value)
    if _is_text(value):
        return helper.make_tensor(name, TensorProto.STRING, value.shape, [s.encode("utf-8") for s in value.ravel()])
    return numpy_helper.from_array(np.ascontiguousarray(value), name)


# --------------------------------------------------------------------------
# The graph, written once for both paths.


def _rectifier(g, Z, slope, l):
    """f(z) = z for z > 0, else slope * z, with the slope a tensor of the model's dtype.

    Not ONNX's LeakyRelu, whose alpha is a float32 attribute (0.01 is then
    not the float64 model's slope): Where(z > 0, z, z * slope) is the
    reference's formula, the same bits in both dtypes (PRelu agrees up to the
    sign of zero), for leaky_relu's constant and prelu's trained slopes alike.
    """
    dtype = np.asarray(slope).dtype
    positive = g.node("Greater", [Z, g.constant(f"zero{l}", np.zeros((), dtype))], f"positive{l}")
    scaled = g.node("Mul", [Z, g.constant(f"slope{l}", slope)], f"scaled{l}")
    return g.node("Where", [positive, Z, scaled], f"A{l}")


def _swish(g, Z, l):
    return g.node("Mul", [Z, g.node("Sigmoid", [Z], f"sigmoid{l}")], f"A{l}")


# Hidden activations by their _registry.ACTIVATIONS name: (g, Z, net, l) -> A
_HIDDEN = {
    "identity": lambda g, Z, net, l: Z,
    "logistic": lambda g, Z, net, l: g.node("Sigmoid", [Z], f"A{l}"),
    "tanh": lambda g, Z, net, l: g.node("Tanh", [Z], f"A{l}"),
    "relu": lambda g, Z, net, l: g.node("Relu", [Z], f"A{l}"),
    "leaky_relu": lambda g, Z, net, l: _rectifier(g, Z, net.dtype.type(LEAKY_RELU_SLOPE), l),
    "prelu": lambda g, Z, net, l: _rectifier(g, Z, np.asarray(net.prelu_slopes_[l - 1]), l),
    "swish": lambda g, Z, net, l: _swish(g, Z, l),
}


def _logistic_output(g, Z, dtype):
    """p = 1 / (1 + exp(-z)) as the engine's fm_sigmoid: (1 if z >= 0 else e) / (1 + e), e = exp(-|z|).

    Not ONNX Runtime's Sigmoid for the output, whose error is absolute
    (~1e-7 in float32, and 0 returned for 4e-18 at z = -40 in float64): the
    small probabilities a classifier reports would lose their relative
    accuracy. In hidden layers that absolute error is harmless, and Sigmoid stays.
    """
    one = g.constant("one", np.ones((), dtype))
    e = g.node("Exp", [g.node("Neg", [g.node("Abs", [Z], "abs_Z")], "minus_abs_Z")], "exp_minus_abs_Z")
    above = g.node("GreaterOrEqual", [Z, g.constant("zero", np.zeros((), dtype))], "Z_nonnegative")
    numerator = g.node("Where", [above, one, e], "numerator")
    return g.node("Div", [numerator, g.node("Add", [one, e], "denominator")], "P")


# Output activations by their _registry.OUTPUT_ACTIVATIONS name: (g, Z, dtype) -> P
_OUTPUT = {
    "identity": lambda g, Z, dtype: Z,
    "logistic": _logistic_output,
    "softmax": lambda g, Z, dtype: g.node("Softmax", [Z], "P", axis=-1),
    "exp": lambda g, Z, dtype: g.node("Exp", [Z], "P"),
}


def _emit_network(g, net, X):
    """The forward pass of net on X (a value of net's dtype); returns the output P's name.

    Layer l: Z_l = A_{l-1} W_l + b_l, A_l = f(Z_l); P = g(Z_L).
    """
    if net.activation not in _HIDDEN or net.output_activation not in _OUTPUT:
        raise NotImplementedError(f"no ONNX form for activation={net.activation!r} / "
                                  f"output_activation={net.output_activation!r}")
    A = X
    for l, (W, b) in enumerate(zip(net.coefs_, net.intercepts_), start=1):
        XW = g.node("MatMul", [A, g.constant(f"coefs{l}", np.asarray(W))], f"XW{l}")
        Z = g.node("Add", [XW, g.constant(f"intercepts{l}", np.asarray(b))], f"Z{l}")
        if l < net.n_layers_:
            A = _HIDDEN[net.activation](g, Z, net, l)
        else:
            A = _OUTPUT[net.output_activation](g, Z, net.dtype)
    return A


def _emit_mean(g, nets, X):
    """(the mean of the networks' outputs on X, each network's output): an ensemble's; one network's output
    as it is."""
    outputs = [_emit_network(g, net, X) for net in nets]
    return _mean_of(g, outputs, nets[0].dtype, "P"), outputs


def _mean_of(g, values, dtype, hint):
    """The mean of values (one value as it is)."""
    if len(values) == 1:
        return values[0]
    # Sum, then / K, as NumPy's mean (and not ONNX's Mean, which ONNX Runtime lacks in double)
    K = g.constant("n_members", np.asarray(len(values), dtype=dtype))
    return g.node("Div", [g.node("Sum", values, f"{hint}_sum"), K], f"{hint}_mean")


def _class_labels(classes):
    """classes_ as skl2onnx exports them: strings stay strings, numbers become int64."""
    classes = np.asarray(classes)
    if _is_text(classes):
        return classes.astype(object)
    try:
        labels = classes.astype(np.int64)
    except (TypeError, ValueError):
        labels = None
    if labels is not None and np.array_equal(labels, classes):
        return labels
    raise ValueError(f"ONNX export needs class labels that are strings or integers (as skl2onnx), "
                     f"got classes_ {classes!r}.")


def _emit_classifier(g, est, P, nocl=False, members=None):
    """(labels, probabilities) from the network output P, as predict and predict_proba.

    binary: label = classes_[p > 0.5], probabilities [1 - p, p]; multiclass:
    label = classes_[argmax P]; multilabel: label = (P > 0.5) as int64. With
    nocl the label is the class index instead of classes_[index]. members: an
    ensemble's outputs, whose mean P is: a binary ensemble's 1 - p is then the
    mean of the members' 1 - p_k, as its predict_proba averages them.
    """
    net = est._network

    def above_half(output):  # (P > 0.5) as int64; the constant only where used (multiclass has none)
        half = g.constant("half", np.asarray(0.5, dtype=net.dtype))
        return g.node("Cast", [g.node("Greater", [P, half], "above_half")], output, to=TensorProto.INT64)

    y_type = est._label_binarizer.y_type_
    if y_type == "multilabel-indicator":
        return above_half("labels"), P
    if y_type == "multiclass":
        index = g.node("ArgMax", [P], "class_index", axis=1, keepdims=0)
        probabilities = P
    elif y_type == "binary" and len(est.classes_) == 2:
        positive = above_half("positive")
        index = g.node("Reshape", [positive, g.constant("flat", np.array([-1], dtype=np.int64))], "class_index")
        one = g.constant("one", np.asarray(1, dtype=net.dtype))
        negative = _mean_of(g, [g.node("Sub", [one, p], "negative_proba") for p in (members or [P])], net.dtype,
                            "negative")
        probabilities = g.node("Concat", [negative, P], "proba", axis=1)
    else:
        raise ValueError(f"ONNX export needs at least two classes; this {type(est).__name__} was fitted on "
                         f"{len(est.classes_)} ({est.classes_!r}).")
    if nocl:
        return index, probabilities
    labels = g.node("Gather", [g.constant("classes", _class_labels(est.classes_)), index], "labels", axis=0)
    return labels, probabilities


def _bind(g, value, output, to=None):
    """Name value `output` (cast to the element type `to` when given)."""
    if to is None:
        return g.node("Identity", [value], output, output=output)
    return g.node("Cast", [value], output, output=output, to=to)


# --------------------------------------------------------------------------
# Standalone export.


def _fitted_networks(model):
    """(the networks under model, the estimator holding the label encoding): an ensemble's members'."""
    if isinstance(model, (MLPEnsembleClassifier, MLPEnsembleRegressor)):
        if not model.__sklearn_is_fitted__():
            raise NotFittedError(f"This {type(model).__name__} instance is not fitted yet: call 'fit' before "
                                 "exporting it to ONNX.")
        return [m._network for m in model.estimators_], model.estimators_[0]
    return [_fitted_network(model)], model


def _fitted_network(model):
    """The Network under model (model itself for a Network); raises for an unfitted estimator."""
    if isinstance(model, BaseNetwork):
        return model
    if isinstance(model, (MLPClassifier, MLPRegressor)):
        if not hasattr(model, "_network"):
            raise NotFittedError(f"This {type(model).__name__} instance is not fitted yet: call 'fit' before "
                                 "exporting it to ONNX.")
        return model._network
    raise TypeError(f"to_onnx exports fastmlp.Network, fastmlp.reference.Network, fastmlp.MLPClassifier, "
                    f"fastmlp.MLPRegressor and their ensembles, got {type(model).__name__}.")


def _check_opset(opset):
    newest = onnx.defs.onnx_opset_version()
    if (not isinstance(opset, numbers.Integral) or isinstance(opset, bool)
            or not MIN_OPSET <= opset <= newest):
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (this onnx package's newest), "
                         f"got {opset!r}.")
    return int(opset)


def _value_info(name, element_type, *dims):
    return helper.make_tensor_value_info(name, element_type, [_BATCH, *dims])


def to_onnx(model, *, opset=None, name=None):
    """Convert a fitted model to an ONNX graph, in the model's dtype, for any batch size.

    Parameters
    ----------
    model : fastmlp.Network, fastmlp.reference.Network, MLPClassifier, MLPRegressor, MLPEnsembleClassifier \
or MLPEnsembleRegressor
        The model to export (an estimator must be fitted). An ensemble is
        exported as the mean of its members' outputs, with its classifier's
        or regressor's outputs.
    opset : int, default=None
        ONNX opset of the default domain, from MIN_OPSET (13) to the installed
        onnx package's newest; None means DEFAULT_OPSET (17).
    name : str, default=None
        The graph's name; None gives "fastmlp_<class name>".

    Returns
    -------
    onnx.ModelProto
        One input "X" of shape (N, n_features), float32 or double as the model.
        Outputs: Network "output" (N, n_outputs); MLPRegressor "variable"
        (N, n_outputs); MLPClassifier "label" (N,) int64 or string (an
        (N, n_classes) int64 indicator for multilabel) and "probabilities"
        (N, n_classes), in the model's dtype, as predict and predict_proba.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        For an estimator that is not fitted.
    TypeError
        For any other kind of model.
    ValueError
        For a bad opset, or class labels that are neither strings nor integers.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from sklearn.datasets import load_iris
    >>> from fastmlp import MLPClassifier
    >>> from fastmlp.onnx import to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> X = X.astype(np.float32)
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200,
    ...                     random_state=0).fit(X, y)
    >>> model = to_onnx(clf)
    >>> [o.name for o in model.graph.output]
    ['label', 'probabilities']
    >>> session = onnxruntime.InferenceSession(model.SerializeToString(),
    ...                                        providers=["CPUExecutionProvider"])
    >>> labels, probabilities = session.run(None, {"X": X[:5]})
    >>> bool((labels == clf.predict(X[:5])).all())
    True
    >>> bool(np.allclose(probabilities, clf.predict_proba(X[:5]), atol=1e-5))
    True
    """
    opset = _check_opset(DEFAULT_OPSET if opset is None else opset)
    if name is not None and not (isinstance(name, str) and name):
        raise (ValueError if isinstance(name, str) else TypeError)(
            f"name must be a non-empty str (the graph's name) or None, got {name!r}.")
    nets, labelled = _fitted_networks(model)
    net = nets[0]
    element = _ELEMENT_TYPE[net.dtype]
    n_out = net.layer_sizes[-1]
    g = _ModelGraph()
    P, members = _emit_mean(g, nets, g._unique("X"))
    if isinstance(model, BaseNetwork):
        outputs = [_value_info(_bind(g, P, "output"), element, n_out)]
    elif is_classifier(model):
        labels, probabilities = _emit_classifier(g, labelled, P, members=members)
        multilabel = labelled._label_binarizer.y_type_ == "multilabel-indicator"
        text = _is_text(np.asarray(model.classes_)) and not multilabel
        label_type = TensorProto.STRING if text else TensorProto.INT64
        outputs = [_value_info(_bind(g, labels, "label"), label_type, *([n_out] if multilabel else [])),
                   _value_info(_bind(g, probabilities, "probabilities"), element, max(n_out, 2))]
    else:
        outputs = [_value_info(_bind(g, P, "variable"), element, n_out)]
    graph = helper.make_graph(g.nodes, f"fastmlp_{type(model).__name__}" if name is None else name,
                              [_value_info("X", element, net.layer_sizes[0])], outputs, g.initializers)
    opset_imports = [helper.make_opsetid("", opset)]
    from . import __version__
    onnx_model = helper.make_model(graph, opset_imports=opset_imports, producer_name="fastmlp",
                                   producer_version=__version__,
                                   ir_version=helper.find_min_ir_version_for(opset_imports))
    onnx.checker.check_model(onnx_model)
    return onnx_model


# --------------------------------------------------------------------------
# skl2onnx: converter and shape calculators for the estimators.


def _convert(scope, operator, container):
    """skl2onnx converter for MLPClassifier and MLPRegressor and their ensembles (options: zipmap, nocl for the
    classifiers)."""
    from skl2onnx.common.data_types import guess_proto_type

    est = operator.raw_operator
    nets, labelled = _fitted_networks(est)
    net = nets[0]
    if container.target_opset is not None and container.target_opset < MIN_OPSET:
        raise RuntimeError(f"fastmlp's ONNX converter needs target_opset >= {MIN_OPSET}, "
                           f"got {container.target_opset}.")
    element = _ELEMENT_TYPE[net.dtype]
    g = _Skl2onnxGraph(scope, container)
    X = operator.inputs[0].full_name
    if guess_proto_type(operator.inputs[0].type) != element:  # e.g. float32 features into a float64 model
        X = g.node("Cast", [X], "X_cast", to=element)
    P, members = _emit_mean(g, nets, X)

    def cast_to_declared(value, variable):  # outputs keep the type skl2onnx declared (the input's)
        declared = guess_proto_type(variable.type)
        return _bind(g, value, variable.full_name, None if declared == element else declared)

    if is_classifier(est):
        nocl = scope.get_options(est, dict(nocl=False))["nocl"]
        labels, probabilities = _emit_classifier(g, labelled, P, nocl=nocl, members=members)
        _bind(g, labels, operator.outputs[0].full_name)
        cast_to_declared(probabilities, operator.outputs[1])
    else:
        cast_to_declared(P, operator.outputs[0])


def _classifier_shapes(operator):
    from skl2onnx.common.data_types import Int64TensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    est = _fitted_networks(operator.raw_operator)[1]  # (an ensemble's labels: its first member's)
    calculate_linear_classifier_output_shapes(operator)
    if est._label_binarizer.y_type_ == "multilabel-indicator":  # an indicator per label, not one label
        operator.outputs[0].type = Int64TensorType([operator.inputs[0].get_first_dimension(), est.n_outputs_])


def _regressor_shapes(operator):
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes

    est = _fitted_networks(operator.raw_operator)[1]
    calculate_linear_regressor_output_shapes(operator)  # (N, 1): it looks for coef_, which we do not have
    operator.outputs[0].type.shape = [operator.inputs[0].get_first_dimension(), est.n_outputs_]


def _register_skl2onnx():
    try:
        from skl2onnx import update_registered_converter
    except ImportError:  # skl2onnx is optional: to_onnx works without it
        return
    # a "zipmap" option makes skl2onnx use its standard classifier parser (label + probabilities, then ZipMap)
    update_registered_converter(MLPClassifier, "FastmlpMLPClassifier", _classifier_shapes, _convert,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                                         "output_class_labels": [False, True]})
    update_registered_converter(MLPRegressor, "FastmlpMLPRegressor", _regressor_shapes, _convert)
    update_registered_converter(MLPEnsembleClassifier, "FastmlpMLPEnsembleClassifier", _classifier_shapes, _convert,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                                         "output_class_labels": [False, True]})
    update_registered_converter(MLPEnsembleRegressor, "FastmlpMLPEnsembleRegressor", _regressor_shapes, _convert)


_register_skl2onnx()
