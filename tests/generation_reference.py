"""Uncached reference sampler for tests and benchmarks (not part of the library).

One full decode of the sequence so far per token, one window at a time (the original's inference loop,
spec 6.1), with the same up-front draws as :func:`nfestimators.model.generation.generate_tokens`,
so both must give the same tokens.
"""

import numpy as np
import torch

from nfestimators.model import generation
from nfestimators.model.generation import GeneratedTokens
from nfestimators.model.heads import run_positions
from nfestimators.model.state import eval_mode


@torch.no_grad()
def generate_tokens_reference(model, context_batch, *, max_new_tokens=None, temperature=1.0,
                              temperature_dt=None, top_k=None, top_k_dt=None, top_p=None,
                              top_p_dt=None, greedy=False, generator=None, dt_limit=None):
    """Same parameters, draws and result as ``generate_tokens``, without a cache."""
    max_new_tokens, id_sampling, dt_sampling, dt_limit = generation._resolve(
        model, max_new_tokens, temperature, temperature_dt, top_k, top_k_dt, top_p, top_p_dt,
        dt_limit)
    c = model.config
    batch, n_windows = generation._context_batch(context_batch)
    device = next(model.parameters()).device
    uniforms = generation._draw_uniforms(n_windows, max_new_tokens, greedy, generator).to(device)
    ids = np.full((n_windows, max_new_tokens), -1, dtype=np.int64)
    dts = np.full((n_windows, max_new_tokens), -1, dtype=np.int64)
    lengths = np.full(n_windows, max_new_tokens, dtype=np.int64)
    with eval_mode(model):
        for w in range(n_windows):
            window = {k: v[w : w + 1].to(device) for k, v in batch.items()}
            seq_id, seq_dt = [c.sos_id], [0]
            for step in range(max_new_tokens):
                window["id"] = torch.tensor([seq_id], device=device)
                window["dt"] = torch.tensor([seq_dt], device=device)
                z = model.decode(window["id"], window["dt"], context=model.encode_context(window))
                repeat = run_positions(window["id"], window["dt"], c)[:, -1]
                next_id, next_dt = generation._next_tokens(
                    model, z[:, -1], window["id"][:, -1], window["dt"][:, -1], repeat,
                    uniforms[w : w + 1, step], id_sampling, dt_sampling, greedy, dt_limit)
                if next_id.item() == c.eos_id:
                    lengths[w] = step
                    break
                ids[w, step], dts[w, step] = next_id.item(), next_dt.item()
                seq_id.append(next_id.item())
                seq_dt.append(next_dt.item())
    return GeneratedTokens(ids, dts, lengths)
