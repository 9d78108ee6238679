"""The worked example of the data-model page: a raster cut into windows, with its tokens."""

import matplotlib.pyplot as plt
import numpy as np

from nfestimators import SpikeTokenizer, SpikeWindows

counts = np.zeros((10, 10), dtype=int)
counts[4, 0] = 1
counts[3, 2] = 2
counts[7, 6] = 1
counts[2, 8] = counts[9, 8] = 1
X = SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)
tok = SpikeTokenizer(max_tokens=6, max_prev_tokens=6).fit(X)
tokens = tok.transform(X)

fig, ax = plt.subplots(figsize=(9, 4.2))
shades = ("#e8f1fb", "#fdf3e1")
for w in range(len(X)):
    start = (X.window_end[w] - X.window) * 1000
    ax.axvspan(start, start + 50, color=shades[w], zorder=0)
    ids = [str(i) for i in tok.decode_ids(tokens.input_id[w])]
    dts = [str(d) for d in tokens.input_dt_token[w]]
    ax.text(start + 25, 10.9, f"window {w}  (end = {X.window_end[w] * 1000:.0f} ms)",
            ha="center", fontsize=9, weight="bold")
    ax.text(start + 25, -1.6, "id:" + "".join(f"{s:>5}" for s in ids), ha="center", fontsize=8.5,
            family="monospace")
    ax.text(start + 25, -2.4, "dt:" + "".join(f"{s:>5}" for s in dts), ha="center", fontsize=8.5,
            family="monospace")
neurons, bins = np.nonzero(counts)
for n, b in zip(neurons, bins):
    for k in range(counts[n, b]):
        ax.plot(b * 10 + 2 + 4 * k, n, "|", color="k", markersize=14, mew=2)
for b in range(11):
    ax.axvline(b * 10, color="#bbbbbb", lw=0.5, zorder=0)
ax.annotate("past window of window 1", xy=(25, 9.9), ha="center", fontsize=8,
            color="#8a5a00")
ax.set(xlim=(0, 100), ylim=(-2.9, 11.5), xlabel="time (ms); grey lines = 10 ms bins",
       ylabel="neuron", yticks=range(10))
ax.spines[["top", "right"]].set_visible(False)
fig.tight_layout()
