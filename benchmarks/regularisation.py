"""Regularisers for small labelled sets across the decoding suite (issue #19 part 3).

On the sets, splits and baselines of ``decoding_suite.py`` (imported, not copied), every arm
fits the plain estimator (``NeuroformerClassifier(random_state=s)`` /
``NeuroformerRegressor``) with one change, on the same seeds:

* ``defaults``: nothing changed;
* ``jitter``: ``augment_jitter=--jitter`` (bins);
* ``dropout``: ``augment_neuron_dropout=--dropout``;
* ``ema``: ``ema_decay=--ema``;
* ``smoothing``: ``label_smoothing=--smoothing`` (classification sets only);
* ``combined``: the single changes given by ``--combine`` (fitted with the other arms, seed
  after seed), or, without it, those whose mean difference to ``defaults`` over this run's
  sets is positive (fitted after all the others; chosen on the test scores of this run: an
  optimistic arm, a hint for the next run, not a result);
* ``ensemble``: the mean ``predict_proba`` (classifier) or ``predict`` (regressor) of 3 fits
  of the defaults with ``random_state`` s, s + 1000 and s + 2000 (the first is the
  ``defaults`` fit).

The table gives, per set, each arm's test score (mean over ``--seeds``), the best tuned
baseline of the suite (linear or k-NN, chosen on validation rows, in the same run), and per
arm the mean difference to ``defaults`` over the sets and how many sets it raised / lowered.

    python benchmarks/regularisation.py --device cuda --seeds 2 \\
        --sets rate identity order latency synchrony behavior spiking D_E_III D_A_I
    python benchmarks/regularisation.py --small      # a machinery check in seconds

``--params name=value ...`` sets estimator parameters in every arm (e.g. a reduced CPU run:
``--params max_epochs=20``). ``--small`` uses the suite's tiny sets and a tiny one-epoch
model; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import logging
import multiprocessing
import signal
import time
from pathlib import Path

import numpy as np

from decoding_suite import (ALL_SETS, SYNTHETIC_SETS, available_sets, load_set,
                            neuroformer_estimator, tuned_baseline)

ARMS = ("defaults", "jitter", "dropout", "ema", "smoothing", "combined", "ensemble")
SINGLE_ARMS = ("jitter", "dropout", "ema", "smoothing")
ENSEMBLE_SIZE = 3
ENSEMBLE_SEED_STEP = 1000

log = logging.getLogger("regularisation")


class Deadline(Exception):
    """SIGTERM (e.g. from ``timeout``): stop fitting and report what is finished."""


def _deadline(signum, frame):
    raise Deadline


def arm_params(args):
    """Estimator parameters of each single-change arm."""
    return {"jitter": {"augment_jitter": args.jitter},
            "dropout": {"augment_neuron_dropout": args.dropout},
            "ema": {"ema_decay": args.ema},
            "smoothing": {"label_smoothing": args.smoothing}}


def applies(params, dataset):
    """``params`` without what does not apply to ``dataset`` (label smoothing: classifiers)."""
    return {k: v for k, v in params.items()
            if k != "label_smoothing" or dataset.task == "classification"}


@functools.lru_cache(maxsize=None)
def cached_set(name, data_root, small, data_seed):
    return load_set(name, data_root, small, data_seed)


def fit_task(task):
    """One fit: ``task`` = (set name, arm, seed, member, params, settings). Returns the task's
    keys with the test score, the seconds of fit + predict, and the test output (the
    probabilities of a classifier, the predictions of a regressor)."""
    name, arm, seed, member, params, settings = task
    dataset = cached_set(name, settings["data_root"], settings["small"], settings["data_seed"])
    estimator = neuroformer_estimator(dataset, False, seed, settings["device"],
                                      settings["small"])
    estimator.set_params(**{**settings["params"], **params})
    start = time.perf_counter()
    estimator.fit(dataset.X[dataset.train], dataset.y[dataset.train])
    X_test = dataset.X[dataset.test]
    if dataset.task == "classification":
        output = estimator.predict_proba(X_test)
        prediction = estimator.classes_[np.argmax(output, axis=1)]
    else:
        output = prediction = estimator.predict(X_test)
    seconds = time.perf_counter() - start
    score = float(dataset.score(dataset.y[dataset.test], prediction))
    return name, arm, seed, member, score, seconds, output


def first_tasks(datasets, arms, args, settings, combined=None):
    """The fits of the defaults, the ensemble's other members, the single changes and, when
    its ``combined`` parameters are known already (``--combine``), the combined arm; seed
    after seed, so that a run stopped early holds whole seeds."""
    singles = arm_params(args)
    for seed in range(args.seeds):
        for dataset in datasets:
            yield dataset.name, "defaults", seed, 0, {}, settings
            if "ensemble" in arms:
                for member in range(1, ENSEMBLE_SIZE):
                    yield (dataset.name, "ensemble", seed, member,
                           {"random_state": seed + member * ENSEMBLE_SEED_STEP}, settings)
            for arm in SINGLE_ARMS:
                params = applies(singles[arm], dataset)
                if arm in arms and params:
                    yield dataset.name, arm, seed, 0, params, settings
            if combined is not None:
                yield dataset.name, "combined", seed, 0, applies(combined, dataset), settings


def run_tasks(tasks, jobs, fits):
    """Run the fits (in ``jobs`` processes, or in this one), appending every result to
    ``fits`` as it comes; a SIGTERM stops them (Deadline) and ends the processes."""
    tasks = list(tasks)
    if jobs <= 1:
        results = map(fit_task, tasks)
        pool = None
    else:
        pool = multiprocessing.get_context("spawn").Pool(jobs)
        results = pool.imap_unordered(fit_task, tasks)
    try:
        for fit in results:
            name, arm, seed, member, score, seconds, _ = fit
            fits.append(fit)
            log.info("%s %s seed %d%s: %.3f (%.1f s)", name, arm, seed,
                     f" member {member}" if member else "", score, seconds)
    finally:
        if pool is not None:
            pool.terminate()


def collect(datasets, fits):
    """{set: {arm: {"scores": [...], "seconds": [...]}}} from the fits, seeds in order; the
    ensemble of a seed once all its members are in."""
    by_key = {(name, arm, seed, member): (score, seconds, output)
              for name, arm, seed, member, score, seconds, output in fits}
    results = {}
    for dataset in datasets:
        table = results.setdefault(dataset.name, {})
        keys = sorted(k for k in by_key if k[0] == dataset.name and k[3] == 0)
        for _, arm, seed, _ in keys:
            score, seconds, _ = by_key[(dataset.name, arm, seed, 0)]
            if arm == "ensemble":
                continue
            entry = table.setdefault(arm, {"seeds": [], "scores": [], "seconds": []})
            entry["seeds"].append(seed)
            entry["scores"].append(score)
            entry["seconds"].append(seconds)
        for seed in sorted({k[2] for k in by_key if k[0] == dataset.name}):
            members = [by_key.get((dataset.name, "defaults", seed, 0))] + [
                by_key.get((dataset.name, "ensemble", seed, m)) for m in range(1, ENSEMBLE_SIZE)]
            if any(m is None for m in members):
                continue
            mean = np.mean([m[2] for m in members], axis=0)
            prediction = mean
            if dataset.task == "classification":
                classes = np.unique(dataset.y[dataset.train])
                prediction = classes[np.argmax(mean, axis=1)]
            entry = table.setdefault("ensemble", {"seeds": [], "scores": [], "seconds": []})
            entry["seeds"].append(seed)
            entry["scores"].append(float(dataset.score(dataset.y[dataset.test], prediction)))
            entry["seconds"].append(float(sum(m[1] for m in members)))
    return results


def gain(table, arm):
    """Mean score of ``arm`` minus the defaults' on the same seeds (None if none shared)."""
    if arm not in table or "defaults" not in table:
        return None
    defaults = dict(zip(table["defaults"]["seeds"], table["defaults"]["scores"]))
    pairs = [(score, defaults[seed]) for seed, score in
             zip(table[arm]["seeds"], table[arm]["scores"]) if seed in defaults]
    return float(np.mean([a - b for a, b in pairs])) if pairs else None


