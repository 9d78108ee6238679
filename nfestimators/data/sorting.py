"""Windows from spike-sorting outputs: spikeinterface sortings and pynapple spike groups.

Each needs its optional extra (``spikeinterface``, ``pynapple``), imported only when called.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._extras import import_extra
from .intervals import end_covering, windows_in_intervals

__all__ = ["from_spikeinterface", "from_pynapple"]


def from_spikeinterface(sorting, *, dt, window, prev_window=0.0, stride=None):
    """Windows from a spikeinterface sorting (Kilosort, phy, MountainSort ... outputs).

    Needs spikeinterface (``pip install 'nfestimators[spikeinterface]'``). Neuron ``i`` is the
    sorting's ``i``-th unit (choose units first with ``sorting.select_units(ids)``). Each
    segment becomes one trial with time restarting at 0; its windows run back to back from
    0 to the end of the registered recording, or, without one, until a window holds the
    segment's last spike.

    Parameters
    ----------
    sorting : spikeinterface.BaseSorting
        The sorting, e.g. ``spikeinterface.extractors.read_phy(folder)``.
    dt, window, prev_window, stride : float
        Bin width, window lengths and time between window ends (default ``window``), in
        seconds; ``window=None`` makes one window per segment.

    Returns
    -------
    Bunch
        ``windows`` (SpikeWindows; ``windows.trial`` is the segment) and ``unit_ids`` (the
        sorting's id of each neuron).

    Examples
    --------
    >>> from spikeinterface.core import generate_sorting
    >>> sorting = generate_sorting(num_units=5, durations=[10.0], seed=0)
    >>> from_spikeinterface(sorting, dt=0.01, window=0.1).windows
    SpikeWindows(n_samples=100, n_neurons=5, window=0.1s, dt=0.01s)
    """
    spikeinterface = import_extra("spikeinterface", "spikeinterface")
    if not isinstance(sorting, spikeinterface.BaseSorting):
        raise TypeError(f"sorting must be a spikeinterface BaseSorting; got "
                        f"{type(sorting).__name__}.")
    rate = float(sorting.get_sampling_frequency())
    spikes = sorting.to_spike_vector()
    times = spikes["sample_index"] / rate
    segment = spikes["segment_index"]
    duration = np.array([
        sorting.get_num_samples(k) / rate if sorting.has_recording()
        else end_covering(times[segment == k].max(initial=0.0), window or dt, stride)
        for k in range(sorting.get_num_segments())])
    start = np.concatenate([[0.0], np.cumsum(duration)[:-1]])  # segments laid end to end
    X, _ = windows_in_intervals(times + start[segment], spikes["unit_index"], start,
                                start + duration, dt=dt, window=window,
                                prev_window=prev_window, stride=stride,
                                n_neurons=len(sorting.get_unit_ids()))
    return Bunch(windows=X, unit_ids=np.asarray(sorting.get_unit_ids()))


def from_pynapple(spikes, *, dt, window, prev_window=0.0, stride=None, epochs=None):
    """Windows from pynapple spikes: a ``TsGroup`` (one ``Ts`` per unit), a ``Tsd`` of unit
    labels (as ``TsGroup.to_tsd()`` gives) or a single ``Ts``.

    Needs pynapple (``pip install 'nfestimators[pynapple]'``). Each interval of ``epochs``
    (default the spikes' ``time_support``) becomes one trial; windows run inside it, time
    counted from its start, holding the spikes in ``[start, end)`` (a TsGroup's default time
    support ends at its last spike, which is then left out: pass ``epochs`` to keep it).

    Parameters
    ----------
    spikes : pynapple.TsGroup, Tsd or Ts
        Spike times in seconds; a Tsd's values are integer unit labels.
    dt, window, prev_window, stride : float
        Bin width, window lengths and time between window ends (default ``window``), in
        seconds; ``window=None`` makes one window per epoch.
    epochs : pynapple.IntervalSet, optional
        Trials or epochs to cut windows in, e.g. the trials of a task.

    Returns
    -------
    Bunch
        ``windows`` (SpikeWindows; ``windows.trial`` is the epoch), ``unit_ids`` (the unit
        label of each neuron) and ``window_time`` (recording time of each window end, s).

    Examples
    --------
    >>> import numpy as np, pynapple as nap
    >>> group = nap.TsGroup({3: nap.Ts(np.array([0.1, 0.4])), 7: nap.Ts(np.array([0.3]))})
    >>> data = from_pynapple(group, dt=0.05, window=0.1, epochs=nap.IntervalSet(0, 0.5))
    >>> data.unit_ids.tolist(), data.windows.n_spikes().tolist()
    ([3, 7], [0, 1, 0, 1, 1])
    """
    nap = import_extra("pynapple", "pynapple")
    if isinstance(spikes, nap.TsGroup):
        unit_ids = np.sort(np.asarray(list(spikes.keys())))
        flat = spikes.to_tsd()
        times, labels = flat.t, flat.values
    elif isinstance(spikes, nap.Tsd):
        times, labels = spikes.t, spikes.values
        if labels.ndim != 1 or np.any(labels != np.round(labels)):
            raise ValueError("a Tsd of spikes must hold integer unit labels as its values "
                             "(TsGroup.to_tsd() gives one).")
        unit_ids = np.unique(labels)
    elif isinstance(spikes, nap.Ts):
        times, labels, unit_ids = spikes.t, np.zeros(len(spikes.t)), np.array([0])
    else:
        raise TypeError(f"spikes must be a pynapple TsGroup, Tsd or Ts; got "
                        f"{type(spikes).__name__}.")
    epochs = spikes.time_support if epochs is None else epochs
    if not isinstance(epochs, nap.IntervalSet):
        raise TypeError(f"epochs must be a pynapple IntervalSet; got {type(epochs).__name__}.")
    X, window_time = windows_in_intervals(
        times, np.searchsorted(unit_ids, labels), epochs.start, epochs.end, dt=dt,
        window=window, prev_window=prev_window, stride=stride, n_neurons=len(unit_ids))
    return Bunch(windows=X, unit_ids=unit_ids, window_time=window_time)
