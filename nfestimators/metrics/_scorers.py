"""sklearn scorers of generation quality: they compare ``estimator.sample(X)`` with ``X``."""

from __future__ import annotations

import numpy as np

from ._generation import psth_correlation, window_f1

__all__ = ["make_generation_scorer", "psth_correlation_scorer", "window_f1_scorer"]


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
