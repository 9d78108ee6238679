"""Decoding suite (issue #19): the package defaults, the CV estimators and tuned baselines on
real recordings and on synthetic families that each carry one neural code.

On every set, on one split, in one run:

* **defaults**: the plainest call, ``NeuroformerClassifier(random_state=s).fit(X, y)``
  (``NeuroformerRegressor`` for continuous targets); nothing of the Neuroformer side is tuned
  here, that is the point;
* **CV**: ``NeuroformerClassifierCV`` / ``NeuroformerRegressorCV`` with their defaults, or the
  word "missing" when the package does not have them yet;
* **linear**: logistic regression (ridge for continuous targets) on standardised spike counts
  per neuron and time bin (the past window's bins too, when the windows have one), the bin
  width (whole window, 100, 50, 20 ms, those that fit; or the population's total count per
  window) and C (alpha) chosen on validation rows carved from the training rows (accuracy,
  ties broken by the log-loss; R²), then refitted on all training rows;
* **k-NN**: k nearest neighbours on the same features, bin width and k chosen the same way.

The test rows are touched once, to score. Sets:

* ``D_E_III``, ``D_A_I``: the auditory cortex sets (``<data-root>/auditory_cortex``); training
  rows are the ``train`` and ``val`` roles of the file, the baselines choose on the ``val``
  rows, the score is on the ``test`` rows (accuracy).
* ``wmaze``: CA1 place cells on a W-maze (``<data-root>/hippocampus_wmaze``): 250 ms windows at
  10 ms bins with a 250 ms past window, every 250 ms while the animal runs (> 5 cm/s), the
  tracked (x, y) position at the window end as the target; the first 80 % of the windows in
  time train, the last 20 % test, the baselines choose on the last 20 % of the training
  windows (R², mean over x and y).
* ``rate``, ``identity``, ``order``, ``latency``, ``synchrony``, ``behavior``: one
  ``make_code_data(code, random_state=0)`` set per code family at its defaults
  (``--data-seed`` draws other cells, orders, pairs and spikes; ``--code-param`` other
  window lengths, rates, sizes, e.g. ``--code-param window=2.0 --code-param rate=3``); a
  random 75 %
  of the trials (stratified by class) train, the rest test; the baselines choose on a random
  20 % of the training trials (accuracy, R² for ``behavior``).
* ``spiking``: ``make_spiking_data(random_state=1)``, behaviour regression, the first 75 % of
  the windows train, the last 25 % test, validation the last 20 % of the training windows.

The data and the splits are fixed; ``--seeds N`` refits the Neuroformer estimators with
``random_state`` 0..N-1 and reports mean +- sd (the baselines are deterministic: one fit).
Seconds per fit are wall-clock seconds of ``fit`` (for the baselines: the whole validation
search plus the refit).

    python benchmarks/decoding_suite.py [--sets ...] [--device cuda] [--seeds 3] [--json out.json]

``--small`` shrinks everything (tiny synthetic sets, at most 150 training rows of the real
sets, ``preset="tiny"`` and one epoch for the Neuroformer estimators) to check the machinery
in seconds; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nfestimators
from nfestimators import SpikeWindows
from nfestimators.datasets import load_auditory_cortex, make_code_data, make_spiking_data

REAL_SETS = ("D_E_III", "D_A_I", "wmaze")
CODE_SETS = ("rate", "identity", "order", "latency", "synchrony", "behavior")
SYNTHETIC_SETS = CODE_SETS + ("spiking",)
ALL_SETS = REAL_SETS + SYNTHETIC_SETS
METHODS = ("defaults", "CV", "linear", "k-NN")

BIN_WIDTHS = (None, 0.1, 0.05, 0.02)  # s; None = the whole window
TOTAL_COUNT = "total count"  # feature option: the population's spike count per window
C_GRID = np.logspace(-3, 2, 6)
ALPHA_GRID = np.logspace(-2, 4, 7)
K_GRID = (1, 3, 5, 9, 15, 25)
SMALL_NEUROFORMER = dict(preset="tiny", max_epochs=1)  # --small only: a CI-sized machinery check
SMALL_CV_GRID = {"readout": ["mean", "mean+binned"]}
SMALL_CODES = dict(n_trials=48, n_neurons=32, window=0.2, dt=0.005)
SMALL_MAX_TRAIN, SMALL_MAX_TEST = 150, 100

WMAZE_WINDOW, WMAZE_DT = 0.25, 0.01  # s
WMAZE_PX_PER_CM, WMAZE_MIN_SPEED = 3.7, 5.0  # the README's rig scale; cm/s
WMAZE_MAX_TRACKING_GAP = 0.05  # s: a window end needs a position sample this close

log = logging.getLogger("decoding_suite")


class MissingData(Exception):
    """A real set whose files are not under the data root."""


@dataclass
class DecodingSet:
    """One set of the suite: windows, targets and a fixed split (index arrays)."""

    name: str
    task: str  # "classification" or "regression"
    X: SpikeWindows
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray  # a subset of train: the rows the baselines choose their settings on
    note: str = ""

    @property
    def metric(self):
        return "accuracy" if self.task == "classification" else "R²"

    def score(self, y_true, y_pred):
        if self.task == "classification":
            return accuracy_score(y_true, y_pred)
        return r2_score(y_true, y_pred)


@dataclass
class Result:
    """Scores (one per seed) and seconds per fit of one method on one set."""

    scores: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    settings: str = ""
    missing: bool = False
    skipped: bool = False  # not asked for (--no-cv)


# ------------------------------------------------------------------------------ sets
def _stratified_split(y, size, seed):
    stratify = y if np.issubdtype(np.asarray(y).dtype, np.integer) else None
    first, second = train_test_split(np.arange(len(y)), test_size=size, random_state=seed,
                                     stratify=stratify)
    return np.sort(first), np.sort(second)


def _tail(rows, fraction):
    """The last ``fraction`` of ``rows`` (in time order), at least one row."""
    return rows[len(rows) - max(1, round(fraction * len(rows))):]


def auditory_set(name, data_root):
    path = Path(data_root) / "auditory_cortex" / f"{name}.csv"
    if not path.is_file():
        raise MissingData(f"{path} not found")
    data = load_auditory_cortex(path)
    train = np.flatnonzero(data.split != "test")
    return DecodingSet(name, "classification", data.windows, data.labels, train,
                       np.flatnonzero(data.split == "test"),
                       np.flatnonzero(data.split == "val"), note=data.DESCR)


def wmaze_set(data_root):
    folder = Path(data_root) / "hippocampus_wmaze"
    if not (folder / "spikes.npz").is_file() or not (folder / "position.npz").is_file():
        raise MissingData(f"{folder}/spikes.npz or position.npz not found")
    spikes, position = np.load(folder / "spikes.npz"), np.load(folder / "position.npz")
    t, xy = position["t"], np.stack([position["x"], position["y"]], axis=1).astype(float)
    ends = np.concatenate([
        np.arange(start + 2 * WMAZE_WINDOW, stop, WMAZE_WINDOW)
        for start, stop in position["on_maze"]])
    ends = np.round(ends / WMAZE_DT) * WMAZE_DT

    def tracked(times):
        """Interpolated position at ``times`` and whether a sample lies close enough."""
        after = np.clip(np.searchsorted(t, times), 1, len(t) - 1)
        gap = np.minimum(np.abs(times - t[after - 1]), np.abs(t[after] - times))
        at = np.stack([np.interp(times, t, xy[:, k]) for k in range(2)], axis=1)
        return at, gap <= WMAZE_MAX_TRACKING_GAP

    end_xy, end_ok = tracked(ends)
    start_xy, start_ok = tracked(ends - WMAZE_WINDOW)
    speed = np.linalg.norm(end_xy - start_xy, axis=1) / WMAZE_WINDOW / WMAZE_PX_PER_CM
    keep = end_ok & start_ok & (speed > WMAZE_MIN_SPEED)
    X = SpikeWindows.from_spike_times(
        spikes["times"], spikes["units"].astype(np.int64), ends[keep], dt=WMAZE_DT,
        window=WMAZE_WINDOW, prev_window=WMAZE_WINDOW, n_neurons=len(spikes["unit_labels"]))
    rows = np.arange(len(X))
    n_train = round(0.8 * len(X))
    train, test = rows[:n_train], rows[n_train:]
    return DecodingSet("wmaze", "regression", X, end_xy[keep], train, test, _tail(train, 0.2),
                       note=f"W-maze CA1, {len(X)} running windows, position (x, y) in px")


def code_set(code, small, data_seed, code_params=None):
    settings = {**(SMALL_CODES if small else {}), **(code_params or {})}
    data = make_code_data(code, random_state=data_seed, **settings)
    y = data.target if code == "behavior" else data.labels
    train, test = _stratified_split(y, 0.25, seed=0)
    _, val = _stratified_split(y[train], 0.2, seed=0)
    return DecodingSet(code, "regression" if code == "behavior" else "classification",
                       data.windows, y, train, test, train[val], note=data.description)


def spiking_set(small):
    data = (make_spiking_data(n_neurons=20, duration=20.0, random_state=1) if small
            else make_spiking_data(random_state=1))
    rows = np.arange(len(data.windows))
    n_train = round(0.75 * len(rows))
    train, test = rows[:n_train], rows[n_train:]
    return DecodingSet("spiking", "regression", data.windows, data.behavior, train, test,
                       _tail(train, 0.2), note="make_spiking_data(random_state=1) behaviour")


def load_set(name, data_root, small, data_seed=0, code_params=None):
    if name in ("D_E_III", "D_A_I"):
        dataset = auditory_set(name, data_root)
    elif name == "wmaze":
        dataset = wmaze_set(data_root)
    elif name == "spiking":
        return spiking_set(small)
    else:
        return code_set(name, small, data_seed, code_params)
    return shrink(dataset) if small else dataset


def available_sets(names, data_root, small, data_seed=0, load=load_set):
    """The sets of ``names`` loaded with ``load``, in order; a real set whose files are
    absent is skipped with a warning naming its path."""
    for name in names:
        try:
            yield load(name, data_root, small, data_seed)
        except MissingData as missing:
            log.warning("skipping %s: %s (pass --data-root)", name, missing)


def shrink(dataset):
    """At most SMALL_MAX_TRAIN training and SMALL_MAX_TEST test rows, in time order, with
    validation rows kept among them."""
    rng = np.random.default_rng(0)

    def subset(rows, n):
        return np.sort(rng.choice(rows, n, replace=False)) if len(rows) > n else rows

    train, test = subset(dataset.train, SMALL_MAX_TRAIN), subset(dataset.test, SMALL_MAX_TEST)
    val = np.intersect1d(dataset.val, train)
    if len(val) < 2:
        val = _tail(train, 0.2)
    return DecodingSet(dataset.name, dataset.task, dataset.X, dataset.y, train, test, val,
                       dataset.note)


# ------------------------------------------------------------------------- baselines
def available_bin_widths(X):
    """Bins per feature bin for each width of BIN_WIDTHS that is a whole number of the
    windows' bins and shorter than the window (None: the whole window), duplicates dropped."""
    bins = []
    for width in BIN_WIDTHS:
        k = X.n_bins if width is None else round(width / X.dt)
        whole = width is None or (k >= 1 and abs(k * X.dt - width) < 1e-9 and k < X.n_bins)
        if whole and k not in bins:
            bins.append(k)
    return bins


