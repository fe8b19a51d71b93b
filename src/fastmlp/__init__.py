"""fastmlp: multi-layer perceptrons whose training and inference run in compiled code."""
from . import reference

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "MLPRegressor", "Network", "NetworkEnsemble", "export_c", "load", "reference", "__version__"]

# The API over the compiled engine, and the submodules with optional
# dependencies (matplotlib, onnx), load on first use: `import fastmlp` alone
# imports neither, and fastmlp.reference (plain NumPy) imports without the
# compiled extension.
_LAZY_NAMES = {"MLPClassifier": "estimators", "MLPRegressor": "estimators", "Network": "network",
               "NetworkEnsemble": "ensemble", "export_c": "_cexport", "load": "persistence"}
_LAZY_SUBMODULES = ("plot", "onnx", "callbacks", "schedules")


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
