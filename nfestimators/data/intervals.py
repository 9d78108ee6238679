"""Windows cut from spike times inside time intervals (trials, epochs, sorter segments)."""

from __future__ import annotations

import numpy as np

from .windows import SpikeWindows

__all__ = ["windows_in_intervals", "end_covering"]

_DECIMALS = 6  # window ends are rounded like the SpikeWindows builders round them


def windows_in_intervals(times, units, start, stop, *, dt, window, prev_window=0.0,
                         stride=None, n_neurons=None):
    """Windows of spikes inside each interval ``[start[i], stop[i])``, time counted from its start.

    Windows of ``window`` seconds end every ``stride`` seconds, the first ``window`` after the
    interval start, the last at or before its stop; the past window never reaches before the
    start. ``window=None`` makes one window per interval, as long as the longest one. A spike
    in several (overlapping) intervals appears in each.

    Parameters
    ----------
    times : array-like of float, shape (n_spikes,)
        Spike times in seconds.
    units : array-like of int, shape (n_spikes,)
        Neuron index of each spike.
    start, stop : array-like of float, shape (n_intervals,)
        Interval edges in seconds; interval ``i`` becomes trial ``i`` of the windows.
    dt, window, prev_window, stride : float
        Bin width, window lengths and time between window ends (default ``window``), seconds.
    n_neurons : int, optional
        Number of neurons; defaults to ``max(units) + 1``.

    Returns
    -------
    windows : SpikeWindows
        ``window_end`` is the time within the interval, ``trial`` the interval index.
    window_time : ndarray of shape (n_samples,)
        Recording time of each window end (``start[trial] + window_end``).

    Examples
    --------
    >>> X, t = windows_in_intervals([0.1, 0.3, 1.25], [0, 1, 0], [0.0, 1.0], [0.5, 1.5],
    ...                             dt=0.05, window=0.25)
    >>> X.trial.tolist(), X.window_end.tolist(), t.tolist(), X.n_spikes().tolist()
    ([0, 0, 1, 1], [0.25, 0.5, 0.25, 0.5], [0.25, 0.5, 1.25, 1.5], [1, 1, 0, 1])
    """
    times = np.asarray(times, dtype=np.float64)
    units = np.asarray(units)
    start = np.atleast_1d(np.asarray(start, dtype=np.float64))
    stop = np.atleast_1d(np.asarray(stop, dtype=np.float64))
    if start.ndim != 1 or start.shape != stop.shape or start.size == 0:
        raise ValueError("start and stop must be non-empty 1-D arrays of the same length.")
    if np.any(~np.isfinite(start)) or np.any(~(stop > start)):
        raise ValueError("every interval needs finite edges with stop > start.")
    duration = stop - start
    if window is None:
        if prev_window:
            raise ValueError("prev_window needs window: whole-interval windows have no past.")
        window = float(np.ceil(round(duration.max() / float(dt), _DECIMALS)) * float(dt))
        ends = [np.array([window]) for _ in duration]
    else:
        ends = [_window_ends(d, float(window), stride) for d in duration]
    trial = np.repeat(np.arange(len(start)), [len(e) for e in ends])
    if trial.size == 0:
        raise ValueError(f"no window of {window} s fits in any interval (longest "
                         f"{duration.max():.3f} s).")
    order = np.argsort(times, kind="stable")
    times, units = times[order], units[order]
    lo, hi = np.searchsorted(times, start), np.searchsorted(times, stop)
    spike_index = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])
    spike_trial = np.repeat(np.arange(len(start)), hi - lo)
    if n_neurons is None and spike_index.size == 0:
        raise ValueError("no spike falls in any interval; pass n_neurons to build empty windows.")
    X = SpikeWindows.from_spike_times(times[spike_index] - start[spike_trial], units[spike_index],
                                      np.concatenate(ends), dt=dt, window=window,
                                      prev_window=prev_window, n_neurons=n_neurons, trial=trial,
                                      spike_trial=spike_trial)
    return X, np.round(start[X.trial] + X.window_end, _DECIMALS)


def end_covering(t, window, stride=None):
    """The first window end (s) after time ``t`` of windows ending at ``window``,
    ``window + stride``, ...: the stop of a recording known only up to its last spike.

    Examples
    --------
    >>> end_covering(1.0, 0.25), end_covering(0.1, 0.25)
    (1.25, 0.25)
    """
    step = window if stride is None else float(stride)
    if not step > 0:
        raise ValueError(f"stride must be a positive number of seconds; got {stride!r}.")
    n = max(int(np.floor(round((t - window) / step, _DECIMALS))) + 1, 0)
    return round(window + step * n, _DECIMALS)


def _window_ends(duration, window, stride):
    """Ends (s) of the windows of ``window`` seconds every ``stride`` inside ``[0, duration]``."""
    step = window if stride is None else float(stride)
    if not step > 0:
        raise ValueError(f"stride must be a positive number of seconds; got {stride!r}.")
    n = int(np.floor(round((duration - window) / step, _DECIMALS))) + 1
    return np.round(window + step * np.arange(max(n, 0)), _DECIMALS)
