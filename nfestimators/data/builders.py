"""Builders of :class:`~nfestimators.SpikeWindows` from binned counts, trials and dense arrays.

They are classmethods of ``SpikeWindows`` (through the :class:`WindowBuilders` base), so the
public spelling stays ``SpikeWindows.from_counts(...)``; the spike-time builder lives in
:mod:`nfestimators.data.spike_times`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .modalities import attach_inputs, behavior_table
from .spike_times import SpikeTimeBuilder
from .units import (TIME_DECIMALS, ImplausibleDataWarning, check_bin_width, check_counts,
                    seconds_to_bins, warn_if_implausible_counts)
from .events import gather_events, sorted_events_from_counts, window_events

__all__ = ["WindowBuilders"]


def _segments(labels):
    """Start/stop indices and label of each run of equal values in ``labels``."""
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(labels)]])
    return starts, stops, labels[starts]


def _bin_labels(trial, total):
    """Trial label of every bin (integers are checked when the windows are built)."""
    if trial is None:
        return np.zeros(total, dtype=np.int64)
    trial = np.asarray(trial)
    if trial.shape != (total,):
        raise ValueError(f"trial must have one label per bin ({total}), got shape {trial.shape}.")
    return trial


def _warn_if_transposed(shape, name, fix):
    neurons, bins = shape
    if neurons > 10 * bins:
        warnings.warn(f"{name} has {neurons} rows (neurons) and only {bins} columns (time bins); "
                      f"rows must be neurons and columns time bins. If yours are the other way "
                      f"round, pass {fix}.", ImplausibleDataWarning, stacklevel=3)


class WindowBuilders(SpikeTimeBuilder):
    """The ``from_counts`` / ``from_trials`` / ``from_array`` classmethods of SpikeWindows."""

    @classmethod
    def _count_windows(cls, counts, dt, n_bins, n_prev, step, labels, restart_time):
        """Windows ending every ``step`` bins inside each run of equal ``labels``.

        Returns the windows and their end times on the recording's clock; with
        ``restart_time`` their ``window_end`` counts from the start of their run instead.
        """
        ends, run_labels, firsts = [], [], []
        for start, stop, label in zip(*_segments(labels)):
            run_ends = np.arange(start + n_bins, stop + 1, step)
            ends.append(run_ends)
            run_labels.append(np.full(len(run_ends), label))
            firsts.append(np.full(len(run_ends), start))
        ends, run_labels, firsts = map(np.concatenate, (ends, run_labels, firsts))
        if len(ends) == 0:
            raise ValueError(f"no complete window of {n_bins * dt:g} s fits in the recording "
                             f"(or its trials), which holds {counts.shape[1]} bins of {dt:g} s.")
        keys, neurons = sorted_events_from_counts(counts)
        window_end = (ends - firsts if restart_time else ends) * dt
        X = cls(**window_events(keys, neurons, ends, n_bins, n_prev, firsts),
                n_neurons=counts.shape[0], dt=dt, n_bins=n_bins, n_prev_bins=n_prev,
                window_end=np.round(window_end, TIME_DECIMALS), trial=run_labels)
        return X, ends * dt

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
        trial : array-like of int, shape (n_bins_total,), optional
            Trial label of every bin; windows never cross a change of label.
        stimulus : ndarray of shape (n_frames_total, height, width), optional
            Movie shown during the recording (time 0 = frame 0); NaN frames are refused.
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
            Behaviour sampled every ``behavior_dt`` seconds from time 0 (dict: name -> 1-D
            array). Each window gets the mean of the samples inside it (the last sample before
            the window start when none falls inside). A trace that ends before the last window
            is an error (never extended); for samples at their own timestamps use
            :meth:`from_spike_times` with ``behavior_times``.
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
        >>> from nfestimators import SpikeWindows
        >>> rng = np.random.default_rng(0)
        >>> counts = rng.poisson(0.1, size=(10, 1000))
        >>> X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)
        >>> len(X), X.n_prev_bins
        (200, 5)
        """
        counts = check_counts(counts, "counts", ndim=2)
        dt = check_bin_width(dt)
        _warn_if_transposed(counts.shape, "counts", "counts.T")
        warn_if_implausible_counts(counts, dt)
        n_bins = seconds_to_bins(window, dt, "window", minimum=1)
        n_prev = seconds_to_bins(prev_window, dt, "prev_window")
        step = n_bins if stride is None else seconds_to_bins(stride, dt, "stride", minimum=1)
        labels = _bin_labels(trial, counts.shape[1])
        X, time = cls._count_windows(counts, dt, n_bins, n_prev, step, labels, restart_time=False)
        return attach_inputs(X, time=time, stimulus=stimulus, frame_rate=frame_rate,
                             frame_window=frame_window, stimulus_callback=stimulus_callback,
                             behavior=behavior, behavior_dt=behavior_dt,
                             behavior_names=behavior_names)

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
        >>> from nfestimators import SpikeWindows
        >>> trials = np.random.default_rng(0).poisson(0.2, size=(4, 6, 50))
        >>> X = SpikeWindows.from_trials(trials, dt=0.001)
        >>> X.shape, X.trial.tolist()
        ((4, 6, 50), [0, 1, 2, 3])
        """
        trials = _trial_list(trials)
        dt = check_bin_width(dt)
        n_neurons = trials[0].shape[0]
        if any(t.shape[0] != n_neurons for t in trials):
            raise ValueError("every trial must have the same number of neurons (rows).")
        lengths = np.array([t.shape[1] for t in trials])
        counts = np.concatenate(trials, axis=1)
        _warn_if_transposed((n_neurons, int(lengths.max())), "trials",
                            "np.swapaxes(trials, 1, 2) (trials must be (n_trials, n_neurons, "
                            "n_bins))")
        warn_if_implausible_counts(counts, dt, "trials")
        if window is None:
            return cls._whole_trials(counts, lengths, dt, prev_window, behavior, behavior_names,
                                     dict(stimulus=stimulus, frame_rate=frame_rate,
                                          frame_window=frame_window,
                                          stimulus_callback=stimulus_callback))
        n_bins = seconds_to_bins(window, dt, "window", minimum=1)
        n_prev = seconds_to_bins(prev_window, dt, "prev_window")
        step = n_bins if stride is None else seconds_to_bins(stride, dt, "stride", minimum=1)
        labels = np.repeat(np.arange(len(trials)), lengths)
        X, time = cls._count_windows(counts, dt, n_bins, n_prev, step, labels, restart_time=True)
        if behavior is not None:
            X = attach_inputs(X, time=time, behavior=behavior, behavior_dt=behavior_dt,
                              behavior_names=behavior_names)
        return attach_inputs(X, time=X.window_end, stimulus=stimulus, frame_rate=frame_rate,
                             frame_window=frame_window, stimulus_callback=stimulus_callback)

    @classmethod
    def _whole_trials(cls, counts, lengths, dt, prev_window, behavior, behavior_names, movie):
        """One window per trial, as long as the longest trial (shorter ones end in silence)."""
        if prev_window:
            raise ValueError("prev_window needs window: whole-trial windows have no past.")
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        keys, neurons = sorted_events_from_counts(counts)
        neuron, rel, offsets = gather_events(keys, neurons, firsts, firsts + lengths)
        X = cls(neuron, rel, offsets, n_neurons=counts.shape[0], dt=dt,
                n_bins=int(lengths.max()),
                window_end=np.round(lengths * dt, TIME_DECIMALS), trial=np.arange(len(lengths)))
        if behavior is not None:
            values, names = behavior_table(behavior, behavior_names)
            if len(values) != len(lengths):
                raise ValueError(f"behavior has {len(values)} rows for {len(lengths)} trials.")
            X = X.with_behavior(values, names)
        return attach_inputs(X, time=X.window_end, **movie)

    @classmethod
    def from_array(cls, X, *, dt=0.01):
        """Convert dense counts: 3-D ``(n_samples, n_neurons, n_bins)`` or 2-D
        ``(n_samples, n_neurons)`` (one bin per window). No past window.

        Examples
        --------
        >>> import numpy as np
        >>> from nfestimators import SpikeWindows
        >>> SpikeWindows.from_array(np.ones((4, 3), dtype=int)).shape
        (4, 3, 1)
        """
        arr = check_counts(X, "X", ndim=(2, 3))
        if arr.ndim == 2:
            arr = arr[:, :, None]
        n_samples, n_neurons, n_bins = arr.shape
        # no plausibility warnings here: sklearn-style feature arrays have few bins and a
        # nominal dt, so "transposed" or "too many spikes per bin" would be false alarms
        counts = arr.transpose(1, 0, 2).reshape(n_neurons, n_samples * n_bins)
        return cls._whole_trials(counts, np.full(n_samples, n_bins), check_bin_width(dt), 0.0,
                                 None, None, {})


def _trial_list(trials):
    """Trials as a list of validated 2-D count arrays."""
    if hasattr(trials, "columns"):
        raise TypeError(
            "trials must be a list of (n_neurons, n_bins) count arrays or a 3-D array "
            "(n_trials, n_neurons, n_bins), not a DataFrame; for a table of spike times use "
            "SpikeWindows.from_spike_times(df['time'], df['unit'], window_ends, dt=..., "
            "window=..., trial=..., spike_trial=df['trial']).")
    if isinstance(trials, np.ndarray) and trials.ndim == 3:
        trials = list(trials)
    if isinstance(trials, np.ndarray) or not hasattr(trials, "__iter__"):
        raise ValueError(f"trials must be a list of (n_neurons, n_bins) arrays or a 3-D array; "
                         f"got {type(trials).__name__} of shape {np.shape(trials)}.")
    trials = [check_counts(t, f"trials[{i}]", ndim=2) for i, t in enumerate(trials)]
    if not trials:
        raise ValueError("trials is empty.")
    return trials
