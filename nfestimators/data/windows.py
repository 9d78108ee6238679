"""Sparse per-window spike storage: the sample container of every estimator."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

__all__ = ["SpikeWindows", "as_windows"]

_TIME_DECIMALS = 6  # window edges are rounded like the original (spec 2.2)


def _seconds_to_bins(seconds, dt, name):
    """Convert a duration to a whole number of bins, refusing fractions of a bin."""
    if seconds is None:
        return None
    seconds = float(seconds)
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite, non-negative number of seconds; got {seconds}.")
    bins = round(seconds / dt)
    if abs(bins * dt - seconds) > 1e-6 * max(1.0, seconds):
        raise ValueError(f"{name}={seconds} s is not a whole number of dt={dt} s bins.")
    return int(bins)


def _check_counts(counts, name="counts", ndim=None):
    """Validate dense counts: finite, non-negative whole numbers.

    Returns an integer array; integer input is returned without a copy (it is only read).
    """
    arr = np.asarray(counts)
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"{name} must be {ndim}-D, got an array of shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numeric spike counts, got dtype {arr.dtype}.")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values; spike counts must be finite.")
        if np.any(arr != np.round(arr)):
            raise ValueError(
                f"{name} contains non-integer values; spike counts must be whole numbers "
                "(round rates with np.rint first if that is what you mean)."
            )
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "i" and arr.min() < 0:
        raise ValueError(f"Negative values in data passed to {name}: spike counts must be >= 0.")
    return arr


def _ranges_index(starts, ends):
    """Concatenate ``arange(s, e)`` for every pair, vectorized. Returns (index, lengths)."""
    lengths = np.maximum(ends - starts, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), lengths
    row_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    index = np.repeat(starts, lengths) + (np.arange(total) - row_start)
    return index, lengths


def _offsets_from_lengths(lengths):
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _sorted_events_from_counts(counts):
    """Events of a (n_neurons, n_bins) raster as (bin, neuron) pairs, one per spike,
    sorted by bin then neuron (the token order of spec 2.3)."""
    neurons, bins = np.nonzero(counts)  # sorted by neuron, then bin
    order = np.argsort(bins, kind="stable")  # by bin; ties keep ascending neuron
    neurons, bins = neurons[order], bins[order]
    reps = counts[neurons, bins].astype(np.int64)
    return np.repeat(bins, reps).astype(np.int64), np.repeat(neurons, reps).astype(np.int32)


def _gather_events(keys, neurons, starts, ends):
    """Events with ``starts[w] <= key < ends[w]`` for every window w.

    ``keys`` is sorted (ties ordered by neuron). Returns neuron ids, keys relative to each
    window's start, and CSR offsets.
    """
    lo = np.searchsorted(keys, starts, side="left")
    hi = np.searchsorted(keys, ends, side="left")
    index, lengths = _ranges_index(lo, hi)
    rel = keys[index] - np.repeat(starts, lengths)
    return neurons[index], rel.astype(np.int32), _offsets_from_lengths(lengths)


def _segments(labels):
    """Start/stop indices and label of each run of equal values in ``labels``."""
    labels = np.asarray(labels)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(labels)]])
    return starts, stops, labels[starts]


class SpikeWindows:
    """Spikes of many time windows, stored sparsely (CSR-like), as one sklearn sample array.

    One sample is one window: the spikes of the current window ``[end - window, end)`` and of
    the past (context) window just before it, ``[end - window - prev_window, end - window)``,
    plus optional stimulus frames and behaviour values. Events are kept in flat arrays with
    offsets, in the token order of Neuroformer: time-major, then neuron ascending inside a bin,
    one event per spike.

    ``len(X)``, ``X.shape`` and ``X[indices]`` behave like an array of shape
    ``(n_samples, n_neurons, n_bins)``, so :func:`~sklearn.model_selection.train_test_split`,
    :class:`~sklearn.model_selection.KFold` and :func:`~sklearn.model_selection.cross_val_score`
    slice it directly. Build one with :meth:`from_counts`, :meth:`from_trials`,
    :meth:`from_spike_times` or :meth:`from_array`.

    Parameters
    ----------
    neuron, bin : array-like of int, shape (n_events,)
        Neuron index and bin offset (from the window start) of each current-window spike.
    offsets : array-like of int, shape (n_samples + 1,)
        Window ``i`` owns events ``offsets[i]:offsets[i + 1]``.
    n_neurons : int
        Number of neurons in the recording.
    dt : float
        Bin width in seconds.
    n_bins : int
        Bins per current window.
    prev_neuron, prev_bin, prev_offsets : array-like, optional
        The same for the past window (bins counted from the past window's start).
    n_prev_bins : int, default=0
        Bins per past window.
    window_end : array-like of float, shape (n_samples,), optional
        End time of each window in seconds (time within the trial for trial data).
    trial : array-like of int, shape (n_samples,), optional
        Trial of each window.
    stimulus : ndarray of shape (n_frames_total, height, width), optional
        One movie shared by all windows (held by reference, never copied per window).
    frame_index : array-like of int, shape (n_samples, n_frames), optional
        Frames of ``stimulus`` shown to each window, oldest first.
    behavior : array-like of float, shape (n_samples, n_variables), optional
        Behaviour values per window (usable as model inputs).
    behavior_names : sequence of str, optional
        Names of the behaviour columns.

    Examples
    --------
    >>> import numpy as np
    >>> from nfestimators import SpikeWindows
    >>> counts = np.zeros((3, 20), dtype=int)
    >>> counts[1, 2] = 1; counts[0, 7] = 2
    >>> X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)
    >>> X.shape
    (4, 3, 5)
    >>> X.n_spikes().tolist()
    [1, 2, 0, 0]
    >>> X[[1]].to_counts()[0, 0].tolist()
    [0, 0, 2, 0, 0]
    """

    def __init__(self, neuron, bin, offsets, *, n_neurons, dt, n_bins, prev_neuron=None,
                 prev_bin=None, prev_offsets=None, n_prev_bins=0, window_end=None, trial=None,
                 stimulus=None, frame_index=None, behavior=None, behavior_names=None):
        self.neuron = np.asarray(neuron, dtype=np.int32)
        self.bin = np.asarray(bin, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n_neurons = int(n_neurons)
        self.dt = float(dt)
        self.n_bins = int(n_bins)
        self.n_prev_bins = int(n_prev_bins)
        n = len(self.offsets) - 1
        if prev_offsets is None:
            prev_neuron, prev_bin = np.zeros(0, np.int32), np.zeros(0, np.int32)
            prev_offsets = np.zeros(n + 1, np.int64)
        self.prev_neuron = np.asarray(prev_neuron, dtype=np.int32)
        self.prev_bin = np.asarray(prev_bin, dtype=np.int32)
        self.prev_offsets = np.asarray(prev_offsets, dtype=np.int64)
        self.window_end = (np.arange(1, n + 1) * self.window if window_end is None
                           else np.asarray(window_end, dtype=np.float64))
        self.trial = np.zeros(n, np.int64) if trial is None else np.asarray(trial, np.int64)
        self.stimulus = stimulus
        self.frame_index = None if frame_index is None else np.asarray(frame_index, np.int64)
        self.behavior = None if behavior is None else np.asarray(behavior, np.float64)
        if self.behavior is not None and self.behavior.ndim == 1:
            self.behavior = self.behavior[:, None]
        if behavior_names is None and self.behavior is not None:
            behavior_names = [f"behavior_{i}" for i in range(self.behavior.shape[1])]
        self.behavior_names = None if behavior_names is None else tuple(behavior_names)
        self._validate()

    # ------------------------------------------------------------------ checks
    def _validate(self):
        n = len(self)
        if n < 0 or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0 and be non-decreasing.")
        for name, neuron, bins, offsets, n_bins in (
            ("", self.neuron, self.bin, self.offsets, self.n_bins),
            ("prev_", self.prev_neuron, self.prev_bin, self.prev_offsets, self.n_prev_bins),
        ):
            if len(offsets) != n + 1:
                raise ValueError(f"{name}offsets has {len(offsets)} entries; expected {n + 1}.")
            if len(neuron) != offsets[-1] or len(bins) != offsets[-1]:
                raise ValueError(f"{name}neuron and {name}bin must hold offsets[-1] events.")
            if len(neuron) and (neuron.min() < 0 or neuron.max() >= self.n_neurons):
                raise ValueError(f"{name}neuron ids must lie in [0, n_neurons={self.n_neurons}).")
            if len(bins) and (bins.min() < 0 or bins.max() >= n_bins):
                raise ValueError(f"{name}bin offsets must lie in [0, {n_bins}).")
        if self.n_neurons < 1 or self.n_bins < 1 or self.dt <= 0:
            raise ValueError("n_neurons and n_bins must be >= 1 and dt > 0.")
        for name in ("window_end", "trial"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one entry per window ({n}).")
        if self.behavior is not None:
            if self.behavior.shape[0] != n:
                raise ValueError(f"behavior has {self.behavior.shape[0]} rows for {n} windows.")
            if not np.all(np.isfinite(self.behavior)):
                raise ValueError("behavior contains NaN or infinite values.")
            if len(self.behavior_names) != self.behavior.shape[1]:
                raise ValueError("behavior_names must name every behaviour column.")
        if self.frame_index is not None:
            if self.stimulus is None:
                raise ValueError("frame_index needs a stimulus array.")
            if self.frame_index.ndim != 2 or self.frame_index.shape[0] != n:
                raise ValueError("frame_index must have shape (n_samples, n_frames).")
            if self.frame_index.min() < 0 or self.frame_index.max() >= len(self.stimulus):
                raise ValueError("frame_index points outside the stimulus movie.")

    # ------------------------------------------------------------- array API
    def __len__(self):
        return len(self.offsets) - 1

    @property
    def shape(self):
        """``(n_samples, n_neurons, n_bins)``, as the dense counts would have."""
        return (len(self), self.n_neurons, self.n_bins)

    @property
    def ndim(self):
        return 3

    @property
    def window(self):
        """Current-window length in seconds."""
        return round(self.n_bins * self.dt, _TIME_DECIMALS)

    @property
    def prev_window(self):
        """Past-window length in seconds."""
        return round(self.n_prev_bins * self.dt, _TIME_DECIMALS)

    @property
    def n_frames(self):
        """Stimulus frames per window (0 without a stimulus)."""
        return 0 if self.frame_index is None else self.frame_index.shape[1]

    def __repr__(self):
        extras = []
        if self.n_prev_bins:
            extras.append(f"prev_window={self.prev_window:g}s")
        if self.frame_index is not None:
            extras.append(f"frames={self.n_frames}x{self.stimulus.shape[1]}x{self.stimulus.shape[2]}")
        if self.behavior is not None:
            extras.append(f"behavior={list(self.behavior_names)}")
        extra = ", " + ", ".join(extras) if extras else ""
        return (f"SpikeWindows(n_samples={len(self)}, n_neurons={self.n_neurons}, "
                f"window={self.window:g}s, dt={self.dt:g}s{extra})")

    def _normalize_index(self, key):
        if isinstance(key, tuple):
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError("SpikeWindows can only be indexed along the sample axis.")
        if isinstance(key, numbers.Integral):
            key = [key]
        if isinstance(key, slice):
            return np.arange(len(self))[key]
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (len(self),):
                raise IndexError(f"boolean index of shape {key.shape} for {len(self)} windows.")
            return np.flatnonzero(key)
        if key.size == 0:
            return key.astype(np.int64)
        if key.dtype.kind not in "iu":
            raise IndexError(f"SpikeWindows indices must be integers or booleans, got {key.dtype}.")
        key = key.astype(np.int64).ravel()
        if key.min() < -len(self) or key.max() >= len(self):
            raise IndexError(f"index out of range for {len(self)} windows.")
        return np.where(key < 0, key + len(self), key)

    def __getitem__(self, key):
        """Windows ``key`` (int, slice, boolean mask or index array) as a new SpikeWindows."""
        idx = self._normalize_index(key)
        cur, cur_len = _ranges_index(self.offsets[idx], self.offsets[idx + 1])
        prev, prev_len = _ranges_index(self.prev_offsets[idx], self.prev_offsets[idx + 1])
        return self._replace(
            neuron=self.neuron[cur], bin=self.bin[cur], offsets=_offsets_from_lengths(cur_len),
            prev_neuron=self.prev_neuron[prev], prev_bin=self.prev_bin[prev],
            prev_offsets=_offsets_from_lengths(prev_len),
            window_end=self.window_end[idx], trial=self.trial[idx],
            frame_index=None if self.frame_index is None else self.frame_index[idx],
            behavior=None if self.behavior is None else self.behavior[idx],
        )

    def _replace(self, **changes):
        fields = dict(
            neuron=self.neuron, bin=self.bin, offsets=self.offsets, n_neurons=self.n_neurons,
            dt=self.dt, n_bins=self.n_bins, prev_neuron=self.prev_neuron, prev_bin=self.prev_bin,
            prev_offsets=self.prev_offsets, n_prev_bins=self.n_prev_bins,
            window_end=self.window_end, trial=self.trial, stimulus=self.stimulus,
            frame_index=self.frame_index, behavior=self.behavior,
            behavior_names=self.behavior_names,
        )
        fields.update(changes)
        return SpikeWindows(**fields)

    def rebin(self, dt):
        """The same windows with time bins of ``dt`` seconds (a whole multiple of ``self.dt``).

        Spikes keep their windows and are counted in the coarser bins, in the token order
        (time bin, then neuron). ``dt`` must divide the current and past window lengths.

        Parameters
        ----------
        dt : float
            New bin width in seconds; ``self.dt`` (or None) returns ``self`` unchanged.

        Returns
        -------
        SpikeWindows

        Examples
        --------
        >>> import numpy as np
        >>> from nfestimators import SpikeWindows
        >>> counts = np.zeros((2, 20), dtype=int); counts[0, [1, 3]] = 1
        >>> X = SpikeWindows.from_counts(counts, dt=0.01, window=0.1)
        >>> X.rebin(0.05).to_counts()[0, 0].tolist()
        [2, 0]
        """
        if dt is None:
            return self
        if isinstance(dt, bool) or not isinstance(dt, numbers.Real) or not dt > 0:
            raise ValueError(f"dt must be a positive number of seconds; got {dt!r}.")
        factor = int(round(dt / self.dt))
        if factor < 1 or abs(factor * self.dt - dt) > 1e-9 * max(dt, 1.0):
            raise ValueError(f"dt={dt:g} s is not a whole multiple of the windows' bin width "
                             f"{self.dt:g} s; pick a multiple such as {2 * self.dt:g}.")
        if factor == 1:
            return self
        if self.n_bins % factor or self.n_prev_bins % factor:
            raise ValueError(
                f"dt={dt:g} s does not divide the window ({self.window:g} s) and the past "
                f"window ({self.prev_window:g} s) into whole bins; pick a dt that does.")

        def coarsen(neuron, bins, offsets):
            window = np.repeat(np.arange(len(self)), np.diff(offsets))
            bins = bins // factor
            order = np.lexsort((neuron, bins, window))
            return neuron[order], bins[order]

        neuron, bins = coarsen(self.neuron, self.bin, self.offsets)
        prev_neuron, prev_bin = coarsen(self.prev_neuron, self.prev_bin, self.prev_offsets)
        return self._replace(neuron=neuron, bin=bins, prev_neuron=prev_neuron,
                             prev_bin=prev_bin, dt=self.dt * factor,
                             n_bins=self.n_bins // factor,
                             n_prev_bins=self.n_prev_bins // factor)

    # --------------------------------------------------------------- inspection
    def n_spikes(self, past=False):
        """Number of spikes in each window (``past=True``: in each past window)."""
        return np.diff(self.prev_offsets if past else self.offsets)

    def to_counts(self, past=False):
        """Dense counts, shape ``(n_samples, n_neurons, n_bins)`` (or ``n_prev_bins``)."""
        offsets = self.prev_offsets if past else self.offsets
        neuron = self.prev_neuron if past else self.neuron
        bins = self.prev_bin if past else self.bin
        n_bins = self.n_prev_bins if past else self.n_bins
        counts = np.zeros((len(self), self.n_neurons, n_bins), dtype=np.int64)
        window = np.repeat(np.arange(len(self)), np.diff(offsets))
        np.add.at(counts, (window, neuron, bins), 1)
        return counts

    def to_spike_times(self):
        """Spikes as a tidy table: one row per spike with its trial, window, absolute time
        (window start + bin offset, seconds) and neuron.

        Examples
        --------
        >>> X = SpikeWindows.from_spike_times([0.012, 0.061], [2, 0], [0.05, 0.1], dt=0.01,
        ...                                   window=0.05)
        >>> X.to_spike_times().to_dict("list")
        {'trial': [0, 0], 'window': [0, 1], 'time': [0.01, 0.06], 'neuron': [2, 0]}
        """
        import pandas as pd

        window = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        start = self.window_end[window] - self.window
        return pd.DataFrame({
            "trial": self.trial[window], "window": window,
            "time": np.round(start + self.bin * self.dt, _TIME_DECIMALS), "neuron": self.neuron,
        })

    @property
    def frames(self):
        """Stimulus frames per window, ``(n_samples, n_frames, height, width)``, gathered on demand."""
        if self.frame_index is None:
            return None
        return self.stimulus[self.frame_index]

    def with_behavior(self, behavior, names=None):
        """A copy carrying per-window behaviour values ``(n_samples, n_variables)``."""
        return self._replace(behavior=np.array(behavior, dtype=np.float64, copy=True),
                             behavior_names=names)

    def without(self, *modalities):
        """A copy without the given input modalities, ``"frames"`` and / or ``"behavior"``
        (the spikes are shared, not copied).

        Examples
        --------
        >>> import numpy as np
        >>> X = SpikeWindows.from_counts(np.ones((2, 20), int), dt=0.01, window=0.05,
        ...                              behavior=np.arange(20.0))
        >>> X.without("behavior").behavior is None
        True
        """
        unknown = set(modalities) - {"frames", "behavior"}
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; use 'frames' or 'behavior'.")
        changes = {}
        if "frames" in modalities:
            changes.update(stimulus=None, frame_index=None)
        if "behavior" in modalities:
            changes.update(behavior=None, behavior_names=None)
        return self._replace(**changes)

    @classmethod
    def concatenate(cls, parts):
        """Stack several SpikeWindows of the same geometry along the sample axis."""
        parts = list(parts)
        if not parts:
            raise ValueError("concatenate needs at least one SpikeWindows.")
        first = parts[0]
        for p in parts[1:]:
            if (p.n_neurons, p.n_bins, p.n_prev_bins, p.dt) != (
                    first.n_neurons, first.n_bins, first.n_prev_bins, first.dt):
                raise ValueError("all parts must share n_neurons, n_bins, n_prev_bins and dt.")
            if p.stimulus is not first.stimulus:
                raise ValueError("all parts must share one stimulus array.")

        def cat(name):
            return np.concatenate([getattr(p, name) for p in parts])

        def cat_offsets(name):
            lengths = np.concatenate([np.diff(getattr(p, name)) for p in parts])
            return _offsets_from_lengths(lengths)

        has = {name: all(getattr(p, name) is not None for p in parts)
               for name in ("frame_index", "behavior")}
        return first._replace(
            neuron=cat("neuron"), bin=cat("bin"), offsets=cat_offsets("offsets"),
            prev_neuron=cat("prev_neuron"), prev_bin=cat("prev_bin"),
            prev_offsets=cat_offsets("prev_offsets"), window_end=cat("window_end"),
            trial=cat("trial"),
            frame_index=cat("frame_index") if has["frame_index"] else None,
            behavior=cat("behavior") if has["behavior"] else None,
            behavior_names=first.behavior_names if has["behavior"] else None,
        )

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_counts(cls, counts, *, dt, window, prev_window=0.0, stride=None, trial=None,
                    stimulus=None, frame_rate=None, frame_window=None, stimulus_callback=None,
                    behavior=None, behavior_dt=None, behavior_names=None):
        """Windows over a continuous binned recording.

        Windows of ``window`` seconds end every ``stride`` seconds (default: back to back),
        the first one ending ``window`` after the start of each trial. The past window is the
        ``prev_window`` seconds just before the current one, clipped at the trial start (those
        bins are simply empty), so no window reaches into another trial.

        Parameters
        ----------
        counts : array-like of int, shape (n_neurons, n_bins_total)
            Spike counts per neuron and time bin.
        dt : float
            Bin width in seconds.
        window, prev_window : float
            Current and past window lengths in seconds (whole numbers of bins).
        stride : float, optional
            Time between consecutive window ends; defaults to ``window``.
        trial : array-like, shape (n_bins_total,), optional
            Trial label of every bin; windows never cross a change of label.
        stimulus : ndarray of shape (n_frames_total, height, width), optional
            Movie shown during the recording (time 0 = frame 0).
        frame_rate : float, optional
            Movie frames per second (required with ``stimulus``).
        frame_window : float, optional
            Seconds of movie given to each window, ending at the window end; defaults to
            ``window``. ``ceil(frame_window * frame_rate)`` frames.
        stimulus_callback : callable, optional
            ``callback(window_end, trial, n_frames) -> frame_index (n_samples, n_frames)``
            for experiments where time does not map to frames directly (several movies,
            repeats).
        behavior : array-like of shape (n_behavior_samples, n_variables) or dict, optional
            Behaviour sampled every ``behavior_dt`` seconds (dict: name -> 1-D array). Each
            window gets the mean of the samples inside it (the last sample before the window
            start when none falls inside).
        behavior_dt : float, optional
            Behaviour sampling interval in seconds; defaults to ``dt``.
        behavior_names : sequence of str, optional
            Column names when ``behavior`` is an array.

        Returns
        -------
        SpikeWindows

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> counts = rng.poisson(0.1, size=(10, 1000))
        >>> X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)
        >>> len(X), X.n_prev_bins
        (200, 5)
        """
        counts = _check_counts(counts, "counts", ndim=2)
        dt = float(dt)
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be a positive number of seconds; got {dt}.")
        n_bins = _seconds_to_bins(window, dt, "window")
        n_prev = _seconds_to_bins(prev_window, dt, "prev_window")
        step = n_bins if stride is None else _seconds_to_bins(stride, dt, "stride")
        if n_bins < 1 or step < 1:
            raise ValueError("window and stride must be at least one bin long.")
        total = counts.shape[1]
        if trial is None:
            trial = np.zeros(total, dtype=np.int64)
        trial = np.asarray(trial)
        if trial.shape != (total,):
            raise ValueError(f"trial must have one label per bin ({total}), got shape {trial.shape}.")
        seg_start, seg_stop, seg_label = _segments(trial)
        ends, labels, firsts = [], [], []
        for s, e, lab in zip(seg_start, seg_stop, seg_label):
            seg_ends = np.arange(s + n_bins, e + 1, step)
            ends.append(seg_ends)
            labels.append(np.full(len(seg_ends), lab))
            firsts.append(np.full(len(seg_ends), s))
        ends, labels, firsts = map(np.concatenate, (ends, labels, firsts))
        if len(ends) == 0:
            raise ValueError(
                f"no complete window of {window} s fits in the recording (or its trials).")
        keys, neurons = _sorted_events_from_counts(counts)
        X = cls._from_sorted_events(keys, neurons, ends, n_bins, n_prev, firsts, counts.shape[0],
                                    dt, window_end=ends * dt, trial=labels)
        return X._attach(stimulus, frame_rate, frame_window, stimulus_callback, behavior,
                         behavior_dt, behavior_names, time=ends * dt)

    @classmethod
    def _from_sorted_events(cls, keys, neurons, ends, n_bins, n_prev, firsts, n_neurons, dt,
                            window_end, trial):
        starts = ends - n_bins
        neuron, rel, offsets = _gather_events(keys, neurons, starts, ends)
        prev = {}
        if n_prev:
            prev_start = starts - n_prev
            p_neuron, p_rel, p_offsets = _gather_events(keys, neurons,
                                                        np.maximum(prev_start, firsts), starts)
            # bins count from the nominal past-window start, also when it was clipped
            p_rel = p_rel + np.repeat(np.maximum(firsts - prev_start, 0), np.diff(p_offsets))
            prev = dict(prev_neuron=p_neuron, prev_bin=p_rel, prev_offsets=p_offsets)
        return cls(neuron, rel, offsets, n_neurons=n_neurons, dt=dt, n_bins=n_bins,
                   n_prev_bins=n_prev, window_end=np.round(window_end, _TIME_DECIMALS),
                   trial=trial, **prev)

    @classmethod
    def from_trials(cls, trials, *, dt, window=None, prev_window=0.0, stride=None,
                    stimulus=None, frame_rate=None, frame_window=None, stimulus_callback=None,
                    behavior=None, behavior_dt=None, behavior_names=None):
        """Windows from trial-structured data; time restarts at 0 in every trial.

        Parameters
        ----------
        trials : list of arrays (n_neurons, n_bins_i) or ndarray (n_trials, n_neurons, n_bins)
            Spike counts of each trial.
        dt : float
            Bin width in seconds.
        window : float, optional
            Window length in seconds. ``None`` makes one window per trial covering the whole
            trial (the longest trial sets ``n_bins``) with no past window.
        prev_window, stride, stimulus, frame_rate, frame_window, stimulus_callback :
            As in :meth:`from_counts`; windows never cross trial boundaries and
            ``window_end`` is the time within the trial.
        behavior, behavior_dt, behavior_names :
            Per-trial behaviour: with ``window=None``, an array ``(n_trials, n_variables)``
            of one value per trial; otherwise as in :meth:`from_counts`, sampled over the
            concatenated trials.

        Returns
        -------
        SpikeWindows

        Examples
        --------
        >>> import numpy as np
        >>> trials = np.random.default_rng(0).poisson(0.2, size=(4, 6, 50))
        >>> X = SpikeWindows.from_trials(trials, dt=0.001)
        >>> X.shape, X.trial.tolist()
        ((4, 6, 50), [0, 1, 2, 3])
        """
        if isinstance(trials, np.ndarray) and trials.ndim == 3:
            trials = list(trials)
        trials = [_check_counts(t, f"trials[{i}]", ndim=2) for i, t in enumerate(trials)]
        if not trials:
            raise ValueError("trials is empty.")
        n_neurons = trials[0].shape[0]
        if any(t.shape[0] != n_neurons for t in trials):
            raise ValueError("every trial must have the same number of neurons (rows).")
        lengths = np.array([t.shape[1] for t in trials])
        counts = np.concatenate(trials, axis=1)
        labels = np.repeat(np.arange(len(trials)), lengths)
        if window is not None:
            X = cls.from_counts(counts, dt=dt, window=window, prev_window=prev_window,
                                stride=stride, trial=labels, behavior=behavior,
                                behavior_dt=behavior_dt, behavior_names=behavior_names)
            trial_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]) * float(dt)
            X.window_end = np.round(X.window_end - trial_start[X.trial], _TIME_DECIMALS)
            return X._attach(stimulus, frame_rate, frame_window, stimulus_callback, None, None,
                             None, time=X.window_end)
        if prev_window:
            raise ValueError("prev_window needs window: whole-trial windows have no past.")
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        keys, neurons = _sorted_events_from_counts(counts)
        n_bins = int(lengths.max())  # shorter trials end in silence
        neuron, rel, offsets = _gather_events(keys, neurons, firsts, firsts + lengths)
        X = cls(neuron, rel, offsets, n_neurons=n_neurons, dt=float(dt), n_bins=n_bins,
                window_end=np.round(lengths * float(dt), _TIME_DECIMALS),
                trial=np.arange(len(trials)))
        if behavior is not None:
            values, names = _behavior_table(behavior, behavior_names)
            if len(values) != len(trials):
                raise ValueError(f"behavior has {len(values)} rows for {len(trials)} trials.")
            X = X.with_behavior(values, names)
        return X._attach(stimulus, frame_rate, frame_window, stimulus_callback, None, None, None,
                         time=X.window_end)

    @classmethod
    def from_spike_times(cls, times, units, window_ends, *, dt, window, prev_window=0.0,
                         n_neurons=None, trial=None, spike_trial=None):
        """Windows from sorted spikes: spike times (s) and unit ids, cut at given window ends.

        Parameters
        ----------
        times : array-like of float, shape (n_spikes,)
            Spike times in seconds; a spike at ``t`` falls in bin ``floor(t / dt)``.
        units : array-like of int, shape (n_spikes,)
            Unit (neuron) index of each spike, ``0 <= unit < n_neurons``.
        window_ends : array-like of float, shape (n_samples,)
            End time of each window in seconds.
        dt, window, prev_window : float
            Bin width and window lengths in seconds.
        n_neurons : int, optional
            Number of units; defaults to ``max(units) + 1``.
        trial : array-like of int, shape (n_samples,), optional
            Trial of each window; then ``spike_trial`` gives the trial of each spike and
            windows only see spikes of their own trial.
        spike_trial : array-like of int, shape (n_spikes,), optional

        Returns
        -------
        SpikeWindows

        Examples
        --------
        >>> X = SpikeWindows.from_spike_times([0.012, 0.031, 0.031], [2, 0, 1], [0.05, 0.1],
        ...                                   dt=0.01, window=0.05)
        >>> X.neuron.tolist(), X.bin.tolist(), X.n_spikes().tolist()
        ([2, 0, 1], [1, 3, 3], [3, 0])
        """
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
            raise ValueError("units must be non-negative integer unit ids.")
        if n_neurons is None:
            if units.size == 0:
                raise ValueError("n_neurons is required when there are no spikes.")
            n_neurons = int(units.max()) + 1
        elif units.size and units.max() >= n_neurons:
            raise ValueError(f"unit id {units.max()} >= n_neurons={n_neurons}.")
        dt = float(dt)
        n_bins = _seconds_to_bins(window, dt, "window")
        n_prev = _seconds_to_bins(prev_window, dt, "prev_window")
        bins = np.floor(np.round(times / dt, _TIME_DECIMALS)).astype(np.int64)
        end_bins = np.round(window_ends / dt).astype(np.int64)
        if trial is None:
            if spike_trial is not None:
                raise ValueError("spike_trial needs trial (the trial of each window).")
            spike_trial, trial = np.zeros(len(times), np.int64), np.zeros(len(window_ends), np.int64)
        spike_trial, trial = np.asarray(spike_trial), np.asarray(trial)
        if spike_trial.shape != times.shape or trial.shape != window_ends.shape:
            raise ValueError("spike_trial must match times and trial must match window_ends.")
        codes, inverse = np.unique(np.concatenate([spike_trial, trial]), return_inverse=True)
        span = int(max(bins.max(initial=0), end_bins.max()) + n_bins + n_prev + 1)
        base = (np.arange(len(codes)) * span)
        keys = base[inverse[:len(times)]] + bins
        order = np.lexsort((units, keys))
        win_base = base[inverse[len(times):]]
        X = cls._from_sorted_events(keys[order], units[order].astype(np.int32),
                                    win_base + end_bins, n_bins, n_prev, win_base, n_neurons, dt,
                                    window_end=window_ends, trial=trial)
        return X

    @classmethod
    def from_array(cls, X, *, dt=0.01):
        """Convert dense counts: 3-D ``(n_samples, n_neurons, n_bins)`` or 2-D
        ``(n_samples, n_neurons)`` (one bin per window). No past window.

        Examples
        --------
        >>> import numpy as np
        >>> SpikeWindows.from_array(np.ones((4, 3), dtype=int)).shape
        (4, 3, 1)
        """
        arr = _check_counts(X, "X", ndim=(2, 3))
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return cls.from_trials(arr, dt=dt)

    # -------------------------------------------------------------- modalities
    def _attach(self, stimulus, frame_rate, frame_window, stimulus_callback, behavior,
                behavior_dt, behavior_names, time):
        X = self
        if stimulus is not None:
            X = X._replace(stimulus=stimulus, frame_index=_frame_index(
                stimulus, frame_rate, self.window if frame_window is None else frame_window,
                stimulus_callback, time, self.trial))
        elif stimulus_callback is not None or frame_rate is not None:
            raise ValueError("frame_rate / stimulus_callback given without a stimulus.")
        if behavior is not None:
            values, names = _behavior_table(behavior, behavior_names)
            step = self.dt if behavior_dt is None else float(behavior_dt)
            X = X.with_behavior(_window_means(values, step, time - self.window, time), names)
        return X


def _behavior_table(behavior, names):
    """Behaviour as a 2-D float array plus column names (dict or array input)."""
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


def _window_means(values, step, start, stop):
    """Mean of the samples stamped in ``[start, stop)``; the last sample before ``start``
    when none falls inside. Clipped to the recorded range."""
    n = len(values)
    lo = np.clip(np.ceil(np.round(start / step, _TIME_DECIMALS)).astype(np.int64), 0, n)
    hi = np.clip(np.ceil(np.round(stop / step, _TIME_DECIMALS)).astype(np.int64), 0, n)
    csum = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    empty = hi <= lo
    fallback = np.clip(lo - 1, 0, n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)[:, None]
    means[empty] = values[fallback[empty]]
    return means


def _frame_index(stimulus, frame_rate, frame_window, callback, time, trial):
    """Frames of the movie for each window: the last one is the frame shown at the window end."""
    stimulus_shape = np.shape(stimulus)
    if len(stimulus_shape) != 3:
        raise ValueError(f"stimulus must be (n_frames, height, width), got shape {stimulus_shape}.")
    if frame_rate is None or not float(frame_rate) > 0:
        raise ValueError("a stimulus needs frame_rate (frames per second, > 0).")
    n_frames = int(np.ceil(round(float(frame_window) * float(frame_rate), _TIME_DECIMALS)))
    if n_frames < 1:
        raise ValueError("frame_window must cover at least one frame.")
    if callback is not None:
        index = np.asarray(callback(time, trial, n_frames))
        if index.shape != (len(time), n_frames):
            raise ValueError(f"stimulus_callback must return shape {(len(time), n_frames)}, "
                             f"got {index.shape}.")
        return index
    last = np.floor(np.round(np.asarray(time) * float(frame_rate), _TIME_DECIMALS)).astype(np.int64)
    index = last[:, None] + np.arange(1 - n_frames, 1)
    if np.any(index >= stimulus_shape[0]):
        warnings.warn("some windows end after the stimulus movie; their last frames are repeated.",
                      stacklevel=3)
    return np.clip(index, 0, stimulus_shape[0] - 1)


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
