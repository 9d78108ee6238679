"""Input embeddings: dt time embedding, stimulus tokenizer, behaviour inputs (spec 3.2-3.6)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def sinusoid(positions, n_channels):
    """Transformer sinusoid of float ``positions`` (...,) -> (..., n_channels).

    Channel pairs ``(2i, 2i+1)`` hold ``sin`` and ``cos`` of ``p * exp(-2i ln(1e4) / C)``.
    """
    freqs = torch.exp(
        torch.arange(0, n_channels, 2, device=positions.device, dtype=torch.float32)
        * (-math.log(10000.0) / n_channels)
    )  # (C/2,)
    angles = positions.float()[..., None] * freqs  # (..., C/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (..., C)


class TimeEmbedding(nn.Module):
    """Embedding of the dt token index, used as a float (spec 3.2).

    ``"learned"`` is Linear(1, E/2) -> GELU -> Linear(E/2, E); ``"sinusoidal"`` has no
    parameters.
    """

    def __init__(self, n_embd, kind="learned"):
        super().__init__()
        self.n_embd = n_embd
        self.mlp = None
        if kind == "learned":
            self.mlp = nn.Sequential(
                nn.Linear(1, n_embd // 2), nn.GELU(), nn.Linear(n_embd // 2, n_embd)
            )

    def forward(self, dt):
        """dt indices (B, T), any numeric dtype -> (B, T, E)."""
        if self.mlp is None:
            return sinusoid(dt, self.n_embd)
        return self.mlp(dt.float().unsqueeze(-1))


def sinusoid_3d(shape, n_embd, device=None):
    """3-D sinusoidal position encoding of a (t, h, w) grid -> (t, h, w, E).

    Each axis gets ``2 * ceil(E / 6)`` channels (sines then cosines); the three axis
    encodings are concatenated and cropped to E, as the original's PositionalEncoding3D.
    """
    n_axis = 2 * math.ceil(n_embd / 6)
    inv_freq = 1.0 / 10000 ** (torch.arange(0, n_axis, 2, device=device).float() / n_axis)

    def axis_code(n):
        angles = torch.arange(n, device=device).float()[:, None] * inv_freq  # (n, C/2)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (n, C)

    t, h, w = shape
    code = torch.cat(
        [
            axis_code(t)[:, None, None, :].expand(t, h, w, n_axis),
            axis_code(h)[None, :, None, :].expand(t, h, w, n_axis),
            axis_code(w)[None, None, :, :].expand(t, h, w, n_axis),
        ],
        dim=-1,
    )  # (t, h, w, 3C)
    return code[..., :n_embd]


class VideoEncoder(nn.Module):
    """Stimulus tokenizer: Conv3d(1, E) -> LayerNorm -> ReLU [+ 3-D position code] (spec 3.3).

    Conv3d keeps PyTorch's default initialization, as the original.
    """

    def __init__(self, n_embd, kernel, stride=None, position_code=True):
        super().__init__()
        self.conv = nn.Conv3d(1, n_embd, kernel_size=kernel, stride=stride or kernel)
        self.ln = nn.LayerNorm(n_embd)
        self.relu = nn.ReLU()
        self.position_code = position_code

    def forward(self, frames):
        """frames (B, 1, F, H, W) -> frame tokens (B, t' h' w', E)."""
        x = self.conv(frames)  # (B, E, t', h', w')
        x = self.relu(self.ln(x.permute(0, 2, 3, 4, 1)))  # (B, t', h', w', E)
        if self.position_code:
            x = x + sinusoid_3d(x.shape[1:4], x.shape[-1], device=x.device).to(x.dtype)
        return x.flatten(1, 3)  # (B, t' h' w', E)


class BehaviorEmbedding(nn.Module):
    """One token per behaviour input variable: ``value * w_v + e_v`` (B, V) -> (B, V, E).

    This is a Linear(1, E) per variable on the standardized value; its bias ``e_v`` is the
    learned per-variable embedding. With ``compat_layernorm=True`` a LayerNorm over the
    size-1 value axis comes first, as the original's ProjectNorm (spec 3.6): its output is
    its bias whatever the value, so the value is lost.
    """

    def __init__(self, n_inputs, n_embd, compat_layernorm=False):
        super().__init__()
        self.value_weight = nn.Parameter(torch.randn(n_inputs, n_embd) * 0.02)
        self.variable_emb = nn.Parameter(torch.randn(n_inputs, n_embd) * 0.02)
        self.value_norm = nn.LayerNorm(1) if compat_layernorm else None

    def forward(self, values):
        v = values.float().unsqueeze(-1)  # (B, V, 1)
        if self.value_norm is not None:
            v = self.value_norm(v)
        return v * self.value_weight + self.variable_emb  # (B, V, E)
