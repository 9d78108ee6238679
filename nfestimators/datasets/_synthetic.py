"""Synthetic spiking data with a known generative model (spec section 8)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import lfilter
from sklearn.utils import Bunch

from nfestimators.data import SpikeWindows
from nfestimators.data.units import frame_at, on_grid, seconds_to_bins, window_means

from ._random import check_positive, seed_sequence

__all__ = ["make_spiking_data"]

BEHAVIOR_NAMES = ("speed", "pos_x", "pos_y")

# Tuning strengths (gains on the log rate); chosen so that a linear readout of the spike counts
# of one 50 ms window decodes the behaviour with R^2 of about 0.5-0.7 at the default size.
_SPEED_TAU = 1.0          # s, time constant of the speed process
_LAP_TIME = 6.0           # s per lap of the circular track at average speed
_SPEED_FRACTION, _SPEED_GAIN = 0.4, (0.5, 0.9)
_PLACE_FRACTION, _PLACE_GAIN = 0.6, (1.0, 2.0)
_CONDITION_FRACTION, _CONDITION_SD, _ONSET_TAU = 0.5, 0.6, 0.4
_STIMULUS_GAIN = (0.6, 1.0)
_HUB_WEIGHT, _SYNAPSE_TAU = (0.8, 1.2), 0.02
_MAX_RATE = 100.0         # Hz, ceiling on the conditional intensity


def _ou(rng, n, step, tau):
    """Stationary Ornstein-Uhlenbeck process with unit variance, sampled every ``step``."""
    a = np.exp(-step / tau)
    u = lfilter([np.sqrt(1.0 - a * a)], [1.0, -a], rng.standard_normal(n))
    return u + rng.standard_normal() * a ** np.arange(1, n + 1)


def _behavior(rng, n_bins, dt):
    """Speed (OU through a softplus) and the position on a circular track it drives."""
    speed = np.logaddexp(0.0, 1.0 + _ou(rng, n_bins, dt, _SPEED_TAU))
    phase = rng.uniform(0, 2 * np.pi) + np.cumsum(speed / speed.mean()) * dt * 2 * np.pi / _LAP_TIME
    return np.stack([speed, np.cos(phase), np.sin(phase)], axis=1), phase


def _subset(rng, n_neurons, fraction):
    mask = np.zeros(n_neurons, bool)
    mask[rng.permutation(n_neurons)[: max(1, round(fraction * n_neurons))]] = True
    return mask


def _movie(rng, n_frames, frame_rate, shape):
    """Drifting gratings of slowly changing orientation and contrast, plus smooth noise."""
    h, w = shape
    theta = np.pi * _ou(rng, n_frames, 1 / frame_rate, 2.0)
    contrast = 1 / (1 + np.exp(-1.5 * _ou(rng, n_frames, 1 / frame_rate, 1.5)))
    drift = np.cumsum(np.full(n_frames, 2 * np.pi * 2.0 / frame_rate))  # 2 cycles per second
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    k = 2 * np.pi * 3.0  # 3 cycles per image
    proj = xx[None] * np.cos(theta)[:, None, None] + yy[None] * np.sin(theta)[:, None, None]
    movie = contrast[:, None, None] * np.cos(k * proj - drift[:, None, None])
    movie += 0.5 * gaussian_filter(rng.standard_normal((n_frames, h, w)), (1.0, 1.5, 1.5))
    movie = (movie - movie.mean()) / movie.std()
    return movie.astype(np.float32)


def _gabors(rng, n, shape):
    """Unit-norm Gabor filters with random centre, orientation and phase, (n, h, w)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    cy = rng.uniform(0.3, 0.7, n)[:, None, None] * h / max(h, w)
    cx = rng.uniform(0.3, 0.7, n)[:, None, None] * w / max(h, w)
    theta = rng.uniform(0, np.pi, n)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    k = 2 * np.pi * 3.0 * rng.uniform(0.8, 1.25, n)[:, None, None]
    dy, dx = yy[None] - cy, xx[None] - cx
    envelope = np.exp(-(dx**2 + dy**2) / (2 * 0.2**2))
    g = envelope * np.cos(k * (dx * np.cos(theta) + dy * np.sin(theta)) + phase)
    return g / np.linalg.norm(g.reshape(n, -1), axis=1)[:, None, None]


