"""Autoregressive spike generation with a KV cache (spec 6.1-6.2).

A window is generated token by token from its SOS: at every step the model gives
next-id and next-dt logits at the last position; an id and a dt are drawn; EOS ends the
window. Many windows run as one batch: the past, frames and behaviour are encoded once,
the causal self-attention layers keep K/V caches, and windows that reached EOS are
dropped from the active batch.

Randomness. All uniform draws are made up front, one per (window, step, token type),
from the caller's ``torch.Generator`` (never the global RNG), and a token is drawn by
inverting the CDF of its filtered distribution with its own uniform. So a window's tokens
depend only on its context, the model and its own draws: the batched cached sampler gives
the same tokens as an uncached per-window reference (``tests/generation_reference.py``),
whatever the batch composition.

The dt of a generated event is not forced to be non-decreasing within a window: a
well-trained model emits them in order (the tokenizer orders events by time), and forcing
it would hide model errors that the evaluation should see. The closed-loop sampler
re-tokenizes events in time order anyway.

This module is torch only: the token ids it needs (SOS, EOS, PAD, the number of dt values)
come from the model's configuration, which the estimators build from the data layer's
:class:`~nfestimators.data.TokenLayout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from .state import eval_mode

CONTEXT_KEYS = ("id_prev", "dt_prev", "frames", "behavior", "unit_range")


class GeneratedTokens(NamedTuple):
    """Generated events of a batch of windows.

    Attributes
    ----------
    ids : ndarray of shape (n_windows, max_new_tokens), int64
        Neuron index of each event, -1 after the window's length.
    dts : ndarray of shape (n_windows, max_new_tokens), int64
        dt index (bin offset from the window start) of each event, -1 after the length.
    lengths : ndarray of shape (n_windows,), int64
        Number of events per window (EOS excluded).
    """

    ids: np.ndarray
    dts: np.ndarray
    lengths: np.ndarray


@dataclass(frozen=True)
class _Sampling:
    """Resolved sampling settings for one token type (id or dt)."""

    temperature: float
    top_k: int | None
    top_p: float | None


def filter_logits(logits, top_k=None, top_p=None):
    """Top-k then top-p (nucleus) filtering; removed logits become ``-inf``.

    Parameters
    ----------
    logits : Tensor of shape (B, V)
    top_k : int or None
        Keep the ``top_k`` largest logits (ties with the k-th kept); None or 0: no filter.
    top_p : float or None
        Keep the smallest set of most likely tokens whose probability reaches ``top_p``
        (the most likely token is always kept); None or 1.0: no filter.

    Returns
    -------
    Tensor of shape (B, V)

    Examples
    --------
    >>> import torch
    >>> filter_logits(torch.log(torch.tensor([[0.5, 0.3, 0.2]])), top_p=0.6).isfinite()
    tensor([[ True,  True, False]])
    """
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits.double(), dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the better tokens
        remove_sorted = mass_before >= top_p
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


def _draw(logits, sampling, greedy, uniform):
    """Choose one token per row of ``logits`` (B, V); ``uniform`` (B,) in [0, 1)."""
    logits = filter_logits(logits, sampling.top_k, sampling.top_p)
    if greedy or sampling.temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.double() / sampling.temperature, dim=-1)  # (B, V)
    cdf = probs.cumsum(dim=-1)
    target = (uniform.to(cdf) * cdf[:, -1]).unsqueeze(-1)  # (B, 1)
    choice = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    # Guard against rounding at the top end: never go past the last allowed token.
    last_allowed = probs.shape[-1] - 1 - (probs > 0).flip(-1).int().argmax(dim=-1)
    return torch.minimum(choice, last_allowed)


def _next_tokens(model, z, ids, dts, repeat, uniform, id_sampling, dt_sampling, greedy,
                 dt_limit, unit_range=None):
    """Next id and dt for every row of the last-position final stream ``z`` (B, E), after
    the current tokens ``ids``, ``dts`` (B,), the ``repeat``-th (B,) of their runs of equal
    spikes (:func:`~nfestimators.model.heads.run_positions`; read by the rate prior).

    The dt is drawn first, then the id given it (:meth:`Neuroformer.token_logits`): with
    ``id_head="given_dt"`` the model's logits already exclude what cannot follow (an EOS dt
    is followed by the EOS id, which ends the window); with the paper's independent heads
    the specials are excluded here and the window ends when the id drawn is EOS. With
    ``unit_range`` (B, 2) (multi-session models) only the row's session's neurons are drawn.
    """
    c = model.config
    prior = model.rate_prior(ids, dts, repeat, unit_range)
    logits_dt = model.dt_logits(z, dts, prior).float().clone()
    logits_dt[:, dt_limit:c.n_dt] = float("-inf")  # dt values beyond dt_limit
    if c.id_head == "independent":
        logits_dt[:, c.n_dt:] = float("-inf")  # value tokens only
    next_dt = _draw(logits_dt, dt_sampling, greedy, uniform[:, 1])
    logits_id = model.id_logits(z, ids, dts, next_dt, unit_range, prior).float().clone()
    if c.id_head == "independent":
        logits_id[:, [c.sos_id, c.pad_id]] = float("-inf")  # spikes or EOS only
    next_id = _draw(logits_id, id_sampling, greedy, uniform[:, 0])
    return next_id, next_dt


def _resolve(model, max_new_tokens, temperature, temperature_dt, top_k, top_k_dt, top_p, top_p_dt, dt_limit):
    c = model.config
    if max_new_tokens is None:
        max_new_tokens = c.block_size - 1
    if not 1 <= max_new_tokens <= c.block_size - 1:
        raise ValueError(f"max_new_tokens must be in [1, block_size - 1 = {c.block_size - 1}], got {max_new_tokens}")
    if dt_limit is None:
        dt_limit = c.n_dt
    if not 1 <= dt_limit <= c.n_dt:
        raise ValueError(f"dt_limit must be in [1, n_dt = {c.n_dt}], got {dt_limit}")
    if temperature < 0 or (temperature_dt is not None and temperature_dt < 0):
        raise ValueError("temperatures must be >= 0")
    id_sampling = _Sampling(temperature, top_k, top_p)
    dt_sampling = _Sampling(
        temperature if temperature_dt is None else temperature_dt,
        top_k if top_k_dt is None else top_k_dt,
        top_p if top_p_dt is None else top_p_dt,
    )
    return max_new_tokens, id_sampling, dt_sampling, dt_limit


def _context_batch(context_batch):
    """Context tensors of the batch and the number of windows."""
    tensors = {k: torch.as_tensor(v) for k, v in context_batch.items() if k in CONTEXT_KEYS}
    sizes = {len(v) for v in context_batch.values() if hasattr(v, "__len__")}
    if len(sizes) != 1:
        raise ValueError(f"context_batch must hold tensors with one common first dimension, got sizes {sizes}")
    return tensors, sizes.pop()


def _draw_uniforms(n_windows, max_new_tokens, greedy, generator):
    """One uniform per (window, step, token type), shape (n_windows, max_new_tokens, 2)."""
    if greedy:
        return torch.zeros(n_windows, max_new_tokens, 2, dtype=torch.float64)
    if generator is None:
        generator = torch.Generator()
        generator.seed()
    return torch.rand(
        n_windows, max_new_tokens, 2, generator=generator, dtype=torch.float64, device=generator.device
    )


def _generate_chunk(model, batch, uniforms, max_new_tokens, id_sampling, dt_sampling, greedy, dt_limit):
    """Generate the windows of one batch; returns device tensors (ids, dts, lengths)."""
    c = model.config
    device = uniforms.device
    B = uniforms.shape[0]
    context = model.encode_context(batch)
    state = model.start_decoding(context)

    out_id = torch.full((B, max_new_tokens), -1, dtype=torch.long, device=device)
    out_dt = torch.full((B, max_new_tokens), -1, dtype=torch.long, device=device)
    lengths = torch.full((B,), max_new_tokens, dtype=torch.long, device=device)
    active = torch.arange(B, device=device)  # window index of every row still generating
    seq_id = torch.full((B, 1), c.sos_id, dtype=torch.long, device=device)  # (b, t)
    seq_dt = torch.zeros((B, 1), dtype=torch.long, device=device)
    unit_range = batch.get("unit_range")  # (B, 2): each window's session's neurons, or None
    # the last token's place in its run of equal spikes (run_positions), for the rate prior
    repeat = torch.ones((B,), dtype=torch.long, device=device)

    for step in range(max_new_tokens):
        z = model.decode(seq_id[:, -1:], seq_dt[:, -1:], state=state)[:, -1]  # (b, E)
        next_id, next_dt = _next_tokens(
            model, z, seq_id[:, -1], seq_dt[:, -1], repeat,
            uniforms[active, step], id_sampling, dt_sampling, greedy, dt_limit,
            None if unit_range is None else unit_range[active],
        )
        ended = next_id == c.eos_id
        out_id[active, step] = torch.where(ended, -1, next_id)
        out_dt[active, step] = torch.where(ended, -1, next_dt)
        lengths[active[ended]] = step
        if step == max_new_tokens - 1:
            break
        keep = ~ended
        if not keep.all():
            if not keep.any():
                break
            rows = keep.nonzero().squeeze(1)
            active, seq_id, seq_dt, next_id, next_dt, repeat = (
                t[rows] for t in (active, seq_id, seq_dt, next_id, next_dt, repeat))
            state = state.select(rows)
        again = (next_id == seq_id[:, -1]) & (next_dt == seq_dt[:, -1]) & (next_id < c.n_neurons)
        repeat = torch.where(again, repeat + 1, 1)
        seq_id = torch.cat([seq_id, next_id[:, None]], dim=1)
        seq_dt = torch.cat([seq_dt, next_dt[:, None]], dim=1)
    return out_id, out_dt, lengths


@torch.no_grad()
def generate_tokens(
    model,
    context_batch,
    *,
    max_new_tokens=None,
    temperature=1.0,
    temperature_dt=None,
    top_k=None,
    top_k_dt=None,
    top_p=None,
    top_p_dt=None,
    greedy=False,
    generator=None,
    batch_size=None,
    dt_limit=None,
):
    """Generate the spike tokens of many windows at once.

    Parameters
    ----------
    model : Neuroformer
    context_batch : dict
        Batch dict (``docs/design.md``) of the windows to generate; only the context keys
        ``id_prev``, ``dt_prev``, ``frames``, ``behavior`` and ``unit_range`` (multi-session
        models) are used (current tokens and targets are ignored). Its first dimension is
        the number of windows.
    max_new_tokens : int, optional
        Maximum number of events per window; default and maximum ``block_size - 1`` (the
        capacity of a current block). A window that reaches it without EOS is cut there.
    temperature, temperature_dt : float
        Softmax temperatures of the id and dt draws; ``temperature_dt=None`` means the
        same as ``temperature``; 0 means greedy for that token type.
    top_k, top_k_dt : int, optional
        Top-k filtering of id and dt logits (None or 0: off; ``*_dt=None``: same as id).
    top_p, top_p_dt : float, optional
        Nucleus filtering of id and dt logits (None or 1.0: off; ``*_dt=None``: same as id).
        Filters are applied to the model's logits before the temperature, as the original.
    greedy : bool
        Take the most likely token instead of sampling.
    generator : torch.Generator, optional
        Source of all random draws; a fresh, nondeterministically seeded generator when
        None. The global RNG is never used.
    batch_size : int, optional
        Number of windows generated together (all when None). Does not change the tokens.
    dt_limit : int, optional
        Only dt tokens ``0 .. dt_limit - 1`` are drawn (default: all ``n_dt`` values); use
        the current window's number of bins when the past window is longer.

    Returns
    -------
    GeneratedTokens
        ``ids``, ``dts`` (n_windows, max_new_tokens) with -1 after each window's length,
        and ``lengths`` (n_windows,).
    """
    max_new_tokens, id_sampling, dt_sampling, dt_limit = _resolve(
        model, max_new_tokens, temperature, temperature_dt, top_k, top_k_dt, top_p, top_p_dt, dt_limit
    )
    batch, n_windows = _context_batch(context_batch)
    if n_windows == 0:
        empty = np.zeros((0, max_new_tokens), dtype=np.int64)
        return GeneratedTokens(empty, empty.copy(), np.zeros(0, dtype=np.int64))
    device = next(model.parameters()).device
    uniforms = _draw_uniforms(n_windows, max_new_tokens, greedy, generator).to(device)
    batch_size = batch_size or n_windows
    outputs = []
    with eval_mode(model):
        for start in range(0, n_windows, batch_size):
            rows = slice(start, start + batch_size)
            chunk = {k: v[rows].to(device) for k, v in batch.items()}
            outputs.append(
                _generate_chunk(
                    model, chunk, uniforms[rows], max_new_tokens, id_sampling, dt_sampling, greedy, dt_limit
                )
            )
    ids, dts, lengths = (torch.cat(parts).cpu().numpy() for parts in zip(*outputs))
    return GeneratedTokens(ids, dts, lengths)
