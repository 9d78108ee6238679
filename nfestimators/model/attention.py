"""Attention blocks (spec 3.4) on top of ``scaled_dot_product_attention``.

Every block keeps the original's structure: the residual branch sees a layer-normed
query, an MLP follows, and the block ends with its own LayerNorm. Cross-attention keys
and values are the raw memory tokens, as in the original.

Masks are boolean with True meaning "may attend", broadcastable to (B, H, Tq, Tk).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

KV = tuple[torch.Tensor, torch.Tensor]


def causal_mask(n_query, offset, key_valid=None):
    """Attention mask for causal self-attention over cached plus new tokens.

    Parameters
    ----------
    n_query : int
        Number of new (query) tokens.
    offset : int
        Number of tokens already in the cache; queries sit at positions
        ``offset .. offset + n_query - 1``.
    key_valid : BoolTensor of shape (B, offset + n_query) or None
        False at PAD keys. Position 0 (SOS) must be valid, so no row is fully masked.

    Returns
    -------
    mask : BoolTensor of shape (B, 1, n_query, offset + n_query) or (n_query, n_keys), or None
    is_causal : bool
        True when the caller can use the ``is_causal`` fast path instead of a mask.
    """
    if key_valid is None:
        if offset == 0:
            return None, n_query > 1
        if n_query == 1:
            return None, False  # one new query sees the whole cache
    n_keys = offset + n_query
    device = key_valid.device if key_valid is not None else None
    query_pos = torch.arange(offset, n_keys, device=device)
    mask = torch.arange(n_keys, device=device)[None, :] <= query_pos[:, None]  # (Tq, Tk)
    if key_valid is not None:
        mask = mask & key_valid[:, None, None, :]  # (B, 1, Tq, Tk)
    return mask, False


def padding_mask(key_valid):
    """(B, Tk) validity -> (B, 1, 1, Tk) cross-attention mask; None passes through."""
    return None if key_valid is None else key_valid[:, None, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection and an optional K/V cache."""

    def __init__(self, n_embd, n_head, dropout_attn, dropout_resid):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout_attn = dropout_attn
        self.resid_drop = nn.Dropout(dropout_resid)

    def forward(self, x, mask=None, is_causal=False, past_kv=None):
        """Attend ``x`` (B, T, E) to itself and to the cached ``past_kv``.

        Returns the output (B, T, E) and the K/V of all tokens seen so far,
        each (B, H, T_past + T, E/H).
        """
        B, T, E = x.shape
        q, k, v = self.qkv(x).split(E, dim=2)
        q = q.view(B, T, self.n_head, E // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.n_head, E // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, E // self.n_head).transpose(1, 2)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)  # (B, H, Tk, hd)
            v = torch.cat([past_kv[1], v], dim=2)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal,
            dropout_p=self.dropout_attn if self.training else 0.0,
        )
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, E)
        return self.resid_drop(self.proj(y)), (k, v)


class CrossAttention(nn.Module):
    """Multi-head attention from a query stream to a memory (separate Q, fused KV)."""

    def __init__(self, n_embd, n_head, dropout_attn, dropout_resid):
        super().__init__()
        self.n_head = n_head
        self.q = nn.Linear(n_embd, n_embd)
        self.kv = nn.Linear(n_embd, 2 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout_attn = dropout_attn
        self.resid_drop = nn.Dropout(dropout_resid)

    def memory_kv(self, memory):
        """Project memory tokens (B, Tk, E) to K and V, each (B, H, Tk, E/H)."""
        B, Tk, E = memory.shape
        k, v = self.kv(memory).split(E, dim=2)
        k = k.view(B, Tk, self.n_head, E // self.n_head).transpose(1, 2)
        v = v.view(B, Tk, self.n_head, E // self.n_head).transpose(1, 2)
        return k, v

    def forward(self, x, kv, mask=None):
        """Attend ``x`` (B, T, E) to projected memory ``kv``; returns (B, T, E)."""
        B, T, E = x.shape
        q = self.q(x).view(B, T, self.n_head, E // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(
            q, kv[0], kv[1], attn_mask=mask, dropout_p=self.dropout_attn if self.training else 0.0
        )
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, E)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, n_embd, dropout_resid):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU()
        self.proj = nn.Linear(4 * n_embd, n_embd)
        self.drop = nn.Dropout(dropout_resid)

    def forward(self, x):
        return self.drop(self.proj(self.gelu(self.fc(x))))


class SelfAttentionBlock(nn.Module):
    """``x + SA(LN(x))``, ``+ MLP(LN(.))``, then the block's own output LayerNorm."""

    def __init__(self, n_embd, n_head, dropout_attn, dropout_resid):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = SelfAttention(n_embd, n_head, dropout_attn, dropout_resid)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout_resid)
        self.ln_out = nn.LayerNorm(n_embd)

    def forward(self, x, mask=None, is_causal=False, past_kv=None):
        """Returns the block output (B, T, E) and the updated K/V cache entry."""
        a, kv = self.attn(self.ln_1(x), mask, is_causal, past_kv)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return self.ln_out(x), kv


class CrossAttentionBlock(nn.Module):
    """``x + XA(LN(x), memory)``, ``+ MLP(LN(.))``, then the block's own output LayerNorm."""

    def __init__(self, n_embd, n_head, dropout_attn, dropout_resid):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CrossAttention(n_embd, n_head, dropout_attn, dropout_resid)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout_resid)
        self.ln_out = nn.LayerNorm(n_embd)

    def forward(self, x, kv, mask=None):
        x = x + self.attn(self.ln_1(x), kv, mask)
        x = x + self.mlp(self.ln_2(x))
        return self.ln_out(x)
