"""Metrics for spike prediction and generation (spec section 7), and sklearn scorers.

* :func:`bits_per_spike` / :func:`bits_per_spike_from_log_likelihood`: the Neural Latents
  Benchmark "co-bps", the log-likelihood gain over a per-neuron homogeneous Poisson model, in
  bits per spike.
* :func:`window_f1`: the paper's generation F1, comparing the *set* of neurons that fire in
  each true and generated window.
* :func:`psth_correlation`: per-neuron Pearson r between true and generated PSTHs.
* :func:`pearson_r`: per-target Pearson r for behaviour decoding.

Spike inputs are :class:`~nfestimators.data.SpikeWindows` or dense count arrays of shape
``(n_windows, n_neurons, n_bins)`` or ``(n_windows, n_neurons)`` (one bin per window).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import gammaln, xlogy
from sklearn.metrics import make_scorer

from nfestimators.data import SpikeWindows
from nfestimators.data.coerce import dense_counts, paired_events, spike_events

__all__ = [
    "poisson_log_likelihood",
    "bits_per_spike",
    "bits_per_spike_from_log_likelihood",
    "window_f1",
    "psth",
    "psth_correlation",
    "pearson_r",
    "retrieval_accuracy",
    "make_generation_scorer",
    "window_f1_scorer",
    "psth_correlation_scorer",
    "pearson_r_scorer",
]


# --------------------------------------------------------------------------- inputs
def _presence(ev):
    """Boolean CSR matrix (n_windows, n_neurons): which neurons fire in each window."""
    m = sparse.csr_matrix((ev.weight, (ev.window, ev.neuron)), shape=(ev.n_windows, ev.n_neurons))
    m.sum_duplicates()
    m.data = (m.data > 0).astype(np.float64)
    m.eliminate_zeros()
    return m


# ------------------------------------------------------------------ log-likelihood
def poisson_log_likelihood(counts, rates):
    """Total Poisson log-likelihood of spike counts under predicted rates, in nats.

    ``sum(k * log(lam) - lam - log(k!))`` over every window, neuron and bin.

    Parameters
    ----------
    counts : SpikeWindows or array-like of shape (n_windows, n_neurons[, n_bins])
        Observed spike counts (whole numbers).
    rates : array-like of the same dense shape as ``counts``
        Predicted expected spike count per bin (``lam``, not Hz), ``>= 0``.

    Returns
    -------
    float
        The log-likelihood in nats; ``-inf`` if a spike falls where the rate is 0.

    Examples
    --------
    >>> import numpy as np
    >>> round(poisson_log_likelihood(np.array([[0, 1, 2]]), np.ones((1, 3))), 4)
    -3.6931
    """
    k, lam = _counts_and_rates(counts, rates)
    return float(np.sum(xlogy(k, lam) - lam - gammaln(k + 1)))


def _counts_and_rates(counts, rates):
    k = counts.to_counts().astype(np.float64) if isinstance(counts, SpikeWindows) else \
        dense_counts(counts, "counts", integer=True)
    lam = np.asarray(rates, dtype=np.float64)
    if lam.ndim == 2:
        lam = lam[:, :, None]
    if lam.shape != k.shape:
        raise ValueError(f"rates must have the shape of the counts {k.shape[:2] + k.shape[2:]}; "
                         f"got {np.shape(rates)}.")
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError("rates must be finite and >= 0 (expected spike counts per bin).")
    return k, lam


def bits_per_spike_from_log_likelihood(log_likelihood, baseline_log_likelihood, n_spikes):
    """Bits per spike from log-likelihood totals (the low-level co-bps formula).

    ``(log_likelihood - baseline_log_likelihood) / (n_spikes * ln 2)``: the model's
    log-likelihood gain over a baseline model, in bits, per observed spike.

    Parameters
    ----------
    log_likelihood : float
        Total log-likelihood of the evaluated spikes under the model, in nats.
    baseline_log_likelihood : float
        Total log-likelihood of the same spikes under the baseline, in nats (for the
        Neural Latents Benchmark definition: a per-neuron homogeneous Poisson model with the
        training mean rate, see :func:`bits_per_spike`).
    n_spikes : int
        Number of spikes evaluated, ``> 0``.

    Returns
    -------
    float
        Positive when the model beats the baseline.

    Examples
    --------
    >>> import numpy as np
    >>> round(bits_per_spike_from_log_likelihood(-100.0, -100.0 - np.log(2) * 50, 100), 6)
    0.5
    """
    values = np.array([log_likelihood, baseline_log_likelihood], dtype=np.float64)
    if np.any(np.isnan(values)) or np.any(values == np.inf):
        raise ValueError("log-likelihoods must be numbers (not NaN or +inf); got "
                         f"{log_likelihood} and {baseline_log_likelihood}.")
    if not np.isfinite(n_spikes) or n_spikes <= 0:
        raise ValueError(f"n_spikes must be > 0 to normalize per spike; got {n_spikes}.")
    return float((values[0] - values[1]) / (float(n_spikes) * np.log(2)))


def bits_per_spike(counts, rates, *, baseline_rates=None):
    """Co-bps: the log-likelihood gain of predicted rates over a homogeneous Poisson baseline.

    The Neural Latents Benchmark definition::

        (LL(counts | rates) - LL(counts | baseline)) / (n_spikes * ln 2)

    where both log-likelihoods are Poisson and the baseline predicts, for every neuron, one
    constant expected count per bin: its mean rate **in the training data**.

    Parameters
    ----------
    counts : SpikeWindows or array-like of shape (n_windows, n_neurons[, n_bins])
        Observed spike counts to evaluate (held-out data).
    rates : array-like of the same dense shape as ``counts``
        Predicted expected spike count per bin (not Hz).
    baseline_rates : array-like of shape (n_neurons,), optional
        Mean spike count per bin of every neuron in the training data. ``None`` uses the mean
        of ``counts`` itself (the baseline then sees the evaluated data, which favours it).
        Must be ``> 0`` for every neuron that spikes in ``counts``.

    Returns
    -------
    float
        Bits per spike; 0 for a model no better than the baseline.

    Examples
    --------
    >>> import numpy as np
    >>> counts = np.array([[[0, 1]], [[0, 1]]])      # one neuron, always fires in bin 1
    >>> rates = np.array([[[0.01, 1.0]], [[0.01, 1.0]]])
    >>> round(bits_per_spike(counts, rates), 3)
    0.986
    >>> bits_per_spike(counts, np.full((2, 1, 2), 0.5))
    0.0
    """
    k, lam = _counts_and_rates(counts, rates)
    n_spikes = k.sum()
    if n_spikes == 0:
        raise ValueError("counts hold no spikes: bits per spike is undefined.")
    if baseline_rates is None:
        base = k.mean(axis=(0, 2))
    else:
        base = np.asarray(baseline_rates, dtype=np.float64)
        if base.shape != (k.shape[1],):
            raise ValueError(f"baseline_rates must have one rate per neuron ({k.shape[1]},); "
                             f"got shape {base.shape}.")
        if not np.all(np.isfinite(base)) or np.any(base < 0):
            raise ValueError("baseline_rates must be finite and >= 0.")
    base = np.broadcast_to(base[None, :, None], k.shape)
    ll_model = float(np.sum(xlogy(k, lam) - lam - gammaln(k + 1)))
    ll_base = float(np.sum(xlogy(k, base) - base - gammaln(k + 1)))
    if ll_base == -np.inf:
        raise ValueError("baseline_rates is 0 for a neuron that spikes in counts.")
    return bits_per_spike_from_log_likelihood(ll_model, ll_base, n_spikes)


# ------------------------------------------------------------------ generation
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


def _columnwise_pearson(a, b):
    """Pearson r of matching columns; NaN where a column is constant (no warnings)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    r = np.full(a.shape[1], np.nan)
    np.divide((a * b).sum(axis=0), den, out=r, where=den > 0)
    return np.clip(r, -1.0, 1.0, out=r, where=~np.isnan(r))


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
    return _columnwise_pearson(psth_from_events(t, bin_by, groups, t),
                               psth_from_events(g, bin_by, groups, t))


