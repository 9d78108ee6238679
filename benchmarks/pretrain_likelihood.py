"""Held-out log-likelihood of the pretrainer defaults, in bits per spike against a per-neuron
Poisson model (``NeuroformerPretrainer.score``), on synthetic and real spikes (issue #19).

Sets: ``spiking`` (``make_spiking_data(random_state=2)``, first 80 % / last 20 % of the
windows), ``poisson`` (a homogeneous Poisson population: nothing to learn beyond the rates,
so about 0 is the right answer), ``D_E_III`` and ``D_A_I`` (the auditory trials' spikes,
labels unused: train + val trials / test trials), and the ``make_code_data`` families.

    python benchmarks/pretrain_likelihood.py --device cuda
    python benchmarks/pretrain_likelihood.py --sets spiking poisson --max-epochs 10 --device cpu
    python benchmarks/pretrain_likelihood.py --device cuda --no-rate-prior   # the paper's heads
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from nfestimators import NeuroformerPretrainer, SpikeWindows
from nfestimators.datasets import load_auditory_cortex, make_code_data, make_spiking_data

CODES = ("rate", "identity", "order", "latency", "synchrony")
SETS = ("spiking", "poisson", "D_E_III", "D_A_I", *CODES)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "auditory_cortex"


def load(name, data):
    """(train windows, test windows) of a set."""
    if name in ("D_E_III", "D_A_I"):
        d = load_auditory_cortex(data / f"{name}.csv")
        return d.windows[d.split != "test"], d.windows[d.split == "test"]
    if name == "poisson":
        rng = np.random.default_rng(0)
        rates = rng.lognormal(np.log(3.0), 0.5, 80) * 0.01  # spikes per 10 ms bin
        counts = rng.poisson(rates[:, None], (80, 20000))
        X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)
    elif name == "spiking":
        X = make_spiking_data(random_state=2).windows
    else:
        X = make_code_data(name, random_state=0).windows
    cut = int(0.8 * len(X))
    return X[:cut], X[cut:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="override the default max_epochs (e.g. for a quick CPU run)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the auditory CSVs")
    parser.add_argument("--no-rate-prior", action="store_true",
                        help="rate_prior=False: heads that must learn every neuron's rate")
    args = parser.parse_args(argv)
    extra = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    if args.no_rate_prior:
        extra["rate_prior"] = False
    print("| set | train windows | epochs (best) | train bits/spike | held-out bits/spike | s |")
    print("|---|---|---|---|---|---|")
    for name in args.sets:
        if name.startswith("D_") and not (args.data / f"{name}.csv").is_file():
            print(f"| {name} | missing: {args.data / (name + '.csv')} | | | | |")
            continue
        train, test = load(name, args.data)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pre = NeuroformerPretrainer(random_state=0, device=args.device, **extra).fit(train)
        seconds = time.perf_counter() - start
        print(f"| {name} | {len(train)} | {pre.n_epochs_} ({pre.best_epoch_}) | "
              f"{pre.score(train):+.3f} | {pre.score(test):+.3f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
