"""Behaviour decoding: finetune (or train) Neuroformer with a regression head."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils.validation import check_array

from ..model.config import ALL_DECODER_ONLY_BLOCKS
from ._supervised import SupervisedNeuroformer


class NeuroformerRegressor(RegressorMixin, SupervisedNeuroformer):
    """Decode continuous variables (behaviour) from spike windows.

    A linear head on the PAD-masked mean of the last layer (and on a code of the window's
    spike count with ``readout="mean+count"``) predicts the standardised targets with a
    mean squared error loss. Start from pretrained weights (``pretrained``) to finetune, or
    train from scratch.

    Parameters
    ----------
{parameters}

    Attributes
    ----------
{fitted_attributes}
    count_decoder_ : dict or None
        With ``count_decoder="blend"``: the linear count decoder blended into the head,
        ``{"blocks": inputs read, "C": its penalty, "weight": its share w of the outputs,
        "count_transform": "log" or "raw"}`` (w = 0: the network alone; the transform: how
        it reads the neuron and binned counts, chosen on the validation rows); None when
        nothing was blended.
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
        Standardisation of the targets (predictions are returned in the original units).

    Examples
    --------
    >>> from nfestimators import NeuroformerRegressor
    >>> from nfestimators.datasets import make_spiking_data
    >>> data = make_spiking_data(n_neurons=20, duration=20.0, random_state=0)
    >>> reg = NeuroformerRegressor(preset="tiny", max_epochs=1, random_state=0)
    >>> reg.fit(data.windows, data.behavior).predict(data.windows).shape
    (400, 3)
    """

    # The network does not train on the binned counts: trained with it, their hundreds of
    # inputs (n_neurons x 5) let the head fit the targets of a few hundred windows through
    # them, and the network's own features lose (H200, 2 seeds, one run, benchmarks/
    # README.md): behaviour R² 0.949 -> 0.987 (2 s, 80 neurons), 0.892 -> 0.959 (1 s, 400
    # neurons). The count decoder still reads them after training. The classifier keeps
    # training on them (D_E_III: 0.676 -> 0.636 without).
    _decoder_only_blocks = ALL_DECODER_ONLY_BLOCKS

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on windows ``X`` and targets ``y`` of shape (n_samples,) or (n_samples, n_targets).

        Returns
        -------
        self : NeuroformerRegressor
        """
        X = self._start_fit(X)
        y = self._check_y(y, len(X))
        self.y_ndim_ = y.ndim
        Y = y.reshape(len(y), -1)
        self.y_mean_ = Y.mean(axis=0)
        self.y_scale_ = Y.std(axis=0)
        self.y_scale_[self.y_scale_ < 1e-12] = 1.0
        source = self._pretrained_estimator()
        if self._keeps_head(source):  # its head predicts targets in its own units
            self.y_mean_, self.y_scale_ = source.y_mean_.copy(), source.y_scale_.copy()
        targets = {"y_reg": (Y - self.y_mean_) / self.y_scale_}
        return self._fit_supervised(X, targets, source, n_targets=Y.shape[1])

    def _same_outputs(self, source):
        return len(source.y_mean_) == len(self.y_mean_)

    @staticmethod
    def _check_y(y, n_samples):
        if y is None:
            raise ValueError("NeuroformerRegressor requires y to be passed, but the target y is None.")
        y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y").astype(np.float64)
        if y.ndim not in (1, 2) or y.shape[0] != n_samples:
            raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_targets) with "
                             f"n_samples={n_samples}; got {y.shape}.")
        return y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets) as ``y`` in fit."""
        X = self._check_X(X, reset=False)
        Y = self._forward_all(X, lambda out, batch: out["y_reg"].float().cpu().numpy())
        Y = Y * self.y_scale_ + self.y_mean_
        return Y[:, 0] if self.y_ndim_ == 1 else Y
