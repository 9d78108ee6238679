import numpy as np
import pytest
from sklearn.model_selection import KFold, train_test_split

from nfestimators import SpikeWindows
from nfestimators.data import as_windows


def dense_windows(counts, n_bins, n_prev, step, trial=None):
    """Reference: slice windows out of a dense raster with a plain loop."""
    total = counts.shape[1]
    trial = np.zeros(total, int) if trial is None else trial
    cur, prev = [], []
    for lab in np.unique(trial):  # segments in order of appearance match sorted labels here
        idx = np.flatnonzero(trial == lab)
        s, e = idx[0], idx[-1] + 1
        for end in range(s + n_bins, e + 1, step):
            start = end - n_bins
            cur.append(counts[:, start:end])
            p = np.zeros((counts.shape[0], n_prev), int)
            lo = max(s, start - n_prev)
            if n_prev:
                p[:, n_prev - (start - lo):] = counts[:, lo:start]
            prev.append(p)
    return np.array(cur), np.array(prev)


@pytest.mark.parametrize("n_prev,step", [(0, 5), (5, 5), (15, 5), (5, 2)])
def test_from_counts_matches_dense_slicing(n_prev, step):
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.3, size=(7, 103))
    trial = np.repeat([0, 1, 2], [40, 33, 30])
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=n_prev * 0.01,
                                 stride=step * 0.01, trial=trial)
    cur, prev = dense_windows(counts, 5, n_prev, step, trial)
    np.testing.assert_array_equal(X.to_counts(), cur)
    if n_prev:
        np.testing.assert_array_equal(X.to_counts(past=True), prev)
    assert X.shape == (len(cur), 7, 5)
    # events are in token order: time-major, neuron ascending inside a bin
    for i in range(len(X)):
        sl = slice(X.offsets[i], X.offsets[i + 1])
        key = X.bin[sl].astype(int) * 1000 + X.neuron[sl]
        assert np.all(np.diff(key) >= 0)


def test_windows_do_not_cross_trials():
    counts = np.ones((2, 20), int)
    trial = np.repeat([5, 9], 10)
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05, trial=trial)
    assert X.trial.tolist() == [5, 5, 9, 9]
    # first window of each trial has an empty past (clipped at the trial start)
    assert X.n_spikes(past=True).tolist() == [0, 10, 0, 10]
    np.testing.assert_allclose(X.window_end, [0.05, 0.1, 0.15, 0.2])


def test_indexing_and_sklearn_splitters():
    rng = np.random.default_rng(1)
    X = SpikeWindows.from_counts(rng.poisson(0.5, size=(4, 200)), dt=0.01, window=0.05,
                                 prev_window=0.05, behavior=rng.normal(size=(200, 2)))
    dense = X.to_counts()
    idx = np.array([3, 0, 7, 7])
    np.testing.assert_array_equal(X[idx].to_counts(), dense[idx])
    np.testing.assert_array_equal(X[idx].behavior, X.behavior[idx])
    np.testing.assert_array_equal(X[2:5].to_counts(), dense[2:5])
    np.testing.assert_array_equal(X[X.n_spikes() > 2].to_counts(), dense[X.n_spikes() > 2])
    np.testing.assert_array_equal(X[-1].to_counts(), dense[-1:])
    Xtr, Xte, ytr, yte = train_test_split(X, np.arange(len(X)), test_size=0.25, random_state=0)
    np.testing.assert_array_equal(Xte.to_counts(), dense[yte])
    for tr, te in KFold(3).split(X):
        assert len(X[tr]) == len(tr)
    with pytest.raises(IndexError):
        X[[len(X)]]


def test_from_trials_whole_trial_windows():
    trials = [np.eye(3, 4, dtype=int), 2 * np.eye(3, 6, dtype=int)]
    X = SpikeWindows.from_trials(trials, dt=0.001)
    assert X.shape == (2, 3, 6)
    assert X.n_spikes().tolist() == [3, 6]
    np.testing.assert_array_equal(X.to_counts()[1], trials[1])
    np.testing.assert_allclose(X.window_end, [0.004, 0.006])


