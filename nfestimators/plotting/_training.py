"""Latent embeddings and training curves."""

from __future__ import annotations

import numbers

import numpy as np

from ._axes import pyplot


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
        _, ax = pyplot().subplots(figsize=(4.5, 4))
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
        _, ax = pyplot().subplots(figsize=(5, 3.5))
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
