"""Save and load without pickle (fastmlp.persistence): round trips, continued training, tampered files.

A loaded model must predict bit-identically and train on exactly as the
original would (optimizer state, random generators, fitted attributes), which
`assert_same` checks by comparing the two objects attribute by attribute. A
damaged or hostile file must raise a ValueError, never anything else, and
loading must never import what the file names.
"""
import io
import json
import numbers
import os
import pathlib
import pickle
import sys
import warnings
import zipfile
from types import SimpleNamespace

import numpy as np
from numpy.testing import assert_array_equal
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, Network, _registry, reference
from fastmlp._base import BaseNetwork
from fastmlp._training import Trainer
from fastmlp.persistence import FORMAT, MODELS, VERSION, load, save

from _helpers import LOSS_PARAMS, make_targets

# Trainer buffers rebuilt at the next epoch (workspaces, per-epoch scratch):
# only settings and optimizer state carry over between epochs.
_VIEWS = {"_coefs", "_intercepts", "_slopes", "_predictor", "_validated_params", "_clock",
          "_forward_clock_values"}  # views, caches, timings: remade


def assert_same(a, b, where="model"):
    """a and b hold the same state: same attributes, types, dtypes, shapes and bits."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, np.random.Generator):
        assert type(b) is np.random.Generator, where
        assert type(a.bit_generator) is type(b.bit_generator), where
        assert_same(a.bit_generator.state, b.bit_generator.state, where)
    elif isinstance(a, np.random.RandomState):
        assert type(b) is np.random.RandomState, where
        assert_same(a.get_state(legacy=False), b.get_state(legacy=False), where)
    elif isinstance(a, Trainer):
        assert_same(a.settings, b.settings, f"{where}.settings")
        assert_same(a.state, b.state, f"{where}.state")
    elif isinstance(a, (BaseNetwork, BaseEstimator)):
        assert type(a) is type(b), where
        va = {k: v for k, v in vars(a).items() if k not in _VIEWS}
        vb = {k: v for k, v in vars(b).items() if k not in _VIEWS}
        assert sorted(va) == sorted(vb), where
        for k in va:
            assert_same(va[k], vb[k], f"{where}.{k}")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for k in a:
            if where.endswith("history_") and k == "seconds":  # timings: only their count is the same
                assert len(a[k]) == len(b[k]), where
                continue
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, numbers.Real) and not isinstance(a, (bool, np.bool_)):
        assert isinstance(b, numbers.Real) and not isinstance(b, (bool, np.bool_)), where
        assert a == b or (np.isnan(a) and np.isnan(b)), where
    else:
        assert type(a) is type(b) and a == b, where


def round_trip(model, tmp_path, name="model.fastmlp"):
    path = tmp_path / name
    model.save(path)
    return load(path)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    return SimpleNamespace(
        X=X,
        y_binary=(X[:, 0] + 0.3 * X[:, 1] > 0).astype(int),
        y_multiclass=np.digitize(X[:, 0], [-0.5, 0.5]),
        y_reg=X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(60),
    )


# ------------------------------------------------------------------- Network

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rng_kind", ["Generator", "RandomState"])
def test_network_round_trip_then_fit_as_the_original(tmp_path, data, dtype, rng_kind):
    rng = np.random.default_rng(7) if rng_kind == "Generator" else np.random.RandomState(7)
    net = Network([5, 8, 6, 3], activation="tanh", output_activation="softmax", loss="log_loss",
                  dtype=dtype, dropout=[0.2, 0.1], random_state=rng)
    Y = make_targets("softmax", (60, 3), np.random.default_rng(1))
    net.fit(data.X, Y, epochs=2, batch_size=16, optimizer="sgd", momentum=0.9)
    loaded = round_trip(net, tmp_path)

    assert np.array_equal(net.predict(data.X), loaded.predict(data.X))
    assert loaded.predict(data.X).dtype == np.dtype(dtype)
    assert_same(net, loaded)
    assert type(loaded._rng) is type(rng)
    # Dropout masks and shuffling come from the restored generator.
    assert np.array_equal(net.forward(data.X, training=True), loaded.forward(data.X, training=True))
    for model in (net, loaded):
        model.fit(data.X, Y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    assert_same(net, loaded)


@pytest.mark.parametrize("activation", sorted(_registry.ACTIVATIONS))
@pytest.mark.parametrize("output_activation, loss", sorted(_registry.OUTPUTS))
def test_network_round_trip_every_activation_and_output(tmp_path, data, activation, output_activation, loss):
    net = Network([5, 4, 2], activation=activation, output_activation=output_activation, loss=loss,
                  init="he_normal", random_state=3, loss_param=LOSS_PARAMS.get(loss))
    Y = make_targets(output_activation, (60, 2), np.random.default_rng(2), loss)
    net.fit(data.X, Y, epochs=1, batch_size=32)
    loaded = round_trip(net, tmp_path)
    assert np.array_equal(net.predict(data.X), loaded.predict(data.X))
    assert_same(net, loaded)
    assert loaded.loss_param == LOSS_PARAMS.get(loss)
    assert_same(net.fit(data.X, Y, epochs=1, batch_size=32), loaded.fit(data.X, Y, epochs=1, batch_size=32))


def test_unfitted_network_and_pcg64dxsm(tmp_path, data):
    net = Network([5, 3, 1], random_state=np.random.Generator(np.random.PCG64DXSM(5)))
    loaded = round_trip(net, tmp_path)
    assert not hasattr(loaded, "loss_curve_")
    assert_same(net, loaded)
    y = data.y_reg
    assert_same(net.fit(data.X, y, epochs=2), loaded.fit(data.X, y, epochs=2))


def test_reference_network_round_trip(tmp_path, data):
    net = reference.Network([5, 6, 1], activation="relu", dropout=0.3, random_state=4)
    net.fit(data.X, data.y_reg, epochs=2, batch_size=20, optimizer="adam")
    loaded = round_trip(net, tmp_path)
    assert type(loaded) is reference.Network
    assert np.array_equal(net.predict(data.X), loaded.predict(data.X))
    assert_same(net, loaded)
    for model in (net, loaded):
        model.fit(data.X, data.y_reg, epochs=1, batch_size=20)
    assert_same(net, loaded)


# ---------------------------------------------------------------- estimators

def _targets(data, kind):
    yb, ym = data.y_binary, data.y_multiclass
    names = np.array(["cat", "dog", "eel"])
    return {
        "binary": yb,
        "bools": yb.astype(bool),
        "multiclass": ym,
        "strings": names[ym],
        "object-strings": pd.Series(names[ym].astype(object)),
        "multilabel": np.stack([yb, 1 - yb, (ym == 2).astype(int)], axis=1),
        "real": data.y_reg,
        "multi-output": np.stack([data.y_reg, -data.y_reg, 2 * data.y_reg], axis=1),
        "counts": np.random.default_rng(3).poisson(2.0, len(yb)).astype(float),
        "positive": np.random.default_rng(3).gamma(2.0, 1.0, len(yb)),
    }[kind]


# name: (estimator factory, target kind, X as a DataFrame)
CLASSIFIERS = {
    "binary-adam": (lambda: MLPClassifier((7,), max_iter=3, random_state=0), "binary", False),
    "multiclass-sgd-invscaling": (lambda: MLPClassifier((7, 4), solver="sgd", learning_rate="invscaling",
                                                        learning_rate_init=0.05, max_iter=3, random_state=1),
                                  "multiclass", False),
    "strings": (lambda: MLPClassifier((6,), max_iter=3, random_state=2), "strings", False),
    "object-strings-series": (lambda: MLPClassifier((6,), max_iter=3, random_state=2), "object-strings", False),
    "bools": (lambda: MLPClassifier((6,), max_iter=3, random_state=3), "bools", False),
    "multilabel": (lambda: MLPClassifier((6,), max_iter=3, random_state=4), "multilabel", False),
    "lbfgs": (lambda: MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=5), "multiclass", False),
    "early-stopping": (lambda: MLPClassifier((6,), early_stopping=True, validation_fraction=0.25, max_iter=4,
                                             n_iter_no_change=2, random_state=6), "multiclass", False),
    "lbfgs-early-stopping": (lambda: MLPClassifier((5,), solver="lbfgs", early_stopping=True, max_iter=5,
                                                   random_state=5), "multiclass", False),  # no score, best -inf
    "dataframe": (lambda: MLPClassifier((6,), max_iter=3, random_state=7), "strings", True),
    "float32-dropout-adaptive": (lambda: MLPClassifier((6, 5), solver="sgd", learning_rate="adaptive",
                                                       dropout=0.2, dtype="float32", max_iter=3, random_state=8),
                                 "multiclass", False),
    "randomstate-instance": (lambda: MLPClassifier((6,), max_iter=3, random_state=np.random.RandomState(9)),
                             "binary", False),
    "class-weight-dict": (lambda: MLPClassifier((6,), class_weight={0: 2.0, 2: 0.5}, max_iter=3, random_state=10),
                          "multiclass", False),
    "class-weight-strings": (lambda: MLPClassifier((6,), class_weight={"dog": 3.0}, max_iter=3, random_state=11),
                             "strings", False),
    "class-weight-balanced": (lambda: MLPClassifier((5,), solver="lbfgs", class_weight="balanced", max_iter=5,
                                                    random_state=12), "binary", False),
    "class-weight-multilabel": (lambda: MLPClassifier((6,), class_weight=[{0: 1.0, 1: 2.0}, {1: 0.5}, {}],
                                                      max_iter=3, random_state=13), "multilabel", False),
}

REGRESSORS = {
    "single-adam": (lambda: MLPRegressor(hidden_layer_sizes=(7,), max_iter=3, random_state=0), "real", False),
    "multi-output-sgd": (lambda: MLPRegressor(hidden_layer_sizes=[6], solver="sgd", learning_rate_init=0.01,
                                              nesterovs_momentum=False, max_iter=3, random_state=1),
                         "multi-output", False),
    "poisson": (lambda: MLPRegressor("poisson", hidden_layer_sizes=(5,), max_iter=3, random_state=2), "counts",
                False),
    "lbfgs": (lambda: MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=5, random_state=3), "real",
              False),
    "early-stopping": (lambda: MLPRegressor(hidden_layer_sizes=(6,), early_stopping=True, max_iter=4,
                                            validation_fraction=0.2, random_state=4), "real", False),
    "float32-clip-dataframe": (lambda: MLPRegressor(hidden_layer_sizes=(6,), dtype="float32", clip_norm=1.0,
                                                    max_iter=3, n_iter_no_change=np.inf, random_state=5),
                               "real", True),
    "huber": (lambda: MLPRegressor("huber", hidden_layer_sizes=(5,), huber_delta=0.3, max_iter=3, random_state=6),
              "real", False),
    "quantile-multi-output": (lambda: MLPRegressor("quantile", hidden_layer_sizes=(5,), quantile=0.8, solver="sgd",
                                                   max_iter=3, random_state=7), "multi-output", False),
    "absolute-error-lbfgs": (lambda: MLPRegressor("absolute_error", hidden_layer_sizes=(5,), solver="lbfgs",
                                                  max_iter=5, random_state=8), "real", False),
    "gamma": (lambda: MLPRegressor("gamma", hidden_layer_sizes=(5,), max_iter=3, random_state=9), "positive", False),
}


def _case(cases, name, data):
    factory, kind, frame = cases[name]
    X = pd.DataFrame(data.X, columns=[f"f{i}" for i in range(data.X.shape[1])]) if frame else data.X
    return factory(), X, _targets(data, kind)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _check_estimator_round_trip(est, X, y, tmp_path):
    _fit(est, X, y)
    loaded = round_trip(est, tmp_path)
    assert_same(est, loaded)
    assert np.array_equal(est.predict(X), loaded.predict(X))
    if hasattr(est, "predict_proba"):
        assert np.array_equal(est.predict_proba(X), loaded.predict_proba(X))
    # Shared objects stay shared (one generator drives the estimator and its network).
    assert (loaded._random_state is loaded._network._rng) == (est._random_state is est._network._rng)
    assert (loaded.random_state is loaded._random_state) == (est.random_state is est._random_state)

    # Continued training: partial_fit keeps the optimizer state; warm start keeps weights and history.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if est.solver != "lbfgs" and not est.early_stopping:
            for model in (est, loaded):
                model.partial_fit(X, y)
            assert_same(est, loaded)
        for model in (est, loaded):
            model.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert_same(est, loaded)
    assert np.array_equal(est.predict(X), loaded.predict(X))
    return loaded


@pytest.mark.parametrize("case", list(CLASSIFIERS))
def test_classifier_round_trip_and_continued_training(tmp_path, data, case):
    est, X, y = _case(CLASSIFIERS, case, data)
    loaded = _check_estimator_round_trip(est, X, y, tmp_path)
    if isinstance(X, pd.DataFrame):
        assert list(loaded.feature_names_in_) == list(X.columns)
        assert loaded.feature_names_in_.dtype == object
    if case in ("strings", "object-strings-series", "dataframe"):
        assert set(loaded.predict(X)) <= {"cat", "dog", "eel"}


@pytest.mark.parametrize("case", list(REGRESSORS))
def test_regressor_round_trip_and_continued_training(tmp_path, data, case):
    est, X, y = _case(REGRESSORS, case, data)
    loaded = _check_estimator_round_trip(est, X, y, tmp_path)
    assert loaded.predict(X).dtype == est.predict(X).dtype


def test_partial_fit_built_classifier_keeps_adam_and_momentum_state(tmp_path, data):
    for solver in ("adam", "sgd"):
        est = MLPClassifier((6,), solver=solver, random_state=0)
        for _ in range(3):
            est.partial_fit(data.X, data.y_multiclass, classes=[0, 1, 2])
        loaded = round_trip(est, tmp_path)
        assert loaded._trainer.settings["step"] == est._trainer.settings["step"]
        assert all(np.any(s != 0) for s in loaded._trainer.state)  # moments / velocities, not fresh zeros
        assert_same(est, loaded)
        for model in (est, loaded):
            model.partial_fit(data.X, data.y_multiclass, classes=[0, 1, 2])
        assert_same(est, loaded)


def test_object_classes_are_restored_as_objects(tmp_path, data):
    est = _fit(MLPClassifier((5,), max_iter=2, random_state=0), data.X, data.y_multiclass)
    # classes_ of object dtype (as some callers set them) survive as object arrays of str
    est.classes_ = est._label_binarizer.classes_ = np.array(["a", "bb", "c"], dtype=object)
    loaded = round_trip(est, tmp_path)
    assert loaded.classes_.dtype == object and loaded.classes_ is loaded._label_binarizer.classes_
    assert_same(est, loaded)
    assert np.array_equal(est.predict(data.X), loaded.predict(data.X))


def test_unfitted_estimator_round_trip(tmp_path, data):
    est = MLPRegressor(hidden_layer_sizes=np.array([4, 3]), dropout=[0.1, 0.2], random_state=np.random.RandomState(1))
    loaded = round_trip(est, tmp_path)
    assert_same(est, loaded)
    with pytest.raises(NotFittedError):
        loaded.predict(data.X)
    assert_same(_fit(est, data.X, data.y_reg), _fit(loaded, data.X, data.y_reg))


# --------------------------------------------------------------------- files

@pytest.mark.parametrize("name, as_path", [("model", False), ("model.bin", True), ("model.npz", False)])
def test_file_is_written_at_exactly_path(tmp_path, data, name, as_path):
    net = Network([5, 3, 1], random_state=0)
    target = tmp_path / name
    net.save(target if as_path else str(target))
    assert os.listdir(tmp_path) == [name]
    net.save(target if as_path else str(target))  # overwriting leaves one file too
    assert os.listdir(tmp_path) == [name]
    assert np.array_equal(load(str(target) if as_path else pathlib.Path(target)).predict(data.X), net.predict(data.X))


def test_file_is_a_plain_npz_with_versioned_json(tmp_path):
    net = Network([5, 3, 1], random_state=0)
    save(net, tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m") as zf:
        config = json.loads(zf.read("config.json"))
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
    assert (config["format"], config["version"], config["model"]) == (FORMAT, VERSION, "Network")
    with np.load(tmp_path / "m", allow_pickle=False) as npz:
        assert np.array_equal(npz["network.params"], net._params)
    # Same model, same bytes (fixed timestamps, no randomness in the file).
    save(net, tmp_path / "m2")
    assert (tmp_path / "m").read_bytes() == (tmp_path / "m2").read_bytes()


def test_load_is_exported_and_save_rejects_other_objects(tmp_path):
    assert fastmlp.load is load and "load" in fastmlp.__all__
    assert set(MODELS) == {"Network", "reference.Network", "MLPClassifier", "MLPRegressor", "MLPEnsembleClassifier",
                           "MLPEnsembleRegressor", "NetworkEnsemble"}

    class MyNetwork(Network):
        pass

    for obj in (object(), MyNetwork([2, 1])):
        with pytest.raises(TypeError, match="save takes"):
            save(obj, tmp_path / "x")
    with pytest.raises(TypeError, match="path"):
        save(Network([2, 1]), 3)
    assert os.listdir(tmp_path) == []


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load(str(tmp_path / "nope.fastmlp"))


@pytest.mark.parametrize("model", ["network", "reference", "classifier", "regressor"])
def test_pickle_still_works(data, model):
    est = {
        "network": lambda: Network([5, 4, 1], random_state=0).fit(data.X, data.y_reg, epochs=2),
        "reference": lambda: reference.Network([5, 4, 1], random_state=0).fit(data.X, data.y_reg, epochs=2),
        "classifier": lambda: _fit(MLPClassifier((5,), max_iter=2, random_state=0), data.X, data.y_multiclass),
        "regressor": lambda: _fit(MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0), data.X,
                                  data.y_reg),
    }[model]()
    copy = pickle.loads(pickle.dumps(est))
    assert np.array_equal(est.predict(data.X), copy.predict(data.X))


# ------------------------------------------------------------ damaged files

@pytest.fixture
def saved(tmp_path, data):
    """A fitted multiclass classifier with Adam state, feature names and a shared RandomState, saved."""
    frame = pd.DataFrame(data.X, columns=list("abcde"))
    est = _fit(MLPClassifier((6,), max_iter=2, random_state=np.random.RandomState(0)), frame, data.y_multiclass)
    path = tmp_path / "model.fastmlp"
    est.save(path)
    return path


def _entries(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, blob in entries.items():
            zf.writestr(name, blob)


def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=allow_pickle)
    return buf.getvalue()


def tamper(path, edit_config=None, arrays=None, extra=None, drop=(), compression=zipfile.ZIP_STORED):
    """Rewrite the file: edit config.json (a function of the dict), replace or add entries, drop some."""
    entries = _entries(path)
    if edit_config is not None:
        config = json.loads(entries["config.json"])
        edit_config(config)
        entries["config.json"] = json.dumps(config).encode()
    for name, arr in (arrays or {}).items():
        entries[name + ".npy"] = _npy(arr)
    entries.update(extra or {})
    for name in drop:
        del entries[name]
    _write(path, entries, compression)


def _set(keys, value):
    def edit(config):
        d = config
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


def _params(path):
    with zipfile.ZipFile(path) as zf:
        return np.lib.format.read_array(zf.open("network.params.npy"))


FITTED = ("estimator", "fitted")
TRAINER = FITTED + ("_trainer", "settings")

CONFIG_TAMPERING = {
    "newer format version": (_set(("version",), VERSION + 1), "newer"),
    "version as a string": (_set(("version",), "1"), "version"),
    "another format": (_set(("format",), "keras"), "format"),
    "unknown model class": (_set(("model",), "os.system"), "model"),
    "extra top-level key": (_set(("__reduce__",), "os.system"), "unexpected keys"),
    "extra network key": (_set(("network", "class"), "Network"), "unexpected keys"),
    "missing key": (lambda c: c["network"].pop("dtype"), "dtype"),
    "unknown activation": (_set(("network", "activation"), "gelu"), "activation='gelu'.*valid values"),
    "string in layer_sizes": (_set(("network", "layer_sizes", 1), "6"), "layer_sizes"),
    "wrong layer count": (_set(("network", "layer_sizes"), [5, 6, 6, 3]), "network.params"),
    "huge layer_sizes": (_set(("network", "layer_sizes"), [20000, 20000, 3]), "at least 400080003"),
    "unknown dtype": (_set(("network", "dtype"), "object"), "dtype"),
    "dropout out of range": (_set(("network", "dropout"), [1.5]), "dropout"),
    "string learning rate": (_set(TRAINER + ("learning_rate",), "0.001"), "learning_rate"),
    "negative step": (_set(TRAINER + ("step",), -1), "step"),
    "unknown optimizer": (_set(TRAINER + ("optimizer",), "rmsprop"), "optimizer"),
    "extra trainer setting": (_set(TRAINER + ("callback",), "os.system"), "unexpected keys"),
    "string alpha parameter": (_set(("estimator", "params", "alpha"), "0.1"), "alpha"),
    "unknown solver parameter": (_set(("estimator", "params", "solver"), "magic"), "solver"),
    "string n_iter_": (_set(FITTED + ("n_iter_",), "2"), "n_iter_"),
    "n_outputs_ mismatch": (_set(FITTED + ("n_outputs_",), 2), "n_outputs_"),
    "label type mismatch": (_set(FITTED + ("_label_binarizer", "y_type_"), "binary"), "labels"),
    "unknown label type": (_set(FITTED + ("_label_binarizer", "y_type_"), "continuous"), "y_type_"),
    "rng pos out of range": (_set(("rngs", 0, "state", "state", "pos"), 10**6), "pos"),
    "rng pos as string": (_set(("rngs", 0, "state", "state", "pos"), "3"), "pos"),
    "unknown bit generator": (_set(("rngs", 0, "state", "bit_generator"), "Evil"), "bit_generator"),
    "rng index out of range": (_set(FITTED + ("_random_state",), {"rng": 5}), "rng"),
    "unused rng": (lambda c: c["rngs"].append({"type": "Generator",
                                                "state": np.random.default_rng(0).bit_generator.state}), "not used"),
    "array reference renamed": (_set(("network", "params"), {"array": "rngs.0.state.state.key"}), "params"),
    "trainer state missing": (lambda c: c["estimator"]["fitted"]["_trainer"]["state"].pop(), "state"),
    "object_arrays names params": (_set(("object_arrays",), ["network.params"]), "object"),
    "empty config object": (lambda c: c.clear(), "lacks"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_TAMPERING))
def test_tampered_config_raises_value_error(saved, case):
    edit, match = CONFIG_TAMPERING[case]
    tamper(saved, edit_config=edit)
    with pytest.raises(ValueError, match=match):
        load(saved)


def _with_nan(params):
    params = params.copy()
    params[3] = np.nan
    return params


# name: (replaced arrays, given the stored parameters; what the message names)
ARRAY_TAMPERING = {
    "params too short": (lambda p: {"network.params": p[:-1]}, "shape"),
    "params 2-D": (lambda p: {"network.params": p.reshape(1, -1)}, "shape"),
    "params as integers": (lambda p: {"network.params": p.astype(np.int64)}, "dtype"),
    "params as float32": (lambda p: {"network.params": p.astype(np.float32)}, "dtype"),
    "params with NaN": (lambda p: {"network.params": _with_nan(p)}, "NaN"),
    "rng key wrong shape": (lambda p: {"rngs.0.state.state.key": np.zeros(5, np.uint32)}, "shape"),
    "rng key as floats": (lambda p: {"rngs.0.state.state.key": np.zeros(624)}, "dtype"),
    "extra array": (lambda p: {"payload": np.arange(3)}, "unexpected arrays"),
    "classes shuffled": (lambda p: {"estimator.fitted.classes_": np.array([2, 0, 1])}, "sorted"),
    "too few classes": (lambda p: {"estimator.fitted.classes_": np.array([0, 1])}, "labels"),
    "feature names wrong length": (lambda p: {"estimator.fitted.feature_names_in_": np.array(["a", "b"])}, "shape"),
    "adam moment wrong shape": (lambda p: {"estimator.fitted._trainer.state.1": np.zeros(3)}, "shape"),
    # (found by probing: a negative second moment loaded, and the next partial_fit diverged)
    "adam second moments negative": (lambda p: {"estimator.fitted._trainer.state.1": -np.ones_like(p)},
                                     "second moments"),
    "loss curve 2-D": (lambda p: {"estimator.fitted.loss_curve_": np.zeros((2, 2))}, "dimension"),
}


@pytest.mark.parametrize("case", sorted(ARRAY_TAMPERING))
def test_tampered_arrays_raise_value_error(saved, case):
    arrays, match = ARRAY_TAMPERING[case]
    tamper(saved, arrays=arrays(_params(saved)))
    with pytest.raises(ValueError, match=match):
        load(saved)


# The training history is checked like the parameters: shapes consistent with
# each other and the network, dtype, finiteness where fit always records finite
# numbers. file: (the edits, given the stored arrays (name -> array) and the
# config; what the message names).
def _history_file(tmp_path, data, kind):
    if kind == "network":
        model = Network([5, 6, 3], output_activation="softmax", loss="log_loss", random_state=0)
        model.fit(data.X, np.eye(3)[data.y_multiclass], epochs=3)
    else:
        model = _fit(MLPClassifier((6,), early_stopping=kind == "early-stopping", validation_fraction=0.25,
                                   max_iter=3, random_state=0), data.X, data.y_multiclass)
    path = tmp_path / f"{kind}.fastmlp"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        stored = {n[:-4]: np.lib.format.read_array(zf.open(n)) for n in zf.namelist() if n.endswith(".npy")}
    return path, stored


def _nan_like(a):
    return np.full_like(a, np.nan)


NET, EST = "network.", "estimator.fitted."
HISTORY_TAMPERING = {
    # arrays
    "loss curve all NaN": ("adam", {EST + "loss_curve_": _nan_like}, "loss_curve_.*NaN"),
    "loss curve one inf": ("adam", {EST + "loss_curve_": lambda a: np.r_[a[:-1], np.inf]}, "loss_curve_.*inf"),
    "loss curve as strings": ("adam", {EST + "loss_curve_": lambda a: a.astype(str)}, "loss_curve_.*dtype"),
    "grad norms a row short": ("adam", {EST + "grad_norms_": lambda a: a[:-1]}, "grad_norms_.*shape"),
    "grad norms a row more": ("adam", {EST + "grad_norms_": lambda a: np.vstack([a, a[:1]])}, "grad_norms_.*shape"),
    "grad norms a column short": ("adam", {EST + "grad_norms_": lambda a: a[:, 1:]}, "grad_norms_.*shape"),
    "grad norms with NaN": ("adam", {EST + "grad_norms_": _nan_like}, "grad_norms_.*NaN"),
    "grad norms negative": ("adam", {EST + "grad_norms_": lambda a: -a}, "grad_norms_.*negative"),
    "grad norms as float32": ("adam", {EST + "grad_norms_": lambda a: a.astype(np.float32)}, "grad_norms_.*dtype"),
    "more scores than epochs": ("early-stopping", {EST + "validation_scores_": lambda a: np.r_[a, a]},
                                "validation_scores_.*more than"),
    "infinite score": ("early-stopping", {EST + "validation_scores_": lambda a: np.r_[a[:-1], np.inf]},
                       "validation_scores_.*infinity"),
    "scores 2-D": ("early-stopping", {EST + "validation_scores_": lambda a: a[None]}, "validation_scores_"),
    # a diverged last epoch (NaN loss, norms and score) loads; NaN elsewhere does not
    "last loss NaN, its score not": ("early-stopping", {EST + "loss_curve_": lambda a: np.r_[a[:-1], np.nan],
                                                        EST + "grad_norms_": lambda a: np.vstack([a[:-1], a[-1:] * np.nan])},
                                     "loss_curve_.*diverged"),
    "last loss NaN, its norms not": ("early-stopping", {EST + "loss_curve_": lambda a: np.r_[a[:-1], np.nan]},
                                     "loss_curve_.*NaN"),
    "first loss NaN with early stopping": ("early-stopping", {EST + "loss_curve_": lambda a: np.r_[np.nan, a[1:]]},
                                           "loss_curve_.*NaN"),
    "network loss curve all NaN": ("network", {NET + "loss_curve_": _nan_like}, "loss_curve_.*NaN"),
    "network grad norms a row short": ("network", {NET + "grad_norms_": lambda a: a[:-1]}, "grad_norms_.*shape"),
    "network grad norms inf": ("network", {NET + "grad_norms_": lambda a: a + np.inf}, "grad_norms_.*inf"),
    # config
    "best loss NaN": ("adam", _set(FITTED + ("best_loss_",), float("nan")), "best_loss_"),
    "best loss inf after epochs": ("adam", _set(FITTED + ("best_loss_",), float("inf")), "best_loss_"),
    "loss_ inf": ("adam", _set(FITTED + ("loss_",), float("inf")), "loss_"),
    "best score without scores": ("adam", _set(FITTED + ("best_validation_score_",), 0.9),
                                  "best_validation_score_"),
    "best score NaN": ("early-stopping", _set(FITTED + ("best_validation_score_",), float("nan")),
                       "best_validation_score_"),
    "scores without best score": ("early-stopping", _set(FITTED + ("best_validation_score_",), None),
                                  "best_validation_score_"),
    "network loss curve without norms": ("network", lambda c: c["network"].pop("grad_norms_"), "grad_norms_"),
}


@pytest.mark.parametrize("case", sorted(HISTORY_TAMPERING))
def test_tampered_history_raises_value_error(tmp_path, data, case):
    kind, edit, match = HISTORY_TAMPERING[case]
    path, stored = _history_file(tmp_path, data, kind)
    load(path)  # the untouched file loads
    if isinstance(edit, dict):
        tamper(path, arrays={name: change(stored[name]) for name, change in edit.items()})
    else:
        tamper(path, edit_config=edit, drop=["network.grad_norms_.npy"] if "without norms" in case else ())
    with pytest.raises(ValueError, match=match):
        load(path)


def test_history_that_fit_can_record_loads(tmp_path, data):
    # scikit-learn records NaN for the validation score of non-finite predictions
    path, stored = _history_file(tmp_path, data, "early-stopping")
    scores = stored[EST + "validation_scores_"].copy()
    scores[-1] = np.nan
    tamper(path, arrays={EST + "validation_scores_": scores})
    assert np.isnan(load(path).validation_scores_[-1])
    # a Network whose first epoch failed: an empty history
    net = Network([5, 3], output_activation="softmax", loss="log_loss", random_state=0)
    net.loss_curve_, net.grad_norms_ = [], np.empty((0, 1))
    loaded = round_trip(net, tmp_path, "empty.fastmlp")
    assert loaded.loss_curve_ == [] and loaded.grad_norms_.shape == (0, 1)


def test_pickle_inside_is_refused_and_never_run(saved, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    # An object array (pickled) in place of the parameters.
    obj = np.empty(1, dtype=object)
    obj[0] = Payload()
    entries = _entries(saved)
    entries["network.params.npy"] = _npy(obj, allow_pickle=True)
    _write(saved, entries)
    with pytest.raises(ValueError, match="Python objects"):
        load(saved)
    # A raw pickle as an entry, under an .npy name and under its own name.
    for name in ("network.params.npy", "model.pkl"):
        entries = _entries(saved)
        entries[name] = pickle.dumps(Payload())
        _write(saved, entries)
        with pytest.raises(ValueError):
            load(saved)
    assert not marker.exists()


def test_loading_never_imports_what_the_file_names(saved):
    assert "this" not in sys.modules  # importing it prints the Zen of Python
    for model in ("this", "this.Network", "fastmlp.network.Network", "builtins.eval"):
        tamper(saved, edit_config=_set(("model",), model))
        with pytest.raises(ValueError, match="model"):
            load(saved)
    assert "this" not in sys.modules


def test_damaged_files_raise_value_error(saved, tmp_path):
    blob = saved.read_bytes()
    params_at = blob.index(b"network.params.npy")
    damaged = {
        "empty": b"",
        "not a zip": b"hello, world\n" * 10,
        "truncated to half": blob[: len(blob) // 2],
        "truncated by one byte": blob[:-1],
        "truncated central directory": blob[: len(blob) - 30],
        "bit flip in the parameters": blob[: params_at + 200] + bytes([blob[params_at + 200] ^ 0xFF])
        + blob[params_at + 201:],
    }
    for name, content in damaged.items():
        path = tmp_path / name.replace(" ", "_")
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a valid fastmlp model file"):
            load(path)


def test_broken_entries_raise_value_error(saved):
    cases = {
        "missing config": (dict(drop=["config.json"]), "config.json is missing"),
        "missing array": (dict(drop=["network.params.npy"]), "missing"),
        "config not JSON": (dict(extra={"config.json": b"{not json"}), "JSON"),
        "config not UTF-8": (dict(extra={"config.json": b"\xff\xfe{}"}), "JSON"),
        "config a list": (dict(extra={"config.json": b"[1, 2]"}), "JSON object"),
        "duplicate JSON key": (dict(extra={"config.json": b'{"format": "fastmlp", "format": "x"}'}), "repeats"),
        "npy header garbage": (dict(extra={"network.params.npy": b"\x93NUMPY\x01\x00garbage"}), "network.params"),
        "compressed entries": (dict(compression=zipfile.ZIP_DEFLATED), "compressed"),
    }
    original = _entries(saved)
    for name, (kwargs, match) in cases.items():
        _write(saved, original)
        tamper(saved, **kwargs)
        with pytest.raises(ValueError, match=match):
            load(saved)


@pytest.fixture
def saved_schedule(tmp_path):
    from fastmlp.schedules import LinearWarmup, ReduceOnPlateau

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    clf = MLPClassifier(hidden_layer_sizes=(3,), learning_rate=LinearWarmup(ReduceOnPlateau(), warmup_epochs=1),
                        random_state=0)
    for _ in range(2):
        clf.partial_fit(X, y, classes=[0, 1])
    path = tmp_path / "schedule.fastmlp"
    clf.save(path)
    assert fastmlp.load(path)._lr_run[1] == 2
    return path


LR = ("estimator", "params", "learning_rate")
SCHEDULE_TAMPERING = {
    "unknown schedule class": (_set(LR + ("schedule",), "os.system"), "schedule"),
    "extra schedule parameter": (_set(LR + ("params", "evil"), 1), "unexpected keys"),
    "bad schedule parameter": (_set(LR + ("params", "warmup_epochs"), -3), "warmup_epochs"),
    "string in a wrapped schedule": (_set(LR + ("params", "schedule", "params", "factor"), "0.1"), "factor"),
    "nested too deep": (lambda c: c["estimator"]["params"]["learning_rate"]["params"].update(schedule=_deep(6)),
                        "nested"),
    "run state of the wrong keys": (_set(FITTED + ("_lr_run", "state"), {"rate": 1.0}), "state"),
    "run state not a number": (_set(FITTED + ("_lr_run", "state", "schedule__rate"), "x"), "numbers"),
    "negative run epoch": (_set(FITTED + ("_lr_run", "epoch"), -1), "epoch"),
    "run without a schedule": (_set(LR, "constant"), "learning_rate is 'constant'"),
}


def _deep(n):
    inner = {"schedule": "StepDecay", "params": {"step_size": 1, "gamma": 0.5}}
    for _ in range(n):
        inner = {"schedule": "LinearWarmup", "params": {"schedule": inner, "warmup_epochs": 1, "start_factor": 0.1,
                                                        "per_batch": False}}
    return inner


@pytest.mark.parametrize("case", sorted(SCHEDULE_TAMPERING))
def test_tampered_schedule_raises_value_error(saved_schedule, case):
    edit, match = SCHEDULE_TAMPERING[case]
    tamper(saved_schedule, edit_config=edit)
    with pytest.raises(ValueError, match=match):
        load(saved_schedule)


# ---------------------------------------------------------------- NetworkEnsemble


def _ensemble(tmp_path, fitted=True):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(60, 4)), rng.normal(size=(60, 2))
    ens = fastmlp.NetworkEnsemble([4, 6, 2], n_members=3, random_state=1, dropout=0.1,
                                  member_params=[{"alpha": 1e-3}, {"random_state": 9, "dropout": 0.3}, {}])
    if fitted:
        ens.fit(X, Y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    path = tmp_path / "ens.fastmlp"
    ens.save(path)
    return ens, path, X, Y


@pytest.mark.parametrize("fitted", [True, False])
def test_network_ensemble_round_trip_then_fit_as_the_original(tmp_path, fitted):
    ens, path, X, Y = _ensemble(tmp_path, fitted)
    loaded = load(path)
    assert type(loaded) is fastmlp.NetworkEnsemble
    assert loaded.member_params == ens.member_params and loaded.seeds_ == ens.seeds_
    assert_array_equal(loaded.forward(X), ens.forward(X))
    if fitted:
        assert_array_equal(loaded.loss_curve_, ens.loss_curve_)
        assert_array_equal(loaded.grad_norms_, ens.grad_norms_)
        for a, b in zip(loaded._members, ens._members):
            assert a.dead_units_ == b.dead_units_
    else:
        assert not hasattr(loaded, "loss_curve_")
    # the generators travel: both continue alike (shuffles and dropout masks)
    for model in (ens, loaded):
        model.fit(X, Y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    assert_array_equal(loaded.forward(X), ens.forward(X))
    assert_array_equal(loaded.loss_curve_, ens.loss_curve_)


ENSEMBLE_TAMPERING = {
    "fewer members than n_members": (lambda c: c["network"]["members"].pop(), "members"),
    "n_members zero": (_set(("network", "n_members"), 0), "n_members"),
    "a member of another shape": (_set(("network", "members", 1, "activation"), "tanh"), "differs from member 0"),
    "a seed that is not member_params'": (_set(("network", "seeds_", 1), 8), "seeds_"),
    "unknown member_params key": (_set(("network", "member_params", 0, "momentum"), 0.5), "member_params"),
    "string member alpha": (_set(("network", "member_params", 0, "alpha"), "0.1"), "alpha"),
    "curve without norms": (lambda c: c["network"].pop("grad_norms_"), "without the other"),
    "extra ensemble key": (_set(("network", "estimators_"), []), "unexpected keys"),
    "epochs counted past the curves": (_set(("network", "n_epochs_", 1), 3), r"n_epochs_\.1"),
    "a record going on after its epochs": (_set(("network", "n_epochs_", 1), 1), "after its n_epochs_"),
    "curves longer than every member's epochs": (_set(("network", "n_epochs_"), [1, 1, 1]), "does not fit"),
    "epochs of fewer members": (_set(("network", "n_epochs_"), [2, 2]), "n_epochs_ must list"),
    # (found by probing: a member's dropout in member_params that is not its own, or not a rate, loaded)
    "a member's dropout not its own": (_set(("network", "member_params", 1, "dropout"), 0.5), "dropout"),
    "a member's dropout not a rate": (_set(("network", "member_params", 1, "dropout"), "x"), "dropout"),
    "epochs without curves": (lambda c: [c["network"].pop(k) for k in ("loss_curve_", "grad_norms_")],
                              "'n_epochs_' without 'loss_curve_'"),
}


@pytest.mark.parametrize("case", sorted(ENSEMBLE_TAMPERING))
def test_tampered_network_ensemble_raises_value_error(tmp_path, case):
    _, path, _, _ = _ensemble(tmp_path)
    edit, match = ENSEMBLE_TAMPERING[case]
    tamper(path, edit_config=edit)
    with pytest.raises(ValueError, match=match):
        load(path)


def test_network_ensemble_file_without_n_epochs_loads_every_epoch(tmp_path):
    # files written before early stopping: every member trained every epoch of its curve
    ens, path, _, _ = _ensemble(tmp_path)
    tamper(path, edit_config=lambda c: c["network"].pop("n_epochs_"))
    assert_array_equal(load(path).n_epochs_, [2, 2, 2])
    state = pickle.loads(pickle.dumps(ens)).__dict__.copy()
    del state["n_epochs_"]
    old = fastmlp.NetworkEnsemble.__new__(fastmlp.NetworkEnsemble)
    old.__setstate__(state)
    assert_array_equal(old.n_epochs_, [2, 2, 2])


def test_network_ensemble_member_with_a_record_of_its_own_raises_value_error(tmp_path):
    _, path, _, _ = _ensemble(tmp_path)
    where = "network.members.0.network"

    def edit(config):
        config["network"]["members"][0].update(loss_curve_={"array": f"{where}.loss_curve_"},
                                                grad_norms_={"array": f"{where}.grad_norms_"})
    tamper(path, edit_config=edit, arrays={f"{where}.loss_curve_": np.ones(2), f"{where}.grad_norms_": np.ones((2, 2))})
    with pytest.raises(ValueError, match="loss curve of its own"):
        load(path)


def test_network_ensemble_curves_of_the_wrong_shape_raise_value_error(tmp_path):
    _, path, _, _ = _ensemble(tmp_path)
    tamper(path, arrays={"network.grad_norms_": np.zeros((3, 2, 5))})
    with pytest.raises(ValueError, match="do not fit"):
        load(path)
    _, path, _, _ = _ensemble(tmp_path)
    tamper(path, arrays={"network.loss_curve_": np.full((3, 2), np.nan)})
    with pytest.raises(ValueError, match="loss_curve_"):
        load(path)
    # the validation curve: one value per member and epoch, as the loss curve
    ens, path, X, Y = _ensemble(tmp_path)
    ens.fit(X, Y, epochs=2, validation_data=(X[:10], Y[:10]))
    ens.save(path)
    assert_array_equal(load(path).validation_loss_curve_, ens.validation_loss_curve_)
    tamper(path, arrays={"network.validation_loss_curve_": np.zeros((3, 5))})
    with pytest.raises(ValueError, match="validation_loss_curve_.*does not fit"):
        load(path)


def test_a_schedule_that_only_partial_fit_could_run_saves_and_loads(tmp_path):
    # found by probing: LinearWarmup(warmup_epochs=5) with max_iter=5, which fit refuses and partial_fit
    # (open-ended) runs, was checked against max_iter by load, which refused the file save had written
    from fastmlp.schedules import LinearWarmup

    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, learning_rate=LinearWarmup(warmup_epochs=5),
                        random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.save(tmp_path / "m.fmlp")
    loaded, copied = load(tmp_path / "m.fmlp"), pickle.loads(pickle.dumps(clf))
    loaded.partial_fit(X, y)
    copied.partial_fit(X, y)
    assert_array_equal(loaded.predict_proba(X), copied.predict_proba(X))
    # a schedule's own bad parameter is still refused
    clf.learning_rate.warmup_epochs = -1
    clf.save(tmp_path / "bad.fmlp")
    with pytest.raises(ValueError, match="warmup_epochs"):
        load(tmp_path / "bad.fmlp")


def test_schedule_runs_after_set_params_save_load_and_go_on_as_in_memory(tmp_path):
    # found by probing: a run kept from an earlier schedule (learning_rate or learning_rate_init set since) was
    # continued in memory but rebuilt from the new parameters by load (other rates), or made the file unloadable
    # ("a schedule's run, but learning_rate is 'constant'"); a Checkpoint's file lacked the run (its
    # partial_fit restarted the schedule)
    from fastmlp.callbacks import Checkpoint
    from fastmlp.schedules import ExponentialDecay, ReduceOnPlateau, StepDecay

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = X @ np.array([1.0, -1.0, 0.5])
    path = tmp_path / "m.fmlp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor(hidden_layer_sizes=(4,), learning_rate=StepDecay(), max_iter=5, random_state=0).fit(X, y)
        for change in (dict(learning_rate="constant"), dict(learning_rate=ReduceOnPlateau()),
                       dict(learning_rate_init=1e-4)):
            est.set_params(**change)
            est.save(path)
            load(path)
        a = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate=StepDecay(step_size=1, gamma=0.5),
                         learning_rate_init=0.05, random_state=0)
        a.partial_fit(X, y)
        a.partial_fit(X, y)
        a.set_params(learning_rate=ExponentialDecay(gamma=0.1))  # a new schedule: a run of its own from here
        b = pickle.loads(pickle.dumps(a))
        a.save(path)
        c = load(path)
        for m in (a, b, c):
            m.partial_fit(X, y)
        assert [m.history_["learning_rate"][-1] for m in (a, b, c)] == [0.05] * 3
        live = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", max_iter=6, random_state=0,
                            learning_rate=StepDecay(1, 0.5), learning_rate_init=0.01)
        live.set_callbacks(Checkpoint(tmp_path / "best.fmlp"))
        live.fit(X, y)
        best = load(tmp_path / "best.fmlp")  # (the last epoch is the best here)
        best.set_callbacks()
        live.set_callbacks()
        best.partial_fit(X, y)
        live.partial_fit(X, y)
    assert best.history_["learning_rate"][-1] == live.history_["learning_rate"][-1] == 0.01 * 0.5 ** 6


def test_a_divergence_then_training_with_early_stopping_switched_off_saves_and_loads(tmp_path):
    # found by probing: scores and epochs no longer line up once early stopping is switched between calls, and
    # the check of the diverged epoch's NaN refused the file
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (3 * X[:, 0] + X[:, 1] ** 2) * 1e8
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e4, max_iter=6,
                       early_stopping=True, random_state=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        assert np.isnan(est.loss_curve_[-1])
        est.set_params(early_stopping=False, learning_rate_init=1e-6).partial_fit(X, y)
    est.save(tmp_path / "m.fmlp")
    loaded = load(tmp_path / "m.fmlp")
    assert_array_equal(loaded.loss_curve_, est.loss_curve_)
    assert_array_equal(loaded.predict(X), est.predict(X))


def test_a_run_whose_schedule_derives_a_parameter_goes_on_after_fit():
    # (review: a run is compared with the schedule as its start checked it: CosineAnnealing() takes T_max from
    # fit's max_iter, and partial_fit after fit must go on with that run, not start an open-ended one it cannot)
    from fastmlp.schedules import CosineAnnealing

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = X @ np.array([1.0, -1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=5, learning_rate=CosineAnnealing(),
                           random_state=0).fit(X, y)
        est.partial_fit(X, y)
    assert est._lr_run_goes_on() and est.history_["learning_rate"][-1] == 0.0  # (epoch 5 of T_max=5: eta_min)


def test_probed_file_edges(tmp_path):
    # found by probing: load read a device to its end (21 GB, then killed), save's errors named its temporary
    # file, a tampered multilabel binarizer loaded and predicted other labels
    import json
    import zipfile

    with pytest.raises(ValueError, match="not a regular file"):
        fastmlp.load("/dev/zero")
    net = fastmlp.Network([3, 2, 1], random_state=0)
    with pytest.raises(ValueError, match="its folder .* does not exist"):
        net.save(tmp_path / "no such folder" / "m.fastmlp")
    with pytest.raises(ValueError, match="is a folder"):
        net.save(tmp_path)
    with pytest.raises(ValueError, match="is empty"):
        net.save("")
    with pytest.raises(ValueError, match="is a folder"):  # (a trailing separator: a folder's name)
        net.save(str(tmp_path / "new") + os.sep)
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    # and a Checkpoint refuses them before the first epoch, the weights as they were
    from fastmlp.callbacks import Checkpoint

    before = net.coefs_[0].copy()
    for bad in (tmp_path, ""):
        with pytest.raises(ValueError, match="is a folder|is empty"):
            net.fit(np.ones((4, 3)), np.ones(4), epochs=1, callbacks=[Checkpoint(bad)])
        np.testing.assert_array_equal(net.coefs_[0], before)
    rng = np.random.default_rng(0)
    X, Y = rng.random((30, 3)), (rng.random((30, 2)) > 0.5).astype(int)
    clf = fastmlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit(X, Y)
    path = tmp_path / "multilabel.fastmlp"
    clf.save(path)
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    for key, value in (("neg_label", -1), ("pos_label", 7), ("sparse_output", True)):
        config = json.loads(entries["config.json"])
        config["estimator"]["fitted"]["_label_binarizer"][key] = value
        tampered = tmp_path / f"{key}.fastmlp"
        with zipfile.ZipFile(tampered, "w") as zf:
            for name, data in entries.items():
                zf.writestr(name, json.dumps(config) if name == "config.json" else data)
        with pytest.raises(ValueError, match="label binarizer has neg_label=0, pos_label=1"):
            fastmlp.load(tampered)


def test_a_memory_mapped_model_predicts_and_refuses_to_train(tmp_path):
    # found by probing: joblib.load(..., mmap_mode="r") gives read-only weights; predict worked, partial_fit failed
    # inside the epoch with NumPy's "assignment destination is read-only" and left n_iter_ reset
    joblib = pytest.importorskip("joblib")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    reg = fastmlp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    net = fastmlp.Network([4, 5, 1], random_state=0).fit(X, y, epochs=2)
    ens = fastmlp.NetworkEnsemble([4, 5, 1], n_members=2, random_state=0).fit(X, y, epochs=2)
    for model, train in ((reg, lambda m: m.partial_fit(X, y)), (net, lambda m: m.fit(X, y, epochs=1)),
                         (ens, lambda m: m.fit(X, y, epochs=1))):
        path = tmp_path / f"{type(model).__name__}.joblib"
        joblib.dump(model, path)
        mapped = joblib.load(path, mmap_mode="r")
        np.testing.assert_array_equal(mapped.predict(X), model.predict(X))
        before = (getattr(mapped, "n_iter_", None), len(mapped.loss_curve_))
        with pytest.raises(ValueError, match="read-only .*memory-mapped"):
            train(mapped)
        assert (getattr(mapped, "n_iter_", None), len(mapped.loss_curve_)) == before
        np.testing.assert_array_equal(mapped.predict(X), model.predict(X))
