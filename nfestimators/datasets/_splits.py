"""Random train / test / finetune splits of windows (a corrected ``split_data_by_interval``)."""

from __future__ import annotations

import numbers

import numpy as np

from nfestimators.data import SpikeWindows

from ._random import seed_sequence

__all__ = ["split_windows"]


def _split_size(size, n, name, minimum):
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise ValueError(f"{name} must be a fraction in (0, 1) or a count; got {size!r}.")
    if isinstance(size, numbers.Integral):
        count = int(size)
    elif 0 <= size < 1:
        count = int(round(size * n))
    else:
        raise ValueError(f"{name}={size} must be a fraction in [0, 1) or an integer count.")
    if count < 0:
        raise ValueError(f"{name}={size} must not be negative.")
    count = max(count, minimum)
    if count > n:
        raise ValueError(f"{name}={size} asks for {count} of {n} units.")
    return count


def split_windows(X, *, test_size=0.2, finetune_size=0.01, random_state=None, by="window",
                  groups=None):
    """Random train / test / finetune split of windows, as index arrays.

    A corrected ``split_data_by_interval``: sampling without replacement, a test set that is
    never empty, and a local random generator (never the global one).

    * ``test``: a random ``test_size`` share of the units (at least one), disjoint from train.
    * ``train``: all the other windows.
    * ``finetune``: a random ``finetune_size`` share of the **train** units (at least one
      when ``finetune_size > 0``): an explicit subset of train, as in the original. It is
      meant as the few labelled windows for few-shot finetuning of a model pretrained
      self-supervised on train; the test windows stay unseen by both.

    Parameters
    ----------
    X : SpikeWindows or array-like
        The windows (anything with a length).
    test_size : float or int, default=0.2
        Fraction of units (or number of units) for testing.
    finetune_size : float or int, default=0.01
        Fraction of the training units (or number of units) for finetuning; 0 for none.
    random_state : int, numpy Generator or RandomState, default=None
        Seed of the shuffle; the same seed gives the same split.
    by : {"window", "trial"}, default="window"
        Unit of the split: single windows, or whole trials (all windows of a trial fall in
        the same part, which avoids leakage through overlapping past windows).
    groups : array-like of shape (n_samples,), optional
        Trial of each window for ``by="trial"``; defaults to ``X.trial``.

    Returns
    -------
    train, test, finetune : ndarray of int
        Sorted window indices.

    Examples
    --------
    >>> import numpy as np
    >>> train, test, finetune = split_windows(np.zeros((10, 3)), test_size=0.3,
    ...                                       finetune_size=2, random_state=0)
    >>> len(train), len(test), len(finetune), set(finetune) <= set(train)
    (7, 3, 2, True)
    """
    n = len(X)
    if by not in ("window", "trial"):
        raise ValueError(f"by must be 'window' or 'trial'; got {by!r}.")
    if by == "trial":
        if groups is None:
            if not isinstance(X, SpikeWindows):
                raise ValueError("by='trial' needs groups (the trial of each window) unless X "
                                 "is SpikeWindows.")
            groups = X.trial
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have one trial label per window ({n},); got shape "
                             f"{groups.shape}.")
        units, unit_of_window = np.unique(groups, return_inverse=True)
        n_units = len(units)
    else:
        n_units, unit_of_window = n, np.arange(n)
    if n_units < 2:
        raise ValueError(f"need at least 2 {by}s to split, got {n_units}.")
    rng = np.random.default_rng(seed_sequence(random_state))
    n_test = _split_size(test_size, n_units, "test_size", 1)
    if n_test >= n_units:
        raise ValueError(f"test_size={test_size} leaves no {by} for training.")
    order = rng.permutation(n_units)
    test_units, train_units = order[:n_test], order[n_test:]
    n_finetune = _split_size(finetune_size, len(train_units), "finetune_size",
                             1 if finetune_size else 0)
    finetune_units = rng.permutation(train_units)[:n_finetune]

    def windows_of(selected):
        return np.flatnonzero(np.isin(unit_of_window, selected))

    return windows_of(train_units), windows_of(test_units), windows_of(finetune_units)
