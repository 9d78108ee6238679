"""Neuroformer in plain torch: configuration, presets, model, losses.

This subpackage depends on torch, numpy and the standard library only.
"""

from .config import (PRESETS, NeuroformerConfig, behavior_column, behavior_modality,
                     compat_fields, make_config)
from .neuroformer import Neuroformer
from .sessions import UNIT_TABLES, grow_head_inputs, grow_unit_tables
from .state import Context, DecodeState, eval_mode


def build_model(preset, n_neurons, *, n_dt, frames_shape=None, contrastive=("id",), **overrides):
    """Build a :class:`Neuroformer` from a named preset.

    Parameters
    ----------
    preset : {"paper", "small", "tiny"}
        Name of an entry of :data:`PRESETS`.
    n_neurons : int
        Number of neurons (id vocabulary ``n_neurons + 3``).
    n_dt : int
        Number of dt values (dt vocabulary ``n_dt + 3``).
    frames_shape : tuple of int or None
        ``(F, H, W)`` of the stimulus clip; None builds no stimulus path.
    contrastive : tuple of str
        Modalities to align among ``"id"``, ``"frames"``, ``"behavior"``.
    **overrides
        Any other :class:`NeuroformerConfig` field.

    Returns
    -------
    Neuroformer

    Examples
    --------
    >>> model = build_model("tiny", n_neurons=10, n_dt=6)
    >>> model.config.n_embd
    32
    """
    config = make_config(
        preset, n_neurons, n_dt=n_dt, frames_shape=frames_shape, contrastive=contrastive, **overrides
    )
    return Neuroformer(config)


__all__ = ["PRESETS", "Context", "DecodeState",
           "Neuroformer", "NeuroformerConfig", "UNIT_TABLES", "behavior_column",
           "behavior_modality", "build_model", "compat_fields", "eval_mode",
           "grow_head_inputs", "grow_unit_tables", "make_config"]
