"""What the heads of :class:`~nfestimators.model.Neuroformer` read and may say.

The next-token heads: :class:`IdGivenDt` conditions the stream on the next token's dt before
the id head, and the token layout's grammar (time bins never go back, neuron ids only go up
inside a bin, EOS ends a window) as masks of impossible continuations, and the rate prior:
the next-token log-probabilities of a per-neuron Poisson model, which the heads' logits are
added to. The supervised heads' count features: the code of a window's spike count, the
pairwise coincidences, the per-neuron counts and binned counts.
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


def run_positions(ids, dts, config):
    """Position (..., T) of every token in its run of equal spike tokens: 1 for a neuron's
    first spike in a bin, k for its k-th (spikes of one neuron in one bin are adjacent in
    token order); 1 for the special tokens. ``ids``, ``dts``: (..., T)."""
    same = torch.zeros_like(ids, dtype=torch.bool)
    same[..., 1:] = ((ids[..., 1:] == ids[..., :-1]) & (dts[..., 1:] == dts[..., :-1])
                     & (ids[..., 1:] < config.n_neurons))
    index = torch.arange(ids.shape[-1], device=ids.device).expand_as(ids)
    run_start = torch.cummax(torch.where(same, 0, index), dim=-1).values
    return index - run_start + 1


AGAIN_EPS = 1e-7  # the least probability of another spike of a neuron in its bin, and of none


class RatePrior:
    """Next-token log-probabilities of a homogeneous Poisson model of every neuron, in the
    token layout: what the heads' logits are added to (``config.rate_prior``), so that a
    model whose heads say nothing is exactly the per-neuron Poisson model at ``rates``, and
    the network learns only how the spikes depart from it.

    Parameters
    ----------
    rates : Tensor of shape (N,)
        Expected spikes per bin of every neuron of the unit vocabulary (``> 0``).
    ids, dts : LongTensor of shape (...)
        The current tokens.
    repeat : LongTensor of shape (...)
        :func:`run_positions` of the current tokens.
    unit_range : LongTensor of shape (B, 2) or None
        Each row's session's ids ``[lo, hi)`` (multi-session models); None: all neurons.
    config : NeuroformerConfig
        ``window_bins`` is the number of bins of the current window.

    Notes
    -----
    After the j-th spike of neuron n in bin b, a Poisson model of rates ``l`` puts the next
    token at: another spike of n in b with probability ``r = P(c >= j + 1 | c >= j)``; else
    the first neuron m > n of the session to fire in b (``P = exp(-sum l(n+1 .. m-1)) (1 -
    exp(-l_m))``), or the first spike of a later bin d (no spike in the bins between), or the
    end of the window. SOS is "before bin 0". The dt logits are the log-probabilities of the
    next token's bin; the id logits, given that bin, are unnormalised log-probabilities (the
    softmax normalises them), so the model's ``P(dt) P(id | dt)`` is exactly the Poisson
    model's. :meth:`Neuroformer.dt_logits` and :meth:`Neuroformer.id_logits` add them to
    the heads' logits before the grammar's masks.
    """

    def __init__(self, rates, ids, dts, repeat, unit_range, config):
        c = config
        self.config = c
        rates = rates.double()
        self.cum = torch.cat([rates.new_zeros(1), rates.cumsum(0)])  # (N+1,)
        self.log_fire = torch.log(-torch.expm1(-rates))  # (N,) log P(a neuron fires in a bin)
        if unit_range is None:
            lo = torch.zeros_like(ids)
            hi = torch.full_like(ids, c.n_neurons)
        else:
            shape = (unit_range.shape[0],) + (1,) * (ids.ndim - 1)
            lo = unit_range[:, 0].reshape(shape).expand_as(ids)
            hi = unit_range[:, 1].reshape(shape).expand_as(ids)
        spike = ids < c.n_neurons
        neuron = torch.where(spike, ids, 0)
        rate = rates[neuron]
        j = repeat.clamp(min=1).double()
        # P(c >= j + 1 | c >= j) of the current neuron; 0 after SOS (no current neuron)
        upper, lower = torch.special.gammainc(j + 1, rate), torch.special.gammainc(j, rate)
        again = torch.where(lower > 0, upper / lower.clamp(min=1e-300), rate / (j + 1))
        # kept inside (0, 1): windows cut by the token budget are not Poisson, and no
        # continuation may get probability 0 (an infinite loss)
        self.again = torch.where(spike, again.clamp(AGAIN_EPS, 1 - AGAIN_EPS), 0.0)
        self.spike = spike
        # rate summed over the neurons up to the current one, and over the session's
        # neurons after it (0 after SOS)
        self.up_to_current = self.cum[(neuron + 1).clamp(max=c.n_neurons)]
        self.after = torch.where(spike, self.cum[hi] - self.up_to_current, 0.0)
        self.total = self.cum[hi] - self.cum[lo]  # the session's rate per bin
        self.bin = torch.where(spike, dts, -1)  # SOS is before bin 0
        self.lo, self.neuron = lo, neuron

    def dt_logits(self):
        """(..., K+3): log P(next token's dt); -inf where the Poisson model never goes."""
        c = self.config
        d = torch.arange(c.dt_vocab_size, device=self.bin.device).double()  # (K+3,)
        b = self.bin.unsqueeze(-1).double()
        stay_no_more = torch.log1p(-self.again).unsqueeze(-1)  # no further spike of neuron n
        after, total = self.after.unsqueeze(-1), self.total.unsqueeze(-1)
        same_bin = torch.log(self.again.unsqueeze(-1) + (1 - self.again.unsqueeze(-1))
                             * -torch.expm1(-after))
        later = stay_no_more - after - total * (d - b - 1) + torch.log(-torch.expm1(-total))
        end = stay_no_more - after - total * (c.window_bins - 1 - b)
        logits = torch.where(d == b, same_bin, torch.where(d > b, later, float("-inf")))
        logits = torch.where(d < c.window_bins, logits, float("-inf"))
        return torch.where(d == c.eos_dt, end, logits).float()

    def id_logits(self, next_dt):
        """(..., N+3): log P(next token's id | its dt ``next_dt`` (...)) up to a constant;
        0 for the special ids and where the next dt is not a value (the masks decide)."""
        c = self.config
        m = torch.arange(c.id_vocab_size, device=next_dt.device)  # (N+3,)
        neuron = m.clamp(max=c.n_neurons - 1)
        # log P(m is the first neuron to fire from neuron 0 on), up to exp(cum[lo]): (N+3,)
        first_to_fire = (self.log_fire[neuron] - self.cum[neuron]).float()
        later_bin = first_to_fire + self.cum[self.lo].float().unsqueeze(-1)
        in_bin_offset = (torch.log1p(-self.again) + self.up_to_current).float()
        in_bin = torch.where(m == self.neuron.unsqueeze(-1),
                             torch.log(self.again).float().unsqueeze(-1),
                             first_to_fire + in_bin_offset.unsqueeze(-1))
        same = (self.spike & (next_dt == self.bin)).unsqueeze(-1)
        logits = torch.where(same, in_bin, later_bin)
        value = ((next_dt < c.n_dt).unsqueeze(-1)) & (m < c.n_neurons)
        return torch.where(value, logits, 0.0)


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


def pair_coincidences(ids, dts, spikes, config, unit_slot):
    """``log(1 + c)`` of every pair of ``config.pair_units``, c the number of their spike
    pairs in a same time bin (dt value) of the window, (B, P) in the order of
    ``triu_indices(M, 1)``, from the current tokens (B, T) and their spike mask (B, T);
    ``unit_slot`` (n_neurons,) maps a neuron to its place in ``pair_units``, M for the others.

    One batched matrix product of the pair units' spike counts per bin, S (B, M, bins):
    c = (S S^T)[i, j]; no loop over pairs or windows.

    Examples
    --------
    >>> from nfestimators.model import NeuroformerConfig
    >>> c = NeuroformerConfig(n_neurons=3, n_dt=4, readout="mean+binned+pairs", count_bins=1,
    ...                       window_bins=4, count_knots=(0.0, 1.0), pair_units=(0, 1, 2))
    >>> ids, dts = torch.tensor([[0, 1, 2, 0]]), torch.tensor([[0, 0, 1, 1]])
    >>> slot = torch.tensor([0, 1, 2])
    >>> pair_coincidences(ids, dts, torch.ones_like(ids, dtype=torch.bool), c, slot).expm1()
    tensor([[1., 1., 0.]])
    """
    c = config
    m, n_bins = len(c.pair_units), c.window_bins
    slot = torch.where(spikes, unit_slot[ids.clamp(0, c.n_neurons - 1)], m)  # (B, T)
    index = slot * n_bins + dts.clamp(0, n_bins - 1)
    counts = torch.zeros(ids.shape[0], (m + 1) * n_bins, device=ids.device)
    counts.scatter_add_(1, index, spikes.float())
    per_bin = counts.view(-1, m + 1, n_bins)[:, :m]  # (B, M, bins); slot M: the others
    pairs = torch.triu_indices(m, m, 1, device=ids.device)
    return torch.log1p((per_bin @ per_bin.transpose(1, 2))[:, pairs[0], pairs[1]])


def transformed_counts(counts, transform):
    """``log(1 + counts)`` (``transform="log"``) or ``counts`` (``"raw"``): the
    ``count_transform`` of the neuron counts and the binned counts."""
    return torch.log1p(counts) if transform == "log" else counts


def neuron_counts(ids, spikes, n_neurons, transform="log"):
    """Every neuron's count over the window, ``log(1 + count)`` or raw (``transform``),
    (B, n_neurons), from the current tokens (B, T) and their spike mask (B, T).

    Examples
    --------
    >>> ids = torch.tensor([[0, 2, 2, 5]])
    >>> neuron_counts(ids, torch.tensor([[True, True, True, False]]), 3, "raw")
    tensor([[1., 0., 2.]])
    """
    counts = torch.zeros(ids.shape[0], n_neurons, device=ids.device)
    counts.scatter_add_(1, torch.where(spikes, ids, 0), spikes.float())
    return transformed_counts(counts, transform)


def binned_counts(ids, dts, spikes, config):
    """Every neuron's count in ``config.count_bins`` equal time bins of the window (through
    ``config.count_transform``), (B, n_neurons * count_bins), from the current tokens (B, T)
    and their spike mask (B, T)."""
    c = config
    group = dts.clamp(0, c.window_bins - 1) * c.count_bins // c.window_bins  # (B, T)
    index = torch.where(spikes, ids * c.count_bins + group, 0)
    counts = torch.zeros(ids.shape[0], c.n_neurons * c.count_bins, device=ids.device)
    counts.scatter_add_(1, index, spikes.float())
    return transformed_counts(counts, c.count_transform)
