"""Inference throughput: ``predict`` and ``transform`` windows/s (issue #16, part 2).

A regressor and a pretrainer are fitted for one epoch on a few hundred synthetic windows
(their weights do not change the cost), then ``NeuroformerRegressor.predict`` and
``NeuroformerPretrainer.transform`` run over ``--windows`` windows, end to end through the
public estimators (input checks, tokenization, batches on the device, forward). The first
call is a warm-up; the figure is the median of ``--repeats`` timed calls.

    python benchmarks/bench_inference.py --device cuda --presets small paper
    python benchmarks/bench_inference.py --device cpu --presets tiny --windows 200 \
        --fit-windows 64 --repeats 2

The workload: ``--neurons`` neurons with log-normal rates giving about
``--spikes-per-window`` spikes per 50 ms window (10 ms bins) and as many in the 50 ms past
window, no stimulus.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

from nfestimators import NeuroformerPretrainer, NeuroformerRegressor, SpikeWindows

WINDOW, DT = 0.05, 0.01


def spike_windows(n_windows, n_neurons, spikes_per_window, seed=0):
    """About ``n_windows`` back-to-back windows of Poisson spikes, as SpikeWindows."""
    rng = np.random.default_rng(seed)
    bins_per_window = int(round(WINDOW / DT))
    n_bins = (n_windows + 1) * bins_per_window  # the first window's past comes first
    rates = rng.lognormal(0.0, 1.0, n_neurons)
    rates *= spikes_per_window / bins_per_window / rates.sum()  # population spikes per bin
    counts = np.empty((n_neurons, n_bins), dtype=np.int16)
    for start in range(0, n_bins, 100_000):  # drawn in chunks: int16 memory only
        part = counts[:, start:start + 100_000]
        part[:] = rng.poisson(rates[:, None], size=part.shape)
    return SpikeWindows.from_counts(counts, dt=DT, window=WINDOW, prev_window=WINDOW)


def token_budget(spikes_per_window):
    """``max_tokens`` that holds every window of the workload (Poisson, 6 sigma)."""
    return int(spikes_per_window + 6 * np.sqrt(spikes_per_window) + 8)


def fit_estimators(preset, X, device, max_tokens):
    """A pretrainer and a spike-count regressor, fitted for one epoch on ``X``."""
    common = dict(preset=preset, device=device, max_epochs=1, validation_fraction=None,
                  max_tokens=max_tokens, max_prev_tokens=max_tokens, random_state=0)
    y = X.to_counts().sum(axis=(1, 2)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the paper preset on a CPU
        pre = NeuroformerPretrainer(**common).fit(X)
        reg = NeuroformerRegressor(**common).fit(X, y)
    return pre, reg


def median_seconds(call, repeats, device, warmup=True):
    """Median wall time of ``call()`` over ``repeats`` runs, after one warm-up run (unless
    ``warmup=False``: the caller ran it)."""
    if warmup:
        call()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--presets", nargs="+", default=["small", "paper"],
                        choices=["tiny", "small", "paper"])
    parser.add_argument("--windows", type=int, default=20_000)
    parser.add_argument("--fit-windows", type=int, default=512)
    parser.add_argument("--neurons", type=int, default=200)
    parser.add_argument("--spikes-per-window", type=float, default=40.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    X = spike_windows(args.windows, args.neurons, args.spikes_per_window)
    X_fit = X[:args.fit_windows]
    budget = token_budget(args.spikes_per_window)
    print(f"device {args.device}, {len(X)} windows, {args.neurons} neurons, "
          f"~{args.spikes_per_window:g} spikes per window, median of {args.repeats}")
    print(f"{'preset':<8} {'method':<22} {'seconds':>9} {'windows/s':>11}")
    for preset in args.presets:
        pre, reg = fit_estimators(preset, X_fit, args.device, budget)
        for name, call in (("Regressor.predict", lambda: reg.predict(X)),
                           ("Pretrainer.transform", lambda: pre.transform(X))):
            seconds = median_seconds(call, args.repeats, args.device)
            print(f"{preset:<8} {name:<22} {seconds:>9.3f} {len(X) / seconds:>11,.0f}")


if __name__ == "__main__":
    main()
