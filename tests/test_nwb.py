"""load_nwb: the real units file of ../shared/data and files written here with pynwb."""

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from nfestimators import SpikeWindows
from nfestimators.data import load_nwb

pynwb = pytest.importorskip("pynwb", reason="the nwb extra (pynwb) is not installed")
from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries  # noqa: E402
from pynwb.image import ImageSeries  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "nwb" / "A8604-211122.nwb"

ABSENT = f"real NWB file {REAL} is absent (../shared/data beside the repo)"
SPIKES = {0: [0.012, 0.35, 1.21, 2.5], 1: [0.5, 0.51, 1.7], 2: [0.2, 2.9]}
QUALITY = ["good", "mua", "good"]


def write_session(path, *, behavior=True, stimulus=True, trials=True):
    nwb = pynwb.NWBFile(session_description="test", identifier="t",
                        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit_column("quality", "sorter label")
    for unit, times in SPIKES.items():
        nwb.add_unit(spike_times=times, quality=QUALITY[unit], id=10 + unit)
    if trials:
        nwb.add_trial_column("condition", "stimulus condition")
        nwb.add_trial(start_time=0.0, stop_time=1.0, condition="left")
        nwb.add_trial(start_time=1.2, stop_time=2.2, condition="right")
    if behavior:
        module = nwb.create_processing_module("behavior", "tracked behaviour")
        stamps = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1])
        xy = np.stack([stamps * 10, -stamps], axis=1)
        xy[9] = np.nan  # tracker lost the animal at t=1.7
        module.add(Position(spatial_series=SpatialSeries(
            name="position", data=xy, timestamps=stamps, reference_frame="arena centre")))
        module.add(BehavioralTimeSeries(time_series=pynwb.TimeSeries(
            name="speed", data=np.arange(300.0), unit="cm/s", rate=100.0, starting_time=0.0)))
    if stimulus:
        movie = np.arange(30 * 2 * 3, dtype=np.float32).reshape(30, 2, 3)
        nwb.add_stimulus(ImageSeries(name="movie", data=movie, unit="n.a.", rate=10.0,
                                     starting_time=0.0))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.mark.skipif(not REAL.exists(), reason=ABSENT)
def test_real_units_file_gives_every_spike_once():
    data = load_nwb(REAL, dt=0.01, window=0.1)
    X = data.windows
    assert X.n_neurons == 3 and data.unit_ids.tolist() == [6, 191, 206]
    assert X.n_spikes().sum() == 21354
    with pynwb.NWBHDF5IO(str(REAL), "r") as io:
        units = io.read().units
        first = np.asarray(units["spike_times"][0])
    table = X.to_spike_times()
    got = np.sort(table.time[table.neuron == 0].to_numpy())
    np.testing.assert_allclose(got, np.floor(np.round(first / 0.01, 6)) * 0.01, atol=1e-6)
    assert data.trials is None and data.labels is None and data.behavior is None


@pytest.mark.skipif(not REAL.exists(), reason=ABSENT)
def test_real_file_epochs_table_and_unit_selection():
    data = load_nwb(REAL, dt=0.01, window=0.5, trials="epochs", unit_column="group",
                    unit_values=0)
    assert len(data.trials) == 1 and np.all(data.windows.trial == 0)
    assert data.windows.n_neurons == 3 and data.windows.n_spikes().sum() == 21354
    with pytest.raises(ValueError, match="no intervals table 'trials'.*epochs"):
        load_nwb(REAL, dt=0.01, window=0.5, trials="trials")


def test_trials_units_and_labels(tmp_path):
    path = write_session(tmp_path / "s.nwb", behavior=False, stimulus=False)
    data = load_nwb(path, dt=0.01, window=0.5, unit_column="quality", unit_values="good")
    X = data.windows
    assert data.unit_ids.tolist() == [10, 12] and X.n_neurons == 2
    assert X.trial.tolist() == [0, 0, 1, 1] and X.window_end.tolist() == [0.5, 1.0, 0.5, 1.0]
    assert data.window_time.tolist() == [0.5, 1.0, 1.7, 2.2]
    assert data.labels is None
    # trial 0: unit 10 at 0.012, 0.35; unit 12 at 0.2 -> window 0; trial 1 (from 1.2): 1.21 -> 0.01
    assert X.n_spikes().tolist() == [3, 0, 1, 0]
    labelled = load_nwb(path, dt=0.01, window=0.5, label_column="condition")
    assert labelled.labels.tolist() == ["left", "left", "right", "right"]
    whole = load_nwb(path, dt=0.01, window=None)
    assert whole.windows.shape == (2, 3, 100) and whole.windows.n_spikes().tolist() == [5, 2]


def test_continuous_windows_without_trials(tmp_path):
    path = write_session(tmp_path / "s.nwb", behavior=False, stimulus=False, trials=False)
    data = load_nwb(path, dt=0.1, window=1.0, prev_window=1.0)
    X = data.windows
    assert X.window_end.tolist() == [1.0, 2.0, 3.0]
    assert X.n_spikes().tolist() == [5, 2, 2] and X.n_spikes(past=True).tolist() == [0, 5, 2]
    reference = SpikeWindows.from_spike_times(
        np.concatenate(list(SPIKES.values())), np.repeat([0, 1, 2], [4, 3, 2]), [1.0, 2.0, 3.0],
        dt=0.1, window=1.0, prev_window=1.0)
    np.testing.assert_array_equal(X.to_counts(), reference.to_counts())
    np.testing.assert_array_equal(X.to_counts(past=True), reference.to_counts(past=True))


