"""The scikit-learn estimators."""

from .classifier import NeuroformerClassifier
from .pretrainer import NeuroformerPretrainer
from .regressor import NeuroformerRegressor

__all__ = ["NeuroformerClassifier", "NeuroformerPretrainer", "NeuroformerRegressor"]
