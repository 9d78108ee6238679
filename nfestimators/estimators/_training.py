"""Training setup of the estimators: devices, precision, the validation split and one skorch
fit of a :class:`~nfestimators.model.Neuroformer` on a token store."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.history import History
from sklearn.utils import check_random_state

from ..model import Neuroformer
from ..training import (EpochProgressBar, FinishedEpochWeights, LossCombiner, NeuroformerNet,
                        SpikeAugmenter, TokenBatches, blend_count_decoder, warmup_cosine)
from ..training import distributed

GRAPH_PAD_MULTIPLE = 32  # sequence lengths rounded up to this when training with CUDA graphs


def resolve_device(device):
    """``"auto"`` -> cuda, then mps, then cpu; a CUDA request on a machine without one -> error."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available.")
    return device


def inference_device(device):
    """The device asked for, or the CPU when a GPU-trained model is used without a GPU."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        device = "cpu"
    return resolve_device(device)


def training_devices(est, strategy):
    """Resolve ``device_``, ``precision_`` and ``cuda_graphs_`` of ``est`` for a fit."""
    device = resolve_device(est.device)
    if strategy == "ddp" and device == "cuda":
        # one GPU per process: torchrun's LOCAL_RANK, else the current device
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', torch.cuda.current_device()))}"
    distributed.rank_and_world(strategy)  # a process group exists for "ddp"
    est.device_ = device
    cuda = device.startswith("cuda")
    est.precision_ = ("bf16" if cuda else "fp32") if est.precision == "auto" else est.precision
    single_cuda = cuda and strategy == "single"
    if est.cuda_graphs is True and not single_cuda:
        raise ValueError("cuda_graphs=True needs training on one CUDA device "
                         f"(device_={device!r}); use 'auto' or False.")
    est.cuda_graphs_ = (bool(single_cuda and not est.compile) if est.cuda_graphs == "auto"
                        else bool(est.cuda_graphs))


def rng_fork(device):
    """Isolate torch's global RNG: seeding inside leaves the caller's state untouched."""
    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    return torch.random.fork_rng(devices=devices)


def validation_split(rows, fraction, labels=None):
    """``(valid_rows, train_rows)`` of the shuffled ``rows``: the first ``fraction`` of them
    (at least one, never all), or with ``labels`` that fraction of every class (stratified;
    every class keeps at least one training row)."""
    if not fraction or len(rows) < 2:
        return rows[:0], rows
    if labels is None:
        n_valid = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        return rows[:n_valid], rows[n_valid:]
    shuffled = labels[rows]
    valid = []
    for label in np.unique(shuffled):
        members = rows[shuffled == label]
        valid.append(members[:min(int(round(fraction * len(members))), len(members) - 1)])
    valid = np.concatenate(valid)
    return valid, rows[~np.isin(rows, valid)]


def _callbacks(est, steps, early_stopping, rank):
    callbacks = [("schedule", LRScheduler(
        policy=torch.optim.lr_scheduler.LambdaLR, step_every="batch",
        lr_lambda=warmup_cosine(steps, int(est.warmup_fraction * steps))))]
    if early_stopping:
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=int(est.n_iter_no_change), load_best=True)))
    else:  # what a Ctrl-C keeps
        callbacks.append(("finished_epoch_weights", FinishedEpochWeights()))
    if est.verbose and rank == 0:
        callbacks.append(("progress", EpochProgressBar(type(est).__name__)))
    return callbacks + list(est.callbacks or [])


def train(est, store, *, weights, bprop, strategy, init_state=None, trainable=None, labels=None,
          trainable_rows=None, jitter=0, neuron_dropout=0.0, blend=None):
    """Train a new model of ``est.model_config_`` on ``store`` with the skorch engine.

    Starts from ``init_state`` (missing keys stay freshly initialised) and updates only the
    parameters whose names start with a prefix in ``trainable`` (all when None), and the rows
    ``lo:hi`` of the parameters ``trainable_rows`` maps to ``(lo, hi)`` (the new session's
    units of the unit tables; their other rows end the fit exactly as in ``init_state``);
    ``labels`` stratify the validation split. ``jitter`` and ``neuron_dropout`` perturb the
    training batches (:class:`~nfestimators.training.SpikeAugmenter`; validation batches are
    left alone); ``est.ema_decay`` keeps a moving average of the weights, which validation,
    early stopping and the fitted model use (:class:`~nfestimators.training.NeuroformerNet`).
    ``blend`` (``"classification"`` or ``"regression"``) blends the linear decoder of the
    count inputs into that trained head and sets ``count_decoder_`` (and ``model_config_``
    to the model's: the decoder may change its ``count_transform``;
    :func:`~nfestimators.training.blend_count_decoder`). Sets
    ``model_``, ``history_``, ``n_epochs_`` (finished
    epochs) and ``best_epoch_`` (the epoch whose weights the model holds) of ``est``. A
    ``KeyboardInterrupt`` stops the fit cleanly with the weights of the best (or last)
    finished epoch and a warning.
    """
    rank, world_size = distributed.rank_and_world(strategy)
    rng = check_random_state(est.random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    rows = rng.permutation(len(store))
    if strategy == "ddp":  # one seed and split for all ranks, whatever random_state
        seed, rows = distributed.broadcast_from_rank0(seed, rows, device=est.device_)
    valid_rows, train_rows = validation_split(rows, est.validation_fraction, labels)
    batch_size = int(min(est.batch_size, len(train_rows)))
    if est.cuda_graphs_:
        store.pad_multiple = GRAPH_PAD_MULTIPLE  # few shapes, few graphs
    elif torch.device(est.device_).type == "cpu":
        store.pad_multiple = 1  # a CPU step costs in proportion to its padded tokens
    steps = int(est.max_epochs) * math.ceil(len(train_rows) / batch_size)
    early_stopping = bool(len(valid_rows) and est.n_iter_no_change)
    with rng_fork(est.device_):
        torch.manual_seed(seed)
        model = Neuroformer(est.model_config_)
        if init_state is not None:
            _, unexpected = model.load_state_dict(init_state, strict=False)
            if unexpected:
                raise ValueError(f"pretrained weights do not fit this model: {unexpected[:5]}")
        if trainable is not None:
            for name, param in model.named_parameters():
                param.requires_grad_(name.startswith(tuple(trainable)))
        row_hooks = [_train_rows_only(model, name, lo, hi)
                     for name, (lo, hi) in (trainable_rows or {}).items()]
        if strategy == "ddp":
            torch.manual_seed(seed + rank)  # distinct dropout masks on every rank
        net = NeuroformerNet(
            model, criterion=LossCombiner, criterion__weights=weights, criterion__bprop=bprop,
            optimizer=torch.optim.AdamW, optimizer__betas=(0.9, 0.95),
            optimizer__fused=est.device_.startswith(("cuda", "cpu")), lr=float(est.lr),
            weight_decay=float(est.weight_decay), max_epochs=int(est.max_epochs),
            batch_size=batch_size, callbacks=_callbacks(est, steps, early_stopping, rank),
            device=est.device_, precision=est.precision_, compile=bool(est.compile),
            train_split=None, cuda_graphs=est.cuda_graphs_, verbose=0, strategy=strategy,
            ema_decay=None if est.ema_decay is None else float(est.ema_decay))
        shard = {"rank": rank, "world_size": world_size}
        tok = est.tokenizer_
        augment = SpikeAugmenter(est.model_config_, tok.n_bins_, tok.n_prev_bins_, jitter=jitter,
                                 neuron_dropout=neuron_dropout, seed=seed + rank,
                                 device=est.device_)
        batches = TokenBatches(store, train_rows, batch_size, shuffle=True, seed=seed,
                               augment=augment if augment.active else None, **shard)
        valid = (TokenBatches(store, valid_rows, max(batch_size, 256), **shard)
                 if len(valid_rows) else None)
        net.fit((batches, valid))
    for hook in row_hooks:
        hook.remove()
    est.model_ = distributed.unwrap(net.module_)
    _restore_frozen_rows(est.model_, trainable_rows, init_state)
    finished = [row for row in net.history
                if "train_loss" in row and (valid is None or "valid_loss" in row)]
    est.history_ = History(finished)
    est.n_epochs_ = len(finished)
    stopper = dict(net.callbacks_).get("early_stopping")
    est.best_epoch_ = int(stopper.best_epoch_) if early_stopping else est.n_epochs_
    stopped_early = early_stopping and stopper.misses_ >= stopper.patience  # by KeyboardInterrupt
    interrupted = net.interrupted_ and not stopped_early  # by the user
    if blend is not None and not interrupted:  # interrupted: the finished epoch's weights
        est.count_decoder_ = blend_count_decoder(est.model_, store, train_rows, valid_rows,
                                                 blend, seed=seed)
        est.model_config_ = est.model_.config  # the decoder chooses its count_transform
    if interrupted:
        warnings.warn(f"fit was interrupted (KeyboardInterrupt) after {est.n_epochs_} finished "
                      f"epoch(s); the model keeps the weights of epoch {est.best_epoch_}.",
                      UserWarning, stacklevel=3)
    return est


def _train_rows_only(model, name, lo, hi):
    """Train only the rows ``lo:hi`` of the parameter ``name``: the gradient of the other
    rows is zeroed (so AdamW's moments of those rows stay 0 and never move them). Returns
    the hook's handle. The row mask is built on the gradient's device (no host copy: the
    step may be a CUDA graph)."""
    param = model.get_parameter(name)
    param.requires_grad_(True)

    def keep_rows(grad):
        rows = torch.arange(grad.shape[0], device=grad.device)
        return grad * ((rows >= lo) & (rows < hi)).unsqueeze(-1).to(grad.dtype)

    return param.register_hook(keep_rows)


def _restore_frozen_rows(model, trainable_rows, init_state):
    """Put back the rows outside ``lo:hi`` of every parameter of ``trainable_rows`` as they
    were in ``init_state``: decoupled weight decay shrinks rows without a gradient too."""
    with torch.no_grad():
        for name, (lo, hi) in (trainable_rows or {}).items():
            param = model.get_parameter(name)
            start = init_state[name].to(param.device, param.dtype)
            param[:lo].copy_(start[:lo])
            param[hi:].copy_(start[hi:])
