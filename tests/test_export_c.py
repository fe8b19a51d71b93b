"""fastmlp.export_c: the C header, compiled by the system C compiler, gives what predict gives.

The harness writes each model's header, one C program that includes them all
and runs each model on its rows (read from and written to binary files), and
compiles it once with ``cc -std=c99 -Wall -Wextra -Werror -pedantic -O2``.
Without a C compiler those tests skip; the bad-input tests run everywhere.
"""
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import fastmlp
from _helpers import repository
from fastmlp import MLPClassifier, MLPRegressor, Network, _registry

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]


def _working_cc():
    """The first of $CC, cc, gcc and clang that compiles a C file here, or None (CC=false, as
    tools/check_wheel.sh sets to keep pip from compiling, is not a compiler)."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "probe.c").write_text("int main(void) { return 0; }\n")
        for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
            path = shutil.which(name) if name else None
            if path and subprocess.run([path, *CFLAGS, "probe.c", "-o", "probe"], cwd=folder,
                                       capture_output=True).returncode == 0:
                return path
    return None


CC = _working_cc()
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")

N_ROWS = 1000
# max relative difference to predict allowed, per dtype (the issue's bounds)
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
DTYPES = [np.float32, np.float64]
HIDDEN = sorted(_registry.ACTIVATIONS)
OUTPUTS = sorted(_registry.OUTPUTS)


# --------------------------------------------------------------------------
# Harness


class Case:
    """One header in the program: name, model, rows X (of the header's dtype), what predict writes."""

    def __init__(self, name, model, X, dtype=None, labels=None):
        self.name, self.model, self.dtype = name, model, np.dtype(dtype or X.dtype)
        self.X = np.ascontiguousarray(X, dtype=self.dtype)
        self.labels = labels  # None, "index" (predict returns one int) or "indicator" (writes one per output)


def _main_c(cases):
    lines = ["#include <stdio.h>", *(f'#include "{c.name}.h"' for c in cases), ""]
    for c in cases:
        N, T = c.name.upper(), {4: "float", 8: "double"}[c.dtype.itemsize]
        lines += [
            f"static int run_{c.name}(void)", "{",
            f'    FILE *in = fopen("{c.name}.in", "rb"), *out = fopen("{c.name}.out", "wb");',
            f"    {T} x[{N}_N_INPUTS], y[{N}_N_OUTPUTS];",
            f"    int r, k, labels[{N}_N_OUTPUTS];",
            "    if (!in || !out) return 1;",
            f"    for (r = 0; r < {len(c.X)}; r++) {{",
            "        if (fread(x, sizeof x, 1, in) != 1) return 1;",
            f"        {c.name}_forward(x, y);",
            "        fwrite(y, sizeof y, 1, out);",
            {None: "        k = labels[0] = 0;",
             "index": f"        k = {c.name}_predict(x);",
             "indicator": f"        k = 0;\n        {c.name}_predict(x, labels);"}[c.labels],
            "        fwrite(&k, sizeof k, 1, out);",
            "        fwrite(labels, sizeof labels, 1, out);",
            "    }",
            "    fclose(in);",
            "    return fclose(out) != 0;",
            "}", ""]
    lines += ["int main(void)", "{", "    int failed = 0;", *(f"    failed |= run_{c.name}();" for c in cases),
              "    return failed;", "}"]
    return "\n".join(lines) + "\n"


def run_c(cases, folder, **compile_kwargs):
    """Export, compile and run every case; per case (outputs, predict's int, predict's indicator rows)."""
    for c in cases:
        fastmlp.export_c(c.model, folder / f"{c.name}.h", name=c.name, dtype=c.dtype)
        c.X.tofile(folder / f"{c.name}.in")
    (folder / "main.c").write_text(_main_c(cases))
    build = subprocess.run([CC, *CFLAGS, "main.c", "-o", "main", "-lm"], cwd=folder, capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(folder / "main")], cwd=folder, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    results = []
    for c in cases:
        n_out = fastmlp_outputs(c.model)
        row = np.dtype([("y", c.dtype, (n_out,)), ("k", np.intc), ("labels", np.intc, (n_out,))])
        data = np.fromfile(folder / f"{c.name}.out", dtype=row)
        assert len(data) == len(c.X)
        results.append(data)
    return results


def model_dtype(model):
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    est = est.estimators_[0] if hasattr(est, "estimators_") else est  # (an ensemble: its members')
    return est.coefs_[0].dtype


def fastmlp_outputs(model):
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    return est.layer_sizes[-1] if isinstance(est, Network) else est.n_outputs_


def max_rel_diff(c_out, expected, model, X):
    """max |c - p| / |p| over every value; for an identity output, / max(|p|, the magnitude of its terms).

    An identity output is a sum, sum_i a_i W_ij + b_j, that can cancel to
    nearly 0 (a regression target near 0): rounding in either program is
    then relative to the terms, sum_i |a_i W_ij| + |b_j|, not to the sum.
    The other outputs (probabilities, exp) are relative to each value.
    """
    c_out, expected = np.asarray(c_out, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = np.abs(expected)
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    if getattr(est, "output_activation", getattr(est, "out_activation_", None)) == "identity":
        X = model[:-1].transform(X) if hasattr(model, "steps") else np.asarray(X, dtype=np.float64)
        for member in getattr(est, "estimators_", [est]):  # (an ensemble: the largest terms of a member)
            A = X
            hidden = _registry.ACTIVATIONS[member.activation]
            slopes = iter(member.prelu_slopes_)
            for W, b in zip(member.coefs_[:-1], member.intercepts_[:-1]):
                Z = A @ np.asarray(W, dtype=np.float64) + b
                A = hidden.forward(Z, next(slopes)) if hidden.learnable_slope else hidden.forward(Z)
            terms = (np.abs(A) @ np.abs(np.asarray(member.coefs_[-1], dtype=np.float64))
                     + np.abs(member.intercepts_[-1]))
            scale = np.maximum(scale, terms.reshape(scale.shape))
    # a subnormal keeps only some of its bits: measured against the dtype's smallest normal number
    scale = np.maximum(scale, np.finfo(model_dtype(model)).tiny)
    diff = np.abs(c_out - expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.where(diff == 0, 0.0, diff / scale).max())


# --------------------------------------------------------------------------
# Models


def network(activation, output, dtype, sizes=(4, 6, 5, 3), seed=0):
    loss = next(loss for a, loss in OUTPUTS if a == output)
    net = Network(list(sizes), activation=activation, output_activation=output, loss=loss, dtype=dtype,
                  random_state=seed)
    rng = np.random.default_rng(seed)
    # weights large enough that every activation's curved parts (tanh saturation, ReLU's negative
    # side) are reached, small enough that exp outputs stay well within the dtype
    net.coefs_ = [rng.normal(0, 0.6, W.shape) for W in net.coefs_]
    net.intercepts_ = [rng.normal(0, 0.5, b.shape) for b in net.intercepts_]
    net.prelu_slopes_ = [rng.uniform(-0.3, 0.6, s.shape) for s in net.prelu_slopes_]
    return net


def rows(n_features, seed=1, n=N_ROWS):
    return np.random.default_rng(seed).normal(0, 1.5, (n, n_features))


def fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def classification_data(n_classes, seed=0, n=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, 5))
    score = X @ rng.normal(0, 1, (5, n_classes)) + rng.normal(0, 0.5, (n, n_classes))
    return X, score.argmax(axis=1)


# --------------------------------------------------------------------------
# Exactness


@needs_cc
def test_every_activation_and_output_matches_predict(tmp_path):
    cases = []
    for dtype in DTYPES:
        for activation in HIDDEN:
            for output in _registry.OUTPUT_ACTIVATIONS:  # (the loss does not change what a model predicts)
                name = f"n_{activation}_{output}_{np.dtype(dtype).name}"
                cases.append(Case(name, network(activation, output, dtype), rows(4), dtype))
        # no hidden layer (no scratch), and three hidden layers (the scratch's both ends, twice)
        cases.append(Case(f"plain_{np.dtype(dtype).name}", network("relu", "identity", dtype, (4, 3)), rows(4),
                          dtype))
        cases.append(Case(f"deep_{np.dtype(dtype).name}",
                          network("tanh", "softmax", dtype, (4, 7, 3, 9, 2)), rows(4), dtype))
    # a float64 model written as float: float32's bound against the float64 predict
    cases.append(Case("as_float32", network("swish", "softmax", np.float64), rows(4), np.float32))
    results = run_c(cases, tmp_path)
    for c, data in zip(cases, results):
        expected = c.model.predict(c.X)
        assert max_rel_diff(data["y"], expected, c.model, c.X) <= RTOL[c.dtype], c.name


def estimator_cases(dtype):
    """A Case of each estimator kind and label type, and of two pipelines, fitted in dtype."""
    d = np.dtype(dtype).name
    X, y4 = classification_data(4)
    X_rows = classification_data(4, seed=1, n=N_ROWS)[0]  # new rows from the training distribution
    # Adam's 60 epochs: weights of a trained model's size (|W| <= 2), as regularised fits have; measured
    # here, float32 differs by up to 0.8e-5 (on probabilities of 1e-16), float64 by up to 1e-14. A sharp
    # L-BFGS fit with |W| ~ 6 differed by up to 2.3e-5 in float32: the engine's BLAS rounds once per
    # multiply-add (FMA), the header twice, and large weights amplify the difference.
    small = dict(hidden_layer_sizes=(8, 6), solver="adam", learning_rate_init=0.01, max_iter=60, random_state=0,
                 dtype=d)
    made = []

    def add(name, model, X_fit, y, labels):
        made.append(Case(f"{name}_{d}", fitted(model, X_fit, y), X_rows, dtype, labels))

    add("binary", MLPClassifier(activation="tanh", **small), X, np.where(y4 > 1, 7, 3), "index")
    add("multiclass", MLPClassifier(**small), X, np.array(["ant", "bee", "cat", "dog"])[y4], "index")
    add("multilabel", MLPClassifier(activation="logistic", **small), X, np.eye(4, dtype=int)[y4][:, :3]
        | (X[:, :3] > 1), "indicator")
    add("oneclass", MLPClassifier(**small), X, np.full(len(X), "only"), "index")
    add("bigint", MLPClassifier(activation="swish", **small), X, (y4 + 1) * 2 ** 40, "index")
    add("floatlabels", MLPClassifier(activation="leaky_relu", **small), X, y4 + 1.0, "index")
    rng = np.random.default_rng(3)
    Y2 = np.c_[X @ rng.normal(0, 1, 5), np.sin(X[:, 0])]
    add("regressor", MLPRegressor(activation="prelu", **small), X, Y2, None)
    add("regressor1d", MLPRegressor(**small), X, Y2[:, 0], None)
    add("poisson", MLPRegressor(loss="poisson", **small), X, rng.poisson(np.exp(0.5 * X[:, 0])), None)
    add("gamma", MLPRegressor(loss="gamma", **small), X, rng.gamma(2.0, np.exp(0.3 * X[:, 0])), None)
    add("huber", MLPRegressor(loss="huber", huber_delta=0.5, **small), X, Y2, None)
    add("quantile", MLPRegressor(loss="quantile", quantile=0.9, **small), X, Y2[:, 0], None)
    add("scaled", make_pipeline(StandardScaler(), MLPClassifier(**small)), 3 * X + 5, y4, "index")
    add("scaled2", make_pipeline(StandardScaler(with_mean=False), "passthrough", StandardScaler(with_std=False),
                                 MLPRegressor(**small)), 3 * X + 5, Y2, None)
    return made


def expected_outputs(case):
    """What the header's forward writes, from the estimator's own API: predict_proba's column 1 for
    binary, predict_proba for the other classifiers, predict (as 2-D) for a regressor."""
    model = case.model
    if hasattr(model, "predict_proba"):
        P = model.predict_proba(case.X)
        return P[:, 1:] if fastmlp_outputs(model) == 1 else P
    return model.predict(case.X).reshape(len(case.X), -1)


@needs_cc
def test_estimators_and_pipelines_match_predict(tmp_path):
    cases = [c for dtype in DTYPES for c in estimator_cases(dtype)]
    _assert_as_predict(cases, run_c(cases, tmp_path))


def _assert_as_predict(cases, results):
    """Each case's header wrote what its model's predict_proba / predict give (labels where clear)."""
    for c, data in zip(cases, results):
        rtol = RTOL[c.dtype]
        P = expected_outputs(c)
        assert max_rel_diff(data["y"], P, c.model, c.X) <= rtol, c.name
        predicted = c.model.predict(c.X)
        if c.labels == "indicator":
            clear = np.abs(P.astype(np.float64) - 0.5) > rtol * 0.5
            assert np.array_equal(data["labels"][clear], predicted[clear]), c.name
        elif c.labels == "index":
            est = c.model.steps[-1][1] if hasattr(c.model, "steps") else c.model
            if P.shape[1] == 1:
                clear = np.abs(P[:, 0].astype(np.float64) - 0.5) > rtol * 0.5
            else:
                top2 = np.sort(P.astype(np.float64), axis=1)[:, -2:]
                clear = top2[:, 1] - top2[:, 0] > 2 * rtol * top2[:, 1]
            assert clear.mean() > 0.99, c.name
            assert np.array_equal(est.classes_[data["k"][clear]], predicted[clear]), c.name


@needs_cc
def test_ensembles_match_their_predict(tmp_path):
    # the mean of the members' outputs, as the ensemble's predict_proba / predict average them
    X, y4 = classification_data(4)
    X_rows = classification_data(4, seed=1, n=N_ROWS)[0]
    rng = np.random.default_rng(3)
    Y2 = np.c_[X @ rng.normal(0, 1, 5), np.sin(X[:, 0])]
    cases = []
    for dtype in DTYPES:
        d = np.dtype(dtype).name
        small = dict(hidden_layer_sizes=(8, 6), solver="adam", learning_rate_init=0.01, max_iter=60,
                     random_state=0, dtype=d, n_members=3)
        for name, model, y, labels in [
            ("binary", fastmlp.MLPEnsembleClassifier(activation="tanh", **small), np.where(y4 > 1, 7, 3), "index"),
            ("multiclass", fastmlp.MLPEnsembleClassifier(**small), np.array(["ant", "bee", "cat", "dog"])[y4],
             "index"),
            ("multilabel", fastmlp.MLPEnsembleClassifier(activation="logistic", **small),
             np.eye(4, dtype=int)[y4][:, :3] | (X[:, :3] > 1), "indicator"),
            ("regressor", fastmlp.MLPEnsembleRegressor(activation="prelu", **small), Y2, None),
            ("poisson", fastmlp.MLPEnsembleRegressor(loss="poisson", **small), rng.poisson(np.exp(0.5 * X[:, 0])),
             None),
            ("scaled", make_pipeline(StandardScaler(), fastmlp.MLPEnsembleClassifier(**small)), y4, "index"),
        ]:
            X_fit = 3 * X + 5 if name == "scaled" else X
            cases.append(Case(f"ens_{name}_{d}", fitted(model, X_fit, y), X_rows, dtype, labels))
    one = fitted(fastmlp.MLPEnsembleRegressor(hidden_layer_sizes=(4,), n_members=1, max_iter=20, random_state=0),
                 X, Y2)
    cases.append(Case("ens_one", one, X_rows, np.float64))
    _assert_as_predict(cases, run_c(cases, tmp_path))
    header = (tmp_path / "ens_multiclass_float64.h").read_text()
    assert "MLPEnsembleClassifier (3 members)" in header and "ens_multiclass_float64_member2(x, o);" in header
    assert "ens_multiclass_float64_m2_W1" in header and "ens_multiclass_float64_W1" not in header
    assert "ens_one_W1" in (tmp_path / "ens_one.h").read_text()  # one member: a network's names
    with pytest.raises(NotFittedError, match="MLPEnsembleRegressor is not fitted"):
        fastmlp.export_c(fastmlp.MLPEnsembleRegressor(), tmp_path / "unfitted.h")


@needs_cc
def test_class_tables_hold_the_labels(tmp_path):
    # string labels that C must escape: a quote, a backslash, a trigraph, a comment's end, UTF-8
    X, y5 = classification_data(5)
    strings = np.array(['say "hi"', "back\\slash", "what??/", "end */ of comment", "caf\u00e9"])
    clf = fitted(MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0), X, strings[y5])
    assert len(clf.classes_) == 5
    fastmlp.export_c(clf, tmp_path / "labels.h", name="labels")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "labels.h"\n'
        "int main(void)\n{\n    int k;\n"
        "    for (k = 0; k < LABELS_N_CLASSES; k++) printf(\"%s\\n\", labels_classes[k]);\n"
        "    return 0;\n}\n")
    subprocess.run([CC, *CFLAGS, "main.c", "-o", "main", "-lm"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, check=True).stdout
    assert out.decode("utf-8").splitlines() == list(clf.classes_)
    cxx = shutil.which("c++")
    if cxx is not None:  # a C++ service includes the same header
        subprocess.run([cxx, "-x", "c++", "-std=c++11", *CFLAGS[1:], "-fsyntax-only", "main.c"], cwd=tmp_path,
                       check=True)



@needs_cc
@pytest.mark.parametrize("labels, fmt, ctype", [
    (np.array([np.iinfo(np.int64).min, 5]), "%lld", "long long"),  # no C literal: written as an expression
    (np.array([3, np.iinfo(np.uint64).max], dtype=np.uint64), "%llu", "unsigned long long"),  # was wrapped to -1
    (np.array([-(2 ** 31), 7]), "%lld", "long long"),
])
def test_extreme_integer_labels(tmp_path, labels, fmt, ctype):
    X, y2 = classification_data(2)
    clf = fitted(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, labels[y2])
    fastmlp.export_c(clf, tmp_path / "ints.h", name="ints")
    assert f"static const {ctype} ints_classes" in (tmp_path / "ints.h").read_text()
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "ints.h"\n'
        "int main(void)\n{\n    int k;\n"
        f"    for (k = 0; k < INTS_N_CLASSES; k++) printf(\"{fmt}\\n\", ints_classes[k]);\n"
        "    return 0;\n}\n")
    subprocess.run([CC, *CFLAGS, "main.c", "-o", "main", "-lm"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, check=True).stdout
    assert [int(v) for v in out.decode().split()] == [int(v) for v in clf.classes_]


@needs_cc
def test_a_scaler_with_large_feature_means_is_applied_as_scikit_learn_applies_it(tmp_path):
    # folded into the first layer (W / scale, b - (mean / scale) W), a float32 header cancelled where a feature's
    # mean is large against its spread: 1e-2 off predict_proba at an offset of 1e5, a class changed (probing);
    # now the inputs are scaled first, (x - mean) / scale: float64 to rounding, float32 as its inputs allow
    X, y3 = classification_data(3)
    offset = np.array([1e5, -3e4, 1e3, 0.0] + [0.0] * (X.shape[1] - 4))
    cases = {}
    for dtype in ("float32", "float64"):
        pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(6,), max_iter=40, dtype=dtype,
                                                             random_state=0))
        cases[f"offset_{dtype}"] = fitted(pipe, X + offset, y3)
    Xt = rows(X.shape[1]) + offset
    runs = [Case(key, pipe, Xt, dtype=model_dtype(pipe)) for key, pipe in cases.items()]
    for c, data in zip(runs, run_c(runs, tmp_path)):
        expected = c.model.predict_proba(Xt)
        # (float32: x arrives rounded to float32, 0.008 apart at 1e5, the header's own input: its scaled value
        # is off by up to 0.004 / scale)
        np.testing.assert_allclose(data["y"], expected, rtol=0, atol=1e-12 if c.dtype == np.float64 else 1e-2)
        assert (data["y"].argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.99


def test_header_text(tmp_path):
    """What the header says and holds, without compiling it."""
    net = network("relu", "identity", np.float32)
    path = fastmlp.export_c(net, tmp_path / "net.h", name="net")
    text = (tmp_path / "net.h").read_text()
    assert path == str(tmp_path / "net.h")
    assert "#include <math.h>" not in text  # relu and identity need no libm
    assert "malloc" not in text and "#include" not in text
    assert f"fastmlp {fastmlp.__version__}" in text and net.summary().splitlines()[1] in text
    # the hash is of the weights as written: little-endian float32, in order
    import hashlib
    parts = [a for W, b in zip(net.coefs_, net.intercepts_) for a in (W, b)]
    digest = hashlib.sha256(b"".join(np.asarray(a, "<f4").tobytes() for a in parts)).hexdigest()
    assert f"weights sha256 {digest}" in text
    for l, (fan_in, fan_out) in enumerate(zip(net.layer_sizes[:-1], net.layer_sizes[1:]), start=1):
        act = "identity" if l == net.n_layers_ else "relu"
        assert f"/* layer {l}: ({fan_in}, {fan_out}), {act}:" in text
    # the scratch holds the largest two consecutive hidden layers: (6, 5) -> 11
    assert "#define NET_SCRATCH_SIZE 11 " in text
    # the same model gives the same bytes; float64 gives doubles and a libm-free header too
    (tmp_path / "again").mkdir()
    fastmlp.export_c(net, tmp_path / "again" / "net.h", name="net")
    assert (tmp_path / "again" / "net.h").read_text() == text
    fastmlp.export_c(net, tmp_path / "net64.h", name="net", dtype="float64")
    assert "static const double net_W1[4][6]" in (tmp_path / "net64.h").read_text()
    fastmlp.export_c(network("tanh", "identity", np.float64), tmp_path / "tanh.h")
    assert "#include <math.h>" in (tmp_path / "tanh.h").read_text()


# --------------------------------------------------------------------------
# Bad input


def _assert_nothing_written(folder, before=()):
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)


