"""Loader of the Combo3 V1AL dataset (Neuroformer's V1 + AL recordings)."""

from __future__ import annotations

import numbers
import os
import pickle
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from nfestimators.data import SpikeWindows
from nfestimators.data.units import check_counts, frame_at

from ._files import existing_dir, existing_file, load_movie

__all__ = ["load_v1al"]

_V1AL_DT = 0.01


def _read_trial_dict(file):
    with open(file, "rb") as fh:
        try:
            trials = pickle.load(fh)
        except (pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"{file.name} is not a readable pickle: {exc}") from exc
    if not isinstance(trials, dict) or not trials:
        raise ValueError(f"{file.name} must hold a non-empty dict trial -> (n_neurons, n_bins) "
                         f"array; got {type(trials).__name__}.")
    keys = sorted(trials)
    if not all(isinstance(k, numbers.Integral) and k >= 1 for k in keys):
        raise ValueError(f"{file.name}: trial keys must be 1-based integers; got {keys[:5]}.")
    arrays = []
    for k in keys:
        arr = np.asarray(trials[k])
        if arr.ndim != 2:
            raise ValueError(f"{file.name}: trial {k} must be 2-D (n_neurons, n_bins); got "
                             f"shape {arr.shape}.")
        arrays.append(check_counts(arr, f"trial {k}", round_rates=True))
    return np.array(keys, dtype=np.int64), arrays


def _v1al_movies(file):
    """The stimulus movies as (n_stimuli, n_frames, height, width)."""
    movies = load_movie(file)
    if movies.ndim == 5 and movies.shape[2] == 1:  # stored as (stimuli, frames, 1, H, W)
        movies = movies[:, :, 0]
    if movies.ndim != 4:
        raise ValueError(f"{file.name} must be (n_stimuli, n_frames, height, width) or "
                         f"(n_stimuli, n_frames, 1, height, width); got shape {movies.shape}.")
    return movies


def load_v1al(path, *, window=0.05, prev_window=0.15, frame_window=0.2, frame_rate=20.0,
              trials_per_stimulus=20):
    """Load the Combo3 V1AL dataset (Neuroformer's V1 + AL recordings) from its folder.

    The folder holds ``Combo3_V1AL.pkl``, a dict trial (1-based) -> (n_neurons, n_bins) counts
    in 10 ms bins, time restarting at 0 in every trial, and the movies
    ``Combo3_V1AL_stimulus.pt`` (a torch tensor, loaded with ``weights_only=True``) or
    ``Combo3_V1AL_stimulus.npy``, of shape (n_stimuli, n_frames, 1, height, width) as stored
    (or without the singleton axis), e.g. (3, 640, 64, 112).

    Two bugs of the original loader are fixed: each window sees the frames shown at its own
    time within the trial (the original always showed frames 0-3), and trial ``k`` watches
    movie ``(k - 1) // trials_per_stimulus`` (trials 1-20 -> 0, 21-40 -> 1, 41-60 -> 2), through
    a stimulus callback over the movies stacked into one array (never copied per trial). Use
    :func:`split_windows` for a train/test split with a non-empty test set.

    The pickle can run code when loaded: only load files you trust.

    Parameters
    ----------
    path : str or path-like
        The folder, or the ``.pkl`` file (the movie is then looked up beside it).
    window, prev_window : float, default=0.05, 0.15
        Current and past window lengths in seconds; windows are back to back within trials.
    frame_window : float, default=0.2
        Seconds of movie per window, ending at the window end.
    frame_rate : float, default=20.0
        Movie frames per second.
    trials_per_stimulus : int, default=20
        Consecutive trials per movie.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        * ``windows``: :class:`~nfestimators.data.SpikeWindows` with frames; ``windows.trial``
          counts trials from 0 in key order and ``window_end`` is the time within the trial.
        * ``trial``: ndarray (n_samples,), the original (1-based) trial key of each window.
        * ``stimulus_id``: ndarray (n_samples,), the movie each window watches.
        * ``stimulus``: the movies stacked, (n_stimuli * n_frames, height, width);
          ``frame_rate``, ``dt``.

    Examples
    --------
    >>> import pickle, tempfile, pathlib
    >>> import numpy as np
    >>> trials = {k: np.ones((2, 30)) for k in range(1, 5)}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = pathlib.Path(tmp)
    ...     _ = (folder / "Combo3_V1AL.pkl").write_bytes(pickle.dumps(trials))
    ...     np.save(folder / "Combo3_V1AL_stimulus.npy", np.zeros((2, 8, 1, 4, 6)))
    ...     data = load_v1al(folder, trials_per_stimulus=2)
    >>> data.windows.shape, data.stimulus_id[::6].tolist(), data.windows.frames.shape
    ((24, 2, 5), [0, 0, 1, 1], (24, 4, 4, 6))
    """
    path = Path(os.fspath(path)).expanduser()
    folder = path.parent if path.suffix == ".pkl" else existing_dir(path, "V1AL folder")
    pkl = path if path.suffix == ".pkl" else folder / "Combo3_V1AL.pkl"
    pkl = existing_file(pkl, "V1AL spike pickle")
    candidates = [folder / "Combo3_V1AL_stimulus.pt", folder / "Combo3_V1AL_stimulus.npy"]
    movie_file = next((c for c in candidates if c.is_file()), None)
    if movie_file is None:
        raise FileNotFoundError(f"V1AL stimulus not found: tried {[str(c) for c in candidates]}.")
    if isinstance(trials_per_stimulus, bool) or not isinstance(
            trials_per_stimulus, numbers.Integral) or trials_per_stimulus < 1:
        raise ValueError(f"trials_per_stimulus must be a positive integer; got "
                         f"{trials_per_stimulus!r}.")
    keys, arrays = _read_trial_dict(pkl)
    movies = _v1al_movies(movie_file)
    n_stimuli, n_frames = movies.shape[:2]
    movie_of_trial = (keys - 1) // trials_per_stimulus
    if movie_of_trial.max() >= n_stimuli:
        raise ValueError(f"trial {keys.max()} would watch movie {movie_of_trial.max()}, but "
                         f"{movie_file.name} holds {n_stimuli} movies (trials_per_stimulus="
                         f"{trials_per_stimulus}).")
    rate = float(frame_rate)

    def frames_within_trial(window_end, trial, n_window_frames):
        last = frame_at(window_end, rate)
        within = np.clip(last[:, None] + np.arange(1 - n_window_frames, 1), 0, n_frames - 1)
        return movie_of_trial[trial][:, None] * n_frames + within

    windows = SpikeWindows.from_trials(
        arrays, dt=_V1AL_DT, window=window, prev_window=prev_window,
        stimulus=movies.reshape(n_stimuli * n_frames, *movies.shape[2:]), frame_rate=rate,
        frame_window=frame_window, stimulus_callback=frames_within_trial)
    return Bunch(windows=windows, trial=keys[windows.trial],
                 stimulus_id=movie_of_trial[windows.trial], stimulus=windows.stimulus,
                 frame_rate=rate, dt=_V1AL_DT)
