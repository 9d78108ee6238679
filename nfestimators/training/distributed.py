"""Data-parallel training over ``torch.distributed`` (``strategy="ddp"``).

The process group is set up by the launcher (``torchrun``; see :mod:`nfestimators.train`),
never here. Every rank holds the whole dataset and walks the same shuffled global batches
(same seed on every rank); rank ``r`` of ``W`` trains on rows ``r, r + W, r + 2W, ...`` of
each global batch, as ``DistributedSampler`` splits an epoch. The module is wrapped in
``DistributedDataParallel``, which averages gradients over the ranks.

The objective is exactly the one of the global batch, whatever ``W``:

* SCLM cross-entropy: each rank sums its token losses and divides by the global number of
  non-PAD targets (one all-reduce of two counts per step), so the per-rank terms add up to
  the global mean even when ranks hold different numbers of tokens;
* contrastive InfoNCE: the latents of all ranks are gathered with gradient
  (``torch.distributed.nn.functional.all_gather``) and every rank computes the InfoNCE of
  the whole global batch.

Each rank's loss is its *share* (shares add up over ranks to the global loss); the step
back-propagates ``W * share`` to undo DDP's gradient averaging. A rank left without rows by
a small last batch runs the first row of the batch with every target masked, so that every
rank takes part in every collective.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..model.losses import contrastive_loss, sclm_loss

__all__ = ["GLOBAL_SIZE", "STRATEGIES", "all_reduce_sum", "broadcast_from_rank0", "gather_rows",
           "loss_shares", "rank_and_world", "shard_rows", "shard_sizes", "unwrap", "wrap_ddp"]

STRATEGIES = ("single", "ddp")
GLOBAL_SIZE = "global_size"  # batch dict key under "ddp": rows of the whole global batch


def rank_and_world(strategy):
    """``(rank, world_size)`` for ``strategy``: ``(0, 1)`` for ``"single"``.

    Raises
    ------
    RuntimeError
        ``"ddp"`` without an initialised default process group.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}.")
    if strategy == "single":
        return 0, 1
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "strategy='ddp' needs an initialised torch.distributed process group: launch with "
            "`python -m torch.distributed.run --nproc_per_node N -m nfestimators.train ...` "
            "(or call torch.distributed.init_process_group in every process first).")
    return dist.get_rank(), dist.get_world_size()


def shard_sizes(n_rows, world_size):
    """Rows of a global batch of ``n_rows`` held by each rank (strided split)."""
    return [len(range(rank, n_rows, world_size)) for rank in range(world_size)]


def shard_rows(rows, rank, world_size):
    """This rank's rows of the global batch ``rows``: ``rows[rank::world_size]``, or the
    first row when that is empty (its targets are then masked by :func:`loss_shares`)."""
    mine = rows[rank::world_size]
    return mine if len(mine) else rows[:1]


def wrap_ddp(module, device):
    """Wrap ``module`` (already on ``device``) in ``DistributedDataParallel``."""
    device = torch.device(device)
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module):
    """The model inside a ``DistributedDataParallel`` wrapper (``module`` itself otherwise)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def gather_rows(x, sizes):
    """Concatenate every rank's rows of ``x`` along dim 0, with gradient.

    Parameters
    ----------
    x : Tensor of shape (sizes[rank], ...)
        This rank's rows.
    sizes : list of int
        Rows held by each rank (may differ, may be 0).

    Returns
    -------
    Tensor of shape (sum(sizes), ...)
        Rank 0's rows, then rank 1's, ... The backward pass sums the gradients of all ranks
        into each rank's rows (``all_gather``'s adjoint).
    """
    from torch.distributed.nn.functional import all_gather

    padded = torch.cat([x, x.new_zeros((max(sizes) - len(x), *x.shape[1:]))])
    with warnings.catch_warnings():  # deprecated (torch 2.13) for a private successor
        warnings.filterwarnings("ignore", ".*nn.functional.all_gather is deprecated",
                                FutureWarning)
        parts = all_gather(padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def loss_shares(out, batch, config, rank, world_size):
    """This rank's shares of the global-batch losses (they add up over ranks to the
    unweighted losses of the whole global batch, as ``Neuroformer.losses`` gives them).

    Parameters
    ----------
    out : dict
        ``Neuroformer.forward`` output for this rank's rows.
    batch : dict
        This rank's batch dict, with the global batch's row count under ``GLOBAL_SIZE``
        (see :class:`~nfestimators.training.TokenBatches`; a batch without it is taken
        as the whole global batch).
    config : NeuroformerConfig
    rank, world_size : int

    Returns
    -------
    dict of str to Tensor
        ``id``, ``dt`` (when targets are present) and ``contrastive`` (two or more latents).
    """
    sizes = shard_sizes(int(batch.get(GLOBAL_SIZE, len(batch["id"]))), world_size)
    mine = sizes[rank]
    sums, counts = {}, []
    for key, logits, pad in (("id", out["logits_id"], config.pad_id),
                             ("dt", out["logits_dt"], config.pad_dt)):
        target = batch.get(f"target_{key}")
        if target is None:
            continue
        if mine == 0:  # a stand-in row: no target counts
            target = torch.full_like(target, pad)
        sums[key] = sclm_loss(logits, target, pad, reduction="sum")
        counts.append((target != pad).sum())
    shares = {}
    if sums:
        totals = torch.stack(counts).float()
        dist.all_reduce(totals)  # non-PAD targets of the global batch
        for (key, value), total in zip(sums.items(), totals):
            shares[key] = value / total.clamp(min=1)
    latents = out["latents"]
    if len(latents) >= 2:
        names = list(latents)
        widths = [latents[name].shape[-1] for name in names]
        local = torch.cat([latents[name] for name in names], dim=1)[:mine]
        gathered = gather_rows(local, sizes).split(widths, dim=1)
        # every rank computes the same global InfoNCE; the shares add up to it
        shares["contrastive"] = contrastive_loss(dict(zip(names, gathered)), config.clip_temp,
                                                 config.symmetric_clip) / world_size
    unsupported = sorted({"y_reg", "y_cls"} & set(batch))
    if unsupported:
        raise NotImplementedError(f"strategy='ddp' supports the pretraining losses only; the "
                                  f"batch also holds the targets {unsupported}.")
    return shares


def all_reduce_sum(tensor):
    """Sum ``tensor`` over the ranks, in place; returns it."""
    dist.all_reduce(tensor)
    return tensor


def broadcast_from_rank0(*values, device=None):
    """Rank 0's ``values`` (picklable objects) on every rank (``device``: this rank's GPU
    under NCCL; the current CUDA device when None)."""
    values = list(values)
    cuda = device is not None and torch.device(device).type == "cuda"
    dist.broadcast_object_list(values, src=0, device=torch.device(device) if cuda else None)
    return values
