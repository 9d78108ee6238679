"""Shared by the plots: matplotlib imported on first use, the Axes to draw into."""

from __future__ import annotations

import numpy as np


def pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "nfestimators.plotting needs matplotlib, which is not installed; install the "
            "'plot' extra: pip install 'nfestimators[plot]'") from exc
    return plt


def new_axes(ax, n):
    """``n`` Axes: the given ones (checked) or a fresh row of subplots."""
    if ax is None:
        _, axes = pyplot().subplots(1, n, figsize=(5 * n, 3.5), squeeze=False,
                                     sharex=True, sharey=True)
        return list(axes[0])
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != n:
        raise ValueError(f"ax must hold {n} Axes here; got {len(axes)}.")
    return axes