def test_unfitted_models_are_refused(tmp_path):
    for model in (MLPClassifier(), MLPRegressor(), make_pipeline(StandardScaler(), MLPClassifier())):
        with pytest.raises(NotFittedError, match="model"):
            fastmlp.export_c(model, tmp_path / "m.h")
    X, y = classification_data(2)
    clf = fitted(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, y)
    pipe = make_pipeline(StandardScaler(), "passthrough", clf)  # a fitted estimator after an unfitted scaler
    with pytest.raises(NotFittedError, match="standardscaler"):
        fastmlp.export_c(pipe, tmp_path / "m.h")
    _assert_nothing_written(tmp_path)


def test_unsupported_models_and_steps_are_refused(tmp_path):
    X, y = classification_data(2)
    clf = fitted(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, y)
    with pytest.raises(ValueError, match="'minmaxscaler' \\(MinMaxScaler\\)"):
        fastmlp.export_c(fitted(make_pipeline(MinMaxScaler(), clf), X, y), tmp_path / "m.h")
    with pytest.raises(TypeError, match="last step 'standardscaler'"):
        fastmlp.export_c(make_pipeline(StandardScaler()).fit(X), tmp_path / "m.h")
    from sklearn.neural_network import MLPClassifier as SklearnMLP
    with pytest.raises(TypeError, match="model must be"):
        fastmlp.export_c(fitted(SklearnMLP(hidden_layer_sizes=(3,), max_iter=5), X, y), tmp_path / "m.h")
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("name, error", [
    ("1model", ValueError), ("my-model", ValueError), ("", ValueError), ("mod el", ValueError),
    ("int", ValueError), ("static", ValueError), ("class", ValueError), ("_Bool", ValueError),
    ("__model", ValueError), ("_Model", ValueError), ("caf\u00e9", ValueError), ("model\n", ValueError),
    ("_math", ValueError), ("_model", ValueError),  # (found by probing: _MATH_H is math.h's include guard)
    (None, TypeError), (b"model", TypeError),
])
def test_bad_names_are_refused(tmp_path, name, error):
    with pytest.raises(error, match="name"):
        fastmlp.export_c(network("relu", "identity", np.float64), tmp_path / "m.h", name=name)
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("dtype, error", [
    ("float16", ValueError), (np.int32, ValueError), ("int64", ValueError), (np.complex128, ValueError),
    ("no such type", TypeError), (3.5, TypeError),
])
def test_bad_dtypes_are_refused(tmp_path, dtype, error):
    with pytest.raises(error, match="dtype"):
        fastmlp.export_c(network("relu", "identity", np.float64), tmp_path / "m.h", dtype=dtype)
    _assert_nothing_written(tmp_path)


