"""Rasters and PSTHs of true and generated spikes."""

from __future__ import annotations

import numbers

import numpy as np

from nfestimators.data.coerce import paired_events, spike_events
from nfestimators.metrics import psth_from_events

from ._axes import pyplot, new_axes


def _neuron_subset(neurons, n_neurons):
    if neurons is None:
        return None
    idx = np.atleast_1d(np.asarray(neurons))
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or idx.size == 0:
        raise ValueError("neurons must be a non-empty sequence of neuron indices.")
    if idx.min() < 0 or idx.max() >= n_neurons:
        raise ValueError(f"neuron indices must lie in [0, {n_neurons}); got {idx.min()}.."
                         f"{idx.max()}.")
    return idx


def plot_raster(true, generated=None, ax=None, *, neurons=None, marker_size=4.0, color="k"):
    """Spike raster of windows laid end to end; true and generated side by side.

    Windows are drawn one after the other in the given order (spike ``x`` = window position
    times window length plus the spike's offset in the window), so a slice of consecutive
    windows of one recording shows as one stretch of time. A bin holding several spikes shows
    one mark.

    Parameters
    ----------
    true : SpikeWindows or array-like of shape (n_windows, n_neurons[, n_bins])
        Spikes to draw.
    generated : SpikeWindows or array-like, optional
        Generated spikes for the same windows, drawn in a second panel.
    ax : matplotlib Axes, or a pair of Axes when ``generated`` is given, optional
        Where to draw; new axes by default.
    neurons : sequence of int, optional
        Neurons to show (default: all), drawn in the given order from the bottom.
    marker_size : float, default=4.0
        Marker area of one spike.
    color : str, default="k"
        Marker colour.

    Returns
    -------
    matplotlib Axes, or ndarray of two Axes when ``generated`` is given

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> counts = np.random.default_rng(0).poisson(0.2, size=(10, 4, 5))
    >>> plot_raster(counts, generated=counts).shape
    (2,)
    """
    if generated is None:
        panels = [("true", spike_events(true, "true"))]
    else:
        panels = list(zip(("true", "generated"), paired_events(true, generated)))
    axes = new_axes(ax, len(panels))
    # one time unit for both panels: seconds when either side knows its bin width
    dt = next((ev.dt for _, ev in panels if ev.dt is not None), None)
    for axis, (title, ev) in zip(axes, panels):
        subset = _neuron_subset(neurons, ev.n_neurons)
        x = (ev.window * ev.n_bins + ev.bin) * (1.0 if dt is None else dt)
        y = ev.neuron
        if subset is not None:
            row = np.full(ev.n_neurons, -1)
            row[subset] = np.arange(len(subset))
            keep = row[y] >= 0
            x, y = x[keep], row[y[keep]]
        axis.scatter(x, y, s=marker_size, c=color, marker="|", linewidths=1)
        axis.set_xlim(0, ev.n_windows * ev.n_bins * (1.0 if dt is None else dt))
        axis.set_xlabel("time (bins)" if dt is None else "time (s)")
        axis.set_ylabel("neuron")
        if generated is not None:
            axis.set_title(title)
        if subset is not None and len(subset) <= 20:
            axis.set_yticks(np.arange(len(subset)), [str(n) for n in subset])
    return axes[0] if generated is None else np.array(axes, dtype=object)


