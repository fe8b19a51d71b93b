"""fastmlp: multi-layer perceptrons whose training and inference run in compiled code."""
from . import reference
from .estimators import MLPClassifier, MLPRegressor
from .network import Network

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "MLPRegressor", "Network", "reference", "__version__"]
