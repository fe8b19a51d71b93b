"""The public API's docstrings: numpydoc-valid, and every Examples section runs.

Both tests work on the fastmlp that ``import fastmlp`` finds: the installed
package (``pip install .``, then pytest from the checkout root, where
src/fastmlp has no compiled extension and is not on sys.path) or src/ with
PYTHONPATH=src. That is why they run here, over imported modules, and not
through ``--doctest-modules`` on src/fastmlp, which would import the source
tree (the one without the extension) under pytest's own module names.

The public API is everything a user reaches by name: ``fastmlp.__all__``, the
public functions of fastmlp.reference, fastmlp.persistence, fastmlp.onnx and
fastmlp.plot, and every public method and property that the public classes
define in fastmlp (what they inherit from scikit-learn, e.g. ``score`` and
``get_params``, carries scikit-learn's own docstring and is not checked here).
"""
import doctest
import importlib
import inspect
import os
import sys
import warnings

import pytest

import fastmlp

# Modules whose docstrings hold examples. onnx and plot need the optional
# extras (onnx + onnxruntime, matplotlib): without them their tests skip.
MODULES = ("fastmlp", "fastmlp.estimators", "fastmlp.network", "fastmlp.ensemble", "fastmlp._base", "fastmlp.reference",
           "fastmlp.persistence", "fastmlp.callbacks", "fastmlp.schedules", "fastmlp.onnx", "fastmlp.plot")
OPTIONAL = {"fastmlp.onnx": ("onnx", "onnxruntime"), "fastmlp.plot": ("matplotlib",)}

# numpydoc checks (numpydoc.validate.ERROR_MSGS) enforced on every public object:
ENFORCED = {
    "GL01", "GL02", "GL03", "GL05", "GL06", "GL07", "GL08", "GL09", "GL10",  # layout; GL08: no docstring
    "SS01", "SS02", "SS03", "SS04", "SS05", "SS06",  # a one-line summary, capitalised, with a period
    "PR01", "PR02", "PR03", "PR04", "PR05", "PR06", "PR07", "PR08", "PR09", "PR10",  # every parameter
    # documented, with a type and a description that starts with a capital and ends with a period
    "RT01", "RT02", "RT03", "RT04", "RT05",  # a Returns section with a type and such a description
    "YD01",  # a Yields section for a generator
    "SA02", "SA03", "SA04",  # See Also entries, where there are any, described
}
# Ignored, and why:
#   ES01    an extended summary is not needed where the one line says it all (a property, summary()).
#   SA01    See Also is given where there is a related object to point to, not everywhere.
#   EX01    enforced below for classes, module-level functions and the methods users call
#           (fit, predict, ...), not for properties or for the formulas of fastmlp.reference
#           (each is one line of NumPy; the module's Network and the tests show them in use).


def _import_optional(name):
    for dep in OPTIONAL.get(name, ()):
        pytest.importorskip(dep)
    if name == "fastmlp.plot":
        import matplotlib
        matplotlib.use("Agg")
    return importlib.import_module(name)


def _module_functions(module, defined_in=()):
    """The public functions of module: its own, and those it re-exports from the modules defined_in."""
    homes = {module.__name__, *defined_in}
    return [f"{module.__name__}.{n}" for n, obj in vars(module).items()
            if not n.startswith("_") and inspect.isfunction(obj) and obj.__module__ in homes]


def _class_members(path, cls):
    """The public methods and properties that cls or a fastmlp base of it defines."""
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next(c for c in cls.__mro__ if name in vars(c))
        if not owner.__module__.startswith("fastmlp"):
            continue  # inherited from scikit-learn, documented there
        obj = vars(owner)[name]
        # a property's getter, a method, or the method inside available_if (partial_fit); not
        # scikit-learn's generated set_*_request methods, which live on the class
        fn = obj.fget if isinstance(obj, property) else getattr(obj, "fn", obj)
        if inspect.isfunction(fn) and fn.__module__.startswith("fastmlp"):
            names.append(f"{path}.{name}")
    return names