def test_behavior_interpolated_at_window_ends_and_gaps_dropped(tmp_path):
    path = write_session(tmp_path / "s.nwb", stimulus=False)
    # window ends (session time): trial 0 at .25 .5 .75 1.0, trial 1 at 1.45 1.7 1.95 2.2.
    # No value at .75, 1.0, 1.45 (the 0.6 -> 1.5 s tracking gap), 1.7 (a NaN sample) and
    # 2.2 (after the last sample): those windows are dropped, never filled.
    with pytest.warns(UserWarning, match="5 of 8 windows have no behaviour"):
        data = load_nwb(path, dt=0.05, window=0.25, label_column="condition")
    X = data.windows
    assert X.behavior_names == ("position_x", "position_y", "speed")
    np.testing.assert_allclose(data.window_time, [0.25, 0.5, 1.95])
    np.testing.assert_allclose(X.behavior, [[2.5, -0.25, 25], [5, -0.5, 50], [19.5, -1.95, 195]])
    assert data.labels.tolist() == ["left", "left", "right"] and X.trial.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(data.behavior, X.behavior)
    # a wider gap tolerance interpolates across the gap (still never across the NaN)
    with pytest.warns(UserWarning, match="2 of 8"):
        wide = load_nwb(path, dt=0.05, window=0.25, max_behavior_gap=1.0)
    np.testing.assert_allclose(wide.behavior[:, 0], wide.window_time * 10)
    speed = load_nwb(path, dt=0.05, window=0.25, behavior=["speed"])
    assert speed.windows.behavior_names == ("speed",) and len(speed.windows) == 8


def test_image_stimulus_frames_at_window_ends(tmp_path):
    path = write_session(tmp_path / "s.nwb", behavior=False)
    data = load_nwb(path, dt=0.05, window=0.25, frame_window=0.3)
    X = data.windows
    assert X.n_frames == 3 and X.stimulus.shape == (30, 2, 3)
    # frame shown at session time t is floor(t * 10); the window ends at 0.25 s -> frames 0..2
    last = np.floor(np.round(data.window_time * 10, 6)).astype(int)
    np.testing.assert_array_equal(X.frame_index[:, -1], np.clip(last, 0, 29))
    np.testing.assert_array_equal(X.frame_index[0], [0, 1, 2])
    np.testing.assert_array_equal(X.frames[1, -1], np.arange(30 * 2 * 3).reshape(30, 2, 3)[5])
    assert load_nwb(path, dt=0.05, window=0.25, stimulus=None).windows.frame_index is None
    sub = X[[1, 3]]
    assert sub.stimulus is X.stimulus and sub.frame_index.tolist() == X.frame_index[[1, 3]].tolist()


def test_behavior_warning_points_at_the_caller(tmp_path):
    path = write_session(tmp_path / "s.nwb", stimulus=False)
    with pytest.warns(UserWarning) as caught:
        load_nwb(path, dt=0.05, window=0.25)
    assert caught[0].filename == __file__


def test_an_open_nwbfile_is_read_too(tmp_path):
    path = write_session(tmp_path / "s.nwb")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        data = load_nwb(io.read(), dt=0.05, window=0.25, behavior=None, stimulus=None)
    assert len(data.windows) == 8


@pytest.mark.parametrize("kwargs, message", [
    (dict(unit_column="quality"), "needs unit_values"),
    (dict(unit_values="good"), "needs unit_column"),
    (dict(unit_column="depth", unit_values=1), "no column 'depth'.*quality"),
    (dict(unit_column="quality", unit_values="noise"), "no unit has quality"),
    (dict(unit_column="quality", unit_values="goodish"), "no unit has quality"),  # no prefix
    (dict(label_column="side"), "trials table has no column 'side'"),
    (dict(behavior=["head"]), r"\['head'\] are not in processing.*position.*speed"),
    (dict(stimulus="movie2"), "'movie2' is not a greyscale"),
    (dict(trials=None, label_column="condition"), "label_column needs a trials table"),
    (dict(trials=None, window=None), "window=None"),
])
def test_bad_arguments_name_the_fix(tmp_path, kwargs, message):
    path = write_session(tmp_path / "s.nwb")
    options = {"dt": 0.05, "window": 0.25, **kwargs}
    with pytest.raises(ValueError, match=message):
        load_nwb(path, **options)


def test_missing_file_and_missing_units(tmp_path):
    with pytest.raises(FileNotFoundError, match="NWB file"):
        load_nwb(tmp_path / "absent.nwb", dt=0.01, window=0.1)
    nwb = pynwb.NWBFile(session_description="x", identifier="x",
                        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="no units table"):
        load_nwb(nwb, dt=0.01, window=0.1)


def test_missing_pynwb_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r"pip install 'nfestimators\[nwb\]'"):
        load_nwb("x.nwb", dt=0.01, window=0.1)


def test_behavior_follows_the_spike_time_builders_rules(tmp_path):
    # load_nwb and SpikeWindows.from_spike_times share one interpolation at window ends
    path = write_session(tmp_path / "s.nwb", stimulus=False, trials=False)
    with pytest.warns(UserWarning, match="1 of 12 windows"):  # the window ending at 3.0 s
        data = load_nwb(path, dt=0.05, window=0.25, behavior=["speed"])
    times = np.concatenate(list(SPIKES.values()))
    units = np.repeat(list(SPIKES), [len(t) for t in SPIKES.values()])
    order = np.argsort(times, kind="stable")
    ends = np.arange(1, 13) * 0.25
    built = SpikeWindows.from_spike_times(
        times[order], units[order], ends, dt=0.05, window=0.25, behavior=np.arange(300.0),
        behavior_times=np.arange(300) / 100.0, max_behavior_gap=0.05, missing_behavior="drop")
    np.testing.assert_allclose(data.window_time, built.window_end)
    np.testing.assert_allclose(data.behavior, built.behavior)
