"""Plots of spikes, PSTHs, latent embeddings and training curves.

matplotlib is an optional dependency (the ``plot`` extra); it is imported only when a function
here is called. Every function draws into ``ax`` when given (else a new figure) and returns the
Axes it drew on.
"""

from __future__ import annotations

import numbers

import numpy as np

from nfestimators.data.coerce import paired_events, spike_events
from nfestimators.metrics import psth_from_events

__all__ = ["plot_raster", "plot_psth", "plot_embedding", "plot_loss", "plot_true_vs_predicted",
           "plot_confusion_matrix"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "nfestimators.plotting needs matplotlib, which is not installed; install the "
            "'plot' extra: pip install 'nfestimators[plot]'") from exc
    return plt


def _new_axes(ax, n):
    """``n`` Axes: the given ones (checked) or a fresh row of subplots."""
    if ax is None:
        _, axes = _pyplot().subplots(1, n, figsize=(5 * n, 3.5), squeeze=False,
                                     sharex=True, sharey=True)
        return list(axes[0])
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != n:
        raise ValueError(f"ax must hold {n} Axes here; got {len(axes)}.")
    return axes


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
    axes = _new_axes(ax, len(panels))
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
        _, ax = _pyplot().subplots(figsize=(6, 3.5))
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


def plot_embedding(Z, labels=None, ax=None, *, marker_size=8.0, label_name="label"):
    """Scatter plot of latent vectors, projected on their first two principal components.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
        Latents, e.g. ``NeuroformerPretrainer().fit(X).transform(X)``; with more than two
        features they are projected with PCA.
    labels : array-like of shape (n_samples,), optional
        Colours: discrete labels (a legend entry each) or continuous values (more than 20
        distinct floats; a colour bar).
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    marker_size : float, default=8.0
        Marker area.
    label_name : str, default="label"
        What ``labels`` are (e.g. ``"speed (cm/s)"``): the colour bar's label or the
        legend's title.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> Z = np.random.default_rng(0).normal(size=(50, 6))
    >>> ax = plot_embedding(Z, labels=np.arange(50) % 3)
    >>> ax.get_xlabel()
    'PC 1'
    """
    Z = np.asarray(Z, dtype=np.float64) if np.asarray(Z).dtype.kind in "biuf" else None
    if Z is None or Z.ndim != 2 or Z.shape[0] < 2 or Z.shape[1] < 2:
        raise ValueError("Z must be a numeric 2-D array (n_samples >= 2, n_features >= 2).")
    if not np.all(np.isfinite(Z)):
        raise ValueError("Z contains NaN or infinite values.")
    if Z.shape[1] > 2:
        from sklearn.decomposition import PCA

        xy, names = PCA(n_components=2).fit_transform(Z), ("PC 1", "PC 2")
    else:
        xy, names = Z, ("latent 1", "latent 2")
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(4.5, 4))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=marker_size)
    else:
        labels = np.asarray(labels)
        if labels.shape != (len(Z),):
            raise ValueError(f"labels must have one value per sample ({len(Z)},); got shape "
                             f"{labels.shape}.")
        if labels.dtype.kind == "f" and len(np.unique(labels)) > 20:
            points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, s=marker_size, cmap="viridis")
            ax.figure.colorbar(points, ax=ax, label=label_name)
        else:
            for value in np.unique(labels):
                mask = labels == value
                ax.scatter(xy[mask, 0], xy[mask, 1], s=marker_size, label=str(value))
            ax.legend(fontsize="small", markerscale=2, title=label_name)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    return ax


def plot_loss(history, ax=None, *, keys=None, log_scale=False):
    """Training curves: every loss recorded per epoch.

    Parameters
    ----------
    history : list of dict, skorch ``History``, or an object with ``history_`` / ``history``
        One dict per epoch, e.g. ``{"epoch": 1, "train_loss": 2.3, "valid_loss": 2.5}``.
        Missing or None values are skipped.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    keys : sequence of str, optional
        Keys to draw; default every key ending in ``loss``.
    log_scale : bool, default=False
        Logarithmic y axis.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> history = [{"epoch": 1, "train_loss": 2.0, "valid_loss": 2.2},
    ...            {"epoch": 2, "train_loss": 1.5, "valid_loss": 1.9}]
    >>> [line.get_label() for line in plot_loss(history).get_lines()]
    ['train_loss', 'valid_loss']
    """
    for attr in ("history_", "history"):
        if not isinstance(history, (list, tuple)) and hasattr(history, attr):
            history = getattr(history, attr)
    if not isinstance(history, (list, tuple)) or not all(isinstance(r, dict) for r in history):
        raise ValueError("history must be a list of dicts (one per epoch), a skorch History or "
                         "an object with a history_ attribute.")
    if not history:
        raise ValueError("history is empty: nothing to plot.")
    if keys is None:
        seen = dict.fromkeys(k for row in history for k in row if str(k).endswith("loss"))
        keys = sorted(seen, key=lambda k: (not str(k).startswith("train"), str(k)))
    elif isinstance(keys, str):
        keys = [keys]
    if not keys:
        raise ValueError("history has no key ending in 'loss'; pass keys=[...] to choose.")
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(5, 3.5))
    for key in keys:
        points = [(row.get("epoch", i + 1), row[key]) for i, row in enumerate(history)
                  if isinstance(row.get(key), numbers.Real) and np.isfinite(row[key])]
        if not points:
            raise ValueError(f"history has no numeric value for {key!r}.")
        x, y = zip(*points)
        ax.plot(x, y, marker="o" if len(points) < 30 else None, label=str(key))
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")
    return ax


