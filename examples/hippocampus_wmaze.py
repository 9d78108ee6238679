"""Decode a rat's position on a W-maze from hippocampal (CA1) spike times (issue #17).

The data (nelpy/example-data ``w-maze``, Kemere lab; see its README) sit beside the repository
in ``../shared/data/hippocampus_wmaze`` (or ``--data FOLDER``): ``spikes.npz`` holds 518,352
spike times of 25 sorted units (one of them multi-unit activity), ``position.npz`` the tracked
position (camera pixels, 60 Hz with gaps) during the two periods the animal is on the maze.

Windows. Window ends lie on a 0.3 s grid inside the two on-maze periods only (no window
reaches into the sleep box between them). Each window holds the spikes of the last
``window = 0.3 s`` (within the usual 0.2-0.5 s of position decoding, two to three theta cycles)
with a past window of ``prev_window = 0.6 s`` as context, binned at ``dt = 20 ms`` (finer than the
window, coarse enough to keep the fullest window near a hundred tokens). Consecutive windows
do not overlap in their current part. ``SpikeWindows.from_spike_times`` interpolates x and y
at each window end (``behavior_at="end"``) and drops the windows whose end falls in a
tracking gap (``missing_behavior="drop"``); nothing is filled. As is usual, only windows
where the animal runs are kept: speed over the window (between consecutive window ends)
above 5 cm/s, at the README's assumed 3.7 px/cm. These values were fixed from the data's
README and the literature before any model was scored; none was tuned on a test block.

Cross-validation. The last part of the session covers a different part of the maze, so a
shuffled split would flatter every decoder, and overlapping windows would leak. The windows,
in time order, are cut into ``--folds`` contiguous blocks (``KFold`` without shuffling);
each block is the test set once, and training windows whose spikes (current + past window)
overlap the test block are left out. The baselines' settings are chosen on validation rows
inside the training blocks (their last 20 % in time, with the same gap), then refitted on
all training rows:

* ``NeuroformerRegressor(random_state=0)`` with its default settings, on the spike tokens;
* Ridge on counts in 100 ms bins of the current and past windows (alpha chosen on validation);
* k-NN on each unit's count in the current and in the past window (k chosen on validation).

The script prints R² (x and y, sklearn's ``r2_score`` averaged over both) per method as the
mean over folds, and the seconds of the final fit, and plots true and decoded x and y over
time for the middle fold. The default run is meant for a GPU (``--device cuda``); ``--small``
(or ``NFE_EXAMPLE_SMALL=1``, as the docs build runs it) checks the machinery in seconds on a
few hundred windows, a tiny model and one epoch: its scores mean nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nfestimators import NeuroformerRegressor, SpikeWindows
from nfestimators.plotting import plot_true_vs_predicted

DEFAULT_DATA = (Path(__file__).resolve().parents[1].parent / "shared" / "data"
                / "hippocampus_wmaze")
DT, WINDOW, PREV_WINDOW, STRIDE = 0.02, 0.3, 0.6, 0.3
RIDGE_BIN = 0.1  # bin width (s) of the Ridge baseline's counts
PX_PER_CM, MIN_SPEED = 3.7, 5.0  # README's assumed scale; running threshold in cm/s
VALIDATION_FRACTION = 0.2
ALPHAS = [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
KS = [1, 2, 5, 10, 20, 50, 100]
SMALL_WINDOWS_PER_PERIOD = 100


def load(folder):
    """Spike times, unit ids, position samples (t, x, y) and the on-maze periods."""
    spikes, position = np.load(folder / "spikes.npz"), np.load(folder / "position.npz")
    return (spikes["times"], spikes["units"], position["t"],
            np.column_stack([position["x"], position["y"]]).astype(np.float64),
            position["on_maze"])


def window_ends_on_maze(on_maze):
    """Window ends on the ``dt`` grid, every STRIDE s, whose whole span lies on the maze."""
    step = round(STRIDE / DT)
    ends = [np.arange(np.ceil((start + WINDOW + PREV_WINDOW) / DT), np.floor(stop / DT) + 1,
                      step) * DT for start, stop in on_maze]
    return np.concatenate(ends)


def running(X):
    """Mask of windows whose speed between the previous window end and their own exceeds
    MIN_SPEED (windows without a previous window are left out)."""
    gap = np.diff(X.window_end)
    step = np.hypot(*np.diff(X.behavior, axis=0).T) / PX_PER_CM
    speed = np.where(np.isclose(gap, STRIDE), step / STRIDE, 0.0)
    return np.concatenate([[False], speed > MIN_SPEED])


def build_windows(folder, small):
    times, units, t, xy, on_maze = load(folder)
    X = SpikeWindows.from_spike_times(
        times, units, window_ends_on_maze(on_maze), dt=DT, window=WINDOW,
        prev_window=PREV_WINDOW, behavior=xy, behavior_times=t, behavior_names=["x", "y"],
        behavior_at="end", missing_behavior="drop")
    X = X[np.flatnonzero(running(X))]
    if small:  # the first windows of each on-maze period
        period = np.searchsorted(on_maze[:, 1], X.window_end)
        X = X[np.concatenate([np.flatnonzero(period == p)[:SMALL_WINDOWS_PER_PERIOD]
                              for p in range(len(on_maze))])]
    return X


def apart_from(ends, rows, held_out):
    """``rows`` without the windows whose span (current + past window) overlaps the time
    range of the windows ``held_out``."""
    span = WINDOW + PREV_WINDOW
    first, last = ends[held_out].min() - span, ends[held_out].max()
    overlap = (ends[rows] > first) & (ends[rows] - span < last)
    return rows[~overlap]


def validation_split(ends, train):
    """One (train, validation) split of the training rows, as positions into them: the last
    VALIDATION_FRACTION in time is the validation set, apart from the rest."""
    n_val = max(1, int(round(VALIDATION_FRACTION * len(train))))
    val = train[-n_val:]
    inner = apart_from(ends, train[:-n_val], val)
    return [(np.searchsorted(train, inner), np.arange(len(train) - n_val, len(train)))]


def ks_for(train, ends):
    """The k of KS that the inner training rows can hold (all of them but with --small)."""
    n_inner = len(validation_split(ends, train)[0][0])
    return [k for k in KS if k <= n_inner]


def ridge_features(X):
    coarse = X.rebin(RIDGE_BIN)
    counts = [coarse.to_counts(), coarse.to_counts(past=True)]
    return np.concatenate([c.reshape(len(X), -1) for c in counts], axis=1).astype(float)


def knn_features(X):
    return np.column_stack([X.to_counts().sum(2), X.to_counts(past=True).sum(2)]).astype(float)


def baseline(model, grid, features, y, train, test, ends):
    """Setting chosen on validation rows of the training blocks, refitted on all of them."""
    search = GridSearchCV(make_pipeline(StandardScaler(), model), grid, scoring="r2",
                          cv=validation_split(ends, train))
    search.fit(features[train], y[train])
    setting = ", ".join(f"{k.split('__')[1]}={v:g}" for k, v in search.best_params_.items())
    return search.predict(features[test]), search.refit_time_, setting


def neuroformer(X, y, train, test, args):
    small = dict(preset="tiny", max_epochs=1) if args.small else {}
    reg = NeuroformerRegressor(**small, device=args.device, random_state=0)
    start = time.perf_counter()
    reg.fit(X[train], y[train])
    seconds = time.perf_counter() - start
    setting = f"defaults{' (small: preset=tiny, max_epochs=1)' if args.small else ''}, " \
              f"{reg.n_epochs_} epochs, device={reg.device_}"
    return reg.predict(X[test]), seconds, setting


def cross_validate(X, args):
    """Per method: predictions of every fold, R² per fold, seconds per fit, settings."""
    y, ends = X.behavior, X.window_end
    features = {"ridge": ridge_features(X), "knn": knn_features(X)}
    methods = {
        "NeuroformerRegressor": lambda train, test: neuroformer(X, y, train, test, args),
        f"Ridge, {RIDGE_BIN * 1000:g} ms counts (current + past)": lambda train, test: baseline(
            Ridge(), {"ridge__alpha": ALPHAS}, features["ridge"], y, train, test, ends),
        "k-NN, unit counts (current, past)": lambda train, test: baseline(
            KNeighborsRegressor(), {"kneighborsregressor__n_neighbors": ks_for(train, ends)},
            features["knn"], y, train, test, ends),
    }
    results = {name: [] for name in methods}
    folds = list(KFold(n_splits=args.folds, shuffle=False).split(ends))
    for fold, (train, test) in enumerate(folds):
        train = apart_from(ends, train, test)
        for name, method in methods.items():
            pred, seconds, setting = method(train, test)
            scores = [r2_score(y[test, j], pred[:, j]) for j in range(2)]
            results[name].append(dict(test=test, pred=pred, r2=scores, seconds=seconds,
                                      setting=setting))
            print(f"  fold {fold + 1}/{args.folds}, {name}: R² x {scores[0]:.3f}, "
                  f"y {scores[1]:.3f} ({seconds:.1f} s; {setting})", flush=True)
    return results


def print_table(results):
    print(f"\n| {'method':<42} | R² x   | R² y   | R² mean | s per fit |")
    print(f"|{'-' * 44}|--------|--------|---------|-----------|")
    for name, folds in results.items():
        r2 = np.mean([f["r2"] for f in folds], axis=0)
        seconds = np.mean([f["seconds"] for f in folds])
        print(f"| {name:<42} | {r2[0]:6.3f} | {r2[1]:6.3f} | {r2.mean():7.3f} | "
              f"{seconds:9.1f} |")
    print("(R² of each fold's test block, mean over the folds; settings chosen per fold on "
          "validation rows inside the training blocks)")


def plot_fold(X, results, fold):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(11, 2.6 * len(results)), squeeze=False)
    for row, (name, folds) in zip(axes, results.items()):
        test = folds[fold]["test"]
        plot_true_vs_predicted(X.behavior[test], folds[fold]["pred"], ax=list(row),
                               time=X.window_end[test], target_names=["x (px)", "y (px)"])
        row[0].set_title(f"{name}\n{row[0].get_title()}", fontsize="small")
    fig.suptitle(f"True and decoded position, test block of fold {fold + 1}")
    fig.tight_layout()
    plt.show()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder of spikes.npz and position.npz (default {DEFAULT_DATA})")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--folds", type=int, default=None,
                        help="contiguous time blocks (default 5; 2 with --small)")
    parser.add_argument("--small", action="store_true",
                        default=os.environ.get("NFE_EXAMPLE_SMALL") == "1",
                        help="a few hundred windows, a tiny model, one epoch: checks the "
                             "machinery only (also set by NFE_EXAMPLE_SMALL=1, as the docs "
                             "build does)")
    args = parser.parse_args(argv)
    if args.folds is None:
        args.folds = 2 if args.small else 5

    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    missing = [f for f in ("spikes.npz", "position.npz") if not (args.data / f).is_file()]
    if missing:
        sys.exit(f"hippocampus W-maze data not found: {', '.join(missing)} missing in "
                 f"{args.data}. Put the data set's folder beside the repository "
                 "(../shared/data/hippocampus_wmaze) or pass --data FOLDER.")

    X = build_windows(args.data, args.small)
    print(f"{len(X)} running windows ({WINDOW:g} s + {PREV_WINDOW:g} s past, dt={DT:g} s, "
          f"every {STRIDE:g} s), {X.n_neurons} units, up to {X.n_spikes().max()} spikes per "
          f"window; {args.folds} contiguous folds", flush=True)
    results = cross_validate(X, args)
    print_table(results)
    plot_fold(X, results, args.folds // 2)


if __name__ == "__main__":
    main()
