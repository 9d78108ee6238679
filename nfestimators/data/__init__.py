"""Data layer: the SpikeWindows container, the tokenizer and batching (no model code)."""

from .collate import TokenStore
from .intervals import windows_in_intervals
from .nwb import load_nwb
from .sorting import from_pynapple, from_spikeinterface
from .tokenizer import SpikeTokenizer, SpikeTokens, TokenBudgetWarning
from .windows import SpikeWindows, as_windows

__all__ = ["SpikeTokenizer", "SpikeTokens", "SpikeWindows", "TokenBudgetWarning", "TokenStore",
           "as_windows", "from_pynapple", "from_spikeinterface", "load_nwb",
           "windows_in_intervals"]
