"""Data layer: the SpikeWindows container, the tokenizer and batching (no model code)."""

from .collate import TokenStore
from .nwb import load_nwb
from .tokenizer import SpikeTokenizer, SpikeTokens, TokenBudgetWarning
from .windows import SpikeWindows, as_windows

__all__ = ["load_nwb", "SpikeTokenizer", "SpikeTokens", "SpikeWindows", "TokenBudgetWarning", "TokenStore", "as_windows"]
