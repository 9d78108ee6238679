"""Bad inputs to the SpikeWindows builders: (builder, bad input, error, message), rows of the
one table of ``tests/test_bad_inputs.py`` (kept apart for their fixtures).

Every row is a mistake a user makes; the message must name the argument and say what to do.
"""

import numpy as np
import pandas as pd

from nfestimators import SpikeWindows
from nfestimators.data import as_windows

COUNTS = np.ones((3, 40), dtype=int)
STIMULUS = np.zeros((20, 4, 4))
NAN_STIMULUS = STIMULUS.copy()
NAN_STIMULUS[2, 0, 0] = np.nan
SPIKE_TABLE = pd.DataFrame({"time": [0.01, 0.02], "unit": [0, 1]})
TRACK_T = np.array([0.0, 0.1, 0.2, 0.6])

from_counts = SpikeWindows.from_counts
from_trials = SpikeWindows.from_trials
from_spike_times = SpikeWindows.from_spike_times
from_array = SpikeWindows.from_array


def counts_kwargs(**kwargs):
    return dict(counts=COUNTS, dt=0.01, window=0.05, **kwargs)


def spike_kwargs(**kwargs):
    base = dict(times=[0.012, 0.031], units=[0, 1], window_ends=[0.05, 0.1], dt=0.01,
                window=0.05)
    base.update(kwargs)
    return base


