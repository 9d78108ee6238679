"""Spike -> frame retrieval of contrastive pretraining on synthetic movie data (issue #19 part 6).

For each draw of ``make_spiking_data(stimulus=True, random_state=seed, **setting)`` (the
generator's defaults: 80 neurons, 30 % of them driven by a 16 x 24 movie, 200 s of 50 ms
windows), ``NeuroformerPretrainer(contrastive=("id", "frames"))`` is fitted with its defaults
on the first 80 % of the windows. Every held-out window (the last 20 %) has its spike latent
ranked against the frame latents of all held-out windows (cosine similarity,
:func:`nfestimators.metrics.retrieval_accuracy`); the table gives top-1 and top-5 accuracy
as multiples of chance (``k / n_windows``), on the held-out windows and on as many of the
last training windows (same chance level).

Two references come from the same draw, on the same held-out windows:

* ``ideal``: the Bayes-optimal observer of the generator itself. It knows every neuron's
  true rate in every bin apart from the movie's term, and each candidate window's true
  filter output; it ranks the candidates by the Poisson likelihood of the window's spikes.
  No model of spikes and frames can beat it on average: it is the ceiling.
* ``ridge``: a linear decoder learnt on the training windows (``RidgeCV`` from the
  per-neuron spike counts of a window to the pixels of its frame clip), retrieving by cosine
  similarity between decoded and true clips (both centred by the training mean).

Run ``python benchmarks/contrastive_retrieval.py --device cuda`` (three draws, three
settings); ``--small`` checks the machinery in seconds on a CPU (a short recording, a tiny
model, two epochs: its figures mean nothing); ``--set name=value`` overrides a pretrainer
parameter (e.g. ``--set "compat=('clip_mean_frames',)"`` for the original's mean-pooled
frame latent).
"""

from __future__ import annotations

import argparse
import ast
import time
import warnings

import numpy as np
from sklearn.linear_model import RidgeCV

from nfestimators import NeuroformerPretrainer
from nfestimators.datasets import make_spiking_data
from nfestimators.metrics import retrieval_accuracy

SETTINGS = {
    "defaults": {},
    "160 neurons": dict(n_neurons=160),
    "8x12 frames": dict(frame_shape=(8, 12)),
}
SMALL_DATA = dict(n_neurons=30, duration=20.0)
SMALL_MODEL = dict(preset="tiny", max_epochs=2)


def ranks(scores):
    """Rank of the true partner (the diagonal) in every row of ``scores``, 0 = best; ties
    count against it, as in :func:`~nfestimators.metrics.retrieval_accuracy`."""
    diagonal = np.diag(scores)[:, None]
    return (scores >= diagonal).sum(axis=1) - 1


def ideal_scores(data, rows):
    """Poisson log-likelihood of each window's spikes given each candidate window's frames,
    (n_rows, n_rows), under the generator's own rates (see the module docstring)."""
    X = data.windows
    cells = np.flatnonzero(data.params.stimulus_gain)
    term = data.params.stimulus_gain[cells] * data.params.stimulus_filter_output  # (n_frames, S)
    end = np.round(X.window_end[rows] / data.dt).astype(np.int64)
    bins = end[:, None] + np.arange(-X.n_bins, 0)  # (n, B)
    frame = np.floor(np.round(bins * data.dt * data.frame_rate, 6)).astype(np.int64)
    own = term[frame]  # (n, B, S): the movie's term of every bin of the window
    counts = X[rows].to_counts()[:, cells]  # (n, S, B)
    rates = data.rates[cells][:, bins].transpose(1, 0, 2)  # (n, S, B), true expected counts
    rest = rates / np.exp(own.transpose(0, 2, 1))  # what the rate is without the movie
    # a candidate j puts its own frames' term into the bins of window i
    loglik = np.einsum("isb,jbs->ij", counts, own)
    loglik -= np.einsum("isb,jbs->ij", rest, np.exp(own))
    return loglik


def ridge_scores(X, train, test):
    """Cosine similarity of ridge-decoded clips (from spike counts) to the true clips."""
    counts = X.to_counts().sum(axis=2).astype(np.float64)  # (n, N)
    clips = X.frames.reshape(len(X), -1).astype(np.float64)  # (n, F * H * W)
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(counts[train], clips[train])
    mean = clips[train].mean(axis=0)
    decoded, truth = ridge.predict(counts[test]) - mean, clips[test] - mean
    decoded /= np.linalg.norm(decoded, axis=1, keepdims=True) + 1e-12
    truth /= np.linalg.norm(truth, axis=1, keepdims=True) + 1e-12
    return decoded @ truth.T


def times_chance(rank, k):
    """Top-k accuracy of the ranks, as a multiple of chance ``k / n``."""
    return float(np.mean(rank < k)) * len(rank) / k


def parse_overrides(pairs):
    """``["name=value", ...]`` -> dict, values read as Python literals when they parse."""
    overrides = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        try:
            overrides[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[name] = text
    return overrides


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--small", action="store_true",
                        help="30 neurons, 20 s, a tiny model, two epochs: checks the machinery")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 3],
                        help="random_state of the generator (the model's is 0)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                        default=list(SETTINGS), help="generator settings besides the defaults")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="pretrainer parameter overrides")
    args = parser.parse_args(argv)
    model = {**(SMALL_MODEL if args.small else {}), **parse_overrides(args.set)}

    print("top-k accuracy as a multiple of chance (k / n_windows); held-out = last 20 % of "
          f"the windows; pretrainer overrides: {model or 'none'}")
    print("| setting | seed | n held-out | model top-1 | top-5 | train top-1 | top-5 | "
          "ideal top-1 | top-5 | ridge top-1 | top-5 | epochs (best) | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.settings:
        for seed in args.seeds:
            data = make_spiking_data(stimulus=True, random_state=seed,
                                     **{**(SMALL_DATA if args.small else {}), **SETTINGS[name]})
            X = data.windows
            cut = int(0.8 * len(X))
            train, test = np.arange(cut), np.arange(cut, len(X))
            seen = train[-len(test):]  # training windows, as many as held out
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                pre = NeuroformerPretrainer(contrastive=("id", "frames"), random_state=0,
                                            device=args.device, **model).fit(X[train])
            seconds = time.perf_counter() - start
            row = [name, seed, len(test)]
            for rows in (test, seen):
                z_spikes = pre.transform(X[rows])
                z_frames = pre.transform(X[rows], modality="frames")
                row += [retrieval_accuracy(z_spikes, z_frames, k=k) * len(rows) / k
                        for k in (1, 5)]
            for scores in (ideal_scores(data, test), ridge_scores(X, train, test)):
                row += [times_chance(ranks(scores), k) for k in (1, 5)]
            row += [f"{pre.n_epochs_} ({pre.best_epoch_})", f"{seconds:.0f}"]
            print("| " + " | ".join(f"{v:.1f}x" if isinstance(v, float) else str(v)
                                    for v in row) + " |", flush=True)


if __name__ == "__main__":
    main()
