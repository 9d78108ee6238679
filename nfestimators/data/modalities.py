"""Stimulus frames and behaviour attached to windows by time.

Behaviour comes either on a regular clock (a sample every ``behavior_dt`` seconds from time
0: each window gets the mean of its samples) or at its own timestamps (a tracker's frames:
each window gets the value interpolated at its end, or the mean of the samples inside it).
A window whose value would have to be invented (outside the samples, or across a long gap)
is an error, never filled silently.
"""

from __future__ import annotations

import warnings

import numpy as np

from .units import TIME_DECIMALS, ImplausibleDataWarning, check_bin_width, frame_at, window_means

__all__ = ["attach_inputs", "behavior_at_times", "behavior_table", "frame_index_at"]

BEHAVIOR_AT = ("end", "mean")
MISSING_BEHAVIOR = ("raise", "drop")


def behavior_table(behavior, names):
    """Behaviour as a 2-D float array plus column names (dict or array input).

    Examples
    --------
    >>> values, names = behavior_table({"x": [1, 2], "y": [3, 4]}, None)
    >>> values.tolist(), names
    ([[1.0, 3.0], [2.0, 4.0]], ['x', 'y'])
    """
    if isinstance(behavior, dict):
        names = list(behavior)
        cols = [np.asarray(behavior[k], dtype=np.float64).ravel() for k in names]
        if len({len(c) for c in cols}) != 1:
            raise ValueError("behaviour variables must all have the same number of samples.")
        values = np.stack(cols, axis=1)
    else:
        values = np.array(behavior, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ValueError(f"behavior must be 1-D or 2-D, got shape {values.shape}.")
    if values.size == 0:
        raise ValueError("behavior is empty.")
    if not np.all(np.isfinite(values)):
        raise ValueError("behavior contains NaN or infinite values.")
    return values, names


def frame_index_at(stimulus, frame_rate, frame_window, callback, time, trial):
    """Frames of the movie for each window: the last one is the frame shown at the window end."""
    stimulus_shape = np.shape(stimulus)
    if len(stimulus_shape) != 3:
        raise ValueError(f"stimulus must be (n_frames, height, width), got shape {stimulus_shape}.")
    if frame_rate is None or not float(frame_rate) > 0:
        raise ValueError("a stimulus needs frame_rate (frames per second, > 0).")
    movie = np.asarray(stimulus)
    if movie.dtype.kind not in "biuf":
        raise ValueError(f"stimulus must hold numbers, got dtype {movie.dtype}.")
    if movie.dtype.kind == "f" and not np.all(np.isfinite(movie)):
        bad = np.flatnonzero(~np.isfinite(movie).reshape(len(movie), -1).all(axis=1))
        raise ValueError(f"stimulus contains NaN or infinite values in {len(bad)} frame(s) "
                         f"(first: frame {bad[0]}); fill or drop them before building windows.")
    n_frames = int(np.ceil(round(float(frame_window) * float(frame_rate), TIME_DECIMALS)))
    if n_frames < 1:
        raise ValueError("frame_window must cover at least one frame.")
    if callback is not None:
        index = np.asarray(callback(time, trial, n_frames))
        if index.shape != (len(time), n_frames):
            raise ValueError(f"stimulus_callback must return shape {(len(time), n_frames)}, "
                             f"got {index.shape}.")
        return index
    index = frame_at(time, frame_rate)[:, None] + np.arange(1 - n_frames, 1)
    if np.any(index >= stimulus_shape[0]):
        warnings.warn("some windows end after the stimulus movie; their last frames are repeated.",
                      stacklevel=4)
    return np.clip(index, 0, stimulus_shape[0] - 1)


def _regular_behavior(values, step, start, stop):
    """Window means of a trace sampled every ``step`` s, refusing windows it does not cover."""
    covered = len(values) * step
    beyond = stop > covered + step * 1e-6
    if beyond.any():
        raise ValueError(
            f"behavior covers {covered:g} s ({len(values)} samples every behavior_dt={step:g} "
            f"s) but {int(beyond.sum())} of {len(stop)} windows end later (up to "
            f"{float(stop.max()):g} s). Give behavior_dt if the trace has its own rate (a "
            f"30 Hz trace needs behavior_dt=1/30), or build windows only where it was recorded.")
    if covered > 1.5 * float(stop.max()) + step:
        warnings.warn(
            f"behavior lasts {covered:g} s at behavior_dt={step:g} s, but the windows end by "
            f"{float(stop.max()):g} s; is behavior_dt right?", ImplausibleDataWarning,
            stacklevel=4)
    return window_means(values, step, start, stop)


def attach_inputs(X, *, time, stimulus=None, frame_rate=None, frame_window=None,
                  stimulus_callback=None, behavior=None, behavior_dt=None, behavior_names=None):
    """``X`` with stimulus frames and regularly sampled behaviour attached at window ``time``.

    Parameters
    ----------
    X : SpikeWindows
    time : ndarray of shape (n_samples,)
        Window end times in seconds, on the clock of the stimulus and the behaviour.
    stimulus, frame_rate, frame_window, stimulus_callback, behavior, behavior_dt, behavior_names
        As in :meth:`SpikeWindows.from_counts`.

    Returns
    -------
    SpikeWindows
    """
    if stimulus is not None:
        X = X.with_frames(stimulus, frame_index_at(
            stimulus, frame_rate, X.window if frame_window is None else frame_window,
            stimulus_callback, time, X.trial))
    elif stimulus_callback is not None or frame_rate is not None:
        raise ValueError("frame_rate / stimulus_callback given without a stimulus.")
    if behavior is not None:
        values, names = behavior_table(behavior, behavior_names)
        step = X.dt if behavior_dt is None else check_bin_width(behavior_dt, "behavior_dt")
        X = X.with_behavior(_regular_behavior(values, step, time - X.window, time), names)
    return X


def _check_times(behavior_times, n_samples):
    times = np.asarray(behavior_times, dtype=np.float64)
    if times.shape != (n_samples,):
        raise ValueError(f"behavior_times must hold one time per behaviour sample "
                         f"({n_samples}), got shape {times.shape}.")
    if not np.all(np.isfinite(times)):
        raise ValueError("behavior_times contains NaN or infinite values.")
    if n_samples > 1 and np.any(np.diff(times) <= 0):
        raise ValueError("behavior_times must be strictly increasing (sort the samples, and "
                         "drop repeated timestamps).")
    return times


def _in_long_gap(times, start, end, max_gap):
    """Windows ``[start, end]`` overlapping an interval between samples longer than ``max_gap``
    (a window of length 0 is the point ``end``)."""
    steps = np.diff(times)
    long = np.flatnonzero(steps > max_gap)
    gap_start, gap_end = times[long], times[long + 1]
    # the gaps are disjoint and sorted: those opening before the end minus those closed by the start
    return (np.searchsorted(gap_start, end, side="left")
            - np.searchsorted(gap_end, start, side="right")) > 0


def _values(values, times, start, end, at):
    """Interpolated value at ``end`` or mean over ``[start, end)``, and windows without samples."""
    if at == "end":
        interpolated = np.column_stack([np.interp(end, times, v) for v in values.T])
        return interpolated, np.zeros(len(end), dtype=bool)
    lo = np.searchsorted(times, start, side="left")
    hi = np.searchsorted(times, end, side="left")
    csum = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)[:, None], hi <= lo


