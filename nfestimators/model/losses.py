"""Training objectives (spec 4): SCLM cross-entropy, contrastive InfoNCE."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F


def sclm_loss(logits, targets, pad_index, reduction="mean"):
    """Next-token cross-entropy averaged (or summed) over non-PAD targets (EOS included), or
    per token.

    Parameters
    ----------
    logits : Tensor of shape (B, T, V)
    targets : LongTensor of shape (B, T)
    pad_index : int
        Targets equal to it are ignored.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"sum"`` gives the summed token losses (data-parallel training divides them by the
        global token count); ``"none"`` the loss of every token, (B, T), 0 at PAD targets
        (the log-likelihoods of :meth:`NeuroformerPretrainer.score`).

    Returns
    -------
    Tensor
        Scalar loss, or (B, T) with ``reduction="none"``.
    """
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=pad_index,
                           reduction=reduction)
    return loss.reshape(targets.shape) if reduction == "none" else loss


def info_nce(a, b, temperature, symmetric=False):
    """InfoNCE between matched rows of two L2-normalized latent batches.

    Parameters
    ----------
    a, b : Tensor of shape (B, D)
        Row i of ``a`` and row i of ``b`` come from the same sample.
    temperature : float
    symmetric : bool
        False: the original one-directional loss, ``logsumexp_j S[i, j] - S[i, i]``
        averaged over rows (rows of ``a`` against columns of ``b``). True: the CLIP loss,
        the mean of that and its transpose.

    Returns
    -------
    Tensor
        Scalar loss.
    """
    similarity = a.float() @ b.float().T / temperature  # (B, B)
    labels = torch.arange(similarity.shape[0], device=similarity.device)
    loss = F.cross_entropy(similarity, labels)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(similarity.T, labels))
    return loss


def contrastive_loss(latents, temperature, symmetric=False):
    """Mean InfoNCE over every unordered pair of modalities.

    Parameters
    ----------
    latents : dict of str to Tensor of shape (B, D)
        Two or more L2-normalized latents; pairs follow the dict order.
    temperature : float
    symmetric : bool

    Returns
    -------
    Tensor
        Scalar loss.
    """
    pairs = list(itertools.combinations(latents.values(), 2))
    return torch.stack([info_nce(a, b, temperature, symmetric) for a, b in pairs]).mean()
