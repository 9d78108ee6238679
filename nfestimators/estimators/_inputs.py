"""The fitted input side of an estimator, as one object: time bins, tokenizer, behaviour
inputs and their scaler, frame normalisation, and the window geometry they were fitted on.

:class:`InputEncoder` is fitted once per ``fit`` (or taken over, as a unit, from a pretrained
estimator), checks every later ``X`` against what it was fitted on, turns windows into the
device tensors of a :class:`~nfestimators.data.TokenStore`, and is saved and restored
through :meth:`InputEncoder.state` / :meth:`InputEncoder.from_state`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from ..data import SpikeTokenizer, TokenStore

# Cap of the automatic token budget per preset: beyond it, attention memory outgrows the model.
AUTO_TOKEN_CAP = {"tiny": 256, "small": 1024, "paper": 2048}
BUDGET_QUANTILE = 0.9  # windows beyond OUTLIER_FACTOR times this quantile of the spike
OUTLIER_FACTOR = 4  # counts are outliers: the automatic budget does not follow them
BUDGET_HEADROOM = 1.25  # room for windows this much fuller than the fullest inlier


def auto_token_budget(n_spikes, cap):
    """Token budget for windows holding ``n_spikes`` spikes: ``BUDGET_HEADROOM`` times the
    fullest window that is not an outlier (more than ``OUTLIER_FACTOR`` times the
    ``BUDGET_QUANTILE`` quantile), plus SOS and EOS, in multiples of 8, at most ``cap``.
    Outlying windows lose their earliest spikes, with a ``TokenBudgetWarning``."""
    n_spikes = np.asarray(n_spikes)
    typical = max(float(np.quantile(n_spikes, BUDGET_QUANTILE, method="higher")), 1.0)
    fullest = int(n_spikes[n_spikes <= OUTLIER_FACTOR * typical].max(initial=1))
    budget = -(-int(BUDGET_HEADROOM * fullest + 2) // 8) * 8
    return int(min(budget, cap))


MAX_AUTO_BINS = 50  # dt="auto": the finest bins that give at most this many per window ...
AUTO_TIMING_DT = 0.01  # s ... or bins this fine when those are finer (long windows) ...
MAX_TIMING_BINS = 1000  # ... but at most this many of them per window (very long windows)


def rebin_factors(X):
    """The whole numbers f, ascending, by which ``X``'s bins can be coarsened
    (:meth:`SpikeWindows.rebin` to ``f * X.dt``): those dividing the current and past windows."""
    return [f for f in range(1, X.n_bins + 1) if X.n_bins % f == 0 and X.n_prev_bins % f == 0]


def auto_bin_width(X, max_bins=MAX_AUTO_BINS, timing_dt=AUTO_TIMING_DT,
                   max_timing_bins=MAX_TIMING_BINS):
    """The bin width of ``dt="auto"`` for the windows ``X``: the finest whole multiple of
    ``X.dt`` dividing the current and past windows that is at least a ``max_bins``-th of
    the longer window (``X.dt`` itself when its bins are already that coarse; the coarsest
    divisor when no multiple is), or, when ``X``'s own bins are finer than ``timing_dt``, at
    least the finer of that and ``timing_dt`` but no finer than a ``max_timing_bins``-th of
    the window.

    Fine enough for spike timing, at a fiftieth of the window (10 ms in 500 ms trials) and
    never coarser than 10 ms in longer ones, and coarse enough that the dt vocabulary, and
    the number of next-bin choices the model learns, stay small: on the real auditory
    trials (500 bins of 1 ms) the classifier defaults scored 0.370 test accuracy at 1 ms,
    0.426 at 10 ms, 0.463 at 50 ms (D_E_III) and 0.678 / 0.683 / 0.706 (D_A_I) on an H200;
    50 ms bins would erase the timing codes of the synthetic latency family, so the cap is
    at 50 bins, not 10. A fiftieth of a long window does erase them: with 2 s trials
    (40 ms bins) the defaults scored 0.540 on a latency code that a logistic regression on
    20 ms counts decodes perfectly, hence the 10 ms floor. Windows longer than 10 s get
    coarser bins again (at most 1,000 a window): every token's next-bin choice spans the
    window's bins, and on a 2-core CPU two epochs of a classifier over 48 trials of 30 s
    took 65 s at 10 ms (3,000 bins), 38 s at 30 ms (1,000 bins), 7 s for 10 s trials at
    10 ms. The floor needs a real time base finer than 10 ms: a plain count array is read
    as 10 ms bins whatever its bins are (:func:`~nfestimators.data.as_windows`), so its
    windows, like recordings binned at 10 ms or coarser, keep the 50-bin rule (500 bins of a
    plain array may well be 1 ms ones, where the 50-bin rule gives the 10 ms that scored best).

    Examples
    --------
    >>> import numpy as np
    >>> from nfestimators import SpikeWindows
    >>> auto_bin_width(SpikeWindows.from_array(np.zeros((1, 2, 500), dtype=int), dt=0.001))
    0.01
    >>> auto_bin_width(SpikeWindows.from_array(np.zeros((1, 2, 100), dtype=int), dt=0.001))
    0.002
    >>> auto_bin_width(SpikeWindows.from_array(np.zeros((1, 2, 2000), dtype=int), dt=0.001))
    0.01
    >>> auto_bin_width(SpikeWindows.from_array(np.zeros((1, 2, 30000), dtype=int), dt=0.001))
    0.03
    >>> auto_bin_width(SpikeWindows.from_array(np.zeros((1, 2, 500), dtype=int), dt=0.01))
    0.1
    """
    longest = max(X.n_bins, X.n_prev_bins)
    span = longest * X.dt
    target = span / max_bins
    if X.dt < timing_dt * (1 - 1e-9):
        target = min(target, max(timing_dt, span / max_timing_bins))
    factors = rebin_factors(X)
    fitting = [f for f in factors if f * X.dt >= target * (1 - 1e-9)]
    factor = fitting[0] if fitting else factors[-1]
    return round(X.dt * factor, 12)


def _standardization(values):
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale < 1e-12] = 1.0
    return mean, scale


def behavior_columns(X, names):
    """Indices of the behaviour variables ``names`` in ``X.behavior_names``."""
    if not names:
        return []
    if X.behavior is None:
        raise ValueError("the model was fitted with behaviour inputs; X carries none.")
    missing = [n for n in names if n not in X.behavior_names]
    if missing:
        raise ValueError(f"behaviour inputs {missing} are not in X.behavior_names "
                         f"{list(X.behavior_names)}.")
    return [X.behavior_names.index(n) for n in names]


class InputEncoder:
    """Everything fitted on the input side of an estimator.

    Parameters
    ----------
    tokenizer : SpikeTokenizer
        Fitted; holds the vocabulary, the token budgets, ``dt`` and the window geometry.
    dt : float or None
        Bin width every ``X`` is rebinned to (the estimator's ``dt``); None keeps the bins.
    behavior_inputs : tuple of str
        Behaviour variables fed to the model.
    behavior_mean, behavior_scale : ndarray of shape (n_behavior_inputs,) or None
        Standardisation of the behaviour inputs.
    frame_norm : (float, float) or None
        Mean and scale of the stimulus frames; None when fitted without frames.
    frames_shape : tuple of int or None
        ``(n_frames, height, width)`` of a window's clip.
    sessions : tuple of str or int, or None
        Multi-session models: the session keys, in the order of their rows in the
        concatenated unit vocabulary (session ``s`` owns ids ``unit_offsets[s] ..
        unit_offsets[s + 1] - 1``). None: one session, whose neuron ids are the tokens.
    session_n_neurons : tuple of int or None
        Neurons of every session.
    default_session : str or int or None
        The session of windows that carry no session table (the session of a fit on one
        session); None: such windows are refused.
    """

    def __init__(self, tokenizer, *, dt=None, behavior_inputs=(), behavior_mean=None,
                 behavior_scale=None, frame_norm=None, frames_shape=None, sessions=None,
                 session_n_neurons=None, default_session=None):
        self.tokenizer = tokenizer
        self.dt = dt
        self.behavior_inputs = tuple(behavior_inputs)
        self.behavior_mean = behavior_mean
        self.behavior_scale = behavior_scale
        self.frame_norm = frame_norm
        self.frames_shape = frames_shape
        self.sessions = None if sessions is None else tuple(sessions)
        self.session_n_neurons = (None if session_n_neurons is None
                                  else tuple(int(n) for n in session_n_neurons))
        self.default_session = default_session

    @classmethod
    def fit(cls, X, *, dt, behavior_inputs, max_tokens, max_prev_tokens, token_cap):
        """Fit on the training windows ``X`` (SpikeWindows); budgets None are automatic,
        ``dt="auto"`` is :func:`auto_bin_width`."""
        if dt == "auto":
            dt = auto_bin_width(X)
        X = X.rebin(dt)

        def budget(given, n_spikes):
            return int(given) if given is not None else auto_token_budget(n_spikes, token_cap)

        kwargs = {"dt": dt, "behavior_inputs": tuple(behavior_inputs)}
        if X.sessions is not None:
            kwargs.update(sessions=X.sessions, session_n_neurons=X.session_n_neurons,
                          default_session=X.sessions[0] if X.n_sessions == 1 else None)
        tokenizer = SpikeTokenizer(budget(max_tokens, X.n_spikes()),
                                   budget(max_prev_tokens, X.n_spikes(past=True)))
        tokenizer.fit(cls(None, **kwargs).global_windows(X)[0])
        columns = behavior_columns(X, kwargs["behavior_inputs"])
        if columns:
            kwargs["behavior_mean"], kwargs["behavior_scale"] = _standardization(
                X.behavior[:, columns])
        if X.frame_index is not None:
            seen = X.stimulus[np.unique(X.frame_index)]
            kwargs["frame_norm"] = (float(seen.mean()), float(seen.std() or 1.0))
            kwargs["frames_shape"] = (X.n_frames, *np.shape(X.stimulus)[1:])
        return cls(tokenizer, **kwargs)

    @property
    def n_behavior_inputs(self):
        return len(self.behavior_inputs)

    # ------------------------------------------------------------------ sessions
    @property
    def default_session_n_neurons(self):
        """Neurons of ``default_session`` (None without one)."""
        if self.default_session is None:
            return None
        return self.session_n_neurons[self.sessions.index(self.default_session)]

    @property
    def unit_offsets(self):
        """First id of every session in the unit vocabulary, then the total, (n_sessions + 1,)."""
        return np.concatenate([[0], np.cumsum(self.session_n_neurons)]).astype(np.int64)

    def session_positions(self, X, *, allow_new=False):
        """Position in ``sessions`` of every window's session, (n_samples,) int64.

        Windows without a session table belong to ``default_session``. With ``allow_new``,
        sessions the encoder does not know get position -1 instead of an error.
        """
        if X.session is None:
            if self.default_session is None and not allow_new:
                raise ValueError(
                    f"X carries no session table, but the model knows {len(self.sessions)} "
                    f"sessions {list(self.sessions)}; say which one X is, e.g. "
                    "SpikeWindows.from_sessions([X], keys=[key]).")
            if self.default_session is None:
                return np.full(len(X), -1, np.int64)
            keys, n_neurons, session = (self.default_session,), (X.n_neurons,), None
        else:
            keys, n_neurons, session = X.sessions, X.session_n_neurons, X.session
        known = {key: s for s, key in enumerate(self.sessions)}
        used = range(len(keys)) if session is None else np.unique(session)
        position = np.full(len(keys), -1, np.int64)
        for k in used:
            key = keys[k]
            if key not in known:
                if allow_new:
                    continue
                raise ValueError(f"X holds session {key!r}, unknown to the model (its "
                                 f"sessions are {list(self.sessions)}); finetune a "
                                 "NeuroformerRegressor or NeuroformerClassifier with "
                                 "pretrained=... on it to add it.")
            position[k] = known[key]
            if n_neurons[k] != self.session_n_neurons[known[key]]:
                raise ValueError(f"session {key!r} has {n_neurons[k]} neurons in X, but "
                                 f"{self.session_n_neurons[known[key]]} in the model.")
        return position[0] if session is None else position[session]

    def global_windows(self, X):
        """``X`` with neuron ids in the unit vocabulary: each window's ids offset by its
        session's first id, ``n_neurons`` the vocabulary's, no session table; and the
        ``(n_samples, 2)`` unit range ``[lo, hi)`` of every window's session (None for a
        one-session encoder, whose ids are already the tokens)."""
        if self.sessions is None:
            return X, None
        position = np.broadcast_to(self.session_positions(X), (len(X),))
        offsets = self.unit_offsets
        lo = offsets[position]
        unit_range = np.stack([lo, offsets[position + 1]], axis=1)
        return X._replace(
            neuron=X.neuron + np.repeat(lo, X.n_spikes()).astype(np.int32),
            prev_neuron=X.prev_neuron + np.repeat(lo, X.n_spikes(past=True)).astype(np.int32),
            n_neurons=int(offsets[-1]), session=None, sessions=None,
            session_n_neurons=None), unit_range

    def training_rates(self, X):
        """Mean spikes per bin of every neuron of the unit vocabulary in ``X`` (of every
        session's neurons in that session's windows, for multi-session data; 0 for the
        neurons of sessions ``X`` does not hold)."""
        X, unit_range = self.global_windows(X)
        counts = np.bincount(X.neuron, minlength=X.n_neurons)
        if unit_range is None:
            return counts / (len(X) * X.n_bins)
        offsets = self.unit_offsets
        windows = np.bincount(np.searchsorted(offsets, unit_range[:, 0], side="right") - 1,
                              minlength=len(offsets) - 1)  # windows of every session
        bins_seen = np.repeat(windows * X.n_bins, np.diff(offsets))
        return counts / np.maximum(bins_seen, 1)

    def with_new_sessions(self, X):
        """This encoder with the sessions of ``X`` it does not know appended (a one-session
        encoder first becomes a session table of key 0), and the number of neurons added.

        A window without a session table is a new session when the model has no default
        session or its default session has other neurons than ``X``; it gets the key
        ``len(sessions)`` (the next position), or the next free integer.
        """
        inputs = self
        if self.sessions is None:
            inputs = self._copy(sessions=(0,), session_n_neurons=(self.tokenizer.n_neurons_,),
                                default_session=0)
        if X.session is None:
            if inputs.default_session_n_neurons == X.n_neurons:
                return inputs, 0
            key = len(inputs.sessions)
            while key in inputs.sessions:
                key += 1
            new = [(key, X.n_neurons)]
            default = key
        else:
            position = inputs.session_positions(X, allow_new=True)
            new_ids = np.unique(X.session[position < 0])
            new = [(X.sessions[k], X.session_n_neurons[k]) for k in new_ids]
            default = X.sessions[0] if X.n_sessions == 1 else inputs.default_session
        if not new:
            return inputs._copy(default_session=default), 0
        sessions = inputs.sessions + tuple(k for k, _ in new)
        n_neurons = inputs.session_n_neurons + tuple(n for _, n in new)
        grown = inputs._copy(sessions=sessions, session_n_neurons=n_neurons,
                             default_session=default)
        tok = self.tokenizer
        geometry = X._replace(n_neurons=sum(n_neurons), neuron=X.neuron[:0], bin=X.bin[:0],
                              offsets=np.zeros(len(X) + 1, np.int64),
                              prev_neuron=X.prev_neuron[:0], prev_bin=X.prev_bin[:0],
                              prev_offsets=np.zeros(len(X) + 1, np.int64), session=None,
                              sessions=None, session_n_neurons=None)
        grown.tokenizer = clone(tok).fit(geometry.rebin(self.dt))
        return grown, sum(n for _, n in new)

    def _copy(self, **changes):
        fields = dict(dt=self.dt, behavior_inputs=self.behavior_inputs,
                      behavior_mean=self.behavior_mean, behavior_scale=self.behavior_scale,
                      frame_norm=self.frame_norm, frames_shape=self.frames_shape,
                      sessions=self.sessions, session_n_neurons=self.session_n_neurons,
                      default_session=self.default_session)
        fields.update(changes)
        return InputEncoder(self.tokenizer, **fields)

    def check(self, X):
        """``X`` in the fitted time bins, after checking it has the fitted geometry and inputs."""
        X = X.rebin(self.dt)
        self.tokenizer.check_windows(self.global_windows(X)[0])
        tok = self.tokenizer
        if (X.n_bins, X.n_prev_bins) != (tok.n_bins_, tok.n_prev_bins_):
            raise ValueError(
                f"X has windows of {X.n_bins} bins with a past window of {X.n_prev_bins} bins, "
                f"but the model was fitted on windows of {tok.n_bins_} bins with a past window "
                f"of {tok.n_prev_bins_} bins (dt={tok.dt_:g} s); build X with the fitting "
                "data's window and prev_window.")
        if self.frame_norm is not None:
            if X.frame_index is None:
                raise ValueError("the model was fitted with stimulus frames; X carries none.")
            shape = (X.n_frames, *np.shape(X.stimulus)[1:])
            if shape != tuple(self.frames_shape):
                raise ValueError(f"X has stimulus clips of shape {shape} (frames, height, "
                                 f"width); the model was fitted on {tuple(self.frames_shape)}.")
        behavior_columns(X, self.behavior_inputs)
        return X

    def store(self, X, device, targets=None, pad_multiple=8):
        """The :class:`TokenStore` of ``X`` (checked by :meth:`check`) on ``device``, with the
        training ``targets`` (a dict of store arrays: ``y_reg`` or ``y_cls``) when given."""
        inputs = dict(targets or {})
        if self.behavior_inputs:
            columns = behavior_columns(X, self.behavior_inputs)
            inputs["behavior"] = (X.behavior[:, columns] - self.behavior_mean) / self.behavior_scale
        if self.frame_norm is not None:
            inputs.update(stimulus=X.stimulus, frame_index=X.frame_index,
                          frame_norm=self.frame_norm)
        X, unit_range = self.global_windows(X)
        return TokenStore(self.tokenizer.transform(X), device, pad_multiple=pad_multiple,
                          unit_range=unit_range, **inputs)

    def state(self):
        """Plain-value form (lists, numbers, strings), inverse of :meth:`from_state`."""
        tok = self.tokenizer
        fitted = {k: v.item() if isinstance(v, np.generic) else v
                  for k, v in vars(tok).items() if k.endswith("_")}

        def listed(value):
            return None if value is None else np.asarray(value).tolist()

        return {"tokenizer_params": tok.get_params(), "tokenizer_fitted": fitted,
                "dt": self.dt, "behavior_inputs": list(self.behavior_inputs),
                "behavior_mean": listed(self.behavior_mean),
                "behavior_scale": listed(self.behavior_scale),
                "frame_norm": listed(self.frame_norm), "frames_shape": listed(self.frames_shape),
                "sessions": listed(self.sessions),
                "session_n_neurons": listed(self.session_n_neurons),
                "default_session": self.default_session}

    @classmethod
    def from_state(cls, state):
        tokenizer = SpikeTokenizer(**state["tokenizer_params"])
        for name, value in state["tokenizer_fitted"].items():
            setattr(tokenizer, name, value)

        def array(value):
            return None if value is None else np.asarray(value, dtype=np.float64)

        def pair(value):
            return None if value is None else tuple(value)

        return cls(tokenizer, dt=state["dt"], behavior_inputs=state["behavior_inputs"],
                   behavior_mean=array(state["behavior_mean"]),
                   behavior_scale=array(state["behavior_scale"]),
                   frame_norm=pair(state["frame_norm"]), frames_shape=pair(state["frames_shape"]),
                   sessions=pair(state.get("sessions")),
                   session_n_neurons=pair(state.get("session_n_neurons")),
                   default_session=state.get("default_session"))
