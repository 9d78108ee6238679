"""Generation measures: window-set F1, PSTHs and their correlation (spec section 7)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from nfestimators.data.coerce import paired_events, spike_events

from ._decoding import columnwise_pearson

__all__ = ["psth", "psth_correlation", "psth_from_events", "window_f1"]


def _presence(ev):
    """Boolean CSR matrix (n_windows, n_neurons): which neurons fire in each window."""
    m = sparse.csr_matrix((ev.weight, (ev.window, ev.neuron)), shape=(ev.n_windows, ev.n_neurons))
    m.sum_duplicates()
    m.data = (m.data > 0).astype(np.float64)
    m.eliminate_zeros()
    return m


def window_f1(true_windows, generated_windows, *, zero_division=1.0):
    """Window-set precision, recall and F1 of generated spikes (the paper's generation F1).

    For every window, the set ``T`` of neurons that fire in the true window is compared with
    the set ``G`` of neurons that fire in the generated one (spike counts and timing within
    the window are ignored): ``TP = |T & G|``, ``FP = |G - T|``, ``FN = |T - G|``,
    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)`` and
    ``F1 = 2 TP / (2 TP + FP + FN)``. The three values are averaged over windows.

    Edge cases: a ratio ``0 / 0`` (nothing generated, for precision; nothing to recall, for
    recall; both windows silent, for F1) takes the value ``zero_division``. With the default
    1.0 two silent windows score 1 / 1 / 1; a silent true window with generated spikes scores
    precision 0, recall 1, F1 0; a missed non-silent window scores precision 1, recall 0, F1 0.

    Parameters
    ----------
    true_windows, generated_windows : SpikeWindows or array-like
        Aligned windows (same number and order of windows, same neurons): SpikeWindows or dense
        counts of shape ``(n_windows, n_neurons[, n_bins])``. The bin counts may differ.
    zero_division : float, default=1.0
        Value of a ``0 / 0`` ratio, between 0 and 1.

    Returns
    -------
    precision, recall, f1 : float
        Means over windows.

    Examples
    --------
    >>> import numpy as np
    >>> true = np.array([[1, 1, 0], [0, 0, 0]])
    >>> gen = np.array([[1, 0, 2], [0, 0, 0]])
    >>> [round(v, 3) for v in window_f1(true, gen)]
    [0.75, 0.75, 0.75]
    """
    zero_division = float(zero_division)
    if not 0.0 <= zero_division <= 1.0:
        raise ValueError(f"zero_division must lie in [0, 1]; got {zero_division}.")
    t, g = paired_events(true_windows, generated_windows)
    pt, pg = _presence(t), _presence(g)
    tp = np.asarray(pt.multiply(pg).sum(axis=1)).ravel()
    n_true = np.asarray(pt.sum(axis=1)).ravel()
    n_gen = np.asarray(pg.sum(axis=1)).ravel()
    precision = _safe_ratio(tp, n_gen, zero_division)
    recall = _safe_ratio(tp, n_true, zero_division)
    f1 = _safe_ratio(2 * tp, n_true + n_gen, zero_division)
    return float(precision.mean()), float(recall.mean()), float(f1.mean())


def _safe_ratio(num, den, fill):
    out = np.full(len(num), fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _groups(ev, groups):
    """Integer code of the PSTH time point of every window, and the number of points."""
    if groups is None:
        if ev.window_end is None:
            return np.arange(ev.n_windows), ev.n_windows
        groups = ev.window_end
    groups = np.asarray(groups)
    if groups.shape != (ev.n_windows,):
        raise ValueError(f"groups must have one label per window ({ev.n_windows},); got shape "
                         f"{groups.shape}.")
    _, codes = np.unique(groups, return_inverse=True)
    return codes.ravel(), int(codes.max()) + 1


def psth(windows, *, bin_by="window", groups=None):
    """Peri-stimulus time histograms: spike counts per time point and neuron.

    Parameters
    ----------
    windows : SpikeWindows or array-like of shape (n_windows, n_neurons[, n_bins])
        Spike windows.
    bin_by : {"window", "bin"}, default="window"
        Time resolution: one point per window (counts summed over the window's bins) or one
        point per bin of every window.
    groups : array-like of shape (n_windows,), optional
        Time label of every window; windows with the same label (the same time in different
        trials) are summed. ``None``: for SpikeWindows, ``window_end`` (time within the trial
        for trial data, so trials are summed; one point per window for one continuous
        recording); for dense arrays, every window is its own time point. For trials cut
        from one continuous recording (``from_counts`` with ``trial``), pass the time within
        the trial, e.g. ``np.round(X.window_end % trial_duration, 6)``.

    Returns
    -------
    ndarray of shape (n_time_points, n_neurons)
        Time points sorted by group label (then by bin).

    Examples
    --------
    >>> import numpy as np
    >>> psth(np.array([[[1, 0]], [[2, 1]]]), bin_by="bin").ravel().tolist()
    [1.0, 0.0, 2.0, 1.0]
    """
    ev = spike_events(windows, "windows")
    return psth_from_events(ev, bin_by, groups, ev)


def psth_from_events(ev, bin_by, groups, reference):
    """PSTH rows of the events ``ev``, at the time points of the ``reference`` events."""
    if bin_by not in ("window", "bin"):
        raise ValueError(f"bin_by must be 'window' or 'bin'; got {bin_by!r}.")
    codes, n_groups = _groups(reference, groups)
    rows = codes[ev.window]
    n_rows = n_groups
    if bin_by == "bin":
        rows = rows * ev.n_bins + ev.bin
        n_rows = n_groups * ev.n_bins
    m = sparse.coo_matrix((ev.weight, (rows, ev.neuron)), shape=(n_rows, ev.n_neurons))
    return m.toarray()


def psth_correlation(true_windows, generated_windows, *, bin_by="window", groups=None):
    """Per-neuron Pearson r between the true and the generated PSTH (spec section 7).

    Each neuron's PSTH is its spike count per time point, summed over trials (see
    :func:`psth`); the correlation is taken over time points.

    Parameters
    ----------
    true_windows, generated_windows : SpikeWindows or array-like
        Aligned windows (same number and order of windows, same neurons).
    bin_by : {"window", "bin"}, default="window"
        One time point per window, or per bin of every window (then both inputs need the same
        number of bins per window).
    groups : array-like of shape (n_windows,), optional
        Time label of every window (windows sharing a label are summed). Default: the
        ``window_end`` of ``true_windows`` when it is a SpikeWindows, else one point per window.

    Returns
    -------
    ndarray of shape (n_neurons,)
        Pearson r per neuron; NaN where either PSTH is constant (e.g. a silent neuron) or
        there are fewer than two time points.

    Examples
    --------
    >>> import numpy as np
    >>> true = np.array([[1, 0, 3], [2, 0, 3], [3, 0, 3]])
    >>> gen = np.array([[1, 1, 1], [2, 0, 1], [4, 0, 1]])
    >>> np.round(psth_correlation(true, gen), 3).tolist()
    [0.982, nan, nan]
    """
    t, g = paired_events(true_windows, generated_windows, same_bins=bin_by == "bin")
    return columnwise_pearson(psth_from_events(t, bin_by, groups, t),
                               psth_from_events(g, bin_by, groups, t))
