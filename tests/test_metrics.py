"""Tests of nfestimators.metrics: bits per spike, window F1, PSTH correlation, scorers."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score

from nfestimators.data import SpikeWindows
from nfestimators.metrics import (
    bits_per_spike,
    bits_per_spike_from_log_likelihood,
    make_generation_scorer,
    pearson_r,
    pearson_r_scorer,
    poisson_log_likelihood,
    psth,
    psth_correlation,
    psth_correlation_scorer,
    window_f1,
    window_f1_scorer,
)


@pytest.fixture
def counts():
    rng = np.random.default_rng(0)
    return rng.poisson(0.3, size=(40, 6, 5))


# ------------------------------------------------------------------ log-likelihood
def test_poisson_log_likelihood_matches_scipy(counts):
    rates = np.random.default_rng(1).uniform(0.05, 1.0, size=counts.shape)
    expected = stats.poisson.logpmf(counts, rates).sum()
    assert poisson_log_likelihood(counts, rates) == pytest.approx(expected)


def test_poisson_log_likelihood_zero_rate():
    assert poisson_log_likelihood(np.array([[0, 0]]), np.zeros((1, 2))) == 0.0
    assert poisson_log_likelihood(np.array([[1, 0]]), np.zeros((1, 2))) == -np.inf


def test_bits_per_spike_baseline_scores_zero(counts):
    mean = counts.mean(axis=(0, 2))
    rates = np.broadcast_to(mean[None, :, None], counts.shape)
    assert bits_per_spike(counts, rates) == pytest.approx(0.0, abs=1e-12)
    assert bits_per_spike(counts, rates, baseline_rates=mean) == pytest.approx(0.0, abs=1e-12)


def test_bits_per_spike_true_rates_beat_baseline():
    rng = np.random.default_rng(0)
    rates = rng.gamma(0.5, 0.6, size=(300, 8, 5))
    counts = rng.poisson(rates)
    assert bits_per_spike(counts, rates) > 0.2
    shuffled = rng.permutation(rates.ravel()).reshape(rates.shape)
    assert bits_per_spike(counts, shuffled) < bits_per_spike(counts, rates)


def test_bits_per_spike_matches_low_level(counts):
    rates = np.random.default_rng(1).uniform(0.05, 1.0, size=counts.shape)
    base = np.full(counts.shape[1], 0.25)
    expected = bits_per_spike_from_log_likelihood(
        poisson_log_likelihood(counts, rates),
        poisson_log_likelihood(counts, np.full(counts.shape, 0.25)),
        counts.sum(),
    )
    assert bits_per_spike(counts, rates, baseline_rates=base) == pytest.approx(expected)


def test_bits_per_spike_accepts_spike_windows_and_2d(counts):
    rates = np.full(counts.shape, 0.4)
    X = SpikeWindows.from_trials(counts, dt=0.01)
    assert bits_per_spike(X, rates) == pytest.approx(bits_per_spike(counts, rates))
    flat = counts.sum(axis=2)
    assert np.isfinite(bits_per_spike(flat, np.full(flat.shape, 1.0)))


def test_bits_per_spike_does_not_modify_inputs(counts):
    rates = np.full(counts.shape, 0.4)
    before = counts.copy(), rates.copy()
    bits_per_spike(counts, rates, baseline_rates=np.full(6, 0.3))
    np.testing.assert_array_equal(counts, before[0])
    np.testing.assert_array_equal(rates, before[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rates=np.ones((2, 2))), "shape"),
        (dict(rates=-np.ones((40, 6, 5))), ">= 0"),
        (dict(rates=np.full((40, 6, 5), np.nan)), "finite"),
        (dict(baseline_rates=np.ones(3)), "one rate per neuron"),
        (dict(baseline_rates=np.zeros(6)), "baseline_rates is 0"),
    ],
)
def test_bits_per_spike_bad_input(counts, kwargs, match):
    args = dict(rates=np.full(counts.shape, 0.4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        bits_per_spike(counts, **args)


def test_bits_per_spike_bad_counts():
    with pytest.raises(ValueError, match="no spikes"):
        bits_per_spike(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="non-integer"):
        bits_per_spike(np.full((3, 2), 0.5), np.ones((3, 2)))
    with pytest.raises(ValueError, match="negative"):
        bits_per_spike(-np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        bits_per_spike(np.ones(3), np.ones(3))


def test_bits_per_spike_from_log_likelihood_bad_input():
    with pytest.raises(ValueError, match="n_spikes"):
        bits_per_spike_from_log_likelihood(-1.0, -2.0, 0)
    with pytest.raises(ValueError, match="NaN"):
        bits_per_spike_from_log_likelihood(np.nan, -2.0, 3)


# ------------------------------------------------------------------ window F1
def test_window_f1_identical_is_one(counts):
    assert window_f1(counts, counts) == (1.0, 1.0, 1.0)


def test_window_f1_edge_cases():
    true = np.array([[0, 0], [0, 0], [1, 0], [1, 1]])
    gen = np.array([[0, 0], [1, 0], [0, 0], [1, 0]])
    # per window: both empty (1,1,1); false alarm (0,1,0); miss (1,0,0); half (1, .5, 2/3)
    p, r, f = window_f1(true, gen)
    assert p == pytest.approx((1 + 0 + 1 + 1) / 4)
    assert r == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert f == pytest.approx((1 + 0 + 0 + 2 / 3) / 4)
    p0, r0, f0 = window_f1(true, gen, zero_division=0.0)
    assert (p0, r0, f0) == pytest.approx((1 / 4, 0.5 / 4, (2 / 3) / 4))


def test_window_f1_ignores_counts_and_timing():
    true = np.zeros((1, 3, 4), dtype=int)
    gen = np.zeros((1, 3, 2), dtype=int)
    true[0, 1, 0] = 3
    gen[0, 1, 1] = 1
    assert window_f1(true, gen) == (1.0, 1.0, 1.0)


def test_window_f1_spike_windows_equals_dense(counts):
    rng = np.random.default_rng(3)
    other = rng.poisson(0.3, size=counts.shape)
    dense = window_f1(counts, other)
    sparse_ = window_f1(SpikeWindows.from_trials(counts, dt=0.01),
                        SpikeWindows.from_trials(other, dt=0.01))
    assert sparse_ == pytest.approx(dense)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, (5, 4), elements=st.integers(0, 2)),
       arrays(np.int64, (5, 4), elements=st.integers(0, 2)))
def test_window_f1_properties(a, b):
    p, r, f = window_f1(a, b)
    assert all(0.0 <= v <= 1.0 for v in (p, r, f))
    p2, r2, f2 = window_f1(b, a)  # swapping the roles swaps precision and recall
    assert (p2, r2, f2) == pytest.approx((r, p, f))


def test_window_f1_bad_input(counts):
    with pytest.raises(ValueError, match="same number of windows"):
        window_f1(counts, counts[:5])
    with pytest.raises(ValueError, match="zero_division"):
        window_f1(counts, counts, zero_division=2)
    with pytest.raises(ValueError, match="count array"):
        window_f1(counts, np.ones(4))
    with pytest.raises(ValueError, match="numeric"):
        window_f1(counts, np.array([["a"]]))
    with pytest.raises(ValueError, match="NaN"):
        window_f1(np.array([[np.nan]]), np.array([[1.0]]))


# ------------------------------------------------------------------ PSTH
def test_psth_correlation_identical_and_silent(counts):
    counts = counts.copy()
    counts[:, 2] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = psth_correlation(counts, counts)
    assert np.isnan(r[2])
    np.testing.assert_allclose(np.delete(r, 2), 1.0)


def test_psth_correlation_matches_pearson(counts):
    other = np.random.default_rng(5).poisson(0.3, size=counts.shape)
    r = psth_correlation(counts, other)
    for n in range(counts.shape[1]):
        expected = np.corrcoef(counts[:, n].sum(1), other[:, n].sum(1))[0, 1]
        assert r[n] == pytest.approx(expected)
    r_bin = psth_correlation(counts, other, bin_by="bin")
    assert r_bin[0] == pytest.approx(np.corrcoef(counts[:, 0].ravel(), other[:, 0].ravel())[0, 1])


def test_psth_sums_trials_by_window_end():
    rng = np.random.default_rng(0)
    trials = rng.poisson(0.5, size=(3, 4, 20))
    X = SpikeWindows.from_trials(trials, dt=0.01, window=0.05)  # 4 windows per trial
    p = psth(X)
    assert p.shape == (4, 4)
    np.testing.assert_array_equal(p, trials.reshape(3, 4, 4, 5).sum(axis=(0, 3)).T)
    # explicit groups override: one point per window
    assert psth(X, groups=np.arange(len(X))).shape == (12, 4)
    assert psth(X, bin_by="bin").shape == (20, 4)


def test_psth_correlation_spike_windows_equals_dense():
    counts = np.random.default_rng(0).poisson(0.4, size=(5, 300))
    other = np.random.default_rng(1).poisson(0.4, size=(5, 300))
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05)
    G = SpikeWindows.from_counts(other, dt=0.01, window=0.05)
    np.testing.assert_allclose(psth_correlation(X, G),
                               psth_correlation(X.to_counts(), G.to_counts()))


def test_psth_correlation_bad_input(counts):
    with pytest.raises(ValueError, match="bin_by"):
        psth_correlation(counts, counts, bin_by="trial")
    with pytest.raises(ValueError, match="bins per window"):
        psth_correlation(counts, counts[:, :, :2], bin_by="bin")
    with pytest.raises(ValueError, match="groups"):
        psth_correlation(counts, counts, groups=np.arange(3))


# ------------------------------------------------------------------ behaviour and scorers
def test_pearson_r():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 2))
    pred = y + rng.normal(size=(50, 2))
    r = pearson_r(y, pred)
    assert r[1] == pytest.approx(np.corrcoef(y[:, 1], pred[:, 1])[0, 1])
    assert pearson_r(y, pred, multioutput="uniform_average") == pytest.approx(r.mean())
    assert np.isnan(pearson_r([1, 2, 3], [1, 1, 1])[0])
    with pytest.raises(ValueError, match="same shape"):
        pearson_r(y, pred[:, :1])
    with pytest.raises(ValueError, match="multioutput"):
        pearson_r(y, pred, multioutput="median")


def test_pearson_r_scorer_in_cross_validation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + 0.1 * rng.normal(size=60)
    scores = cross_val_score(Ridge(), X, y, cv=3, scoring=pearson_r_scorer)
    assert np.all(scores > 0.9)


class _Sampler:
    """Generates spikes by copying the input, optionally dropping some."""

    def __init__(self, drop=0):
        self.drop = drop

    def sample(self, X, temperature=1.0):
        counts = X.to_counts() if isinstance(X, SpikeWindows) else np.array(X)
        counts[:, : self.drop] = 0
        return counts


def test_generation_scorers(counts):
    X = SpikeWindows.from_trials(counts, dt=0.01, window=0.01)
    assert window_f1_scorer(_Sampler(), X) == 1.0
    assert psth_correlation_scorer(_Sampler(), X) == pytest.approx(1.0)
    assert window_f1_scorer(_Sampler(drop=3), X) < 1.0
    scorer = make_generation_scorer(lambda t, g: window_f1(t, g)[0], temperature=0.5)
    assert scorer(_Sampler(), counts) == 1.0
    assert "temperature=0.5" in repr(scorer)
    with pytest.raises(ValueError, match="no sample method"):
        window_f1_scorer(Ridge(), X)
    with pytest.raises(ValueError, match="callable"):
        make_generation_scorer("f1")