def test_from_trials_windowed_time_restarts():
    trials = np.random.default_rng(0).poisson(0.4, size=(3, 5, 30))
    X = SpikeWindows.from_trials(trials, dt=0.01, window=0.1, prev_window=0.1)
    assert len(X) == 9
    np.testing.assert_allclose(X.window_end[:3], [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(X.to_counts()[3], trials[1][:, :10])


def test_from_spike_times_matches_counts():
    rng = np.random.default_rng(2)
    counts = rng.poisson(0.2, size=(6, 100))
    units, bins = np.nonzero(counts)
    reps = counts[units, bins]
    times = (np.repeat(bins, reps) + rng.uniform(0.05, 0.95, reps.sum())) * 0.01
    units = np.repeat(units, reps)
    perm = rng.permutation(len(times))
    ends = np.arange(1, 21) * 0.05
    X = SpikeWindows.from_spike_times(times[perm], units[perm], ends, dt=0.01, window=0.05,
                                      prev_window=0.05, n_neurons=6)
    Y = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)
    np.testing.assert_array_equal(X.to_counts(), Y.to_counts())
    np.testing.assert_array_equal(X.to_counts(past=True), Y.to_counts(past=True))
    np.testing.assert_array_equal(X.neuron, Y.neuron)


def test_from_spike_times_respects_trials():
    X = SpikeWindows.from_spike_times([0.01, 0.01], [0, 1], [0.05, 0.05], dt=0.01, window=0.05,
                                      trial=[0, 1], spike_trial=[1, 0])
    assert X.neuron.tolist() == [1, 0]


def test_arrays_convert():
    assert as_windows(np.ones((5, 3), int)).shape == (5, 3, 1)
    X = as_windows(np.arange(24).reshape(2, 3, 4) % 3)
    np.testing.assert_array_equal(X.to_counts(), np.arange(24).reshape(2, 3, 4) % 3)


def test_stimulus_frames_follow_time():
    movie = np.arange(40, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    counts = np.zeros((2, 100), int)
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, stimulus=movie, frame_rate=20,
                                 frame_window=0.15)
    assert X.frame_index.shape == (20, 3)
    # the last frame is the one shown at the window end (t = 0.05 k -> frame k)
    np.testing.assert_array_equal(X.frame_index[:, -1], np.arange(1, 21))
    assert X.frames.shape == (20, 3, 2, 3)
    assert X.stimulus is movie  # held by reference
    sub = X[[4, 2]]
    assert sub.stimulus is movie
    np.testing.assert_array_equal(sub.frame_index, X.frame_index[[4, 2]])


def test_stimulus_callback_and_behavior_dict():
    counts = np.zeros((2, 40), int)
    calls = []

    def cb(window_end, trial, n_frames):
        calls.append(n_frames)
        return np.zeros((len(window_end), n_frames), int)

    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.1, stimulus=np.zeros((3, 2, 2)),
                                 frame_rate=30, stimulus_callback=cb,
                                 behavior={"speed": np.arange(8.0), "phi": np.ones(8)},
                                 behavior_dt=0.05)
    assert calls == [3]
    assert X.behavior_names == ("speed", "phi")
    np.testing.assert_allclose(X.behavior[:, 0], [0.5, 2.5, 4.5, 6.5])


@pytest.mark.parametrize("bad,match", [
    (np.full((2, 10), np.nan), "NaN"),
    (-np.ones((2, 10)), "Negative values"),
    (np.full((2, 10), 0.5), "non-integer"),
    (np.zeros((2, 10, 3)), "2-D"),
    (np.zeros((2, 0)), "empty"),
    (np.array([["a", "b"]]), "counts"),
])
def test_bad_counts(bad, match):
    with pytest.raises(ValueError, match=match):
        SpikeWindows.from_counts(bad, dt=0.01, window=0.05)


