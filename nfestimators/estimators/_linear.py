"""The linear decoder whose output the supervised heads correct (``linear_residual=True``).

A neuroscientist's first decoder is a regularised linear read of binned spike counts. With
``linear_residual`` the regressor and the classifier fit one inside ``fit`` (ridge or logistic
regression, its features and penalty chosen by K-fold cross-validation on the training
windows) and the network's head output is added to that decoder's output: the transformer
learns what the linear read misses (order and timing inside the bins, the past window, other
modalities) instead of re-learning the linear read from a few hundred windows by SGD.

The training windows get out-of-fold outputs (from decoders that did not see them: stacking),
so the network learns a correction that holds on new windows, and the early-stopping
validation windows are scored honestly; ``predict`` uses the decoder refitted on every
training window. The fitted decoder is a dict of plain values and arrays (``linear_readout_``),
saved with the estimator.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse
from scipy.special import log_softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

N_FOLDS = 3
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # logistic: inverse penalty, walked up warm
ALPHA_GRID = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)  # ridge penalty
FEATURES = ("population", "neurons")
MAX_ROWS = 20_000  # the decoder's choice and fit use at most this many training windows


def count_features(X, n_groups, kind):
    """Sparse features of the windows ``X``: ``log(1 + count)``.

    ``"population"``: the total spike count of the current and of the past window (2 columns).
    ``"neurons"``: those, every neuron's count in ``n_groups`` equal time groups of the
    current window, and every neuron's count in the past window.
    """
    n = len(X)

    def per_neuron(neuron, bins, offsets, n_bins, groups):
        window = np.repeat(np.arange(n), np.diff(offsets))
        column = neuron * groups + np.minimum(bins * groups // max(n_bins, 1), groups - 1)
        return sparse.csr_matrix((np.ones(len(window)), (window, column)),
                                 shape=(n, X.n_neurons * groups))

    current = per_neuron(X.neuron, X.bin, X.offsets, X.n_bins, n_groups)
    parts = [current.sum(axis=1)]
    past = None
    if X.n_prev_bins:
        past = per_neuron(X.prev_neuron, X.prev_bin, X.prev_offsets, X.n_prev_bins, 1)
        parts.append(past.sum(axis=1))
    blocks = [sparse.csr_matrix(np.hstack([np.asarray(p) for p in parts]))]
    if kind == "neurons":
        blocks += [current] + ([past] if past is not None else [])
    features = sparse.hstack(blocks, format="csr")
    features.data = np.log1p(features.data)
    return features


def _scale(features):
    """Column standard deviations (1 for constant columns): the penalty treats every
    feature alike."""
    mean = np.asarray(features.mean(axis=0)).ravel()
    mean_sq = np.asarray(features.multiply(features).mean(axis=0)).ravel()
    std = np.sqrt(np.maximum(mean_sq - mean**2, 0.0))
    return np.where(std > 1e-12, std, 1.0)


def _models(task):
    """(penalty, model) pairs walked in order (the logistic path warm-starts)."""
    if task == "classification":
        model = LogisticRegression(max_iter=300, warm_start=True, tol=1e-3)
        for c in C_GRID:
            yield c, model.set_params(C=c)
    else:
        for alpha in ALPHA_GRID:
            yield alpha, Ridge(alpha=alpha)


def _outputs(model, features, task, n_outputs):
    """Log-probabilities over all ``n_outputs`` classes, or the predicted targets."""
    if task != "classification":
        return model.predict(features).reshape(features.shape[0], -1)
    scores = np.full((features.shape[0], n_outputs), -30.0)  # classes the fold never saw
    decision = model.decision_function(features)
    if decision.ndim == 1:  # binary: the decision is the second class's logit
        decision = np.stack([np.zeros_like(decision), decision], axis=1)
    scores[:, model.classes_] = decision
    return log_softmax(scores, axis=1)


def _loss(outputs, y, task):
    if task == "classification":
        return -float(np.mean(outputs[np.arange(len(y)), y]))
    return float(np.mean((outputs - y) ** 2))


def _folds(y, task, random_state):
    """Stratified folds when every class has N_FOLDS windows, else plain K folds."""
    if task == "classification" and np.bincount(y)[np.unique(y)].min() >= N_FOLDS:
        return StratifiedKFold(N_FOLDS, shuffle=True, random_state=random_state).split(y, y)
    return KFold(N_FOLDS, shuffle=True, random_state=random_state).split(y)


def fit_linear_readout(X, y, task, n_outputs, n_groups, random_state):
    """Choose, fit and apply the linear decoder.

    Parameters
    ----------
    X : SpikeWindows
        Training windows, in the model's bins.
    y : ndarray
        Class indices (n,) for ``task="classification"``, else standardised targets (n, T).
    task : {"classification", "regression"}
    n_outputs : int
        Classes, or targets.
    n_groups : int
        Time groups of the per-neuron counts.
    random_state : int
        Seeds the folds and the row subsample.

    Returns
    -------
    readout : dict
        The fitted decoder (:func:`linear_outputs` applies it).
    train_outputs : ndarray of shape (n, n_outputs)
        Out-of-fold outputs of the training windows (the decoder refitted on all rows for
        those beyond :data:`MAX_ROWS`, which it did not see).
    """
    y = np.asarray(y)
    rng = np.random.default_rng(random_state)
    rows = np.arange(len(X)) if len(X) <= MAX_ROWS else np.sort(
        rng.choice(len(X), MAX_ROWS, replace=False))
    best = None
    folds = list(_folds(y[rows], task, random_state)) if len(rows) >= 2 * N_FOLDS else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for kind in FEATURES:
            features = count_features(X[rows], n_groups, kind)
            features = features.multiply(1.0 / _scale(features)).tocsr()
            held_out = {}
            for train, test in folds:
                if task == "classification" and len(np.unique(y[rows][train])) < 2:
                    continue
                for penalty, model in _models(task):
                    model.fit(features[train], y[rows][train])
                    out = held_out.setdefault(penalty, np.zeros((len(rows), n_outputs)))
                    out[test] = _outputs(model, features[test], task, n_outputs)
            for penalty, out in held_out.items():
                loss = _loss(out, y[rows], task)
                if best is None or loss < best[0]:
                    best = (loss, kind, penalty, out)
    if best is None:  # too few windows or classes to fit one: a constant output
        n_features = count_features(X[:1], n_groups, "population").shape[1]
        readout = {"task": task, "features": "population", "penalty": 0.0, "cv_loss": np.nan,
                   "n_groups": int(n_groups), "coef": np.zeros((n_outputs, n_features)),
                   "intercept": np.zeros(n_outputs)}
        return readout, linear_outputs(readout, X)
    loss, kind, penalty, held_out = best
    features = count_features(X[rows], n_groups, kind)
    scale = _scale(features)
    model = dict(_models(task))[penalty]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features.multiply(1.0 / scale).tocsr(), y[rows])
    coef, intercept = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
    if task == "classification":  # as logits over all classes (binary: [0, decision])
        full_coef = np.zeros((n_outputs, coef.shape[1]))
        full_intercept = np.full(n_outputs, -30.0)
        if len(model.classes_) == 2 and coef.shape[0] == 1:
            full_intercept[model.classes_] = [0.0, intercept[0]]
            full_coef[model.classes_[1]] = coef[0]
        else:
            full_coef[model.classes_], full_intercept[model.classes_] = coef, intercept
        coef, intercept = full_coef, full_intercept
    readout = {"task": task, "features": kind, "penalty": float(penalty),
               "cv_loss": float(loss), "n_groups": int(n_groups), "coef": coef / scale,
               "intercept": intercept}  # coef on the unscaled features
    train_outputs = linear_outputs(readout, X)
    train_outputs[rows] = held_out
    return readout, train_outputs


def linear_outputs(readout, X):
    """The fitted decoder's outputs on ``X``: log-probabilities (n, n_classes) or standardised
    targets (n, n_targets), float32."""
    features = count_features(X, readout["n_groups"], readout["features"])
    scores = features @ readout["coef"].T + readout["intercept"]
    if readout["task"] == "classification":
        scores = log_softmax(scores, axis=1)
    return np.asarray(scores, dtype=np.float32)
