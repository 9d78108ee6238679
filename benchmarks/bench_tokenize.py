"""Data pipeline throughput: windows -> tokens -> padded batches on the device.

Workload of the paper's lateral configuration: 2,000 neurons, 30,000 windows of 50 ms at 10 ms
bins with a 50 ms past window, about 40 spikes per window (lognormal rates), blocks 100 / 700.

    python benchmarks/bench_tokenize.py [--device cpu|cuda] [--repeats 5]

Prints windows/s (median over repeats) for each stage, single-threaded torch.
"""

import argparse
import time
import warnings

import numpy as np
import torch

from nfestimators import SpikeTokenizer, SpikeWindows
from nfestimators.data import TokenStore


def lateral_like_recording(n_neurons=2000, n_windows=30000, spikes_per_window=40, seed=0):
    rng = np.random.default_rng(seed)
    rates = rng.lognormal(0.0, 1.0, n_neurons)
    rates *= spikes_per_window / 5 / rates.sum()  # spikes per 10 ms bin, population
    return rng.poisson(rates[:, None], size=(n_neurons, n_windows * 5 + 5)).astype(np.int16)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=160)
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts = lateral_like_recording()
    windows = {}

    def build():
        windows["X"] = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)

    t_build = median_time(build, args.repeats)
    X = windows["X"]
    tok = SpikeTokenizer(max_tokens=100, max_prev_tokens=700).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_tok = median_time(lambda: tok.transform(X), args.repeats)
        tokens = tok.transform(X)
    store = TokenStore(tokens, args.device)
    order = np.random.default_rng(0).permutation(len(X))
    batches = [order[i:i + args.batch_size] for i in range(0, len(X), args.batch_size)]

    def epoch():
        for rows in batches:
            b = store.batch(rows)
        if store.device.type == "cuda":
            torch.cuda.synchronize()
        return b

    t_batch = median_time(epoch, args.repeats)
    n = len(X)
    print(f"windows: {n}, neurons: {X.n_neurons}, mean spikes/window: {X.n_spikes().mean():.1f}, "
          f"past: {X.n_spikes(past=True).mean():.1f}")
    print(f"build SpikeWindows from counts : {n / t_build:12,.0f} windows/s ({t_build * 1e3:.0f} ms)")
    print(f"tokenize (current + past)      : {n / t_tok:12,.0f} windows/s ({t_tok * 1e3:.0f} ms)")
    print(f"padded batches on {args.device:<4} (B={args.batch_size}): {n / t_batch:12,.0f} windows/s "
          f"({t_batch * 1e3:.0f} ms per epoch)")
    print(f"end to end (tokenize + batches): {n / (t_tok + t_batch):12,.0f} windows/s")


if __name__ == "__main__":
    main()
