"""
Generate spikes: pretrained Neuroformer rasters against the held-out truth
=========================================================================

A :class:`~nfestimators.NeuroformerPretrainer` learns to predict every next spike of a
window (its neuron and its time bin) from the earlier spikes, the past window and the
stimulus frames. Sampled token by token, it generates spike trains::

    pre = NeuroformerPretrainer(preset="small", contrastive=()).fit(X_train)
    pre.score(X_test)                       # held-out bits per spike vs per-neuron Poisson
    gen = pre.sample(X_test, past="true")   # past window from the recording
    gen = pre.sample(X_test, past="generated")  # closed loop: past = own earlier output

The data come from :func:`~nfestimators.datasets.make_spiking_data` with a movie clip
that is shown again in every trial (``repeat_stimulus=True``) and drives every neuron
(``stimulus_fraction=1.0``), on top of the behaviour and trial-condition tuning. The
repeated clip is what makes trial-averaged PSTHs reproducible; without it the rates
follow a behaviour that never repeats and the PSTHs of two halves of the trials do not
correlate (median r about 0).

Figures, on whole held-out trials (split by trial, 30 %):

* held-out bits per spike: the log-likelihood of the windows' spike token sequences under
  the model minus that of the same spikes' counts under a homogeneous Poisson model of
  each neuron at its training rate, per spike (> 0: better than the baseline);
* PSTH correlation (the paper's): per neuron, spike counts per window position in the
  trial, summed over the held-out trials, true against generated; Pearson r, median over
  neurons. The noise ceiling is the same statistic between two halves of the true
  held-out trials (Spearman-Brown corrected to the whole held-out set as well);
* window F1 (the paper's): the set of neurons firing in each true and generated window.

It saves ``generate_spikes.png`` (true and generated raster of one held-out trial side by
side, PSTHs of example neurons, per-neuron r against the noise ceiling).

    python examples/generate_spikes.py              # full size: 20 epochs, a GPU is advised
    python examples/generate_spikes.py --small      # CI size, well under a minute on a CPU

``NFE_EXAMPLE_SMALL=1`` selects the small size as well.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

TRIAL_DURATION = 2.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true",
                        help="tiny CI-sized run (also NFE_EXAMPLE_SMALL=1)")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder of the figure")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (20; 2 small)")
    parser.add_argument("--duration", type=float, default=None,
                        help="recording length in s (400; 24 small)")
    parser.add_argument("--n-neurons", type=int, default=None, help="neurons (80; 20 small)")
    parser.add_argument("--device", default="auto", help="torch device (auto: cuda if present)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.small = args.small or os.environ.get("NFE_EXAMPLE_SMALL", "0") not in ("", "0")
    defaults = dict(epochs=2, duration=24.0, n_neurons=20) if args.small else \
        dict(epochs=20, duration=400.0, n_neurons=80)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def trial_halves(trials, conditions, rng):
    """Split trials in two halves, balanced by condition."""
    a, b = [], []
    for c in np.unique(conditions):
        tt = rng.permutation(trials[conditions == c])
        a += list(tt[::2])
        b += list(tt[1::2])
    return np.array(a), np.array(b)


def noise_ceiling(X, position, trial_condition, rng):
    """Per-neuron PSTH r between two halves of the true trials of ``X`` (and its
    Spearman-Brown correction to PSTHs of all the trials)."""
    from nfestimators.metrics import psth

    trials = np.unique(X.trial)
    half_a, half_b = trial_halves(trials, trial_condition[trials], rng)
    in_a, in_b = np.isin(X.trial, half_a), np.isin(X.trial, half_b)
    pa = psth(X[np.flatnonzero(in_a)], groups=position[in_a])
    pb = psth(X[np.flatnonzero(in_b)], groups=position[in_b])
    pa, pb = pa - pa.mean(0), pb - pb.mean(0)
    den = np.sqrt((pa * pa).sum(0) * (pb * pb).sum(0))
    r = np.full(pa.shape[1], np.nan)
    np.divide((pa * pb).sum(0), den, out=r, where=den > 0)
    return r, np.clip(2 * r / (1 + r), -1.0, 1.0)


def plot(X, generated, position, r_gen, r_ceiling, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nfestimators.plotting import plot_psth, plot_raster

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    trial = X.trial[0]
    rows = np.flatnonzero(X.trial == trial)
    rows = rows[np.argsort(X.window_end[rows])]
    plot_raster(X[rows], generated[rows], ax=axes[0], marker_size=6)
    axes[0, 0].set_title(f"true, held-out trial {trial}")
    axes[0, 1].set_title("generated (true past)")
    for ax in axes[0]:
        ax.set_xlabel("time in the trial (s)")
    best = np.argsort(np.where(np.isnan(r_ceiling), -np.inf, r_ceiling))[-3:][::-1]
    plot_psth(X, generated, neurons=best, ax=axes[1, 0], groups=position)
    axes[1, 0].set_xlabel("50 ms window in the trial")
    axes[1, 0].set_title("PSTH, summed over held-out trials (solid true, dashed generated)")
    ok = ~np.isnan(r_gen) & ~np.isnan(r_ceiling)
    axes[1, 1].scatter(r_ceiling[ok], r_gen[ok], s=12)
    axes[1, 1].plot([-0.2, 1], [-0.2, 1], color="0.5", lw=1)
    axes[1, 1].set_xlabel("noise ceiling r (true half vs half, Spearman-Brown)")
    axes[1, 1].set_ylabel("PSTH r, true vs generated")
    axes[1, 1].set_title(f"per neuron: median r {np.nanmedian(r_gen):.2f}")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from nfestimators import NeuroformerPretrainer
    from nfestimators.datasets import make_spiking_data, split_windows
    from nfestimators.metrics import psth_correlation, window_f1

    start = time.perf_counter()
    data = make_spiking_data(n_neurons=args.n_neurons, duration=args.duration,
                             trial_duration=TRIAL_DURATION, stimulus=True,
                             repeat_stimulus=True, stimulus_fraction=1.0,
                             random_state=args.seed)
    X = data.windows
    train, test, _ = split_windows(X, test_size=0.3, finetune_size=0, by="trial",
                                   random_state=args.seed)
    X_train, X_test = X[train], X[test]
    position = np.round(X_test.window_end % TRIAL_DURATION, 6)  # PSTH time point
    print(f"data: {X.n_neurons} neurons, {len(np.unique(X.trial))} trials of "
          f"{TRIAL_DURATION:g} s, {len(X_train)} train / {len(X_test)} held-out windows "
          f"({len(np.unique(X_test.trial))} trials), {X.n_spikes().mean():.1f} spikes per window")

    pre = NeuroformerPretrainer(
        preset="tiny" if args.small else "small", contrastive=(), max_epochs=args.epochs,
        lr=1e-3, batch_size=32, device=args.device, random_state=args.seed)
    t = time.perf_counter()
    pre.fit(X_train)
    print(f"fit: {args.epochs} epochs, preset {pre.preset!r}, SCLM only, on {pre.device_}: "
          f"{time.perf_counter() - t:.1f} s")
    print(f"bits per spike, held out: {pre.score(X_test):+.3f} "
          f"(train: {pre.score(X_train):+.3f})")

    rng = np.random.default_rng(args.seed)
    r_half, r_ceiling = noise_ceiling(X_test, position, data.trial_conditions, rng)
    print(f"noise ceiling, median PSTH r between two halves of the held-out trials: "
          f"{np.nanmedian(r_half):.3f} (Spearman-Brown, all trials: "
          f"{np.nanmedian(r_ceiling):.3f})")

    results = {}
    for past in ("true", "generated"):
        t = time.perf_counter()
        gen = pre.sample(X_test, past=past, random_state=args.seed)
        r = psth_correlation(X_test, gen, groups=position)
        precision, recall, f1 = window_f1(X_test, gen)
        results[past] = gen, r
        print(f"past={past!r:12s} median PSTH r {np.nanmedian(r):.3f}, window F1 {f1:.3f} "
              f"(precision {precision:.3f}, recall {recall:.3f}), generated / true spikes "
              f"{gen.n_spikes().sum() / X_test.n_spikes().sum():.3f}, "
              f"{time.perf_counter() - t:.1f} s")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "generate_spikes.png"
    plot(X_test, results["true"][0], position, results["true"][1], r_ceiling, path)
    print(f"figure: {path}")
    print(f"total: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
