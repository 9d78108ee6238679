"""Held-out log-likelihood of the pretrainer defaults, in bits per spike against a per-neuron
Poisson model (``NeuroformerPretrainer.score``), on synthetic and real spikes (issue #19).

Sets: ``spiking`` (``make_spiking_data(random_state=2)``, first 80 % / last 20 % of the
windows), ``stimulus`` (``make_spiking_data(stimulus=True, random_state=3)``: a movie drives
30 % of the neurons), ``repeated stimulus`` (``make_spiking_data(stimulus=True,
repeat_stimulus=True, random_state=2)``: the same 2 s clip in every trial; the issue's
generation row), ``poisson`` (a homogeneous Poisson population: nothing to learn beyond the rates,
so about 0 is the right answer), ``D_E_III`` and ``D_A_I`` (the auditory trials' spikes,
labels unused: train + val trials / test trials), and the ``make_code_data`` families.
On the sets with a repeated clip the table adds the median over neurons of the PSTH r
(counts per 50 ms window position in the trial, summed over the held-out trials) between the
held-out trials and ``sample(past="true")``, and the split-half noise ceiling: the same r
between the odd and the even held-out trials (half as many trials on each side).

    python benchmarks/pretrain_likelihood.py --device cuda
    python benchmarks/pretrain_likelihood.py --sets spiking poisson --max-epochs 10 --device cpu
    python benchmarks/pretrain_likelihood.py --device cuda --no-rate-prior   # the paper's heads
    python benchmarks/pretrain_likelihood.py --device cuda --set ema_decay=0.99  # any parameter
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from nfestimators import NeuroformerPretrainer, SpikeWindows
from nfestimators.datasets import load_auditory_cortex, make_code_data, make_spiking_data
from nfestimators.metrics import psth_correlation

from contrastive_retrieval import parse_overrides

CODES = ("rate", "identity", "order", "latency", "synchrony")
SPIKING = {"spiking": dict(random_state=2), "stimulus": dict(stimulus=True, random_state=3),
           "repeated stimulus": dict(stimulus=True, repeat_stimulus=True, random_state=2)}
SETS = (*SPIKING, "poisson", "D_E_III", "D_A_I", *CODES)
TRIAL_DURATION = 2.0  # make_spiking_data's default
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
    elif name in SPIKING:
        X = make_spiking_data(**SPIKING[name]).windows
    else:
        X = make_code_data(name, random_state=0).windows
    cut = int(0.8 * len(X))
    return X[:cut], X[cut:]


def psth_figures(pre, test, seed=0):
    """(median PSTH r of ``sample(past="true")`` against the held-out trials, median split-half
    r of the odd against the even held-out trials); the PSTH time point is the window's
    position in its trial, over the whole trials of ``test``."""
    trials, n_windows = np.unique(test.trial, return_counts=True)
    trials = trials[n_windows == n_windows.max()]  # whole trials only
    rows = np.flatnonzero(np.isin(test.trial, trials))
    X = test[rows]
    position = np.round(X.window_end % TRIAL_DURATION, 6)
    generated = pre.sample(X, past="true", random_state=seed)
    r_model = np.nanmedian(psth_correlation(X, generated, groups=position))
    odd = np.isin(X.trial, trials[1::2])
    even = np.isin(X.trial, trials[::2][:len(trials[1::2])])
    r_half = np.nanmedian(psth_correlation(X[np.flatnonzero(odd)], X[np.flatnonzero(even)],
                                           groups=position[odd]))
    return r_model, r_half


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="override the default max_epochs (e.g. for a quick CPU run)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the auditory CSVs")
    parser.add_argument("--no-rate-prior", action="store_true",
                        help="rate_prior=False: heads that must learn every neuron's rate")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="pretrainer parameters other than the defaults")
    args = parser.parse_args(argv)
    extra = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    if args.no_rate_prior:
        extra["rate_prior"] = False
    extra.update(parse_overrides(args.set))
    print("| set | train windows | epochs (best) | train bits/spike | held-out bits/spike | "
          "PSTH r, sample | split-half r | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        if name.startswith("D_") and not (args.data / f"{name}.csv").is_file():
            print(f"| {name} | missing: {args.data / (name + '.csv')} | | | | | | |")
            continue
        train, test = load(name, args.data)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pre = NeuroformerPretrainer(random_state=0, device=args.device, **extra).fit(train)
        seconds = time.perf_counter() - start
        psth = (" | ".join(f"{r:.3f}" for r in psth_figures(pre, test))
                if name == "repeated stimulus" else " | ")
        print(f"| {name} | {len(train)} | {pre.n_epochs_} ({pre.best_epoch_}) | "
              f"{pre.score(train):+.3f} | {pre.score(test):+.3f} | {psth} | {seconds:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
