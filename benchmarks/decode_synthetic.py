"""Behaviour decoding on ``make_spiking_data`` defaults: NeuroformerRegressor vs Ridge (issue #9).

The synthetic population (80 neurons, 200 s, 50 ms windows with a 50 ms past window) is
driven by a smooth behaviour (speed and position on a circular track, three targets). Test
rows are 20 % of the **trials** (``split_windows(by="trial")``), so no past window of a test
window was seen in training. In the same run, on the same rows:

* Ridge on the per-neuron counts of the current window;
* Ridge on the per-neuron counts of the current and the past window (what the model sees);
* ``NeuroformerRegressor`` (tokens of the current window, cross-attention to the past
  window's tokens).

Ridge's alpha is chosen by efficient leave-one-out on the training rows (``RidgeCV``).
The score is R² on the held-out windows, averaged over the three targets.

Run ``python benchmarks/decode_synthetic.py [--device cuda] [--seed 0]``; ``--small`` checks
the machinery in seconds (a short recording, a tiny model; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from nfestimators import NeuroformerRegressor
from nfestimators.datasets import make_spiking_data, split_windows

SETTINGS = dict(preset="small", max_epochs=30, lr=3e-4, batch_size=32,
                validation_fraction=None, n_iter_no_change=None)
SMALL_SETTINGS = dict(preset="tiny", max_epochs=1, lr=1e-3, batch_size=32,
                      validation_fraction=None, n_iter_no_change=None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--small", action="store_true",
                        help="30 neurons, 10 s, a tiny model, one epoch: checks the machinery")
    parser.add_argument("--seed", type=int, default=0, help="data, split and model seed")
    parser.add_argument("--epochs", type=int, default=None, help="override max_epochs")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = (make_spiking_data(n_neurons=30, duration=10.0, random_state=args.seed) if args.small
            else make_spiking_data(random_state=args.seed))
    X, y = data.windows, data.behavior
    train, test, _ = split_windows(X, test_size=0.2, finetune_size=0, random_state=args.seed,
                                   by="trial")
    print(f"{X}: {len(train)} training and {len(test)} test windows; targets "
          f"{list(data.behavior_names)}", flush=True)

    current, past = X.to_counts().sum(2), X.to_counts(past=True).sum(2)
    results = {}
    for name, features in (("Ridge, current-window counts", current),
                           ("Ridge, current + past-window counts", np.hstack([current, past]))):
        ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(features[train], y[train])
        pred = ridge.predict(features[test])
        results[name] = (r2_score(y[test], pred),
                         r2_score(y[test], pred, multioutput="raw_values"),
                         f"alpha={ridge.alpha_:g}", 0.0)

    settings = dict(SMALL_SETTINGS if args.small else SETTINGS)
    if args.epochs is not None:
        settings["max_epochs"] = args.epochs
    start = time.perf_counter()
    reg = NeuroformerRegressor(**settings, device=args.device, random_state=args.seed)
    reg.fit(X[train], y[train])
    pred = reg.predict(X[test])
    seconds = time.perf_counter() - start
    info = ", ".join(f"{k}={v}" for k, v in settings.items()) + f", device={reg.device_}"
    results["NeuroformerRegressor"] = (r2_score(y[test], pred),
                                       r2_score(y[test], pred, multioutput="raw_values"),
                                       info, seconds)

    names = " / ".join(data.behavior_names)
    print(f"\nheld-out R² (mean over targets; per target {names})")
    print(f"| {'model':<36} | mean R² | per target          | wall s | settings |")
    print(f"|{'-' * 38}|---------|---------------------|--------|----------|")
    for name, (r2, per, info, secs) in results.items():
        per_text = " / ".join(f"{v:.3f}" for v in per)
        print(f"| {name:<36} | {r2:.3f}   | {per_text:<19} | {secs:6.0f} | {info} |")


if __name__ == "__main__":
    main()
