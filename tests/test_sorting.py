"""Spike-sorting outputs and spike times in intervals -> SpikeWindows."""

import sys

import numpy as np
import pytest

from nfestimators import SpikeWindows
from nfestimators.data import from_pynapple, from_spikeinterface, windows_in_intervals


def test_windows_in_intervals_match_per_interval_builders():
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 10, 400))
    units = rng.integers(0, 5, 400)
    start, stop = np.array([0.5, 4.0, 7.2]), np.array([3.5, 6.0, 9.9])
    X, window_time = windows_in_intervals(times, units, start, stop, dt=0.01, window=0.2,
                                          prev_window=0.1, stride=0.1, n_neurons=5)
    for k in range(3):
        inside = (times >= start[k]) & (times < stop[k])
        ends = np.round(np.arange(0.2, stop[k] - start[k] + 1e-9, 0.1), 6)
        ref = SpikeWindows.from_spike_times(times[inside] - start[k], units[inside], ends,
                                            dt=0.01, window=0.2, prev_window=0.1, n_neurons=5)
        mine = X[X.trial == k]
        np.testing.assert_array_equal(mine.window_end, ref.window_end)
        np.testing.assert_array_equal(mine.to_counts(), ref.to_counts())
        np.testing.assert_array_equal(mine.to_counts(past=True), ref.to_counts(past=True))
    np.testing.assert_allclose(window_time, start[X.trial] + X.window_end)
    with pytest.raises(ValueError, match="stop > start"):
        windows_in_intervals(times, units, [1.0], [1.0], dt=0.01, window=0.1)
    with pytest.raises(ValueError, match="no window of 5"):
        windows_in_intervals(times, units, [0.0], [1.0], dt=0.01, window=5.0)


def test_spikeinterface_generate_sorting():
    si = pytest.importorskip("spikeinterface.core",
                             reason="the spikeinterface extra is not installed")
    sorting = si.generate_sorting(num_units=4, durations=[3.0, 2.0], sampling_frequency=30000.0,
                                  firing_rates=20.0, seed=0)
    data = from_spikeinterface(sorting, dt=0.005, window=0.1, prev_window=0.05)
    X = data.windows
    assert data.unit_ids.tolist() == list(sorting.get_unit_ids()) and X.n_neurons == 4
    assert set(X.trial.tolist()) == {0, 1}
    for segment in range(2):
        trains = [sorting.get_unit_spike_train(u, segment_index=segment) / 30000.0
                  for u in sorting.get_unit_ids()]
        times = np.concatenate(trains)
        units = np.repeat(np.arange(4), [len(t) for t in trains])
        mine = X[X.trial == segment]
        assert mine.n_spikes().sum() == len(times)  # every spike in exactly one window
        ref = SpikeWindows.from_spike_times(times, units, mine.window_end, dt=0.005,
                                            window=0.1, prev_window=0.05, n_neurons=4)
        np.testing.assert_array_equal(mine.to_counts(), ref.to_counts())
        np.testing.assert_array_equal(mine.to_counts(past=True), ref.to_counts(past=True))
    two = from_spikeinterface(sorting.select_units(sorting.get_unit_ids()[[1, 3]]), dt=0.005,
                              window=0.1)
    assert two.windows.n_neurons == 2 and two.unit_ids.tolist() == ["1", "3"]
    with pytest.raises(TypeError, match="BaseSorting"):
        from_spikeinterface(np.zeros(3), dt=0.01, window=0.1)


def test_spikeinterface_registered_recording_sets_the_duration():
    si = pytest.importorskip("spikeinterface.core",
                             reason="the spikeinterface extra is not installed")
    recording = si.generate_recording(num_channels=2, durations=[2.0], seed=0)
    sorting = si.generate_sorting(num_units=3, durations=[2.0], seed=0)
    sorting.register_recording(recording)
    X = from_spikeinterface(sorting, dt=0.01, window=0.25).windows
    assert X.window_end[-1] == 2.0 and len(X) == 8


def test_pynapple_tsgroup_tsd_and_epochs():
    nap = pytest.importorskip("pynapple", reason="the pynapple extra is not installed")
    group = nap.TsGroup({2: nap.Ts(t=np.array([0.05, 0.42, 1.31])),
                         5: nap.Ts(t=np.array([0.3, 0.33, 1.9]))},
                        time_support=nap.IntervalSet(0.0, 2.0))
    data = from_pynapple(group, dt=0.01, window=0.5)
    X = data.windows
    assert data.unit_ids.tolist() == [2, 5] and X.window_end.tolist() == [0.5, 1.0, 1.5, 2.0]
    np.testing.assert_array_equal(X.to_counts().sum(2), [[2, 2], [0, 0], [1, 0], [0, 1]])
    flat = from_pynapple(group.to_tsd(), dt=0.01, window=0.5).windows
    np.testing.assert_array_equal(flat.to_counts(), X.to_counts())
    trials = nap.IntervalSet(start=[0.0, 1.0], end=[0.5, 1.5])
    per_trial = from_pynapple(group, dt=0.01, window=0.25, epochs=trials)
    assert per_trial.windows.trial.tolist() == [0, 0, 1, 1]
    assert per_trial.window_time.tolist() == [0.25, 0.5, 1.25, 1.5]
    assert per_trial.windows.n_spikes().tolist() == [1, 3, 0, 1]
    single = from_pynapple(group[2], dt=0.01, window=0.5).windows
    assert single.n_neurons == 1 and single.n_spikes().sum() == 3
    with pytest.raises(ValueError, match="integer unit labels"):
        from_pynapple(nap.Tsd(t=np.array([0.1, 0.2]), d=np.array([0.5, 1.0])), dt=0.01,
                      window=0.1)
    with pytest.raises(TypeError, match="IntervalSet"):
        from_pynapple(group, dt=0.01, window=0.1, epochs=[(0, 1)])


@pytest.mark.parametrize("module, extra, call", [
    ("spikeinterface", "spikeinterface", from_spikeinterface),
    ("pynapple", "pynapple", from_pynapple),
])
def test_missing_library_names_the_extra(monkeypatch, module, extra, call):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"pip install 'nfestimators\[{extra}\]'"):
        call(object(), dt=0.01, window=0.1)


def test_importing_the_package_loads_no_optional_library():
    import subprocess

    code = ("import sys, nfestimators, nfestimators.data, nfestimators.plotting; "
            "print(sorted(m for m in ('pynwb', 'spikeinterface', 'pynapple', 'distributed') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
