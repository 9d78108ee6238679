"""The skorch engine: a NeuralNet that trains a Neuroformer on TokenStore batches."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import TeeGenerator
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from . import distributed
from .graphs import GraphedTrainStep

__all__ = ["LossCombiner", "NeuroformerNet", "TokenBatches", "compile_blocks",
           "decay_param_groups", "device_context", "warmup_cosine"]


class LossCombiner(nn.Module):
    """Weighted sum of the model's named losses over the keys in ``bprop`` (all when None).

    The skorch criterion: ``criterion_(losses) -> scalar``.
    """

    def __init__(self, weights=None, bprop=None):
        super().__init__()
        self.weights = dict(weights or {})
        self.bprop = None if bprop is None else tuple(bprop)

    def forward(self, losses):
        keys = [k for k in losses if self.bprop is None or k in self.bprop]
        if not keys:
            raise ValueError(f"no loss to optimise: the batch gave {sorted(losses)}, "
                             f"loss_bprop is {self.bprop}.")
        return sum(self.weights.get(k, 1.0) * losses[k] for k in keys)


class TokenBatches:
    """Re-iterable batches of a :class:`~nfestimators.data.TokenStore` restricted to ``rows``.

    Training batches are reshuffled every pass from a seeded numpy generator, so epochs
    differ yet fits are reproducible.

    With ``world_size > 1`` (data-parallel training, same ``seed`` on every rank), each
    global batch of ``batch_size`` rows is cut as ``rows[rank::world_size]`` and the batch
    dict carries the global row count under ``"global_size"`` (see
    :mod:`nfestimators.training.distributed`).
    """

    def __init__(self, store, rows, batch_size, shuffle=False, seed=None, rank=0, world_size=1):
        self.store = store
        self.rows = np.asarray(rows)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rank = int(rank)
        self.world_size = int(world_size)
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __iter__(self):
        rows = self._rng.permutation(self.rows) if self.shuffle else self.rows
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            if self.world_size == 1:
                yield self.store.batch(chunk)
                continue
            batch = self.store.batch(distributed.shard_rows(chunk, self.rank, self.world_size))
            batch[distributed.GLOBAL_SIZE] = len(chunk)
            yield batch


def decay_param_groups(module, weight_decay):
    """AdamW groups: weight decay on ``nn.Linear`` weights only (spec 5), trainable params only."""
    decay = set()
    for sub in module.modules():
        if isinstance(sub, nn.Linear) and sub.weight.requires_grad:
            decay.add(id(sub.weight))
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in decay], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in decay], "weight_decay": 0.0},
    ]


def warmup_cosine(total_steps, warmup_steps, floor=0.1):
    """LR multiplier: linear warmup, then cosine decay to ``floor`` (spec 5, step based)."""

    def factor(step):
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def compile_blocks(module):
    """Compile every attention block of ``module`` in place with dynamic shapes.

    The blocks hold nearly all of the model's operations, and all blocks of a kind share
    one compiled graph (their parameters are graph inputs), so compiling costs a few graphs
    whatever the depth, and batches of any length reuse them. Returns ``module``.
    """
    from ..model.attention import CrossAttentionBlock, SelfAttentionBlock

    for block in module.modules():
        if isinstance(block, (SelfAttentionBlock, CrossAttentionBlock)):
            block.compile(dynamic=True)
    return module


def device_context(device, precision, cache=True):
    """Mixed precision and attention kernels for a forward pass on ``device``.

    On CUDA: bf16 autocast when ``precision == "bf16"``, and flash / memory-efficient SDPA
    kernels. cuDNN attention is left out: it builds an execution plan for every new
    sequence length, and batches padded to their own length bring many. ``cache=False``
    turns off autocast's cache of weight casts, as CUDA graph capture requires.
    """
    if not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                                     SDPBackend.MATH]))
    if precision == "bf16":
        stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache))
    return stack


class NeuroformerNet(NeuralNet):
    """skorch ``NeuralNet`` with a multi-loss train step.

    ``fit(batches)`` takes a pair ``(train, valid)`` of :class:`TokenBatches` (``valid`` may
    be None). Every named loss of the model is recorded per batch in the history
    (``train_id``, ``train_dt``, ``valid_regression``, ...) next to the weighted total
    ``train_loss`` / ``valid_loss``, with one host synchronisation per epoch instead of one
    per step. On CUDA the forward runs under bf16 autocast when ``precision="bf16"``.
    Gradient clipping, the LR schedule, early stopping and progress bars are ordinary skorch
    callbacks.

    ``strategy="ddp"`` (inside an initialised ``torch.distributed`` process group, with
    :class:`TokenBatches` split by rank) wraps the module in ``DistributedDataParallel``
    and optimises exactly the global batch's objective; every rank records the same
    global-batch losses, so callbacks (early stopping, LR schedule) decide alike on every
    rank. See :mod:`nfestimators.training.distributed`.

    Every step clips the gradient norm to ``gradient_clip``. ``cuda_graphs=True`` (one CUDA
    device, ``strategy="single"``) replays whole training steps as CUDA graphs (see
    :class:`~nfestimators.training.GraphedTrainStep`); callbacks then see
    ``on_grad_computed`` only for the eager warm-up steps.
    """

    def __init__(self, module, *args, precision="fp32", weight_decay=0.1, strategy="single",
                 gradient_clip=1.0, cuda_graphs=False, **kwargs):
        self.precision = precision
        self.weight_decay = weight_decay
        self.strategy = strategy
        self.gradient_clip = gradient_clip
        self.cuda_graphs = cuda_graphs
        super().__init__(module, *args, **kwargs)

    def torch_compile(self, module, name):
        """``compile=True`` compiles the attention blocks (see :func:`compile_blocks`)."""
        if not self.compile or name != "module":
            return module
        return compile_blocks(module)

    # -------------------------------------------------------------- data plumbing
    def check_data(self, X, y=None):
        if not (isinstance(X, tuple) and len(X) == 2 and isinstance(X[0], TokenBatches)):
            raise TypeError("NeuroformerNet.fit expects (train TokenBatches, valid or None).")

    def get_split_datasets(self, X, y=None, **fit_params):
        return X

    def get_iterator(self, dataset, training=False):
        return dataset

    def initialize_module(self):
        super().initialize_module()
        self.rank_, self.world_size_ = distributed.rank_and_world(self.strategy)
        if self.strategy == "ddp":
            self.module_ = distributed.wrap_ddp(self.module_, self.device)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        kwargs = self.get_params_for("optimizer")
        kwargs.setdefault("lr", self.lr)
        groups = decay_param_groups(self.module_, self.weight_decay)
        self.graphed_ = None
        if self.cuda_graphs:
            if not str(self.device).startswith("cuda") or self.strategy != "single":
                raise ValueError("cuda_graphs needs one CUDA device (strategy='single'); "
                                 f"got device={self.device!r}, strategy={self.strategy!r}.")
            kwargs["capturable"] = True
        self.optimizer_ = self.optimizer(groups, **kwargs)
        if self.cuda_graphs:
            self.graphed_ = GraphedTrainStep(self._graph_body, self.optimizer_, self.device)
        return self

    # ------------------------------------------------------------------- steps
    def _autocast(self):
        return device_context(self.device, self.precision, cache=not self.cuda_graphs)

    def _forward_losses(self, batch):
        """``(out, losses, loss)``; under ``"ddp"`` the losses are this rank's shares of the
        global batch's (see :func:`~nfestimators.training.distributed.loss_shares`)."""
        with self._autocast():
            out = self.module_(batch)
            model = distributed.unwrap(self.module_)
            if self.strategy == "ddp":  # the losses of the global batch
                losses = distributed.loss_shares(out, batch, model.config, self.rank_,
                                                 self.world_size_)
            else:
                losses = model.losses(out, batch)
        losses = {k: v.float() for k, v in losses.items()}
        return out, losses, self.criterion_(losses)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        out, losses, loss = self._forward_losses(batch)
        if self.strategy == "ddp":
            (loss * self.world_size_).backward()  # DDP averages the ranks' gradients
        else:
            loss.backward()
        return {"loss": loss, "y_pred": out, "losses": losses}

    def _clip_and_step(self):
        params = [p for group in self.optimizer_.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.gradient_clip, foreach=True)
        self.optimizer_.step()

    def _graph_body(self, batch):
        """Forward, backward, clipping and update of one batch, with no host sync (what
        :class:`GraphedTrainStep` captures)."""
        step = self.train_step_single(batch)
        self._clip_and_step()
        return step["loss"], step["losses"]

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        if self.graphed_ is not None:
            loss, losses = self.graphed_(batch)
            return {"loss": loss, "y_pred": None, "losses": losses}
        self.optimizer_.zero_grad(set_to_none=True)
        step = self.train_step_single(batch, **fit_params)
        self.notify("on_grad_computed", batch=batch,
                    named_parameters=TeeGenerator(self.get_all_learnable_params()))
        self._clip_and_step()
        return step

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:  # skorch stops the fit here and runs on_train_end
            self.interrupted_ = True
            raise
        finally:  # graphs and their memory pool go with the fit; gradients are not kept
            self.graphed_ = None
            if hasattr(self, "optimizer_"):
                self.optimizer_.zero_grad(set_to_none=True)

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            out, losses, loss = self._forward_losses(batch)
        return {"loss": loss, "y_pred": out, "losses": losses}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        pending = []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            values = {"loss": step["loss"].detach(),
                      **{k: v.detach() for k, v in step["losses"].items()}}
            size = batch.get(distributed.GLOBAL_SIZE, len(batch["id"]))
            pending.append((self.history[-1]["batches"][-1], values, size))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if pending:
            keys = list(pending[0][1])
            table = torch.stack([torch.stack([v[k] for k in keys]) for _, v, _ in pending])
            if self.strategy == "ddp":
                distributed.all_reduce_sum(table)  # rank shares -> global-batch losses
            table = table.cpu().tolist()
            for (row, _, size), numbers in zip(pending, table):
                row.update({f"{prefix}_{k}": x for k, x in zip(keys, numbers)})
                row[f"{prefix}_batch_size"] = size
            sizes = np.array([size for _, _, size in pending], dtype=float)
            for k, column in zip(keys, np.asarray(table).T):
                if k != "loss":  # the total is averaged by skorch's PassthroughScoring
                    self.history.record(f"{prefix}_{k}", float(np.average(column, weights=sizes)))
            if not all(math.isfinite(row[f"{prefix}_loss"]) for row, _, _ in pending):
                raise FloatingPointError(
                    f"the {prefix} loss became NaN or infinite; lower lr or check the inputs.")
        self.history.record(prefix + "_batch_count", len(pending))
