"""Loaders for the data layouts of the Neuroformer project and of the auditory cortex sets.

Every loader takes a local path and never downloads anything.
"""

from __future__ import annotations

import numbers
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from nfestimators.data import SpikeWindows

from ._synthetic import _seed_sequence

__all__ = ["load_auditory_cortex", "load_visnav", "load_v1al", "split_windows"]

_AUDITORY_BIN = 0.001  # s, the 1 ms bins of the auditory cortex CSV files
_AUDITORY_ROLES = ("train", "val", "test")
_VISNAV_DT = 0.01  # s, bins of spikerates_dt_0.01.npy
_VISNAV_BEHAVIOR = {"speed": "behavior_speed_dt_0.05.npy", "phi": "phi_dt_0.05.npy",
                    "th": "th_dt_0.05.npy"}
_VISNAV_BEHAVIOR_DT = 0.05
_V1AL_DT = 0.01


def _existing_file(path, what):
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {str(path)!r} is not a file.")
    return path


def _existing_dir(path, what):
    path = Path(os.fspath(path)).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {str(path)!r} is not a directory.")
    return path


def _whole_multiple(value, unit, name, unit_name):
    """``value / unit`` as an int, refusing fractions."""
    value = float(value)
    ratio = round(value / unit)
    if not np.isfinite(value) or ratio < 1 or abs(ratio * unit - value) > 1e-9:
        raise ValueError(f"{name}={value} must be a positive whole multiple of {unit_name} "
                         f"({unit} s).")
    return ratio


