"""An exponential moving average (EMA) of a model's weights, kept beside the raw weights."""

from __future__ import annotations

import torch

__all__ = ["WeightAverage"]

EMA_WARMUP = 10  # the decay after n updates is at most (1 + n) / (EMA_WARMUP + n)


class WeightAverage:
    """EMA of ``params``, and swapping it in and out of them.

    After every optimizer step, :meth:`update` moves the average towards the weights:
    ``average += (1 - d) * (weights - average)`` with ``d = min(decay, (1 + n) / (10 + n))``
    at the n-th update, so that early on the average spans about the last tenth of the
    steps taken (it is not stuck at the initial weights on short fits) and later the last
    ``1 / (1 - decay)`` steps. :meth:`load_average` puts the average into ``params`` (the
    raw weights are kept aside) and :meth:`load_raw` puts the raw weights back; both copy in
    place, so a captured CUDA graph that reads ``params`` stays valid. Everything is foreach
    tensor operations with a host-side decay: no host synchronisation.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
        The weights to average (the trainable ones).
    decay : float
        In [0, 1): the EMA's decay per update.
    """

    def __init__(self, params, decay):
        self.params = [p for p in params]
        self.decay = float(decay)
        with torch.no_grad():
            self.average = [p.detach().clone() for p in self.params]
        self.raw = None  # the raw weights while the average is loaded
        self.n_updates = 0

    @property
    def loaded(self):
        """Whether ``params`` hold the average (the raw weights are set aside)."""
        return self.raw is not None

    def current_decay(self):
        """The decay of the next update."""
        n = self.n_updates + 1
        return min(self.decay, (1 + n) / (EMA_WARMUP + n))

    @torch.no_grad()
    def update(self):
        """Move the average towards the current (raw) weights."""
        if self.loaded:
            raise RuntimeError("the average is loaded; load_raw() before updating it.")
        weight = 1.0 - self.current_decay()
        self.n_updates += 1
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], weight)

    @torch.no_grad()
    def load_average(self):
        """Put the average into the parameters (no-op when it is there)."""
        if self.loaded:
            return
        self.raw = [p.detach().clone() for p in self.params]
        torch._foreach_copy_([p.detach() for p in self.params], self.average)

    @torch.no_grad()
    def load_raw(self):
        """Put the raw weights back into the parameters (no-op when they are there)."""
        if not self.loaded:
            return
        torch._foreach_copy_([p.detach() for p in self.params], self.raw)
        self.raw = None
