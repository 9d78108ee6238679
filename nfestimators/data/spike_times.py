"""The spike-time builder of :class:`~nfestimators.SpikeWindows`: sorted spikes (times and
unit ids) cut at given window ends, with behaviour sampled at its own timestamps."""

from __future__ import annotations

import warnings

import numpy as np

from .events import window_events
from .modalities import MISSING_BEHAVIOR, behavior_at_times, behavior_table
from .units import (TIME_DECIMALS, ImplausibleDataWarning, check_bin_width, on_grid,
                    seconds_to_bins)

__all__ = ["SpikeTimeBuilder"]


def _check_spikes(times, units, window_ends):
    times = np.asarray(times, dtype=np.float64)
    units = np.asarray(units)
    window_ends = np.asarray(window_ends, dtype=np.float64)
    if times.ndim != 1 or units.shape != times.shape:
        raise ValueError("times and units must be 1-D arrays of the same length.")
    if window_ends.ndim != 1 or len(window_ends) == 0:
        raise ValueError("window_ends must be a non-empty 1-D array.")
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(window_ends))):
        raise ValueError("times and window_ends must be finite.")
    if units.size and (units.dtype.kind not in "iu" or units.min() < 0):
        raise ValueError(f"units must be non-negative integer unit ids, got dtype {units.dtype}"
                         f"{'' if units.dtype.kind not in 'iu' else ' with negative ids'}; "
                         "relabel them with np.unique(units, return_inverse=True)[1].")
    return times, units, window_ends


def _n_neurons(units, n_neurons):
    if n_neurons is None:
        if units.size == 0:
            raise ValueError("n_neurons is required when there are no spikes.")
        n_neurons = int(units.max()) + 1
        n_used = len(np.unique(units))
        if n_neurons > 10 and n_used < n_neurons / 2:
            warnings.warn(
                f"units holds {n_used} distinct ids spread over 0..{n_neurons - 1}, giving "
                f"{n_neurons} neurons, most of them silent; relabel sorter cluster ids with "
                "units = np.unique(units, return_inverse=True)[1].", ImplausibleDataWarning,
                stacklevel=3)
        return n_neurons
    if units.size and units.max() >= n_neurons:
        raise ValueError(f"unit id {units.max()} >= n_neurons={n_neurons}.")
    return int(n_neurons)


def _warn_if_samples(times, window_ends):
    late = int(np.count_nonzero(times >= window_ends.max()))
    if late > len(times) / 2 and times.max() > 20 * max(abs(window_ends.max()), 1e-3):
        warnings.warn(
            f"{late} of {len(times)} spikes fall after the last window end "
            f"({window_ends.max():g} s; spikes up to {times.max():g}): spike times look like "
            "sample indices, not seconds. Divide them by the sampling rate.",
            ImplausibleDataWarning, stacklevel=3)


def _warn_if_mostly_empty(X, n_spikes):
    n_empty = int(np.count_nonzero(X.n_spikes() == 0))
    if len(X) >= 20 and n_empty > 0.9 * len(X) and n_spikes >= len(X):
        warnings.warn(
            f"{n_empty} of {len(X)} windows hold no spike although there are {n_spikes} "
            f"spikes ({X.n_spikes().sum()} inside windows); are times and window_ends on the "
            "same clock and in seconds?", ImplausibleDataWarning, stacklevel=3)


def _trials(trial, spike_trial, n_spikes, n_windows):
    if trial is None:
        if spike_trial is not None:
            raise ValueError("spike_trial needs trial (the trial of each window).")
        return np.zeros(n_spikes, np.int64), np.zeros(n_windows, np.int64)
    spike_trial = np.zeros(n_spikes, np.int64) if spike_trial is None else np.asarray(spike_trial)
    trial = np.asarray(trial)
    if spike_trial.shape != (n_spikes,) or trial.shape != (n_windows,):
        raise ValueError("spike_trial must match times and trial must match window_ends.")
    return spike_trial, trial


