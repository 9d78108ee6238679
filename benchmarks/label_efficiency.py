"""Label efficiency: does self-supervised pretraining pay off when labels are scarce? (issue #10)

Everything goes through the public estimators:

1. ``NeuroformerPretrainer`` is fitted once on **all** training windows, without labels.
2. For each label fraction (1, 5, 10, 25, 100 % of the training rows; drawn stratified by
   class, at least one row per class, several random draws), on the same labelled rows:

   * ``finetune``: ``NeuroformerRegressor`` / ``NeuroformerClassifier`` with
     ``pretrained=FrozenEstimator(pretrainer)`` (``--freeze``, ``--sclm-weight``,
     ``--finetune-lr``);
   * ``probe`` (optional, ``--methods``): the same with ``freeze="backbone"`` (linear probe);
   * ``scratch``: the same estimator, same preset, epochs, batch size and learning rate,
     from random weights;
   * ``linear``: ridge regression / logistic regression on binned spike counts
     (regularisation chosen by internal cross-validation where the rows allow it).

3. Every method is scored on the same held-out test rows, never seen by the pretrainer:
   accuracy x 100 for classification, R² x 100 (mean over the targets) for regression.

Datasets (``--dataset``):

* ``synthetic``: ``make_spiking_data`` (behaviour-driven Poisson population, 4 trial
  conditions). Test rows are 20 % of the **trials** (no leakage through past windows).
  Two tasks share one pretrainer and the same labelled rows: ``behavior`` (regression of the
  3 latent behaviour variables) and ``condition`` (classification, 4 classes). Linear
  features: per-neuron counts of the current and the past window.
* ``auditory``: the real rat auditory cortex set ``D_E_III.csv`` (Szabó & Barthó 2021; 18
  sounds, 70 cells, 500 ms trials; ``--data PATH``). The pretrainer sees the spikes of all
  train + val trials (labels withheld); fractions are drawn from those trials; the
  published test trials are the test rows. Linear features: per-cell counts in 10 x 50 ms
  bins (the README's best linear baseline).

Pretraining runs ``--pretrain-epochs`` epochs, or, with ``--pretrain-patience K``, holds out
10 % of the training windows and stops once their spike loss has not improved for K epochs,
keeping the best weights: the pretraining length that suits a data set without looking at a
label (too long a pretraining overfits a small recording's spikes, and the finetuned
estimators inherit that).

Training budget: all Neuroformer fits of one row run ``max(--epochs, ceil(--min-steps /
steps per epoch))`` epochs with no validation split and no early stopping, so that a fit on
a handful of rows still takes ``--min-steps`` optimiser steps; finetuning and scratch always
get the same budget. Test windows with more spikes than the training pool's fullest window
keep their latest spikes (one token budget for all methods).

Outputs (``--out``, default ``out/label_efficiency``): ``raw_<dataset>.csv`` (one row per
fit: task, fraction, draw, method, score, seconds) and ``table_<dataset>.csv`` (columns
``dataset, task, metric, fraction, n_labels, method, mean, std, draws``); the table is also
printed as markdown. ``examples/few_labels.py`` plots it.

    python benchmarks/label_efficiency.py --small                      # CI size, < 1 min
    python benchmarks/label_efficiency.py --dataset synthetic --device cpu --preset small \\
        --epochs 4 --pretrain-epochs 4 --draws 2
    python benchmarks/label_efficiency.py --dataset auditory \\
        --data ../shared/data/auditory_cortex/D_E_III.csv --device cuda --draws 5
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nfestimators import NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor
from nfestimators.datasets import load_auditory_cortex, make_spiking_data, split_windows

REPO = Path(__file__).resolve().parents[1]
DEFAULT_AUDITORY = REPO.parent / "shared" / "data" / "auditory_cortex" / "D_E_III.csv"
DEFAULT_FRACTIONS = (0.01, 0.05, 0.10, 0.25, 1.0)
METHODS = ("finetune", "probe", "scratch", "linear")
TABLE_COLUMNS = ["dataset", "task", "metric", "fraction", "n_labels", "method", "mean", "std",
                 "draws"]


# --------------------------------------------------------------------------- data
def load_synthetic(args):
    """Windows, train/test rows and the two tasks of the synthetic set."""
    data = make_spiking_data(n_neurons=args.n_neurons, duration=args.duration,
                             random_state=args.seed)
    X = data.windows
    train, test, _ = split_windows(X, test_size=0.2, finetune_size=0, by="trial",
                                   random_state=args.seed)
    counts = X.to_counts().sum(axis=2)
    if X.n_prev_bins:
        counts = np.hstack([counts, X.to_counts(past=True).sum(axis=2)])
    tasks = {
        "behavior": dict(kind="regression", y=data.behavior, metric="R2x100"),
        "condition": dict(kind="classification", y=data.labels, metric="accuracy%"),
    }
    return dict(X=X, train=train, test=test, strata=data.labels, features=counts.astype(float),
                tasks=tasks)


def load_auditory(args):
    """Windows (one per trial), train+val / test rows and the sound classification task."""
    path = Path(args.data or DEFAULT_AUDITORY)
    data = load_auditory_cortex(path, dt=args.dt)
    X, labels = data.windows, data.labels
    train = np.flatnonzero(data.split != "test")
    test = np.flatnonzero(data.split == "test")
    if args.small:  # CI size: a few trials per class
        rng = np.random.default_rng(args.seed)
        train = _per_class(labels[train], 8, rng, base=train)
        test = _per_class(labels[test], 3, rng, base=test)
    counts = X.to_counts()  # (n, cells, bins): per-cell counts in 10 equal bins (50 ms)
    n, cells, bins = counts.shape
    feature_bins = 10 if bins % 10 == 0 else 1
    features = counts.reshape(n, cells, feature_bins, -1).sum(axis=3).reshape(n, -1)
    tasks = {"sound": dict(kind="classification", y=labels, metric="accuracy%")}
    return dict(X=X, train=train, test=test, strata=labels, features=features.astype(float),
                tasks=tasks)


def _per_class(strata, k, rng, base):
    """``k`` random rows of every class (all of a smaller class), as sorted ``base`` indices."""
    picked = [rng.permutation(np.flatnonzero(strata == c))[:k] for c in np.unique(strata)]
    return np.sort(np.asarray(base)[np.concatenate(picked)])


def _stratified_rows(strata, fraction, rng, base=None):
    """A stratified random share ``fraction`` of the rows: per class ``round(fraction * n_c)``
    rows, at least one; all rows when ``fraction >= 1``. Returns indices into ``base``."""
    base = np.arange(len(strata)) if base is None else np.asarray(base)
    if fraction >= 1:
        return base.copy()
    picked = []
    for c in np.unique(strata):
        rows = np.flatnonzero(strata == c)
        k = min(len(rows), max(1, int(round(fraction * len(rows)))))
        picked.append(rng.choice(rows, size=k, replace=False))
    return base[np.sort(np.concatenate(picked))]


# --------------------------------------------------------------------------- models
def neuroformer_params(args, n_rows, token_budget):
    """Shared estimator settings; epochs raised so that a fit takes at least --min-steps."""
    batch = min(args.batch_size, n_rows)
    epochs = max(args.epochs, math.ceil(args.min_steps / math.ceil(n_rows / batch)))
    return dict(preset=args.preset, max_epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                validation_fraction=None, n_iter_no_change=None, device=args.device,
                max_tokens=token_budget[0], max_prev_tokens=token_budget[1])


def fit_neuroformer(method, kind, X, y, args, pretrainer, token_budget, seed):
    Estimator = NeuroformerRegressor if kind == "regression" else NeuroformerClassifier
    params = neuroformer_params(args, len(X), token_budget)
    if method == "scratch":
        return Estimator(random_state=seed, **params).fit(X, y)
    params.pop("max_tokens"), params.pop("max_prev_tokens")  # the pretrainer's vocabulary
    freeze = "backbone" if method == "probe" else args.freeze
    params["lr"] = args.probe_lr if method == "probe" else (args.finetune_lr or args.lr)
    est = Estimator(pretrained=FrozenEstimator(pretrainer), freeze=freeze,
                    sclm_weight=0.0 if method == "probe" else args.sclm_weight,
                    random_state=seed, **params)
    return est.fit(X, y)


def fit_linear(kind, F, y, seed):
    """Ridge (alpha by leave-one-out) or logistic regression (C by 3-fold CV when every class
    has 3 labelled rows, else C=0.01) on standardised counts."""
    if kind == "regression":
        model = RidgeCV(alphas=np.logspace(-2, 4, 13))
    elif np.bincount(np.unique(y, return_inverse=True)[1]).min() >= 3:
        model = LogisticRegressionCV(Cs=np.logspace(-4, -1, 4), cv=3, tol=1e-3, max_iter=2000)
    else:
        model = LogisticRegression(C=0.01, tol=1e-3, max_iter=2000)
    return make_pipeline(StandardScaler(), model).fit(F, y)


def score(kind, y_true, y_pred):
    if kind == "regression":
        return 100.0 * r2_score(y_true, y_pred, multioutput="uniform_average")
    return 100.0 * accuracy_score(y_true, y_pred)


# --------------------------------------------------------------------------- experiment
def run(args, log=print):
    """Pretrain once, sweep fractions x draws x methods; return the raw results table."""
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # token-budget and sklearn convergence chatter
    load = load_synthetic if args.dataset == "synthetic" else load_auditory
    data = load(args)
    X, train, test = data["X"], data["train"], data["test"]
    X_train = X[train]
    token_budget = (int(X_train.n_spikes().max()) + 2,
                    int(X_train.n_spikes(past=True).max()) + 2 if X.n_prev_bins else None)
    log(f"{args.dataset}: {len(X)} windows ({X.n_neurons} neurons), {len(train)} train, "
        f"{len(test)} test; token budget {token_budget}")
    methods = list(args.methods)
    pretrainer, pretrain_s = None, 0.0
    if any(m in ("finetune", "probe") for m in methods):
        t0 = time.perf_counter()
        cache = Path(args.pretrainer) if args.pretrainer else None
        if cache is not None and cache.is_file():  # reuse: try finetuning variants cheaply
            pretrainer = NeuroformerPretrainer.load(cache)
            log(f"loaded the pretrainer {cache} ({pretrainer.n_epochs_} epochs)")
        else:
            pretrainer = NeuroformerPretrainer(
                preset=args.preset, max_epochs=args.pretrain_epochs,
                batch_size=args.batch_size, lr=args.lr,
                validation_fraction=0.1 if args.pretrain_patience else None,
                n_iter_no_change=args.pretrain_patience or None, device=args.device,
                max_tokens=token_budget[0], max_prev_tokens=token_budget[1], random_state=args.seed).fit(X_train)
            pretrain_s = time.perf_counter() - t0
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                pretrainer.save(cache)
        losses = pretrainer.history_[:, "train_loss"]
        log(f"pretrained {pretrainer.n_epochs_} epochs in {pretrain_s:.0f} s "
            f"(train loss {losses[0]:.3f} -> {losses[-1]:.3f}); held-out "
            f"{pretrainer.score(X[test]):.3f} bits/spike")
    rows = []
    for fraction in args.fractions:
        n_draws = 1 if fraction >= 1 else args.draws  # 100 %: the same rows every draw
        for draw in range(n_draws):
            rng = np.random.default_rng([args.seed, draw, int(round(fraction * 1e4))])
            labelled = _stratified_rows(data["strata"][train], fraction, rng, base=train)
            for task, spec in data["tasks"].items():
                y = spec["y"]
                for method in methods:
                    t0 = time.perf_counter()
                    if method == "linear":
                        model = fit_linear(spec["kind"], data["features"][labelled],
                                           y[labelled], seed=draw)
                        pred = model.predict(data["features"][test])
                    else:
                        model = fit_neuroformer(method, spec["kind"], X[labelled], y[labelled],
                                                args, pretrainer, token_budget, seed=draw)
                        pred = model.predict(X[test])
                    seconds = time.perf_counter() - t0
                    value = score(spec["kind"], y[test], pred)
                    rows.append(dict(dataset=args.dataset, task=task, metric=spec["metric"],
                                     fraction=fraction, draw=draw, n_labels=len(labelled),
                                     method=method, score=value, seconds=seconds,
                                     epochs=getattr(model, "n_epochs_", np.nan)))
                    log(f"  {task:9s} {fraction:6.0%} draw {draw} n={len(labelled):5d} "
                        f"{method:8s} {value:7.2f}  ({seconds:.1f} s)")
    raw = pd.DataFrame(rows)
    raw.attrs["pretrain_seconds"] = pretrain_s
    return raw


def summarize(raw):
    """fraction x method table: mean and standard deviation over draws."""
    table = (raw.groupby(["dataset", "task", "metric", "fraction", "method"], sort=False)
             .agg(n_labels=("n_labels", "mean"), mean=("score", "mean"),
                  std=("score", lambda s: float(np.std(s, ddof=1)) if len(s) > 1 else 0.0),
                  draws=("score", "size"))
             .reset_index())
    table["n_labels"] = table["n_labels"].round().astype(int)
    return table[TABLE_COLUMNS]


def markdown(table):
    """One markdown table per task: rows fractions, columns methods ("mean ± std")."""
    out = []
    for (dataset, task, metric), part in table.groupby(["dataset", "task", "metric"], sort=False):
        cells = part.assign(cell=[f"{m:.1f} ± {s:.1f}" for m, s in zip(part["mean"], part["std"])])
        wide = cells.pivot(index=["fraction", "n_labels"], columns="method", values="cell")
        methods = [m for m in METHODS if m in wide.columns]
        draws = part.groupby("fraction")["draws"].max()
        out.append(f"{dataset} / {task} ({metric}, mean ± sd over draws)\n")
        out.append("| labels | n | " + " | ".join(methods) + " | draws |")
        out.append("|---|---|" + "---|" * len(methods) + "---|")
        for (fraction, n_labels), row in wide.iterrows():
            out.append(f"| {fraction:.0%} | {n_labels} | " + " | ".join(row[methods])
                       + f" | {draws[fraction]} |")
        out.append("")
    return "\n".join(out)


def parse_args(argv=None, description=__doc__):
    p = argparse.ArgumentParser(description=description.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("synthetic", "auditory"), default="synthetic")
    p.add_argument("--data", default=None,
                   help=f"auditory CSV (default {DEFAULT_AUDITORY})")
    p.add_argument("--device", default="auto")
    p.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS),
                   help="label fractions in (0, 1] (default 0.01 0.05 0.1 0.25 1)")
    p.add_argument("--draws", type=int, default=3, help="random label draws per fraction < 1")
    p.add_argument("--preset", default="small", choices=("tiny", "small", "paper"))
    p.add_argument("--epochs", type=int, default=10, help="epochs of finetuning and scratch")
    p.add_argument("--min-steps", type=int, default=100,
                   help="raise the epochs of small label sets to this many steps")
    p.add_argument("--pretrain-epochs", type=int, default=20,
                   help="epochs of self-supervised pretraining (at most, with "
                        "--pretrain-patience)")
    p.add_argument("--pretrain-patience", type=int, default=0,
                   help="stop pretraining after this many epochs without a better loss on 10 %% "
                        "of the training windows held out, keeping the best weights (0: no "
                        "held-out split, train --pretrain-epochs)")
    p.add_argument("--pretrainer", default=None,
                   help="file of the pretrainer: loaded if it exists (same data and --seed "
                        "only), else fitted and saved there")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="pretraining and scratch")
    p.add_argument("--finetune-lr", type=float, default=None, help="default: --lr")
    p.add_argument("--probe-lr", type=float, default=1e-2)
    p.add_argument("--freeze", choices=("none", "backbone"), default="none")
    p.add_argument("--sclm-weight", type=float, default=0.0,
                   help="weight of the spike objective kept during finetuning")
    p.add_argument("--methods", nargs="+", choices=METHODS,
                   default=["finetune", "scratch", "linear"])
    p.add_argument("--n-neurons", type=int, default=60, help="synthetic: neurons")
    p.add_argument("--duration", type=float, default=200.0, help="synthetic: seconds")
    p.add_argument("--dt", type=float, default=0.005, help="auditory: bin width (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--small", action="store_true",
                   help="CI size: two fractions, one draw, tiny preset, little data")
    p.add_argument("--out", default=str(REPO / "out" / "label_efficiency"))
    args = p.parse_args(argv)
    if args.small:
        args.fractions = [0.05, 1.0] if args.fractions == list(DEFAULT_FRACTIONS) else args.fractions
        args.fractions = args.fractions[:2]
        args.draws, args.preset, args.epochs, args.pretrain_epochs = 1, "tiny", 1, 1
        args.min_steps, args.n_neurons, args.duration = 4, 16, 60.0
    if not all(0 < f <= 1 for f in args.fractions):
        p.error("--fractions must lie in (0, 1]")
    args.device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    raw = run(args)
    table = summarize(raw)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(out / f"raw_{args.dataset}.csv", index=False)
    table.to_csv(out / f"table_{args.dataset}.csv", index=False)
    print()
    print(markdown(table))
    print(f"settings: preset={args.preset} epochs={args.epochs} (min {args.min_steps} steps) "
          f"pretrain_epochs={args.pretrain_epochs} pretrain_patience={args.pretrain_patience} "
          f"lr={args.lr} finetune_lr="
          f"{args.finetune_lr or args.lr} freeze={args.freeze} sclm_weight={args.sclm_weight} "
          f"draws={args.draws} device={args.device}; pretraining "
          f"{raw.attrs['pretrain_seconds']:.0f} s, total {time.perf_counter() - t0:.0f} s")
    print(f"wrote {out / f'table_{args.dataset}.csv'}")
    return table


if __name__ == "__main__":
    main()
