import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nfestimators import SpikeTokenizer, SpikeWindows
from nfestimators.data import TokenBudgetWarning


def test_spec_worked_example():
    """Spec 2.3: W = 0.05, dt = 0.01, S = 6; neuron 7 in bin 1, neurons 2 and 9 in bin 3."""
    counts = np.zeros((1, 10, 5), int)
    counts[0, 7, 1] = counts[0, 9, 3] = counts[0, 2, 3] = 1
    X = SpikeWindows.from_array(counts, dt=0.01)
    tok = SpikeTokenizer(max_tokens=6).fit(X)
    t = tok.transform(X)
    SOS, EOS, PAD = 10, 11, 12
    dEOS, dPAD = tok.dt_eos_, tok.dt_pad_
    assert t.input_id[0].tolist() == [SOS, 7, 2, 9, EOS, PAD]
    assert t.target_id[0].tolist() == [7, 2, 9, EOS, PAD, PAD]
    assert t.input_dt_token[0].tolist() == [0, 1, 3, 3, dEOS, dPAD]
    assert t.target_dt_token[0].tolist() == [1, 3, 3, dEOS, dPAD, dPAD]
    assert (t.target_id[0] == PAD).sum() == 2  # the spec's pad = 2
    assert tok.id_vocab_size_ == 13 and tok.n_dt_ == 6 and tok.dt_vocab_size_ == 9


def test_counts_repeat_tokens_and_past_block():
    counts = np.zeros((2, 40), int)
    counts[1, 2] = 3  # bin 2 of window 0 (past of window 1)
    counts[0, 12] = 1
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.1, prev_window=0.1)
    tok = SpikeTokenizer(max_tokens=8, max_prev_tokens=8).fit(X)
    t = tok.transform(X)
    assert tok.decode_ids(t.id[0]) == ["SOS", 1, 1, 1, "EOS", "PAD", "PAD", "PAD", "PAD"]
    assert tok.decode_ids(t.id_prev[1]) == ["SOS", 1, 1, 1, "EOS", "PAD", "PAD", "PAD"]
    assert t.dt_token_prev[1, 1:4].tolist() == [2, 2, 2]
    assert tok.decode_ids(t.id[1])[:3] == ["SOS", 0, "EOS"]
    assert t.dt_token[1, 1] == 2


def test_truncation_keeps_latest_and_warns():
    counts = np.zeros((1, 3, 5), int)
    counts[0, 0, 0] = 2
    counts[0, 1, 4] = 1
    counts[0, 2, 4] = 1
    X = SpikeWindows.from_array(counts, dt=0.01)
    tok = SpikeTokenizer(max_tokens=3).fit(X)
    with pytest.warns(TokenBudgetWarning, match="2 of their earliest spikes were dropped"):
        t = tok.transform(X)
    assert tok.decode_ids(t.id[0]) == ["SOS", 1, 2, "EOS"]
    assert t.n_dropped.tolist() == [2] and t.length.tolist() == [2]
    assert t.dt_token[0, 1:3].tolist() == [4, 4]  # ids and dts cut identically (spec QUIRK fixed)


def test_no_warning_within_budget():
    X = SpikeWindows.from_array(np.ones((2, 3, 2), int))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SpikeTokenizer(max_tokens=7).fit(X).transform(X)


def test_neuron_mismatch_and_geometry_errors():
    tok = SpikeTokenizer().fit(SpikeWindows.from_array(np.zeros((2, 4, 5), int)))
    with pytest.raises(ValueError, match="neurons"):
        tok.transform(SpikeWindows.from_array(np.zeros((2, 5, 5), int)))
    with pytest.raises(ValueError, match="bins"):
        tok.transform(SpikeWindows.from_array(np.zeros((2, 4, 9), int)))
    with pytest.raises(ValueError, match="dt"):
        tok.transform(SpikeWindows.from_array(np.zeros((2, 4, 5), int), dt=0.001))


@settings(max_examples=40, deadline=None)
@given(n_neurons=st.integers(1, 12), n_bins_total=st.integers(10, 120),
       window_bins=st.integers(1, 10), prev_bins=st.integers(0, 10),
       rate=st.floats(0.0, 2.0), seed=st.integers(0, 2**31 - 1))
def test_round_trip_counts_windows_tokens_counts(n_neurons, n_bins_total, window_bins,
                                                 prev_bins, rate, seed):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate, size=(n_neurons, max(n_bins_total, window_bins)))
    X = SpikeWindows.from_counts(counts, dt=0.01, window=window_bins * 0.01,
                                 prev_window=prev_bins * 0.01)
    # a budget large enough for every window: the round trip must be exact
    budget = int(max(X.n_spikes().max(), X.n_spikes(past=True).max())) + 2
    tok = SpikeTokenizer(max_tokens=budget, max_prev_tokens=budget).fit(X)
    back = tok.inverse_transform(tok.transform(X))
    np.testing.assert_array_equal(back.to_counts(), X.to_counts())
    if prev_bins:
        np.testing.assert_array_equal(back.to_counts(past=True), X.to_counts(past=True))
    np.testing.assert_array_equal(back.neuron, X.neuron)  # same order too
    # and the windows tile the raster back exactly (non-overlapping, stride = window)
    n_win = counts.shape[1] // window_bins
    rebuilt = back.to_counts().transpose(1, 0, 2).reshape(n_neurons, n_win * window_bins)
    np.testing.assert_array_equal(rebuilt, counts[:, :n_win * window_bins])


def test_model_vocabulary_agrees_with_the_token_layout():
    """The model takes the layout's integers; its special ids must be the layout's."""
    from nfestimators.data import TokenLayout
    from nfestimators.model import make_config

    layout = TokenLayout.for_windows(n_neurons=17, n_bins=5, n_prev_bins=15)
    config = make_config("tiny", layout.n_neurons, n_dt=layout.n_dt)
    assert (config.sos_id, config.eos_id, config.pad_id) == (
        layout.id_sos, layout.id_eos, layout.id_pad)
    assert (config.sos_dt, config.eos_dt, config.pad_dt) == (
        layout.dt_sos, layout.dt_eos, layout.dt_pad)
    assert (config.id_vocab_size, config.dt_vocab_size) == (
        layout.id_vocab_size, layout.dt_vocab_size)
