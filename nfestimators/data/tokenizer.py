"""Spike windows -> Neuroformer token blocks (spec section 2), vectorized over all windows."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .layout import TokenLayout
from .coerce import as_windows
from .windows import SpikeWindows

__all__ = ["SpikeTokenizer", "SpikeTokens", "TokenBudgetWarning"]


class TokenBudgetWarning(UserWarning):
    """Some windows held more spikes than the token budget; their earliest spikes were dropped."""


@dataclass
class SpikeTokens:
    """Token blocks of many windows (the layout of :class:`~nfestimators.data.TokenLayout`).

    Attributes
    ----------
    id, dt_token : ndarray of int32, shape (n_samples, max_tokens + 1)
        ``[SOS, e_1..e_m, EOS, PAD...]`` and the matching dt tokens (bin offsets); the model
        input is ``[:, :-1]`` and the next-token target ``[:, 1:]``.
    length : ndarray of int64, shape (n_samples,)
        Events kept per window (``m``).
    id_prev, dt_token_prev : ndarray of int32, shape (n_samples, max_prev_tokens) or None
        Past-window block ``[SOS, e_1..e_m, EOS, PAD...]``.
    prev_length : ndarray of int64 or None
    n_dropped, n_dropped_prev : ndarray of int64
        Spikes dropped per window by the token budget.
    """

    id: np.ndarray
    dt_token: np.ndarray
    length: np.ndarray
    n_dropped: np.ndarray
    id_prev: np.ndarray | None = None
    dt_token_prev: np.ndarray | None = None
    prev_length: np.ndarray | None = None
    n_dropped_prev: np.ndarray | None = None

    def __len__(self):
        return len(self.length)

    @property
    def input_id(self):
        return self.id[:, :-1]

    @property
    def target_id(self):
        return self.id[:, 1:]

    @property
    def input_dt_token(self):
        return self.dt_token[:, :-1]

    @property
    def target_dt_token(self):
        return self.dt_token[:, 1:]


class SpikeTokenizer(TransformerMixin, BaseEstimator):
    """Turn spike windows into Neuroformer token sequences.

    Each spike becomes one token: its neuron id, with a dt token giving its bin offset from
    the window start. Tokens are ordered time-major, then by ascending neuron inside a bin,
    and a count of ``c`` repeats the neuron ``c`` times (spec section 2.3). Every block starts
    with SOS and ends with EOS, then PAD. When a window holds more spikes than the budget,
    the **latest** spikes are kept and a :class:`TokenBudgetWarning` says how many were
    dropped.

    Parameters
    ----------
    max_tokens : int, default=100
        Length of the current-window input block (``block_size.id``); at most
        ``max_tokens - 1`` spikes per window are kept.
    max_prev_tokens : int, default=700
        Length of the past-window block (``block_size.prev_id``); at most
        ``max_prev_tokens - 2`` spikes are kept.

    Attributes
    ----------
    n_neurons_ : int
        Neurons seen in fit; id tokens ``0..n_neurons_ - 1``.
    n_dt_ : int
        Number of dt values ``0, dt, ..., max(window, prev_window)``.
    dt_ : float
        Bin width in seconds.
    n_bins_, n_prev_bins_ : int
        Window geometry seen in fit.
    id_sos_, id_eos_, id_pad_, dt_sos_, dt_eos_, dt_pad_ : int
        Special token indices (appended after the values, in that order).
    id_vocab_size_, dt_vocab_size_ : int

    Examples
    --------
    The worked example of the spec (section 2.3): neuron 7 fires in bin 1, neurons 2 and 9
    in bin 3.

    >>> import numpy as np
    >>> from nfestimators import SpikeWindows, SpikeTokenizer
    >>> counts = np.zeros((1, 10, 5), dtype=int)
    >>> counts[0, 7, 1] = counts[0, 2, 3] = counts[0, 9, 3] = 1
    >>> X = SpikeWindows.from_array(counts, dt=0.01)
    >>> tok = SpikeTokenizer(max_tokens=6, max_prev_tokens=4).fit(X)
    >>> t = tok.transform(X)
    >>> tok.decode_ids(t.input_id[0])
    ['SOS', 7, 2, 9, 'EOS', 'PAD']
    >>> t.input_dt_token[0].tolist(), t.length.tolist()
    ([0, 1, 3, 3, 7, 8], [3])
    """

    def __init__(self, max_tokens=100, max_prev_tokens=700):
        self.max_tokens = max_tokens
        self.max_prev_tokens = max_prev_tokens

    def fit(self, X, y=None):
        """Learn the vocabulary (neuron ids, dt values) from ``X``."""
        X = as_windows(X)
        for name in ("max_tokens", "max_prev_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
                raise ValueError(f"{name} must be an integer of at least 2; got {value!r}.")
        self.n_neurons_ = X.n_neurons
        self.dt_ = X.dt
        self.n_bins_ = X.n_bins
        self.n_prev_bins_ = X.n_prev_bins
        layout = TokenLayout.for_windows(X.n_neurons, X.n_bins, X.n_prev_bins)
        self.n_dt_ = layout.n_dt
        self.id_sos_, self.id_eos_, self.id_pad_ = layout.id_sos, layout.id_eos, layout.id_pad
        self.dt_sos_, self.dt_eos_, self.dt_pad_ = layout.dt_sos, layout.dt_eos, layout.dt_pad
        self.id_vocab_size_ = layout.id_vocab_size
        self.dt_vocab_size_ = layout.dt_vocab_size
        self.n_features_in_ = X.n_neurons
        return self

    def set_output(self, *, transform=None):
        """Accept only the default output: ``transform`` returns token blocks
        (:class:`SpikeTokens`), not a table, so pandas or polars output does not apply."""
        if transform not in (None, "default"):
            raise ValueError(f"SpikeTokenizer.transform returns SpikeTokens, not a table, so "
                             f"transform={transform!r} output is not available; latents of "
                             "NeuroformerPretrainer.transform can be pandas DataFrames.")
        return self

    def check_windows(self, X):
        """Return ``X`` as SpikeWindows after checking it matches the fitted vocabulary."""
        check_is_fitted(self)
        X = as_windows(X, dt=self.dt_)
        if X.n_neurons != self.n_neurons_:
            raise ValueError(f"X has {X.n_neurons} neurons, but the tokenizer was fitted with "
                             f"{self.n_neurons_}.")
        if not np.isclose(X.dt, self.dt_):
            raise ValueError(f"X has dt={X.dt} s, but the tokenizer was fitted with dt={self.dt_} s.")
        if max(X.n_bins, X.n_prev_bins) + 1 > self.n_dt_:
            raise ValueError(f"X has windows of {X.n_bins} (past {X.n_prev_bins}) bins, longer than "
                             f"the fitted dt vocabulary allows ({self.n_dt_ - 1} bins).")
        return X

    @property
    def layout(self):
        """The fitted :class:`~nfestimators.data.TokenLayout` (vocabularies, block filling)."""
        check_is_fitted(self)
        return TokenLayout(self.n_neurons_, self.n_dt_)

    def transform(self, X):
        """Token blocks of every window, as a :class:`SpikeTokens`."""
        X = self.check_windows(X)
        layout = self.layout
        ids, dt_tokens, length, dropped = layout.fill_block(X.neuron, X.bin, X.offsets,
                                                            int(self.max_tokens) + 1)
        tokens = SpikeTokens(ids, dt_tokens, length, dropped)
        if X.n_prev_bins:
            p_ids, p_dt_tokens, p_len, p_dropped = layout.fill_block(
                X.prev_neuron, X.prev_bin, X.prev_offsets, int(self.max_prev_tokens))
            tokens.id_prev, tokens.dt_token_prev = p_ids, p_dt_tokens
            tokens.prev_length, tokens.n_dropped_prev = p_len, p_dropped
        self._warn_dropped(tokens)
        return tokens

    def _warn_dropped(self, tokens):
        for name, dropped, kept, budget in (
            ("current", tokens.n_dropped, tokens.length, int(self.max_tokens) - 1),
            ("past", tokens.n_dropped_prev, tokens.prev_length, int(self.max_prev_tokens) - 2),
        ):
            if dropped is not None and dropped.any():
                held = int((dropped + kept)[dropped > 0].sum())
                warnings.warn(
                    f"{int(np.count_nonzero(dropped))} of {len(dropped)} {name} windows hold more "
                    f"than {budget} spikes; {int(dropped.sum())} of their earliest spikes were "
                    f"dropped (of the {held} spikes they hold). "
                    f"Raise max_{'prev_' if name == 'past' else ''}tokens to keep them.",
                    TokenBudgetWarning, stacklevel=3)

    def inverse_transform(self, tokens):
        """Events back from tokens (the spikes that were kept), as SpikeWindows."""
        check_is_fitted(self)
        neuron, bins, offsets = self.layout.events_from_blocks(tokens.id, tokens.dt_token)
        prev = {}
        if tokens.id_prev is not None:
            p_neuron, p_bins, p_offsets = self.layout.events_from_blocks(tokens.id_prev,
                                                                         tokens.dt_token_prev)
            prev = dict(prev_neuron=p_neuron, prev_bin=p_bins, prev_offsets=p_offsets,
                        n_prev_bins=self.n_prev_bins_)
        return SpikeWindows(neuron, bins, offsets, n_neurons=self.n_neurons_, dt=self.dt_,
                            n_bins=self.n_bins_, **prev)

    def events_from_blocks(self, ids, dt_tokens):
        """Flat (neuron, bin, offsets) of the spike tokens in padded blocks (SOS/EOS/PAD dropped).

        Tokens after a window's first EOS are ignored.
        """
        return self.layout.events_from_blocks(ids, dt_tokens)

    def decode_ids(self, ids):
        """Readable id tokens: neuron numbers and 'SOS'/'EOS'/'PAD'."""
        check_is_fitted(self)
        names = {self.id_sos_: "SOS", self.id_eos_: "EOS", self.id_pad_: "PAD"}
        return [names.get(int(i), int(i)) for i in np.asarray(ids)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = []
        return tags
