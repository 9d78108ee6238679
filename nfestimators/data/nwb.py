"""Windows from an NWB file (the ``nwb`` extra, through pynwb).

The units table gives the spikes, a trials (or other intervals) table the trial windows and
their labels, ``processing["behavior"]`` the behaviour and ``stimulus`` an image movie; all are
aligned by time and put into one :class:`~nfestimators.SpikeWindows`.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from sklearn.utils import Bunch

from ._extras import import_extra
from .intervals import end_covering, windows_in_intervals
from .modalities import behavior_at_times
from .windows import SpikeWindows

__all__ = ["load_nwb"]

_DECIMALS = 6  # times are rounded like the SpikeWindows builders round them
_AXES = ("x", "y", "z")


def load_nwb(path, *, dt, window, prev_window=0.0, stride=None, unit_column=None,
             unit_values=None, trials="auto", label_column=None, behavior="auto",
             max_behavior_gap=None, stimulus="auto", frame_window=None):
    """Read spikes, trials, behaviour and an image stimulus of an NWB file as windows.

    Needs pynwb (``pip install 'nfestimators[nwb]'``).

    - **Spikes**: the ``units`` table (all units, or those whose ``unit_column`` holds one of
      ``unit_values``, e.g. a sorter's quality label); neuron ``i`` of the windows is the
      ``i``-th kept row (``unit_ids`` gives its id in the file).
    - **Windows**: with a trials table, windows of ``window`` seconds every ``stride`` inside
      each trial, time counted from the trial start (``window=None``: one window per trial);
      without one, back-to-back windows over the recording, from time 0 until one holds the
      last spike.
    - **Behaviour**: every ``TimeSeries`` / ``SpatialSeries`` in ``processing["behavior"]``,
      also inside ``Position``, ``BehavioralTimeSeries`` and similar containers, linearly
      interpolated at each **window end**. A window whose end has no value (before the first
      or after the last sample, next to a NaN sample, or inside a gap longer than
      ``max_behavior_gap``) is dropped, with a warning that counts them; nothing is filled.
      Columns are named after the series (``position_x``, ``position_y`` for a 2-D
      ``SpatialSeries``), in name order.
    - **Stimulus**: a greyscale ``ImageSeries`` / ``OpticalSeries`` of ``stimulus`` stored in
      the file, shape ``(n_frames, height, width)``: each window gets the frames of the last
      ``frame_window`` seconds, the last one shown at the window end (clipped to the movie).

    Parameters
    ----------
    path : str, path-like or pynwb.NWBFile
        The file, or an NWBFile already read (e.g. streamed from DANDI).
    dt : float
        Bin width in seconds.
    window : float or None
        Window length in seconds; ``None`` (trial data only): one window per trial, as long as
        the longest trial.
    prev_window : float, default=0.0
        Past (context) window in seconds; never reaches before the trial start.
    stride : float, optional
        Time between consecutive window ends; defaults to ``window``.
    unit_column : str, optional
        Column of the units table that selects units, e.g. ``"quality"``.
    unit_values : value or sequence of values, optional
        Units whose ``unit_column`` holds one of these are kept (required with
        ``unit_column``).
    trials : "auto", str or None, default="auto"
        Intervals table of the trial windows: ``"auto"`` uses ``trials`` when the file has
        one, a name picks a table of ``intervals`` (e.g. ``"epochs"``), ``None`` ignores
        trials and cuts one continuous recording.
    label_column : str, optional
        Column of the trials table that labels each window (returned as ``labels``).
    behavior : "auto", sequence of str or None, default="auto"
        Behaviour series to attach, by name; ``"auto"``: all of ``processing["behavior"]``.
    max_behavior_gap : float, optional
        Longest interval (s) between two behaviour samples that is interpolated across;
        default five times the median sampling interval of each series.
    stimulus : "auto", str or None, default="auto"
        Image series of ``stimulus`` to attach, by name; ``"auto"``: the one greyscale image
        series when there is exactly one.
    frame_window : float, optional
        Seconds of movie per window; defaults to ``window`` (at least one frame).

    Returns
    -------
    Bunch
        ``windows`` (SpikeWindows, behaviour attached as ``windows.behavior`` when present),
        ``labels`` (per window, or None), ``behavior`` and ``behavior_names`` (the same values
        as ``windows.behavior``, a convenient decoding target, or None), ``window_time``
        (session time of each window end, s), ``unit_ids`` and ``trials`` (the trials table as
        a DataFrame, or None).

    Examples
    --------
    >>> from nfestimators.data import load_nwb
    >>> data = load_nwb("A8604-211122.nwb", dt=0.01, window=0.1)  # doctest: +SKIP
    >>> data.windows, data.unit_ids                                # doctest: +SKIP
    (SpikeWindows(n_samples=10874, n_neurons=3, window=0.1s, dt=0.01s), array([  6, 191, 206]))
    """
    options = dict(dt=dt, window=window, prev_window=prev_window, stride=stride,
                   unit_column=unit_column, unit_values=unit_values, trials=trials,
                   label_column=label_column, behavior=behavior,
                   max_behavior_gap=max_behavior_gap, stimulus=stimulus,
                   frame_window=frame_window)
    pynwb = import_extra("pynwb", "nwb")
    if isinstance(path, pynwb.NWBFile):
        return _windows_from_nwbfile(path, options)
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise FileNotFoundError(f"path must be an NWB file or a pynwb.NWBFile; got {path!r}.")
    with pynwb.NWBHDF5IO(os.fspath(path), "r") as io:
        return _windows_from_nwbfile(io.read(), options)


def _windows_from_nwbfile(nwb, args):
    if nwb.units is None or len(nwb.units) == 0:
        raise ValueError("the NWB file has no units table (nwb.units); load_nwb reads sorted "
                         "spikes from it.")
    rows = _selected_units(nwb.units, args["unit_column"], args["unit_values"])
    times, units = _spikes_of(nwb.units, rows)
    table = _trials_table(nwb, args["trials"])
    if table is None:
        if args["window"] is None:
            raise ValueError("window=None (one window per trial) needs a trials table; give a "
                             "window length in seconds.")
        start, stop = [0.0], [end_covering(times[-1], args["window"], args["stride"])]
    else:
        start = _column(table, "start_time", "trials table").astype(np.float64)
        stop = _column(table, "stop_time", "trials table").astype(np.float64)
    X, window_time = windows_in_intervals(
        times, units, start, stop, dt=args["dt"], window=args["window"],
        prev_window=args["prev_window"], stride=args["stride"], n_neurons=len(rows))
    labels = None
    if args["label_column"] is not None:
        if table is None:
            raise ValueError("label_column needs a trials table; this file has none (or "
                             "trials=None was passed).")
        labels = _column(table, args["label_column"], "trials table")[X.trial]
    series = _behavior_series(nwb, args["behavior"])
    if series:
        values, names = _behavior_at(series, window_time, args["max_behavior_gap"])
        keep = _windows_with_behavior(values)
        X, window_time = X[keep].with_behavior(values[keep], names), window_time[keep]
        labels = None if labels is None else labels[keep]
    movie = _stimulus_series(nwb, args["stimulus"])
    if movie is not None:
        frame_window = args["frame_window"] if args["frame_window"] is not None else X.window
        X = _with_frames(X, movie, window_time, frame_window)
    return Bunch(windows=X, labels=labels, behavior=X.behavior, behavior_names=X.behavior_names,
                 window_time=window_time, unit_ids=np.asarray(nwb.units.id[:])[rows],
                 trials=None if table is None else table)


# ------------------------------------------------------------------------ spikes
def _column(table, name, what):
    """One column of a DataFrame as an array, with an error listing the columns."""
    if name not in table.columns:
        raise ValueError(f"the {what} has no column {name!r}; its columns: {list(table.columns)}.")
    return table[name].to_numpy()


def _selected_units(units, column, values):
    """Row positions of the kept units."""
    n = len(units)
    if column is None:
        if values is not None:
            raise ValueError("unit_values needs unit_column (the units-table column to match).")
        return np.arange(n)
    if values is None:
        raise ValueError(f"unit_column={column!r} needs unit_values, e.g. unit_values='good'.")
    if column not in units.colnames:
        raise ValueError(f"the units table has no column {column!r}; its columns: "
                         f"{list(units.colnames)}.")
    cells = np.asarray(units[column][:])
    if cells.dtype.kind == "S":
        cells = cells.astype(str)
    rows = np.flatnonzero(np.isin(cells, np.atleast_1d(np.asarray(values))))
    if rows.size == 0:
        raise ValueError(f"no unit has {column} in {values!r}; the column holds "
                         f"{sorted(set(cells.tolist()))[:10]}.")
    return rows


def _spikes_of(units, rows):
    """Spike times of the kept units, sorted by time, and their neuron index (0..len(rows))."""
    flat = np.asarray(units.spike_times_index.target.data[:], dtype=np.float64)
    stops = np.asarray(units.spike_times_index.data[:], dtype=np.int64)
    starts = np.concatenate([[0], stops[:-1]])
    times = [flat[starts[r]:stops[r]] for r in rows]
    neuron = np.repeat(np.arange(len(rows)), [len(t) for t in times])
    times = np.concatenate(times)
    if times.size == 0:
        raise ValueError("the selected units have no spikes.")
    order = np.argsort(times, kind="stable")
    return times[order], neuron[order]


# ----------------------------------------------------------------------- windows
def _trials_table(nwb, trials):
    if trials is None:
        return None
    if trials == "auto":
        return None if nwb.trials is None else nwb.trials.to_dataframe()
    if not isinstance(trials, str):
        raise ValueError(f"trials must be 'auto', None or the name of an intervals table; got "
                         f"{trials!r}.")
    tables = dict(nwb.intervals)
    if trials not in tables:
        raise ValueError(f"the NWB file has no intervals table {trials!r}; it has "
                         f"{sorted(tables)}.")
    return tables[trials].to_dataframe()


# --------------------------------------------------------------------- behaviour
def _behavior_series(nwb, behavior):
    """The chosen behaviour TimeSeries by name (empty without ``processing["behavior"]``)."""
    if behavior is None:
        return {}
    pynwb = import_extra("pynwb", "nwb")
    found = {}
    module = nwb.processing.get("behavior")
    for interface in ([] if module is None else module.data_interfaces.values()):
        if isinstance(interface, pynwb.TimeSeries):
            found[interface.name] = interface
        for attr in ("spatial_series", "time_series"):
            found.update(getattr(interface, attr, None) or {})
    if isinstance(behavior, str) and behavior == "auto":
        return dict(sorted(found.items()))
    names = [behavior] if isinstance(behavior, str) else list(behavior)
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"behaviour series {missing} are not in processing['behavior']; it "
                         f"holds {sorted(found)}.")
    return {n: found[n] for n in names}


def _windows_with_behavior(values):
    """Mask of the windows whose behaviour is defined; warns with the count of the others."""
    keep = np.all(np.isfinite(values), axis=1)
    if not keep.any():
        raise ValueError("no window end falls inside the recorded behaviour; check the "
                         "behaviour timestamps or pass behavior=None.")
    if not keep.all():
        warnings.warn(f"{np.count_nonzero(~keep)} of {len(keep)} windows have no behaviour "
                      "value at their end (outside the recorded behaviour, in a gap or next "
                      "to a NaN sample) and were dropped.", stacklevel=4)
    return keep


def _series_times(series):
    """Timestamps (s) of a TimeSeries: its own, or starting_time + i / rate."""
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    n = len(series.data)
    return float(series.starting_time or 0.0) + np.arange(n) / float(series.rate)


def _behavior_at(series, times, max_gap):
    """Every series' columns interpolated at ``times``; NaN where a value is undefined."""
    pynwb = import_extra("pynwb", "nwb")
    columns, names = [], []
    for name, s in series.items():
        values = np.asarray(s.data[:], dtype=np.float64)
        values = values.reshape(len(values), -1)
        stamps = _series_times(s)
        if len(stamps) != len(values) or np.any(np.diff(stamps) <= 0):
            raise ValueError(f"behaviour series {name!r} needs one increasing timestamp per "
                             "sample.")
        at_ends, missing, _ = behavior_at_times(values, stamps, times, 0.0, at="end",
                                                max_gap=_max_gap(stamps, max_gap))
        at_ends[missing] = np.nan  # NaN samples propagate through the interpolation too
        columns.append(at_ends)
        spatial = isinstance(s, pynwb.behavior.SpatialSeries) and values.shape[1] <= 3
        suffixes = _AXES if spatial else [str(j) for j in range(values.shape[1])]
        names += [name] if values.shape[1] == 1 else [f"{name}_{x}" for x in
                                                       suffixes[:values.shape[1]]]
    return np.concatenate(columns, axis=1), names


def _max_gap(stamps, max_gap):
    """``max_behavior_gap``, by default five times the series' median sampling interval."""
    if max_gap is not None:
        if not float(max_gap) > 0:
            raise ValueError(f"max_behavior_gap must be positive seconds; got {max_gap!r}.")
        return float(max_gap)
    return 5.0 * float(np.median(np.diff(stamps))) if len(stamps) > 1 else np.inf


# ---------------------------------------------------------------------- stimulus
def _stimulus_series(nwb, stimulus):
    """The greyscale image series to attach, or None."""
    if stimulus is None:
        return None
    pynwb = import_extra("pynwb", "nwb")
    movies = {name: s for name, s in nwb.stimulus.items()
              if isinstance(s, pynwb.image.ImageSeries) and s.data is not None
              and len(np.shape(s.data)) == 3}
    if isinstance(stimulus, str) and stimulus == "auto":
        return next(iter(movies.values())) if len(movies) == 1 else None
    if stimulus not in movies:
        raise ValueError(f"stimulus {stimulus!r} is not a greyscale (n_frames, height, width) "
                         f"image series stored in nwb.stimulus; those are {sorted(movies)}.")
    return movies[stimulus]


def _with_frames(X, movie, window_time, frame_window):
    """``X`` with the movie attached: per window the frames up to the one shown at its end."""
    frames = np.asarray(movie.data[:])
    frame_times = _series_times(movie)
    rate = float(movie.rate) if movie.rate else 1.0 / float(np.median(np.diff(frame_times)))
    n_frames = max(1, int(np.ceil(round(float(frame_window) * rate, _DECIMALS))))
    last = np.searchsorted(frame_times, window_time, side="right") - 1
    index = np.clip(last[:, None] + np.arange(1 - n_frames, 1), 0, len(frames) - 1)
    return SpikeWindows(
        X.neuron, X.bin, X.offsets, n_neurons=X.n_neurons, dt=X.dt, n_bins=X.n_bins,
        prev_neuron=X.prev_neuron, prev_bin=X.prev_bin, prev_offsets=X.prev_offsets,
        n_prev_bins=X.n_prev_bins, window_end=X.window_end, trial=X.trial, stimulus=frames,
        frame_index=index, behavior=X.behavior, behavior_names=X.behavior_names)
