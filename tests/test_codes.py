"""make_code_data: each family carries its code and nothing else (issue #19, part 7)."""

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nfestimators import SpikeWindows
from nfestimators.datasets import make_code_data

CLASS_CODES = ["rate", "identity", "order", "latency", "synchrony"]
TIMING_CODES = ["order", "latency", "synchrony"]  # codes whose counts match in every class


def _accuracy(features, labels):
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    return cross_val_score(model, features, labels, cv=3).mean()


def _counts_per_neuron(data):
    return data.windows.to_counts().sum(axis=2)


def _cell_time(data, statistic):
    """(n_trials, n_coding) ``statistic`` ("min", "median") of each coding cell's spike times
    in each trial; half the window where the cell is silent."""
    spikes = data.windows.to_spike_times()
    table = spikes.groupby(["window", "neuron"])["time"].agg(statistic).unstack()
    table = table.reindex(index=range(len(data.windows)), columns=data.coding_cells)
    return table.fillna(data.window / 2).to_numpy()


def _coincidences(data, max_lag_bins=4):
    """(n_trials, n_pairs) spike pairs of each coding pair within ``max_lag_bins`` bins."""
    counts = data.windows.to_counts()
    a, b = (counts[:, data.coding_cells[data.params.pairs[:, k]]] for k in (0, 1))
    n_bins = counts.shape[2]
    total = np.zeros(a.shape[:2])
    for lag in range(-max_lag_bins, max_lag_bins + 1):
        lo, hi = max(0, lag), min(n_bins, n_bins + lag)
        total += (a[:, :, lo:hi] * b[:, :, lo - lag:hi - lag]).sum(axis=2)
    return total


@pytest.fixture(scope="module")
def families():
    return {code: make_code_data(code, n_trials=400, random_state=0) for code in CLASS_CODES}


@pytest.mark.parametrize("code", CLASS_CODES)
def test_balanced_classes_and_realistic_rates(families, code):
    data = families[code]
    assert isinstance(data.windows, SpikeWindows)
    assert data.windows.shape == (400, 40, 500) and data.windows.dt == 0.001
    assert np.bincount(data.labels).tolist() == [100] * 4
    rate = data.windows.n_spikes().sum() / (400 * 40 * 0.5)  # Hz per neuron
    assert 1.0 < rate < 20.0
    assert code in data.description and data.DESCR == data.description


@pytest.mark.parametrize("code", TIMING_CODES)
def test_timing_codes_match_counts_across_classes(families, code):
    data = families[code]
    counts = _counts_per_neuron(data)
    means = np.stack([counts[data.labels == c].mean(0) for c in range(4)])
    sem = counts.std(0) / np.sqrt(100) + 1e-9
    assert np.abs(means - counts.mean(0)).max() / sem.max() < 4.5  # equal within noise
    assert _accuracy(counts, data.labels) < 0.25 + 0.12  # counts per neuron: near chance


def test_true_features_decode_the_timing_codes(families):
    order = families["order"]
    assert _accuracy(rankdata(_cell_time(order, "median"), axis=1), order.labels) > 0.95
    latency = families["latency"]
    first = np.median(_cell_time(latency, "min"), axis=1, keepdims=True)
    assert _accuracy(first, latency.labels) > 0.95
    synchrony = families["synchrony"]
    assert _accuracy(_coincidences(synchrony), synchrony.labels) > 0.9


def test_rate_and_identity_are_read_from_counts_per_neuron(families):
    rate, identity = families["rate"], families["identity"]
    assert _accuracy(_counts_per_neuron(rate), rate.labels) > 0.9
    counts = _counts_per_neuron(identity)
    assert _accuracy(counts, identity.labels) > 0.95
    assert _accuracy(counts.sum(1, keepdims=True), identity.labels) < 0.25 + 0.1


def test_behavior_is_a_tuned_continuous_target():
    data = make_code_data("behavior", n_trials=300, random_state=0)
    assert "labels" not in data and data.target.shape == (300,)
    assert data.target.min() >= 0 and data.target.max() <= 1 and data.target.std() > 0.15
    counts = _counts_per_neuron(data)[:, data.coding_cells]
    r2 = cross_val_score(RidgeCV(), counts, data.target, cv=3).mean()
    assert r2 > 0.6


def test_seeded_determinism():
    one, two = (make_code_data("synchrony", n_trials=20, random_state=3) for _ in range(2))
    other = make_code_data("synchrony", n_trials=20, random_state=4)
    for name in ("neuron", "bin", "offsets"):
        assert np.array_equal(getattr(one.windows, name), getattr(two.windows, name))
    assert np.array_equal(one.labels, two.labels)
    assert not np.array_equal(one.windows.offsets, other.windows.offsets)


def test_window_and_density_parameters():
    data = make_code_data("latency", n_trials=20, window=0.2, dt=0.005, rate=20.0,
                          noise=0.0, jitter=0.0, random_state=0)
    assert data.windows.shape == (20, 40, 40)
    dense = make_code_data("rate", n_trials=20, rate=40.0, random_state=0)
    sparse = make_code_data("rate", n_trials=20, rate=5.0, noise=0.5, random_state=0)
    assert dense.windows.n_spikes().sum() > 2 * sparse.windows.n_spikes().sum()


@pytest.mark.parametrize("kwargs, match", [
    (dict(code="spikes"), "code must be one of"),
    (dict(code="rate", n_classes=1), "n_classes must be at least 2"),
    (dict(code="rate", n_trials=5), "n_trials=5 must be at least"),
    (dict(code="rate", window=0.0105), "whole number of dt"),
    (dict(code="rate", noise=-1.0), "noise must be a non-negative"),
    (dict(code="rate", jitter=float("nan")), "jitter must be a non-negative"),
    (dict(code="rate", coding_fraction=1.5), r"coding_fraction must lie in \(0, 1\]"),
    (dict(code="rate", n_neurons=4), "at least 2 are needed"),
    (dict(code="order", window=0.1), "does not fit in window"),
    (dict(code="latency", window=0.1), "lengthen the window"),
    (dict(code="synchrony", n_neurons=12), "at least 4 coding cells"),
    (dict(code="identity", n_neurons=12, n_classes=5), "different subsets"),
])
def test_bad_parameters_raise_clear_errors(kwargs, match):
    code = kwargs.pop("code")
    with pytest.raises(ValueError, match=match):
        make_code_data(code, **kwargs)
