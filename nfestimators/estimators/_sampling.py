"""Spike generation through a fitted estimator: true-past and closed-loop modes."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state

from ..data.windows import _offsets_from_lengths
from ..generation import GeneratedTokens, generate_tokens, past_from_generated

PAST_MODES = ("true", "generated")


def _events(generated):
    """Flat (neuron, bin, offsets) of generated windows."""
    filled = np.arange(generated.ids.shape[1])[None, :] < generated.lengths[:, None]
    rows, cols = np.nonzero(filled)
    return (generated.ids[rows, cols], generated.dts[rows, cols],
            _offsets_from_lengths(np.asarray(generated.lengths)))


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

    Returns a SpikeWindows like ``X`` (same windows, past events, frames and behaviour)
    whose current-window events are the generated ones.
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

    def run(rows, context_override=None):
        batch = store.batch(rows)
        if context_override is not None:
            batch.update(context_override)
        with est._autocast(device):
            return generate_tokens(model, batch, **kwargs)

    if past == "true":
        chunk = 4096
        parts = [run(np.arange(i, min(i + chunk, len(X)))) for i in range(0, len(X), chunk)]
        generated = GeneratedTokens(*(np.concatenate(a) for a in zip(*parts)))
    else:
        generated = _closed_loop(est, X, run, max_new)
    neuron, bins, offsets = _events(generated)
    return X._replace(neuron=neuron, bin=bins, offsets=offsets)


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
                n_neurons=config.n_neurons, n_dt=config.n_dt,
                block_size_prev=config.block_size_prev, device=est.model_.head_id.weight.device)
            override = {"id_prev": id_prev[active], "dt_prev": dt_prev[active]}
        out = run(rows[active], override)
        ids[rows[active]], dts[rows[active]], lengths[rows[active]] = out
        # the history is aligned by trial; a trial without this step contributes no events
        safe = np.where(active, rows, 0)
        history.append(GeneratedTokens(ids[safe], dts[safe], np.where(active, lengths[safe], 0)))
    return GeneratedTokens(ids, dts, lengths)
