"""Tests of nfestimators.datasets: the synthetic generator, the loaders and split_windows."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from nfestimators.data import SpikeWindows
from nfestimators.datasets import (
    load_auditory_cortex,
    load_v1al,
    load_visnav,
    make_spiking_data,
    split_windows,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AUDITORY = SHARED_DATA / "auditory_cortex"


@pytest.fixture(scope="module")
def data():
    return make_spiking_data(random_state=0)


def _half_split_r2(features, target):
    n = len(target) * 4 // 5
    model = Ridge(alpha=1.0).fit(features[:n], target[:n])
    return r2_score(target[n:], model.predict(features[n:]), multioutput="raw_values")


# ------------------------------------------------------------------ make_spiking_data
def test_make_spiking_data_default_size(data):
    X = data.windows
    assert isinstance(X, SpikeWindows)
    assert X.shape == (4000, 80, 5) and X.n_prev_bins == 5
    assert 5 <= X.n_spikes().mean() <= 20
    assert data.behavior.shape == (4000, 3) and data.behavior_names == ("speed", "pos_x", "pos_y")
    assert data.labels.shape == data.trial.shape == (4000,)
    assert data.counts.shape == data.rates.shape == (80, 20000)
    assert data.latent.shape == (20000, 3)
    assert X.frame_index is None and "stimulus" not in data and "coupling" not in data


def test_make_spiking_data_is_consistent(data):
    X = data.windows
    np.testing.assert_array_equal(X.to_counts().sum(axis=(1, 2)),
                                  data.counts.reshape(80, -1, 5).sum(axis=(0, 2)))
    # behaviour is the mean of the latent over each window's bins
    np.testing.assert_allclose(data.behavior, data.latent.reshape(-1, 5, 3).mean(axis=1))
    # one condition per trial, trials of 40 windows
    np.testing.assert_array_equal(data.trial, np.repeat(np.arange(100), 40))
    np.testing.assert_array_equal(data.labels, data.trial_conditions[data.trial])
    assert np.bincount(data.trial_conditions).tolist() == [25, 25, 25, 25]
    # the first window of a trial has an empty past (no context across trials)
    assert np.all(X.n_spikes(past=True)[::40] == 0)


def test_make_spiking_data_behavior_and_labels_decodable(data):
    counts = data.windows.to_counts().sum(axis=2)
    r2 = _half_split_r2(counts, data.behavior)
    assert np.all((r2 > 0.45) & (r2 < 0.9)), r2
    past = data.windows.to_counts(past=True).sum(axis=2)
    r2_past = _half_split_r2(np.hstack([counts, past]), data.behavior)
    assert np.all(r2_past > r2 + 0.03), (r2, r2_past)  # the past window carries information
    n = 3200
    clf = LinearDiscriminantAnalysis().fit(counts[:n], data.labels[:n])
    assert clf.score(counts[n:], data.labels[n:]) > 0.4  # chance is 0.25


def test_make_spiking_data_deterministic_and_leaves_global_rng():
    state = np.random.get_state()[1].copy()
    a = make_spiking_data(n_neurons=10, duration=10.0, random_state=3)
    b = make_spiking_data(n_neurons=10, duration=10.0, random_state=3)
    c = make_spiking_data(n_neurons=10, duration=10.0, random_state=4)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.behavior, b.behavior)
    assert not np.array_equal(a.counts, c.counts)
    g = make_spiking_data(n_neurons=10, duration=10.0,
                          random_state=np.random.default_rng(0))
    assert g.counts.shape == (10, 1000)


def test_make_spiking_data_options_keep_the_behaviour():
    plain = make_spiking_data(n_neurons=12, duration=8.0, random_state=1)
    both = make_spiking_data(n_neurons=12, duration=8.0, stimulus=True, coupling=True,
                             random_state=1)
    np.testing.assert_array_equal(plain.behavior, both.behavior)
    np.testing.assert_array_equal(plain.labels, both.labels)


def test_make_spiking_data_stimulus():
    d = make_spiking_data(duration=100.0, stimulus=True, frame_shape=(8, 12), random_state=0)
    X = d.windows
    assert d.stimulus.shape == (100 * 20 + 1, 8, 12) and d.frame_rate == 20.0
    assert X.frames.shape == (len(X), 3, 8, 12)
    # the last frame of a window is the one shown at its end
    np.testing.assert_array_equal(X.frame_index[:, -1], np.round(X.window_end * 20).astype(int))
    assert d.stimulus_drive.shape == (len(X),)
    assert np.count_nonzero(d.params.stimulus_gain) == 24
    assert d.params.filters.shape == (24, 8, 12)
    # the movie determines the drive exactly (it is linear in the pixels); the spikes only partly
    n = len(X) * 4 // 5
    frames = X.frames.reshape(len(X), -1).astype(np.float64)
    model = Ridge(alpha=1e-3, solver="cholesky").fit(frames[:n], d.stimulus_drive[:n])
    r2_frames = r2_score(d.stimulus_drive[n:], model.predict(frames[n:]))
    r2_counts = _half_split_r2(X.to_counts().sum(axis=2), d.stimulus_drive)[0]
    assert r2_frames > 0.95 and 0.1 < r2_counts < 0.6, (r2_frames, r2_counts)


def test_make_spiking_data_stimulus_filter_output_is_the_movie_term_of_the_rates():
    kwargs = dict(n_neurons=20, duration=20.0, random_state=1)
    d = make_spiking_data(stimulus=True, frame_shape=(8, 12), **kwargs)
    plain = make_spiking_data(**kwargs)  # same behaviour, tuning and conditions, no movie
    cells = np.flatnonzero(d.params.stimulus_gain)
    output = d.params.stimulus_filter_output
    assert output.shape == (len(d.stimulus), len(cells))
    frame = np.floor(np.round(np.arange(d.counts.shape[1]) * d.dt * d.frame_rate, 6)).astype(int)
    movie_term = d.params.stimulus_gain[cells, None] * output[frame].T  # (S, n_bins)
    # without the movie's term, the log rates are those of the movie-free data up to a
    # per-neuron constant (the baseline that keeps every neuron at its target rate)
    rest = np.log(d.rates[cells]) - movie_term - np.log(plain.rates[cells])
    uncapped = (d.rates[cells] < 1.0) & (plain.rates[cells] < 1.0)
    spread = [np.ptp(row[ok]) for row, ok in zip(rest, uncapped)]
    assert max(spread) < 1e-6, max(spread)


def _split_half_psth_r(d, trial_duration=2.0):
    """Median over neurons of the PSTH r (by window position in trial) of odd vs even trials."""
    X = d.windows
    position = np.round(X.window_end % trial_duration, 6)
    counts = X.to_counts().sum(axis=2)
    halves = [np.array([counts[(X.trial % 2 == h) & (position == p)].sum(0)
                        for p in np.unique(position)]) for h in (0, 1)]
    return np.nanmedian([np.corrcoef(a, b)[0, 1] for a, b in zip(halves[0].T, halves[1].T)])


def test_make_spiking_data_repeat_stimulus():
    kwargs = dict(n_neurons=30, duration=200.0, stimulus=True, frame_shape=(8, 12),
                  stimulus_fraction=1.0, random_state=0)
    d = make_spiking_data(repeat_stimulus=True, **kwargs)
    clip = 40  # 2 s trials at 20 frames per second
    np.testing.assert_array_equal(d.stimulus[clip:], d.stimulus[:-clip])
    assert not np.array_equal(d.stimulus[:clip // 2], d.stimulus[clip // 2:clip])
    # the movie drives every neuron: trial-averaged PSTHs are reproducible, unlike with one
    # long movie (rates then follow behaviour and a stimulus that never repeat)
    assert _split_half_psth_r(d) > 0.8
    assert _split_half_psth_r(make_spiking_data(**kwargs)) < 0.4
    with pytest.raises(ValueError, match="needs stimulus=True"):
        make_spiking_data(duration=10.0, repeat_stimulus=True)
    with pytest.raises(ValueError, match="whole number of frames"):
        make_spiking_data(duration=10.0, trial_duration=1.01, stimulus=True, repeat_stimulus=True)


def test_make_spiking_data_coupling_is_recoverable():
    d = make_spiking_data(n_neurons=30, duration=60.0, coupling=True, n_hubs=2, random_state=0)
    W = d.coupling
    assert W.shape == (30, 30) and np.all(np.diag(W) == 0)
    np.testing.assert_array_equal(np.flatnonzero(W.any(axis=0)), d.params.hubs)
    hub = d.params.hubs[0]
    targets = np.flatnonzero(W[:, hub])
    others = np.setdiff1d(np.flatnonzero(~W[:, hub].astype(bool)), [hub])
    fired = d.counts[hub, :-1] > 0
    after = d.counts[:, 1:]

    def gain(cells):  # rate in the bin after a hub spike / rate otherwise
        return after[cells][:, fired].mean() / after[cells][:, ~fired].mean()

    assert gain(targets) > 1.5 and gain(others) < 1.3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_neurons=0), "n_neurons"),
        (dict(n_neurons=2.5), "n_neurons"),
        (dict(duration=1.0), "shorter than one trial"),
        (dict(window=0.055), "whole number"),
        (dict(window=3.0), "longer than trial_duration"),
        (dict(dt=-0.01), "dt"),
        (dict(random_state="seed"), "random_state"),
        (dict(stimulus=True, frame_shape=(4,)), "frame_shape"),
        (dict(n_conditions=0), "n_conditions"),
    ],
)
def test_make_spiking_data_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_spiking_data(**{"n_neurons": 5, "duration": 4.0, **kwargs})


# ------------------------------------------------------------------ auditory cortex
def _write_csv(path, rows, header=None, n_bins=6):
    header = header or ["sound_ID", "role"] + [str(i) for i in range(n_bins)]
    lines = [",".join(header)] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = [
    [1, "train", 0, 2, 0, 1, 0, 3],
    [2, "val", 1, 0, 0, 0, 0, 0],
    [1, "test", 0, 0, 3, 3, 0, 0],
]


def test_load_auditory_cortex_small(tmp_path):
    d = load_auditory_cortex(_write_csv(tmp_path / "a.csv", ROWS))
    X = d.windows
    assert X.shape == (3, 3, 6) and X.n_prev_bins == 0 and d.n_cells == 3
    assert d.labels.tolist() == [1, 2, 1] and d.split.tolist() == ["train", "val", "test"]
    expected = np.zeros((3, 3, 6), int)
    for t, row in enumerate(ROWS):
        for b, cell in enumerate(row[2:]):
            if cell:
                expected[t, cell - 1, b] = 1
    np.testing.assert_array_equal(X.to_counts(), expected)
    ref = SpikeWindows.from_trials(expected, dt=0.001)
    for name in ("offsets", "neuron", "bin", "trial"):
        np.testing.assert_array_equal(getattr(X, name), getattr(ref, name))
    np.testing.assert_allclose(X.window_end, ref.window_end)


def test_load_auditory_cortex_options(tmp_path):
    header = ["role", "2", "0", "1", "sound_ID", "3", "4", "5"]  # any column order
    rows = [[r[1], r[4], r[2], r[3], r[0], r[5], r[6], r[7]] for r in ROWS]
    shuffled = load_auditory_cortex(_write_csv(tmp_path / "b.csv", rows, header))
    plain = load_auditory_cortex(_write_csv(tmp_path / "a.csv", ROWS))
    np.testing.assert_array_equal(shuffled.windows.to_counts(), plain.windows.to_counts())
    wide = load_auditory_cortex(tmp_path / "a.csv", n_cells=5)
    assert wide.windows.n_neurons == 5
    coarse = load_auditory_cortex(tmp_path / "a.csv", dt=0.002)
    assert coarse.windows.shape == (3, 3, 3) and coarse.dt == pytest.approx(0.002)
    np.testing.assert_array_equal(coarse.windows.to_counts(),
                                  plain.windows.to_counts().reshape(3, 3, 3, 2).sum(-1))


@pytest.mark.parametrize(
    "rows, header, kwargs, match",
    [
        (ROWS, ["sound_ID", "0", "1", "2", "3", "4", "5", "6"], {}, "role"),
        (ROWS, ["sound_ID", "role", "0", "1", "2", "3", "4", "7"], {}, "missing"),
        (ROWS, ["sound_ID", "role", "0", "1", "2", "3", "4", "x"], {}, "time bin"),
        ([[1, "train", 0, 1.5, 0, 0, 0, 0]], None, {}, "whole numbers"),
        ([[1, "train", 0, "", 0, 0, 0, 0]], None, {}, "whole numbers"),
        ([[1, "train", 0, -1, 0, 0, 0, 0]], None, {}, ">= 1"),
        ([["one", "train", 0, 1, 0, 0, 0, 0]], None, {}, "sound_ID"),
        ([[1, "holdout", 0, 1, 0, 0, 0, 0]], None, {}, "unknown role"),
        ([[1, "train", 0, 0, 0, 0, 0, 0]], None, {}, "no spikes"),
        (ROWS, None, dict(n_cells=2), "n_cells=2"),
        (ROWS, None, dict(n_cells=0), "positive integer"),
        (ROWS, None, dict(dt=0.0015), "multiple"),
        (ROWS, None, dict(dt=0.004), "whole number"),
        ([], None, {}, "no trials"),
    ],
)
def test_load_auditory_cortex_bad_input(tmp_path, rows, header, kwargs, match):
    file = _write_csv(tmp_path / "bad.csv", rows, header)
    with pytest.raises(ValueError, match=match):
        load_auditory_cortex(file, **kwargs)


def test_load_auditory_cortex_missing_or_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a file"):
        load_auditory_cortex(tmp_path / "nothing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="not a readable CSV"):
        load_auditory_cortex(tmp_path / "empty.csv")


@pytest.mark.parametrize(
    "name, n_trials, splits, n_cells, mean_spikes",
    [
        ("D_E_III.csv", 1458, (1152, 144, 162), 70, 111),
        ("D_A_I.csv", 1800, (1440, 180, 180), 50, 213),
    ],
)
def test_load_auditory_cortex_real_files(name, n_trials, splits, n_cells, mean_spikes):
    file = AUDITORY / name
    if not file.is_file():
        pytest.skip(f"real data {file} is absent (the shared data folder is not mounted)")
    d = load_auditory_cortex(file)
    assert d.windows.shape == (n_trials, n_cells, 500)
    assert tuple(int((d.split == s).sum()) for s in ("train", "val", "test")) == splits
    assert sorted(np.unique(d.labels).tolist()) == list(range(1, 19))
    assert d.windows.n_spikes().mean() == pytest.approx(mean_spikes, abs=1)


# ------------------------------------------------------------------ visnav
@pytest.fixture
def visnav_folder(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "spikerates_dt_0.01.npy", rng.gamma(0.3, 1.0, size=(6, 200)))
    np.save(tmp_path / "stimulus.npy", rng.normal(size=(41, 1, 3, 4)).astype(np.float32))
    np.save(tmp_path / "behavior_speed_dt_0.05.npy", np.arange(40.0))
    np.save(tmp_path / "th_dt_0.05.npy", -np.arange(40.0)[:, None])
    (tmp_path / "sel1.csv").write_text("2\n5\n6\n")
    return tmp_path


def test_load_visnav(visnav_folder):
    d = load_visnav(visnav_folder)
    X = d.windows
    rates = np.load(visnav_folder / "spikerates_dt_0.01.npy")
    assert X.shape == (40, 6, 5) and X.n_prev_bins == 5
    np.testing.assert_array_equal(X.to_counts().transpose(1, 0, 2).reshape(6, -1),
                                  np.rint(rates).astype(int))
    assert X.frames.shape == (40, 3, 3, 4) and d.stimulus.shape == (41, 3, 4)
    assert d.behavior_names == ("speed", "th") and X.behavior is None
    np.testing.assert_array_equal(d.behavior[:, 0], np.arange(40.0))  # sample at window start
    np.testing.assert_array_equal(d.neuron_ids, np.arange(1, 7))


def test_load_visnav_behavior_matches_spike_windows(visnav_folder):
    d = load_visnav(visnav_folder, window=0.1, prev_window=0.0, behavior_as_input=True)
    np.testing.assert_allclose(d.windows.behavior, d.behavior)
    np.testing.assert_allclose(d.behavior[:2, 0], [0.5, 2.5])  # mean of two 50 ms samples
    assert d.windows.behavior_names == ("speed", "th")


def test_load_visnav_selection(visnav_folder):
    full = load_visnav(visnav_folder).windows.to_counts()
    for selection in ("sel1", visnav_folder / "sel1.csv", [2, 5, 6]):
        d = load_visnav(visnav_folder, selection=selection)
        np.testing.assert_array_equal(d.neuron_ids, [2, 5, 6])
        np.testing.assert_array_equal(d.windows.to_counts(), full[:, [1, 4, 5]])
    with pytest.raises(ValueError, match="1-based"):
        load_visnav(visnav_folder, selection=[0, 1])
    with pytest.raises(ValueError, match="twice"):
        load_visnav(visnav_folder, selection=[1, 1])
    with pytest.raises(FileNotFoundError, match="selection"):
        load_visnav(visnav_folder, selection="sel9")


def test_load_visnav_minimal_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="Visnav folder"):
        load_visnav(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="spikerates"):
        load_visnav(tmp_path)
    np.save(tmp_path / "spikerates_dt_0.01.npy", np.ones((2, 50)))
    d = load_visnav(tmp_path)
    assert d.behavior is None and d.stimulus is None and d.windows.frame_index is None
    np.save(tmp_path / "phi_dt_0.05.npy", np.ones(10))
    np.save(tmp_path / "th_dt_0.05.npy", np.ones(9))
    with pytest.raises(ValueError, match="different lengths"):
        load_visnav(tmp_path)
    np.save(tmp_path / "spikerates_dt_0.01.npy", -np.ones((2, 50)))
    with pytest.raises(ValueError, match="negative"):
        load_visnav(tmp_path)
    np.save(tmp_path / "spikerates_dt_0.01.npy", np.ones(50))
    with pytest.raises(ValueError, match="2-D"):
        load_visnav(tmp_path)


# ------------------------------------------------------------------ V1AL
def _v1al_folder(folder, *, n_trials=6, n_frames=20, suffix=".pt"):
    rng = np.random.default_rng(0)
    trials = {k: rng.poisson(0.2, size=(4, 100)).astype(float) for k in range(1, n_trials + 1)}
    (folder / "Combo3_V1AL.pkl").write_bytes(pickle.dumps(trials))
    # frame value = 1000 * movie + frame number, stored (movies, frames, 1, H, W)
    values = 1000 * np.arange(3)[:, None] + np.arange(n_frames)[None]
    movies = np.broadcast_to(values[:, :, None, None, None], (3, n_frames, 1, 2, 3))
    movies = np.ascontiguousarray(movies, dtype=np.float32)
    if suffix == ".pt":
        import torch

        torch.save(torch.from_numpy(movies), folder / "Combo3_V1AL_stimulus.pt")
    else:
        np.save(folder / "Combo3_V1AL_stimulus.npy", movies)
    return trials


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_load_v1al_frames_follow_time_and_trial(tmp_path, suffix):
    trials = _v1al_folder(tmp_path, suffix=suffix)
    d = load_v1al(tmp_path, trials_per_stimulus=2)
    X = d.windows
    assert X.shape == (6 * 20, 4, 5) and X.n_prev_bins == 15
    assert d.stimulus.shape == (60, 2, 3)
    np.testing.assert_array_equal(d.trial, np.repeat(np.arange(1, 7), 20))
    np.testing.assert_array_equal(d.stimulus_id, (d.trial - 1) // 2)
    frames = X.frames[:, :, 0, 0]  # (n_samples, 4 frames)
    last = np.minimum(np.round(X.window_end * 20).astype(int), 19)
    np.testing.assert_array_equal(frames[:, -1], 1000 * d.stimulus_id + last)
    assert len(np.unique(frames[d.trial == 1, -1])) > 10  # the movie moves within a trial
    np.testing.assert_array_equal(X[d.trial == 3].to_counts().transpose(1, 0, 2).reshape(4, -1),
                                  trials[3])


def test_load_v1al_pkl_path_and_errors(tmp_path):
    _v1al_folder(tmp_path, suffix=".npy")
    d = load_v1al(tmp_path / "Combo3_V1AL.pkl", trials_per_stimulus=2, window=0.1,
                  prev_window=0.1, frame_window=0.1)
    assert d.windows.shape == (60, 4, 10) and d.windows.n_frames == 2
    with pytest.raises(ValueError, match="holds 3 movies"):
        load_v1al(tmp_path, trials_per_stimulus=1)
    with pytest.raises(ValueError, match="trials_per_stimulus"):
        load_v1al(tmp_path, trials_per_stimulus=0)
    (tmp_path / "Combo3_V1AL.pkl").write_bytes(pickle.dumps({"a": np.ones((2, 5))}))
    with pytest.raises(ValueError, match="1-based integers"):
        load_v1al(tmp_path)
    (tmp_path / "Combo3_V1AL.pkl").write_bytes(pickle.dumps([np.ones((2, 5))]))
    with pytest.raises(ValueError, match="dict"):
        load_v1al(tmp_path)
    (tmp_path / "Combo3_V1AL_stimulus.npy").unlink()
    with pytest.raises(FileNotFoundError, match="stimulus"):
        load_v1al(tmp_path)
    with pytest.raises(FileNotFoundError, match="V1AL folder"):
        load_v1al(tmp_path / "nowhere")


# ------------------------------------------------------------------ split_windows
def test_split_windows_by_window():
    X = np.zeros((200, 3))
    train, test, finetune = split_windows(X, test_size=0.2, finetune_size=0.05, random_state=0)
    assert len(test) == 40 and len(train) == 160 and len(finetune) == 8
    assert not set(train) & set(test) and set(train) | set(test) == set(range(200))
    assert set(finetune) <= set(train)
    again = split_windows(X, test_size=0.2, finetune_size=0.05, random_state=0)
    for a, b in zip((train, test, finetune), again):
        np.testing.assert_array_equal(a, b)
    # a tiny share still gives a non-empty test set; finetune 0 gives none
    train, test, finetune = split_windows(X, test_size=0.001, finetune_size=0, random_state=1)
    assert len(test) == 1 and len(finetune) == 0


def test_split_windows_by_trial(data):
    X = data.windows
    train, test, finetune = split_windows(X, test_size=0.25, random_state=0, by="trial")
    assert len(np.unique(X.trial[test])) == 25
    assert not set(X.trial[train]) & set(X.trial[test])
    assert set(finetune) <= set(train) and len(np.unique(X.trial[finetune])) == 1
    groups = np.repeat(np.arange(5), 4)
    train, test, _ = split_windows(np.zeros(20), test_size=1, by="trial", groups=groups,
                                   random_state=0)
    assert len(test) == 4 and len(np.unique(groups[test])) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(by="block"), "by must be"),
        (dict(by="trial"), "needs groups"),
        (dict(test_size=1.5), "test_size"),
        (dict(test_size=10), "leaves no window"),
        (dict(finetune_size=-1), "finetune_size"),
        (dict(by="trial", groups=np.zeros(10)), "at least 2 trials"),
        (dict(by="trial", groups=np.zeros(3)), "one trial label"),
        (dict(random_state="x"), "random_state"),
    ],
)
def test_split_windows_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_windows(np.zeros((10, 2)), **kwargs)
