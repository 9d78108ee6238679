"""Data flow of Neuroformer, drawn with matplotlib for the user guide (no network, no graphviz)."""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

COLORS = {"input": "#e8f1fb", "embed": "#fdf3e1", "encode": "#e9f6ec", "fuse": "#f3e8f8",
          "head": "#fde9e9", "api": "#f2f2f2"}


def box(ax, x, y, w, h, text, kind, size=9.5, weight="normal"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=COLORS[kind], ec="#555555", lw=0.9))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size,
            weight=weight, linespacing=1.25)
    return (x, y, w, h)


def arrow(ax, start, end, style="-|>", color="#444444", ls="-", rad=0.0):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle=style, color=color, lw=1.1, ls=ls,
                                shrinkA=2, shrinkB=2, connectionstyle=f"arc3,rad={rad}"))


def right(b):
    return (b[0] + b[2], b[1] + b[3] / 2)


def left(b):
    return (b[0], b[1] + b[3] / 2)


fig, ax = plt.subplots(figsize=(12.5, 6.6))
ax.set_xlim(0, 12.6)
ax.set_ylim(0, 6.6)
ax.axis("off")

# column titles
for x, title in ((0.95, "inputs (one window)"), (3.15, "embed and encode"),
                 (6.05, "fuse (query = current spikes)"), (8.85, "heads"),
                 (11.27, "estimator API")):
    ax.text(x, 6.4, title, ha="center", va="center", fontsize=11, weight="bold", color="#333333")

# inputs
cur = box(ax, 0.1, 5.0, 1.7, 0.95, "current window\nspikes as tokens\n[SOS, 7, 2, 9, EOS]", "input")
past = box(ax, 0.1, 3.6, 1.7, 0.95, "past window\nspikes as tokens\n(context)", "input")
frames = box(ax, 0.1, 2.2, 1.7, 0.95, "stimulus frames\n(F x H x W clip\nending at window end)", "input")
beh = box(ax, 0.1, 0.8, 1.7, 0.95, "behaviour inputs\n(speed, ...)\noptional", "input")

# embeddings / encoders
e_cur = box(ax, 2.15, 5.0, 1.95, 0.95, "neuron-id + dt + position\nembeddings\n-> causal self-attention", "embed")
e_past = box(ax, 2.15, 3.6, 1.95, 0.95, "same id embedding,\nown dt + position\nembeddings", "embed")
e_fr = box(ax, 2.15, 2.2, 1.95, 0.95, "Conv3d patches + 3-D\npositional encoding\n-> self-attention", "embed")
e_beh = box(ax, 2.15, 0.8, 1.95, 0.95, "scalar embedding of\nstandardised values", "embed")
for a, b in ((cur, e_cur), (past, e_past), (frames, e_fr), (beh, e_beh)):
    arrow(ax, right(a), left(b))

# fusion stack
ax.add_patch(FancyBboxPatch((4.6, 0.55), 2.9, 5.55, boxstyle="round,pad=0.02,rounding_size=0.1",
                            fc="white", ec="#8a6d9c", lw=1.2, ls="--"))
f_past = box(ax, 4.8, 4.15, 2.5, 0.75, "cross-attention to the past\n(key-padding masked)", "fuse")
f_fr = box(ax, 4.8, 2.95, 2.5, 0.75, "cross-attention to frames", "fuse")
f_beh = box(ax, 4.8, 1.75, 2.5, 0.75, "cross-attention to behaviour", "fuse")
f_self = box(ax, 4.8, 0.7, 2.5, 0.7, "causal self-attention stack", "fuse")
arrow(ax, right(e_cur), (6.05, 4.9 + 0.02), rad=-0.25)
arrow(ax, right(e_past), left(f_past))
arrow(ax, right(e_fr), left(f_fr))
arrow(ax, right(e_beh), left(f_beh))
for a, b in ((f_past, f_fr), (f_fr, f_beh), (f_beh, f_self)):
    arrow(ax, (6.05, a[1]), (6.05, b[1] + b[3]))
ax.text(6.05, 5.55, "query stream z (B, T, E)", ha="center", fontsize=9.5, style="italic")

# heads
h_id = box(ax, 7.9, 4.95, 1.9, 0.8, "next neuron id\nlogits (N + 3)", "head")
h_dt = box(ax, 7.9, 3.85, 1.9, 0.8, "next dt logits\n(K + 3)", "head")
h_lat = box(ax, 7.9, 2.55, 1.9, 0.95, "contrastive projection\n(clip_embd, L2-norm) of\nencoded spikes, frames,\nbehaviour", "head")
h_sup = box(ax, 7.9, 1.15, 1.9, 0.95, "pooled latent\n(PAD-masked mean)\n-> regression / class head", "head")
out = (7.3, 1.05)
for h in (h_id, h_dt, h_sup):
    arrow(ax, out, left(h), rad=0.0)
arrow(ax, (4.1, 5.2), (7.9, 3.2), color="#2e7d32", ls=":", rad=0.12)

# API
a_fit = box(ax, 10.05, 4.95, 2.45, 0.8, "NeuroformerPretrainer.fit\nloss 0.45 CE(id) + 0.30 CE(dt)", "api", size=9)
a_sample = box(ax, 10.05, 3.85, 2.45, 0.8, "NeuroformerPretrainer.sample\ntoken by token, KV cache", "api", size=9)
a_tr = box(ax, 10.05, 2.55, 2.45, 0.95, "NeuroformerPretrainer.transform\n(fit adds 0.25 x contrastive\nInfoNCE loss)", "api", size=9)
a_sup = box(ax, 10.05, 1.15, 2.45, 0.95, "NeuroformerRegressor /\nNeuroformerClassifier\nfit / predict (finetuning)", "api", size=9)
arrow(ax, right(h_id), left(a_fit))
arrow(ax, right(h_dt), left(a_sample))
arrow(ax, right(h_lat), left(a_tr))
arrow(ax, right(h_sup), left(a_sup))
ax.text(6.05, 0.2, "dotted green: spikes are encoded alone (causal self-attention) before fusion; "
        "that encoding is what is aligned with the frame and behaviour encodings", ha="center", fontsize=9.5, color="#2e7d32")
fig.tight_layout()
