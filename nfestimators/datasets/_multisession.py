"""Synthetic recordings of many sessions of one latent dynamics (multi-session pretraining)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import Bunch

from nfestimators.data import SpikeWindows

from ._random import check_positive, seed_sequence
from ._synthetic import make_spiking_data

__all__ = ["make_multisession_data"]


def _per_session(value, n_sessions, name, rng, integer):
    """One value per session: a number (all the same), a ``(low, high)`` range drawn
    uniformly per session, or a sequence of ``n_sessions`` values."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return [check_positive(value, name, integer=integer)] * n_sessions
    value = list(value)
    if len(value) == 2 and n_sessions != 2:
        low, high = (check_positive(v, name, integer=integer) for v in value)
        if high < low:
            raise ValueError(f"{name}=(low, high) needs low <= high; got {tuple(value)}.")
        return ([int(v) for v in rng.integers(low, high + 1, n_sessions)] if integer
                else [float(v) for v in rng.uniform(low, high, n_sessions)])
    if len(value) != n_sessions:
        raise ValueError(f"{name} must be a number, a (low, high) range or {n_sessions} "
                         f"values (one per session); got {len(value)} values.")
    return [check_positive(v, name, integer=integer) for v in value]


def make_multisession_data(n_sessions=6, n_neurons=(40, 100), duration=(100.0, 200.0), *,
                           mean_rate=(2.0, 5.0), dt=0.01, window=0.05, prev_window=0.05,
                           trial_duration=2.0, random_state=None):
    """Generate several recording sessions of one latent dynamics and behaviour, each with
    its own neurons, tuning, firing rates and length.

    Every session is a draw of :func:`make_spiking_data`'s generative model with its own
    seed: the same behavioural dynamics (an animal running on a circular track, its speed an
    Ornstein-Uhlenbeck process through a softplus, the track angle advancing with speed)
    and the same families of tuning (speed cells, place cells, trial-condition gains), but a
    new trajectory, a new population of neurons (how many, which are speed or place cells,
    their preferred positions, gains and rates) and a new length. What the sessions share is
    the latent variables (speed and position on the track) and how behaviour maps to them;
    a neuron of one session has no counterpart in another. A model that learns the latent
    dynamics from some sessions can therefore help decode a new session, once it has learnt
    that session's neurons.

    Parameters
    ----------
    n_sessions : int, default=6
        Number of sessions.
    n_neurons : int, (low, high) or sequence of int, default=(40, 100)
        Neurons per session: one count for all, a range drawn uniformly (inclusive) per
        session, or one count per session (with ``n_sessions=2``, a pair is one count per
        session).
    duration : float, (low, high) or sequence of float, default=(100.0, 200.0)
        Seconds per session (rounded down to whole trials), as ``n_neurons``.
    mean_rate : float, (low, high) or sequence of float, default=(2.0, 5.0)
        Typical firing rate per session in Hz, as ``n_neurons``.
    dt, window, prev_window, trial_duration : float
        Bin width, window lengths and trial length in seconds (shared by all sessions).
    random_state : int, numpy Generator or RandomState, default=None
        Seed; the same seed gives the same sessions.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        * ``sessions``: list of :class:`~nfestimators.SpikeWindows`, one per session (its
          own neuron ids ``0 .. n_neurons - 1``), as ``NeuroformerPretrainer().fit`` takes
          them.
        * ``behavior``: list of ndarray (n_windows, 3), the mean behaviour of every window
          of each session; ``behavior_names``: ``("speed", "pos_x", "pos_y")``.
        * ``labels``: list of ndarray (n_windows,), the trial condition of every window.
        * ``session_keys``: the session keys ``("session_0", ...)``.
        * ``windows``: all sessions in one container
          (:meth:`SpikeWindows.from_sessions` with ``session_keys``), and ``behavior_all``, the
          behaviour of its windows.
        * ``ground_truth``: list of the per-session Bunches of :func:`make_spiking_data`
          (``rates``, ``latent``, ``params``: tuning of every neuron, ...).

    Examples
    --------
    >>> from nfestimators.datasets import make_multisession_data
    >>> data = make_multisession_data(n_sessions=3, duration=20.0, random_state=0)
    >>> [X.n_neurons for X in data.sessions], [len(X) for X in data.sessions]
    ([88, 97, 40], [400, 400, 400])
    >>> data.windows.sessions, data.behavior_all.shape
    (('session_0', 'session_1', 'session_2'), (1200, 3))
    """
    n_sessions = check_positive(n_sessions, "n_sessions", integer=True)
    seeds = seed_sequence(random_state).spawn(n_sessions + 1)
    rng = np.random.default_rng(seeds[0])
    sizes = _per_session(n_neurons, n_sessions, "n_neurons", rng, integer=True)
    durations = _per_session(duration, n_sessions, "duration", rng, integer=False)
    rates = _per_session(mean_rate, n_sessions, "mean_rate", rng, integer=False)
    truth = [make_spiking_data(n_neurons=n, duration=d, mean_rate=r, dt=dt, window=window,
                               prev_window=prev_window, trial_duration=trial_duration,
                               random_state=np.random.default_rng(seed))
             for n, d, r, seed in zip(sizes, durations, rates, seeds[1:])]
    keys = tuple(f"session_{s}" for s in range(n_sessions))
    sessions = [t.windows for t in truth]
    return Bunch(
        sessions=sessions, behavior=[t.behavior for t in truth],
        behavior_names=truth[0].behavior_names, labels=[t.labels for t in truth],
        session_keys=keys,
        windows=SpikeWindows.from_sessions(sessions, keys=keys),
        behavior_all=np.concatenate([t.behavior for t in truth]), ground_truth=truth)
