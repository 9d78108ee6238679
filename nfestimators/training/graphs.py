"""Whole training steps captured in CUDA graphs.

A Neuroformer step over short spike sequences is many small kernels: the paper preset issues
about 1,900 per step, and the host takes longer to launch them than the GPU takes to run
them. :class:`GraphedTrainStep` records the whole step (forward, losses, backward, gradient
clipping, the fused AdamW update) once per batch shape as a CUDA graph and replays it, so
a step costs one launch plus a few input copies.

How it stays correct:

* Inputs are copied into static tensors that the graph reads; the stacked losses it writes
  are cloned right after every replay, before any other graph can run.
* The learning rate lives in one device tensor per parameter group that the captured
  optimizer reads; it is refreshed from the (float) ``param_group["lr"]`` before every
  replay, so ordinary LR schedulers keep working.
* The optimizer must be built with ``capturable=True`` (AdamW keeps its step counts on the
  device then). Its state is created by the eager warm-up steps that every new shape runs
  before it is captured; parameters and optimizer state live outside the graphs, so all
  graphs update the same tensors.
* All graphs share one memory pool. That is safe because nothing a graph allocates is used
  after its replay ends (gradients are rewritten by each replay, outputs are cloned).
* Dropout draws from the CUDA generator, which graphs advance on every replay.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

__all__ = ["GraphedTrainStep"]


@dataclass
class _Capture:
    graph: torch.cuda.CUDAGraph
    inputs: dict  # name -> static tensor read by the graph
    output: torch.Tensor  # stacked [total loss, named losses...] written by the graph
    loss_names: list


class GraphedTrainStep:
    """Run training steps as CUDA graph replays, one graph per batch shape.

    Parameters
    ----------
    step_fn : callable
        ``step_fn(batch) -> (loss, losses)``: forward, backward, clipping and optimizer step
        of one batch (gradients must be ``None`` or zero on entry; the function must not
        synchronise with the host). Called eagerly for warm-up and once under capture.
    optimizer : torch.optim.Optimizer
        The optimizer ``step_fn`` steps, built with ``capturable=True``.
    device : torch.device or str
        The CUDA device.
    warmup : int, default=2
        Eager steps per new batch shape before it is captured (they train too).

    Notes
    -----
    A shape that cannot be captured (an operation that synchronises with the host, say)
    makes the object warn once and fall back to eager steps for the rest of training.
    """

    def __init__(self, step_fn, optimizer, device, warmup=2):
        self.step_fn = step_fn
        self.optimizer = optimizer
        self.device = torch.device(device)
        self.warmup = int(warmup)
        self.enabled = True
        self.n_replays = 0
        self._captures = {}
        self._seen = {}
        self._stream = torch.cuda.Stream(self.device)
        self._pool = torch.cuda.graph_pool_handle()
        self._lr = [torch.tensor(float(g["lr"]), dtype=torch.float32, device=self.device)
                    for g in optimizer.param_groups]

    @staticmethod
    def shape_key(batch):
        """Hashable description of a batch: names, shapes and dtypes of its tensors."""
        return tuple((k, tuple(v.shape), v.dtype) for k, v in sorted(batch.items())
                     if torch.is_tensor(v))

    @property
    def n_graphs(self):
        """Number of shapes captured so far."""
        return len(self._captures)

    def __call__(self, batch):
        """One training step on ``batch``; returns ``(loss, losses)`` (fresh tensors)."""
        key = self.shape_key(batch)
        capture = self._captures.get(key)
        if capture is None and self.enabled:
            seen = self._seen.get(key, 0)
            self._seen[key] = seen + 1
            if seen >= self.warmup:
                capture = self._capture(key, batch)
        if capture is None:
            return self._eager(batch)
        for name, static in capture.inputs.items():
            static.copy_(batch[name], non_blocking=True)
        for lr, group in zip(self._lr, self.optimizer.param_groups):
            lr.fill_(float(group["lr"]))
        capture.graph.replay()
        self.n_replays += 1
        values = capture.output.clone()
        return values[0], dict(zip(capture.loss_names, values[1:]))

    def _eager(self, batch):
        # on the capture stream, so that lazily created handles and workspaces belong to it
        self._stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self._stream):
            self.optimizer.zero_grad(set_to_none=True)
            loss, losses = self.step_fn(batch)
        torch.cuda.current_stream(self.device).wait_stream(self._stream)
        return loss, losses

    def _capture(self, key, batch):
        inputs = {name: value.clone() for name, value in batch.items() if torch.is_tensor(value)}
        graph = torch.cuda.CUDAGraph()
        floats = [group["lr"] for group in self.optimizer.param_groups]
        torch.cuda.synchronize(self.device)
        self.optimizer.zero_grad(set_to_none=True)  # the graph's backward writes fresh gradients
        try:
            for group, lr in zip(self.optimizer.param_groups, self._lr):
                group["lr"] = lr
            with torch.cuda.graph(graph, pool=self._pool, stream=self._stream):
                loss, losses = self.step_fn({**batch, **inputs})
                output = torch.stack([loss.float(), *(v.float() for v in losses.values())])
        except Exception as error:  # noqa: BLE001 - any capture failure means eager steps
            self.enabled = False
            warnings.warn(f"CUDA graph capture failed ({type(error).__name__}: {error}); "
                          "training goes on without graphs.", RuntimeWarning, stacklevel=3)
            return None
        finally:
            for group, lr in zip(self.optimizer.param_groups, floats):
                group["lr"] = lr
        capture = _Capture(graph, inputs, output, list(losses))
        self._captures[key] = capture
        return capture