BAD_BUILDER_INPUTS = [
    # ------------------------------------------------------------------ from_counts
    (from_counts, dict(counts_kwargs(), counts=np.full((2, 10), np.nan)), ValueError,
     "counts contains NaN"),
    (from_counts, dict(counts_kwargs(), counts=-COUNTS), ValueError, "negative values"),
    (from_counts, dict(counts_kwargs(), counts=COUNTS * 0.5), ValueError, "non-integer.*np.rint"),
    (from_counts, dict(counts_kwargs(), counts=np.ones((2, 3, 4))), ValueError,
     "counts must be 2-D"),
    (from_counts, dict(counts_kwargs(), counts=np.zeros((2, 0))), ValueError, "counts is empty"),
    (from_counts, dict(counts_kwargs(), counts=np.array([["a"]])), ValueError, "numeric"),
    (from_counts, dict(counts_kwargs(), counts=pd.DataFrame(COUNTS)), TypeError,
     "counts must be a count array"),
    (from_counts, counts_kwargs() | {"dt": 0}, ValueError, "dt must be a positive"),
    (from_counts, counts_kwargs() | {"dt": "10ms"}, TypeError, "dt must be a number"),
    (from_counts, counts_kwargs() | {"window": 0.055}, ValueError, "window=0.055 s is not a whole"),
    (from_counts, counts_kwargs() | {"window": 0}, ValueError, "window=0 s must be at least 1"),
    (from_counts, counts_kwargs() | {"window": 5.0}, ValueError, "no complete window"),
    (from_counts, counts_kwargs(prev_window=-0.01), ValueError, "prev_window must be"),
    (from_counts, counts_kwargs(stride=0.0), ValueError, "stride=0 s must be at least 1"),
    (from_counts, counts_kwargs(trial=[0, 1]), ValueError, "one label per bin"),
    (from_counts, counts_kwargs(trial=np.repeat(["a", "b"], 20)), TypeError,
     r"trial labels must be integers.*np.unique"),
    (from_counts, counts_kwargs(behavior=np.full(40, np.nan)), ValueError,
     "behavior contains NaN"),
    (from_counts, counts_kwargs(behavior=np.ones(10)), ValueError,
     r"behavior covers 0.1 s .*behavior_dt"),
    (from_counts, counts_kwargs(behavior=np.ones((2, 2, 2))), ValueError,
     "behavior must be 1-D or 2-D"),
    (from_counts, counts_kwargs(behavior={"a": np.ones(40), "b": np.ones(30)}), ValueError,
     "same number of samples"),
    (from_counts, counts_kwargs(behavior=np.ones(40), behavior_dt=0), ValueError,
     "behavior_dt must be a positive"),
    (from_counts, counts_kwargs(stimulus=STIMULUS), ValueError, "needs frame_rate"),
    (from_counts, counts_kwargs(frame_rate=20.0), ValueError, "without a stimulus"),
    (from_counts, counts_kwargs(stimulus=np.zeros((4, 4)), frame_rate=20.0), ValueError,
     r"stimulus must be \(n_frames, height, width\)"),
    (from_counts, counts_kwargs(stimulus=NAN_STIMULUS, frame_rate=20.0), ValueError,
     "stimulus contains NaN.*frame 2"),
    (from_counts, counts_kwargs(stimulus=STIMULUS, frame_rate=20.0,
                                stimulus_callback=lambda t, k, n: np.zeros((1, 1))),
     ValueError, "stimulus_callback must return shape"),
    # ------------------------------------------------------------------ from_trials
    (from_trials, dict(trials=SPIKE_TABLE, dt=0.01), TypeError,
     "not a DataFrame.*from_spike_times"),
    (from_trials, dict(trials=[], dt=0.01), ValueError, "trials is empty"),
    (from_trials, dict(trials=np.ones(5), dt=0.01), ValueError, "trials must be a list"),
    (from_trials, dict(trials=[np.ones((2, 5)), np.ones(5)], dt=0.01), ValueError,
     r"trials\[1\] must be 2-D"),
    (from_trials, dict(trials=[np.ones((2, 5)), np.ones((3, 5))], dt=0.01), ValueError,
     "same number of neurons"),
    (from_trials, dict(trials=[np.ones((2, 5))], dt=0.01, prev_window=0.01), ValueError,
     "prev_window needs window"),
    (from_trials, dict(trials=[np.ones((2, 5))], dt=0.01, behavior=np.ones((3, 1))), ValueError,
     "3 rows for 1 trials"),
    # ------------------------------------------------------------------ from_spike_times
    (from_spike_times, spike_kwargs(units=[0]), ValueError, "same length"),
    (from_spike_times, spike_kwargs(units=[0, -1]), ValueError, "units must be non-negative"),
    (from_spike_times, spike_kwargs(units=[0.0, 1.0]), ValueError, r"units must be .*np.unique"),
    (from_spike_times, spike_kwargs(times=[np.nan, 0.1]), ValueError, "must be finite"),
    (from_spike_times, spike_kwargs(window_ends=[]), ValueError, "window_ends must be a non-empty"),
    (from_spike_times, spike_kwargs(window_ends=[0.05, 0.1234]), ValueError,
     r"window_ends are not on the dt=0.01 s grid.*np.round"),
    (from_spike_times, spike_kwargs(dt=0), ValueError, "dt must be a positive"),
    (from_spike_times, spike_kwargs(window=0.055), ValueError, "window=0.055 s is not a whole"),
    (from_spike_times, spike_kwargs(n_neurons=1), ValueError, "unit id 1 >= n_neurons=1"),
    (from_spike_times, spike_kwargs(times=[], units=[]), ValueError, "n_neurons is required"),
    (from_spike_times, spike_kwargs(spike_trial=[0, 0]), ValueError, "spike_trial needs trial"),
    (from_spike_times, spike_kwargs(trial=[0]), ValueError, "trial must match window_ends"),
    (from_spike_times, spike_kwargs(behavior=[1.0, 2.0]), ValueError, "needs behavior_times"),
    (from_spike_times, spike_kwargs(behavior_times=[0.0, 1.0]), ValueError,
     "behavior_times given without behavior"),
    (from_spike_times, spike_kwargs(behavior=[1.0, 2.0], behavior_times=[1.0, 0.0]), ValueError,
     "strictly increasing"),
    (from_spike_times, spike_kwargs(behavior=[1.0, 2.0], behavior_times=[0.0]), ValueError,
     "one time per behaviour sample"),
    (from_spike_times, spike_kwargs(behavior=TRACK_T, behavior_times=TRACK_T,
                                    window_ends=[0.05, 0.4]), ValueError,
     r"1 of 2 windows have no behaviour value.*missing_behavior='drop'"),
    (from_spike_times, spike_kwargs(behavior=TRACK_T, behavior_times=TRACK_T,
                                    window_ends=[0.7, 0.8]), ValueError,
     r"2 of 2 .*outside the sampled times.*no window is left"),
    (from_spike_times, spike_kwargs(behavior=TRACK_T, behavior_times=TRACK_T,
                                    behavior_at="start"), ValueError, "behavior_at must be one of"),
    (from_spike_times, spike_kwargs(behavior=TRACK_T, behavior_times=TRACK_T,
                                    missing_behavior="fill"), ValueError,
     "missing_behavior must be one of"),
    (from_spike_times, spike_kwargs(behavior=TRACK_T, behavior_times=TRACK_T,
                                    max_behavior_gap=-1), ValueError, "max_behavior_gap must be"),
    # ------------------------------------------------------------------ from_array / as_windows
    (from_array, dict(X=np.ones(5)), ValueError, "X must be"),
    (from_array, dict(X=-np.ones((2, 3))), ValueError, "negative values"),
    (as_windows, dict(X=SPIKE_TABLE), ValueError, "table of spikes.*from_spike_times"),
    (as_windows, dict(X=np.ones((0, 3))), ValueError, "0 samples"),
    (as_windows, dict(X=np.array([[None]])), ValueError, "numeric count array"),
    (np.asarray, dict(a=SpikeWindows.from_counts(COUNTS, dt=0.01, window=0.05)), TypeError,
     r"X.to_counts\(\)"),
]
