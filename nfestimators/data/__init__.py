"""Data layer: the SpikeWindows container and its builders, the token layout, the tokenizer,
batching and the shared numerics (no model code)."""

from .collate import TokenStore
from .intervals import windows_in_intervals
from .nwb import load_nwb
from .sorting import from_pynapple, from_spikeinterface
from .layout import TokenLayout
from .tokenizer import SpikeTokenizer, SpikeTokens, TokenBudgetWarning
from .units import ImplausibleDataWarning
from .coerce import as_windows
from .windows import SpikeWindows

__all__ = ["ImplausibleDataWarning", "SpikeTokenizer", "SpikeTokens", "SpikeWindows",
           "TokenBudgetWarning", "TokenLayout", "TokenStore", "as_windows", "from_pynapple",
           "from_spikeinterface", "load_nwb", "windows_in_intervals"]