def test_bad_geometry_and_lengths():
    counts = np.zeros((2, 10), int)
    with pytest.raises(ValueError, match="whole number"):
        SpikeWindows.from_counts(counts, dt=0.01, window=0.055)
    with pytest.raises(ValueError, match="no complete window"):
        SpikeWindows.from_counts(counts, dt=0.01, window=0.5)
    with pytest.raises(ValueError, match="one label per bin"):
        SpikeWindows.from_counts(counts, dt=0.01, window=0.05, trial=[0, 1])
    with pytest.raises(ValueError, match="same length"):
        SpikeWindows.from_spike_times([0.1, 0.2], [0], [0.5], dt=0.01, window=0.05)
    with pytest.raises(ValueError, match="same number of neurons"):
        SpikeWindows.from_trials([np.zeros((2, 5)), np.zeros((3, 5))], dt=0.01)
    with pytest.raises(ValueError, match="behavior"):
        SpikeWindows.from_counts(counts, dt=0.01, window=0.05, behavior=np.full(10, np.nan))
    with pytest.raises(ValueError, match="shape"):
        as_windows(np.zeros(5))


def test_inputs_not_modified():
    counts = np.random.default_rng(0).poisson(1.0, size=(3, 50)).astype(float)
    before = counts.copy()
    SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)
    np.testing.assert_array_equal(counts, before)


def test_concatenate():
    X = SpikeWindows.from_counts(np.random.default_rng(0).poisson(1, (3, 50)), dt=0.01,
                                 window=0.05, prev_window=0.05)
    Y = SpikeWindows.concatenate([X[:3], X[3:]])
    np.testing.assert_array_equal(Y.to_counts(), X.to_counts())
    np.testing.assert_array_equal(Y.to_counts(past=True), X.to_counts(past=True))


def test_rebin_sums_bins_of_current_and_past_windows():
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.3, (5, 400))
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.1, prev_window=0.1)
    Y = X.rebin(0.05)
    assert (Y.dt, Y.n_bins, Y.n_prev_bins) == (0.05, 2, 2)
    for past in (False, True):
        fine = X.to_counts(past=past)
        assert np.array_equal(fine.reshape(*fine.shape[:2], 2, 5).sum(-1),
                              Y.to_counts(past=past))
    assert X.rebin(0.01) is X and X.rebin(None) is X


@pytest.mark.parametrize("dt, match", [(0, "positive"), (-0.1, "positive"), ("a", "positive"),
                                       (0.015, "whole multiple"), (0.03, "divide")])
def test_rebin_refuses_bin_widths_off_the_grid(dt, match):
    X = SpikeWindows.from_counts(np.ones((2, 40), int), dt=0.01, window=0.1, prev_window=0.1)
    with pytest.raises(ValueError, match=match):
        X.rebin(dt)


# ------------------------------------------------------------ from_spike_times (issue #15)
def test_negative_spike_time_stays_in_its_own_trial():
    # trial 1 has a spike 5 ms before its onset; trial 0's window must not see it
    X = SpikeWindows.from_spike_times([-0.005, 0.012], [0, 1], [0.05, 0.05], dt=0.01,
                                      window=0.05, prev_window=0.02, trial=[0, 1],
                                      spike_trial=[1, 0])
    assert X.n_spikes().tolist() == [1, 0]
    assert X.neuron.tolist() == [1]
    assert X.to_counts(past=True)[1, 0].tolist() == [0, 1]  # past bins [-0.02, -0.01, 0)
    assert X.n_spikes(past=True).tolist() == [0, 1]


def test_window_ends_off_the_grid_and_zero_dt_are_refused():
    with pytest.raises(ValueError, match=r"window_ends.*not on the dt=0.01 s grid"):
        SpikeWindows.from_spike_times([0.01], [0], [0.05, 0.0512], dt=0.01, window=0.05)
    with pytest.raises(ValueError, match="dt must be a positive"):
        SpikeWindows.from_spike_times([0.01], [0], [0.05], dt=0, window=0.05)


