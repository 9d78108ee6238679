"""Binning and PSTHs checked against well-kept libraries (elephant, pynapple) as oracles.

The package bins spikes and sums PSTHs itself (see docs/design.md, "What we write by hand and
what we take from libraries"); these tests pin its results to the libraries' on random spikes.
"""

import numpy as np
import pytest

from nfestimators import SpikeWindows
from nfestimators.data import windows_in_intervals
from nfestimators.metrics import psth

DT, DURATION, N_NEURONS = 0.01, 2.0, 4


@pytest.fixture(scope="module")
def spikes():
    """Random spike times of a few neurons (never on a bin edge, up to float noise)."""
    rng = np.random.default_rng(0)
    times = rng.uniform(0, DURATION, 600)
    units = rng.integers(0, N_NEURONS, 600)
    return times, units


@pytest.fixture(scope="module")
def trial_spikes():
    """Five trials of 1 s, each with its own random spikes; times within the trial."""
    rng = np.random.default_rng(1)
    return [(rng.uniform(0, 1.0, 150), rng.integers(0, N_NEURONS, 150)) for _ in range(5)]


def _binned(times, units):
    """Our binning: one window spanning the recording, as dense counts (n_neurons, n_bins)."""
    X = SpikeWindows.from_spike_times(times, units, [DURATION], dt=DT, window=DURATION,
                                      n_neurons=N_NEURONS)
    return X.to_counts()[0]


def _trial_psth(trial_spikes, window):
    """Our PSTH per bin, summed over trials: windows of ``window`` s in every trial."""
    times = np.concatenate([t + 10.0 * k for k, (t, _) in enumerate(trial_spikes)])
    units = np.concatenate([u for _, u in trial_spikes])
    starts = 10.0 * np.arange(len(trial_spikes))
    X, _ = windows_in_intervals(times, units, starts, starts + 1.0, dt=DT, window=window,
                                n_neurons=N_NEURONS)
    return psth(X, bin_by="bin")  # (n_bins of one trial, n_neurons)


def test_binning_matches_elephant(spikes):
    neo = pytest.importorskip("neo", reason="elephant (and neo) are not installed")
    pq = pytest.importorskip("quantities")
    conversion = pytest.importorskip("elephant.conversion")
    times, units = spikes
    trains = [neo.SpikeTrain(times[units == n] * pq.s, t_start=0 * pq.s, t_stop=DURATION * pq.s)
              for n in range(N_NEURONS)]
    expected = conversion.BinnedSpikeTrain(trains, bin_size=DT * pq.s).to_array()
    np.testing.assert_array_equal(_binned(times, units), expected)


def test_binning_matches_pynapple(spikes):
    nap = pytest.importorskip("pynapple", reason="pynapple is not installed")
    times, units = spikes
    group = nap.TsGroup({n: nap.Ts(np.sort(times[units == n])) for n in range(N_NEURONS)})
    counts = group.count(bin_size=DT, ep=nap.IntervalSet(0.0, DURATION))
    np.testing.assert_array_equal(_binned(times, units), np.asarray(counts.values).T)


@pytest.mark.parametrize("window", [0.1, 1.0])
def test_trial_psth_matches_elephant_time_histogram(trial_spikes, window):
    neo = pytest.importorskip("neo", reason="elephant (and neo) are not installed")
    pq = pytest.importorskip("quantities")
    statistics = pytest.importorskip("elephant.statistics")
    ours = _trial_psth(trial_spikes, window)
    for n in range(N_NEURONS):
        trains = [neo.SpikeTrain(t[u == n] * pq.s, t_start=0 * pq.s, t_stop=1.0 * pq.s)
                  for t, u in trial_spikes]
        hist = statistics.time_histogram(trains, bin_size=DT * pq.s, output="counts")
        np.testing.assert_array_equal(ours[:, n], np.asarray(hist).ravel())


def test_trial_psth_matches_pynapple_counts_per_trial(trial_spikes):
    nap = pytest.importorskip("pynapple", reason="pynapple is not installed")
    ours = _trial_psth(trial_spikes, 0.1)
    starts = 10.0 * np.arange(len(trial_spikes))
    for n in range(N_NEURONS):
        spikes = nap.Ts(np.sort(np.concatenate(
            [t[u == n] + s for (t, u), s in zip(trial_spikes, starts)])))
        per_trial = [spikes.count(bin_size=DT, ep=nap.IntervalSet(s, s + 1.0)).values
                     for s in starts]
        np.testing.assert_array_equal(ours[:, n], np.sum(per_trial, axis=0).ravel())
