"""Decoding and latent measures: Pearson r per target, retrieval accuracy."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import make_scorer

__all__ = ["columnwise_pearson", "pearson_r", "pearson_r_scorer", "retrieval_accuracy"]


def columnwise_pearson(a, b):
    """Pearson r of matching columns; NaN where a column is constant (no warnings)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    r = np.full(a.shape[1], np.nan)
    np.divide((a * b).sum(axis=0), den, out=r, where=den > 0)
    return np.clip(r, -1.0, 1.0, out=r, where=~np.isnan(r))


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
    r = columnwise_pearson(a, b)
    if multioutput == "raw_values":
        return r
    if multioutput == "uniform_average":
        return float(np.nanmean(r)) if np.any(~np.isnan(r)) else float("nan")
    raise ValueError(f"multioutput must be 'raw_values' or 'uniform_average'; got {multioutput!r}.")


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
