"""Self-supervised pretraining: next-spike prediction (SCLM) plus contrastive alignment."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from sklearn.base import TransformerMixin

from ..data import SpikeTokenizer, TokenStore
from ..metrics import bits_per_spike_from_log_likelihood
from ._base import NeuroformerBase
from ._docs import COMMON_PARAMETERS, FITTED_ATTRIBUTES

MODALITIES = ("id", "frames", "behavior")


class NeuroformerPretrainer(TransformerMixin, NeuroformerBase):
    __doc__ = f"""Pretrain Neuroformer on unlabelled spikes; transform windows into latents.

    ``fit(X)`` trains the transformer to predict every next spike of a window (its neuron
    and its time bin; the spike causal language modelling objective, SCLM) given the
    earlier spikes, the past window, and the stimulus and behaviour inputs that ``X``
    carries, plus a contrastive (InfoNCE) loss aligning the latents of the modalities in
    ``contrastive``. Loss weights are the paper's effective 0.45 (neuron id), 0.30 (dt)
    and 0.25 (contrastive).

    Parameters
    ----------
    contrastive : "auto" or tuple of str, default="auto"
        Modalities to align: ``"id"`` (spikes), ``"frames"`` (stimulus), ``"behavior"``
        or the name of a behaviour input (all behaviour inputs form one modality).
        ``"auto"`` aligns spikes with frames when ``X`` carries frames, else nothing.
{COMMON_PARAMETERS.format(max_epochs=20, lr=1e-3, n_iter_no_change=None)}

    Attributes
    ----------
{FITTED_ATTRIBUTES}
    baseline_rates_ : ndarray of shape (n_neurons,)
        Mean spikes per bin of each neuron in the training data (the Poisson baseline of
        :meth:`score`).

    Examples
    --------
    >>> from nfestimators import NeuroformerPretrainer
    >>> from nfestimators.datasets import make_spiking_data
    >>> data = make_spiking_data(n_neurons=20, duration=20.0, random_state=0)
    >>> pre = NeuroformerPretrainer(preset="tiny", max_epochs=1, random_state=0).fit(data.windows)
    >>> pre.transform(data.windows).shape
    (400, 32)
    """

    def __init__(self, *, contrastive="auto", preset="small", n_layers=None, n_embd=None,
                 n_head=None, dropout=None, max_tokens=None, max_prev_tokens=None,
                 behavior_inputs=None, round_counts=False, max_epochs=20, batch_size=32,
                 lr=1e-3, weight_decay=0.1, warmup_fraction=0.1, validation_fraction=0.1,
                 n_iter_no_change=None, device="auto", precision="auto", compile=False,
                 callbacks=None, random_state=None, verbose=0):
        self.contrastive = contrastive
        self.preset = preset
        self.n_layers = n_layers
        self.n_embd = n_embd
        self.n_head = n_head
        self.dropout = dropout
        self.max_tokens = max_tokens
        self.max_prev_tokens = max_prev_tokens
        self.behavior_inputs = behavior_inputs
        self.round_counts = round_counts
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.precision = precision
        self.compile = compile
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Pretrain on the windows ``X`` (SpikeWindows or a count array); ``y`` is ignored.

        Returns
        -------
        self : NeuroformerPretrainer
        """
        X = self._windows(X, reset=True)
        self._fit_setup(X)
        self.tokenizer_ = SpikeTokenizer(*self._token_budget(X)).fit(X)
        inputs = self._prepare_inputs(X, reset=True)
        contrastive = self._contrastive_modalities(X)
        self.model_config_ = self._model_config(X, contrastive=contrastive)
        n_bins_seen = len(X) * X.n_bins
        self.baseline_rates_ = np.bincount(X.neuron, minlength=X.n_neurons) / n_bins_seen
        store = TokenStore(self.tokenizer_.transform(X), self.device_, **inputs)
        weights = {"id": 0.45, "dt": 0.30, "contrastive": 0.25}
        return self._train(store, weights, loss_bprop=None)

    def _contrastive_modalities(self, X):
        if self.contrastive == "auto":
            return ("id", "frames") if X.frame_index is not None else ("id",)
        names = (self.contrastive,) if isinstance(self.contrastive, str) else tuple(self.contrastive)
        inputs = [X.behavior_names[i] for i in self._behavior_index]
        modalities = []
        for name in names:
            if name in inputs or name == "behavior":
                if not inputs:
                    raise ValueError(f"contrastive names {name!r}, but no behaviour inputs are "
                                     "used; set behavior_inputs.")
                name = "behavior"
            elif name == "frames" and X.frame_index is None:
                raise ValueError("contrastive names 'frames', but X carries no stimulus frames.")
            elif name not in MODALITIES:
                raise ValueError(f"unknown contrastive modality {name!r}; use 'id', 'frames', "
                                 f"'behavior' or a behaviour input name ({inputs}).")
            if name not in modalities:
                modalities.append(name)
        return tuple(modalities)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # latents are always float32
        return tags

    def transform(self, X, modality="id"):
        """Latent vector of every window.

        With contrastive alignment, the projected, L2-normalised latent of ``modality``
        (``"id"``: spikes, ``"frames"``, ``"behavior"``), of size ``clip_embd``; without
        it, the PAD-masked mean of the last layer over the window's tokens (``"id"`` only).

        Parameters
        ----------
        X : SpikeWindows or array of counts
        modality : str, default="id"

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim), float32
        """
        X = self._windows(X, reset=False)
        projected = self.model_.clip_proj is not None
        available = self.model_config_.contrastive if projected else ("id",)
        if modality not in available:
            raise ValueError(f"modality {modality!r} has no latent in this model; choose from "
                             f"{list(available)}.")

        def latent(out, batch):
            z = out["latents"][modality] if projected else out["pooled"]
            return z.float().cpu().numpy()

        return self._forward_all(X, latent).astype(np.float32)

    def score(self, X, y=None):
        """Log-likelihood of the spikes of ``X`` in bits per spike, relative to a
        homogeneous Poisson model of each neuron at its training rate (higher is better;
        0 means no better than the baseline).

        The model's log-likelihood of a window is that of its token sequence (each spike's
        neuron and bin, then the end of the window); the baseline's is that of the same
        spikes' counts. Spikes dropped by the token budget are left out of both.
        """
        X = self._windows(X, reset=False)
        rates = np.maximum(self.baseline_rates_, 1.0 / (2 * len(X) * X.n_bins + 1))
        log_rates = np.log(rates)
        n_bins = X.n_bins
        total_rate = rates.sum()

        def log_likelihoods(out, batch):
            ll_id = -F.cross_entropy(out["logits_id"].float().transpose(1, 2), batch["target_id"],
                                     ignore_index=self.model_config_.pad_id, reduction="none")
            ll_dt = -F.cross_entropy(out["logits_dt"].float().transpose(1, 2), batch["target_dt"],
                                     ignore_index=self.model_config_.pad_dt, reduction="none")
            model_ll = (ll_id + ll_dt).sum(1).cpu().numpy()
            ids = batch["target_id"].cpu().numpy()
            dts = batch["target_dt"].cpu().numpy()
            is_spike = ids < self.tokenizer_.n_neurons_
            n_spikes = is_spike.sum(1)
            base = np.where(is_spike, log_rates[np.where(is_spike, ids, 0)], 0.0).sum(1)
            base -= n_bins * total_rate + _log_factorial_of_repeats(ids, dts, is_spike)
            return np.stack([model_ll, base, n_spikes], axis=1)

        totals = self._forward_all(X, log_likelihoods).sum(0)
        return float(bits_per_spike_from_log_likelihood(totals[0], totals[1], totals[2]))


def _log_factorial_of_repeats(ids, dts, is_spike):
    """Sum over windows' (neuron, bin) groups of log(count!): spikes of one neuron in one bin
    are adjacent in token order, so the k-th repeat in a run adds log(k)."""
    same = np.zeros_like(is_spike)
    same[:, 1:] = (ids[:, 1:] == ids[:, :-1]) & (dts[:, 1:] == dts[:, :-1]) & is_spike[:, 1:]
    # position inside the run of equal tokens, counted from 1
    flat_same = same.ravel()
    index = np.arange(flat_same.size)
    run_start = np.maximum.accumulate(np.where(~flat_same, index, 0))
    position = (index - run_start + 1).reshape(same.shape)
    return np.where(same, np.log(position), 0.0).sum(1)

