"""Seeding of the dataset functions: a local generator, never the global RNG."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_positive", "seed_sequence"]


def seed_sequence(random_state):
    """A SeedSequence from an int, None, Generator or RandomState (never the global RNG).

    Examples
    --------
    >>> seed_sequence(0).entropy
    0
    """
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, numbers.Integral):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int; got {random_state}.")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**31)))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or RandomState; "
                     f"got {random_state!r}.")


def check_positive(value, name, integer=False):
    """``value`` as a positive int (``integer``) or float; a ValueError naming ``name`` else."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not np.isfinite(value) \
            or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}; got {value!r}.")
    return int(value) if integer else float(value)
