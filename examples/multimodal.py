"""Stimulus frames with spikes: contrastive alignment and decoding with frames as input.

On synthetic data with a movie (``make_spiking_data(stimulus=True)``):

1. ``NeuroformerPretrainer(contrastive=("id", "frames"))`` aligns the latents of each window's
   spikes with those of the frames it was shown. On held-out windows, the spike latent of a
   window is matched against the frame latents of all held-out windows (cosine similarity):
   the top-1 retrieval accuracy is compared with chance, ``1 / n_windows``. The spike latent
   is computed from the spikes alone, so this measures what the spikes say about the movie.
2. ``NeuroformerRegressor`` decodes a stimulus-driven variable (the population's filtered
   movie, ``stimulus_drive``) with and without the frames as an input.

Run ``python examples/multimodal.py [--out FIGURE_OR_FOLDER]``; set ``NFE_EXAMPLE_SMALL=1``
for a quick run (a few minutes on a laptop CPU; the full size is meant for a GPU).
"""

import argparse
import os
from pathlib import Path

import numpy as np
from sklearn.metrics import r2_score

from nfestimators import NeuroformerPretrainer, NeuroformerRegressor
from nfestimators.datasets import make_spiking_data
from nfestimators.metrics import retrieval_accuracy

SMALL = os.environ.get("NFE_EXAMPLE_SMALL") == "1"
SIZE = (dict(n_neurons=60, duration=60.0, epochs=15, preset="tiny") if SMALL
        else dict(n_neurons=100, duration=300.0, epochs=30, preset="small"))


def main(out):
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = make_spiking_data(n_neurons=SIZE["n_neurons"], duration=SIZE["duration"],
                             mean_rate=5.0, prev_window=0.0, stimulus=True, frame_shape=(8, 12),
                             stimulus_fraction=1.0, random_state=0)
    X, drive = data.windows, data.stimulus_drive
    cut = int(0.8 * len(X))  # train on the first 80 % of the recording, test on the rest
    train, test = X[:cut], X[cut:]
    common = dict(preset=SIZE["preset"], max_epochs=SIZE["epochs"], lr=3e-3, batch_size=64,
                  validation_fraction=None, random_state=0)
    print(f"{X}: {len(train)} training and {len(test)} held-out windows")

    pre = NeuroformerPretrainer(contrastive=("id", "frames"), **common).fit(train)
    z_spikes, z_frames = pre.transform(test), pre.transform(test, modality="frames")
    chance = 1 / len(test)
    for k in (1, 10):
        acc = retrieval_accuracy(z_spikes, z_frames, k=k)
        print(f"spike -> frame retrieval, top-{k}: {acc:.3f} (chance {k * chance:.4f}, "
              f"{acc / (k * chance):.1f}x)")

    predictions, r2 = {}, {}
    for name, windows in (("spikes + frames", X), ("spikes only", X.without("frames"))):
        reg = NeuroformerRegressor(**common).fit(windows[:cut], drive[:cut])
        predictions[name] = reg.predict(windows[cut:])
        r2[name] = r2_score(drive[cut:], predictions[name])
        print(f"stimulus drive decoded from {name}: R2 = {r2[name]:.3f}")

    save_figure(out, z_spikes, z_frames, drive[cut:], predictions, r2)


def save_figure(out, z_spikes, z_frames, truth, predictions, r2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    path = out / "multimodal.png" if out.is_dir() or not out.suffix else out
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_sim, ax_dec) = plt.subplots(1, 2, figsize=(11, 4), width_ratios=(1, 2))
    n = min(60, len(z_spikes))
    im = ax_sim.imshow(z_spikes[:n] @ z_frames[:n].T, cmap="viridis")
    ax_sim.set(title="cosine similarity, held-out windows", xlabel="frame latent",
               ylabel="spike latent")
    fig.colorbar(im, ax=ax_sim, shrink=0.8)
    t = np.arange(min(200, len(truth)))
    ax_dec.plot(t, truth[t], color="k", lw=1.5, label="true")
    for name, pred in predictions.items():
        ax_dec.plot(t, pred[t], lw=1, label=f"{name} (R2 {r2[name]:.2f})")
    ax_dec.set(title="stimulus drive, held-out windows", xlabel="window")
    ax_dec.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"figure saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="figure file, or folder for multimodal.png")
    main(parser.parse_args().out)
