"""Decoding results: true vs predicted targets, confusion matrices."""

from __future__ import annotations

import numpy as np

from ._axes import pyplot, new_axes


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
        _, axes = pyplot().subplots(1, n_targets, figsize=(4.5 * n_targets, 4), squeeze=False)
        axes = list(axes[0])
    else:
        axes = new_axes(ax, n_targets)
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
        _, ax = pyplot().subplots(figsize=(4.5, 4))
    display = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, normalize=normalize, ax=ax, cmap=cmap, colorbar=True,
        values_format=".2f" if normalize else "d")
    bar_label = {"true": "fraction of the true class", "pred": "fraction of the predicted class",
                 "all": "fraction of all samples", None: "number of samples"}[normalize]
    display.im_.colorbar.set_label(bar_label)
    ax.set_title(f"accuracy {accuracy_score(y_true, y_pred):.3f}")
    return ax
