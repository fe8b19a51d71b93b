"""ONNX export (fastmlp.onnx): ONNX Runtime's outputs against fastmlp's own.

Every model is run by onnxruntime on one session with a batch of 1 row and
one of 100 (the batch dimension is dynamic) and compared with fastmlp's
forward/predict/predict_proba: class labels exactly, numbers to RTOL of the
model's dtype, element by element. An identity output (regression) is a sum
that may cancel near zero, where only an absolute accuracy is possible for
any change of summation order, so there the tolerance is RTOL times the
output's largest magnitude.
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import fastmlp
from fastmlp import MLPClassifier, MLPEnsembleClassifier, MLPEnsembleRegressor, MLPRegressor, Network, _registry, reference

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import fastmlp.onnx  # noqa: E402  (registers the skl2onnx converter)

from _helpers import make_targets  # noqa: E402

DTYPES = ["float32", "float64"]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
N_FEATURES = 5
BATCHES = (1, 100)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def unused_initializers(model):
    """Initializers no node reads (onnxruntime warns "Removing initializer" for each, every session)."""
    read = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    return [t.name for t in model.graph.initializer if t.name not in read]


def session(model):
    """An onnxruntime session on one thread; the model must pass the full checker first."""
    onnx.checker.check_model(model, full_check=True)
    assert unused_initializers(model) == []
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def assert_close(got, expected, dtype, cancels=False):
    assert got.dtype == dtype and got.shape == expected.shape
    rtol = RTOL[np.dtype(dtype)]
    atol = rtol * float(np.abs(expected).max()) if cancels else 0.0
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def features(dtype, n=100, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, N_FEATURES)) * 2).astype(dtype)


# ------------------------------------------------------------------ Network


def network(cls, activation, output, dtype):
    loss = {"identity": "squared_error", "exp": "poisson"}.get(output, "log_loss")
    net = cls([N_FEATURES, 7, 6, 3], activation=activation, output_activation=output, loss=loss, dtype=dtype,
              random_state=1)
    if net.prelu_slopes_:  # trained slopes may be anything: above 1, negative
        rng = np.random.default_rng(2)
        net.prelu_slopes_ = [rng.uniform(-1.5, 1.5, s.shape) for s in net.prelu_slopes_]
    return net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", _registry.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("activation", sorted(_registry.ACTIVATIONS))
def test_network_matches_onnxruntime(activation, output, dtype):
    net = network(Network, activation, output, dtype)
    sess = session(fastmlp.onnx.to_onnx(net))
    assert [i.name for i in sess.get_inputs()] == ["X"] and [o.name for o in sess.get_outputs()] == ["output"]
    X = features(dtype)
    for n in BATCHES:
        (got,) = sess.run(None, {"X": X[:n]})
        assert_close(got, net.predict(X[:n]), net.dtype, cancels=output == "identity")


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_output_keeps_small_probabilities(dtype):
    # ONNX Runtime's Sigmoid has an absolute error (float64: 0 for 4e-18 at z = -40);
    # the exported output is the engine's formula, accurate relative to p itself
    net = Network([1, 1], output_activation="logistic", loss="log_loss", dtype=dtype)
    net.coefs_, net.intercepts_ = [np.ones((1, 1))], [np.zeros(1)]
    z = np.linspace(-40, 40, 801, dtype=dtype).reshape(-1, 1)
    (got,) = session(net.to_onnx()).run(None, {"X": z})
    assert_close(got, net.predict(z), net.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_network_exports_the_same_graph(dtype):
    net = network(Network, "prelu", "softmax", dtype)
    ref = network(reference.Network, "prelu", "softmax", dtype)
    ref.coefs_, ref.intercepts_, ref.prelu_slopes_ = net.coefs_, net.intercepts_, net.prelu_slopes_
    assert ref.to_onnx().SerializeToString() == net.to_onnx().SerializeToString()


def test_graph_is_in_the_models_dtype_with_a_dynamic_batch():
    for dtype, elem in (("float32", onnx.TensorProto.FLOAT), ("float64", onnx.TensorProto.DOUBLE)):
        model = network(Network, "leaky_relu", "logistic", dtype).to_onnx()
        assert {t.data_type for t in model.graph.initializer if t.name.startswith(("coefs", "slope"))} == {elem}
        (x,), (y,) = model.graph.input, model.graph.output
        assert x.type.tensor_type.elem_type == y.type.tensor_type.elem_type == elem
        assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["N", N_FEATURES]
        assert "LeakyRelu" not in {node.op_type for node in model.graph.node}  # its alpha is float32


def test_opset_and_name():
    net = network(Network, "swish", "softmax", "float64")
    model = fastmlp.onnx.to_onnx(net, opset=fastmlp.onnx.MIN_OPSET, name="digits")
    assert model.graph.name == "digits" and model.opset_import[0].version == fastmlp.onnx.MIN_OPSET
    X = features("float64")
    np.testing.assert_allclose(session(model).run(None, {"X": X})[0], net.predict(X), rtol=1e-10)
    assert fastmlp.onnx.to_onnx(net).opset_import[0].version == fastmlp.onnx.DEFAULT_OPSET
    for bad in (12, 10_000, 17.0, "17"):
        with pytest.raises(ValueError, match="opset"):
            fastmlp.onnx.to_onnx(net, opset=bad)


# --------------------------------------------------------------- estimators


def classification_targets(kind, n=100):
    rng = np.random.default_rng(3)
    k = rng.integers(0, 3, n)
    return {
        "binary": (k == 1).astype(np.int64) * 5 - 2,  # labels -2 and 3
        "binary_str": np.array(["no", "yes"])[k % 2],
        "multiclass": k + 10,
        "multiclass_str": np.array(["cat", "dog", "émeu"])[k],
        "multiclass_float": k.astype(np.float64),  # exported as int64, as skl2onnx does
        "binary_bool": k == 1,  # exported as int64 0/1, as skl2onnx does
        "multilabel": np.stack([k == 0, k == 1, rng.random(n) < 0.5], axis=1).astype(np.int64),
    }[kind]


def fitted_classifier(y, dtype, activation="relu", seed=0):
    """A few epochs on random features: the outputs are compared, not the accuracy."""
    X = features(dtype, len(y), seed)
    return MLPClassifier((7, 6), activation=activation, max_iter=5, dtype=dtype, random_state=0).fit(X, y), X


def model_dtype(est):
    return (est.estimators_[0] if hasattr(est, "estimators_") else est)._network.dtype


def check_classifier(est, X):
    sess = session(est.to_onnx())
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    for n in BATCHES:
        label, proba = sess.run(None, {"X": X[:n]})
        expected = est.predict(X[:n])
        assert label.shape == expected.shape
        if isinstance(expected.flat[0], str):
            assert label.dtype == object and label.tolist() == expected.tolist()
        else:
            assert label.dtype == np.int64 and np.array_equal(label, expected)
        assert_close(proba, est.predict_proba(X[:n]), model_dtype(est))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["binary", "binary_str", "multiclass", "multiclass_str", "multiclass_float",
                                  "binary_bool", "multilabel"])
def test_classifier_matches_onnxruntime(kind, dtype):
    check_classifier(*fitted_classifier(classification_targets(kind), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(_registry.ACTIVATIONS))
def test_classifier_every_activation(activation, dtype):
    check_classifier(*fitted_classifier(classification_targets("multiclass"), dtype, activation))


def check_regressor(est, X):
    sess = session(est.to_onnx())
    assert [o.name for o in sess.get_outputs()] == ["variable"]
    for n in BATCHES:
        (got,) = sess.run(None, {"X": X[:n]})
        expected = est.predict(X[:n]).reshape(n, est.n_outputs_)  # (n, n_outputs) as skl2onnx's "variable"
        # (every loss with the identity output sums near zero: huber, quantile, absolute_error too)
        assert_close(got, expected, model_dtype(est), cancels=est.out_activation_ == "identity")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, n_outputs", [("squared_error", 1), ("squared_error", 3), ("poisson", 1),
                                             ("poisson", 2), ("absolute_error", 1), ("huber", 2), ("quantile", 2),
                                             ("gamma", 1), ("gamma", 2)])
def test_regressor_matches_onnxruntime(loss, n_outputs, dtype):
    # every loss's output is the identity or exp: the exported graph is the same, its weights the loss's
    X = features(dtype)
    output = _registry.REGRESSION_OUTPUTS[loss].activation
    Y = make_targets(output, (len(X), n_outputs), np.random.default_rng(4), loss)
    est = MLPRegressor(loss, hidden_layer_sizes=(7, 6), max_iter=5, dtype=dtype, random_state=0, huber_delta=0.5,
                       quantile=0.9)
    check_regressor(est.fit(X, Y[:, 0] if n_outputs == 1 else Y), X)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(_registry.ACTIVATIONS))
def test_regressor_every_activation(activation, dtype):
    X = features(dtype)
    Y = make_targets("identity", (len(X), 2), np.random.default_rng(4))
    check_regressor(MLPRegressor(hidden_layer_sizes=(7, 6), activation=activation, max_iter=5, dtype=dtype,
                                 random_state=0).fit(X, Y), X)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", _registry.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("activation", sorted(_registry.ACTIVATIONS))
def test_every_initializer_is_read(activation, output, dtype):
    # session() checks this for every graph it runs; here every graph kind at once, without a runtime
    models = [network(Network, activation, output, dtype)]
    if output == "softmax":
        for kind in ("binary", "multiclass", "multiclass_str", "multilabel"):
            models.append(fitted_classifier(classification_targets(kind), dtype, activation)[0])
        models.append(MLPRegressor(hidden_layer_sizes=(3,), activation=activation, max_iter=2, dtype=dtype,
                                   random_state=0).fit(features(dtype), np.arange(100.0)))
    for model in models:
        exported = model.to_onnx()
        assert len(exported.graph.initializer) > 0
        assert unused_initializers(exported) == [], type(model).__name__


def test_method_equals_function():
    net = network(Network, "prelu", "logistic", "float32")
    clf, _ = fitted_classifier(classification_targets("multiclass_str"), "float64")
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3).fit(features("float64"), np.arange(100.0))
    for model in (net, clf, reg):
        assert model.to_onnx().SerializeToString() == fastmlp.onnx.to_onnx(model).SerializeToString()
        assert model.to_onnx(opset=15, name="m").SerializeToString() == \
            fastmlp.onnx.to_onnx(model, opset=15, name="m").SerializeToString()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["binary_str", "multiclass", "multilabel"])
def test_ensemble_classifier_exports_the_mean_of_its_members(kind, dtype):
    y = classification_targets(kind)
    X = features(dtype, len(y))
    ens = MLPEnsembleClassifier((7, 6), max_iter=5, dtype=dtype, n_members=3, random_state=0).fit(X, y)
    check_classifier(ens, X)
    assert sum(node.op_type == "MatMul" for node in ens.to_onnx().graph.node) == 3 * 3


def test_a_binary_ensembles_small_probabilities_as_predict_proba():
    # found by probing: the graph took 1 - mean(p_k) where predict_proba averages the members' 1 - p_k; in
    # float32 a small class-0 probability then missed predict_proba's by 4e-5 relative
    rng = np.random.RandomState(0)
    X = (rng.randn(200, 4) * 3 + 5).astype(np.float32)
    y = (X[:, 0] > 5).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ens = MLPEnsembleClassifier(hidden_layer_sizes=(5,), n_members=3, max_iter=20, dtype="float32",
                                    random_state=0).fit(X, y)
    model = ens.to_onnx()
    assert sum(node.op_type == "Sub" for node in model.graph.node) == 3  # (each member's 1 - p_k, then their mean)
    _, proba = session(model).run(None, {"X": X})
    # (a few float32 ulps of 1 beside the relative bound: members here reach 1 - p_k = 8e-6, where ONNX Runtime's
    # sigmoid, which varies with the CPU's kernels, may round another way; the old 1 - mean missed by 2.5e-6)
    np.testing.assert_allclose(proba, ens.predict_proba(X), rtol=1e-5, atol=4 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_ensemble_regressor_exports_the_mean_of_its_members(n_outputs, dtype):
    X = features(dtype)
    y = X[:, :n_outputs].sum(axis=1) if n_outputs == 1 else X[:, :n_outputs]
    ens = MLPEnsembleRegressor(hidden_layer_sizes=(7,), max_iter=5, dtype=dtype, n_members=3, random_state=0).fit(X, y)
    check_regressor(ens, X)


def test_unfitted_or_foreign_models_raise():
    for est in (MLPClassifier(), MLPRegressor(), MLPEnsembleClassifier(), MLPEnsembleRegressor()):
        with pytest.raises(NotFittedError, match=f"{type(est).__name__} instance is not fitted yet.*ONNX"):
            est.to_onnx()
    with pytest.raises(TypeError, match="to_onnx exports fastmlp.Network"):
        fastmlp.onnx.to_onnx(StandardScaler())


def test_class_labels_onnx_cannot_hold_raise():
    est, _ = fitted_classifier(classification_targets("binary"), "float64")
    est.classes_ = est.classes_ + 0.5  # scikit-learn's fit refuses such labels; ONNX's label output too
    with pytest.raises(ValueError, match="strings or integers"):
        est.to_onnx()


def test_import_fastmlp_does_not_import_onnx():
    code = ("import sys, fastmlp; fastmlp.Network([2, 1]); fastmlp.MLPClassifier(); "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime', 'skl2onnx')); "
            "assert not loaded, loaded; "
            "import fastmlp.onnx; assert 'onnx' in sys.modules")
    env = dict(os.environ)
    src = str(Path(fastmlp.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ skl2onnx


@pytest.fixture(scope="module")
def skl2onnx():
    return pytest.importorskip("skl2onnx")


def pipeline(est, y):
    X = features("float64", len(y), seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Pipeline([("scale", StandardScaler()), ("mlp", est)]).fit(X, y), X.astype(np.float32)


@pytest.mark.parametrize("options", [{"zipmap": False}, {"zipmap": False, "nocl": True}, {"zipmap": True},
                                     {"zipmap": True, "nocl": True}, {"zipmap": "columns"}])
def test_skl2onnx_converts_a_pipeline(skl2onnx, options):
    y = classification_targets("multiclass_str")
    pipe, X32 = pipeline(MLPClassifier((7,), max_iter=20, random_state=0), y)
    model = skl2onnx.to_onnx(pipe, X32[:1], options={MLPClassifier: options})
    sess = session(model)
    classes = pipe.classes_
    # the float32 features are scaled in float32 by both, then cast to the float64 network
    expected_label, expected_proba = pipe.predict(X32), pipe.predict_proba(X32)
    for n in BATCHES:
        label, *proba = sess.run(None, {"X": X32[:n]})
        proba = np.stack(proba, axis=1) if options["zipmap"] == "columns" else proba[0]  # one output per class
        if options.get("nocl"):
            assert label.dtype == np.int64 and np.array_equal(classes[label], expected_label[:n])
        else:
            assert label.tolist() == expected_label[:n].tolist()
        if options["zipmap"] is True:  # a list of {class: probability} per row
            keys = list(range(len(classes))) if options.get("nocl") else list(classes)
            assert [list(row) for row in proba] == [keys] * n
            proba = np.array([list(row.values()) for row in proba], dtype=np.float32)
        assert proba.dtype == np.float32  # skl2onnx declares outputs in the input's type
        np.testing.assert_allclose(proba, expected_proba[:n], rtol=1e-5)


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_skl2onnx_binary_and_multilabel(skl2onnx, kind):
    y = classification_targets(kind)
    pipe, X32 = pipeline(MLPClassifier((7,), max_iter=20, random_state=0), y)
    sess = session(skl2onnx.to_onnx(pipe, X32[:1], options={MLPClassifier: {"zipmap": False}}))
    label, proba = sess.run(None, {"X": X32})
    assert label.dtype == np.int64 and np.array_equal(label, pipe.predict(X32))
    np.testing.assert_allclose(proba, pipe.predict_proba(X32), rtol=1e-5)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_skl2onnx_regressor_shapes(skl2onnx, n_outputs):
    Y = make_targets("identity", (100, n_outputs), np.random.default_rng(4))
    pipe, X32 = pipeline(MLPRegressor(hidden_layer_sizes=(7,), max_iter=20, random_state=0),
                         Y[:, 0] if n_outputs == 1 else Y)
    model = skl2onnx.to_onnx(pipe, X32[:1])
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim][1:] == [n_outputs]
    sess = session(model)
    for n in BATCHES:
        (got,) = sess.run(None, {"X": X32[:n]})
        expected = pipe.predict(X32[:n]).reshape(n, n_outputs)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_skl2onnx_float64_pipeline_stays_float64(skl2onnx):
    y = classification_targets("binary")
    pipe, _ = pipeline(MLPClassifier((7,), max_iter=20, random_state=0), y)
    X = features("float64", 100, seed=5)
    model = skl2onnx.to_onnx(pipe, X[:1], options={MLPClassifier: {"zipmap": False}})
    label, proba = session(model).run(None, {"X": X})
    assert proba.dtype == np.float64 and np.array_equal(label, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-10)


@pytest.mark.parametrize("kind", ["multiclass_str", "binary", "multilabel", "regressor"])
def test_skl2onnx_converts_a_pipeline_ending_in_an_ensemble(skl2onnx, kind):
    # found by probing: only MLPClassifier and MLPRegressor were registered (an ensemble at a pipeline's end
    # raised skl2onnx's MissingShapeCalculator), though the docs said fastmlp's estimators
    if kind == "regressor":
        Y = make_targets("identity", (100, 2), np.random.default_rng(4))
        pipe, X32 = pipeline(MLPEnsembleRegressor(hidden_layer_sizes=(7,), max_iter=20, n_members=3,
                                                  random_state=0), Y)
        (got,) = session(skl2onnx.to_onnx(pipe, X32[:1])).run(None, {"X": X32})
        np.testing.assert_allclose(got, pipe.predict(X32), rtol=1e-5, atol=1e-5 * np.abs(got).max())
        return
    y = classification_targets(kind)
    pipe, X32 = pipeline(MLPEnsembleClassifier((7,), max_iter=20, n_members=3, random_state=0), y)
    options = {MLPEnsembleClassifier: {"zipmap": False}}
    label, proba = session(skl2onnx.to_onnx(pipe, X32[:1], options=options)).run(None, {"X": X32})
    assert label.tolist() == pipe.predict(X32).tolist()
    np.testing.assert_allclose(proba, pipe.predict_proba(X32), rtol=1e-5)


def test_the_graph_name_is_checked():
    # name=3 raised "bad argument type for built-in operation" from deep inside onnx; "" silently took the default
    net = fastmlp.Network([3, 2, 1], random_state=0)
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        fastmlp.onnx.to_onnx(net, name=3)
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        fastmlp.onnx.to_onnx(net, name="")
    assert fastmlp.onnx.to_onnx(net, name="mine").graph.name == "mine"
    assert net.to_onnx().graph.name == "fastmlp_Network"
