"""nfestimators: Neuroformer as scikit-learn estimators."""

from . import datasets
from .data import SpikeTokenizer, SpikeWindows
from .estimators import (NeuroformerClassifier, NeuroformerClassifierCV, NeuroformerPretrainer,
                         NeuroformerRegressor, NeuroformerRegressorCV)

__version__ = "0.1.0"

__all__ = ["NeuroformerClassifier", "NeuroformerClassifierCV", "NeuroformerPretrainer",
           "NeuroformerRegressor", "NeuroformerRegressorCV",
           "SpikeTokenizer", "SpikeWindows", "datasets", "__version__"]
