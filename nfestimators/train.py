"""Command-line pretraining, on one device or data-parallel over several under ``torchrun``.

One process per device; ``torchrun`` (``python -m torch.distributed.run``) starts them and
sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. Every process loads the same windows and
fits a :class:`~nfestimators.NeuroformerPretrainer` with ``strategy="ddp"``; each global
batch of ``--batch-size`` windows is split over the processes, and the fit matches the
one-process fit of the same global batch up to float rounding. Rank 0 logs and saves.

Examples
--------
One process (CPU or one GPU)::

    python -m nfestimators.train --synthetic --n-neurons 80 --duration 200 --preset small \\
        --max-epochs 5 --out pretrainer.pt

Two GPUs of one host::

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m nfestimators.train \\
        --synthetic --n-neurons 80 --duration 200 --preset small --max-epochs 5 \\
        --out pretrainer.pt

``--windows FILE`` trains on saved windows instead: a pickled
:class:`~nfestimators.SpikeWindows` (``.pkl``) or a count array ``(n_samples, n_neurons,
n_bins)`` saved with ``numpy.save`` (``.npy``).
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import time

import numpy as np
import torch
import torch.distributed as dist
from skorch.callbacks import Callback

from .datasets import make_spiking_data
from .estimators import NeuroformerPretrainer

logger = logging.getLogger("nfestimators.train")

# NVLink multicast (NVLS) stays off: NCCL, symmetric memory and NVSHMEM would otherwise use it.
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                "NVSHMEM_DISABLE_NVLS": "1"}


def init_distributed(backend="auto", device="auto"):
    """Join the process group that ``torchrun`` describes in the environment.

    Turns NVLink multicast off (:data:`NO_MULTICAST`), binds the process to GPU
    ``LOCAL_RANK`` when it uses CUDA, and initialises the default group.

    Parameters
    ----------
    backend : {"auto", "nccl", "gloo"}, default="auto"
        ``"auto"``: NCCL when the process uses CUDA, gloo otherwise.
    device : str, default="auto"
        The estimator's ``device`` (``"auto"`` uses CUDA when available).

    Returns
    -------
    (int, int)
        Rank and world size.
    """
    os.environ.update(NO_MULTICAST)
    cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


class EpochLog(Callback):
    """skorch callback: log the losses and duration of every epoch."""

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        losses = " ".join(f"{k}={row[k]:.4f}" for k in ("train_loss", "valid_loss") if k in row)
        logger.info("epoch %d: %s (%.2f s)", row["epoch"], losses, row["dur"])


def load_windows(args):
    """The training windows: a saved file, or ``make_spiking_data``."""
    if args.windows is None:
        data = make_spiking_data(n_neurons=args.n_neurons, duration=args.duration,
                                 stimulus=args.stimulus, behavior_as_input=args.behavior,
                                 random_state=args.data_seed)
        return data.windows
    if args.windows.endswith(".npy"):
        return np.load(args.windows)
    with open(args.windows, "rb") as f:
        return pickle.load(f)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nfestimators.train",
                                     description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument("--windows", help="saved windows: .pkl (SpikeWindows) or .npy (counts)")
    source.add_argument("--synthetic", action="store_true", help="use make_spiking_data")
    data.add_argument("--n-neurons", type=int, default=80)
    data.add_argument("--duration", type=float, default=200.0, help="seconds (synthetic)")
    data.add_argument("--stimulus", action="store_true", help="synthetic movie (frames)")
    data.add_argument("--behavior", action="store_true", help="attach behaviour as input")
    data.add_argument("--data-seed", type=int, default=0)
    model = parser.add_argument_group("pretrainer")
    model.add_argument("--preset", default="small")
    model.add_argument("--contrastive", nargs="+", default=["auto"])
    model.add_argument("--dropout", type=float)
    model.add_argument("--max-epochs", type=int, default=20)
    model.add_argument("--batch-size", type=int, default=32, help="global batch size")
    model.add_argument("--lr", type=float, default=1e-3)
    model.add_argument("--validation-fraction", type=float, default=0.1)
    model.add_argument("--n-iter-no-change", type=int)
    model.add_argument("--device", default="auto")
    model.add_argument("--precision", default="auto")
    model.add_argument("--compile", action="store_true")
    model.add_argument("--random-state", type=int, default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--strategy", choices=("auto", "single", "ddp"), default="auto",
                     help="auto: ddp when torchrun started more than one process")
    run.add_argument("--backend", choices=("auto", "nccl", "gloo"), default="auto")
    run.add_argument("--out", help="save the fitted estimator here (rank 0)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    strategy = args.strategy
    if strategy == "auto":
        strategy = "ddp" if int(os.environ.get("WORLD_SIZE", 1)) > 1 else "single"
    rank, world_size = 0, 1
    if strategy == "ddp":
        rank, world_size = init_distributed(args.backend, args.device)
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    try:
        X = load_windows(args)
        contrastive = tuple(args.contrastive) if args.contrastive != ["auto"] else "auto"
        pre = NeuroformerPretrainer(
            contrastive=contrastive, preset=args.preset, dropout=args.dropout,
            max_epochs=args.max_epochs, batch_size=args.batch_size, lr=args.lr,
            validation_fraction=args.validation_fraction or None,
            n_iter_no_change=args.n_iter_no_change, device=args.device,
            precision=args.precision, compile=args.compile, strategy=strategy,
            random_state=args.random_state, callbacks=[("log", EpochLog())] if rank == 0 else None)
        logger.info("%d windows, %d neurons; strategy %s on %d process(es), global batch %d",
                    len(X), np.shape(X)[1], strategy, world_size, args.batch_size)
        t0 = time.perf_counter()
        pre.fit(X)
        wall = time.perf_counter() - t0
        if rank == 0:
            n_train = sum(row["train_batch_size"] for row in pre.history_[-1]["batches"]
                          if "train_batch_size" in row)
            epoch_s = float(np.median([row["dur"] for row in pre.history_]))
            logger.info("fit in %.1f s on %s: %d epochs, %.0f training windows/s (median epoch)",
                        wall, pre.device_, pre.n_epochs_, n_train / epoch_s)
            if args.out:
                pre.save(args.out)
                logger.info("saved to %s", args.out)
    finally:
        if strategy == "ddp":
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
