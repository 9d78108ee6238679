"""Shared sklearn logic of the three Neuroformer estimators."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.history import History
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from ..data import SpikeTokenizer, SpikeWindows, TokenStore, as_windows
from ..data.coerce import check_not_spike_table
from ..model import Neuroformer, NeuroformerConfig, make_config
from ..training import (EpochProgressBar, LossCombiner, NeuroformerNet, TokenBatches,
                        device_context, warmup_cosine)
from ..training import distributed

FORMAT_VERSION = 1
GRAPH_PAD_MULTIPLE = 32  # sequence lengths rounded up to this when training with CUDA graphs
_INFERENCE_CHUNK = 8192  # windows tokenized and moved to the device at once at predict time


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


def _rng_fork(device):
    """Isolate torch's global RNG: seeding inside leaves the caller's state untouched."""
    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    return torch.random.fork_rng(devices=devices)


def _standardize_fit(values):
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale < 1e-12] = 1.0
    return mean, scale


class NeuroformerBase(BaseEstimator):
    """Common machinery: input checks, tokenization, model building, training, inference,
    persistence. Subclasses declare their parameters in ``__init__`` (sklearn rules) and
    define the supervised part."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # spike counts
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------ input checks
    def _windows(self, X, *, reset):
        """Validate ``X`` and return it as SpikeWindows (count arrays are converted)."""
        if not reset:
            check_is_fitted(self)
        if not isinstance(X, SpikeWindows):
            check_not_spike_table(X)
            X = check_array(X, allow_nd=True, dtype="numeric", input_name="X")
            if X.ndim not in (2, 3):
                raise ValueError(f"X must be 2-D (n_samples, n_neurons) or 3-D (n_samples, "
                                 f"n_neurons, n_bins); got shape {X.shape}.")
            if self.round_counts:
                X = np.rint(X)
            X = as_windows(X)
        if reset:
            self.n_features_in_ = X.n_neurons
        elif X.n_neurons != self.n_features_in_:
            raise ValueError(f"X has {X.n_neurons} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input "
                             f"(neurons of the fitted data).")
        if len(X) == 0:
            raise ValueError("X holds no windows.")
        return X

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

    @staticmethod
    def _behavior_columns(X, names):
        """Indices of the behaviour columns ``names`` in ``X``."""
        if not names:
            return []
        if X.behavior is None:
            raise ValueError("the model was fitted with behaviour inputs; X carries none.")
        missing = [n for n in names if n not in X.behavior_names]
        if missing:
            raise ValueError(f"behaviour inputs {missing} are not in X.behavior_names "
                             f"{list(X.behavior_names)}.")
        return [X.behavior_names.index(n) for n in names]

    # ---------------------------------------------------------------- building
    def _prepare_inputs(self, X, reset):
        """Fit (``reset``) or check the tokenizer and input scalers; returns store kwargs."""
        if reset:
            self.behavior_inputs_ = tuple(self._behavior_input_names(X))
            self._behavior_index = self._behavior_columns(X, self.behavior_inputs_)
            if self._behavior_index:
                self.behavior_mean_, self.behavior_scale_ = _standardize_fit(
                    X.behavior[:, self._behavior_index])
            if X.frame_index is not None:
                seen = X.stimulus[np.unique(X.frame_index)]
                self.frame_mean_, self.frame_scale_ = float(seen.mean()), float(seen.std() or 1.0)
        kwargs = {}
        if getattr(self, "behavior_mean_", None) is not None:
            cols = self._behavior_columns(X, self.behavior_inputs_)
            kwargs["behavior"] = (X.behavior[:, cols] - self.behavior_mean_) / self.behavior_scale_
        if getattr(self, "frame_mean_", None) is not None:
            if X.frame_index is None:
                raise ValueError("the model was fitted with stimulus frames; X carries none.")
            kwargs["stimulus"] = X.stimulus
            kwargs["frame_index"] = X.frame_index
            kwargs["frame_norm"] = (self.frame_mean_, self.frame_scale_)
        return kwargs

    def _token_budget(self, X):
        """Block sizes: the given ones, or enough for every window of the training data."""
        def auto(given, n_spikes):
            if given is not None:
                return int(given)
            # room for windows a quarter fuller than any seen in fit, in multiples of 8
            return -(-int(1.25 * max(n_spikes.max(), 1) + 2) // 8) * 8
        return auto(self.max_tokens, X.n_spikes()), auto(self.max_prev_tokens, X.n_spikes(past=True))

    def _model_config(self, X, n_targets=0, n_classes=0, contrastive=("id",)):
        overrides = {}
        if self.n_layers is not None:
            overrides.update({k: int(self.n_layers) for k in (
                "n_layers_state", "n_layers_history", "n_layers_stimulus", "n_layers_behavior")})
        for name in ("n_embd", "n_head"):
            if getattr(self, name) is not None:
                overrides[name] = int(getattr(self, name))
        if self.dropout is not None:
            overrides.update({k: float(self.dropout) for k in (
                "dropout_attn", "dropout_resid", "dropout_embd", "dropout_frames")})
        frames_shape = None
        if X.frame_index is not None:
            frames_shape = (X.n_frames, *np.shape(X.stimulus)[1:])
            overrides["frame_kernel"] = _frame_kernel(frames_shape)
        tok = self.tokenizer_
        return make_config(
            self.preset, tok.n_neurons_, n_dt=tok.n_dt_, frames_shape=frames_shape,
            contrastive=contrastive, block_size=int(tok.max_tokens),
            block_size_prev=int(tok.max_prev_tokens),
            n_behavior_inputs=len(getattr(self, "_behavior_index", [])),
            n_targets=n_targets, n_classes=n_classes, **overrides)

    # ---------------------------------------------------------------- training
    def _train(self, store, loss_weights, loss_bprop, init_state=None, trainable=None):
        """Train a new model of ``self.model_config_`` on ``store`` with the skorch engine,
        starting from ``init_state`` (missing keys stay freshly initialised) and updating only
        parameters whose names start with a prefix in ``trainable`` (all when None).
        Sets ``model_``, ``history_`` and ``n_epochs_``."""
        strategy = getattr(self, "strategy", "single")
        rank, world_size = distributed.rank_and_world(strategy)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        rows = rng.permutation(len(store))
        if strategy == "ddp":  # one seed and split for all ranks, whatever random_state
            seed, rows = distributed.broadcast_from_rank0(seed, rows, device=self.device_)
        n_valid = 0
        if self.validation_fraction:
            n_valid = int(round(float(self.validation_fraction) * len(store)))
            n_valid = min(max(n_valid, 1), len(store) - 1) if len(store) > 1 else 0
        valid_rows, train_rows = rows[:n_valid], rows[n_valid:]
        batch_size = int(min(self.batch_size, len(train_rows)))
        if self.cuda_graphs_:
            store.pad_multiple = GRAPH_PAD_MULTIPLE  # few shapes, few graphs
        steps = int(self.max_epochs) * math.ceil(len(train_rows) / batch_size)
        with _rng_fork(self.device_):
            torch.manual_seed(seed)
            model = Neuroformer(self.model_config_)
            if init_state is not None:
                missing, unexpected = model.load_state_dict(init_state, strict=False)
                if unexpected:
                    raise ValueError(f"pretrained weights do not fit this model: {unexpected[:5]}")
            if trainable is not None:
                for name, param in model.named_parameters():
                    param.requires_grad_(name.startswith(tuple(trainable)))
            if strategy == "ddp":
                torch.manual_seed(seed + rank)  # distinct dropout masks on every rank
            callbacks = [
                ("schedule", LRScheduler(
                    policy=torch.optim.lr_scheduler.LambdaLR, step_every="batch",
                    lr_lambda=warmup_cosine(steps, int(self.warmup_fraction * steps)))),
            ]
            if n_valid and self.n_iter_no_change:
                callbacks.append(("early_stopping", EarlyStopping(
                    monitor="valid_loss", patience=int(self.n_iter_no_change), load_best=True)))
            if self.verbose and rank == 0:
                callbacks.append(("progress", EpochProgressBar(type(self).__name__)))
            callbacks += list(self.callbacks or [])
            cuda = self.device_.startswith("cuda")
            net = NeuroformerNet(
                model, criterion=LossCombiner, criterion__weights=loss_weights,
                criterion__bprop=loss_bprop, optimizer=torch.optim.AdamW,
                optimizer__betas=(0.9, 0.95), optimizer__fused=cuda, lr=float(self.lr),
                weight_decay=float(self.weight_decay), max_epochs=int(self.max_epochs),
                batch_size=batch_size, callbacks=callbacks, device=self.device_,
                precision=self.precision_, compile=bool(self.compile), train_split=None,
                cuda_graphs=self.cuda_graphs_,
                verbose=0, strategy=strategy)
            shard = {"rank": rank, "world_size": world_size}
            train = TokenBatches(store, train_rows, batch_size, shuffle=True, seed=seed, **shard)
            valid = (TokenBatches(store, valid_rows, max(batch_size, 256), **shard)
                     if n_valid else None)
            net.fit((train, valid))
        self.model_ = distributed.unwrap(net.module_)
        self.history_ = net.history
        self.n_epochs_ = len(net.history)
        return self

    def _fit_setup(self, X):
        self.device_ = resolve_device(self.device)
        if getattr(self, "strategy", "single") == "ddp" and self.device_ == "cuda":
            # one GPU per process: torchrun's LOCAL_RANK, else the current device
            local_rank = os.environ.get("LOCAL_RANK", torch.cuda.current_device())
            self.device_ = f"cuda:{int(local_rank)}"
        distributed.rank_and_world(getattr(self, "strategy", "single"))  # checks the strategy
        precision = self.precision
        if precision == "auto":
            precision = "bf16" if self.device_.startswith("cuda") else "fp32"
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16'; got {precision!r}.")
        self.precision_ = precision
        graphs = self.cuda_graphs
        if graphs not in ("auto", True, False):
            raise ValueError(f"cuda_graphs must be 'auto', True or False; got {graphs!r}.")
        single_cuda = (self.device_.startswith("cuda")
                       and getattr(self, "strategy", "single") == "single")
        if graphs not in ("auto", False) and not single_cuda:
            raise ValueError("cuda_graphs=True needs training on one CUDA device "
                             f"(device_={self.device_!r}); use 'auto' or False.")
        self.cuda_graphs_ = (bool(single_cuda and not self.compile) if graphs == "auto"
                             else bool(graphs))
        for name in ("max_epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}.")

    # --------------------------------------------------------------- inference
    def _run_device(self):
        """Device for inference: the one asked for, or the CPU when a GPU-trained model is
        used on a machine without one."""
        device = self.device
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            device = "cpu"
        device = resolve_device(device)
        self.model_.to(device)
        return device

    def _autocast(self, device):
        return device_context(device, getattr(self, "precision_", "fp32"))

    def _forward_all(self, X, collect, batch_size=None):
        """Run the model over every window of ``X`` in eval mode, bounded memory.

        ``collect(out, batch)`` returns a numpy array per batch; rows are concatenated.
        """
        device = self._run_device()
        batch_size = int(batch_size or max(int(self.batch_size), 256))
        was_training = self.model_.training
        self.model_.eval()
        parts = []
        try:
            for start in range(0, len(X), _INFERENCE_CHUNK):
                chunk = X[start:start + _INFERENCE_CHUNK]
                store = TokenStore(self.tokenizer_.transform(chunk), device,
                                   **self._prepare_inputs(chunk, reset=False))
                rows = np.arange(len(chunk))
                with torch.no_grad(), self._autocast(device):
                    for i in range(0, len(rows), batch_size):
                        batch = store.batch(rows[i:i + batch_size])
                        parts.append(collect(self.model_(batch), batch))
        finally:
            self.model_.train(was_training)
        return np.concatenate(parts)

    # ------------------------------------------------------------- persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = {"config": self.model_.config.to_dict(),
                               "state_dict": {k: v.detach().cpu().clone()
                                              for k, v in self.model_.state_dict().items()}}
        return state

    def __setstate__(self, state):
        model = state.get("model_")
        if isinstance(model, dict):
            state["model_"] = _model_from_dict(model)
        self.__dict__.update(state)

    def save(self, path):
        """Save the fitted estimator to ``path`` (a versioned ``torch.save`` file).

        The file holds plain values and CPU tensors only, so :meth:`load` reads it with
        ``torch.load(weights_only=True)`` on any device.
        """
        check_is_fitted(self)
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in ("pretrained", "callbacks")}
        payload = {
            "format": "nfestimators", "version": FORMAT_VERSION, "class": type(self).__name__,
            "params": _plain(params), "fitted": _plain(self._fitted_state()),
            "model_config": self.model_.config.to_dict(),
            "model_state": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
        }
        torch.save(payload, os.fspath(path))

    @classmethod
    def load(cls, path):
        """Load an estimator saved with :meth:`save` (on the CPU unless told otherwise)."""
        payload = _read_payload(path)
        from . import ESTIMATORS  # the class named in the file

        klass = ESTIMATORS[payload["class"]]
        if cls is not NeuroformerBase and not issubclass(klass, cls):
            raise ValueError(f"{path} holds a {payload['class']}, not a {cls.__name__}.")
        est = klass(**payload["params"])
        est._restore_fitted(payload["fitted"])
        est.model_ = _model_from_dict({"config": payload["model_config"],
                                       "state_dict": payload["model_state"]})
        est.model_config_ = est.model_.config
        return est

    def _fitted_state(self):
        tok = self.tokenizer_
        state = {
            "n_features_in_": self.n_features_in_, "device_": self.device_,
            "precision_": self.precision_, "n_epochs_": self.n_epochs_,
            "tokenizer": {**tok.get_params(), **{k: v for k, v in vars(tok).items()
                                                 if k.endswith("_")}},
            "history_": [{k: v for k, v in row.items() if k != "batches"}
                         for row in self.history_],
            "_behavior_index": list(getattr(self, "_behavior_index", [])),
        }
        for name in ("behavior_inputs_", "behavior_mean_", "behavior_scale_", "frame_mean_",
                     "frame_scale_", "baseline_rates_", "y_mean_", "y_scale_", "classes_", "y_ndim_"):
            if getattr(self, name, None) is not None:
                state[name] = getattr(self, name)
        return state

    def _restore_fitted(self, state):
        state = dict(state)
        tok_state = state.pop("tokenizer")
        tok = SpikeTokenizer(max_tokens=tok_state.pop("max_tokens"),
                             max_prev_tokens=tok_state.pop("max_prev_tokens"))
        for k, v in tok_state.items():
            setattr(tok, k, v)
        self.tokenizer_ = tok
        for k, v in state.items():
            if k in ("behavior_mean_", "behavior_scale_", "baseline_rates_", "y_mean_",
                     "y_scale_", "classes_"):
                v = np.asarray(v)
            elif k == "history_":
                v = History(v)  # as after fit: history_[:, "valid_loss"] works
            setattr(self, k, v)
        if not torch.cuda.is_available() and str(self.device_).startswith("cuda"):
            self.device_ = "cpu"


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


def _model_from_dict(d):
    model = Neuroformer(NeuroformerConfig(**d["config"]))
    model.load_state_dict(d["state_dict"])
    return model


def _read_payload(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no saved estimator at {path!r}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError) as exc:
        raise ValueError(f"{path!r} is not an nfestimators file (torch.load with "
                         f"weights_only=True failed: {exc.__class__.__name__}).") from exc
    if not isinstance(payload, dict) or payload.get("format") != "nfestimators":
        raise ValueError(f"{path!r} is not an nfestimators file.")
    if payload.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path!r} was written by a newer nfestimators (format "
                         f"{payload['version']} > {FORMAT_VERSION}).")
    return payload


def _plain(value):
    """Convert numpy values to plain Python containers (``weights_only`` loadable)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value

