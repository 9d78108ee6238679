"""Self-supervised pretraining: next-spike prediction (SCLM) plus contrastive alignment."""

from __future__ import annotations

import numpy as np
from sklearn.base import _fit_context

from ..metrics import bits_per_spike_from_log_likelihood
from ..model.config import MODALITIES, behavior_column, behavior_modality
from ..model.losses import sclm_loss
from ._base import LatentTransformer, NeuroformerBase
from ._sampling import sample_windows

LOSS_WEIGHTS = {"id": 0.45, "dt": 0.30, "contrastive": 0.25}  # the paper's effective weights


class NeuroformerPretrainer(LatentTransformer, NeuroformerBase):
    """Pretrain Neuroformer on unlabelled spikes; transform windows into latents.

    ``fit(X)`` trains the transformer to predict every next spike of a window (its neuron
    and its time bin; the spike causal language modelling objective, SCLM) given the
    earlier spikes, the past window, and the stimulus and behaviour inputs that ``X``
    carries, plus a contrastive (InfoNCE) loss aligning the latents of the modalities in
    ``contrastive``. Loss weights are the paper's effective 0.45 (neuron id), 0.30 (dt)
    and 0.25 (contrastive).

    Parameters
    ----------
{parameters}

    Attributes
    ----------
{fitted_attributes}
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
                 n_head=None, dropout=None, compat=(), rate_prior=True, dt="auto",
                 max_tokens=None, max_prev_tokens=None, behavior_inputs=None,
                 round_counts=False, max_epochs=100, batch_size=32, lr=1e-3, weight_decay=0.1,
                 warmup_fraction=0.1, validation_fraction=0.1, n_iter_no_change=5, ema_decay=0.99,
                 device="auto",
                 precision="auto", compile=False, cuda_graphs="auto", strategy="single",
                 callbacks=None, random_state=None, verbose=0):
        self.contrastive = contrastive
        self.preset = preset
        self.n_layers = n_layers
        self.n_embd = n_embd
        self.n_head = n_head
        self.dropout = dropout
        self.compat = compat
        self.rate_prior = rate_prior
        self.dt = dt
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
        self.ema_decay = ema_decay
        self.device = device
        self.precision = precision
        self.compile = compile
        self.cuda_graphs = cuda_graphs
        self.strategy = strategy
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Pretrain on the windows ``X`` (SpikeWindows or a count array); ``y`` is ignored.

        Returns
        -------
        self : NeuroformerPretrainer
        """
        X = self._fit_inputs(self._start_fit(X))
        self.model_config_ = self._model_config(contrastive=self._contrastive_modalities(X))
        self.baseline_rates_ = self.input_encoder_.training_rates(X)
        store = self.input_encoder_.store(X, self.device_)
        return self._train(store, LOSS_WEIGHTS, bprop=None,
                           init_state=self._rate_prior_state(self.baseline_rates_, len(X)))

    def _training_strategy(self):
        return self.strategy

    def _contrastive_names(self):
        """The ``contrastive`` parameter as a tuple of names (None for "auto")."""
        if isinstance(self.contrastive, str):
            return None if self.contrastive == "auto" else (self.contrastive,)
        return tuple(self.contrastive)

    def _behavior_input_names(self, X):
        """``behavior_inputs`` plus the behaviour variables named in ``contrastive``."""
        names = super()._behavior_input_names(X)
        aligned = [n for n in self._contrastive_names() or () if n not in MODALITIES]
        if X.behavior is not None:
            names += [n for n in aligned if n in X.behavior_names and n not in names]
        return names

    def _contrastive_modalities(self, X):
        """Model modality names: a behaviour variable becomes ``"behavior:<column>"``."""
        names = self._contrastive_names()
        if names is None:
            return ("id", "frames") if X.frame_index is not None else ("id",)
        inputs = list(self.behavior_inputs_)
        modalities = []
        for name in names:
            if name == "behavior" and not inputs:
                raise ValueError("contrastive names 'behavior', but no behaviour inputs are "
                                 "used; set behavior_inputs.")
            if name == "frames" and X.frame_index is None:
                raise ValueError("contrastive names 'frames', but X carries no stimulus frames.")
            if name in inputs and name not in MODALITIES:
                name = behavior_modality(inputs.index(name))
            elif name not in MODALITIES:
                known = list(X.behavior_names or ())
                raise ValueError(f"unknown contrastive modality {name!r}; use 'id', 'frames', "
                                 f"'behavior' or a behaviour variable of X ({known}).")
            if name not in modalities:
                modalities.append(name)
        return tuple(modalities)

    @property
    def _n_features_out(self):
        """Latent width, for ``get_feature_names_out`` and ``set_output`` (sklearn's mixin)."""
        proj = self.model_.clip_proj
        return self.model_.config.n_embd if proj is None else proj.out_features

    def _modality_name(self, modality):
        """The user's name of a model modality: ``"behavior:<j>"`` -> the variable's name."""
        column = behavior_column(modality)
        return modality if column is None else self.behavior_inputs_[column]

    def transform(self, X, modality="id"):
        """Latent vector of every window.

        With contrastive alignment, the projected, L2-normalised latent of ``modality``,
        one of the aligned modalities (``"id"``: spikes, ``"frames"``, ``"behavior"`` or a
        behaviour variable name), of size ``clip_embd``; latents of aligned modalities can
        be compared by cosine similarity (see :func:`nfestimators.metrics.retrieval_accuracy`).
        Without contrastive alignment, the PAD-masked mean of the last layer over the
        window's tokens (``"id"`` only).

        Parameters
        ----------
        X : SpikeWindows or array of counts
        modality : str, default="id"

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim), float32
        """
        X = self._check_X(X, reset=False)
        projected = self.model_.clip_proj is not None
        keys = {"id": "id"}
        if projected:
            keys = {self._modality_name(m): m for m in self.model_.config.contrastive}
        if modality not in keys:
            raise ValueError(f"modality {modality!r} has no latent in this model; choose from "
                             f"{list(keys)}.")
        return self._window_latents(X, keys[modality] if projected else None)

    def sample(self, X, *, past="true", temperature=1.0, top_k=None, top_p=None,
               temperature_dt=None, top_k_dt=None, top_p_dt=None, greedy=False,
               random_state=None, batch_size=None):
        """Generate the spikes of every window of ``X``, token by token.

        Each window's spikes are sampled from the model given its context: the past
        window and the stimulus and behaviour inputs of ``X``. Decoding uses a KV cache
        and runs many windows at once.

        Parameters
        ----------
        X : SpikeWindows
            Windows to generate (their current-window spikes are not used).
        past : {"true", "generated"}, default="true"
            ``"true"``: the past window comes from the recording. ``"generated"``: closed
            loop; windows are generated trial by trial in time order, and each window's
            past is the model's own output for the windows before it (the first window of
            a trial keeps its recorded past). Needs back-to-back windows.
        temperature, temperature_dt : float, default=1.0
            Softmax temperature of the neuron-id and dt draws (``temperature_dt=None``:
            same as ``temperature``).
        top_k, top_k_dt : int, optional
            Keep the k most likely tokens (None: no filter; ``*_dt=None``: as id).
        top_p, top_p_dt : float, optional
            Nucleus sampling threshold (None: no filter; ``*_dt=None``: as id).
        greedy : bool, default=False
            Take the most likely token at every step.
        random_state : int, RandomState instance or None
            Seeds the draws (a private torch.Generator; global RNGs are untouched).
        batch_size : int, optional
            Windows decoded together (all of a chunk when None); does not change the result.

        Returns
        -------
        SpikeWindows
            The windows of ``X`` with generated current-window spikes; ``to_counts()``
            gives the raster and ``to_spike_times()`` absolute spike times (window start +
            dt offset).
        """
        X = self._check_X(X, reset=False)
        sampling = dict(temperature=temperature, temperature_dt=temperature_dt, top_k=top_k,
                        top_k_dt=top_k_dt, top_p=top_p, top_p_dt=top_p_dt, greedy=greedy)
        return sample_windows(self, X, past=past, sampling=sampling, random_state=random_state,
                              batch_size=batch_size)

    def score(self, X, y=None):
        """Log-likelihood of the spikes of ``X`` in bits per spike, relative to a
        homogeneous Poisson model of each neuron at its training rate (higher is better;
        0 means no better than the baseline).

        The model's log-likelihood of a window is that of its token sequence (each spike's
        neuron and bin, then the end of the window); the baseline's is that of the same
        spikes' counts. Spikes dropped by the token budget are left out of both.
        """
        X = self._check_X(X, reset=False)
        rates = np.maximum(self.baseline_rates_, 1.0 / (2 * len(X) * X.n_bins + 1))
        log_rates = np.log(rates)
        n_bins = X.n_bins
        cumulative_rate = np.concatenate([[0.0], np.cumsum(rates)])
        config = self.model_.config

        def total_rates(batch):
            """Summed rate of the neurons of every row's session (all neurons: one session)."""
            if "unit_range" not in batch:
                return cumulative_rate[-1]
            lo, hi = batch["unit_range"].cpu().numpy().T
            return cumulative_rate[hi] - cumulative_rate[lo]

        def log_likelihoods(out, batch):
            # the training loss, per token: minus the log-likelihood of each next token
            nll = (sclm_loss(out["logits_id"], batch["target_id"], config.pad_id, "none")
                   + sclm_loss(out["logits_dt"], batch["target_dt"], config.pad_dt, "none"))
            model_ll = -nll.sum(1).cpu().numpy()
            ids = batch["target_id"].cpu().numpy()
            dts = batch["target_dt"].cpu().numpy()
            is_spike = ids < config.n_neurons
            n_spikes = is_spike.sum(1)
            base = np.where(is_spike, log_rates[np.where(is_spike, ids, 0)], 0.0).sum(1)
            base -= n_bins * total_rates(batch) + _log_factorial_of_repeats(ids, dts, is_spike)
            return np.stack([model_ll, base, n_spikes], axis=1)

        totals = self._forward_all(X, log_likelihoods, next_tokens=True).sum(0)
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

