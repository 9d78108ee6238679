"""The token layout of Neuroformer (spec 2.3), defined once.

Id tokens are the neuron indices ``0 .. n_neurons - 1`` followed by SOS, EOS and PAD; dt
tokens are the bin offsets ``0 .. n_dt - 1`` followed by their own SOS, EOS and PAD. A block
is ``[SOS, e_1 .. e_m, EOS, PAD ...]`` with the SOS position carrying the dt token 0. The
tokenizer, the closed-loop sampler and the model configuration all take these numbers from
here (the model receives them as plain integers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import offsets_from_lengths

__all__ = ["TokenLayout"]


@dataclass(frozen=True)
class TokenLayout:
    """Vocabularies and block filling for ``n_neurons`` neurons and ``n_dt`` dt values.

    Parameters
    ----------
    n_neurons : int
        Number of neurons (id values).
    n_dt : int
        Number of dt values (bin offsets ``0 .. n_dt - 1``).

    Examples
    --------
    >>> layout = TokenLayout(n_neurons=10, n_dt=6)
    >>> layout.id_sos, layout.id_eos, layout.id_pad, layout.dt_eos, layout.id_vocab_size
    (10, 11, 12, 7, 13)
    >>> ids, dt_tokens, kept, dropped = layout.fill_block(
    ...     np.array([7, 2, 9]), np.array([1, 3, 3]), np.array([0, 3]), capacity=6)
    >>> ids.tolist(), dt_tokens.tolist()
    ([[10, 7, 2, 9, 11, 12]], [[0, 1, 3, 3, 7, 8]])
    """

    n_neurons: int
    n_dt: int

    @classmethod
    def for_windows(cls, n_neurons, n_bins, n_prev_bins):
        """The layout of windows of ``n_bins`` current and ``n_prev_bins`` past bins."""
        return cls(int(n_neurons), max(int(n_bins), int(n_prev_bins)) + 1)

    @property
    def id_sos(self):
        return self.n_neurons

    @property
    def id_eos(self):
        return self.n_neurons + 1

    @property
    def id_pad(self):
        return self.n_neurons + 2

    @property
    def dt_sos(self):
        return self.n_dt

    @property
    def dt_eos(self):
        return self.n_dt + 1

    @property
    def dt_pad(self):
        return self.n_dt + 2

    @property
    def id_vocab_size(self):
        return self.n_neurons + 3

    @property
    def dt_vocab_size(self):
        return self.n_dt + 3

    def fill_block(self, neuron, dt_token, offsets, capacity):
        """Place the latest events of every window into a padded block, all windows at once.

        Parameters
        ----------
        neuron, dt_token : ndarray of shape (n_events,)
            Events in token order (time, then neuron), window after window.
        offsets : ndarray of shape (n_windows + 1,)
            CSR offsets: window ``w`` owns events ``offsets[w]:offsets[w + 1]``.
        capacity : int
            Row length: ``[SOS, kept events, EOS, PAD ...]``, so at most ``capacity - 2``
            events are kept (the latest ones).

        Returns
        -------
        ids, dt_tokens : ndarray of int32, shape (n_windows, capacity)
        kept, dropped : ndarray of int64, shape (n_windows,)
            Events kept and dropped per window.
        """
        offsets = np.asarray(offsets, dtype=np.int64)
        n = len(offsets) - 1
        n_events = np.diff(offsets)
        keep = np.minimum(n_events, capacity - 2)
        ids = np.full((n, capacity), self.id_pad, dtype=np.int32)
        dt_tokens = np.full((n, capacity), self.dt_pad, dtype=np.int32)
        ids[:, 0] = self.id_sos
        dt_tokens[:, 0] = 0  # the SOS position carries the "0 s" dt token (spec 2.3)
        window = np.repeat(np.arange(n), n_events)
        # the token order (time bin, then neuron) whatever order the events came in: the
        # model's next-token heads give other orders probability 0
        neuron, dt_token = np.asarray(neuron), np.asarray(dt_token)
        order = np.lexsort((neuron, dt_token, window))
        neuron, dt_token = neuron[order], dt_token[order]
        rank = np.arange(len(neuron)) - np.repeat(offsets[1:] - keep, n_events)
        kept = rank >= 0
        rows, cols = window[kept], 1 + rank[kept]
        ids[rows, cols] = neuron[kept]
        dt_tokens[rows, cols] = dt_token[kept]
        ids[np.arange(n), 1 + keep] = self.id_eos
        dt_tokens[np.arange(n), 1 + keep] = self.dt_eos
        return ids, dt_tokens, keep.astype(np.int64), (n_events - keep).astype(np.int64)

    def events_from_blocks(self, ids, dt_tokens):
        """Flat (neuron, dt_token, offsets) of the spike tokens in padded blocks.

        SOS, EOS and PAD are dropped, and so is every token after a window's first EOS or PAD.

        Examples
        --------
        >>> layout = TokenLayout(n_neurons=4, n_dt=3)
        >>> neuron, dt_token, offsets = layout.events_from_blocks([[4, 2, 1, 5, 6]],
        ...                                                      [[0, 0, 2, 4, 5]])
        >>> neuron.tolist(), dt_token.tolist(), offsets.tolist()
        ([2, 1], [0, 2], [0, 2])
        """
        ids, dt_tokens = np.asarray(ids), np.asarray(dt_tokens)
        ended = np.cumsum((ids == self.id_eos) | (ids == self.id_pad), axis=1) > 0
        is_spike = (ids < self.n_neurons) & ~ended & (dt_tokens < self.n_dt)
        rows, cols = np.nonzero(is_spike)
        return (ids[rows, cols].astype(np.int32), dt_tokens[rows, cols].astype(np.int32),
                offsets_from_lengths(np.bincount(rows, minlength=len(ids))))
