"""Code families the decoding suite does not hold (issue #19): the package defaults against
tuned linear and k-NN decoders on ``make_code_data`` redrawn with other window lengths,
rates, population sizes, trial and class counts.

The package is judged on recordings and codes it has never seen, so its defaults must not
depend on the suite's one setting of each code (400 trials of 500 ms, 40 neurons, 10 Hz, 4
classes). Every family here is one ``make_code_data`` setting (``FAMILIES``); every code of
a family is one set of the decoding suite (``benchmarks/decoding_suite.py``: the same split,
the same baselines with their bin width and penalty chosen on validation rows, the same
plain call ``NeuroformerClassifier(random_state=s)`` / ``NeuroformerRegressor``). A code
that a family's setting cannot generate (a firing-order sequence longer than the window,
say) is reported with the generator's reason. One table out: a row per family, a column per
code, each cell "defaults / best baseline". With several ``--data-seeds`` (draws of every
family: other cells, classes and spikes) a cell is the mean over the draws of both, and how
many draws the defaults matched or beat the best baseline on: one draw's test rows are few
(100 to 120 trials), and a gap of a trial or two is often the draw's, not the method's.

    python benchmarks/code_families.py [--device cuda] [--seeds 1] [--data-seeds 0 ...]
        [--families NAME ...] [--codes CODE ...] [--cv [--cv-n-jobs K]] [--json out.json]

``--cv`` also fits the CV estimators (``NeuroformerClassifierCV`` / ``NeuroformerRegressorCV``
with their defaults, ``random_state`` 0..N-1 as the defaults); a cell then reads
"defaults / CV / best baseline".

``--small`` caps the sizes (``SMALL_SIZES``) and uses a tiny model for one epoch to check
the machinery in seconds; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from decoding_suite import CODE_SETS, best_baseline, code_set, json_rows, run_set

FAMILIES = {
    "suite (500 ms, 40 neurons, 10 Hz)": {},
    "1 s trials": dict(window=1.0),
    "2 s trials, 3 Hz": dict(window=2.0, rate=3.0, noise=1.0),
    "2 s trials, 80 neurons, 10 Hz": dict(window=2.0, rate=10.0, noise=4.0, n_neurons=80),
    "300 ms, 100 neurons, 40 Hz": dict(window=0.3, rate=40.0, n_neurons=100, jitter=0.002),
    "sparse: 2 Hz": dict(rate=2.0, noise=0.5),
    "160 trials": dict(n_trials=160),
    "8 classes, 480 trials": dict(n_classes=8, n_trials=480),
    "16 classes, 320 trials": dict(n_classes=16, n_trials=320),  # 20 trials a class
    "1 s trials, 400 neurons (40 coding), 5 Hz": dict(window=1.0, n_neurons=400, rate=5.0,
                                                       noise=1.0, coding_fraction=0.1),
    # ~1,350 spikes a window, past the small preset's 1,024-token budget (earliest dropped)
    "1 s trials, 300 neurons, 10 Hz": dict(window=1.0, n_neurons=300, rate=10.0, noise=2.0),
    # weak codes: 4 coding cells whose code spikes are as many as their background's
    "weak: 10 % coding, 5 Hz over 5 Hz": dict(coding_fraction=0.1, rate=5.0, noise=5.0),
    "2 classes, 120 trials": dict(n_classes=2, n_trials=120),
}
SMALL_SIZES = dict(n_trials=48, n_neurons=32, dt=0.005)  # --small: every family this size

log = logging.getLogger("code_families")


def family_sets(family, codes, small, data_seed):
    """``(code, DecodingSet or the generator's reason)`` for every code of ``codes`` in
    ``family``."""
    settings = {**FAMILIES[family], **(SMALL_SIZES if small else {})}
    for code in codes:
        try:
            yield code, code_set(code, small, data_seed, settings)
        except ValueError as reason:
            yield code, str(reason)


def run_family(family, codes, seeds, device, small, data_seeds, run_cv=False, cv_n_jobs=None):
    """``{code: [(DecodingSet, results) per draw] or reason}`` of one family (defaults,
    with ``run_cv`` the CV estimators, and baselines on every draw of ``data_seeds``)."""
    runs = {}
    for data_seed in data_seeds:
        for code, dataset in family_sets(family, codes, small, data_seed):
            if isinstance(dataset, str):  # the setting's, the same on every draw
                log.warning("%s / %s: not generated: %s", family, code, dataset)
                runs[code] = dataset
                continue
            log.info("%s / %s, draw %d: %s, %d train / %d test rows", family, code, data_seed,
                     dataset.X, len(dataset.train), len(dataset.test))
            runs.setdefault(code, []).append(
                (dataset, run_set(dataset, seeds, device, small, run_cv=run_cv,
                                  cv_n_jobs=cv_n_jobs)))
    return runs


def cell(draws):
    """"defaults / best baseline" of one code of one family (means over the draws, and with
    several draws how many the defaults matched or beat the baseline on), "defaults / CV /
    best baseline" when the CV estimators ran, or "not generated"."""
    if isinstance(draws, str):
        return "not generated"
    defaults = [np.mean(results["defaults"].scores) for _, results in draws]
    baselines = [results[best_baseline(results)].scores[0] for _, results in draws]
    means = [np.mean(defaults)]
    if all(results["CV"].scores for _, results in draws):
        means.append(np.mean([np.mean(results["CV"].scores) for _, results in draws]))
    text = " / ".join(f"{m:.3f}" for m in [*means, np.mean(baselines)])
    if len(draws) > 1:
        wins = sum(d >= b for d, b in zip(defaults, baselines))
        text += f" ({wins} of {len(draws)})"
    return text


def markdown_table(families, codes):
    """A row per family, a column per code of ``codes`` (accuracy; R² for ``behavior``)."""
    header = ["family (`make_code_data` setting)", *codes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for family, runs in families.items():
        name = f"{family} `{FAMILIES[family]}`" if FAMILIES[family] else family
        lines.append("| " + " | ".join([name, *(cell(runs[c]) for c in codes)]) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES),
                        metavar="NAME", help="families to run (default: all)")
    parser.add_argument("--device", default="auto", help="device of the Neuroformer estimators")
    parser.add_argument("--seeds", type=int, default=1,
                        help="Neuroformer fits per set, random_state 0..N-1 (mean)")
    parser.add_argument("--codes", nargs="+", choices=CODE_SETS, default=list(CODE_SETS),
                        metavar="CODE", help="codes to run in every family (default: all)")
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0],
                        help="random_state of make_code_data, one draw of every family each "
                             "(cells: means over the draws)")
    parser.add_argument("--cv", action="store_true",
                        help="also fit the CV estimators (cells: defaults / CV / baseline)")
    parser.add_argument("--cv-n-jobs", type=int, default=None,
                        help="n_jobs of the CV estimators (processes sharing the device)")
    parser.add_argument("--small", action="store_true",
                        help="tiny sets and models: checks the machinery, figures mean nothing")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    families = {family: run_family(family, args.codes, args.seeds, args.device, args.small,
                                   args.data_seeds, args.cv, args.cv_n_jobs)
                for family in args.families}
    print(markdown_table(families, args.codes))
    if args.json:
        args.json.write_text(json.dumps({
            family: {code: draws if isinstance(draws, str) else json_rows(draws)
                     for code, draws in runs.items()}
            for family, runs in families.items()}, indent=2))
    return families


if __name__ == "__main__":
    main()
