"""Datasets: a synthetic generator with a known ground truth, and loaders that take a path.

No function here downloads anything.
"""

from ._auditory import load_auditory_cortex
from ._splits import split_windows
from ._codes import make_code_data
from ._multisession import make_multisession_data
from ._synthetic import make_spiking_data
from ._v1al import load_v1al
from ._visnav import load_visnav

__all__ = ["load_auditory_cortex", "load_v1al", "load_visnav", "make_code_data",
           "make_multisession_data", "make_spiking_data", "split_windows"]
