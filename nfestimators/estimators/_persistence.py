"""Saving, loading and pickling of fitted estimators.

``save`` writes a versioned ``torch.save`` file of plain values and CPU tensors only, so that
``load`` reads it with ``torch.load(weights_only=True)`` on any device and no code runs.
Values that are not plain (arrays, the input encoder, the history, a ``RandomState``) are
written as tagged dicts and rebuilt on load; a value of any other type is refused at save
time, so ``save`` never writes a file ``load`` refuses. The class named in a file is looked
up in :data:`ESTIMATOR_CLASSES`, which every estimator class joins when it is defined.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import torch
from skorch.history import History

from ..model import Neuroformer, NeuroformerConfig
from ._inputs import InputEncoder

FORMAT_VERSION = 1
ESTIMATOR_CLASSES = {}  # class name -> class, filled by NeuroformerBase.__init_subclass__
UNSAVED_PARAMETERS = ("pretrained", "callbacks")  # objects, not values: defaults on load
_PAYLOAD_KEYS = ("class", "params", "fitted", "model_config", "model_state")
_PLAIN = (type(None), bool, int, float, str)


def register(cls):
    """Make ``cls`` loadable by name."""
    ESTIMATOR_CLASSES[cls.__name__] = cls
    return cls


def _encode(value, name):
    """``value`` as plain values and tagged dicts (``torch.load(weights_only=True)``-safe)."""
    if isinstance(value, np.generic):  # before the plain types: np.float64 is a float
        return value.item()
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        return {k: _encode(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, History):
        return {"__history__": [{k: _encode(v, name) for k, v in row.items() if k != "batches"}
                                for row in value]}
    if isinstance(value, (list, tuple)):
        return type(value)(_encode(v, name) for v in value)
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, InputEncoder):
        return {"__inputs__": _encode(value.state(), name)}
    if isinstance(value, np.random.RandomState):
        kind, keys, position, has_gauss, gauss = value.get_state()
        return {"__random_state__": [kind, keys.tolist(), position, has_gauss, gauss]}
    if isinstance(value, torch.device):
        return str(value)
    raise TypeError(f"save() cannot store {name} of type {type(value).__name__}; set it to a "
                    "plain value (number, string, tuple) or pickle the estimator instead.")


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_decode(v) for v in value)
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        dtype = np.dtype(value["dtype"])
        return np.asarray(value["__ndarray__"], dtype=object if dtype.kind == "O" else dtype)
    if "__history__" in value:
        return History(value["__history__"])  # as after fit: history_[:, "valid_loss"] works
    if "__inputs__" in value:
        return InputEncoder.from_state(_decode(value["__inputs__"]))
    if "__random_state__" in value:
        kind, keys, position, has_gauss, gauss = value["__random_state__"]
        rng = np.random.RandomState()
        rng.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
        return rng
    return {k: _decode(v) for k, v in value.items()}


def fitted_state(est):
    """Every fitted attribute of ``est`` (names ending in ``_``) but the model, encoded."""
    return {k: _encode(v, k) for k, v in vars(est).items()
            if k.endswith("_") and not k.startswith("__") and k not in ("model_", "model_config_")}


def model_to_dict(model):
    return {"config": model.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def model_from_dict(d, source="the saved model"):
    # files saved before the spatial frame readout existed pooled the frames by their mean
    model = Neuroformer(NeuroformerConfig(**{"compat_clip_mean_frames": True, **d["config"]}))
    try:
        model.load_state_dict(d["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{source} has weights that do not fit its model configuration "
                         f"(missing, extra or mis-shaped tensors): {str(exc)[:300]}") from exc
    return model


def save(est, path):
    params = {k: v for k, v in est.get_params(deep=False).items()
              if k not in UNSAVED_PARAMETERS}
    payload = {
        "format": "nfestimators", "version": FORMAT_VERSION, "class": type(est).__name__,
        "params": _encode(params, "a parameter"), "fitted": fitted_state(est),
        "model_config": est.model_.config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in est.model_.state_dict().items()},
    }
    torch.save(payload, os.fspath(path))


def load(cls, path, base):
    """The estimator saved at ``path``; ``cls`` (a subclass of ``base``, or ``base`` for any
    estimator) is the class the caller asked for."""
    payload = _read_payload(path)
    klass = ESTIMATOR_CLASSES.get(payload["class"])
    if klass is None:
        raise ValueError(f"{path!r} holds an unknown estimator class {payload['class']!r}; "
                         f"known: {sorted(ESTIMATOR_CLASSES)}.")
    if cls is not base and not issubclass(klass, cls):
        raise ValueError(f"{path} holds a {payload['class']}, not a {cls.__name__}.")
    est = klass(**_decode(payload["params"]))
    for name, value in payload["fitted"].items():
        setattr(est, name, _decode(value))
    est.model_ = model_from_dict({"config": payload["model_config"],
                                  "state_dict": payload["model_state"]}, repr(os.fspath(path)))
    est.model_config_ = est.model_.config
    if not torch.cuda.is_available() and str(est.device_).startswith("cuda"):
        est.device_ = "cpu"
    return est


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
    missing = [key for key in _PAYLOAD_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{path!r} is an incomplete nfestimators file: it lacks {missing}.")
    return payload