def _rates_to_counts(arr, name):
    """Round non-negative (possibly non-integer) rates to integer counts, like the original."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}.")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values.")
        arr = np.rint(arr)
    if np.any(arr < 0):
        raise ValueError(f"{name} contains negative values; spike counts must be >= 0.")
    return arr.astype(np.int64)


# ------------------------------------------------------------------ auditory cortex
def load_auditory_cortex(path, *, dt=0.001, n_cells=None):
    """Load an auditory cortex spike-train decoding set (Szabo & Bartho 2021) from its CSV.

    The file has a header row and one trial per row: column ``sound_ID`` (the class),
    column ``role`` (``train``, ``val`` or ``test``, the published split) and columns
    ``0`` ... ``n_bins - 1``, the 1 ms bins of the trial, holding 0 (no spike) or the id
    ``1..n_cells`` of the cell that fired in that bin. Columns may come in any order.

    Parameters
    ----------
    path : str or path-like
        The CSV file (e.g. ``D_E_III.csv``). Nothing is downloaded.
    dt : float, default=0.001
        Bin width of the returned windows in seconds, a whole multiple of the file's 1 ms;
        coarser bins sum the spikes. The trial length must be a whole number of bins.
    n_cells : int, optional
        Number of cells (neurons). Defaults to the largest cell id in the file; give it when
        a cell might be silent in this file.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        * ``windows``: :class:`~nfestimators.data.SpikeWindows`, one window per trial covering
          the whole trial (no past window); cell id ``c`` is neuron ``c - 1``; ``window_end``
          is the trial length.
        * ``labels``: ndarray (n_trials,) of int, the ``sound_ID`` column.
        * ``split``: ndarray (n_trials,) of str, the ``role`` column.
        * ``n_cells``, ``dt``, ``DESCR``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> csv = "sound_ID,role,0,1,2,3\\n1,train,0,2,0,1\\n2,test,1,0,0,0\\n"
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     file = pathlib.Path(tmp) / "set.csv"
    ...     _ = file.write_text(csv)
    ...     data = load_auditory_cortex(file)
    >>> data.windows.shape, data.labels.tolist(), data.split.tolist()
    ((2, 2, 4), [1, 2], ['train', 'test'])
    >>> data.windows.to_counts()[0].tolist()
    [[0, 0, 0, 1], [0, 1, 0, 0]]
    """
    file = _existing_file(path, "auditory cortex CSV")
    bin_factor = _whole_multiple(dt, _AUDITORY_BIN, "dt", "the file's 1 ms bins")
    try:
        frame = pd.read_csv(file)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file} is not a readable CSV file: {exc}") from exc
    columns = [str(c).strip() for c in frame.columns]
    frame.columns = columns
    missing = [c for c in ("sound_ID", "role") if c not in columns]
    if missing:
        raise ValueError(f"{file.name} lacks the column(s) {missing}; expected a header "
                         "'sound_ID,role,0,1,...'.")
    bin_names = [c for c in columns if c not in ("sound_ID", "role")]
    if not bin_names or not all(c.isdigit() for c in bin_names):
        bad = [c for c in bin_names if not c.isdigit()][:5]
        raise ValueError(f"{file.name}: besides sound_ID and role, every column must be a time "
                         f"bin named 0..n_bins-1; found {bad or 'no bin columns'}.")
    order = sorted(bin_names, key=int)
    if [int(c) for c in order] != list(range(len(order))):
        missing_bins = sorted(set(range(len(order))) - {int(c) for c in order})[:5]
        raise ValueError(f"{file.name}: time-bin columns must be 0..{len(order) - 1} without "
                         f"gaps; missing {missing_bins}.")
    if len(frame) == 0:
        raise ValueError(f"{file.name} has a header but no trials.")
    cells = _integer_table(frame[order], file.name, "time-bin values")
    labels = _integer_table(frame[["sound_ID"]], file.name, "sound_ID").ravel()
    if cells.min() < 0:
        raise ValueError(f"{file.name}: time-bin values must be 0 (no spike) or a cell id >= 1; "
                         f"found {cells.min()}.")
    split = frame["role"].astype(str).str.strip().to_numpy(dtype=str)
    unknown = sorted(set(split) - set(_AUDITORY_ROLES))
    if unknown:
        raise ValueError(f"{file.name}: unknown role(s) {unknown[:5]}; expected one of "
                         f"{list(_AUDITORY_ROLES)}.")
    max_id = int(cells.max())
    if n_cells is None:
        if max_id == 0:
            raise ValueError(f"{file.name} holds no spikes; pass n_cells to set the number of "
                             "cells.")
        n_cells = max_id
    elif isinstance(n_cells, bool) or not isinstance(n_cells, numbers.Integral) or n_cells < 1:
        raise ValueError(f"n_cells must be a positive integer; got {n_cells!r}.")
    elif max_id > n_cells:
        raise ValueError(f"{file.name} has cell id {max_id} > n_cells={n_cells}.")
    n_trials, n_file_bins = cells.shape
    if n_file_bins % bin_factor:
        raise ValueError(f"trials of {n_file_bins} ms are not a whole number of dt={dt} s bins.")
    trial_index, bin_index = np.nonzero(cells)
    dt = bin_factor * _AUDITORY_BIN
    trial_length = round(n_file_bins * _AUDITORY_BIN, 6)
    windows = SpikeWindows.from_spike_times(
        bin_index * _AUDITORY_BIN, cells[trial_index, bin_index] - 1,
        np.full(n_trials, trial_length), dt=dt, window=trial_length, n_neurons=int(n_cells),
        trial=np.arange(n_trials), spike_trial=trial_index)
    return Bunch(windows=windows, labels=labels, split=split, n_cells=int(n_cells), dt=dt,
                 DESCR=f"Auditory cortex decoding set {file.name}: {n_trials} trials of "
                       f"{trial_length} s, {n_cells} cells, {len(np.unique(labels))} classes "
                       "(Szabo & Bartho 2021, doi:10.1007/s00521-021-06589-0).")


def _integer_table(frame, filename, what):
    values = frame.to_numpy()
    if values.dtype.kind not in "iuf" or (values.dtype.kind == "f" and (
            not np.all(np.isfinite(values)) or np.any(values != np.round(values)))):
        raise ValueError(f"{filename}: {what} must be whole numbers (no text, decimals or "
                         "missing values).")
    return values.astype(np.int64)


# ------------------------------------------------------------------ visnav
def _behavior_per_window(values, step, start, stop):
    """Mean of the samples stamped in ``[start, stop)`` (sample ``i`` at ``i * step``); the last
    sample before ``start`` when none falls inside, clipped to the recorded samples."""
    n = len(values)
    lo = np.clip(np.ceil(np.round(start / step, 6)).astype(np.int64), 0, n)
    hi = np.clip(np.ceil(np.round(stop / step, 6)).astype(np.int64), 0, n)
    csum = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    means = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)[:, None]
    empty = hi <= lo
    means[empty] = values[np.clip(lo[empty] - 1, 0, n - 1)]
    return means


def _read_selection(selection, folder, n_neurons):
    """1-based neuron indices from a CSV (name in ``folder``, or path) or an array."""
    if isinstance(selection, (str, os.PathLike)):
        candidates = [Path(os.fspath(selection)).expanduser(), folder / f"{selection}.csv",
                      folder / os.fspath(selection)]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise FileNotFoundError(f"selection file not found: tried "
                                    f"{[str(c) for c in candidates]}.")
        values = pd.read_csv(file, header=None).apply(pd.to_numeric, errors="coerce")
        values = values.to_numpy(dtype=np.float64).ravel()
        values = values[~np.isnan(values)]  # a header row, if any
    else:
        values = np.asarray(selection, dtype=np.float64).ravel()
    if values.size == 0 or np.any(values != np.round(values)):
        raise ValueError("selection must hold whole (1-based) neuron indices.")
    values = values.astype(np.int64)
    if values.min() < 1 or values.max() > n_neurons:
        raise ValueError(f"selection indices are 1-based and must lie in 1..{n_neurons}; "
                         f"found {values.min()}..{values.max()}.")
    if len(np.unique(values)) != len(values):
        raise ValueError("selection lists a neuron twice.")
    return values


def _load_movie(file):
    """A movie array from .npy or a torch .pt file (loaded with weights_only=True)."""
    if file.suffix == ".pt":
        import torch

        movie = torch.load(file, map_location="cpu", weights_only=True)
        if not isinstance(movie, torch.Tensor):
            raise ValueError(f"{file.name} must hold one tensor, got {type(movie).__name__}.")
        return movie.numpy()
    return np.load(file, allow_pickle=False)


def load_visnav(path, *, window=0.05, prev_window=0.05, frame_window=0.15, frame_rate=20.0,
                selection=None, behavior_as_input=False):
    """Load a Visnav dataset (Neuroformer's visual-navigation recordings) from its folder.

    The folder (``.../LateralVRDataset/NF_1.5`` in the original layout) holds:

    * ``spikerates_dt_0.01.npy``: (n_neurons, n_bins), 10 ms bins; values are rounded to
      whole counts, as the original tokenizer does;
    * ``stimulus.npy`` (optional): the movie, (n_frames, height, width) (a singleton channel
      axis, (n_frames, 1, height, width), is dropped), frame 0 at time 0;
    * ``behavior_speed_dt_0.05.npy``, ``phi_dt_0.05.npy``, ``th_dt_0.05.npy`` (each
      optional): 1-D behaviour sampled every 50 ms.

    Parameters
    ----------
    path : str or path-like
        The folder. Nothing is downloaded.
    window, prev_window : float, default=0.05
        Current and past window lengths in seconds; windows are back to back.
    frame_window : float, default=0.15
        Seconds of movie per window, ending at the window end.
    frame_rate : float, default=20.0
        Movie frames per second.
    selection : str, path-like or array-like of int, optional
        Neurons to keep, as **1-based** indices: a CSV file (a name such as ``"sel1"`` is
        looked up as ``<path>/sel1.csv``) or the indices themselves.
    behavior_as_input : bool, default=False
        Also attach the behaviour to ``windows`` as a model input. Leave it off when the
        behaviour is the prediction target.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        * ``windows``: :class:`~nfestimators.data.SpikeWindows` (with frames when the movie
          exists).
        * ``behavior``: ndarray (n_samples, n_variables), each variable's mean over the
          samples inside the window (the sample at the window start for 50 ms windows), or
          None when no behaviour file exists; ``behavior_names`` in the order speed, phi, th.
        * ``neuron_ids``: the 1-based indices of the kept neurons in the file.
        * ``stimulus``, ``frame_rate``, ``dt``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = pathlib.Path(tmp)
    ...     np.save(folder / "spikerates_dt_0.01.npy", np.ones((3, 100)))
    ...     np.save(folder / "behavior_speed_dt_0.05.npy", np.arange(20.0))
    ...     data = load_visnav(folder, selection=[3, 1])
    >>> data.windows.shape, data.behavior[:3, 0].tolist(), data.neuron_ids.tolist()
    ((20, 2, 5), [0.0, 1.0, 2.0], [3, 1])
    """
    folder = _existing_dir(path, "Visnav folder")
    spikes_file = _existing_file(folder / "spikerates_dt_0.01.npy", "Visnav spike file")
    spikes = np.load(spikes_file, allow_pickle=False)
    if spikes.ndim != 2:
        raise ValueError(f"{spikes_file.name} must be 2-D (n_neurons, n_bins); got shape "
                         f"{spikes.shape}.")
    counts = _rates_to_counts(spikes, spikes_file.name)
    neuron_ids = np.arange(1, len(counts) + 1)
    if selection is not None:
        neuron_ids = _read_selection(selection, folder, len(counts))
        counts = counts[neuron_ids - 1]

    stim_kwargs = {}
    movie = None
    stimulus_file = folder / "stimulus.npy"
    if stimulus_file.is_file():
        movie = np.load(stimulus_file, allow_pickle=False)
        if movie.ndim == 4 and movie.shape[1] == 1:
            movie = movie[:, 0]
        if movie.ndim != 3:
            raise ValueError(f"stimulus.npy must be (n_frames, height, width); got shape "
                             f"{movie.shape}.")
        stim_kwargs = dict(stimulus=movie, frame_rate=frame_rate, frame_window=frame_window)

    names, columns = [], []
    for name, filename in _VISNAV_BEHAVIOR.items():
        if (folder / filename).is_file():
            values = np.load(folder / filename, allow_pickle=False)
            if values.ndim == 2 and 1 in values.shape:
                values = values.ravel()
            if values.ndim != 1 or values.dtype.kind not in "biuf" or not np.all(
                    np.isfinite(values)):
                raise ValueError(f"{filename} must be a 1-D array of finite numbers.")
            names.append(name)
            columns.append(values.astype(np.float64))
    if len({len(c) for c in columns}) > 1:
        raise ValueError(f"behaviour files have different lengths: "
                         f"{dict(zip(names, map(len, columns)))}.")
    behavior_kwargs = {}
    if columns and behavior_as_input:
        behavior_kwargs = dict(behavior=dict(zip(names, columns)),
                               behavior_dt=_VISNAV_BEHAVIOR_DT)

    windows = SpikeWindows.from_counts(counts, dt=_VISNAV_DT, window=window,
                                       prev_window=prev_window, **stim_kwargs, **behavior_kwargs)
    behavior = None
    if columns:
        behavior = _behavior_per_window(np.stack(columns, axis=1), _VISNAV_BEHAVIOR_DT,
                                        windows.window_end - windows.window, windows.window_end)
    return Bunch(windows=windows, behavior=behavior, behavior_names=tuple(names),
                 neuron_ids=neuron_ids, stimulus=movie,
                 frame_rate=float(frame_rate) if movie is not None else None, dt=_VISNAV_DT)


# ------------------------------------------------------------------ V1AL
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
        arrays.append(_rates_to_counts(arr, f"trial {k}"))
    return np.array(keys, dtype=np.int64), arrays


def _v1al_movies(file):
    """The stimulus movies as (n_stimuli, n_frames, height, width)."""
    movies = _load_movie(file)
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
    folder = path.parent if path.suffix == ".pkl" else _existing_dir(path, "V1AL folder")
    pkl = path if path.suffix == ".pkl" else folder / "Combo3_V1AL.pkl"
    pkl = _existing_file(pkl, "V1AL spike pickle")
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
        last = np.floor(np.round(np.asarray(window_end) * rate, 6)).astype(np.int64)
        within = np.clip(last[:, None] + np.arange(1 - n_window_frames, 1), 0, n_frames - 1)
        return movie_of_trial[trial][:, None] * n_frames + within

    windows = SpikeWindows.from_trials(
        arrays, dt=_V1AL_DT, window=window, prev_window=prev_window,
        stimulus=movies.reshape(n_stimuli * n_frames, *movies.shape[2:]), frame_rate=rate,
        frame_window=frame_window, stimulus_callback=frames_within_trial)
    return Bunch(windows=windows, trial=keys[windows.trial],
                 stimulus_id=movie_of_trial[windows.trial], stimulus=windows.stimulus,
                 frame_rate=rate, dt=_V1AL_DT)


# ------------------------------------------------------------------ splits
def _split_size(size, n, name, minimum):
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise ValueError(f"{name} must be a fraction in (0, 1) or a count; got {size!r}.")
    if isinstance(size, numbers.Integral):
        count = int(size)
    elif 0 <= size < 1:
        count = int(round(size * n))
    else:
        raise ValueError(f"{name}={size} must be a fraction in [0, 1) or an integer count.")
    if count < 0:
        raise ValueError(f"{name}={size} must not be negative.")
    count = max(count, minimum)
    if count > n:
        raise ValueError(f"{name}={size} asks for {count} of {n} units.")
    return count


def split_windows(X, *, test_size=0.2, finetune_size=0.01, random_state=None, by="window",
                  groups=None):
    """Random train / test / finetune split of windows, as index arrays.

    A corrected ``split_data_by_interval``: sampling without replacement, a test set that is
    never empty, and a local random generator (never the global one).

    * ``test``: a random ``test_size`` share of the units (at least one), disjoint from train.
    * ``train``: all the other windows.
    * ``finetune``: a random ``finetune_size`` share of the **train** units (at least one
      when ``finetune_size > 0``): an explicit subset of train, as in the original. It is
      meant as the few labelled windows for few-shot finetuning of a model pretrained
      self-supervised on train; the test windows stay unseen by both.

    Parameters
    ----------
    X : SpikeWindows or array-like
        The windows (anything with a length).
    test_size : float or int, default=0.2
        Fraction of units (or number of units) for testing.
    finetune_size : float or int, default=0.01
        Fraction of the training units (or number of units) for finetuning; 0 for none.
    random_state : int, numpy Generator or RandomState, default=None
        Seed of the shuffle; the same seed gives the same split.
    by : {"window", "trial"}, default="window"
        Unit of the split: single windows, or whole trials (all windows of a trial fall in
        the same part, which avoids leakage through overlapping past windows).
    groups : array-like of shape (n_samples,), optional
        Trial of each window for ``by="trial"``; defaults to ``X.trial``.

    Returns
    -------
    train, test, finetune : ndarray of int
        Sorted window indices.

    Examples
    --------
    >>> import numpy as np
    >>> train, test, finetune = split_windows(np.zeros((10, 3)), test_size=0.3,
    ...                                       finetune_size=2, random_state=0)
    >>> len(train), len(test), len(finetune), set(finetune) <= set(train)
    (7, 3, 2, True)
    """
    n = len(X)
    if by not in ("window", "trial"):
        raise ValueError(f"by must be 'window' or 'trial'; got {by!r}.")
    if by == "trial":
        if groups is None:
            if not isinstance(X, SpikeWindows):
                raise ValueError("by='trial' needs groups (the trial of each window) unless X "
                                 "is SpikeWindows.")
            groups = X.trial
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have one trial label per window ({n},); got shape "
                             f"{groups.shape}.")
        units, unit_of_window = np.unique(groups, return_inverse=True)
        n_units = len(units)
    else:
        n_units, unit_of_window = n, np.arange(n)
    if n_units < 2:
        raise ValueError(f"need at least 2 {by}s to split, got {n_units}.")
    rng = np.random.default_rng(_seed_sequence(random_state))
    n_test = _split_size(test_size, n_units, "test_size", 1)
    if n_test >= n_units:
        raise ValueError(f"test_size={test_size} leaves no {by} for training.")
    order = rng.permutation(n_units)
    test_units, train_units = order[:n_test], order[n_test:]
    n_finetune = _split_size(finetune_size, len(train_units), "finetune_size",
                             1 if finetune_size else 0)
    finetune_units = rng.permutation(train_units)[:n_finetune]

    def windows_of(selected):
        return np.flatnonzero(np.isin(unit_of_window, selected))

    return windows_of(train_units), windows_of(test_units), windows_of(finetune_units)
