"""Unit tables of multi-session models: one concatenated table of every session's neurons.

A multi-session Neuroformer keeps one row per neuron of every session in its id vocabulary:
session ``s`` owns the rows ``offset[s] .. offset[s] + n_neurons[s] - 1`` of the token
embedding (``tok_emb``) and of the id head (``head_id``), then come SOS, EOS and PAD. Every
other weight is shared. A step gathers the rows of all sessions of its batch with one
embedding lookup, and the id logits of other sessions' neurons are masked
(:func:`~nfestimators.model.heads.other_sessions_units`). A new session appends rows to the
two tables (:func:`grow_unit_tables`); the backbone is untouched.
"""

from __future__ import annotations

import torch

UNIT_TABLES = ("tok_emb.weight", "head_id.weight")  # (n_neurons + 3, E): rows of the id vocabulary
N_SPECIAL_IDS = 3  # SOS, EOS, PAD after the neurons


def grow_unit_tables(state, n_neurons, n_added, *, noise=0.02, generator=None):
    """``state`` (a state dict) with ``n_added`` neuron rows appended to its unit tables.

    Parameters
    ----------
    state : dict of str to Tensor
        Weights of a model with ``n_neurons`` neurons in its id vocabulary.
    n_neurons, n_added : int
        Neurons of the model, and neurons of the new session(s).
    noise : float, default=0.02
        Standard deviation of the noise added to the new rows (the model's init scale).
    generator : torch.Generator, optional
        Source of the noise.

    Returns
    -------
    dict
        The same tensors (shared, not copied) except the unit tables: old neuron rows, then
        the new rows, each the mean of the old neuron rows (a typical unit to start from)
        plus noise so that the new units differ, then the special ids' rows.

    Examples
    --------
    >>> state = {"tok_emb.weight": torch.zeros(5, 4), "head_id.weight": torch.ones(5, 4),
    ...          "pos_emb": torch.zeros(1, 8, 4)}
    >>> grown = grow_unit_tables(state, 2, 3)
    >>> grown["tok_emb.weight"].shape, grown["pos_emb"] is state["pos_emb"]
    (torch.Size([8, 4]), True)
    """
    grown = dict(state)
    for name in UNIT_TABLES:
        table = state[name]  # (n_neurons + 3, E)
        units, special = table[:n_neurons], table[n_neurons:]
        # drawn on the generator's device (the CPU), then moved to the table's
        noise_rows = torch.randn((n_added, table.shape[1]), generator=generator,
                                 dtype=torch.float32).to(table.device)
        added = units.float().mean(0, keepdim=True) + noise * noise_rows
        grown[name] = torch.cat([units, added.to(table.dtype), special])
    return grown


def grow_head_inputs(state, name, old_config, new_config):
    """``state`` with the linear weight ``name`` of a supervised head of ``old_config`` widened
    to the count inputs of ``new_config``, the same readout with more neurons; the new
    neurons' input columns are 0.

    The per-neuron blocks of the count inputs (``count_input_blocks``: the neuron counts,
    the binned counts, neuron after neuron) grow with the neurons of a new session, which
    come after the known ones: every block of the old head is copied to the start of its
    block in the new one. At zero, the head reads the new neurons only once trained.

    Examples
    --------
    >>> from nfestimators.model import NeuroformerConfig
    >>> old = NeuroformerConfig(n_neurons=2, n_dt=4, n_embd=8, n_head=2, readout="mean+binned",
    ...                         count_knots=(0.0, 1.0), count_bins=2, window_bins=4)
    >>> new = NeuroformerConfig(**{**old.__dict__, "n_neurons": 3})
    >>> state = {"head_reg.weight": torch.ones(1, 8 + old.n_count_inputs)}
    >>> grown = grow_head_inputs(state, "head_reg.weight", old, new)["head_reg.weight"]
    >>> grown.shape, grown[0, 8:].tolist()   # code 2, neuron counts 2 + 1, binned 4 + 2
    (torch.Size([1, 19]), [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    """
    weight, offset = state[name], old_config.n_embd
    grown = weight.new_zeros(weight.shape[0], offset + new_config.n_count_inputs)
    grown[:, :offset] = weight[:, :offset]
    old_blocks = old_config.count_input_blocks()
    for block, columns in new_config.count_input_blocks().items():
        old = old_blocks[block]
        start = offset + columns.start
        grown[:, start:start + old.stop - old.start] = weight[:, offset + old.start:
                                                              offset + old.stop]
    return {**state, name: grown}
