"""skorch callbacks used by the estimators."""

from __future__ import annotations

from skorch.callbacks import Callback

__all__ = ["EpochProgressBar"]


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
