"""Decode the sound of each 500 ms trial of real and artificial auditory spike trains (issue #9).

The data (Szabó & Barthó 2021, doi:10.1007/s00521-021-06589-0) sit beside the repository in
``../shared/data/auditory_cortex`` (or ``--data FOLDER``):

* ``D_E_III.csv``: rat auditory cortex, 70 cells, responses to 18 sounds;
* ``D_A_I.csv``: an artificial rate code, 50 cells, the class sets the total spike count.

Every trial is one window of 500 ms; the paper's split is kept: models are fitted on the
``train`` rows, every setting (regularisation of the baselines; bin width and training
settings of Neuroformer) is chosen on the ``val`` rows alone with ``GridSearchCV`` and a
``PredefinedSplit``, the chosen model is refitted on the ``train`` rows and scored once on
the ``test`` rows. Baselines built in the same run:

* logistic regression on per-cell counts in 10 x 50 ms bins (the best linear baseline of
  D_E_III in the README of the data);
* a linear SVM on per-cell counts over the whole trial, one-vs-one (``SVC(kernel="linear")``,
  the best linear baseline of D_A_I) and one-vs-rest (``LinearSVC``);
* logistic regression on the trial's total spike count alone.

``NeuroformerClassifier`` reads every spike as a token (cell id, time bin of width ``dt``);
the token budget covers the fullest training trial (up to ~450 spikes on D_A_I). The bin
width is a pipeline step (``Rebin``), so ``GridSearchCV`` chooses it on val with the
training settings, among them the head's ``readout``: the paper's mean of the last layer
(``"mean"``), which cannot tell how many spikes a trial holds, or that mean and a code of
the trial's spike count (``"mean+count"``; the count is what D_A_I's classes set), and
``sclm_weight`` (the spike objective kept next to the classification loss). A pretrained
arm competes in the same search: a ``NeuroformerPretrainer`` fitted on the spikes of the
train + val trials (labels withheld; the test trials are never seen), then finetuned or
probed (``freeze="backbone"``) on the train rows (``--no-pretrain`` leaves it out). The full
run is meant for a GPU (``--device cuda --n-jobs 5``: about 3 minutes for D_E_III and 5 for
D_A_I on an H100, 2 and 4 of them Neuroformer); on a CPU it takes hours.

Run ``python examples/auditory_cortex.py [--device cuda] [--files D_E_III D_A_I]``; ``--small``
checks the machinery in seconds on a few trials (its accuracies mean nothing; the docs
build runs it so, through ``NFE_EXAMPLE_SMALL=1``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from nfestimators import NeuroformerClassifier, NeuroformerPretrainer
from nfestimators.datasets import load_auditory_cortex

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "auditory_cortex"
FILES = ("D_E_III", "D_A_I")
PUBLISHED = {  # test accuracy: published RNN, best linear baseline (README of the data)
    "D_E_III": {"RNN (published)": 0.451, "best linear (published)": 0.506},
    "D_A_I": {"RNN (published)": 0.800, "best linear (published)": 0.644,
              "total count (published)": 0.794},
}
C_GRID = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
SMALL_C_GRID = [1e-2, 1.0]

# Neuroformer search on val: bin width of the tokens (a pipeline step) x head readout x
# training settings.
NF_FIXED = dict(preset="small", batch_size=32, validation_fraction=None, n_iter_no_change=None)
READOUTS = ["mean", "mean+count"]
NF_GRIDS = {
    "D_E_III": {"bins__dt": [0.005, 0.02, 0.05], "nf__readout": READOUTS,
                "nf__sclm_weight": [0.0, 1.0], "nf__lr": [1e-3], "nf__max_epochs": [40]},
    "D_A_I": {"bins__dt": [0.005, 0.02], "nf__readout": READOUTS, "nf__sclm_weight": [0.0, 1.0],
              "nf__lr": [1e-3], "nf__max_epochs": [40]},
}
SMALL_NF_FIXED = dict(preset="tiny", batch_size=16, validation_fraction=None, n_iter_no_change=None)
SMALL_NF_GRID = {"bins__dt": [0.02], "nf__readout": READOUTS, "nf__lr": [1e-3],
                 "nf__max_epochs": [1]}

# Pretrained arm: a NeuroformerPretrainer fitted once per file on the spikes of the train + val
# trials (labels withheld, test trials never seen) at one bin width, its length set by early
# stopping on 10 % of those trials. The classifier finetunes from it (whole model, with or
# without the spike loss kept) or trains a linear probe on it; GridSearchCV compares these
# with the from-scratch settings on val.
PRETRAIN_DT = {"D_E_III": 0.005, "D_A_I": 0.02}
PRETRAIN_FIXED = dict(preset="small", batch_size=32, lr=1e-3, max_epochs=250,
                      validation_fraction=0.1, n_iter_no_change=10)
SMALL_PRETRAIN_FIXED = dict(preset="tiny", batch_size=16, max_epochs=1, validation_fraction=None)


def pretrained_grids(saved, dt, finetune_epochs=(30,), probe_epochs=(60, 150)):
    """Val grids of the pretrained arm: finetuning the whole model, and a probe (frozen
    backbone, the head alone trained)."""
    return [
        {"bins__dt": [dt], "nf__pretrained": [saved], "nf__readout": READOUTS,
         "nf__sclm_weight": [0.0, 1.0], "nf__lr": [1e-3], "nf__max_epochs": list(finetune_epochs)},
        {"bins__dt": [dt], "nf__pretrained": [saved], "nf__freeze": ["backbone"],
         "nf__readout": ["mean+count"], "nf__lr": [1e-2, 3e-2],
         "nf__max_epochs": list(probe_epochs)},
    ]


class Rebin(TransformerMixin, BaseEstimator):
    """Coarsen the time bins of SpikeWindows to ``dt`` seconds (a whole multiple of theirs);
    spikes keep the token order (time bin, then neuron). ``dt=None`` passes ``X`` through."""

    def __init__(self, dt=None):
        self.dt = dt

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.rebin(self.dt)


def select_on_val(estimator, grid, X, y, split):
    """Choose ``grid`` settings on the val rows (GridSearchCV, PredefinedSplit), refit the
    best on the train rows. Returns (fitted estimator, best params, val accuracy)."""
    rows = np.flatnonzero(np.isin(split, ("train", "val")))
    fold = np.where(split[rows] == "val", 0, -1)
    search = GridSearchCV(estimator, grid, cv=PredefinedSplit(fold), refit=False, n_jobs=1)
    search.fit(X[rows], y[rows])
    best = clone(estimator).set_params(**search.best_params_)
    train = np.flatnonzero(split == "train")
    return best.fit(X[train], y[train]), search.best_params_, float(search.best_score_)


def small_subset(split, labels, per_class=(2, 1, 1), seed=0):
    """A few trials of every class and role (``--small``)."""
    rng = np.random.default_rng(seed)
    keep = []
    for role, n in zip(("train", "val", "test"), per_class):
        for c in np.unique(labels):
            rows = np.flatnonzero((split == role) & (labels == c))
            keep.extend(rng.choice(rows, size=min(n, len(rows)), replace=False))
    return np.sort(np.asarray(keep))


def baselines(path, rows, seed, c_grid=C_GRID):
    """Linear baselines on binned counts; returns {name: (test accuracy, val accuracy, info)}."""
    data = load_auditory_cortex(path, dt=0.05)
    counts = data.windows.to_counts()[rows]  # (trials, cells, 10 x 50 ms)
    y, split = data.labels[rows], data.split[rows]
    test = split == "test"
    features = {
        "logistic, 10 x 50 ms per-cell counts": (counts.reshape(len(counts), -1), "lr"),
        "linear SVM (one-vs-one), per-cell counts": (counts.sum(2), "svm"),
        "LinearSVC (one-vs-rest), per-cell counts": (counts.sum(2), "linsvc"),
        "logistic, total count alone": (counts.sum((1, 2))[:, None].astype(float), "lr"),
    }
    models = {
        "lr": LogisticRegression(max_iter=2000),
        "svm": SVC(kernel="linear"),
        "linsvc": LinearSVC(max_iter=5000, random_state=seed),
    }
    out = {}
    for name, (X, kind) in features.items():
        pipe = make_pipeline(StandardScaler(), models[kind])
        grid = {f"{pipe.steps[-1][0]}__C": c_grid}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model, params, val = select_on_val(pipe, grid, X, y, split)
        C = next(iter(params.values()))
        out[name] = (model.score(X[test], y[test]), val, f"C={C:g}")
    return out


def _setting(name, value):
    if name == "pretrained":
        return "pretrained on train + val spikes"
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


def neuroformer(name, path, rows, args):
    """NeuroformerClassifier: bin width and settings chosen on val, refit on train."""
    fixed, grid = (SMALL_NF_FIXED, SMALL_NF_GRID) if args.small else (NF_FIXED, NF_GRIDS[name])
    data = load_auditory_cortex(path)  # 1 ms bins; Rebin coarsens them
    X, y, split = data.windows[rows], data.labels[rows], data.split[rows]
    rows_tv = np.flatnonzero(np.isin(split, ("train", "val")))
    fold = np.where(split[rows_tv] == "val", 0, -1)
    grids = [grid]
    if not args.no_pretrain:
        start = time.perf_counter()
        dt = 0.02 if args.small else PRETRAIN_DT[name]
        pre = NeuroformerPretrainer(
            **(SMALL_PRETRAIN_FIXED if args.small else PRETRAIN_FIXED), device=args.device,
            random_state=args.seed).fit(Rebin(dt).transform(X[rows_tv]))  # spikes only
        saved = str(Path(tempfile.mkdtemp(prefix="nfe_auditory_")) / f"pretrained_{name}.nfe")
        pre.save(saved)
        print(f"  pretrained on the train + val spikes at dt={dt:g}: {pre.n_epochs_} epochs, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        grids += (pretrained_grids(saved, dt, (1,), (1,)) if args.small
                  else pretrained_grids(saved, dt))
    if args.epochs is not None:
        grids = [{**g, "nf__max_epochs": [args.epochs]} for g in grids]
    pipe = Pipeline([("bins", Rebin()), ("nf", NeuroformerClassifier(
        **fixed, device=args.device, random_state=args.seed))])
    search = GridSearchCV(pipe, grids, cv=PredefinedSplit(fold), refit=False, n_jobs=args.n_jobs)
    search.fit(X[rows_tv], y[rows_tv])
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"    {params}: val {score:.3f}", flush=True)
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    model = clone(pipe).set_params(**search.best_params_).fit(X[train], y[train])
    nf = model.named_steps["nf"]
    info = (", ".join(_setting(k.split("__")[1], v) for k, v in search.best_params_.items())
            + f", preset={fixed['preset']}, batch_size={fixed['batch_size']}, max_tokens="
            f"{nf.tokenizer_.max_tokens} (fullest trial {X.n_spikes().max()} spikes), "
            f"device={nf.device_}")
    return model.score(X[test], y[test]), float(search.best_score_), info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder of the CSV files (default {DEFAULT_DATA})")
    parser.add_argument("--files", nargs="+", default=list(FILES), choices=FILES)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--small", action="store_true",
                        default=os.environ.get("NFE_EXAMPLE_SMALL") == "1",
                        help="a few trials, a tiny model, one epoch: checks the machinery only "
                             "(also set by NFE_EXAMPLE_SMALL=1, as the docs build does)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the max_epochs grid of Neuroformer")
    parser.add_argument("--no-pretrain", action="store_true",
                        help="search the from-scratch settings only (no pretrained arm)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="settings searched in parallel (processes; one GPU can take several)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    missing = [f for f in args.files if not (args.data / f"{f}.csv").is_file()]
    if missing:
        sys.exit(f"auditory cortex data not found: {', '.join(f + '.csv' for f in missing)} "
                 f"missing in {args.data}. Put the data set's folder beside the repository "
                 "(../shared/data/auditory_cortex) or pass --data FOLDER.")

    tables = {}
    for name in args.files:
        path = args.data / f"{name}.csv"
        data = load_auditory_cortex(path, dt=0.05)
        rows = (small_subset(data.split, data.labels, seed=args.seed) if args.small
                else np.arange(len(data.labels)))
        roles = {r: int(np.sum(data.split[rows] == r)) for r in ("train", "val", "test")}
        print(f"{name}: {len(rows)} trials {roles}, {data.n_cells} cells, "
              f"{len(np.unique(data.labels))} classes", flush=True)
        start = time.perf_counter()
        results = baselines(path, rows, args.seed, SMALL_C_GRID if args.small else C_GRID)
        print(f"  baselines: {time.perf_counter() - start:.1f} s", flush=True)
        start = time.perf_counter()
        results["NeuroformerClassifier"] = neuroformer(name, path, rows, args)
        seconds = time.perf_counter() - start
        print(f"  Neuroformer (search + refit): {seconds:.1f} s", flush=True)
        tables[name] = (results, seconds)

    for name, (results, seconds) in tables.items():
        print(f"\n{name}: test accuracy (chance {1 / 18:.3f}); settings chosen on val")
        print(f"| {'model':<44} | test  | val   | settings |")
        print(f"|{'-' * 46}|-------|-------|----------|")
        for model, (test, val, info) in results.items():
            print(f"| {model:<44} | {test:.3f} | {val:.3f} | {info} |")
        for model, acc in PUBLISHED[name].items():
            print(f"| {model:<44} | {acc:.3f} |       |          |")
        print(f"Neuroformer wall time (search + refit): {seconds:.0f} s")


if __name__ == "__main__":
    main()
