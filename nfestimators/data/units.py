"""Shared numerics of the data layer, one definition each: seconds <-> bins, count checks,
window means, the frame shown at a time, and CSR offsets.

Builders, loaders, the synthetic generator and the metrics all call these, so a tolerance
or a rounding rule is decided here once.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

__all__ = ["TIME_DECIMALS", "ImplausibleDataWarning", "check_bin_width", "check_counts",
           "frame_at", "offsets_from_lengths", "on_grid", "ranges_index", "sample_index",
           "seconds_to_bins",
           "warn_if_implausible_counts", "window_means"]

TIME_DECIMALS = 6  # times are rounded to the microsecond before binning (spec 2.2)
_BIN_TOLERANCE = 1e-6  # a duration may miss a whole number of bins by a millionth of a bin
_MAX_PLAUSIBLE_RATE = 1000.0  # Hz; more spikes per bin than this suggests ids or rates


class ImplausibleDataWarning(UserWarning):
    """The input is valid but looks like a common mistake (transposed, wrong unit, ids)."""


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds; got {type(value).__name__} "
                        f"{value!r}.")
    return float(value)


def check_bin_width(dt, name="dt"):
    """``dt`` as a positive, finite float (seconds); warns when it looks like milliseconds.

    Examples
    --------
    >>> check_bin_width(0.01)
    0.01
    """
    dt = _real(dt, name)
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"{name} must be a positive number of seconds; got {dt}.")
    if dt >= 1.0:
        warnings.warn(f"{name}={dt:g} s: bins of a second or more are unusual. Times are in "
                      f"seconds: 10 ms bins are {name}=0.01.", ImplausibleDataWarning,
                      stacklevel=3)
    return dt


def seconds_to_bins(seconds, dt, name, *, minimum=0):
    """A duration in seconds as a whole number of ``dt`` bins (at least ``minimum``).

    Fractions of a bin are refused, not rounded: a window of 0.015 s with 0.01 s bins is an
    error. ``None`` stays ``None``.

    Examples
    --------
    >>> seconds_to_bins(0.05, 0.01, "window")
    5
    """
    if seconds is None:
        return None
    seconds = _real(seconds, name)
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite, non-negative number of seconds; got {seconds}.")
    bins = round(seconds / dt)
    if abs(seconds / dt - bins) > _BIN_TOLERANCE * max(1, bins):
        raise ValueError(f"{name}={seconds:g} s is not a whole number of dt={dt:g} s bins.")
    if bins < minimum:
        raise ValueError(f"{name}={seconds:g} s must be at least {minimum} bin(s) of "
                         f"dt={dt:g} s.")
    return int(bins)


def on_grid(times, dt, name):
    """Bin indices of times that must lie on the ``dt`` grid (each a whole number of bins)."""
    ratio = np.asarray(times, dtype=np.float64) / dt
    bins = np.round(ratio)
    off = np.abs(ratio - bins) > _BIN_TOLERANCE * np.maximum(1.0, np.abs(bins))
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"{int(off.sum())} of {len(ratio)} {name} are not on the dt={dt:g} s grid (e.g. "
            f"{name}[{first}]={float(np.ravel(times)[first])!r}); windows must end on bin "
            f"edges. Snap them with np.round({name} / dt) * dt.")
    return bins.astype(np.int64)


def check_counts(counts, name="counts", *, ndim=None, whole=True, round_rates=False):
    """Validate spike counts: numeric, finite, non-negative, and whole numbers.

    Parameters
    ----------
    counts : array-like
    name : str
        Argument name used in the messages.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    whole : bool, default=True
        Refuse fractions and return int64 (integer input is returned without a copy);
        ``False`` returns float64 and accepts non-negative rates.
    round_rates : bool, default=False
        Round non-integer values to the nearest count first (deconvolved calcium "rates").

    Examples
    --------
    >>> check_counts([[0, 2], [1, 0]]).tolist()
    [[0, 2], [1, 0]]
    """
    if hasattr(counts, "columns"):
        raise TypeError(f"{name} must be a count array, got a {type(counts).__name__}; pass "
                        f"its values (np.asarray) only if rows and columns are counts.")
    arr = np.asarray(counts)
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"{name} must be {ndim}-D, got an array of shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numeric spike counts, got dtype {arr.dtype}.")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values; spike counts must be "
                             "finite.")
        if round_rates:
            arr = np.rint(arr)
        elif whole and np.any(arr != np.round(arr)):
            raise ValueError(
                f"{name} contains non-integer values; spike counts must be whole numbers "
                "(round rates with np.rint first if that is what you mean).")
    if arr.dtype.kind in "if" and arr.min() < 0:
        raise ValueError(f"Negative values in data passed to {name}: spike counts must be >= 0 "
                         "(negative values found).")
    if not whole:
        return arr.astype(np.float64)
    return arr if arr.dtype.kind in "iu" else arr.astype(np.int64)


def warn_if_implausible_counts(counts, dt, name="counts"):
    """Warn when a bin holds more spikes than a neuron can fire (ids or rates, not counts)."""
    peak = int(counts.max())
    if peak > max(5.0, _MAX_PLAUSIBLE_RATE * dt):
        warnings.warn(
            f"{name} holds up to {peak} spikes in one {dt:g} s bin ({peak / dt:,.0f} Hz); are "
            f"these ids or rates rather than spike counts? Check the array passed as {name}.",
            ImplausibleDataWarning, stacklevel=3)


def window_means(values, step, start, stop):
    """Mean of the samples stamped in ``[start, stop)`` (sample ``i`` at ``i * step``).

    A window without a sample inside takes the last sample before ``start``; sample indices
    are clipped to the recorded samples, so callers that must not extend a trace check its
    coverage first.

    Examples
    --------
    >>> window_means(np.arange(6.0)[:, None], 1.0, np.array([0, 4]), np.array([2, 6]))[:, 0]
    array([0.5, 4.5])
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    lo = np.clip(np.ceil(np.round(start / step, TIME_DECIMALS)).astype(np.int64), 0, n)
    hi = np.clip(np.ceil(np.round(stop / step, TIME_DECIMALS)).astype(np.int64), 0, n)
    csum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    widths = np.maximum(hi - lo, 1).reshape((-1,) + (1,) * (values.ndim - 1))
    means = (csum[hi] - csum[lo]) / widths
    empty = hi <= lo
    means[empty] = values[np.clip(lo[empty] - 1, 0, n - 1)]
    return means


