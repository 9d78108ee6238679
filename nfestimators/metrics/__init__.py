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

from ._decoding import pearson_r, pearson_r_scorer, retrieval_accuracy
from ._generation import psth, psth_correlation, psth_from_events, window_f1
from ._likelihood import bits_per_spike, bits_per_spike_from_log_likelihood, poisson_log_likelihood
from ._scorers import make_generation_scorer, psth_correlation_scorer, window_f1_scorer

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
