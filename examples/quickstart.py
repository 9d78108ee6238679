"""
Quickstart: pretrain, finetune, decode
======================================

Synthetic spikes driven by a running animal's speed and position
(:func:`~nfestimators.datasets.make_spiking_data`) are cut into 50 ms windows. A
:class:`~nfestimators.NeuroformerPretrainer` learns to predict the next spike of each window
without labels; a :class:`~nfestimators.NeuroformerRegressor` then starts from those weights
and decodes the behaviour. We report R² on held-out windows (the last quarter of the
recording) and plot the pretrained latents coloured by speed.

Set ``NFE_EXAMPLE_SMALL=1`` to run a tiny version in well under a minute on a CPU.
"""

import os

import matplotlib.pyplot as plt
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from nfestimators import NeuroformerPretrainer, NeuroformerRegressor
from nfestimators.datasets import make_spiking_data
from nfestimators.plotting import plot_embedding

SMALL = os.environ.get("NFE_EXAMPLE_SMALL", "0") not in ("", "0")
if SMALL:
    n_neurons, duration, preset, pre_epochs, ft_epochs = 30, 60.0, "tiny", 4, 8
else:
    n_neurons, duration, preset, pre_epochs, ft_epochs = 80, 200.0, "small", 20, 30

# %%
# Data: one sample is one 50 ms window (with the 50 ms before it as context)
data = make_spiking_data(n_neurons=n_neurons, duration=duration, random_state=0)
X, y = data.windows, data.behavior
print(X)
print("targets:", data.behavior_names)

# Keep time order: test on the last quarter of the recording.
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, shuffle=False)

# %%
# Pretrain on spikes alone (next-spike prediction)
pre = NeuroformerPretrainer(preset=preset, max_epochs=pre_epochs, random_state=0)
pre.fit(X_train)
print(f"held-out log-likelihood: {pre.score(X_test):.3f} bits/spike over a Poisson baseline")

# %%
# Finetune a regressor from the pretrained weights
# FrozenEstimator lets sklearn clone the regressor without refitting the pretrainer.
reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), preset=preset,
                           max_epochs=ft_epochs, random_state=0)
reg.fit(X_train, y_train)
y_pred = reg.predict(X_test)
for name, r2 in zip(data.behavior_names,
                    r2_score(y_test, y_pred, multioutput="raw_values")):
    print(f"R² {name}: {r2:.2f}")

# %%
# Latents of the pretrained model, coloured by speed
Z = pre.transform(X_test)
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
plot_embedding(Z, labels=y_test[:, 0], ax=axes[0])
axes[0].set_title("pretrained latents (PCA), colour = speed")
axes[1].plot(y_test[:200, 0], label="true")
axes[1].plot(y_pred[:200, 0], label="predicted")
axes[1].set(xlabel="window (50 ms)", ylabel="speed", title="decoded speed, test windows")
axes[1].legend()
fig.tight_layout()
plt.show()
