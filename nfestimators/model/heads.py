"""What the heads of :class:`~nfestimators.model.Neuroformer` read and may say.

The next-token heads: :class:`IdGivenDt` conditions the stream on the next token's dt before
the id head, and the token layout's grammar (time bins never go back, neuron ids only go up
inside a bin, EOS ends a window) as masks of impossible continuations. The supervised heads'
count features: the code of a window's spike count and the per-neuron binned counts.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class IdGivenDt(nn.Module):
    """Condition the stream on the next token's dt before the id head: ``z + MLP(LN(z + e(dt)))``
    (a residual MLP, so that the id can depend on how the next bin relates to the current one).
    """

    def __init__(self, n_embd, dt_vocab_size):
        super().__init__()
        self.dt_emb = nn.Embedding(dt_vocab_size, n_embd)
        self.mlp = nn.Sequential(nn.LayerNorm(n_embd), nn.Linear(n_embd, 2 * n_embd), nn.GELU(),
                                 nn.Linear(2 * n_embd, n_embd))

    def forward(self, z, next_dt):
        return z + self.mlp(z + self.dt_emb(next_dt))  # (..., E)


def impossible_dts(dts, config):
    """Mask (..., K+3) of the dt tokens that cannot follow the current dts (...): SOS and PAD,
    and after a value dt every earlier value (tokens are in time order)."""
    c = config
    vocab = torch.arange(c.dt_vocab_size, device=dts.device)  # (K+3,)
    after_value = (dts < c.n_dt).unsqueeze(-1)  # (..., 1)
    return (vocab == c.sos_dt) | (vocab == c.pad_dt) | (
        (vocab < c.n_dt) & after_value & (vocab < dts.unsqueeze(-1)))


def impossible_ids(ids, dts, next_dt, config):
    """Mask (..., N+3) of the id tokens that cannot follow the current tokens ``ids``, ``dts``
    when the next dt is ``next_dt`` (all (...)): after an EOS dt every id but EOS; after a value
    dt every special id, and in the current token's bin every neuron below the current one
    (neuron ascending inside a bin). Positions whose next dt is PAD (no target) are left alone."""
    c = config
    vocab = torch.arange(c.id_vocab_size, device=ids.device)  # (N+3,)
    ends = (next_dt == c.eos_dt).unsqueeze(-1)  # (..., 1)
    spike = (next_dt < c.n_dt).unsqueeze(-1)
    same_bin = ((next_dt == dts) & (ids < c.n_neurons) & (dts < c.n_dt)).unsqueeze(-1)
    return (ends & (vocab != c.eos_id)) | (spike & (
        (vocab >= c.n_neurons) | (same_bin & (vocab < ids.unsqueeze(-1)))))


def other_sessions_units(unit_range, ndim, config):
    """Mask (B, 1.., N+3) of the neuron ids outside every row's session, from ``unit_range``
    (B, 2): row b's session owns the ids ``unit_range[b, 0] <= id < unit_range[b, 1]`` of the
    concatenated unit vocabulary; the special ids are never masked. ``ndim`` is the number of
    dimensions of the logits it masks (2 or 3)."""
    vocab = torch.arange(config.id_vocab_size, device=unit_range.device)  # (N+3,)
    shape = (unit_range.shape[0],) + (1,) * (ndim - 1)
    lo, hi = unit_range[:, 0].reshape(shape), unit_range[:, 1].reshape(shape)
    return (vocab < config.n_neurons) & ((vocab < lo) | (vocab >= hi))


def count_code(n_spikes, knots):
    """Piecewise-linear ("hat") code of ``log(1 + n_spikes)`` over the increasing ``knots``.

    Parameters
    ----------
    n_spikes : Tensor of shape (B,)
        Spike counts (float).
    knots : Tensor of shape (K,)

    Returns
    -------
    Tensor of shape (B, K)
        Weight of every knot: the two knots around ``log(1 + n)`` share 1 in proportion to its
        closeness, the others get 0; below the first (above the last) knot, the first (last)
        gets 1. Every row sums to 1.
    """
    u = torch.log1p(n_spikes.float()).clamp(knots[0], knots[-1]).unsqueeze(1)  # (B, 1)
    gap = knots[1:] - knots[:-1]  # (K - 1,)
    edge = torch.full_like(u, float("inf"))  # the end knots have one side only
    rise = torch.cat([edge, (u - knots[:-1]) / gap], dim=1)  # (B, K)
    fall = torch.cat([(knots[1:] - u) / gap, edge], dim=1)  # (B, K)
    return torch.minimum(rise, fall).clamp(0.0, 1.0)


def binned_counts(ids, dts, spikes, config):
    """``log(1 + count)`` of every neuron in ``config.count_bins`` equal time bins of the window,
    (B, n_neurons * count_bins), from the current tokens (B, T) and their spike mask (B, T)."""
    c = config
    group = dts.clamp(0, c.window_bins - 1) * c.count_bins // c.window_bins  # (B, T)
    index = torch.where(spikes, ids * c.count_bins + group, 0)
    counts = torch.zeros(ids.shape[0], c.n_neurons * c.count_bins, device=ids.device)
    counts.scatter_add_(1, index, spikes.float())
    return torch.log1p(counts)