def _targets(y, name):
    """A numeric, finite target array as 2-D ``(n_samples, n_targets)``."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf" or arr.ndim not in (1, 2) or arr.shape[0] < 2:
        raise ValueError(f"{name} must be a numeric 1-D or 2-D array with at least 2 samples; "
                         f"got shape {arr.shape} and dtype {arr.dtype}.")
    arr = arr.astype(np.float64).reshape(arr.shape[0], -1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def plot_true_vs_predicted(y_true, y_pred, ax=None, *, time=None, target_names=None,
                           marker_size=8.0):
    """Decoding results of a regressor: predicted against true values, one panel per target.

    Without ``time``, a scatter of predicted against true values with the identity line;
    with ``time``, both traces over time. Each panel's title gives the target's R².

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_targets)
        True and predicted values, e.g. ``y_test`` and ``reg.predict(X_test)``.
    ax : matplotlib Axes or a sequence of one Axes per target, optional
        Where to draw; new axes by default.
    time : array-like of shape (n_samples,), optional
        Time of each sample (e.g. the windows' ``window_end``): draw traces over time.
    target_names : sequence of str, optional
        One name per target; default ``target 0``, ``target 1``, ...
    marker_size : float, default=8.0
        Marker area of the scatter.

    Returns
    -------
    matplotlib Axes, or ndarray of Axes with several targets

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> y = np.linspace(0, 1, 50)
    >>> ax = plot_true_vs_predicted(y, y + 0.1, target_names=["speed"])
    >>> ax.get_title()
    'speed: R² = 0.885'
    """
    from sklearn.metrics import r2_score

    true, pred = _targets(y_true, "y_true"), _targets(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; got {true.shape} and "
                         f"{pred.shape}.")
    n_targets = true.shape[1]
    names = [f"target {i}" for i in range(n_targets)] if target_names is None else list(
        target_names)
    if len(names) != n_targets:
        raise ValueError(f"target_names must name all {n_targets} targets; got {len(names)}.")
    if time is not None:
        time = np.asarray(time, dtype=np.float64)
        if time.shape != (len(true),):
            raise ValueError(f"time must have one value per sample ({len(true)},); got shape "
                             f"{time.shape}.")
    if ax is None:
        _, axes = _pyplot().subplots(1, n_targets, figsize=(4.5 * n_targets, 4), squeeze=False)
        axes = list(axes[0])
    else:
        axes = _new_axes(ax, n_targets)
    for axis, name, t, p in zip(axes, names, true.T, pred.T):
        if time is None:
            axis.scatter(t, p, s=marker_size, alpha=0.6)
            low, high = min(t.min(), p.min()), max(t.max(), p.max())
            axis.plot([low, high], [low, high], "k--", linewidth=1, label="identity")
            axis.set_xlabel(f"true {name}")
            axis.set_ylabel(f"predicted {name}")
        else:
            axis.plot(time, t, "k-", linewidth=1, label="true")
            axis.plot(time, p, "C1-", linewidth=1, label="predicted")
            axis.set_xlabel("time (s)")
            axis.set_ylabel(name)
            axis.legend(fontsize="small")
        axis.set_title(f"{name}: R² = {r2_score(t, p):.3f}")
    return axes[0] if n_targets == 1 else np.array(axes, dtype=object)


def plot_confusion_matrix(y_true, y_pred, ax=None, *, labels=None, normalize="true",
                          cmap="Blues"):
    """Decoding results of a classifier: the confusion matrix, with a labelled colour bar.

    Drawn by :class:`sklearn.metrics.ConfusionMatrixDisplay`; the title gives the accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted class labels, e.g. ``y_test`` and ``clf.predict(X_test)``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    labels : sequence, optional
        Classes to show, in this order; default every class seen in either array.
    normalize : {"true", "pred", "all"} or None, default="true"
        Rows sum to 1 (``"true"``: the fraction of each true class predicted as each class),
        columns sum to 1 (``"pred"``), the whole matrix sums to 1 (``"all"``), or counts
        (``None``).
    cmap : str, default="Blues"
        Colour map.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_confusion_matrix(["go", "go", "stop", "stop"], ["go", "stop", "stop", "stop"])
    >>> ax.get_title(), ax.images[0].colorbar.ax.get_ylabel()
    ('accuracy 0.750', 'fraction of the true class')
    """
    from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score

    if normalize not in ("true", "pred", "all", None):
        raise ValueError(f"normalize must be 'true', 'pred', 'all' or None; got {normalize!r}.")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be 1-D arrays of the same length; got shapes "
                         f"{y_true.shape} and {y_pred.shape}.")
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(4.5, 4))
    display = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, normalize=normalize, ax=ax, cmap=cmap, colorbar=True,
        values_format=".2f" if normalize else "d")
    bar_label = {"true": "fraction of the true class", "pred": "fraction of the predicted class",
                 "all": "fraction of all samples", None: "number of samples"}[normalize]
    display.im_.colorbar.set_label(bar_label)
    ax.set_title(f"accuracy {accuracy_score(y_true, y_pred):.3f}")
    return ax