def plot_psth(true, generated=None, neurons=None, ax=None, *, bin_by="window", groups=None,
              max_points=200):
    """PSTHs (spike counts per time point, summed over trials) of true and generated spikes.

    By default the time axis is the **time within each trial** of ``true`` (its
    ``window_end`` counted from the trial's first window), so trials from
    :meth:`~nfestimators.SpikeWindows.from_trials` and trials cut from one recording with
    ``from_counts(trial=...)`` are summed alike; and a long continuous recording is pooled into
    at most ``max_points`` time points (consecutive points summed), so the curve stays
    readable instead of one point per window.

    Parameters
    ----------
    true : SpikeWindows or array-like of shape (n_windows, n_neurons[, n_bins])
        Spikes.
    generated : SpikeWindows or array-like, optional
        Generated spikes for the same windows, drawn dashed in the same colours.
    neurons : sequence of int, optional
        Neurons to draw, one line each; by default the population PSTH (summed over neurons).
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    bin_by : {"window", "bin"}, default="window"
        One point per window or per bin, as in :func:`nfestimators.metrics.psth`.
    groups : array-like of shape (n_windows,), optional
        Time label of every window (windows sharing one are summed), as in
        :func:`nfestimators.metrics.psth`; default the time within the trial (see above).
    max_points : int or None, default=200
        Most points drawn per curve; ``None`` draws every time point.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> counts = np.random.default_rng(0).poisson(0.5, size=(30, 4))
    >>> ax = plot_psth(counts, counts[::-1], neurons=[0, 2])
    >>> len(ax.get_lines())
    4
    """
    if generated is None:
        t_ev = spike_events(true, "true")
        series = [("true", t_ev, "-")]
    else:
        t_ev, g_ev = paired_events(true, generated, same_bins=bin_by == "bin")
        series = [("true", t_ev, "-"), ("generated", g_ev, "--")]
    if max_points is not None and (isinstance(max_points, bool) or
                                   not isinstance(max_points, numbers.Integral) or max_points < 2):
        raise ValueError(f"max_points must be an integer >= 2 or None; got {max_points!r}.")
    subset = _neuron_subset(neurons, t_ev.n_neurons)
    timed = groups is None and t_ev.window_end is not None  # SpikeWindows: times and trials
    if timed:
        groups = _time_in_trial(true)
    if ax is None:
        _, ax = pyplot().subplots(figsize=(6, 3.5))
    colors = [f"C{i % 10}" for i in range(1 if subset is None else len(subset))]
    for name, ev, style in series:
        hist = psth_from_events(ev, bin_by, groups, t_ev)  # (n_points, n_neurons)
        x = _psth_x(t_ev, bin_by, groups if timed else None, len(hist))
        x, hist, pooled = _pool_points(x, hist, max_points)
        if subset is None:
            ax.plot(x, hist.sum(axis=1), style, color=colors[0], label=f"{name}, all neurons")
            continue
        for color, n in zip(colors, subset):
            ax.plot(x, hist[:, n], style, color=color, label=f"{name}, neuron {n}")
    ax.set_xlabel("time (s)" if timed else "time point")
    ax.set_ylabel("spike count" if pooled == 1 else f"spike count per {pooled} time points")
    ax.legend(fontsize="small")
    return ax


def _time_in_trial(X):
    """Each window's end counted from the first window end of its trial, plus one window."""
    _, trial = np.unique(X.trial, return_inverse=True)
    first = np.full(trial.max() + 1, np.inf)
    np.minimum.at(first, trial, X.window_end)
    return np.round(X.window_end - first[trial] + X.window, 6)


def _pool_points(x, hist, max_points):
    """Sum consecutive PSTH points so that at most ``max_points`` remain (x: their mean)."""
    factor = 1 if max_points is None else int(np.ceil(len(x) / max_points))
    if factor <= 1:
        return x, hist, 1
    n = len(x) // factor * factor  # a last, partial group would look like a drop in rate
    x = np.asarray(x, dtype=np.float64)[:n].reshape(-1, factor).mean(axis=1)
    return x, hist[:n].reshape(-1, factor, hist.shape[1]).sum(axis=1), factor


def _psth_x(ev, bin_by, times, n_points):
    """x of each PSTH point: window or bin centres (s) given each window's time label,
    else the point index."""
    if times is None:
        return np.arange(n_points)
    ends = np.unique(times)
    window = ev.n_bins * ev.dt
    if bin_by == "window":
        return ends - window / 2
    return (ends[:, None] - window + (np.arange(ev.n_bins) + 0.5) * ev.dt).ravel()
