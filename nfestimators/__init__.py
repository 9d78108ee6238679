"""nfestimators: Neuroformer as scikit-learn estimators."""

from . import datasets
from .data import SpikeTokenizer, SpikeWindows
from .estimators import NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor

__version__ = "0.1.0"

__all__ = ["NeuroformerClassifier", "NeuroformerPretrainer", "NeuroformerRegressor",
           "SpikeTokenizer", "SpikeWindows", "datasets", "__version__"]