class SpikeTimeBuilder:
    """The ``from_spike_times`` classmethod of SpikeWindows."""

    @classmethod
    def from_spike_times(cls, times, units, window_ends, *, dt, window, prev_window=0.0,
                         n_neurons=None, trial=None, spike_trial=None, behavior=None,
                         behavior_times=None, behavior_names=None, behavior_at="end",
                         max_behavior_gap=None, missing_behavior="raise"):
        """Windows from sorted spikes: spike times (s) and unit ids, cut at given window ends.

        Parameters
        ----------
        times : array-like of float, shape (n_spikes,)
            Spike times in seconds; a spike at ``t`` falls in bin ``floor(t / dt)``. Negative
            times (before a trial's onset) are allowed.
        units : array-like of int, shape (n_spikes,)
            Unit (neuron) index of each spike, ``0 <= unit < n_neurons``.
        window_ends : array-like of float, shape (n_samples,)
            End time of each window in seconds, on the ``dt`` grid (a whole number of bins).
        dt, window, prev_window : float
            Bin width and window lengths in seconds.
        n_neurons : int, optional
            Number of units; defaults to ``max(units) + 1``.
        trial : array-like of int, shape (n_samples,), optional
            Trial of each window; then ``spike_trial`` gives the trial of each spike and
            windows only see spikes of their own trial.
        spike_trial : array-like of int, shape (n_spikes,), optional
        behavior : array-like of shape (n_behavior_samples, n_variables) or dict, optional
            Behaviour values taken at ``behavior_times`` (e.g. a tracker's position).
        behavior_times : array-like of float, shape (n_behavior_samples,), optional
            Time of each behaviour sample in seconds, strictly increasing, on the clock of
            ``window_ends`` (possibly irregular).
        behavior_names : sequence of str, optional
            Column names when ``behavior`` is an array.
        behavior_at : {"end", "mean"}, default="end"
            The window's value: ``"end"`` interpolates linearly between the two samples around
            the window end; ``"mean"`` averages the samples taken inside the window
            ``[end - window, end)``.
        max_behavior_gap : float, optional
            Longest interval between behaviour samples (seconds) that a window's value may
            bridge; default twice the median sampling interval.
        missing_behavior : {"raise", "drop"}, default="raise"
            Windows whose value cannot be defined (outside the sampled times, across a longer
            gap, or with no sample inside for ``"mean"``) raise a ``ValueError`` that counts
            them, or, with ``"drop"``, are left out of the result. They are never filled.

        Returns
        -------
        SpikeWindows

        Examples
        --------
        >>> from nfestimators import SpikeWindows
        >>> X = SpikeWindows.from_spike_times([0.012, 0.031, 0.031], [2, 0, 1], [0.05, 0.1],
        ...                                   dt=0.01, window=0.05)
        >>> X.neuron.tolist(), X.bin.tolist(), X.n_spikes().tolist()
        ([2, 0, 1], [1, 3, 3], [3, 0])

        Position tracked at its own times, interpolated at each window end:

        >>> X = SpikeWindows.from_spike_times([0.012], [0], [0.05, 0.1], dt=0.01, window=0.05,
        ...                                   behavior=[0.0, 1.0, 2.0],
        ...                                   behavior_times=[0.0, 0.08, 0.16])
        >>> X.behavior[:, 0].tolist()
        [0.625, 1.25]
        """
        times, units, window_ends = _check_spikes(times, units, window_ends)
        n_neurons = _n_neurons(units, n_neurons)
        dt = check_bin_width(dt)
        n_bins = seconds_to_bins(window, dt, "window", minimum=1)
        n_prev = seconds_to_bins(prev_window, dt, "prev_window")
        if len(times):
            _warn_if_samples(times, window_ends)
        bins = np.floor(np.round(times / dt, TIME_DECIMALS)).astype(np.int64)
        end_bins = on_grid(window_ends, dt, "window_ends")
        spike_trial, trial = _trials(trial, spike_trial, len(times), len(window_ends))
        # shift every trial's clock so that spikes and windows start at bin >= 0: each trial
        # then owns a disjoint range of keys, and negative times stay in their own trial
        origin = min(bins.min(initial=0), int((end_bins - n_bins - n_prev).min()))
        bins, end_bins = bins - origin, end_bins - origin
        span = int(max(bins.max(initial=0), end_bins.max())) + 1
        codes, inverse = np.unique(np.concatenate([spike_trial, trial]), return_inverse=True)
        base = np.arange(len(codes), dtype=np.int64) * span
        keys = base[inverse[:len(times)]] + bins
        order = np.lexsort((units, keys))
        win_base = base[inverse[len(times):]]
        X = cls(**window_events(keys[order], units[order].astype(np.int32), win_base + end_bins,
                                n_bins, n_prev, win_base),
                n_neurons=n_neurons, dt=dt, n_bins=n_bins, n_prev_bins=n_prev,
                window_end=np.round(window_ends, TIME_DECIMALS), trial=trial)
        _warn_if_mostly_empty(X, len(times))
        if behavior is None:
            if behavior_times is not None:
                raise ValueError("behavior_times given without behavior.")
            return X
        if behavior_times is None:
            raise ValueError("behavior needs behavior_times, the time (s) of each sample.")
        return _with_timed_behavior(X, behavior, behavior_times, behavior_names, behavior_at,
                                    max_behavior_gap, missing_behavior)


def _with_timed_behavior(X, behavior, behavior_times, names, at, max_gap, missing_behavior):
    if missing_behavior not in MISSING_BEHAVIOR:
        raise ValueError(f"missing_behavior must be one of {MISSING_BEHAVIOR}; "
                         f"got {missing_behavior!r}.")
    values, names = behavior_table(behavior, names)
    per_window, missing, reason = behavior_at_times(values, behavior_times, X.window_end,
                                                    X.window, at=at, max_gap=max_gap)
    if missing.all() or (missing.any() and missing_behavior == "raise"):
        fix = ("pass missing_behavior='drop' to leave them out, raise max_behavior_gap, or "
               "choose window_ends inside the sampled behaviour")
        raise ValueError(f"{reason}; {fix}." if not missing.all()
                         else f"{reason}: no window is left; check that behavior_times and "
                              "window_ends use the same clock and unit (seconds).")
    X = X.with_behavior(per_window, names)
    return X[np.flatnonzero(~missing)] if missing.any() else X