def test_an_activation_without_a_c_form_is_refused_by_name(tmp_path):
    # what a name added to the registry before its C form meets (the grid test above fails for it too)
    net = network("relu", "identity", np.float64)
    net.__dict__["activation"] = "gelu"  # (a network's activation is fixed: set past the check)
    with pytest.raises(ValueError, match="activation='gelu' has no C form"):
        fastmlp.export_c(net, tmp_path / "m.h")
    net = network("relu", "identity", np.float64)
    net.__dict__["output_activation"] = "softplus"
    with pytest.raises(ValueError, match="output activation 'softplus' has no C form"):
        fastmlp.export_c(net, tmp_path / "m.h")
    _assert_nothing_written(tmp_path)


def test_weights_beyond_the_dtype_are_refused(tmp_path):
    net = network("relu", "identity", np.float64)
    net.coefs_[1][0, 0] = 1e300  # fine in float64, infinite in float32
    fastmlp.export_c(net, tmp_path / "m64.h")
    with pytest.raises(ValueError, match="dtype=float32: .*model_W2"):
        fastmlp.export_c(net, tmp_path / "m.h", dtype="float32")
    _assert_nothing_written(tmp_path, ["m64.h"])


def test_feature_names_and_file_name_in_the_comment(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = classification_data(3)
    frame = pd.DataFrame(X, columns=["age", "height", "weight */", "x4", "x5"])
    pipe = fitted(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(3,), max_iter=5,
                                                                random_state=0)), frame, y)
    fastmlp.export_c(pipe, tmp_path / "my_model.h", name="m")
    text = (tmp_path / "my_model.h").read_text()
    assert text.startswith("/*\n * my_model.h: a fastmlp MLPClassifier")
    assert "inputs: x[0] age, x[1] height, x[2] weight * /, x[3] x4, x[4] x5" in text
    assert "StandardScaler, (x - mean) / scale over" in text and "(x[i] - m_x_mean[i]) / m_x_scale[i]" in text