# ------------------------------------------------------------------ behaviour
def _finite_pair(first, second, names, caller, min_samples, *, shape_text, columns=False):
    """Two finite float arrays of one 2-D shape (1-D ones as a column when ``columns``)."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if columns:
        a, b = (x[:, None] if x.ndim == 1 else x for x in (a, b))
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must be {shape_text}; got "
                         f"{np.shape(first)} and {np.shape(second)}.")
    if a.shape[0] < min_samples:
        raise ValueError(f"{caller} needs at least {min_samples} sample(s).")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"{names[0]} and {names[1]} must be finite.")
    return a, b


def pearson_r(y_true, y_pred, *, multioutput="raw_values"):
    """Pearson r between true and predicted behaviour, one value per target column.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_targets)
        True and predicted values.
    multioutput : {"raw_values", "uniform_average"}, default="raw_values"
        Return one r per target, or their mean (ignoring NaN).

    Returns
    -------
    ndarray of shape (n_targets,) or float
        NaN for a constant column.

    Examples
    --------
    >>> pearson_r([1, 2, 3, 4], [1, 3, 2, 4]).round(2).tolist()
    [0.8]
    """
    a, b = _finite_pair(y_true, y_pred, ("y_true", "y_pred"), "pearson_r", 2,
                        shape_text="the same shape (n_samples[, n_targets])", columns=True)
    r = _columnwise_pearson(a, b)
    if multioutput == "raw_values":
        return r
    if multioutput == "uniform_average":
        return float(np.nanmean(r)) if np.any(~np.isnan(r)) else float("nan")
    raise ValueError(f"multioutput must be 'raw_values' or 'uniform_average'; got {multioutput!r}.")


# ------------------------------------------------------------------ latents
def retrieval_accuracy(Z_a, Z_b, k=1):
    """Top-k retrieval accuracy between two sets of paired latents (rows match).

    For every row ``i`` of ``Z_a``, the rows of ``Z_b`` are ranked by cosine similarity to
    it; a hit is when ``Z_b[i]`` is among the ``k`` most similar. Ties count against the
    match (a constant latent scores 0, not 1). Chance level is ``k / n_samples``.

    Use it to check contrastive alignment, e.g. spike latents against frame latents of
    held-out windows: ``retrieval_accuracy(pre.transform(X), pre.transform(X,
    modality="frames"))``.

    Parameters
    ----------
    Z_a, Z_b : array-like of shape (n_samples, n_features)
        Latents of two modalities; row ``i`` of both belongs to the same sample.
    k : int, default=1
        Number of best candidates that count as a hit.

    Returns
    -------
    float
        Fraction of the rows of ``Z_a`` whose partner is among the top ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> retrieval_accuracy(Z, 2 * Z)
    1.0
    >>> retrieval_accuracy(Z, Z[[1, 0, 2]])  # rows 0 and 1 swapped: only row 2 is found
    0.3333333333333333
    >>> retrieval_accuracy(Z, Z[[1, 0, 2]], k=2)
    0.3333333333333333
    """
    a, b = _finite_pair(Z_a, Z_b, ("Z_a", "Z_b"), "retrieval_accuracy", 1,
                        shape_text="2-D arrays of the same shape")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")

    def unit(z):
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        return z / np.where(norm > 0, norm, 1.0)

    a, b = unit(a), unit(b)
    n = len(a)
    hits = 0
    for start in range(0, n, 1024):  # bounded memory: (1024, n) similarities at a time
        sim = a[start:start + 1024] @ b.T
        rows = np.arange(len(sim))
        match = sim[rows, start + rows]
        rank = (sim >= match[:, None]).sum(axis=1) - 1  # others at least as similar
        hits += int(np.count_nonzero(rank < k))
    return hits / n


# Scorer: mean Pearson r of ``estimator.predict(X)`` against ``y`` over the targets.
pearson_r_scorer = make_scorer(pearson_r, multioutput="uniform_average")


# ------------------------------------------------------------------ scorers
class _GenerationScorer:
    """``scorer(estimator, X, y=None)``: compare ``estimator.sample(X)`` with ``X``."""

    def __init__(self, score_func, sample_kwargs):
        self.score_func = score_func
        self.sample_kwargs = sample_kwargs

    def __call__(self, estimator, X, y=None):
        if not hasattr(estimator, "sample"):
            raise ValueError(f"{type(estimator).__name__} has no sample method; generation "
                             "scorers need an estimator that generates spike windows.")
        return float(self.score_func(X, estimator.sample(X, **self.sample_kwargs)))

    def __repr__(self):
        kwargs = "".join(f", {k}={v!r}" for k, v in self.sample_kwargs.items())
        return f"make_generation_scorer({self.score_func.__name__}{kwargs})"


def make_generation_scorer(score_func, **sample_kwargs):
    """Make a scorer that rates generated spikes against the true windows.

    sklearn's :func:`~sklearn.metrics.make_scorer` compares ``predict(X)`` with ``y``; spike
    generation compares ``estimator.sample(X)`` with ``X`` itself, so these scorers are plain
    callables with the signature ``scorer(estimator, X, y=None)`` that
    :class:`~sklearn.model_selection.GridSearchCV` and
    :func:`~sklearn.model_selection.cross_val_score` accept as ``scoring``.

    Parameters
    ----------
    score_func : callable
        ``score_func(true_windows, generated_windows) -> float``, greater is better.
    **sample_kwargs
        Passed to ``estimator.sample`` (e.g. ``temperature``, ``top_p``).

    Returns
    -------
    callable

    Examples
    --------
    >>> import numpy as np
    >>> class Copycat:
    ...     def sample(self, X):
    ...         return X
    >>> scorer = make_generation_scorer(lambda t, g: window_f1(t, g)[2])
    >>> scorer(Copycat(), np.eye(3, dtype=int))
    1.0
    """
    if not callable(score_func):
        raise ValueError(f"score_func must be callable; got {score_func!r}.")
    return _GenerationScorer(score_func, sample_kwargs)


def _window_f1_score(true_windows, generated_windows):
    return window_f1(true_windows, generated_windows)[2]


def _median_psth_correlation(true_windows, generated_windows):
    r = psth_correlation(true_windows, generated_windows)
    return float(np.median(r[~np.isnan(r)])) if np.any(~np.isnan(r)) else float("nan")


window_f1_scorer = make_generation_scorer(_window_f1_score)
"""Scorer ``(estimator, X, y=None)``: mean window F1 of ``estimator.sample(X)`` against ``X``."""

psth_correlation_scorer = make_generation_scorer(_median_psth_correlation)
"""Scorer ``(estimator, X, y=None)``: median (over non-silent neurons) PSTH correlation of
``estimator.sample(X)`` against ``X``; NaN when no neuron has a usable PSTH."""
