"""Sparse per-window spike storage: the sample container of every estimator.

The builders (``from_counts``, ``from_trials``, ``from_spike_times``, ``from_array``) live in
:mod:`nfestimators.data.builders` and :mod:`nfestimators.data.spike_times`; this module holds
the container itself: checks, sample indexing, dense views and copies with other inputs.
"""

from __future__ import annotations

import numbers

import numpy as np

from .builders import WindowBuilders
from .units import (TIME_DECIMALS, offsets_from_lengths, ranges_index, sample_index,
                    seconds_to_bins)

__all__ = ["SpikeWindows"]

class SpikeWindows(WindowBuilders):
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
    session : array-like of int, shape (n_samples,), optional
        Recording session of each window, as a position in ``sessions``; None for one
        session. Neuron ids are per session: a window of session ``s`` holds ids below
        ``session_n_neurons[s]``. Build multi-session windows with :meth:`from_sessions`.
    sessions : sequence of str or int, optional
        The session keys (needed with ``session``).
    session_n_neurons : sequence of int, optional
        Neurons of every session (needed with ``session``); ``n_neurons`` is their maximum.

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
                 stimulus=None, frame_index=None, behavior=None, behavior_names=None,
                 session=None, sessions=None, session_n_neurons=None):
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
        self.trial = np.zeros(n, np.int64) if trial is None else _trial_ids(trial)
        self.stimulus = stimulus
        self.frame_index = None if frame_index is None else np.asarray(frame_index, np.int64)
        self.behavior = None if behavior is None else np.asarray(behavior, np.float64)
        if self.behavior is not None and self.behavior.ndim == 1:
            self.behavior = self.behavior[:, None]
        if behavior_names is None and self.behavior is not None:
            behavior_names = [f"behavior_{i}" for i in range(self.behavior.shape[1])]
        self.behavior_names = None if behavior_names is None else tuple(behavior_names)
        self.session = None if session is None else np.asarray(session, dtype=np.int64)
        self.sessions = None if sessions is None else tuple(
            k.item() if isinstance(k, np.generic) else k for k in sessions)
        self.session_n_neurons = (None if session_n_neurons is None
                                  else tuple(int(n) for n in session_n_neurons))
        self._validate()
        self._validate_sessions()

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

    def _validate_sessions(self):
        given = [x is not None for x in (self.session, self.sessions, self.session_n_neurons)]
        if not any(given):
            return
        if not all(given):
            raise ValueError("session, sessions and session_n_neurons go together: give all "
                             "three (SpikeWindows.from_sessions builds them) or none.")
        n_sessions = len(self.sessions)
        if n_sessions < 1 or len(self.session_n_neurons) != n_sessions:
            raise ValueError(f"session_n_neurons must have one entry per session "
                             f"({n_sessions}); got {len(self.session_n_neurons)}.")
        if len(set(self.sessions)) != n_sessions:
            raise ValueError(f"sessions must be distinct keys; got {list(self.sessions)}.")
        if min(self.session_n_neurons) < 1 or max(self.session_n_neurons) > self.n_neurons:
            raise ValueError("session_n_neurons must lie in [1, n_neurons].")
        if len(self.session) != len(self):
            raise ValueError(f"session must have one entry per window ({len(self)}).")
        if len(self.session) and (self.session.min() < 0 or self.session.max() >= n_sessions):
            raise ValueError(f"session values must be positions in sessions [0, {n_sessions}).")
        limit = np.asarray(self.session_n_neurons, dtype=np.int64)[self.session]  # (n,)
        for name, neuron, offsets in (("neuron", self.neuron, self.offsets),
                                      ("prev_neuron", self.prev_neuron, self.prev_offsets)):
            if np.any(neuron >= np.repeat(limit, np.diff(offsets))):
                raise ValueError(f"{name} ids must lie below their session's number of "
                                 "neurons (session_n_neurons).")

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
        return round(self.n_bins * self.dt, TIME_DECIMALS)

    @property
    def prev_window(self):
        """Past-window length in seconds."""
        return round(self.n_prev_bins * self.dt, TIME_DECIMALS)

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
        if self.sessions is not None:
            extras.append(f"sessions={len(self.sessions)}")
        extra = ", " + ", ".join(extras) if extras else ""
        return (f"SpikeWindows(n_samples={len(self)}, n_neurons={self.n_neurons}, "
                f"window={self.window:g}s, dt={self.dt:g}s{extra})")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "SpikeWindows is a sparse container, not a dense array: use X.to_counts() for the "
            "(n_samples, n_neurons, n_bins) counts, or X.to_counts().reshape(len(X), -1) as a "
            "feature matrix for estimators outside nfestimators.")

    def __getitem__(self, key):
        """Windows ``key`` (int, slice, boolean mask or index array) as a new SpikeWindows."""
        idx = sample_index(key, len(self))
        cur, cur_len = ranges_index(self.offsets[idx], self.offsets[idx + 1])
        prev, prev_len = ranges_index(self.prev_offsets[idx], self.prev_offsets[idx + 1])
        return self._replace(
            neuron=self.neuron[cur], bin=self.bin[cur], offsets=offsets_from_lengths(cur_len),
            prev_neuron=self.prev_neuron[prev], prev_bin=self.prev_bin[prev],
            prev_offsets=offsets_from_lengths(prev_len),
            window_end=self.window_end[idx], trial=self.trial[idx],
            frame_index=None if self.frame_index is None else self.frame_index[idx],
            behavior=None if self.behavior is None else self.behavior[idx],
            session=None if self.session is None else self.session[idx],
        )

    def _replace(self, **changes):
        fields = dict(
            neuron=self.neuron, bin=self.bin, offsets=self.offsets, n_neurons=self.n_neurons,
            dt=self.dt, n_bins=self.n_bins, prev_neuron=self.prev_neuron, prev_bin=self.prev_bin,
            prev_offsets=self.prev_offsets, n_prev_bins=self.n_prev_bins,
            window_end=self.window_end, trial=self.trial, stimulus=self.stimulus,
            frame_index=self.frame_index, behavior=self.behavior,
            behavior_names=self.behavior_names, session=self.session, sessions=self.sessions,
            session_n_neurons=self.session_n_neurons,
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
        try:
            factor = seconds_to_bins(dt, self.dt, "dt", minimum=1)
        except ValueError:
            raise ValueError(f"dt={dt:g} s is not a whole multiple of the windows' bin width "
                             f"{self.dt:g} s; pick a multiple such as {2 * self.dt:g}.") from None
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
            "time": np.round(start + self.bin * self.dt, TIME_DECIMALS), "neuron": self.neuron,
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

    def with_frames(self, stimulus, frame_index):
        """A copy showing ``stimulus[frame_index[i]]`` to window ``i`` (the movie is shared)."""
        return self._replace(stimulus=stimulus,
                             frame_index=np.array(frame_index, dtype=np.int64, copy=True))

    def with_events(self, neuron, bin, offsets):
        """A copy whose current-window events are replaced (e.g. by generated spikes).

        Every other array (past events, window ends, trials, frame indices, behaviour) is
        copied, so editing the result never edits ``self``; the stimulus movie is shared.

        Examples
        --------
        >>> import numpy as np
        >>> X = SpikeWindows.from_counts(np.ones((2, 10), int), dt=0.01, window=0.05)
        >>> Y = X.with_events([1], [4], [0, 1, 1])
        >>> Y.n_spikes().tolist(), Y.window_end is X.window_end
        ([1, 0], False)
        """
        def copy(array):
            return None if array is None else np.array(array, copy=True)

        return self._replace(
            neuron=copy(neuron), bin=copy(bin), offsets=copy(offsets),
            prev_neuron=copy(self.prev_neuron), prev_bin=copy(self.prev_bin),
            prev_offsets=copy(self.prev_offsets), window_end=copy(self.window_end),
            trial=copy(self.trial), frame_index=copy(self.frame_index),
            behavior=copy(self.behavior), session=copy(self.session))

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
            if (p.sessions, p.session_n_neurons) != (first.sessions, first.session_n_neurons):
                raise ValueError("all parts must share one session table (sessions and "
                                 "session_n_neurons); use SpikeWindows.from_sessions to join "
                                 "recordings of different sessions.")

        def cat(name):
            return np.concatenate([getattr(p, name) for p in parts])

        def cat_offsets(name):
            lengths = np.concatenate([np.diff(getattr(p, name)) for p in parts])
            return offsets_from_lengths(lengths)

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
            session=None if first.session is None else cat("session"),
        )

    @property
    def n_sessions(self):
        """Number of recording sessions in the session table (1 without one)."""
        return 1 if self.sessions is None else len(self.sessions)

    def session_of_windows(self):
        """The session key of every window, as an object array (``None`` entries when ``X``
        has no session table)."""
        if self.session is None:
            return np.full(len(self), None, dtype=object)
        return np.asarray(self.sessions, dtype=object)[self.session]

    def split_sessions(self):
        """The windows of every session, as a dict of session key -> single-session
        SpikeWindows (local neuron ids, that session's ``n_neurons``); the inverse of
        :meth:`from_sessions` (up to the trial ids, which stay distinct across sessions).

        Examples
        --------
        >>> import numpy as np
        >>> a = SpikeWindows.from_counts(np.ones((3, 20), int), dt=0.01, window=0.05)
        >>> b = SpikeWindows.from_counts(np.ones((5, 20), int), dt=0.01, window=0.05)
        >>> X = SpikeWindows.from_sessions([a, b], keys=["a", "b"])
        >>> {k: v.n_neurons for k, v in X.split_sessions().items()}
        {'a': 3, 'b': 5}
        """
        if self.session is None:
            return {None: self}
        parts = {}
        for s, key in enumerate(self.sessions):
            part = self[self.session == s]
            parts[key] = part._replace(n_neurons=self.session_n_neurons[s], session=None,
                                       sessions=None, session_n_neurons=None)
        return parts

    @classmethod
    def from_sessions(cls, parts, keys=None):
        """Join the windows of several recording sessions into one container.

        Every session keeps its own neurons (ids ``0 .. n_neurons - 1`` of that session);
        the result records the session of every window (``session``), the session keys
        (``sessions``) and the neurons of each (``session_n_neurons``). Sessions must share
        the time bins and window geometry; their neuron counts and lengths may differ.

        Parameters
        ----------
        parts : sequence of SpikeWindows
            One single-session container per session.
        keys : sequence of str or int, optional
            Distinct session keys (names); default the positions ``0, 1, ...``.

        Returns
        -------
        SpikeWindows
            ``n_neurons`` is the largest session's; trial ids are offset so that no two
            sessions share one.

        Examples
        --------
        >>> import numpy as np
        >>> a = SpikeWindows.from_counts(np.ones((3, 20), int), dt=0.01, window=0.05)
        >>> b = SpikeWindows.from_counts(np.ones((5, 40), int), dt=0.01, window=0.05)
        >>> X = SpikeWindows.from_sessions([a, b], keys=["mouse1", "mouse2"])
        >>> len(X), X.n_neurons, X.sessions, X.session_n_neurons
        (12, 5, ('mouse1', 'mouse2'), (3, 5))
        """
        parts = list(parts)
        if not parts or not all(isinstance(p, SpikeWindows) for p in parts):
            raise TypeError("parts must be a non-empty sequence of SpikeWindows (one per "
                            "session).")
        keys = list(range(len(parts))) if keys is None else list(keys)
        if len(keys) != len(parts) or len(set(keys)) != len(keys):
            raise ValueError(f"keys must be {len(parts)} distinct session keys, one per part; "
                             f"got {keys}.")
        first = parts[0]
        for i, p in enumerate(parts):
            if p.session is not None:
                raise ValueError(f"parts[{i}] already holds several sessions; join "
                                 "single-session containers (X.split_sessions() splits one).")
            if (p.n_bins, p.n_prev_bins) != (first.n_bins, first.n_prev_bins) or not np.isclose(
                    p.dt, first.dt):
                raise ValueError(
                    f"parts[{i}] has windows of {p.n_bins} bins (past {p.n_prev_bins}) of "
                    f"{p.dt:g} s, parts[0] of {first.n_bins} (past {first.n_prev_bins}) of "
                    f"{first.dt:g} s: sessions must share dt, window and prev_window.")
            if (p.behavior is None) != (first.behavior is None) or (
                    p.behavior is not None and p.behavior_names != first.behavior_names):
                raise ValueError(f"parts[{i}] and parts[0] carry different behaviour "
                                 "variables; every session needs the same behavior_names.")
            if (p.frame_index is None) != (first.frame_index is None) or (
                    p.frame_index is not None
                    and (p.n_frames, *np.shape(p.stimulus)[1:])
                    != (first.n_frames, *np.shape(first.stimulus)[1:])):
                raise ValueError(f"parts[{i}] and parts[0] have different stimulus clips; "
                                 "every session needs frames of one shape, or none.")

        def cat(name):
            return np.concatenate([getattr(p, name) for p in parts])

        def cat_offsets(name):
            return offsets_from_lengths(np.concatenate([np.diff(getattr(p, name))
                                                        for p in parts]))

        trial_start = np.cumsum([0] + [int(p.trial.max(initial=-1)) + 1 for p in parts])
        stimulus, frame_index = None, None
        if first.frame_index is not None:
            shared = all(p.stimulus is first.stimulus for p in parts)
            movies = [first.stimulus] if shared else [p.stimulus for p in parts]
            frame_start = np.cumsum([0] + [len(m) for m in movies])
            stimulus = first.stimulus if shared else np.concatenate(movies)
            frame_index = np.concatenate([p.frame_index + (0 if shared else frame_start[i])
                                          for i, p in enumerate(parts)])
        return cls(
            cat("neuron"), cat("bin"), cat_offsets("offsets"),
            n_neurons=max(p.n_neurons for p in parts), dt=first.dt, n_bins=first.n_bins,
            prev_neuron=cat("prev_neuron"), prev_bin=cat("prev_bin"),
            prev_offsets=cat_offsets("prev_offsets"), n_prev_bins=first.n_prev_bins,
            window_end=cat("window_end"),
            trial=np.concatenate([p.trial + trial_start[i] for i, p in enumerate(parts)]),
            stimulus=stimulus, frame_index=frame_index,
            behavior=None if first.behavior is None else cat("behavior"),
            behavior_names=first.behavior_names,
            session=np.repeat(np.arange(len(parts)), [len(p) for p in parts]),
            sessions=keys, session_n_neurons=[p.n_neurons for p in parts])


def _trial_ids(trial):
    """Trial labels as int64, refusing text labels with the fix."""
    trial = np.asarray(trial)
    whole = trial.dtype.kind in "biu" or (
        trial.dtype.kind == "f" and np.all(trial == np.round(trial)))
    if not whole:
        raise TypeError(f"trial labels must be integers, got dtype {trial.dtype}; encode other "
                        f"labels first, e.g. trial=np.unique(labels, return_inverse=True)[1].")
    return trial.astype(np.int64)
