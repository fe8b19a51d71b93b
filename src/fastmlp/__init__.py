"""fastmlp: multi-layer perceptrons whose training and inference run in compiled code."""
from . import reference
from .estimators import MLPClassifier, MLPRegressor
from .network import Network
from .persistence import load

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "MLPRegressor", "Network", "load", "reference", "__version__"]
