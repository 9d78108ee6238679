"""Spike generation through a fitted estimator: true-past and closed-loop modes."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from sklearn.utils import check_random_state

from ..data import TokenLayout
from ..data.units import offsets_from_lengths
from ..model.generation import GeneratedTokens, generate_tokens
from ._base import window_progress

PAST_MODES = ("true", "generated")


def _generated_events(generated):
    """Flat (neuron, dt_token, offsets) of generated windows."""
    filled = np.arange(generated.ids.shape[1])[None, :] < generated.lengths[:, None]
    rows, cols = np.nonzero(filled)
    return (generated.ids[rows, cols], generated.dts[rows, cols],
            offsets_from_lengths(np.asarray(generated.lengths)))


def past_from_generated(history, *, stride_bins, prev_bins, layout, block_size_prev,
                        device=None):
    """Past-window blocks of the next windows, built from previously generated windows.

    For closed-loop generation (``past="generated"``): windows are generated in time order,
    and the past block of the next window is the tokenization of the model's own recent
    output, exactly as the tokenizer tokenizes real spikes (:meth:`TokenLayout.fill_block`):
    events in time order, neuron ascending within a bin, the latest ``block_size_prev - 2``
    kept, dt relative to the past-window start.

    Parameters
    ----------
    history : sequence of GeneratedTokens
        Generated windows, oldest first; row r of every entry is the same sequence (e.g. the
        same trial). Entry ``-j`` starts ``j * stride_bins`` bins before the next window.
    stride_bins : int
        Bins between consecutive window starts (at least the window length).
    prev_bins : int
        Length of the past window in bins; events outside it are dropped.
    layout : TokenLayout
        The model's vocabulary.
    block_size_prev : int
        Capacity of a past block.
    device : torch.device, optional

    Returns
    -------
    id_prev, dt_prev : LongTensor of shape (n_rows, Tp)
        ``Tp`` is the longest block in the batch (at most ``block_size_prev``).

    Examples
    --------
    >>> g = GeneratedTokens(np.array([[4, 1, -1]]), np.array([[3, 1, -1]]), np.array([2]))
    >>> id_prev, dt_prev = past_from_generated(
    ...     [g], stride_bins=5, prev_bins=5, layout=TokenLayout(6, 6), block_size_prev=10)
    >>> id_prev.tolist(), dt_prev.tolist()
    ([[6, 1, 4, 7]], [[0, 1, 3, 7]])
    """
    n_rows = len(history[-1].lengths)
    rows, offsets, neurons = [], [], []
    for j, window in enumerate(reversed(history), start=1):
        filled = np.arange(window.ids.shape[1])[None, :] < np.asarray(window.lengths)[:, None]
        r, col = np.nonzero(filled)
        offset = prev_bins - j * stride_bins + window.dts[r, col]
        inside = (offset >= 0) & (offset < prev_bins)
        rows.append(r[inside])
        offsets.append(offset[inside])
        neurons.append(window.ids[r, col][inside])
    rows, offsets, neurons = (np.concatenate(a).astype(np.int64) for a in (rows, offsets, neurons))
    order = np.lexsort((neurons, offsets, rows))  # by row, then time, then neuron
    ids, dt_tokens, kept, _ = layout.fill_block(
        neurons[order], offsets[order],
        offsets_from_lengths(np.bincount(rows, minlength=n_rows)), block_size_prev)
    width = int(kept.max()) + 2 if n_rows else 2
    return (torch.as_tensor(ids[:, :width].astype(np.int64), device=device),
            torch.as_tensor(dt_tokens[:, :width].astype(np.int64), device=device))


def _closed_loop_steps(X):
    """Windows grouped into time steps: step k holds the k-th window of every trial.

    Returns ``steps`` (list of index arrays into X, rows aligned by trial) and the stride in
    bins. Windows of a trial must be contiguous (stride == window).
    """
    trials = np.unique(X.trial)
    per_trial = [np.flatnonzero(X.trial == t) for t in trials]
    per_trial = [idx[np.argsort(X.window_end[idx], kind="stable")] for idx in per_trial]
    for idx in per_trial:
        gaps = np.round(np.diff(X.window_end[idx]) / X.dt).astype(int)
        if np.any(gaps != X.n_bins):
            raise ValueError("past='generated' needs back-to-back windows in every trial "
                             "(stride equal to the window); these windows overlap or skip.")
    n_steps = max(len(idx) for idx in per_trial)
    steps = []
    for k in range(n_steps):
        steps.append(np.array([idx[k] if k < len(idx) else -1 for idx in per_trial]))
    return steps


def sample_windows(est, X, *, past, sampling, random_state, batch_size):
    """Generate the current-window spikes of every window of ``X`` with ``est.model_``.

    Returns a SpikeWindows like ``X`` (same windows, past events, frames and behaviour, all
    copied) whose current-window events are the generated ones.
    """
    if past not in PAST_MODES:
        raise ValueError(f"past must be one of {PAST_MODES}; got {past!r}.")
    device = est._model_to_inference_device()
    model = est.model_
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    generator = torch.Generator(device=device).manual_seed(seed)
    store = est.input_encoder_.store(X, device)
    max_new = model.config.block_size - 1
    kwargs = dict(max_new_tokens=max_new, generator=generator, dt_limit=X.n_bins,
                  batch_size=batch_size, **sampling)

    progress = window_progress(f"{type(est).__name__}.sample", len(X)) if est.verbose else None

    def run(rows, context_override=None):
        batch = store.batch(rows, targets=False)  # the context of the windows to generate
        if context_override is not None:
            batch.update(context_override)
        with est._autocast(device):
            out = generate_tokens(model, batch, **kwargs)
        if progress is not None:
            progress.update(len(rows))
        return out

    with progress or contextlib.nullcontext():
        if past == "true":
            chunk = 4096
            parts = [run(np.arange(i, min(i + chunk, len(X)))) for i in range(0, len(X), chunk)]
            generated = GeneratedTokens(*(np.concatenate(a) for a in zip(*parts)))
        else:
            generated = _closed_loop(est, X, run, max_new)
    neuron, dt_token, offsets = _generated_events(generated)
    _, unit_range = est.input_encoder_.global_windows(X)
    if unit_range is not None:  # ids of the unit vocabulary -> the session's own
        neuron = neuron - np.repeat(unit_range[:, 0], np.diff(offsets))
    return X.with_events(neuron, dt_token, offsets)


def _closed_loop(est, X, run, max_new):
    """Generate trial by trial in time order, each window's past being the model's own
    previous output (the first window of a trial keeps its recorded past)."""
    config = est.model_.config
    steps = _closed_loop_steps(X)
    ids = np.full((len(X), max_new), -1, dtype=np.int64)
    dts = np.full((len(X), max_new), -1, dtype=np.int64)
    lengths = np.zeros(len(X), dtype=np.int64)
    history = []
    n_back = int(np.ceil(X.n_prev_bins / X.n_bins)) if X.n_prev_bins else 0
    for k, rows in enumerate(steps):
        active = rows >= 0
        override = None
        if k > 0 and n_back:
            id_prev, dt_prev = past_from_generated(
                history[-n_back:], stride_bins=X.n_bins, prev_bins=X.n_prev_bins,
                layout=TokenLayout(config.n_neurons, config.n_dt),
                block_size_prev=config.block_size_prev, device=est.model_.head_id.weight.device)
            override = {"id_prev": id_prev[active], "dt_prev": dt_prev[active]}
        out = run(rows[active], override)
        ids[rows[active]], dts[rows[active]], lengths[rows[active]] = out
        # the history is aligned by trial; a trial without this step contributes no events
        safe = np.where(active, rows, 0)
        history.append(GeneratedTokens(ids[safe], dts[safe], np.where(active, lengths[safe], 0)))
    return GeneratedTokens(ids, dts, lengths)
