"""Inputs as :class:`~nfestimators.SpikeWindows` for the estimators, or as a flat table of
spike events for the metrics and plots (dense counts converted, sparse ones never densified)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import check_counts
from .windows import SpikeWindows

__all__ = ["SpikeEvents", "as_windows", "check_not_spike_table", "dense_counts", "paired_events",
           "spike_events"]

_SPIKE_TABLE_COLUMNS = {"time", "times", "spike_time", "spike_times", "t", "unit", "units",
                        "neuron", "cluster", "cluster_id", "unit_id"}


def check_not_spike_table(X, name="X"):
    """Refuse a long-format table of spikes (a DataFrame with time / unit columns) given where
    counts per window are expected, with the builder to use instead.

    Examples
    --------
    >>> import pandas as pd
    >>> check_not_spike_table(pd.DataFrame({"time": [0.1], "unit": [3]}))
    Traceback (most recent call last):
    ...
    ValueError: X looks like a table of spikes (columns ['time', 'unit']), ...
    """
    columns = {str(c).lower() for c in getattr(X, "columns", ())}
    if columns & _SPIKE_TABLE_COLUMNS:
        raise ValueError(
            f"{name} looks like a table of spikes (columns {sorted(columns)}), not counts per "
            "window; build windows with SpikeWindows.from_spike_times(df['time'], "
            "df['unit'], window_ends, dt=..., window=...).")


def as_windows(X, *, dt=0.01):
    """Return ``X`` as :class:`SpikeWindows` (2-D and 3-D count arrays are converted).

    Examples
    --------
    >>> import numpy as np
    >>> as_windows(np.zeros((2, 3, 4))).shape
    (2, 3, 4)
    """
    if isinstance(X, SpikeWindows):
        return X
    check_not_spike_table(X)
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    arr = np.asarray(X)
    if arr.dtype == object:
        raise ValueError("X must be SpikeWindows or a numeric count array.")
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"X must be SpikeWindows, a 3-D (n_samples, n_neurons, n_bins) or a 2-D "
            f"(n_samples, n_neurons) count array; got an array of shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"X has 0 samples (shape {arr.shape}); at least one is required.")
    return SpikeWindows.from_array(arr, dt=dt)


@dataclass(frozen=True)
class SpikeEvents:
    """Spike events of the current windows, one row per (window, neuron, bin) with a weight
    (the spike count), as the metrics and plots read them."""

    window: np.ndarray
    neuron: np.ndarray
    bin: np.ndarray
    weight: np.ndarray
    n_windows: int
    n_neurons: int
    n_bins: int
    window_end: np.ndarray | None  # None for dense arrays (no time information)
    dt: float | None


def dense_counts(X, name, *, integer=False):
    """Validate a dense count array and return it as 3-D float ``(n, n_neurons, n_bins)``."""
    if np.ndim(X) not in (2, 3):
        raise ValueError(f"{name} must be SpikeWindows, a 3-D (n_windows, n_neurons, n_bins) or a "
                         f"2-D (n_windows, n_neurons) count array; got shape {np.shape(X)}.")
    arr = check_counts(X, name, whole=integer)
    return (arr if arr.ndim == 3 else arr[:, :, None]).astype(np.float64)


def spike_events(X, name):
    """Spike events of ``X`` (SpikeWindows or dense counts), never copying the caller's data
    into a dense array when it is already sparse.

    Examples
    --------
    >>> spike_events(np.array([[[0, 2]]]), "X").weight.tolist()
    [2.0]
    """
    if isinstance(X, SpikeWindows):
        n = len(X)
        if n == 0:
            raise ValueError(f"{name} has no windows.")
        window = np.repeat(np.arange(n), np.diff(X.offsets))
        return SpikeEvents(window, X.neuron.astype(np.int64), X.bin.astype(np.int64),
                           np.ones(len(window)), n, X.n_neurons, X.n_bins, X.window_end, X.dt)
    counts = dense_counts(X, name)
    window, neuron, bins = np.nonzero(counts)
    return SpikeEvents(window, neuron, bins, counts[window, neuron, bins], *counts.shape, None,
                       None)


def paired_events(true, generated, *, same_bins=False):
    """Events of a true / generated pair, checked for matching windows and neurons."""
    t = spike_events(true, "true_windows")
    g = spike_events(generated, "generated_windows")
    if (t.n_windows, t.n_neurons) != (g.n_windows, g.n_neurons):
        raise ValueError(
            f"true_windows and generated_windows must have the same number of windows and "
            f"neurons; got (n_windows, n_neurons) = {(t.n_windows, t.n_neurons)} and "
            f"{(g.n_windows, g.n_neurons)}.")
    if same_bins and t.n_bins != g.n_bins:
        raise ValueError(f"true_windows has {t.n_bins} bins per window and generated_windows "
                         f"{g.n_bins}; bin_by='bin' needs the same number.")
    return t, g