def public_api():
    """Import paths of every public object, in a stable order."""
    paths = []
    for name in fastmlp.__all__:
        obj = getattr(fastmlp, name)
        if inspect.isclass(obj):
            paths += [f"fastmlp.{name}", *_class_members(f"fastmlp.{name}", obj)]
        elif inspect.isfunction(obj):
            paths.append(f"fastmlp.{name}")
    from fastmlp import persistence, reference, schedules
    for name in schedules.__all__:
        paths += [f"fastmlp.schedules.{name}", *_class_members(f"fastmlp.schedules.{name}", getattr(schedules, name))]
    paths += _module_functions(reference, ("fastmlp._math",)) + ["fastmlp.reference.Network"]
    paths += _class_members("fastmlp.reference.Network", reference.Network)
    paths += _module_functions(persistence)
    from fastmlp.callbacks import Checkpoint
    paths += ["fastmlp.callbacks.Checkpoint", *_class_members("fastmlp.callbacks.Checkpoint", Checkpoint)]
    return paths


def _optional_api(module_name):
    module = _import_optional(module_name)
    return [f"{module_name}.{n}" for n in module.__all__ if inspect.isfunction(getattr(module, n))]


def test_public_api_listed():
    """The walk finds what it must: the test below is not vacuous."""
    api = set(public_api())
    for path in ("fastmlp.MLPClassifier", "fastmlp.MLPClassifier.predict_proba", "fastmlp.MLPRegressor.fit",
                 "fastmlp.Network.loss_and_gradients", "fastmlp.Network.coefs_", "fastmlp.load",
                 "fastmlp.reference.relu", "fastmlp.reference.Network.fit", "fastmlp.persistence.save",
                 "fastmlp.schedules.OneCycle", "fastmlp.schedules.LinearWarmup.start"):
        assert path in api
    assert "fastmlp.MLPClassifier.score" not in api  # scikit-learn's


def _errors(path):
    from numpydoc.validate import validate

    result = validate(path)
    return [(code, msg) for code, msg in result["errors"]
            if code in ENFORCED or (code == "EX01" and _needs_examples(path, result["type"]))]


def _needs_examples(path, kind):
    """EX01 applies to classes, to module-level functions but fastmlp.reference's, and to USER_METHODS."""
    parent = path.rsplit(".", 1)[0]
    if kind == "type":
        return True
    if parent in sys.modules:  # a module-level function
        return parent != "fastmlp.reference"
    return _is_user_method(path)


# Methods that must have an Examples section (the others: properties, set_* helpers).
USER_METHODS = {"fit", "partial_fit", "predict", "predict_proba", "predict_log_proba", "decision_function",
                "forward", "loss_and_gradients", "summary", "save", "to_onnx"}


def _is_user_method(path):
    return path.rsplit(".", 1)[-1] in USER_METHODS


@pytest.mark.parametrize("module_name", [None, "fastmlp.onnx", "fastmlp.plot"])
def test_numpydoc(module_name):
    pytest.importorskip("numpydoc")
    paths = public_api() if module_name is None else _optional_api(module_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpydoc's own deprecation notes
        failures = [f"{path}: {code} {msg}" for path in paths for code, msg in _errors(path)]
    assert not failures, "numpydoc errors:\n" + "\n".join(failures)


def _doctests():
    """(module name, test name) of every docstring with examples, collected without importing extras."""
    found = []
    for name in MODULES:
        try:
            module = importlib.import_module(name) if name not in OPTIONAL else None
        except ImportError:
            module = None
        if module is None:
            found.append((name, None))  # collected when the test runs, skipped without the extra
            continue
        for test in doctest.DocTestFinder().find(module):
            if test.examples:
                found.append((name, test.name))
    return found


def _run(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = []
    cwd = os.getcwd()
    try:
        result = runner.run(test, out=out.append)
    finally:
        os.chdir(cwd)  # an example that changes directory cannot move the rest of the suite
    return result, "".join(out)


@pytest.mark.parametrize("module_name, test_name", [pytest.param(m, t, id=t or m) for m, t in _doctests()])
def test_examples(module_name, test_name):
    module = _import_optional(module_name)
    if test_name is not None and test_name.endswith(".to_onnx"):
        for dep in OPTIONAL["fastmlp.onnx"]:
            pytest.importorskip(dep)  # the models' to_onnx methods need the onnx extra
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    if test_name is not None:
        tests = [t for t in tests if t.name == test_name]
    assert tests, f"no examples found for {test_name or module_name}"
    for test in tests:
        result, report = _run(test)
        assert result.failed == 0, report
    if module_name == "fastmlp.plot":
        import matplotlib.pyplot as plt
        plt.close("all")


def test_examples_exist():
    """Every module of the API has examples, so a broken finder cannot pass test_examples vacuously."""
    with_examples = {name for name, test in _doctests() if test is not None}
    assert with_examples >= {"fastmlp.estimators", "fastmlp.network", "fastmlp._base", "fastmlp.reference",
                             "fastmlp.persistence"}
