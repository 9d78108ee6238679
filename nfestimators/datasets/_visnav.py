"""Loader of the Visnav datasets (Neuroformer's visual-navigation recordings)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from nfestimators.data import SpikeWindows
from nfestimators.data.units import check_counts, window_means

from ._files import existing_dir, existing_file, read_selection

__all__ = ["load_visnav"]

_VISNAV_DT = 0.01  # s, bins of spikerates_dt_0.01.npy
_VISNAV_BEHAVIOR = {"speed": "behavior_speed_dt_0.05.npy", "phi": "phi_dt_0.05.npy",
                    "th": "th_dt_0.05.npy"}
_VISNAV_BEHAVIOR_DT = 0.05


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
    folder = existing_dir(path, "Visnav folder")
    spikes_file = existing_file(folder / "spikerates_dt_0.01.npy", "Visnav spike file")
    spikes = np.load(spikes_file, allow_pickle=False)
    if spikes.ndim != 2:
        raise ValueError(f"{spikes_file.name} must be 2-D (n_neurons, n_bins); got shape "
                         f"{spikes.shape}.")
    counts = check_counts(spikes, spikes_file.name, round_rates=True)
    neuron_ids = np.arange(1, len(counts) + 1)
    if selection is not None:
        neuron_ids = read_selection(selection, folder, len(counts))
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
        behavior = window_means(np.stack(columns, axis=1), _VISNAV_BEHAVIOR_DT,
                                windows.window_end - windows.window, windows.window_end)
    return Bunch(windows=windows, behavior=behavior, behavior_names=tuple(names),
                 neuron_ids=neuron_ids, stimulus=movie,
                 frame_rate=float(frame_rate) if movie is not None else None, dt=_VISNAV_DT)
