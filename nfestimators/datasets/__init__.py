"""Datasets: a synthetic generator with a known ground truth, and loaders that take a path.

No function here downloads anything.
"""

from ._codes import make_code_data
from ._loaders import load_auditory_cortex, load_v1al, load_visnav, split_windows
from ._synthetic import make_spiking_data

__all__ = ["load_auditory_cortex", "load_v1al", "load_visnav", "make_code_data",
           "make_spiking_data", "split_windows"]