def test_spike_times_round_trip_through_to_spike_times():
    times = np.array([0.012, 0.031, 0.031, 0.074])
    X = SpikeWindows.from_spike_times(times, [2, 0, 1, 1], [0.05, 0.1], dt=0.01, window=0.05)
    table = X.to_spike_times()
    np.testing.assert_allclose(table.time, np.floor(times / 0.01) * 0.01)
    assert table.neuron.tolist() == [2, 0, 1, 1] and table.window.tolist() == [0, 0, 0, 1]


# ------------------------------------------------- behaviour at its own times (issue #17)
TRACK_TIMES = np.array([0.0, 0.1, 0.2, 0.6, 0.7])  # a gap of 0.4 s between 0.2 and 0.6


def timed(window_ends, **kwargs):
    return SpikeWindows.from_spike_times([0.01], [0], window_ends, dt=0.01, window=0.05,
                                         behavior={"x": TRACK_TIMES * 10},
                                         behavior_times=TRACK_TIMES, **kwargs)


def test_behavior_interpolated_at_the_window_end():
    X = timed([0.05, 0.15, 0.2, 0.65])
    np.testing.assert_allclose(X.behavior[:, 0], [0.5, 1.5, 2.0, 6.5])  # x = 10 t
    assert X.behavior_names == ("x",)


def test_behavior_mean_over_the_window():
    t = np.arange(21) * 0.01
    X = SpikeWindows.from_spike_times([0.01], [0], [0.1, 0.2], dt=0.01, window=0.1,
                                      behavior=np.arange(21.0), behavior_times=t,
                                      behavior_at="mean")
    np.testing.assert_allclose(X.behavior[:, 0], [4.5, 14.5])  # samples 0..9 and 10..19


def test_behavior_gaps_and_outside_windows_are_refused_or_dropped_on_request():
    ends = [0.05, 0.4, 0.65, 0.9]  # 0.4: inside the 0.4 s gap; 0.9: after the last sample
    with pytest.raises(ValueError, match=r"2 of 4 windows have no behaviour value: 1 reach "
                                         r"outside .* 1 fall in gaps .*missing_behavior='drop'"):
        timed(ends)
    X = timed(ends, missing_behavior="drop")
    np.testing.assert_allclose(X.window_end, [0.05, 0.65])
    np.testing.assert_allclose(X.behavior[:, 0], [0.5, 6.5])
    assert len(timed(ends[:3], max_behavior_gap=0.5)) == 3  # a longer allowed gap bridges it
    with pytest.raises(ValueError, match="no window is left"):
        timed([0.9, 1.0], missing_behavior="drop")


@pytest.mark.parametrize("kwargs, match", [
    (dict(behavior_times=TRACK_TIMES[::-1]), "strictly increasing"),
    (dict(behavior_times=TRACK_TIMES[:3]), "one time per behaviour sample"),
    (dict(behavior_at="start"), "behavior_at"),
    (dict(missing_behavior="fill"), "missing_behavior"),
    (dict(behavior_times=None), "needs behavior_times"),
])
def test_timed_behavior_bad_input(kwargs, match):
    args = dict(behavior=TRACK_TIMES, behavior_times=TRACK_TIMES)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SpikeWindows.from_spike_times([0.01], [0], [0.05], dt=0.01, window=0.05, **args)


# --------------------------------------------- behaviour and stimulus checks (issue #15)
def test_behavior_shorter_than_the_recording_is_an_error():
    counts = np.ones((2, 100), int)  # 1 s
    with pytest.raises(ValueError, match=r"behavior covers 0.3 s .* behavior_dt"):
        SpikeWindows.from_counts(counts, dt=0.01, window=0.05, behavior=np.ones(30))
    X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, behavior=np.arange(30.0),
                                 behavior_dt=1 / 30)  # the same trace at its own rate
    assert X.behavior.shape == (20, 1)


def test_nan_in_the_stimulus_movie_is_refused():
    movie = np.zeros((20, 3, 3))
    movie[4, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"stimulus contains NaN .* frame 4"):
        SpikeWindows.from_counts(np.ones((2, 50), int), dt=0.01, window=0.05, stimulus=movie,
                                 frame_rate=20.0)


