"""Multi-session pretraining: does a model pretrained on other sessions help a new one? (issue #18)

Every draw makes a new synthetic data set (``make_multisession_data``: ``--sessions + 1``
sessions of one latent dynamics and behaviour, each with its own neurons, tuning, rates and
length). The last session is held out: a fraction ``--fraction`` (5 %) of its **trials** is
labelled, the rest of its windows are the test rows (no leakage through past windows or the
smooth behaviour). On the same labelled rows, all through the public estimators:

* ``adapted``: ``NeuroformerPretrainer`` fitted on the other sessions (a list of
  SpikeWindows, batches mixing sessions), then ``NeuroformerRegressor(pretrained=...)``:
  the new session's unit embeddings and the head with the backbone frozen, then everything
  (``--adapt units+all``);
* ``single``: the same with a pretrainer fitted on one other session only;
* ``own session``: single-session pretraining on the new session itself: a pretrainer
  fitted on all of its windows (labels withheld; the test windows' spikes included, the
  most one session offers a user who has the whole recording and a few labels), then the
  regressor finetuned from it on the labelled rows;
* ``supervised``: a ``NeuroformerRegressor`` fitted on the other sessions and their
  behaviour (supervised pretraining, as POYO's), then ``NeuroformerRegressor(pretrained=...)``
  on the new session, which keeps the pretrained head (same targets): the new units are
  identified through a decoder that already maps the shared latent to the behaviour;
* ``supervised single``: the same with one other session;
* ``scratch``: the same regressor from random weights;
* ``ridge``: ``RidgeCV`` on standardised per-neuron counts of the current and past window.

Scores: R² x 100 (mean over speed, pos_x, pos_y) on the test rows, mean ± sd over draws.

Cross-session decoding, for the latents (``transform``) of two models: the multi-session
pretrainer (unsupervised) and the supervised multi-session regressor of ``supervised``. A
ridge decoder fitted on one pretraining session's latents predicts another session's
behaviour from that session's latents (off-diagonal, R² x 100), next to the same decoder
within a session (fitted on half of its trials, scored on the other half), and a chance
level: the decoder fitted on shuffled behaviour. And the new session in the shared space:
the regressor adapted to the held-out session from the supervised model transforms the
pretraining sessions and the new session's test windows; a ridge decoder fitted on the
pretraining sessions' latents and behaviour (no label of the new session) predicts the new
session's test behaviour (``new session from the others``; chance: the same decoder fitted
on shuffled behaviour).

    python benchmarks/multisession.py --small                  # CPU, seconds (checked by a test)
    python benchmarks/multisession.py --device cpu --preset tiny --draws 2
    python benchmarks/multisession.py --device cuda --draws 5 --plot   # GPU, see README
    python benchmarks/multisession.py --device cuda --estimator-defaults  # the plain fit calls
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
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nfestimators import NeuroformerPretrainer, NeuroformerRegressor, SpikeWindows
from nfestimators.datasets import make_multisession_data

REPO = Path(__file__).resolve().parents[1]
METHODS = ("adapted", "single", "own session", "supervised", "supervised single", "scratch",
           "ridge")
HELD_OUT = "held_out"  # session key of the new session


def counts_features(X):
    """Per-neuron spike counts of the current and the past window, (n_windows, 2 n_neurons)."""
    parts = [X.to_counts().sum(axis=2)]
    if X.n_prev_bins:
        parts.append(X.to_counts(past=True).sum(axis=2))
    return np.hstack(parts).astype(float)


def ridge():
    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))


def r2(y_true, y_pred):
    return 100.0 * r2_score(y_true, y_pred, multioutput="uniform_average")


def labelled_trials(X, fraction, rng):
    """Windows of a random ``fraction`` of the trials of ``X`` (at least one trial), and the
    windows of the other trials."""
    trials = np.unique(X.trial)
    k = max(1, int(round(fraction * len(trials))))
    picked = np.isin(X.trial, rng.choice(trials, size=k, replace=False))
    return np.flatnonzero(picked), np.flatnonzero(~picked)


def estimator_params(args, n_rows, seed):
    """Fit settings shared by every Neuroformer fit of the new session: at least
    ``--min-steps`` optimiser steps per phase, no validation split; with
    ``--estimator-defaults``, the estimators' own (early stopping on a validation split)."""
    if args.estimator_defaults:
        return dict(preset=args.preset, device=args.device, random_state=seed)
    epochs = max(args.epochs, math.ceil(args.min_steps / math.ceil(n_rows / args.batch_size)))
    return dict(preset=args.preset, max_epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                validation_fraction=None, n_iter_no_change=None, device=args.device,
                random_state=seed)


