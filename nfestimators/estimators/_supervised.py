"""Finetuning machinery shared by the regressor and the classifier."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from ..data import SpikeTokenizer, TokenStore
from ..model.config import READOUTS
from ._base import NeuroformerBase

HEADS = {"regression": "head_reg", "classification": "head_cls"}
FREEZE_OPTIONS = ("none", "backbone")
COUNT_KNOTS = 16  # knots of the spike-count code of readout="mean+count"
COUNT_BINS = 5  # time bins per window of the per-neuron counts of readout="mean+binned"


def count_bins_for(n_bins):
    """Time bins of the ``"mean+binned"`` per-neuron counts for windows of ``n_bins`` bins:
    COUNT_BINS (coarse enough that a linear read of them generalises from a few hundred
    windows), or every bin of shorter windows."""
    return int(min(COUNT_BINS, n_bins))


class SupervisedNeuroformer(NeuroformerBase):
    """Adds ``pretrained`` / ``freeze`` / ``sclm_weight`` / ``readout`` to the shared base.

    The regressor and the classifier take exactly these parameters, so the ``__init__``
    lives here (sklearn reads the parameter names from its signature).
    """

    def __init__(self, *, pretrained=None, freeze="none", sclm_weight=0.0, readout="mean",
                 preset="small", n_layers=None, n_embd=None, n_head=None, dropout=None,
                 max_tokens=None, max_prev_tokens=None, behavior_inputs=None,
                 round_counts=False, max_epochs=30, batch_size=32, lr=1e-3, weight_decay=0.1,
                 warmup_fraction=0.1, validation_fraction=0.1, n_iter_no_change=5,
                 device="auto", precision="auto", compile=False, cuda_graphs="auto",
                 callbacks=None, random_state=None, verbose=0):
        self.pretrained = pretrained
        self.freeze = freeze
        self.sclm_weight = sclm_weight
        self.readout = readout
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
        self.cuda_graphs = cuda_graphs
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose


    def _pretrained_estimator(self):
        source = self.pretrained
        if source is None:
            return None
        if isinstance(source, (str, os.PathLike)):
            source = NeuroformerBase.load(source)
        elif isinstance(source, FrozenEstimator):
            source = source.estimator
        if not isinstance(source, NeuroformerBase):
            raise TypeError("pretrained must be a path to a saved estimator, or a fitted "
                            "NeuroformerPretrainer wrapped in sklearn.frozen.FrozenEstimator; "
                            f"got {type(self.pretrained).__name__}.")
        check_is_fitted(source, "model_")
        return source

    def _fit_supervised(self, X, targets, n_targets=0, n_classes=0):
        """Tokenize, build (or take over) the model, add the head, train. ``targets`` is a
        dict of store arrays (``y_reg`` or ``y_cls``)."""
        if self.freeze not in FREEZE_OPTIONS:
            raise ValueError(f"freeze must be one of {FREEZE_OPTIONS}; got {self.freeze!r}.")
        if float(self.sclm_weight) < 0:
            raise ValueError(f"sclm_weight must be >= 0; got {self.sclm_weight}.")
        if not isinstance(self.readout, str) or self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}; got {self.readout!r}.")
        self._fit_setup(X)
        source = self._pretrained_estimator()
        init_state = None
        if source is None:
            if self.freeze != "none":
                raise ValueError("freeze='backbone' needs pretrained weights (pretrained=...).")
            self.tokenizer_ = SpikeTokenizer(*self._token_budget(X)).fit(X)
            inputs = self._prepare_inputs(X, reset=True)
            config = self._model_config(X, n_targets=n_targets, n_classes=n_classes)
        else:
            self._take_over_inputs(source, X)
            inputs = self._prepare_inputs(X, reset=False)
            config = dataclasses.replace(source.model_.config, n_targets=n_targets,
                                         n_classes=n_classes, **self._dropout_override())
            # the backbone only: the head (of the new width, for the new readout) starts fresh
            init_state = {k: v for k, v in source.model_.state_dict().items()
                          if not k.startswith(tuple(HEADS.values()))}
        tokens = self.tokenizer_.transform(X)
        self.model_config_ = dataclasses.replace(config, **self._readout_config(tokens.length))
        store = TokenStore(tokens, self.device_, **inputs, **targets)
        objective = "regression" if n_targets else "classification"
        sclm = float(self.sclm_weight)
        weights = {objective: 1.0, "id": 0.6 * sclm, "dt": 0.4 * sclm}  # spike loss split as 4.1
        bprop = [objective] + (["id", "dt"] if sclm > 0 else [])
        trainable = (HEADS[objective],) if self.freeze == "backbone" else None
        return self._train(store, weights, bprop, init_state=init_state, trainable=trainable)

    def _readout_config(self, n_tokens):
        """Model config fields of the head's readout; with ``"mean+count"`` and
        ``"mean+binned"``, the knots of the count code at COUNT_KNOTS evenly spaced quantiles
        (0 to 1) of ``log(1 + n)`` over the training windows (``n_tokens``: spike tokens kept
        per window), repeated values once; with ``"mean+binned"``, the time bins of the
        per-neuron counts (:func:`count_bins_for`)."""
        if self.readout == "mean":
            return {"readout": "mean", "count_knots": ()}
        log_counts = np.log1p(np.asarray(n_tokens, dtype=np.float64))
        knots = np.unique(np.quantile(log_counts, np.linspace(0.0, 1.0, COUNT_KNOTS)))
        fields = {"readout": self.readout, "count_knots": tuple(float(k) for k in knots)}
        if self.readout == "mean+binned":
            n_bins = int(self.tokenizer_.n_bins_)
            fields.update(window_bins=n_bins, count_bins=count_bins_for(n_bins))
        return fields

    def _dropout_override(self):
        if self.dropout is None:
            return {}
        return {k: float(self.dropout) for k in (
            "dropout_attn", "dropout_resid", "dropout_embd", "dropout_frames")}

    def _take_over_inputs(self, source, X):
        """Use the pretrained vocabulary and input scalers; refuse data they do not fit."""
        tok = source.tokenizer_
        if X.n_neurons != tok.n_neurons_:
            raise ValueError(
                f"X has {X.n_neurons} neurons, but the pretrained model's vocabulary has "
                f"{tok.n_neurons_}; finetune on the same neurons as the pretraining data.")
        self.tokenizer_ = tok
        tok.check_windows(X)
        for name in ("behavior_inputs_", "behavior_mean_", "behavior_scale_", "frame_mean_",
                     "frame_scale_", "_behavior_index"):
            if hasattr(source, name):
                setattr(self, name, getattr(source, name))



SUPERVISED_PARAMETERS = """\
    pretrained : str, path or FrozenEstimator, optional
        Weights to start from: the path of a saved estimator (:meth:`save`), or a fitted
        :class:`NeuroformerPretrainer` wrapped in :class:`sklearn.frozen.FrozenEstimator`
        (so that ``clone``, ``GridSearchCV`` and ``cross_val_score`` start every fit from
        the same weights). The data must have the pretraining data's neurons. None trains
        from scratch.
    freeze : {"none", "backbone"}, default="none"
        ``"backbone"`` trains the new head only (linear probing of the pretrained model).
    sclm_weight : float, default=0.0
        Weight of the spike objective (next neuron id 0.6, next dt 0.4 of it) kept during
        finetuning next to the supervised loss.
    readout : {"mean", "mean+count"}, default="mean"
        What the linear head reads. ``"mean"`` (the paper's): the mean of the last layer
        over the window's SOS and spike positions. A mean does not say how many spikes
        were averaged, so a rate code (information in the number of spikes) is hard to
        read from it. ``"mean+count"`` adds a code of the window's spike count n: 16
        piecewise-linear interpolation weights of ``log(1 + n)`` between knots at quantiles
        of the training windows, through which the head learns any function of the count
        in a few epochs. With ``pretrained``, the backbone is loaded and the head is new
        either way."""