def test_text_beyond_ascii_in_the_comment_and_labels_too_long_for_c(tmp_path):
    # found by probing: a feature name or a repr beyond ASCII raised UnicodeEncodeError; a label longer than
    # C99's 4095-character string literals made a header that -pedantic -Werror refuses
    pd = pytest.importorskip("pandas")
    X, y = classification_data(3)
    frame = pd.DataFrame(X, columns=["temp\u00e9rature", "x1", "x2", "x3", "\u6e29\u5ea6"])
    clf = fitted(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0,
                               class_weight={0: 2.0, 1: 1.0, 2: 1.0}), frame, y)
    fastmlp.export_c(clf, tmp_path / "m.h", name="m")
    text = (tmp_path / "m.h").read_text(encoding="ascii")
    assert "x[0] temp<U+00E9>rature" in text and "x[4] <U+6E29><U+5EA6>" in text
    (tmp_path / "main.c").write_text('#include "m.h"\nint main(void)\n{\n    return M_N_CLASSES != 3;\n}\n')
    subprocess.run([CC, *CFLAGS, "main.c", "-o", "main", "-lm"], cwd=tmp_path, check=True)
    long = fitted(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X,
                  np.where(y == 0, "a" * 5000, "b"))
    with pytest.raises(ValueError, match="class label 0 is 5000 bytes"):
        fastmlp.export_c(long, tmp_path / "long.h")
    assert not (tmp_path / "long.h").exists()