def _stimulus_drive(movie, filters):
    """Spatiotemporal filter output per frame, z-scored per neuron, (n_frames, n_filters):
    the response to the current frame minus 0.6 x the response to the previous one."""
    spatial = movie.reshape(len(movie), -1) @ filters.reshape(len(filters), -1).T
    drive = spatial - 0.6 * np.concatenate([spatial[:1], spatial[:-1]])
    return (drive - drive.mean(0)) / drive.std(0)


def _hub_coupling(rng, n_neurons, n_hubs):
    """Coupling matrix ``W[post, pre]``: each hub excites a random quarter of the others."""
    n_hubs = min(n_hubs, n_neurons)
    hubs = rng.choice(n_neurons, n_hubs, replace=False)
    weights = np.zeros((n_neurons, n_neurons))
    n_targets = max(1, n_neurons // 4)
    for hub in hubs:
        others = np.delete(np.arange(n_neurons), hub)
        targets = rng.choice(others, min(n_targets, len(others)), replace=False)
        weights[targets, hub] = rng.uniform(*_HUB_WEIGHT, len(targets))
    return weights, np.sort(hubs)


def _simulate_coupled(rng, log_rate, weights, dt):
    """Poisson GLM with exponentially decaying synaptic traces, one bin at a time."""
    n_neurons, n_bins = log_rate.shape
    decay = np.exp(-dt / _SYNAPSE_TAU)
    pre = np.flatnonzero(weights.any(axis=0))
    w = weights[:, pre]
    cap = _MAX_RATE * dt
    counts = np.zeros((n_neurons, n_bins), np.int64)
    rates = np.zeros((n_neurons, n_bins))
    trace = np.zeros(len(pre))
    for t in range(n_bins):
        lam = np.minimum(np.exp(log_rate[:, t] + w @ trace), cap)
        rates[:, t] = lam
        counts[:, t] = rng.poisson(lam)
        trace = decay * trace + counts[pre, t]
    return counts, rates


def make_spiking_data(n_neurons=80, duration=200.0, *, dt=0.01, window=0.05, prev_window=0.05,
                      trial_duration=2.0, n_conditions=4, mean_rate=3.0, stimulus=False,
                      frame_rate=20.0, frame_window=0.15, frame_shape=(16, 24),
                      stimulus_fraction=0.3, repeat_stimulus=False, coupling=False,
                      n_hubs=4, behavior_as_input=False, random_state=None):
    """Generate Poisson spike trains driven by behaviour, a trial condition and optionally a
    movie and hub coupling, cut into Neuroformer windows.

    The generative model (all parameters are returned in ``params``), at bin width ``dt``:

    * **Behaviour** (three columns, ``behavior_names = ("speed", "pos_x", "pos_y")``): an animal
      runs on a circular track. ``speed = softplus(1 + u(t))`` where ``u`` is an
      Ornstein-Uhlenbeck process (unit variance, time constant 1 s); the track angle ``phi``
      advances in proportion to speed (one lap per ~6 s at average speed) and
      ``pos = (cos phi, sin phi)``. Behaviour runs continuously across trials.
    * **Trials and conditions**: the recording is cut into trials of ``trial_duration``
      seconds; each trial gets a condition ``0..n_conditions-1`` (balanced, shuffled). Half of
      the neurons get a condition-specific log-gain ``g[c, n] ~ N(0, 0.6^2)``, strongest at
      trial onset (``g * (0.6 + 0.8 exp(-t_trial / 0.4 s))``), so the condition is decodable
      from the rates.
    * **Tuning**: 40 % of neurons are speed cells (log-gain ``+-U(0.5, 0.9)`` per unit of
      z-scored speed), 60 % are place cells (``kappa cos(phi - mu)``, ``kappa ~ U(1, 2)``,
      ``mu`` uniform), subsets drawn independently.
    * **Stimulus** (``stimulus=True``): a movie of drifting gratings with slowly drifting
      orientation and contrast plus smooth noise, ``(n_frames, *frame_shape)`` at
      ``frame_rate`` Hz, z-scored. A fraction ``stimulus_fraction`` (30 %) of the neurons
      have a Gabor receptive field and a biphasic
      temporal kernel (frame ``f`` minus 0.6 x frame ``f - 1``); their z-scored filter output
      enters the log rate with gain ``U(0.6, 1.0)``. Bin ``t`` sees the frame shown at its start.
      With ``repeat_stimulus=True`` the movie is one clip of ``trial_duration`` seconds shown
      again in every trial (as in visual-cortex recordings where the same movie repeats), so
      the stimulus-driven part of the rates is the same in every trial and PSTHs over
      trials are reproducible; otherwise one long movie runs across the trials, and the
      behaviour, which runs continuously too, is never repeated.
    * **Rates**: per neuron, the log rate is the sum of the terms above plus a baseline set so
      that the neuron's average rate is its target rate (log-normal around ``mean_rate`` Hz).
      Spikes are Poisson counts per bin with mean ``rate * dt`` (capped at 100 Hz).
    * **Coupling** (``coupling=True``): a Poisson GLM simulated bin by bin. ``n_hubs`` hub
      neurons each excite a random quarter of the others, ``coupling[post, pre] ~ U(0.8, 1.2)``
      added to the post-synaptic log rate per unit of an exponentially decaying (20 ms) trace
      of the pre-synaptic spikes (strictly past bins).

    The windows are back to back (``stride = window``) within trials; the past window is
    clipped at the trial start. ``behavior`` holds the mean of each behaviour variable over a
    window's bins. Since the behaviour is smooth, the past window's spikes carry information
    about it too, which a model of counts in the current window alone cannot use. The
    behaviour is **not** attached to ``windows`` as a model input (it is the target) unless
    ``behavior_as_input=True``.

    Parameters
    ----------
    n_neurons : int, default=80
        Number of neurons.
    duration : float, default=200.0
        Recording length in seconds, rounded down to whole trials.
    dt : float, default=0.01
        Bin width in seconds.
    window, prev_window : float, default=0.05
        Current and past window lengths in seconds (whole numbers of bins).
    trial_duration : float, default=2.0
        Trial length in seconds (a whole number of bins).
    n_conditions : int, default=4
        Number of trial conditions (the classes of ``labels``).
    mean_rate : float, default=3.0
        Typical firing rate in Hz (the median of the per-neuron target rates).
    stimulus : bool, default=False
        Generate a movie, drive a subset of neurons with it and attach its frames to
        ``windows``.
    frame_rate : float, default=20.0
        Movie frames per second.
    frame_window : float, default=0.15
        Seconds of movie attached to each window, ending at the window end.
    frame_shape : tuple of int, default=(16, 24)
        Movie frame height and width in pixels.
    stimulus_fraction : float, default=0.3
        Fraction of the neurons driven by the movie (at least one), in (0, 1].
    repeat_stimulus : bool, default=False
        Show the same movie clip in every trial (needs ``stimulus=True`` and a
        ``trial_duration`` of a whole number of frames).
    coupling : bool, default=False
        Add hub coupling between neurons (slower: simulated bin by bin).
    n_hubs : int, default=4
        Number of hub neurons when ``coupling=True``.
    behavior_as_input : bool, default=False
        Also attach the behaviour to ``windows`` (``windows.behavior``, the same per-window
        means as ``behavior``) so that estimators can take it as an input
        (``behavior_inputs=[...]``). Leave it off when the behaviour is the target.
    random_state : int, numpy Generator or RandomState, default=None
        Seed; the same seed gives the same data. The behaviour, tuning and conditions do not
        depend on ``stimulus`` or ``coupling``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        * ``windows``: :class:`~nfestimators.data.SpikeWindows`, one sample per window (with
          stimulus frames when ``stimulus=True``).
        * ``behavior``: ndarray (n_samples, 3), mean behaviour per window;
          ``behavior_names``: its column names.
        * ``labels``: ndarray (n_samples,) of int, the condition of each window's trial.
        * ``trial``: ndarray (n_samples,) of int, the trial of each window.
        * ``counts``: ndarray (n_neurons, n_bins_total) of int, the whole raster.
        * ``rates``: ndarray (n_neurons, n_bins_total), expected counts per bin (conditional
          intensity given the past when ``coupling=True``).
        * ``latent``: ndarray (n_bins_total, 3), the behaviour at every bin.
        * ``trial_conditions``: ndarray (n_trials,), the condition of each trial.
        * ``params``: Bunch of the generative parameters (``baseline``, ``speed_gain``,
          ``place_gain``, ``place_center``, ``condition_gain``, ``stimulus_gain``,
          ``filters``, ``stimulus_filter_output``, ``hubs``). ``stimulus_filter_output``,
          ndarray (n_frames, n_stimulus_cells), is the z-scored filter output of every frame
          for the movie-driven neurons (``flatnonzero(stimulus_gain)``, in that order): their
          log rate in a bin showing frame ``f`` holds ``stimulus_gain * output[f]``.
        * ``coupling``: ndarray (n_neurons, n_neurons), ``coupling[post, pre]`` (only when
          ``coupling=True``).
        * ``stimulus``: ndarray (n_frames, height, width) float32, ``frame_rate`` and
          ``stimulus_drive``: ndarray (n_samples,), the population filter output averaged over
          each window's bins, a function of the movie alone (only when ``stimulus=True``).
        * ``dt``, ``window``, ``prev_window``.

    Examples
    --------
    >>> from nfestimators.datasets import make_spiking_data
    >>> data = make_spiking_data(n_neurons=20, duration=20.0, random_state=0)
    >>> data.windows.shape, data.behavior.shape, data.behavior_names
    ((400, 20, 5), (400, 3), ('speed', 'pos_x', 'pos_y'))
    >>> sorted(set(data.labels.tolist()))
    [0, 1, 2, 3]
    """
    n_neurons = check_positive(n_neurons, "n_neurons", integer=True)
    duration = check_positive(duration, "duration")
    dt = check_positive(dt, "dt")
    window = check_positive(window, "window")
    trial_duration = check_positive(trial_duration, "trial_duration")
    n_conditions = check_positive(n_conditions, "n_conditions", integer=True)
    mean_rate = check_positive(mean_rate, "mean_rate")
    trial_bins = seconds_to_bins(trial_duration, dt, "trial_duration", minimum=1)
    window_bins = seconds_to_bins(window, dt, "window", minimum=1)
    if window_bins > trial_bins:
        raise ValueError(f"window={window} s is longer than trial_duration={trial_duration} s.")
    n_trials = int(np.floor(round(duration / trial_duration, 6)))
    if n_trials < 1:
        raise ValueError(f"duration={duration} s is shorter than one trial ({trial_duration} s).")
    n_total = n_trials * trial_bins
    if repeat_stimulus and not stimulus:
        raise ValueError("repeat_stimulus=True needs stimulus=True.")
    streams = [np.random.default_rng(s) for s in seed_sequence(random_state).spawn(6)]
    rng_behavior, rng_tuning, rng_trials, rng_stimulus, rng_coupling, rng_spikes = streams

    latent, phase = _behavior(rng_behavior, n_total, dt)
    speed_z = (latent[:, 0] - latent[:, 0].mean()) / latent[:, 0].std()

    trial_of_bin = np.repeat(np.arange(n_trials), trial_bins)
    conditions = rng_trials.permutation(np.arange(n_trials) % n_conditions)
    t_in_trial = np.tile(np.arange(trial_bins) * dt, n_trials)

    target_rate = mean_rate * np.exp(0.5 * rng_tuning.standard_normal(n_neurons))
    speed_gain = _subset(rng_tuning, n_neurons, _SPEED_FRACTION) * rng_tuning.uniform(
        *_SPEED_GAIN, n_neurons) * rng_tuning.choice([-1.0, 1.0], n_neurons)
    place_gain = _subset(rng_tuning, n_neurons, _PLACE_FRACTION) * rng_tuning.uniform(
        *_PLACE_GAIN, n_neurons)
    place_center = rng_tuning.uniform(0, 2 * np.pi, n_neurons)
    condition_gain = _subset(rng_tuning, n_neurons, _CONDITION_FRACTION) * (
        _CONDITION_SD * rng_tuning.standard_normal((n_conditions, n_neurons)))

    onset = 0.6 + 0.8 * np.exp(-t_in_trial / _ONSET_TAU)
    log_mod = (speed_gain[:, None] * speed_z[None]
               + place_gain[:, None] * np.cos(phase[None] - place_center[:, None])
               + condition_gain[conditions[trial_of_bin]].T * onset[None])

    out = Bunch()
    input_kwargs = {}
    params = Bunch(speed_gain=speed_gain, place_gain=place_gain, place_center=place_center,
                   condition_gain=condition_gain, stimulus_gain=None, filters=None,
                   stimulus_filter_output=None, hubs=None)
    if stimulus:
        frame_rate = check_positive(frame_rate, "frame_rate")
        shape = tuple(int(s) for s in np.atleast_1d(frame_shape))
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"frame_shape must be (height, width) > 0; got {frame_shape!r}.")
        n_frames = int(frame_at(n_total * dt, frame_rate)) + 1
        if repeat_stimulus:
            try:
                clip_frames = seconds_to_bins(trial_duration, 1 / frame_rate, "trial_duration")
            except ValueError:
                raise ValueError(f"repeat_stimulus needs trial_duration={trial_duration} s to be "
                                 f"a whole number of frames at frame_rate={frame_rate} "
                                 "Hz.") from None
            movie = _movie(rng_stimulus, clip_frames, frame_rate, shape)
            movie = movie[np.arange(n_frames) % clip_frames]
        else:
            movie = _movie(rng_stimulus, n_frames, frame_rate, shape)
        stimulus_fraction = check_positive(stimulus_fraction, "stimulus_fraction")
        if stimulus_fraction > 1:
            raise ValueError(f"stimulus_fraction must lie in (0, 1]; got {stimulus_fraction}.")
        stim_cells = np.flatnonzero(_subset(rng_stimulus, n_neurons, stimulus_fraction))
        filters = _gabors(rng_stimulus, len(stim_cells), shape)
        drive = _stimulus_drive(movie, filters)  # (n_frames, n_stim)
        frame_of_bin = frame_at(np.arange(n_total) * dt, frame_rate)
        stimulus_gain = np.zeros(n_neurons)
        stimulus_gain[stim_cells] = rng_stimulus.uniform(*_STIMULUS_GAIN, len(stim_cells))
        log_mod[stim_cells] += stimulus_gain[stim_cells, None] * drive[frame_of_bin].T
        params.update(stimulus_gain=stimulus_gain, filters=filters,
                      stimulus_filter_output=drive)
        population_drive = drive.mean(axis=1)[frame_of_bin]
        input_kwargs = dict(stimulus=movie, frame_rate=frame_rate, frame_window=frame_window)
        out.update(stimulus=movie, frame_rate=frame_rate)

    # baseline so that every neuron's average rate is its target rate
    log_mod -= np.log(np.mean(np.exp(log_mod), axis=1, keepdims=True))
    params.baseline = np.log(target_rate * dt)
    log_rate = params.baseline[:, None] + log_mod
    if coupling:
        weights, hubs = _hub_coupling(rng_coupling, n_neurons, check_positive(
            n_hubs, "n_hubs", integer=True))
        counts, rates = _simulate_coupled(rng_spikes, log_rate, weights, dt)
        params.hubs = hubs
        out.coupling = weights
    else:
        rates = np.minimum(np.exp(log_rate), _MAX_RATE * dt)
        counts = rng_spikes.poisson(rates)

    if behavior_as_input:
        input_kwargs.update(behavior=latent, behavior_dt=dt, behavior_names=BEHAVIOR_NAMES)
    windows = SpikeWindows.from_counts(counts, dt=dt, window=window, prev_window=prev_window,
                                       trial=trial_of_bin, **input_kwargs)
    end_bins = on_grid(windows.window_end, dt, "window_end")
    if stimulus:
        drive_w = window_means(population_drive, 1.0, end_bins - window_bins, end_bins)
        out.stimulus_drive = (drive_w - drive_w.mean()) / drive_w.std()
    out.update(
        windows=windows,
        behavior=window_means(latent, 1.0, end_bins - window_bins, end_bins),
        behavior_names=BEHAVIOR_NAMES,
        labels=conditions[windows.trial],
        trial=windows.trial.copy(),
        counts=counts,
        rates=rates,
        latent=latent,
        trial_conditions=conditions,
        params=params,
        dt=dt,
        window=window,
        prev_window=windows.prev_window,
    )
    return out
