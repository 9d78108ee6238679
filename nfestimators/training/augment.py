"""Random perturbations of training batches: spike-time jitter and neuron dropout.

Both act on the token blocks of a batch dict (``[SOS, spikes..., EOS, PAD...]`` rows, see
:class:`~nfestimators.data.TokenLayout`), on the batch's device, all windows at once, and
leave the batch's shapes as they were, so a CUDA-graph step sees the shapes it was captured
for (the perturbation runs before the graph's input copy). The rows come back in the
layout's canonical order (time bin, then neuron ascending), which the model's next-token
masks assume, with the next-token targets rebuilt from the perturbed inputs.
"""

from __future__ import annotations

import torch

__all__ = ["SpikeAugmenter"]


class SpikeAugmenter:
    """Jitter the spikes' time bins and drop whole neurons from training windows.

    Parameters
    ----------
    config : NeuroformerConfig
        The model's configuration (vocabulary and special tokens).
    n_bins, n_prev_bins : int
        Bins of the current and the past window: a jittered spike stays in ``0 .. n_bins - 1``.
    jitter : int, default=0
        Every spike's bin moves by an integer drawn uniformly from ``-jitter .. jitter``
        (clipped to the window); 0 leaves the times alone.
    neuron_dropout : float, default=0.0
        Every neuron of every window is silenced with this probability: all of its spikes,
        in the current and the past window, are removed (the row is compacted and padded).
    seed : int, optional
        Seed of the augmenter's own generator (torch's global generator is not used).
    device : str or torch.device, default="cpu"
        Device of the batches.

    Examples
    --------
    >>> import torch
    >>> from nfestimators.model import make_config
    >>> config = make_config("tiny", n_neurons=3, n_dt=5)
    >>> augment = SpikeAugmenter(config, n_bins=4, n_prev_bins=0, jitter=1, seed=0)
    >>> batch = {"id": torch.tensor([[3, 0, 2, 1]]), "dt": torch.tensor([[0, 1, 1, 2]]),
    ...          "target_id": torch.tensor([[0, 2, 1, 4]]),
    ...          "target_dt": torch.tensor([[1, 1, 2, 6]])}
    >>> sorted(augment(batch)) == sorted(batch)
    True
    """

    def __init__(self, config, n_bins, n_prev_bins, *, jitter=0, neuron_dropout=0.0, seed=None,
                 device="cpu"):
        self.config = config
        self.n_bins = int(n_bins)
        self.n_prev_bins = int(n_prev_bins)
        self.jitter = int(jitter)
        self.neuron_dropout = float(neuron_dropout)
        self.generator = torch.Generator(device=torch.device(device))
        if seed is not None:
            self.generator.manual_seed(int(seed))

    @property
    def active(self):
        """Whether the augmenter changes anything."""
        return self.jitter > 0 or self.neuron_dropout > 0

    def __call__(self, batch):
        """A new batch dict: ``batch`` with its current (inputs and next-token targets) and
        past blocks perturbed; every other entry is the same tensor."""
        ids = torch.cat([batch["id"], batch["target_id"][:, -1:]], dim=1)  # the whole block
        dts = torch.cat([batch["dt"], batch["target_dt"][:, -1:]], dim=1)
        dropped = None
        if self.neuron_dropout > 0:
            dropped = torch.rand((ids.shape[0], self.config.n_neurons), device=ids.device,
                                 generator=self.generator) < self.neuron_dropout
        ids, dts = self.perturb_block(ids, dts, self.n_bins, dropped)
        out = dict(batch, id=ids[:, :-1], dt=dts[:, :-1], target_id=ids[:, 1:],
                   target_dt=dts[:, 1:])
        if "id_prev" in batch and self.n_prev_bins:
            out["id_prev"], out["dt_prev"] = self.perturb_block(
                batch["id_prev"], batch["dt_prev"], self.n_prev_bins, dropped)
        return out

    def perturb_block(self, ids, dts, n_bins, dropped=None):
        """Jitter and neuron dropout of one block ``(B, L)`` of id and dt tokens.

        ``dropped`` (B, n_neurons) marks the neurons removed from each row. Returns the new
        ``(ids, dts)``, same shapes: ``[SOS, kept spikes in token order, EOS, PAD...]``.
        """
        c = self.config
        spike = ids < c.n_neurons  # (B, L): neither SOS, EOS nor PAD
        if self.jitter > 0:
            shift = torch.randint(-self.jitter, self.jitter + 1, dts.shape, device=dts.device,
                                  generator=self.generator)
            dts = torch.where(spike, (dts + shift).clamp(0, n_bins - 1), dts)
        keep = spike
        if dropped is not None:
            keep = spike & ~dropped.gather(1, ids.clamp(max=c.n_neurons - 1))
        # the canonical order: SOS first, kept spikes by (bin, neuron), then everything else
        key = torch.where(keep, dts * c.n_neurons + ids, torch.iinfo(torch.int64).max)
        key[:, 0] = -1  # the SOS position
        order = torch.sort(key, dim=1, stable=True).indices
        ids, dts = ids.gather(1, order), dts.gather(1, order)
        n_kept = keep.sum(1, keepdim=True)  # (B, 1)
        col = torch.arange(ids.shape[1], device=ids.device)  # (L,)
        is_spike = (col >= 1) & (col <= n_kept)  # (B, L)
        eos = col == n_kept + 1
        first = col == 0
        ids = torch.where(is_spike | first, ids,
                          torch.where(eos, c.eos_id, c.pad_id).to(ids.dtype))
        dts = torch.where(is_spike | first, dts,
                          torch.where(eos, c.eos_dt, c.pad_dt).to(dts.dtype))
        return ids, dts