def behavior_at_times(values, times, window_end, window, *, at="end", max_gap=None):
    """Per-window behaviour from samples taken at their own (possibly irregular) times.

    Parameters
    ----------
    values : ndarray of shape (n_behavior_samples, n_variables)
    times : array-like of shape (n_behavior_samples,)
        Sample times in seconds, strictly increasing, on the clock of ``window_end``.
    window_end : ndarray of shape (n_samples,)
    window : float
        Window length in seconds.
    at : {"end", "mean"}, default="end"
        ``"end"``: the value linearly interpolated at the window end. ``"mean"``: the mean of
        the samples taken in ``[end - window, end)``.
    max_gap : float, optional
        Longest interval between samples (seconds) a window's value may bridge; default twice
        the median sampling interval (one lost sample is bridged, two are not).

    Returns
    -------
    values : ndarray of shape (n_samples, n_variables)
    missing : ndarray of bool, shape (n_samples,)
        Windows whose value cannot be defined (their rows in ``values`` are meaningless).
    reason : str
        How many windows are missing and why.

    Examples
    --------
    >>> v, missing, _ = behavior_at_times(np.array([[0.0], [10.0]]), [0.0, 1.0],
    ...                                   np.array([0.25, 2.0]), 0.1)
    >>> v[~missing, 0].tolist(), missing.tolist()
    ([2.5], [False, True])
    """
    if at not in BEHAVIOR_AT:
        raise ValueError(f"behavior_at must be one of {BEHAVIOR_AT}; got {at!r}.")
    times = _check_times(times, len(values))
    if max_gap is None:
        max_gap = 2 * float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    elif not float(max_gap) >= 0:
        raise ValueError(f"max_behavior_gap must be a non-negative number of seconds; "
                         f"got {max_gap!r}.")
    start = window_end if at == "end" else window_end - window
    out, empty = _values(values, times, start, window_end, at)
    outside = (start < times[0]) | (window_end > times[-1])
    in_gap = ~outside & (empty | _in_long_gap(times, start, window_end, float(max_gap)))
    reason = (f"{int(outside.sum()) + int(in_gap.sum())} of {len(window_end)} windows have no "
              f"behaviour value: {int(outside.sum())} reach outside the sampled times "
              f"[{times[0]:g}, {times[-1]:g}] s and {int(in_gap.sum())} fall in gaps longer "
              f"than max_behavior_gap={float(max_gap):g} s"
              + (" or hold no sample" if at == "mean" else ""))
    return out, outside | in_gap, reason
