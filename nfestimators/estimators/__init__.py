"""The scikit-learn estimators."""

from .classifier import NeuroformerClassifier
from .cv import NeuroformerClassifierCV, NeuroformerRegressorCV
from .pretrainer import NeuroformerPretrainer
from .regressor import NeuroformerRegressor

__all__ = ["NeuroformerClassifier", "NeuroformerClassifierCV", "NeuroformerPretrainer",
           "NeuroformerRegressor", "NeuroformerRegressorCV"]
