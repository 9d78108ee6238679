"""nfestimators: Neuroformer as scikit-learn estimators."""

from .data import SpikeTokenizer, SpikeWindows

__version__ = "0.1.0"

__all__ = ["SpikeTokenizer", "SpikeWindows", "__version__"]
