"""Regularisers for small labelled sets across the decoding suite (issue #19 part 3).

On the sets, splits and baselines of ``decoding_suite.py`` (imported, not copied), every arm
fits the plain estimator (``NeuroformerClassifier(random_state=s)`` /
``NeuroformerRegressor``) with one change, on the same seeds:

* ``defaults``: nothing changed;
* ``jitter``: ``augment_jitter=--jitter`` (bins);
* ``dropout``: ``augment_neuron_dropout=--dropout``;
* ``ema``: ``ema_decay=--ema``;
* ``smoothing``: ``label_smoothing=--smoothing`` (classification sets only);
* ``combined``: the single changes given by ``--combine``, or, without it, those whose mean
  difference to ``defaults`` over this run's sets is positive (chosen on the test scores of
  this run: an optimistic arm, a hint for the next run, not a result);
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
import json
import logging
import time
from pathlib import Path

import numpy as np

from decoding_suite import (ALL_SETS, SYNTHETIC_SETS, MissingData, load_set,
                            neuroformer_estimator, tuned_baseline)

ARMS = ("defaults", "jitter", "dropout", "ema", "smoothing", "combined", "ensemble")
SINGLE_ARMS = ("jitter", "dropout", "ema", "smoothing")
ENSEMBLE_SIZE = 3
ENSEMBLE_SEED_STEP = 1000

log = logging.getLogger("regularisation")


def arm_params(args):
    """Estimator parameters of each single-change arm."""
    return {"jitter": {"augment_jitter": args.jitter},
            "dropout": {"augment_neuron_dropout": args.dropout},
            "ema": {"ema_decay": args.ema},
            "smoothing": {"label_smoothing": args.smoothing}}


def applies(arm, dataset):
    """Whether ``arm`` changes anything on ``dataset`` (label smoothing: classifiers only)."""
    return arm != "smoothing" or dataset.task == "classification"


def test_output(estimator, dataset):
    """Fit on the training rows; the test rows' probabilities (classifier) or predictions."""
    estimator.fit(dataset.X[dataset.train], dataset.y[dataset.train])
    X_test = dataset.X[dataset.test]
    if dataset.task == "classification":
        return estimator.predict_proba(X_test), estimator.classes_
    return estimator.predict(X_test), None


def score_output(dataset, output, classes):
    prediction = classes[np.argmax(output, axis=1)] if classes is not None else output
    return dataset.score(dataset.y[dataset.test], prediction)


def fit_arm(dataset, params, seed, args):
    """(score, seconds, output, classes) of one fit with ``params`` on top of the plain call."""
    estimator = neuroformer_estimator(dataset, False, seed, args.device, args.small)
    estimator.set_params(**{**args.params, **params})
    start = time.perf_counter()
    output, classes = test_output(estimator, dataset)
    seconds = time.perf_counter() - start
    return score_output(dataset, output, classes), seconds, output, classes


def record(results, dataset, arm, seed, score, seconds):
    results.setdefault(arm, {"scores": [], "seconds": []})
    results[arm]["scores"].append(float(score))
    results[arm]["seconds"].append(float(seconds))
    log.info("%s %s seed %d: %.3f (%.1f s)", dataset.name, arm, seed, score, seconds)


def run_single_arms(dataset, args, arms):
    """The defaults, single-change and ensemble arms on one set: {arm: scores, seconds}."""
    results, singles = {}, arm_params(args)
    for seed in range(args.seeds):
        score, seconds, output, classes = fit_arm(dataset, {}, seed, args)
        record(results, dataset, "defaults", seed, score, seconds)
        if "ensemble" in arms:
            outputs, total = [output], seconds
            for k in range(1, ENSEMBLE_SIZE):
                _, seconds, output, _ = fit_arm(
                    dataset, {"random_state": seed + k * ENSEMBLE_SEED_STEP}, seed, args)
                outputs.append(output)
                total += seconds
            record(results, dataset, "ensemble", seed,
                   score_output(dataset, np.mean(outputs, axis=0), classes), total)
        for arm in SINGLE_ARMS:
            if arm in arms and applies(arm, dataset):
                score, seconds, _, _ = fit_arm(dataset, singles[arm], seed, args)
                record(results, dataset, arm, seed, score, seconds)
    return results