def mean_gain(datasets, results, arm):
    """Mean over the sets (where the arm ran) of its gain over the defaults, and the gains."""
    gains = [g for g in (gain(results[d.name], arm) for d in datasets) if g is not None]
    return (float(np.mean(gains)) if gains else float("nan"), gains)


def combined_params(datasets, results, args):
    """The single changes of the ``combined`` arm (``--combine``, else those that raised the
    mean over the sets) and their parameters."""
    chosen = args.combine
    if chosen is None:
        chosen = [arm for arm in SINGLE_ARMS if mean_gain(datasets, results, arm)[0] > 0]
    params = {}
    for arm in chosen:
        params.update(arm_params(args)[arm])
    return chosen, params


def best_baseline(dataset):
    """(score, description) of the better of the suite's tuned linear and k-NN baselines."""
    best = None
    for kind, name in (("linear", "linear"), ("knn", "k-NN")):
        score, _, settings = tuned_baseline(kind, dataset)
        if best is None or score > best[0]:
            best = (score, f"{name}: {settings.split(' (val')[0]}")
    return best


def markdown_table(datasets, results, baselines, arms, chosen):
    header = ["set", "metric", *arms, "best baseline", "best arm − baseline"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in datasets:
        table = results[dataset.name]
        base_score, base_name = baselines[dataset.name]
        means = {arm: np.mean(table[arm]["scores"]) for arm in arms if arm in table}
        cells = [dataset.name, dataset.metric]
        cells += [f"{means[arm]:.3f}" if arm in means else "n/a" for arm in arms]
        cells.append(f"{base_score:.3f} ({base_name})")
        top = max(means, key=means.get) if means else None
        cells.append(f"{means[top] - base_score:+.3f} ({top})" if top else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    gain_cells, count_cells, time_cells = [], [], []
    for arm in arms:
        mean, gains = mean_gain(datasets, results, arm)
        gain_cells.append("" if arm == "defaults" else f"{mean:+.3f}")
        count_cells.append("" if arm == "defaults" else
                           f"{sum(g > 0 for g in gains)} / {sum(g < 0 for g in gains)}")
        seconds = [np.mean(results[d.name][arm]["seconds"]) for d in datasets
                   if arm in results[d.name]]
        time_cells.append(f"{np.mean(seconds):.1f}" if seconds else "")
    lines.append("| mean − defaults | | " + " | ".join(gain_cells) + " | | |")
    lines.append("| sets up / down | | " + " | ".join(count_cells) + " | | |")
    lines.append("| s per fit (ensemble: its 3) | | " + " | ".join(time_cells) + " | | |")
    if "combined" in arms:
        named = "not run" if chosen is None else " + ".join(chosen) or "nothing (defaults)"
        lines.append(f"\ncombined = {named}")
    return "\n".join(lines)


def parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=ALL_SETS, default=list(SYNTHETIC_SETS),
                        metavar="SET", help=f"sets to run, of {', '.join(ALL_SETS)} "
                                            "(default: the synthetic ones)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), metavar="ARM",
                        help=f"arms to run, of {', '.join(ARMS)} (defaults always runs)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, default=1, help="random_state 0..N-1 per arm")
    parser.add_argument("--jitter", type=int, default=1, help="augment_jitter of 'jitter' (bins)")
    parser.add_argument("--dropout", type=float, default=0.1,
                        help="augment_neuron_dropout of 'dropout'")
    parser.add_argument("--ema", type=float, default=0.99, help="ema_decay of 'ema'")
    parser.add_argument("--smoothing", type=float, default=0.1,
                        help="label_smoothing of 'smoothing'")
    parser.add_argument("--combine", nargs="*", choices=SINGLE_ARMS, metavar="ARM",
                        help="the changes of 'combined' (default: those that raised the mean)")
    parser.add_argument("--params", nargs="*", default=[], metavar="NAME=VALUE",
                        help="estimator parameters set in every arm, e.g. max_epochs=20")
    parser.add_argument("--small", action="store_true",
                        help="tiny sets and models: checks the machinery, figures mean nothing")
    parser.add_argument("--data-root", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--jobs", type=int, default=1,
                        help="fits run at once, in separate processes (one GPU takes several "
                             "of these small models)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    try:
        args.params = {k: parse_value(v) for k, v in (p.split("=", 1) for p in args.params)}
    except ValueError:
        parser.error("--params takes NAME=VALUE pairs")
    arms = ["defaults"] + [arm for arm in ARMS[1:] if arm in args.arms]
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    settings = {"data_root": args.data_root, "small": args.small, "data_seed": args.data_seed,
                "device": args.device, "params": args.params}
    datasets, baselines = [], {}
    for dataset in available_sets(args.sets, args.data_root, args.small, args.data_seed,
                                  load=cached_set):
        log.info("%s: %d train / %d test rows", dataset.name, len(dataset.train),
                 len(dataset.test))
        datasets.append(dataset)
        baselines[dataset.name] = best_baseline(dataset)
    fits, chosen = [], None
    signal.signal(signal.SIGTERM, _deadline)
    try:
        given = None
        if "combined" in arms and args.combine is not None:
            chosen, given = combined_params(datasets, {}, args)
        run_tasks(first_tasks(datasets, arms, args, settings, given), args.jobs, fits)
        if "combined" in arms and given is None:
            chosen, params = combined_params(datasets, collect(datasets, fits), args)
            log.info("combined arm: %s", " + ".join(chosen) or "nothing helped (the defaults)")
            run_tasks([(d.name, "combined", seed, 0, applies(params, d), settings)
                       for seed in range(args.seeds) for d in datasets], args.jobs, fits)
    except Deadline:
        log.warning("stopped by SIGTERM after %d fits: the table holds the finished ones",
                    len(fits))
    results = collect(datasets, fits)
    print(markdown_table(datasets, results, baselines, arms, chosen))
    if args.json:
        args.json.write_text(json.dumps({
            "arms": {arm: arm_params(args).get(arm, {}) for arm in arms},
            "combined": chosen, "params": args.params, "seeds": args.seeds,
            "sets": [{"set": d.name, "metric": d.metric, "n_train": len(d.train),
                      "n_test": len(d.test),
                      "best_baseline": {"score": baselines[d.name][0],
                                        "method": baselines[d.name][1]},
                      "arms": results[d.name]} for d in datasets]}, indent=2))
    return results


if __name__ == "__main__":
    main()
