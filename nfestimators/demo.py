"""The main job on the embedded synthetic data: ``python -m nfestimators.demo``.

1. simulate a population driven by a latent behaviour (``make_spiking_data``),
2. pretrain Neuroformer on the training windows without labels,
3. finetune a regressor from the pretrained weights and compare it with Ridge,
4. feed the pretrained latents to a logistic regression for the trial condition,
5. generate spikes for held-out windows and score the model in bits per spike.

``--small`` (or ``NFE_EXAMPLE_SMALL=1``; ``make demo SMALL=1``) runs a tiny version in
seconds; ``python -m nfestimators.demo --help`` lists the options.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import NeuroformerPretrainer, NeuroformerRegressor
from .datasets import make_spiking_data
from .metrics import window_f1


def build_parser():
    """The command line of ``python -m nfestimators.demo``."""
    parser = argparse.ArgumentParser(
        prog="python -m nfestimators.demo",
        description="Pretrain Neuroformer on synthetic spikes, finetune a behaviour decoder "
                    "(against Ridge), probe the latents for the trial condition and generate "
                    "spikes for held-out windows; prints one line per step.")
    parser.add_argument(
        "--small", action="store_true", default=bool(os.environ.get("NFE_EXAMPLE_SMALL")),
        help="tiny model and data, runs in seconds (default: off, about 5 minutes on 2 CPU "
             "cores; also on when the environment variable NFE_EXAMPLE_SMALL is set)")
    parser.add_argument("--device", default="auto",
                        help="torch device: auto (cuda, then mps, then cpu), cuda, mps or cpu "
                             "(default: auto)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the simulated data and of training (default: 0)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    size = dict(n_neurons=30, duration=40.0) if args.small else dict(n_neurons=80, duration=200.0)
    # the defaults; --small only shrinks the model and the training to a machinery check
    size_small = dict(preset="tiny", max_epochs=2) if args.small else {}
    t0 = time.perf_counter()
    data = make_spiking_data(random_state=args.seed, **size)
    X, Y = data.windows, data.behavior
    split = int(0.8 * len(X))  # contiguous blocks: no leakage between neighbouring windows
    train, test = np.arange(split), np.arange(split, len(X))
    print(f"data: {X}")

    common = dict(device=args.device, random_state=args.seed, **size_small)
    pre = NeuroformerPretrainer(**common).fit(X[train])
    print(f"pretrained in {time.perf_counter() - t0:.0f} s on {pre.device_} ({pre.n_epochs_} "
          f"epochs, best {pre.best_epoch_}); held-out "
          f"log-likelihood {pre.score(X[test]):+.3f} bits/spike vs a Poisson model per neuron")

    reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), **common)
    reg.fit(X[train], Y[train])
    counts = np.concatenate([X.to_counts().sum(2), X.to_counts(past=True).sum(2)], axis=1)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    ridge.fit(counts[train], Y[train])
    r2_neuroformer = r2_score(Y[test], reg.predict(X[test]))
    r2_ridge = r2_score(Y[test], ridge.predict(counts[test]))
    print(f"behaviour decoding R2 (held out): Neuroformer {r2_neuroformer:.3f}"
          f" | Ridge on current+past counts {r2_ridge:.3f}")

    probe = make_pipeline(FrozenEstimator(pre), LogisticRegression(max_iter=2000))
    probe.fit(X[train], data.labels[train])
    accuracy = probe.score(X[test], data.labels[test])
    print(f"condition from pretrained latents: accuracy {accuracy:.3f}"
          f" (chance {1 / len(np.unique(data.labels)):.3f})")

    generated = pre.sample(X[test], random_state=args.seed)
    precision, recall, f1 = window_f1(X[test], generated)
    print(f"generated {generated.n_spikes().mean():.1f} spikes/window (true "
          f"{X[test].n_spikes().mean():.1f}); window F1 {f1:.3f}")
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