def _binned(neuron, bins, offsets, n_window_bins, k, n_neurons):
    """Counts per window, neuron and group of ``k`` bins (the last group may be shorter)."""
    n_windows, n_groups = len(offsets) - 1, -(-n_window_bins // k)
    window = np.repeat(np.arange(n_windows), np.diff(offsets))
    flat = (window * n_neurons + neuron) * n_groups + bins // k
    counts = np.bincount(flat, minlength=n_windows * n_neurons * n_groups)
    return counts.reshape(n_windows, n_neurons * n_groups).astype(np.float64)


def binned_counts(X, k):
    """Spike counts per neuron in bins of ``k`` of the windows' bins, current window then
    past window (when the windows have one), shape (n_samples, n_features)."""
    parts = [_binned(X.neuron, X.bin, X.offsets, X.n_bins, k, X.n_neurons)]
    if X.n_prev_bins:
        parts.append(_binned(X.prev_neuron, X.prev_bin, X.prev_offsets, X.n_prev_bins, k,
                             X.n_neurons))
    return np.hstack(parts)


def feature_options(X):
    """The baselines' feature choices: per-neuron counts in each available bin width, and
    the population's total count per window (current, past), the code of some rate sets."""
    return available_bin_widths(X) + [TOTAL_COUNT]


def features(X, option):
    whole = binned_counts(X, X.n_bins if option == TOTAL_COUNT else option)
    if option == TOTAL_COUNT:
        return whole.reshape(len(X), -1, X.n_neurons).sum(axis=2)
    return whole


def describe(option, X):
    if option == TOTAL_COUNT:
        return "total count"
    return "whole window" if option == X.n_bins else f"{option * X.dt * 1000:g} ms bins"


def _baseline_grid(kind, task, n_fit_rows):
    """(setting name, model) pairs of one baseline's grid, on standardised features. The
    logistic grid is one model walked up the C path with warm starts (each setting is fitted
    and scored before the next is set)."""
    if kind == "linear" and task == "classification":
        logistic = LogisticRegression(max_iter=1000, warm_start=True)
        for c in C_GRID:
            yield f"logistic C={c:g}", logistic.set_params(C=c)
    elif kind == "linear":
        for alpha in ALPHA_GRID:
            yield f"ridge alpha={alpha:g}", Ridge(alpha=alpha)
    else:
        neighbours = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
        for k in K_GRID:
            if k <= n_fit_rows:
                yield f"k-NN k={k}", neighbours(n_neighbors=k)


def _validation_key(dataset, model, features, y):
    """What the baselines maximise on the validation rows: the score, ties (frequent on
    small validation sets) broken by the lower log-loss for classifiers."""
    score = dataset.score(y, model.predict(features))
    if dataset.task != "classification":
        return score, 0.0
    return score, -log_loss(y, model.predict_proba(features), labels=model.classes_)


def tuned_baseline(kind, dataset):
    """Choose the bin width and the model setting on the validation rows, refit on all
    training rows, score once on the test rows. Returns (score, seconds, settings)."""
    start = time.perf_counter()
    fit_rows = np.setdiff1d(dataset.train, dataset.val)
    y_fit, y_val = dataset.y[fit_rows], dataset.y[dataset.val]
    best = ((-np.inf, -np.inf), None, None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for option in feature_options(dataset.X):
            table = features(dataset.X, option)
            scaler = StandardScaler().fit(table[fit_rows])
            fit_features = scaler.transform(table[fit_rows])
            val_features = scaler.transform(table[dataset.val])
            for name, model in _baseline_grid(kind, dataset.task, len(fit_rows)):
                model.fit(fit_features, y_fit)
                key = _validation_key(dataset, model, val_features, y_val)
                if key > best[0]:
                    best = (key, option, name, clone(model).set_params(
                        **({"warm_start": False} if "warm_start" in model.get_params() else {})))
        (val_score, _), option, name, model = best
        table = features(dataset.X, option)
        model = make_pipeline(StandardScaler(), model).fit(table[dataset.train],
                                                           dataset.y[dataset.train])
    seconds = time.perf_counter() - start
    score = dataset.score(dataset.y[dataset.test], model.predict(table[dataset.test]))
    return score, seconds, f"{name}, {describe(option, dataset.X)} (val {val_score:.3f})"


# ----------------------------------------------------------------------- neuroformer
def neuroformer_class(dataset, cv):
    stem = "NeuroformerClassifier" if dataset.task == "classification" else "NeuroformerRegressor"
    return getattr(nfestimators, stem + ("CV" if cv else ""), None)


def neuroformer_estimator(dataset, cv, seed, device, small, params=None, cv_n_jobs=None):
    """The plain call: ``Estimator(random_state=seed)`` or ``EstimatorCV(random_state=seed)``
    (the device aside). ``--small``: a tiny model, one epoch, and a two-setting search.
    ``params`` (``--param``) set other values of the Neuroformer estimator's parameters;
    ``cv_n_jobs`` (``--cv-n-jobs``) is the CV estimator's ``n_jobs``."""
    base = neuroformer_class(dataset, False)(random_state=seed, device=device)
    base.set_params(**(params or {}))
    if small:
        base.set_params(**SMALL_NEUROFORMER)
    if not cv:
        return base
    search = neuroformer_class(dataset, True)(base, random_state=seed, n_jobs=cv_n_jobs)
    return search.set_params(param_grid=SMALL_CV_GRID) if small else search


def fit_neuroformer(estimator, dataset):
    """Fit on the training rows and score on the test rows."""
    X_train, y_train = dataset.X[dataset.train], dataset.y[dataset.train]
    start = time.perf_counter()
    estimator.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    if getattr(estimator, "count_decoder_", None) is not None:
        log.info("%s: count decoder blended in: %s", dataset.name, estimator.count_decoder_)
    if hasattr(estimator, "cv_results_"):
        results = estimator.cv_results_
        for params, mean, sd in zip(results["params"], results["mean_test_score"],
                                    results["std_test_score"]):
            log.info("%s CV setting %s: %.3f ± %.3f", dataset.name, params, mean, sd)
        log.info("%s CV chose %s", dataset.name, estimator.best_params_)
    score = dataset.score(dataset.y[dataset.test], estimator.predict(dataset.X[dataset.test]))
    return score, seconds


def run_set(dataset, seeds, device, small, run_cv=True, params=None, run_defaults=True,
            cv_n_jobs=None):
    results = {}
    for method, cv in (("defaults", False), ("CV", True)):
        result = Result(missing=neuroformer_class(dataset, cv) is None,
                        skipped=not run_cv if cv else not run_defaults)
        for seed in ([] if result.missing or result.skipped else range(seeds)):
            score, seconds = fit_neuroformer(
                neuroformer_estimator(dataset, cv, seed, device, small, params, cv_n_jobs),
                dataset)
            result.scores.append(score)
            result.seconds.append(seconds)
            log.info("%s %s seed %d: %.3f (%.1f s)", dataset.name, method, seed, score, seconds)
        results[method] = result
    for method, kind in (("linear", "linear"), ("k-NN", "knn")):
        score, seconds, settings = tuned_baseline(kind, dataset)
        results[method] = Result([score], [seconds], settings)
        log.info("%s %s: %.3f (%s)", dataset.name, method, score, settings)
    return results


# ----------------------------------------------------------------------------- report
def _absent(result):
    """The table cell of a method that has no scores: "missing" or "not run"; else None."""
    return "missing" if result.missing else "not run" if result.skipped else None


def _mean_sd(values):
    if len(values) > 1:
        return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    return f"{values[0]:.3f}"


def best_baseline(results):
    return max(("linear", "k-NN"), key=lambda m: results[m].scores[0])


def markdown_table(rows):
    header = ["set", "metric", "train / test", *METHODS, "best baseline",
              "defaults − best", *(f"s/fit {m}" for m in METHODS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset, results in rows:
        best = best_baseline(results)
        cells = [dataset.name, dataset.metric, f"{len(dataset.train)} / {len(dataset.test)}"]
        cells += [_absent(results[m]) or _mean_sd(results[m].scores)
                  for m in METHODS]
        cells.append(f"{best}: {results[best].settings}")
        defaults = results["defaults"]
        cells.append(_absent(defaults) or
                     f"{np.mean(defaults.scores) - results[best].scores[0]:+.3f}")
        cells += [_absent(results[m]) or f"{np.mean(results[m].seconds):.1f}"
                  for m in METHODS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def json_rows(rows):
    return [{
        "set": dataset.name, "task": dataset.task, "metric": dataset.metric,
        "n_train": len(dataset.train), "n_test": len(dataset.test), "note": dataset.note,
        "best_baseline": best_baseline(results),
        "methods": {m: {"missing": r.missing, "scores": r.scores, "seconds": r.seconds,
                        "settings": r.settings} for m, r in results.items()},
    } for dataset, results in rows]


def _parameter(text, option, parser):
    """``(name, value)`` of an ``option NAME=VALUE`` (``--param``, ``--code-param``)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        parser.error(f"{option} takes NAME=VALUE; got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=ALL_SETS, default=list(ALL_SETS),
                        metavar="SET", help=f"sets to run (default: all of {', '.join(ALL_SETS)})")
    parser.add_argument("--device", default="auto", help="device of the Neuroformer estimators")
    parser.add_argument("--seeds", type=int, default=1,
                        help="Neuroformer fits per set, random_state 0..N-1 (mean ± sd)")
    parser.add_argument("--small", action="store_true",
                        help="tiny sets and models: checks the machinery, figures mean nothing")
    parser.add_argument("--data-root", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data",
                        help="folder holding auditory_cortex/ and hippocampus_wmaze/ "
                             "(default: ../shared/data beside the repository)")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="random_state of make_code_data: draw other code families")
    parser.add_argument("--code-param", action="append", default=[], metavar="NAME=VALUE",
                        help="set a make_code_data parameter of the code families away from "
                             "its default, e.g. --code-param window=2.0 --code-param rate=3: "
                             "other window lengths and spike densities; repeatable")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--no-cv", action="store_true",
                        help="skip the CV estimators (each fits 3 folds of up to 8 settings)")
    parser.add_argument("--cv-only", action="store_true",
                        help="skip the defaults (run the CV estimators and the baselines)")
    parser.add_argument("--cv-n-jobs", type=int, default=None, metavar="K",
                        help="n_jobs of the CV estimators: K processes share the device")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="set a parameter of the Neuroformer estimators away from its "
                             "default (VALUE read as a Python literal, else a string), e.g. "
                             "--param count_decoder=none; repeatable")
    args = parser.parse_args(argv)
    params = dict(_parameter(text, "--param", parser) for text in args.param)
    code_params = dict(_parameter(text, "--code-param", parser) for text in args.code_param)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.cv_only and args.no_cv:
        parser.error("--cv-only and --no-cv leave nothing to run")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    rows = []
    load = functools.partial(load_set, code_params=code_params)
    for dataset in available_sets(args.sets, args.data_root, args.small, args.data_seed, load):
        log.info("%s: %s, %d train / %d test rows", dataset.name, dataset.X, len(dataset.train),
                 len(dataset.test))
        rows.append((dataset, run_set(dataset, args.seeds, args.device, args.small,
                                      run_cv=not args.no_cv, params=params,
                                      run_defaults=not args.cv_only,
                                      cv_n_jobs=args.cv_n_jobs)))
    table = markdown_table(rows)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(json_rows(rows), indent=2))
    return rows


if __name__ == "__main__":
    main()
