"""skorch callbacks used by the estimators."""

from __future__ import annotations

from skorch.callbacks import Callback

__all__ = ["EpochProgressBar", "FinishedEpochWeights"]


class EpochProgressBar(Callback):
    """A tqdm bar over epochs showing the latest train / valid losses.

    Replaces skorch's per-batch bar: it reads the history once per epoch, so it adds no
    host synchronisation to the training step.
    """

    def __init__(self, desc="fit"):
        self.desc = desc

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc=self.desc, unit="epoch", leave=False)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        shown = {k: f"{row[k]:.4f}" for k in ("train_loss", "valid_loss") if k in row}
        self.bar_.set_postfix(shown, refresh=False)
        self.bar_.update()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.bar_.close()
        del self.bar_


class FinishedEpochWeights(Callback):
    """Keep a copy of the weights at the end of every epoch, and put it back when the fit of a
    :class:`~nfestimators.training.NeuroformerNet` was interrupted (``KeyboardInterrupt``) in
    the middle of an epoch, so that the model holds the weights of its last finished epoch."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.weights_ = None

    def on_epoch_end(self, net, **kwargs):
        self.weights_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if net.interrupted_ and self.weights_ is not None:
            net.module_.load_state_dict(self.weights_)
        self.weights_ = None
