"""fastmlp: multi-layer perceptrons whose training and inference run in compiled code."""
from . import reference

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "MLPEnsembleClassifier", "MLPEnsembleRegressor", "MLPRegressor", "Network", "NetworkEnsemble", "export_c", "load", "reference", "__version__"]

# The API over the compiled engine (the estimators, Network, ...), and the
# submodules with optional dependencies (matplotlib, onnx), load on first use:
# `import fastmlp` alone imports neither (only the engine itself, below), and
# fastmlp.reference (plain NumPy) imports without the compiled extension.
_LAZY_NAMES = {"MLPClassifier": "estimators", "MLPRegressor": "estimators",
               "MLPEnsembleClassifier": "ensemble_estimators", "MLPEnsembleRegressor": "ensemble_estimators",
               "Network": "network",
               "NetworkEnsemble": "ensemble", "export_c": "_cexport", "load": "persistence"}
_LAZY_SUBMODULES = ("plot", "onnx", "callbacks", "schedules")

# The compiled engine itself loads now (a few milliseconds over NumPy's import), so that its OpenMP runtime
# is among the libraries threadpoolctl finds: a threadpool_limits(n, user_api="openmp") entered after
# `import fastmlp` limits the engine's threads, also when the first estimator is made inside it (a limit
# reaches only the libraries loaded when it is entered).
try:
    from . import _engine  # noqa: F401
except ImportError:  # (fastmlp.reference runs without it)
    pass


def __getattr__(name):
    import importlib  # here, not at the top: the package's namespace holds only its API and submodules

    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