def mean_gain(rows, arm):
    """Mean over the sets (where the arm ran) of its mean score minus the defaults'."""
    gains = [np.mean(r[arm]["scores"]) - np.mean(r["defaults"]["scores"])
             for _, r, _ in rows if arm in r]
    return (float(np.mean(gains)) if gains else float("nan"), gains)


def combined_params(rows, args):
    """The single changes of the ``combined`` arm and their parameters."""
    chosen = args.combine
    if chosen is None:
        chosen = [arm for arm in SINGLE_ARMS if mean_gain(rows, arm)[0] > 0]
    params = {}
    for arm in chosen:
        params.update(arm_params(args)[arm])
    return chosen, params


def run_combined(rows, args):
    chosen, params = combined_params(rows, args)
    log.info("combined arm: %s", ", ".join(chosen) or "nothing helped (the defaults again)")
    for dataset, results, _ in rows:
        usable = {k: v for k, v in params.items()
                  if k != "label_smoothing" or dataset.task == "classification"}
        for seed in range(args.seeds):
            score, seconds, _, _ = fit_arm(dataset, usable, seed, args)
            record(results, dataset, "combined", seed, score, seconds)
    return chosen


def best_baseline(dataset):
    """(score, description) of the better of the suite's tuned linear and k-NN baselines."""
    best = None
    for kind, name in (("linear", "linear"), ("knn", "k-NN")):
        score, _, settings = tuned_baseline(kind, dataset)
        if best is None or score > best[0]:
            best = (score, f"{name}: {settings.split(' (val')[0]}")
    return best


def markdown_table(rows, arms, chosen):
    header = ["set", "metric", *arms, "best baseline", "best arm − baseline"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset, results, (base_score, base_name) in rows:
        means = {arm: np.mean(results[arm]["scores"]) for arm in arms if arm in results}
        cells = [dataset.name, dataset.metric]
        cells += [f"{means[arm]:.3f}" if arm in means else "n/a" for arm in arms]
        cells.append(f"{base_score:.3f} ({base_name})")
        top = max(means, key=means.get)
        cells.append(f"{means[top] - base_score:+.3f} ({top})")
        lines.append("| " + " | ".join(cells) + " |")
    gain_cells, count_cells, time_cells = [], [], []
    for arm in arms:
        mean, gains = mean_gain(rows, arm)
        gain_cells.append("" if arm == "defaults" else f"{mean:+.3f}")
        count_cells.append("" if arm == "defaults" else
                           f"{sum(g > 0 for g in gains)} / {sum(g < 0 for g in gains)}")
        seconds = [np.mean(r[arm]["seconds"]) for _, r, _ in rows if arm in r]
        time_cells.append(f"{np.mean(seconds):.1f}")
    lines.append("| mean − defaults | | " + " | ".join(gain_cells) + " | | |")
    lines.append("| sets up / down | | " + " | ".join(count_cells) + " | | |")
    lines.append("| s per fit (ensemble: its 3) | | " + " | ".join(time_cells) + " | | |")
    if "combined" in arms:
        lines.append(f"\ncombined = {' + '.join(chosen) or 'nothing (defaults)'}")
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
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    try:
        args.params = {k: parse_value(v) for k, v in (p.split("=", 1) for p in args.params)}
    except ValueError:
        parser.error("--params takes NAME=VALUE pairs")
    arms = ["defaults"] + [arm for arm in ARMS[1:] if arm in args.arms]
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    rows = []
    for name in args.sets:
        try:
            dataset = load_set(name, args.data_root, args.small, args.data_seed)
        except MissingData as missing:
            log.warning("skipping %s: %s (pass --data-root)", name, missing)
            continue
        log.info("%s: %d train / %d test rows", name, len(dataset.train), len(dataset.test))
        rows.append((dataset, run_single_arms(dataset, args, arms), best_baseline(dataset)))
    chosen = run_combined(rows, args) if "combined" in arms else []
    print(markdown_table(rows, arms, chosen))
    if args.json:
        args.json.write_text(json.dumps({
            "arms": {arm: arm_params(args).get(arm, {}) for arm in arms},
            "combined": chosen, "params": args.params, "seeds": args.seeds,
            "sets": [{"set": d.name, "metric": d.metric, "n_train": len(d.train),
                      "n_test": len(d.test), "best_baseline": {"score": b[0], "method": b[1]},
                      "arms": r} for d, r, b in rows]}, indent=2))
    return rows


if __name__ == "__main__":
    main()
