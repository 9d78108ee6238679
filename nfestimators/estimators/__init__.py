"""The scikit-learn estimators."""

from .classifier import NeuroformerClassifier
from .cv import NeuroformerClassifierCV, NeuroformerRegressorCV
from .pretrainer import NeuroformerPretrainer
from .regressor import NeuroformerRegressor

ESTIMATORS = {cls.__name__: cls for cls in (
    NeuroformerPretrainer, NeuroformerRegressor, NeuroformerClassifier)}

__all__ = ["ESTIMATORS", "NeuroformerClassifier", "NeuroformerClassifierCV", "NeuroformerPretrainer",
           "NeuroformerRegressor", "NeuroformerRegressorCV"]
