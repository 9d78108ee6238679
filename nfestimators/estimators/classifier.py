"""Decoding of discrete labels: finetune (or train) Neuroformer with a classification head."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._supervised import SupervisedNeuroformer


class NeuroformerClassifier(ClassifierMixin, SupervisedNeuroformer):
    """Classify spike windows (stimulus identity, condition, trial type).

    A linear head on the PAD-masked mean of the last layer (and on a code of the window's
    spike count with ``readout="mean+count"``) is trained with cross-entropy.
    Labels may be of any type (integers, strings); ``classes_`` holds them sorted.

    Parameters
    ----------
{parameters}

    Attributes
    ----------
{fitted_attributes}
    count_decoder_ : dict or None
        With ``count_decoder="blend"``: the linear count decoder blended into the head,
        ``{"blocks": inputs read, "C": its penalty, "weight": its share w of the outputs,
        "count_transform": "log"}`` (w = 0: the network alone; the transform is "log" as
        the network trains on the log binned counts); None when nothing was blended.
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit.

    Examples
    --------
    >>> from nfestimators import NeuroformerClassifier
    >>> from nfestimators.datasets import make_spiking_data
    >>> data = make_spiking_data(n_neurons=20, duration=20.0, random_state=0)
    >>> clf = NeuroformerClassifier(preset="tiny", max_epochs=1, random_state=0)
    >>> clf.fit(data.windows, data.labels).predict_proba(data.windows).shape[0]
    400
    """

    def __init__(self, *, pretrained=None, freeze="none", adapt="units+all", sclm_weight=1.0,
                 readout="mean+binned+pairs", count_decoder="blend", preset="small",
                 n_layers=None, n_embd=None, n_head=None, dropout=None, compat=(),
                 rate_prior=True, dt="auto", max_tokens=None, max_prev_tokens=None,
                 behavior_inputs=None,
                 round_counts=False, max_epochs=100, batch_size=32, lr=1e-3, weight_decay=0.1,
                 warmup_fraction=0.1, validation_fraction=0.1, n_iter_no_change=15,
                 augment_jitter=1, augment_neuron_dropout=0.0, ema_decay=0.99,
                 label_smoothing=0.0, device="auto", precision="auto", compile=False,
                 cuda_graphs="auto", callbacks=None, random_state=None, verbose=0):
        # the shared parameters go to SupervisedNeuroformer as they are (sklearn needs them
        # spelled out in this signature; tests/test_regularise.py checks the two agree)
        shared = dict(locals())
        for name in ("self", "__class__", "label_smoothing"):
            shared.pop(name, None)
        super().__init__(**shared)
        self.label_smoothing = label_smoothing

    def _loss_config(self):
        return {"label_smoothing": float(self.label_smoothing)}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on windows ``X`` and labels ``y`` of shape (n_samples,).

        Returns
        -------
        self : NeuroformerClassifier
        """
        X = self._start_fit(X)
        if y is None:
            raise ValueError("NeuroformerClassifier requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        if len(y) != len(X):
            raise ValueError(f"y has {len(y)} labels for {len(X)} windows.")
        try:
            check_classification_targets(y)
            self.classes_, y_index = np.unique(y, return_inverse=True)
        except TypeError as exc:  # labels that cannot be ordered, e.g. strings and numbers
            kinds = sorted({type(label).__name__ for label in y})
            raise ValueError(f"y mixes labels of the types {kinds}, which cannot be sorted; "
                             "give labels of one type (e.g. all str or all int).") from exc
        if len(self.classes_) < 2:
            raise ValueError(f"y contains only 1 class ({self.classes_[0]!r}); a classifier "
                             "needs at least 2.")
        return self._fit_supervised(X, {"y_cls": y_index}, self._pretrained_estimator(),
                                    n_classes=len(self.classes_), labels=y_index)

    def _same_outputs(self, source):
        return np.array_equal(source.classes_, self.classes_)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), rows summing to 1."""
        X = self._check_X(X, reset=False)
        logits = self._forward_all(X, lambda out, b: out["class_logits"].float().cpu().numpy())
        return softmax(logits.astype(np.float64), axis=1)

    def predict(self, X):
        """Most probable class of every window (labels from ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy on ``(X, y)``; labels never seen in fit raise a ValueError."""
        check_is_fitted(self)
        unseen = np.setdiff1d(np.asarray(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y contains labels not seen in fit: {unseen[:10].tolist()}.")
        return super().score(X, y, sample_weight=sample_weight)
