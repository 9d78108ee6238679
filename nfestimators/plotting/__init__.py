"""Plots of spikes, PSTHs, latent embeddings and training curves.

matplotlib is an optional dependency (the ``plot`` extra); it is imported only when a function
here is called. Every function draws into ``ax`` when given (else a new figure) and returns the
Axes it drew on.
"""

from ._decoding import plot_confusion_matrix, plot_true_vs_predicted
from ._spikes import plot_psth, plot_raster
from ._training import plot_embedding, plot_loss

__all__ = ["plot_raster", "plot_psth", "plot_embedding", "plot_loss", "plot_true_vs_predicted",
           "plot_confusion_matrix"]