def frame_at(time, frame_rate):
    """Index of the movie frame shown at ``time`` seconds (frame 0 at time 0).

    Examples
    --------
    >>> frame_at(np.array([0.0, 0.049, 0.05]), 20.0).tolist()
    [0, 0, 1]
    """
    scaled = np.round(np.asarray(time, dtype=np.float64) * float(frame_rate), TIME_DECIMALS)
    return np.floor(scaled).astype(np.int64)


def offsets_from_lengths(lengths):
    """CSR offsets ``[0, l0, l0 + l1, ...]`` of rows of the given lengths.

    Examples
    --------
    >>> offsets_from_lengths([2, 0, 3]).tolist()
    [0, 2, 2, 5]
    """
    lengths = np.asarray(lengths)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def ranges_index(starts, ends):
    """Concatenate ``arange(s, e)`` for every pair, vectorized. Returns (index, lengths).

    Examples
    --------
    >>> index, lengths = ranges_index(np.array([0, 5]), np.array([2, 8]))
    >>> index.tolist(), lengths.tolist()
    ([0, 1, 5, 6, 7], [2, 3])
    """
    lengths = np.maximum(ends - starts, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), lengths
    row_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    index = np.repeat(starts, lengths) + (np.arange(total) - row_start)
    return index, lengths


def sample_index(key, n):
    """Sample indices (int64, non-negative) of an int, slice, boolean mask or index array
    into ``n`` samples; a ``(key, ...)`` tuple indexes the sample axis only.

    Examples
    --------
    >>> sample_index([-1, 0], 3).tolist(), sample_index(slice(1, None), 3).tolist()
    ([2, 0], [1, 2])
    """
    if isinstance(key, tuple):
        if len(key) == 2 and key[1] is Ellipsis:
            key = key[0]
        else:
            raise IndexError("SpikeWindows can only be indexed along the sample axis.")
    if isinstance(key, numbers.Integral):
        key = [key]
    if isinstance(key, slice):
        return np.arange(n)[key]
    key = np.asarray(key)
    if key.dtype == bool:
        if key.shape != (n,):
            raise IndexError(f"boolean index of shape {key.shape} for {n} windows.")
        return np.flatnonzero(key)
    if key.size == 0:
        return key.astype(np.int64)
    if key.dtype.kind not in "iu":
        raise IndexError(f"SpikeWindows indices must be integers or booleans, got {key.dtype}.")
    key = key.astype(np.int64).ravel()
    if key.min() < -n or key.max() >= n:
        raise IndexError(f"index out of range for {n} windows.")
    return np.where(key < 0, key + n, key)
