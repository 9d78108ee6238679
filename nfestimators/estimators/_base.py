"""Shared sklearn glue of the three Neuroformer estimators.

The parts live in their own modules: the parameter table (``_params``), the fitted input
side (``_inputs``), the training setup (``_training``) and persistence (``_persistence``).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ..data import SpikeWindows, as_windows
from ..data.coerce import check_not_spike_table
from ..model import compat_fields, eval_mode, make_config
from ..training import device_context
from . import _persistence, _training
from ._inputs import AUTO_TOKEN_CAP, InputEncoder
from ._params import FITTED_ATTRIBUTES, parameter_constraints, parameter_docs

_INFERENCE_CHUNK = 8192  # windows tokenized and moved to the device at once at predict time
# in a class docstring: the table's entries of its parameters, the common fitted attributes
PARAMETERS_PLACEHOLDER, ATTRIBUTES_PLACEHOLDER = "{parameters}", "{fitted_attributes}"
DROPOUT_FIELDS = ("dropout_attn", "dropout_resid", "dropout_embd", "dropout_frames")
LAYER_FIELDS = ("n_layers_state", "n_layers_history", "n_layers_stimulus", "n_layers_behavior")


def _frame_kernel(frames_shape, preferred=(3, 5, 5)):
    """Conv3d patch size (= stride) of the frame tokenizer for clips of ``(F, H, W)``.

    Per axis, among sizes near the paper's (3, 5, 5) (from ``preferred - 2`` to
    ``preferred + 3``, at most the axis length), the one leaving the fewest pixels outside
    the last whole patch (non-overlapping patches drop the remainder), then the closest to
    the preferred size, then the smaller. (3, 5, 5) itself for the paper's 3 x 30 x 100 clips;
    (3, 4, 4) for 3 x 8 x 12, where (3, 5, 5) would drop 3 of 8 rows.
    """
    kernel = []
    for size, pref in zip(frames_shape, preferred):
        candidates = range(max(1, pref - 2), min(size, pref + 3) + 1)
        kernel.append(min(candidates, key=lambda k: (size % k, abs(k - pref), k), default=size))
    return tuple(kernel)


class NeuroformerBase(BaseEstimator):
    """Common machinery: input checks, fitted-state reset, model configuration, inference,
    persistence. Subclasses declare their parameters in ``__init__`` (sklearn rules; their
    constraints and docs come from the table of ``_params``) and define the fit."""

    _parameter_constraints: dict = {}

    def __init_subclass__(cls, abstract=False, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            cls._parameter_constraints = parameter_constraints(cls)
        doc = vars(cls).get("__doc__")
        if doc and PARAMETERS_PLACEHOLDER in doc:
            cls.__doc__ = doc.replace(PARAMETERS_PLACEHOLDER, parameter_docs(cls)).replace(
                ATTRIBUTES_PLACEHOLDER, FITTED_ATTRIBUTES)
        if not abstract:
            _persistence.register(cls)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # spike counts
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fitted inputs
    @property
    def tokenizer_(self):
        """The fitted :class:`~nfestimators.SpikeTokenizer` (part of ``input_encoder_``)."""
        return self.input_encoder_.tokenizer

    @property
    def behavior_inputs_(self):
        """Behaviour variables fed to the model (part of ``input_encoder_``)."""
        return self.input_encoder_.behavior_inputs

    def _training_strategy(self):
        """``"single"``; estimators that train data-parallel override it."""
        return "single"

    # ------------------------------------------------------------------- input checks
    def _check_X(self, X, *, reset):
        """Validate ``X``: SpikeWindows (count arrays are converted; a list of SpikeWindows is
        one session each, joined by :meth:`SpikeWindows.from_sessions`), with the neurons of
        the fit (of every session, for multi-session models) and, after fit, its time bins,
        window geometry and inputs (``input_encoder_``)."""
        if not reset:
            check_is_fitted(self)
        if isinstance(X, (list, tuple)) and X and all(isinstance(p, SpikeWindows) for p in X):
            X = SpikeWindows.from_sessions(X)  # one SpikeWindows per session
        if not isinstance(X, SpikeWindows):
            check_not_spike_table(X)
            X = check_array(X, allow_nd=True, dtype="numeric", input_name="X")
            if X.ndim not in (2, 3):
                raise ValueError(f"X must be 2-D (n_samples, n_neurons) or 3-D (n_samples, "
                                 f"n_neurons, n_bins); got shape {X.shape}.")
            if self.round_counts:
                X = np.rint(X)
            X = as_windows(X)
        if len(X) == 0:
            raise ValueError("X holds no windows.")
        if reset:
            self.n_features_in_ = X.n_neurons
            return X
        inputs = self.input_encoder_
        expected = self.n_features_in_
        if inputs.sessions is not None:  # neurons checked per session
            if X.session is not None or inputs.default_session is None:
                return inputs.check(X)
            expected = inputs.default_session_n_neurons
        if X.n_neurons != expected:
            raise ValueError(f"X has {X.n_neurons} features, but {type(self).__name__} is "
                             f"expecting {expected} features as input "
                             f"(neurons of the fitted data).")
        return self.input_encoder_.check(X)

    def _behavior_input_names(self, X):
        """Names of the behaviour variables of ``X`` to feed to the model (``behavior_inputs``)."""
        names = self.behavior_inputs
        if names is None:
            return []
        if X.behavior is None:
            raise ValueError("behavior_inputs were given, but X carries no behaviour values.")
        if isinstance(names, str):
            return list(X.behavior_names) if names == "all" else [names]
        return list(dict.fromkeys(names))

    # --------------------------------------------------------------------- fit steps
    def _start_fit(self, X):
        """First steps of every fit (after the parameter check): forget the previous fit,
        check ``X``, resolve the devices. Returns ``X`` as SpikeWindows."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)  # a fit starts from the parameters alone
        X = self._check_X(X, reset=True)
        _training.training_devices(self, self._training_strategy())
        if self.preset == "paper" and self.device_ == "cpu":
            warnings.warn("preset='paper' is sized for a GPU: on a CPU it trains at about 15 "
                          "windows/s (hours for a typical fit); use preset='small' there.",
                          UserWarning, stacklevel=3)
        return X

    def _fit_inputs(self, X):
        """Fit ``input_encoder_`` on the training windows; returns them in its time bins."""
        self.input_encoder_ = InputEncoder.fit(
            X, dt=self.dt, behavior_inputs=self._behavior_input_names(X),
            max_tokens=self.max_tokens, max_prev_tokens=self.max_prev_tokens,
            token_cap=AUTO_TOKEN_CAP[self.preset])
        return X.rebin(self.input_encoder_.dt)

    def _dropout_fields(self):
        """Config fields of the ``dropout`` override (none when it is None)."""
        return {} if self.dropout is None else dict.fromkeys(DROPOUT_FIELDS, float(self.dropout))

    def _model_config(self, n_targets=0, n_classes=0, contrastive=("id",)):
        """The model configuration of the parameters and ``input_encoder_``."""
        overrides = {**self._dropout_fields(), **compat_fields(self.compat)}
        if self.n_layers is not None:
            overrides.update(dict.fromkeys(LAYER_FIELDS, int(self.n_layers)))
        for name in ("n_embd", "n_head"):
            if getattr(self, name) is not None:
                overrides[name] = int(getattr(self, name))
        inputs = self.input_encoder_
        if inputs.frames_shape is not None:
            overrides["frame_kernel"] = _frame_kernel(inputs.frames_shape)
        tok = inputs.tokenizer
        return make_config(
            self.preset, tok.n_neurons_, n_dt=tok.n_dt_, frames_shape=inputs.frames_shape,
            contrastive=contrastive, block_size=int(tok.max_tokens),
            block_size_prev=int(tok.max_prev_tokens),
            n_behavior_inputs=inputs.n_behavior_inputs, n_targets=n_targets,
            n_classes=n_classes, rate_prior=bool(self.rate_prior), window_bins=int(tok.n_bins_),
            **overrides)

    def _rate_prior_state(self, rates, n_windows):
        """The initial ``unit_rates`` of a model with ``rate_prior``, from the training
        ``rates`` (spikes per bin of every unit) of ``n_windows`` windows, as a partial
        state dict ({} without the prior). A neuron silent in training gets half a spike
        in all its windows' bins, as the baseline of :meth:`NeuroformerPretrainer.score`."""
        if not self.model_config_.rate_prior:
            return {}
        floor = 1.0 / (2 * n_windows * self.tokenizer_.n_bins_ + 1)
        return {"unit_rates": torch.as_tensor(np.maximum(rates, floor), dtype=torch.float32)}

    @property
    def sessions_(self):
        """Keys of the recording sessions the model knows, in the order of their rows in
        the unit vocabulary (None for a one-session model; part of ``input_encoder_``)."""
        return self.input_encoder_.sessions

    def _train(self, store, weights, bprop, **kwargs):
        """One skorch fit of ``model_config_`` on ``store`` (see ``_training.train``)."""
        return _training.train(self, store, weights=weights, bprop=bprop,
                               strategy=self._training_strategy(), **kwargs)

    # ---------------------------------------------------------------------- inference
    def _model_to_inference_device(self):
        """Move ``model_`` to the device for inference (see ``_training.inference_device``)."""
        device = _training.inference_device(self.device)
        self.model_.to(device)
        return device

    def _autocast(self, device):
        return device_context(device, self.precision_)

    def _forward_all(self, X, collect, batch_size=None, *, next_tokens=False):
        """Run the model over every window of ``X`` (checked) in eval mode, bounded memory.

        ``collect(out, batch)`` returns a numpy array per batch; rows are concatenated in the
        order of ``X``. The model computes its outputs only: no loss. With ``next_tokens`` the
        batches carry the next-token targets and the outputs the next-token logits (what a
        likelihood needs); without, neither is built (the inference path of ``predict`` and
        ``transform``).

        The windows are batched in :func:`inference_order`, so that a batch pads little and a
        window's output does not depend on the order of ``X``.
        """
        device = self._model_to_inference_device()
        batch_size = int(batch_size or max(int(self.batch_size), 256))
        order = inference_order(X)
        X = X[order]
        parts = []
        progress = window_progress(type(self).__name__, len(X)) if self.verbose else None
        with progress or contextlib.nullcontext(), eval_mode(self.model_), torch.no_grad(), self._autocast(device):
            for start in range(0, len(X), _INFERENCE_CHUNK):
                store = self.input_encoder_.store(X[start:start + _INFERENCE_CHUNK], device)
                for i in range(0, len(store), batch_size):
                    rows = np.arange(i, min(i + batch_size, len(store)))
                    batch = store.batch(rows, targets=next_tokens)
                    out = self.model_(batch, token_logits=next_tokens)
                    parts.append(collect(out, batch))
                    if progress is not None:
                        progress.update(len(rows))
        outputs = np.concatenate(parts)
        unsorted = np.empty_like(outputs)
        unsorted[order] = outputs
        return unsorted

    # -------------------------------------------------------------------- persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = _persistence.model_to_dict(self.model_)
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), dict):
            state["model_"] = _persistence.model_from_dict(state["model_"])
        self.__dict__.update(state)

    def save(self, path):
        """Save the fitted estimator to ``path`` (a versioned ``torch.save`` file).

        The file holds plain values and CPU tensors only, so :meth:`load` reads it with
        ``torch.load(weights_only=True)`` on any device. ``pretrained`` and ``callbacks``
        are not saved (the loaded estimator has their defaults); a ``RandomState``
        ``random_state`` is saved with its state.
        """
        check_is_fitted(self)
        _persistence.save(self, path)

    @classmethod
    def load(cls, path):
        """Load an estimator saved with :meth:`save` (on the CPU unless told otherwise)."""
        return _persistence.load(cls, path, NeuroformerBase)


class LatentTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``transform`` glue of the estimators with latents: float32 outputs (kept under
    ``set_output``), feature names ``<class name lowercase>0 ..``, and the forward pass that
    collects one latent per window."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # latents are always float32
        return tags

    def _window_latents(self, X, modality=None):
        """Latent of every window of ``X`` (checked), float32: the model's ``pooled`` output
        (the PAD-masked mean of the last layer) or, with ``modality``, the projected
        contrastive latent of that model modality."""

        def latent(out, batch):
            z = out["pooled"] if modality is None else out["latents"][modality]
            return z.float().cpu().numpy()

        return self._forward_all(X, latent).astype(np.float32)


def _spikes_hash(neuron, bins, offsets):
    """A 64-bit hash of every window's set of (neuron, bin) events (CSR ``offsets``)."""
    with np.errstate(over="ignore"):
        x = (neuron.astype(np.uint64) * np.uint64(1_000_003) + bins.astype(np.uint64)
             + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(29)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        total = np.concatenate([[np.uint64(0)], np.cumsum(x, dtype=np.uint64)])
        return total[offsets[1:]] - total[offsets[:-1]]


def inference_order(X):
    """Order of the windows of ``X`` for inference batches: by spike count (current, then
    past window), so that a batch holds windows of about one length and pads little, then by
    a hash of their spikes, so that the same windows in any order land in the same places of
    the same batches (float results depend on a row's place in a batch, by rounding)."""
    content = _spikes_hash(X.neuron, X.bin, X.offsets) ^ (
        _spikes_hash(X.prev_neuron, X.prev_bin, X.prev_offsets) >> np.uint64(1))
    return np.lexsort((content, X.n_spikes(past=True), X.n_spikes()))


def window_progress(name, n_windows):
    """A tqdm bar over the windows of an inference pass (``verbose``)."""
    from tqdm.auto import tqdm

    return tqdm(total=n_windows, unit="window", desc=name, leave=False)