def pretraining_params(args, seed):
    """Fit settings of every pretraining (unsupervised or supervised): ``--pretrain-epochs``,
    no validation split."""
    return dict(preset=args.preset, max_epochs=args.pretrain_epochs,
                batch_size=args.pretrain_batch_size, lr=args.lr, validation_fraction=None,
                n_iter_no_change=None, device=args.device, random_state=seed)


def pretrain(args, sessions, seed):
    return NeuroformerPretrainer(**pretraining_params(args, seed)).fit(sessions)


def pretrain_supervised(args, sessions, behavior, seed):
    return NeuroformerRegressor(**pretraining_params(args, seed)).fit(
        SpikeWindows.from_sessions(sessions), np.concatenate(behavior))


def cross_session_decoding(pre, sessions, behavior, rng):
    """R² x 100 of ridge decoders on the pretrainer's latents: matrix ``[train, test]`` over
    sessions (diagonal: within a session, half of its trials to each side) and the chance
    level (decoders fitted on shuffled behaviour, scored on the other sessions), and the
    across-session R² x 100 of every behaviour variable (mean over session pairs)."""
    Z = pre.transform(SpikeWindows.from_sessions(sessions))
    bounds = np.cumsum([0] + [len(x) for x in sessions])
    latents = [Z[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    n = len(sessions)
    matrix = np.zeros((n, n))
    chance, per_target = [], []
    for a in range(n):
        first = sessions[a].trial < np.median(np.unique(sessions[a].trial))
        within = ridge().fit(latents[a][first], behavior[a][first])
        matrix[a, a] = r2(behavior[a][~first], within.predict(latents[a][~first]))
        decoder = ridge().fit(latents[a], behavior[a])
        shuffled = ridge().fit(latents[a], behavior[a][rng.permutation(len(behavior[a]))])
        for b in range(n):
            if b != a:
                predicted = decoder.predict(latents[b])
                matrix[a, b] = r2(behavior[b], predicted)
                per_target.append(100.0 * r2_score(behavior[b], predicted,
                                                   multioutput="raw_values"))
                chance.append(r2(behavior[b], shuffled.predict(latents[b])))
    return matrix, float(np.mean(chance)), np.mean(per_target, axis=0)


def new_session_decoding(model, others, behavior, X_test, y_test, rng):
    """R² x 100 on the new session's test windows of a ridge decoder fitted on the latents
    of the pretraining sessions (``model.transform``, the model adapted to the new session)
    and their behaviour, and of the same decoder fitted on shuffled behaviour (chance)."""
    Z = model.transform(SpikeWindows.from_sessions(others))
    y = np.concatenate(behavior)
    Z_test = model.transform(X_test)
    decoder = ridge().fit(Z, y)
    shuffled = ridge().fit(Z, y[rng.permutation(len(y))])
    return r2(y_test, decoder.predict(Z_test)), r2(y_test, shuffled.predict(Z_test))


def within_and_across(matrix):
    """Mean R² of a :func:`cross_session_decoding` matrix within sessions (the diagonal)
    and across sessions (off the diagonal)."""
    return np.diag(matrix).mean(), matrix[~np.eye(len(matrix), dtype=bool)].mean()


def latent_rows(draw, label, matrix, chance, per_target, names):
    """Result rows of :func:`cross_session_decoding` for the latents of ``label``."""
    within, across = within_and_across(matrix)
    rows = [dict(draw=draw, method=f"{label}: within session", r2=within),
            dict(draw=draw, method=f"{label}: across sessions", r2=across)]
    rows += [dict(draw=draw, method=f"{label}: across sessions, {name}", r2=value)
             for name, value in zip(names, per_target)]
    rows.append(dict(draw=draw, method=f"{label}: chance (shuffled)", r2=chance))
    return rows


def run_draw(args, draw, log):
    seed = args.seed * 1000 + draw
    data = make_multisession_data(
        n_sessions=args.sessions + 1, n_neurons=tuple(args.n_neurons),
        duration=tuple(args.duration), random_state=seed)
    others, new = data.sessions[:-1], data.sessions[-1]
    y_others, y_new = data.behavior[:-1], data.behavior[-1]
    rng = np.random.default_rng(seed)
    train, test = labelled_trials(new, args.fraction, rng)
    # the held-out session gets its own key: a new session for every pretrained model
    X_train = SpikeWindows.from_sessions([new[train]], keys=[HELD_OUT])
    X_test = SpikeWindows.from_sessions([new[test]], keys=[HELD_OUT])
    log(f"draw {draw}: {args.sessions} pretraining sessions "
        f"({sum(len(x) for x in others)} windows, neurons {[x.n_neurons for x in others]}); "
        f"held-out session {new.n_neurons} neurons, {len(train)} labelled / {len(test)} test")
    t0 = time.perf_counter()
    pre_multi = pretrain(args, others, seed)
    pre_single = pretrain(args, others[0], seed)
    sources = {"adapted": pre_multi, "single": pre_single, "scratch": None}
    if "own session" in args.methods:
        sources["own session"] = pretrain(
            args, SpikeWindows.from_sessions([new], keys=[HELD_OUT]), seed)
    if "supervised" in args.methods:
        sources["supervised"] = pretrain_supervised(args, others, y_others, seed)
    if "supervised single" in args.methods:
        sources["supervised single"] = pretrain_supervised(args, others[:1], y_others[:1], seed)
    log(f"  pretrained in {time.perf_counter() - t0:.0f} s (multi "
        f"{pre_multi.history_[-1, 'train_loss']:.3f}, single "
        f"{pre_single.history_[-1, 'train_loss']:.3f} final train loss)")
    params = estimator_params(args, len(train), seed)
    rows, fitted = [], {}
    for method in args.methods:
        t0 = time.perf_counter()
        if method == "ridge":
            model = ridge().fit(counts_features(new[train]), y_new[train])
            pred = model.predict(counts_features(new[test]))
        else:
            source = sources[method]
            extra = {} if source is None else dict(pretrained=FrozenEstimator(source),
                                                   adapt=args.adapt)
            model = NeuroformerRegressor(**params, **extra).fit(X_train, y_new[train])
            pred = model.predict(X_test)
            fitted[method] = model
        rows.append(dict(draw=draw, method=method, r2=r2(y_new[test], pred),
                         seconds=time.perf_counter() - t0))
        log(f"  {method:17s} R2x100 {rows[-1]['r2']:7.2f}  ({rows[-1]['seconds']:.1f} s)")
    latents = {"latents": pre_multi}
    if "supervised" in sources:
        latents["supervised latents"] = sources["supervised"]
    matrices = {}
    for label, model in latents.items():
        matrix, chance, per_target = cross_session_decoding(model, others, y_others, rng)
        matrices[label] = matrix
        rows += latent_rows(draw, label, matrix, chance, per_target, data.behavior_names)
        within, across = within_and_across(matrix)
        log(f"  {label}, cross-session decoding R2x100: within {within:.1f}, "
            f"across {across:.1f} ("
            + ", ".join(f"{n} {v:.1f}" for n, v in zip(data.behavior_names, per_target))
            + f"), chance {chance:.1f}")
    for method in ("adapted", "supervised"):
        if method in fitted:
            score, chance = new_session_decoding(fitted[method], others, y_others, X_test,
                                                 y_new[test], rng)
            rows += [dict(draw=draw, method=f"{method} latents: new session from the others",
                          r2=score),
                     dict(draw=draw, method=f"{method} latents: new session, chance", r2=chance)]
            log(f"  {method} latents, new session decoded by the others' decoder R2x100: "
                f"{score:.1f} (chance {chance:.1f})")
    return rows, matrices


def paired_differences(raw):
    """Per draw, ``adapted`` and ``supervised`` minus each other method they are compared
    with (same data, same labelled rows)."""
    wide = raw.pivot(index="draw", columns="method", values="r2")
    rows = []
    for method, others in (("adapted", ("single", "own session", "scratch", "ridge")),
                           ("supervised", ("supervised single", "single", "own session",
                                           "scratch", "ridge"))):
        if method in wide:
            rows += [dict(draw=d, method=f"{method} - {other} (paired)", r2=v)
                     for other in others if other in wide
                     for d, v in (wide[method] - wide[other]).items()]
    return pd.DataFrame(rows)


def summarize(raw):
    raw = pd.concat([raw, paired_differences(raw)], ignore_index=True)
    table = raw.groupby("method", sort=False)["r2"].agg(
        mean="mean", sd=lambda s: float(np.std(s, ddof=1)) if len(s) > 1 else 0.0,
        draws="size").reset_index()
    return table


def markdown(table, args):
    lines = [f"held-out session, {args.fraction:.0%} of its trials labelled "
             f"(R² x 100, mean ± sd over draws)", "", "| method | R² x 100 | draws |",
             "|---|---|---|"]
    lines += [f"| {r.method} | {r.mean:.1f} ± {r.sd:.1f} | {r.draws} |"
              for r in table.itertuples()]
    return "\n".join(lines)


def plot(raw, matrices, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    methods = [m for m in METHODS if m in set(raw["method"])]
    scores = [raw.loc[raw["method"] == m, "r2"].to_numpy() for m in methods]
    left.bar(methods, [s.mean() for s in scores],
             yerr=[s.std(ddof=1) if len(s) > 1 else 0 for s in scores], capsize=4,
             color="#4c72b0")
    for i, s in enumerate(scores):
        left.plot(np.full(len(s), i), s, "k.", alpha=0.6)
    left.tick_params(axis="x", labelrotation=30)
    left.set_ylabel("R² x 100 on the held-out session")
    left.set_title("new session, few labels")
    label, matrix = list(matrices.items())[-1]
    image = right.imshow(matrix, cmap="viridis", vmin=min(0, matrix.min()), vmax=100)
    right.set_xlabel("session decoded")
    right.set_ylabel("session the decoder was fitted on")
    right.set_title(f"ridge on the {label} (last draw)")
    for (a, b), value in np.ndenumerate(matrix):
        right.text(b, a, f"{value:.0f}", ha="center", va="center", color="w", fontsize=8)
    right.set_xticks(range(len(matrix)))
    right.set_yticks(range(len(matrix)))
    fig.colorbar(image, ax=right, label="R² x 100")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--sessions", type=int, default=4, help="pretraining sessions")
    p.add_argument("--n-neurons", type=int, nargs=2, default=[40, 80], metavar=("LOW", "HIGH"))
    p.add_argument("--duration", type=float, nargs=2, default=[100.0, 160.0],
                   metavar=("LOW", "HIGH"), help="seconds per session")
    p.add_argument("--fraction", type=float, default=0.05, help="labelled trials of the new session")
    p.add_argument("--preset", default="small", choices=("tiny", "small", "paper"))
    p.add_argument("--pretrain-epochs", type=int, default=15)
    p.add_argument("--pretrain-batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=10, help="epochs of every finetuning phase")
    p.add_argument("--min-steps", type=int, default=100,
                   help="raise the epochs of a small label set to this many steps per phase")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--adapt", choices=("units", "units+all"), default="units+all")
    p.add_argument("--estimator-defaults", action="store_true",
                   help="fit the new session with the estimators' defaults (up to 100 epochs, "
                        "early stopping on 10 %% of the labelled windows) instead of "
                        "--epochs / --min-steps without validation")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--small", action="store_true",
                   help="CPU check size: 1 draw, 2 + 1 small sessions, tiny preset, 1 epoch")
    p.add_argument("--plot", action="store_true", help="write multisession.png to --out")
    p.add_argument("--out", default=str(REPO / "out" / "multisession"))
    args = p.parse_args(argv)
    if args.small:
        args.draws, args.sessions, args.preset = 1, 2, "tiny"
        args.n_neurons, args.duration = [10, 16], [20.0, 30.0]
        args.pretrain_epochs, args.epochs, args.min_steps = 1, 1, 2
        args.fraction = max(args.fraction, 0.2)
    args.device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else args.device
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # token-budget chatter on the test windows
    t0 = time.perf_counter()
    rows, matrices = [], None
    for draw in range(args.draws):
        draw_rows, matrices = run_draw(args, draw, print)
        rows += draw_rows
    raw = pd.DataFrame(rows)
    table = summarize(raw)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(out / "raw.csv", index=False)
    table.to_csv(out / "table.csv", index=False)
    print()
    print(markdown(table, args))
    print(f"\nsettings: preset={args.preset} sessions={args.sessions}+1 neurons={args.n_neurons} "
          f"duration={args.duration} pretrain_epochs={args.pretrain_epochs} "
          + ("finetuning=estimator defaults " if args.estimator_defaults else
             f"epochs={args.epochs} (min {args.min_steps} steps per phase) ")
          + f"adapt={args.adapt} "
          f"device={args.device}; total {time.perf_counter() - t0:.0f} s")
    if args.plot:
        plot(raw, matrices, out / "multisession.png")
        print(f"wrote {out / 'multisession.png'}")
    return table


if __name__ == "__main__":
    main()
