"""Decoding state containers of :class:`~nfestimators.model.Neuroformer`: the encoded context
of a batch and the incremental (KV-cache) decoding state, plus :func:`eval_mode`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from .attention import KV


@contextlib.contextmanager
def eval_mode(module):
    """Put ``module`` in eval mode for a block and restore its previous mode after it."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@dataclass
class Context:
    """Encoded inputs that do not depend on the current tokens (None when absent).

    Attributes
    ----------
    past : Tensor of shape (B, Tp, E) or None
        Embedded past-window tokens.
    past_valid : BoolTensor of shape (B, Tp) or None
        False at PAD past tokens; None when padding is not masked.
    frames : Tensor of shape (B, 1 + n_frame_tokens, E) or None
        Frame feature-encoder output (SOS token first).
    frame_tokens : Tensor of shape (B, n_frame_tokens, E) or None
        The frame tokenizer's output, before the frame self-attention (the input of the
        ``"frames"`` contrastive latent).
    behavior : Tensor of shape (B, n_behavior_inputs, E) or None
        Behaviour input embeddings.
    """

    past: torch.Tensor | None = None
    past_valid: torch.Tensor | None = None
    frames: torch.Tensor | None = None
    behavior: torch.Tensor | None = None
    frame_tokens: torch.Tensor | None = None

    def select(self, rows):
        """The context of the windows ``rows`` (LongTensor of row indices) only."""
        parts = (self.past, self.past_valid, self.frames, self.behavior, self.frame_tokens)
        return Context(*(None if t is None else t[rows] for t in parts))


@dataclass
class DecodeState:
    """Incremental decoding state of a batch of windows.

    Attributes
    ----------
    memory : dict of str to (list of KV, mask)
        Per fusion stage ("history", "stimulus", "behavior") present: the cross-attention
        K/V of each block and the key mask (B, 1, 1, Tk) or None.
    self_kv : list of KV or None
        K/V cache of every causal self-attention layer (feature encoder, then final stack),
        each (B, H, length, E/H).
    length : int
        Number of tokens already decoded.
    """

    memory: dict[str, tuple[list[KV], torch.Tensor | None]]
    self_kv: list[KV | None] = field(default_factory=list)
    length: int = 0

    def select(self, rows):
        """The state of the windows ``rows`` (LongTensor of row indices) only."""
        memory = {
            name: ([(k[rows], v[rows]) for k, v in kvs], None if mask is None else mask[rows])
            for name, (kvs, mask) in self.memory.items()
        }
        self_kv = [None if kv is None else (kv[0][rows], kv[1][rows]) for kv in self.self_kv]
        return DecodeState(memory, self_kv, self.length)