def test_unwritable_paths_leave_nothing(tmp_path, monkeypatch):
    net = network("tanh", "softmax", np.float64)
    with pytest.raises(TypeError, match="path"):
        fastmlp.export_c(net, 3)
    with pytest.raises(ValueError, match="path=.*cannot be written"):
        fastmlp.export_c(net, tmp_path / "no such folder" / "m.h")
    (tmp_path / "folder.h").mkdir()
    with pytest.raises(ValueError, match="path=.*cannot be written"):
        fastmlp.export_c(net, tmp_path / "folder.h")  # a directory: nothing replaces it
    _assert_nothing_written(tmp_path, ["folder.h"])
    # a failure while writing leaves the file that was there, whole, and no temporary file
    (tmp_path / "m.h").write_text("old")
    import builtins
    real_open = builtins.open

    def failing_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if "x" in mode:
            f.write("half a header")
            f.close()
            raise OSError(28, "No space left on device")
        return f

    monkeypatch.setattr(builtins, "open", failing_open)
    with pytest.raises(ValueError, match="No space left"):
        fastmlp.export_c(net, tmp_path / "m.h")
    monkeypatch.undo()
    assert (tmp_path / "m.h").read_text() == "old"
    _assert_nothing_written(tmp_path, ["folder.h", "m.h"])


