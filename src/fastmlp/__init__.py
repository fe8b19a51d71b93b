"""fastmlp: multi-layer perceptrons whose training and inference run in compiled code."""
from . import reference
from ._cexport import export_c
from .estimators import MLPClassifier, MLPRegressor
from .ensemble import NetworkEnsemble
from .network import Network
from .persistence import load

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "MLPRegressor", "Network", "NetworkEnsemble", "export_c", "load", "reference", "__version__"]

# Submodules with optional dependencies (matplotlib, onnx) load on first use:
# `import fastmlp` alone imports neither.
_LAZY_SUBMODULES = ("plot", "onnx")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib  # here, not at the top: the package's namespace holds only its API and submodules

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
