"""Loader of the auditory cortex spike-train decoding sets (Szabo & Bartho 2021)."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from nfestimators.data import SpikeWindows
from nfestimators.data.units import seconds_to_bins

from ._files import existing_file

__all__ = ["load_auditory_cortex"]

_AUDITORY_BIN = 0.001  # s, the 1 ms bins of the auditory cortex CSV files
_AUDITORY_ROLES = ("train", "val", "test")


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
    file = existing_file(path, "auditory cortex CSV")
    try:
        bin_factor = seconds_to_bins(dt, _AUDITORY_BIN, "dt", minimum=1)
    except ValueError:
        raise ValueError(f"dt={dt} must be a positive whole multiple of the file's 1 ms bins "
                         f"({_AUDITORY_BIN} s).") from None
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