# --------------------------------------------------------------------------
# The example: examples/digits_in_c.py


def _load_example():
    import importlib.util

    path = repository("examples", "digits_in_c.py")
    spec = importlib.util.spec_from_file_location("fastmlp_example_digits_in_c", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_in_c_example(tmp_path, monkeypatch, capsys):
    example = _load_example()
    # the examples' conventions (tests/test_examples.py): a docstring, main(out_dir="."), --out
    import inspect
    assert len(example.__doc__.split()) > 50 and inspect.signature(example.main).parameters["out_dir"].default == "."
    assert "main(out_dir=parser.parse_args().out)" in inspect.getsource(example)
    monkeypatch.chdir(tmp_path)  # main()'s default: the current directory
    result = example.main()
    written = {"digits_model.h", "classify_digits.c"} | ({"classify_digits"} if CC else set())
    assert {p.name for p in tmp_path.iterdir()} == written
    assert result["accuracy"] > 0.9
    if CC is None:
        assert result["c_predictions"] is None
        return
    # the C program gives predict's class for every image it holds, and says so
    assert result["c_predictions"] == result["python_predictions"] and len(result["c_predictions"]) == 6
    out = capsys.readouterr().out
    assert out.count("the C code says") == 6 and "-Werror -pedantic" in out


def test_a_scale_that_underflows_the_header_dtype_is_refused(tmp_path):
    # a feature of spread 1e-50: StandardScaler's scale_ rounds to 0 in float32, and the header divided by it
    # (every row the same output); folded, it overflowed the weights and was refused: so it is again
    X, y2 = classification_data(2)
    X[:, 1] = 1e-50 * np.random.default_rng(0).standard_normal(len(X))
    pipe = fitted(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(3,), max_iter=5,
                                                                random_state=0)), X, y2)
    with pytest.raises(ValueError, match="StandardScaler scale .*_x_scale.* underflows it to 0"):
        fastmlp.export_c(pipe, tmp_path / "tiny.h", dtype="float32")
    assert not (tmp_path / "tiny.h").exists()
    fastmlp.export_c(pipe, tmp_path / "tiny64.h", dtype="float64")  # (float64 holds it)
