"""Property-based tests (hypothesis) of the three builders and the tokenizer.

Random valid inputs round-trip exactly (dense slicing, ``to_counts``, ``to_spike_times``,
tokens back to spikes); random invalid ones raise ValueError or TypeError naming the
offending argument, never a deeper exception.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nfestimators import SpikeTokenizer, SpikeWindows
from nfestimators.data import ImplausibleDataWarning

DT = 0.01
FAST = settings(max_examples=40, deadline=None)

counts_2d = hnp.arrays(np.int64, st.tuples(st.integers(1, 5), st.integers(1, 40)),
                       elements=st.integers(0, 3))


@pytest.fixture(autouse=True)
def _quiet_plausibility_warnings():
    # random small shapes are often "implausible" (few bins, many neurons): not the subject here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImplausibleDataWarning)
        yield


@st.composite
def recording(draw):
    counts = draw(counts_2d)
    total = counts.shape[1]
    n_bins = draw(st.integers(1, total))
    n_prev = draw(st.integers(0, 6))
    step = draw(st.integers(1, n_bins + 2))
    return counts, n_bins, n_prev, step


@FAST
@given(recording())
def test_from_counts_equals_dense_slicing(case):
    counts, n_bins, n_prev, step = case
    X = SpikeWindows.from_counts(counts, dt=DT, window=n_bins * DT, prev_window=n_prev * DT,
                                 stride=step * DT)
    ends = np.arange(n_bins, counts.shape[1] + 1, step)
    padded = np.concatenate([np.zeros((counts.shape[0], n_prev), int), counts], axis=1)
    assert X.shape == (len(ends), counts.shape[0], n_bins)
    for i, end in enumerate(ends):
        np.testing.assert_array_equal(X.to_counts()[i], counts[:, end - n_bins:end])
        if n_prev:
            start = end - n_bins + n_prev  # in padded coordinates
            np.testing.assert_array_equal(X.to_counts(past=True)[i],
                                          padded[:, start - n_prev:start])
    np.testing.assert_allclose(X.window_end, np.round(ends * DT, 6))


@FAST
@given(st.lists(hnp.arrays(np.int64, st.tuples(st.just(3), st.integers(1, 12)),
                           elements=st.integers(0, 2)), min_size=1, max_size=5))
def test_from_trials_whole_trials_round_trip(trials):
    X = SpikeWindows.from_trials(trials, dt=DT)
    dense = X.to_counts()
    for i, trial in enumerate(trials):
        np.testing.assert_array_equal(dense[i, :, :trial.shape[1]], trial)
        assert dense[i, :, trial.shape[1]:].sum() == 0
    assert X.trial.tolist() == list(range(len(trials)))


@st.composite
def spikes(draw):
    n_spikes = draw(st.integers(0, 30))
    bins = np.array(draw(st.lists(st.integers(-5, 60), min_size=n_spikes, max_size=n_spikes)))
    fraction = np.array(draw(st.lists(st.floats(0, 0.9), min_size=n_spikes,
                                      max_size=n_spikes)))
    units = np.array(draw(st.lists(st.integers(0, 3), min_size=n_spikes, max_size=n_spikes)),
                     dtype=np.int64)
    n_trials = draw(st.integers(1, 3))
    spike_trial = np.array(draw(st.lists(st.integers(0, n_trials - 1), min_size=n_spikes,
                                         max_size=n_spikes)), dtype=np.int64)
    end_bins = np.array(draw(st.lists(st.integers(0, 70), min_size=1, max_size=6)))
    trial = np.array(draw(st.lists(st.integers(0, n_trials - 1), min_size=len(end_bins),
                                   max_size=len(end_bins))), dtype=np.int64)
    n_bins = draw(st.integers(1, 8))
    n_prev = draw(st.integers(0, 8))
    times = (bins + fraction) * DT
    return times, units, spike_trial, end_bins, trial, n_bins, n_prev


@FAST
@given(spikes())
def test_from_spike_times_counts_every_spike_in_its_own_trial_and_window(case):
    times, units, spike_trial, end_bins, trial, n_bins, n_prev = case
    X = SpikeWindows.from_spike_times(times, units, end_bins * DT, dt=DT, window=n_bins * DT,
                                      prev_window=n_prev * DT, n_neurons=4, trial=trial,
                                      spike_trial=spike_trial)
    spike_bin = np.floor(np.round(times / DT, 6)).astype(int)
    for i, (end, t) in enumerate(zip(end_bins, trial)):
        for past, lo, hi, n in ((False, end - n_bins, end, n_bins),
                                (True, end - n_bins - n_prev, end - n_bins, n_prev)):
            expected = np.zeros((4, n), int)
            inside = (spike_trial == t) & (spike_bin >= lo) & (spike_bin < hi)
            np.add.at(expected, (units[inside], spike_bin[inside] - lo), 1)
            np.testing.assert_array_equal(X.to_counts(past=past)[i], expected)
    table = X.to_spike_times()
    np.testing.assert_allclose(table.time, np.round(
        (X.window_end[table.window] - n_bins * DT) + X.bin * DT, 6))


@FAST
@given(recording(), st.integers(2, 6))
def test_tokens_back_to_spikes(case, extra):
    counts, n_bins, n_prev, step = case
    X = SpikeWindows.from_counts(counts, dt=DT, window=n_bins * DT, prev_window=n_prev * DT,
                                 stride=step * DT)
    budget = int(max(X.n_spikes().max(), X.n_spikes(past=True).max())) + extra
    tok = SpikeTokenizer(max_tokens=budget, max_prev_tokens=budget).fit(X)
    back = tok.inverse_transform(tok.transform(X))
    np.testing.assert_array_equal(back.to_counts(), X.to_counts())
    if n_prev:
        np.testing.assert_array_equal(back.to_counts(past=True), X.to_counts(past=True))
    np.testing.assert_array_equal(back.neuron, X.neuron)  # token order is kept too
    np.testing.assert_array_equal(back.bin, X.bin)


# ----------------------------------------------------------------------- invalid inputs
bad_seconds = st.one_of(st.floats(max_value=0, allow_nan=False), st.just(np.nan),
                        st.just(np.inf), st.text(max_size=3), st.none(), st.booleans())
bad_count_values = st.sampled_from([-1, np.nan, np.inf, 0.5, -0.5])


def assert_names(call, name):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert name in str(info.value), f"{name!r} not in {info.value!r}"


@FAST
@given(bad_seconds)
def test_bad_dt_names_dt(dt):
    counts = np.ones((2, 20), int)
    assert_names(lambda: SpikeWindows.from_counts(counts, dt=dt, window=0.05), "dt")
    assert_names(lambda: SpikeWindows.from_trials([counts], dt=dt), "dt")
    assert_names(lambda: SpikeWindows.from_spike_times([0.01], [0], [0.05], dt=dt, window=0.05),
                 "dt")


@FAST
@given(st.one_of(bad_seconds.filter(lambda v: v is not None),
                 st.floats(0.0011, 0.0999).filter(lambda v: abs(v / DT - round(v / DT)) > 1e-3)),
       st.sampled_from(["window", "prev_window", "stride"]))
def test_bad_window_lengths_name_the_argument(seconds, name):
    if name == "prev_window" and seconds == 0:
        return  # no past window is valid
    kwargs = {"window": 0.05, name: seconds}
    assert_names(lambda: SpikeWindows.from_counts(np.ones((2, 40), int), dt=DT, **kwargs), name)


@FAST
@given(counts_2d, st.data())
def test_bad_count_values_name_counts(counts, data):
    bad = counts.astype(float)
    row = data.draw(st.integers(0, bad.shape[0] - 1))
    col = data.draw(st.integers(0, bad.shape[1] - 1))
    bad[row, col] = data.draw(bad_count_values)
    assert_names(lambda: SpikeWindows.from_counts(bad, dt=DT, window=DT), "counts")
    assert_names(lambda: SpikeWindows.from_trials([bad], dt=DT), "trials[0]")
    assert_names(lambda: SpikeWindows.from_array(bad[None], dt=DT), "X")


@FAST
@given(st.sampled_from(["units", "times", "window_ends"]), st.data())
def test_bad_spike_arrays_name_the_argument(name, data):
    args = dict(times=np.array([0.01, 0.02]), units=np.array([0, 1]),
                window_ends=np.array([0.05]))
    if name == "units":
        args["units"] = data.draw(st.sampled_from(
            [np.array([0, -1]), np.array([0.5, 1.0]), np.array(["a", "b"])]))
    elif name == "times":
        args["times"] = np.array([0.01, data.draw(st.sampled_from([np.nan, np.inf]))])
    else:
        args["window_ends"] = np.array([data.draw(st.floats(0.001, 1).filter(
            lambda v: abs(v / DT - round(v / DT)) > 1e-3))])
    assert_names(lambda: SpikeWindows.from_spike_times(**args, dt=DT, window=0.05), name)


@FAST
@given(st.one_of(st.integers(max_value=1), st.floats(allow_nan=True), st.text(max_size=2),
                 st.none()),
       st.sampled_from(["max_tokens", "max_prev_tokens"]))
def test_bad_token_budget_names_the_argument(value, name):
    X = SpikeWindows.from_counts(np.ones((2, 20), int), dt=DT, window=0.05)
    assert_names(lambda: SpikeTokenizer(**{name: value}).fit(X), name)


@st.composite
def timed_behavior(draw):
    steps = draw(st.lists(st.floats(0.005, 0.1), min_size=2, max_size=30))
    times = np.round(np.cumsum(steps), 6)
    values = np.array(draw(st.lists(st.floats(-10, 10), min_size=len(times),
                                    max_size=len(times))))
    end_bins = np.array(draw(st.lists(st.integers(1, 400), min_size=1, max_size=10)))
    return times, values, end_bins


@FAST
@given(timed_behavior(), st.sampled_from(["end", "mean"]))
def test_timed_behavior_is_the_interpolation_or_the_mean_or_an_error(case, at):
    times, values, end_bins = case
    ends = np.round(end_bins * DT, 6)  # window ends as SpikeWindows stores them
    args = dict(dt=DT, window=0.05, behavior=values, behavior_times=times, behavior_at=at,
                max_behavior_gap=np.inf)
    if at == "end":
        defined = (ends >= times[0]) & (ends <= times[-1])
    else:
        starts = ends - 0.05
        n_inside = ((times >= starts[:, None]) & (times < ends[:, None])).sum(axis=1)
        defined = (starts >= times[0]) & (ends <= times[-1]) & (n_inside > 0)
    if not defined.all():
        with pytest.raises(ValueError, match=f"{int((~defined).sum())} of {len(ends)} windows"):
            SpikeWindows.from_spike_times([0.0], [0], ends, **args)
        return
    X = SpikeWindows.from_spike_times([0.0], [0], ends, **args)
    if at == "end":
        np.testing.assert_allclose(X.behavior[:, 0], np.interp(ends, times, values))
    else:
        expected = [values[(times >= e - 0.05) & (times < e)].mean() for e in X.window_end]
        np.testing.assert_allclose(X.behavior[:, 0], expected)
