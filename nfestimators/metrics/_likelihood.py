"""Poisson log-likelihood and bits per spike (the Neural Latents Benchmark co-bps)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy

from nfestimators.data import SpikeWindows
from nfestimators.data.coerce import dense_counts

__all__ = ["bits_per_spike", "bits_per_spike_from_log_likelihood", "poisson_log_likelihood"]


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
