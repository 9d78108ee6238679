"""Finetuning machinery shared by the regressor and the classifier."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..model import UNIT_TABLES, grow_head_inputs, grow_unit_tables
from ..model.config import BINNED_READOUTS, DECODER_ONLY_BLOCKS
from ._base import LatentTransformer, NeuroformerBase
from ._params import SIZE_PARAMETERS

HEADS = {"regression": "head_reg", "classification": "head_cls"}
COUNT_KNOTS = 16  # knots of the spike-count code of readout="mean+count"
COUNT_BINS = 5  # time bins per window of the per-neuron counts of readout="mean+binned"
PAIR_UNITS = 48  # units (the most active) whose pairwise coincidences "mean+binned+pairs" reads


def count_bins_for(n_bins):
    """Time bins of the ``"mean+binned"`` per-neuron counts for windows of ``n_bins`` bins:
    COUNT_BINS (coarse enough that a linear read of them generalises from a few hundred
    windows), or every bin of shorter windows."""
    return int(min(COUNT_BINS, n_bins))


class SupervisedNeuroformer(LatentTransformer, NeuroformerBase, abstract=True):
    """Adds ``pretrained`` / ``freeze`` / ``sclm_weight`` / ``readout`` and the training
    regularisers (augmentation, weight averaging) to the shared base.

    The regressor takes exactly these parameters, the classifier these and
    ``label_smoothing``, so the ``__init__`` lives here (sklearn reads the parameter names
    from its signature).
    """

    # count inputs of the binned readouts that only the count decoder reads (the
    # NeuroformerConfig field): the regressor adds the binned counts, see its class
    _decoder_only_blocks = DECODER_ONLY_BLOCKS

    def __init__(self, *, pretrained=None, freeze="none", adapt="units+all", sclm_weight=1.0,
                 readout="mean+binned+pairs", count_decoder="blend", preset="small",
                 n_layers=None, n_embd=None, n_head=None, dropout=None, compat=(),
                 rate_prior=True, dt="auto", max_tokens=None, max_prev_tokens=None,
                 behavior_inputs=None,
                 round_counts=False, max_epochs=100, batch_size=32, lr=1e-3, weight_decay=0.1,
                 warmup_fraction=0.1, validation_fraction=0.1, n_iter_no_change=15,
                 augment_jitter=1, augment_neuron_dropout=0.0, ema_decay=0.99, device="auto",
                 precision="auto", compile=False, cuda_graphs="auto", callbacks=None,
                 random_state=None, verbose=0):
        self.pretrained = pretrained
        self.freeze = freeze
        self.adapt = adapt
        self.sclm_weight = sclm_weight
        self.readout = readout
        self.count_decoder = count_decoder
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
        self.augment_jitter = augment_jitter
        self.augment_neuron_dropout = augment_neuron_dropout
        self.ema_decay = ema_decay
        self.device = device
        self.precision = precision
        self.compile = compile
        self.cuda_graphs = cuda_graphs
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _n_features_out(self):
        """Latent width, for ``get_feature_names_out`` and ``set_output`` (sklearn's mixin)."""
        return self.model_.config.n_embd

    def transform(self, X):
        """Latent vector of every window: what the head reads from the network.

        The PAD-masked mean of the last layer over the window's tokens (the readout's
        ``pooled`` input; the count inputs of ``readout`` are not part of it). The backbone
        and the head are shared by every session the model knows, so a supervised fit on
        several sessions, or one adapted to a new session from such a model, places the
        windows of all its sessions in one latent space: a decoder fitted on one session's
        latents reads another's (``benchmarks/multisession.py``, the multi-session guide).

        Parameters
        ----------
        X : SpikeWindows or array of counts

        Returns
        -------
        Z : ndarray of shape (n_samples, n_embd), float32
        """
        return self._window_latents(self._check_X(X, reset=False))

    def _pretrained_estimator(self):
        """The fitted estimator of ``pretrained`` (None without one)."""
        source = self.pretrained
        if source is None:
            return None
        if isinstance(source, (str, os.PathLike)):
            source = NeuroformerBase.load(source)
        elif isinstance(source, FrozenEstimator):
            source = source.estimator
        elif isinstance(source, NeuroformerBase) and not hasattr(source, "model_"):
            raise ValueError(
                f"pretrained is an unfitted {type(source).__name__}: clone (and GridSearchCV, "
                "cross_val_score, which clone every parameter) copies an estimator without "
                "its fitted weights. Wrap the fitted pretrainer in "
                "sklearn.frozen.FrozenEstimator(pretrainer), or pass the path of "
                "pretrainer.save(path).")
        if not isinstance(source, NeuroformerBase):
            raise TypeError("pretrained must be a path to a saved estimator, or a fitted "
                            "NeuroformerPretrainer (or regressor, classifier) wrapped in "
                            "sklearn.frozen.FrozenEstimator; "
                            f"got {type(self.pretrained).__name__}.")
        check_is_fitted(source, "model_")
        self._check_size_settings(source)
        return source

    def _check_size_settings(self, source):
        """Refuse model-size parameters that differ from the pretrained model's: they would
        be ignored (the backbone is the pretrained one)."""
        defaults = type(self)().get_params(deep=False)
        given = self.get_params(deep=False)
        pretrained = source.get_params(deep=False)
        conflicts = [f"{name}={given[name]!r} (pretrained: {pretrained.get(name)!r})"
                     for name in SIZE_PARAMETERS
                     if given[name] != defaults[name] and given[name] != pretrained.get(name)]
        if conflicts:
            raise ValueError(f"with pretrained=..., the model size is the pretrained one's; "
                             f"{', '.join(conflicts)} cannot apply. Leave these at their "
                             "defaults, or train without pretrained.")

    def _fit_supervised(self, X, targets, source, n_targets=0, n_classes=0, labels=None):
        """Build (or take over) the inputs and model, add the head, train.

        ``X`` comes from ``_start_fit``; ``targets`` is a dict of store arrays (``y_reg`` or
        ``y_cls``); ``source`` is :meth:`_pretrained_estimator`; ``labels`` stratify the
        validation split. With ``pretrained`` and sessions it does not know, their unit rows
        are appended and trained first with the backbone frozen, then (``adapt="units+all"``,
        ``freeze="none"``) everything. A pretrained head is kept when
        :meth:`_keeps_head` says it decodes what this fit decodes.
        """
        init_state = None
        n_added = 0
        objective = "regression" if n_targets else "classification"
        keep_head = self._keeps_head(source)
        if source is None:
            if self.freeze != "none":
                raise ValueError("freeze='backbone' needs pretrained weights (pretrained=...).")
            X = self._fit_inputs(X)
            config = self._model_config(n_targets=n_targets, n_classes=n_classes)
        else:
            X, n_added = self._take_over_inputs(source, X)
            config = dataclasses.replace(source.model_.config, n_targets=n_targets,
                                         n_classes=n_classes, **self._dropout_fields(),
                                         n_neurons=self.tokenizer_.n_neurons_)
            # the backbone, and the head only when it is kept (else it starts fresh, of the
            # new width, for the new readout)
            init_state = {k: v for k, v in source.model_.state_dict().items()
                          if keep_head or not k.startswith(tuple(HEADS.values()))}
            if n_added:
                seed = int(check_random_state(self.random_state).randint(2**31))
                init_state = grow_unit_tables(
                    init_state, source.model_.config.n_neurons, n_added,
                    generator=torch.Generator().manual_seed(seed))
                if keep_head:  # its per-neuron count inputs grow with the new neurons
                    init_state = grow_head_inputs(init_state, f"{HEADS[objective]}.weight",
                                                  source.model_.config, config)
        store = self.input_encoder_.store(X, self.device_, targets)
        # kept head: the source's readout
        readout = {} if keep_head else self._readout_config(store.length, X)
        self.model_config_ = dataclasses.replace(config, **readout, **self._loss_config())
        init_state = self._with_rate_prior(init_state, X, n_added)
        sclm = float(self.sclm_weight)
        weights = {objective: 1.0, "id": 0.6 * sclm, "dt": 0.4 * sclm}  # spike loss split as 4.1
        bprop = [objective] + (["id", "dt"] if sclm > 0 else [])
        blend = objective if self._fits_count_decoder() and not keep_head else None
        self.count_decoder_ = None
        fit = dict(weights=weights, bprop=bprop, labels=labels, jitter=int(self.augment_jitter),
                   neuron_dropout=float(self.augment_neuron_dropout))
        if n_added:  # unit identification: the new rows and the head, the backbone frozen
            last = self.adapt == "units" or self.freeze == "backbone"
            n_old = self.tokenizer_.n_neurons_ - n_added
            rows = dict.fromkeys(UNIT_TABLES, (n_old, n_old + n_added))
            self._train(store, init_state=init_state, trainable=(HEADS[objective],),
                        trainable_rows=rows, blend=blend if last else None, **fit)
            self.units_history_ = self.history_
            if last:
                return self
            init_state = self.model_.state_dict()
        trainable = (HEADS[objective],) if self.freeze == "backbone" else None
        return self._train(store, init_state=init_state, trainable=trainable, blend=blend,
                           **fit)

    def _keeps_head(self, source):
        """Whether the head of the pretrained ``source`` is kept: ``source`` is an estimator
        of this class fitted with this ``readout`` on the same outputs
        (:meth:`_same_outputs`), so that its head decodes what this fit decodes (supervised
        pretraining, e.g. on other sessions' labels)."""
        return (isinstance(source, type(self)) and source.model_.config.readout == self.readout
                and self._same_outputs(source))

    def _same_outputs(self, source):
        """Whether the fitted ``source`` (of this class) has the outputs of this fit."""
        raise NotImplementedError

    def _with_rate_prior(self, init_state, X, n_added):
        """``init_state`` with the rate prior's ``unit_rates``: the training rates of ``X``
        from scratch; the pretrained ones, followed by the training rates of the ``n_added``
        new units, with ``pretrained``."""
        if init_state is None:
            return self._rate_prior_state(self.input_encoder_.training_rates(X), len(X))
        if n_added and "unit_rates" in init_state:
            added = self._rate_prior_state(self.input_encoder_.training_rates(X), len(X))
            old = init_state["unit_rates"]  # on the pretrained model's device
            init_state = {**init_state, "unit_rates": torch.cat(
                [old, added["unit_rates"][-n_added:].to(old.device)])}
        return init_state

    def _loss_config(self):
        """Model config fields of the supervised loss (the classifier's label smoothing)."""
        return {}

    def _fits_count_decoder(self):
        """Whether a fit blends the count decoder in: ``count_decoder="blend"`` and
        validation rows to choose it on (a kept pretrained head aside)."""
        return self.count_decoder == "blend" and bool(self.validation_fraction)

    def _readout_config(self, n_tokens, X):
        """Model config fields of the head's readout; with ``"mean+count"`` and the binned
        readouts, the knots of the count code at COUNT_KNOTS evenly spaced quantiles
        (0 to 1) of ``log(1 + n)`` over the training windows ``X`` (``n_tokens``: spike
        tokens kept per window), repeated values once; with the binned readouts, the time
        bins of the per-neuron counts (:func:`count_bins_for`) and the blocks only the
        count decoder reads (``_decoder_only_blocks``, or ``DECODER_ONLY_BLOCKS`` when no
        count decoder will be fitted: ``count_decoder="none"`` or no validation rows); with
        ``"mean+binned+pairs"``, the PAIR_UNITS units of highest training rate (ties: the
        lower id) as the units of the pairwise coincidences, in id order."""
        if self.readout == "mean":
            return {"readout": "mean", "count_knots": ()}
        log_counts = np.log1p(np.asarray(n_tokens, dtype=np.float64))
        knots = np.unique(np.quantile(log_counts, np.linspace(0.0, 1.0, COUNT_KNOTS)))
        fields = {"readout": self.readout, "count_knots": tuple(float(k) for k in knots)}
        if self.readout in BINNED_READOUTS:
            n_bins = int(self.tokenizer_.n_bins_)
            fields.update(window_bins=n_bins, count_bins=count_bins_for(n_bins),
                          decoder_only_blocks=(self._decoder_only_blocks
                                               if self._fits_count_decoder()
                                               else DECODER_ONLY_BLOCKS))
        if self.readout == "mean+binned+pairs":
            rates = self.input_encoder_.training_rates(X)
            busiest = np.argsort(-rates, kind="stable")[:PAIR_UNITS]
            fields["pair_units"] = tuple(int(u) for u in np.sort(busiest))
        return fields

    def _take_over_inputs(self, source, X):
        """Take the pretrained input encoder as a unit, with the sessions of ``X`` it does
        not know appended; refuse data it does not fit. Returns ``X`` in its time bins and
        the number of neurons added (0 when ``X`` holds known sessions only).

        Windows without a session table are the pretrained model's session when it was
        fitted on one session (or on one session table entry) of their neuron count, and a
        new session otherwise."""
        inputs = source.input_encoder_
        if self.dt not in (None, "auto") and not np.isclose(self.dt, inputs.tokenizer.dt_):
            raise ValueError(f"dt={self.dt} differs from the pretrained model's bins of "
                             f"{inputs.tokenizer.dt_:g} s; leave dt='auto' to use them.")
        n_added = 0
        same_neurons = X.session is None and X.n_neurons == inputs.tokenizer.n_neurons_
        if inputs.sessions is not None or not same_neurons:
            inputs, n_added = inputs.with_new_sessions(X.rebin(inputs.dt))
        self.input_encoder_ = inputs
        return inputs.check(X), n_added