# --------------------------------------------------------- likely mistakes (issue #15)
@pytest.mark.parametrize("build, match", [
    (lambda: SpikeWindows.from_counts(np.ones((2400, 60), int), dt=0.01, window=0.05),
     "counts.T"),
    (lambda: SpikeWindows.from_trials(np.ones((2, 600, 20), int), dt=0.01), "swapaxes"),
    (lambda: SpikeWindows.from_counts(np.ones((2, 600), int), dt=10, window=50),
     "dt=0.01"),
    (lambda: SpikeWindows.from_spike_times(np.arange(100) * 300.0, np.zeros(100, int),
                                           [1.0, 2.0], dt=0.01, window=1.0),
     "sampling rate"),
    (lambda: SpikeWindows.from_spike_times([0.1, 0.2], [3, 392], [1.0], dt=0.01, window=1.0),
     "np.unique"),
    (lambda: SpikeWindows.from_spike_times(np.linspace(0, 0.9, 300), np.zeros(300, int),
                                           np.arange(1, 41) * 1.0, dt=0.01, window=0.05),
     "40 of 40 windows hold no spike"),
    (lambda: SpikeWindows.from_counts(np.full((2, 100), 6746), dt=0.001, window=0.05),
     "ids or rates"),
])
def test_likely_wrong_inputs_warn_with_the_fix(build, match):
    from nfestimators.data import ImplausibleDataWarning

    with pytest.warns(ImplausibleDataWarning, match=match):
        build()


def test_misleading_inputs_get_errors_that_say_what_to_do():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = SpikeWindows.from_counts(np.ones((2, 20), int), dt=0.01, window=0.05)
    with pytest.raises(TypeError, match=r"X.to_counts\(\)"):
        np.asarray(X)
    with pytest.raises(TypeError, match=r"to_counts\(\)"):
        LogisticRegression().fit(X, [0, 1, 0, 1])
    with pytest.raises(TypeError, match="trial labels must be integers"):
        SpikeWindows.from_counts(np.ones((2, 10), int), dt=0.01, window=0.05,
                                 trial=np.array(["a"] * 5 + ["b"] * 5))
    spikes = pd.DataFrame({"time": [0.1, 0.2], "unit": [0, 1]})
    with pytest.raises(TypeError, match="from_spike_times"):
        SpikeWindows.from_trials(spikes, dt=0.01)
    with pytest.raises(ValueError, match="from_spike_times"):
        as_windows(spikes)


def test_with_events_copies_every_array_of_the_input():
    X = SpikeWindows.from_counts(np.ones((2, 40), int), dt=0.01, window=0.05, prev_window=0.05,
                                 behavior=np.arange(40.0))
    Y = X.with_events(X.neuron[:0], X.bin[:0], np.zeros(len(X) + 1, int))
    for name in ("window_end", "trial", "behavior", "prev_neuron", "prev_bin", "prev_offsets"):
        assert not np.shares_memory(getattr(Y, name), getattr(X, name)), name
    assert Y.n_spikes().sum() == 0 and X.n_spikes().sum() > 0


def test_dense_feature_arrays_raise_no_plausibility_warning():
    import warnings

    from nfestimators.data import ImplausibleDataWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleDataWarning)
        X = as_windows(np.full((6, 50), 40))  # 40 spikes per trial and neuron, one bin each
    assert X.shape == (6, 50, 1) and X.n_spikes().tolist() == [2000] * 6


def test_estimator_given_a_spike_table_says_which_builder_to_use():
    import pandas as pd

    from nfestimators import NeuroformerPretrainer

    spikes = pd.DataFrame({"time": [0.01, 0.2, 0.3], "unit": [0, 1, 0]})
    with pytest.raises(ValueError, match=r"table of spikes.*from_spike_times"):
        NeuroformerPretrainer(preset="tiny", max_epochs=1, device="cpu").fit(spikes)
