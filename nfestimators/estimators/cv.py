"""Neuroformer estimators that choose their own settings on validation rows, in the manner of
:class:`~sklearn.linear_model.RidgeCV` and :class:`~sklearn.linear_model.LogisticRegressionCV`.

``fit`` searches a small grid (the time resolution and the weight of the spike objective,
optionally a pretrained backbone fitted on the training rows' spikes) by 3-fold
cross-validation on the training rows, keeps the estimator's own setting unless another one
beats it by more than a standard error, then refits the chosen setting on all of them.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ..data import SpikeWindows, as_windows
from ._inputs import MAX_TIMING_BINS, auto_bin_width, rebin_factors
from .classifier import NeuroformerClassifier
from .pretrainer import NeuroformerPretrainer
from .regressor import NeuroformerRegressor

BINS_PER_WINDOW = (50, 10)  # the coarser time resolutions searched, in bins per window
SCLM_WEIGHTS = (1.0, 0.0)
N_SPLITS = 3


def candidate_bin_widths(X, bins_per_window=BINS_PER_WINDOW):
    """Bin widths to search for the windows ``X``: their own (None; only when they are at
    most ``MAX_TIMING_BINS`` per window, the most ``dt="auto"`` gives), and for each number
    in ``bins_per_window`` the whole multiple of ``X.dt`` dividing the current and past
    windows whose bin count is closest to it (coarser ones only, each once).

    Parameters
    ----------
    X : SpikeWindows
    bins_per_window : sequence of int

    Returns
    -------
    list of (None or float)

    Examples
    --------
    >>> import numpy as np
    >>> from nfestimators import SpikeWindows
    >>> X = SpikeWindows.from_array(np.zeros((2, 3, 500), dtype=int), dt=0.001)
    >>> candidate_bin_widths(X)
    [None, 0.01, 0.05]
    >>> two_seconds = SpikeWindows.from_array(np.zeros((2, 3, 2000), dtype=int), dt=0.001)
    >>> candidate_bin_widths(two_seconds)  # 2,000 bins of their own: too many to search
    [0.04, 0.2]
    """
    factors = rebin_factors(X)
    widths = [None] if max(X.n_bins, X.n_prev_bins) <= MAX_TIMING_BINS else []
    for target in bins_per_window:
        factor = min(factors, key=lambda f: (abs(X.n_bins / f - target), f))
        width = round(X.dt * factor, 12)
        if factor > 1 and width not in widths:
            widths.append(width)
    return widths


def default_grid(X):
    """The grid searched when ``param_grid`` is None: ``dt`` of ``"auto"`` (the estimators'
    default) and the other :func:`candidate_bin_widths`, ``sclm_weight`` of 1 (the default)
    and 0.

    Examples
    --------
    >>> import numpy as np
    >>> from nfestimators import SpikeWindows
    >>> default_grid(SpikeWindows.from_array(np.zeros((2, 3, 500), dtype=int), dt=0.001))
    {'dt': ['auto', None, 0.05], 'sclm_weight': [1.0, 0.0]}
    """
    try:
        windows = X if isinstance(X, SpikeWindows) else as_windows(np.asarray(X))
        auto = round(auto_bin_width(windows), 12)
        widths = [w for w in candidate_bin_widths(windows)
                  if (w if w is not None else round(windows.dt, 12)) != auto]
    except (TypeError, ValueError):  # the estimator's own checks will say what is wrong
        widths = []
    return {"dt": ["auto", *widths], "sclm_weight": list(SCLM_WEIGHTS)}


def one_standard_error_choice(cv_results, preferred):
    """Index of the setting to refit: ``preferred`` (an index into ``cv_results["params"]``,
    or None) unless the best mean validation score beats its mean by more than the standard
    error of the best (its sd over the splits over sqrt(number of splits)); otherwise the best.

    Choosing the plain maximum of a dozen noisy validation scores favours settings that were
    lucky on a few hundred rows; this rule moves away from the estimator as given only on
    evidence (the "one-standard-error rule" of Hastie, Tibshirani and Friedman, 7.10).

    Examples
    --------
    >>> results = {"mean_test_score": np.array([0.80, 0.83, 0.90]),
    ...            "std_test_score": np.array([0.05, 0.05, 0.05]),
    ...            "split0_test_score": np.zeros(3), "split1_test_score": np.zeros(3),
    ...            "split2_test_score": np.zeros(3)}
    >>> one_standard_error_choice(results, preferred=1)  # 0.90 - 0.05 / sqrt(3) > 0.83
    2
    >>> results["mean_test_score"][2] = 0.85
    >>> one_standard_error_choice(results, preferred=1)
    1
    """
    means = np.asarray(cv_results["mean_test_score"], dtype=float)
    best = int(np.nanargmax(means))
    if preferred is None:
        return best
    n_splits = sum(key.startswith("split") and key.endswith("_test_score") for key in cv_results)
    standard_error = cv_results["std_test_score"][best] / np.sqrt(max(n_splits, 1))
    return preferred if means[preferred] >= means[best] - standard_error else best


def _same(a, b):
    """Parameter values equal (floats as numbers, anything else by ``==``)."""
    try:
        return bool(a == b)
    except Exception:  # arrays, estimators: compared by identity
        return a is b


class _NeuroformerSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Shared search: subclasses set the base estimator and the default validation split."""

    def __init__(self, estimator=None, *, param_grid=None, cv=None, scoring=None,
                 pretrain=False, n_jobs=None, random_state=None, verbose=0):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.pretrain = pretrain
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        base = self._base_estimator().__sklearn_tags__()
        tags.input_tags = base.input_tags
        tags.target_tags = base.target_tags
        tags.non_deterministic = base.non_deterministic
        return tags

    def _base_estimator(self):
        if self.estimator is None:
            return self._default_estimator()
        if not isinstance(self.estimator, self._estimator_type_expected):
            raise TypeError(f"estimator must be a {self._estimator_type_expected.__name__}; "
                            f"got {type(self.estimator).__name__}.")
        return self.estimator

    def _grids(self, X, base):
        """The grids searched: ``param_grid`` or the default one, plus the pretrained arm."""
        grid = self.param_grid if self.param_grid is not None else default_grid(X)
        grids = list(grid) if isinstance(grid, (list, tuple)) else [dict(grid)]
        if not self.pretrain:
            return grids
        pretrainer = self._fit_pretrainer(X, base)
        return grids + [{"pretrained": [FrozenEstimator(pretrainer)],
                         "sclm_weight": list(SCLM_WEIGHTS)}]

    def _fit_pretrainer(self, X, base):
        """A pretrainer on the spikes of all training rows (labels withheld), with the
        estimator's settings that a pretrainer shares (its ``dt`` included, so that the
        finetuned arm sees the bins the backbone learnt) and its own training length."""
        pretrainer_params = NeuroformerPretrainer().get_params(deep=False)
        shared = {k: v for k, v in base.get_params(deep=False).items()
                  if k in pretrainer_params
                  and k not in ("max_epochs", "n_iter_no_change", "validation_fraction")}
        shared.update(random_state=self.random_state, verbose=self.verbose)
        self.pretrainer_ = NeuroformerPretrainer(**shared).fit(X)
        return self.pretrainer_

    def fit(self, X, y):
        """Search the grid by cross-validation on ``(X, y)``, then refit the chosen setting
        (:func:`one_standard_error_choice`) on all of them.

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        self._check_targets(y)
        base = clone(self._base_estimator()).set_params(random_state=self.random_state)
        if self.pretrain not in (True, False):
            raise ValueError(f"pretrain must be True or False; got {self.pretrain!r}.")
        n_samples = len(np.asarray(y))
        if n_samples < 2:
            raise ValueError(f"{type(self).__name__} holds out validation rows and needs at "
                             f"least 2 samples; got n_samples = {n_samples}.")
        grids = self._grids(X, base)
        cv = self.cv if self.cv is not None else self._default_cv(y)
        given = base.get_params(deep=False)

        def choose(cv_results):
            own = [i for i, params in enumerate(cv_results["params"])
                   if all(_same(given.get(k), v) for k, v in params.items())]
            return one_standard_error_choice(cv_results, own[0] if own else None)

        search = GridSearchCV(base, grids, cv=cv, scoring=self.scoring, n_jobs=self.n_jobs,
                              refit=choose, error_score="raise", verbose=self.verbose)
        search.fit(X, y)
        self.best_estimator_ = search.best_estimator_
        self.best_index_ = int(search.best_index_)
        self.best_params_ = search.best_params_
        self.best_score_ = float(search.cv_results_["mean_test_score"][self.best_index_])
        self.cv_results_ = search.cv_results_
        self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def predict(self, X):
        """Predictions of the refitted best estimator."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def score(self, X, y, sample_weight=None):
        """Score of the refitted best estimator (accuracy or R²)."""
        check_is_fitted(self)
        return self.best_estimator_.score(X, y, sample_weight=sample_weight)


_SHARED_DOC = """
    Parameters
    ----------
    estimator : {name}, optional
        The estimator whose settings are searched (its other parameters stay as given);
        default ``{name}()``.
    param_grid : dict or list of dict, optional
        Settings to search (parameter names of ``estimator``). Default
        (:func:`default_grid`): ``dt`` of ``"auto"``, the windows' own bins and the whole
        multiples of them closest to 50 and 10 bins per window
        (:func:`candidate_bin_widths`), each once, and ``sclm_weight`` in ``(1.0, 0.0)``:
        at most 8 settings (6 unless the 10 ms bins of ``"auto"`` in long windows apply).
        The head's count inputs need no search: every fit chooses its own count decoder
        (``count_decoder="blend"``).
    cv : int, cross-validation generator or iterable, optional
        Validation splits; default {cv_default} The setting refitted is the
        estimator's own (its parameters as given, when the grid holds them) unless the
        best mean validation score beats it by more than one standard error over the
        splits (:func:`one_standard_error_choice`); otherwise the best.
    scoring : str or callable, optional
        Score to maximise on the validation rows (default: the estimator's ``score``).
    pretrain : bool, default=False
        Also search a pretrained arm: a :class:`NeuroformerPretrainer` fitted on the
        spikes of all training rows (labels withheld; with the estimator's ``dt``, by
        default ``"auto"``: at most 50 bins per window or 10 ms), finetuned with each
        ``sclm_weight``.
    n_jobs : int, optional
        Settings fitted in parallel (processes; several can share one GPU).
    random_state : int, RandomState instance or None
        Seeds the validation split and every fit.
    verbose : int, default=0

    Attributes
    ----------
    best_estimator_ : {name}
        The chosen setting refitted on all training rows.
    best_index_ : int
        Index of the chosen setting in ``cv_results_["params"]``.
    best_params_ : dict
    best_score_ : float
        Mean validation score of the chosen setting.
    cv_results_ : dict of ndarray
        As :attr:`sklearn.model_selection.GridSearchCV.cv_results_`.
    pretrainer_ : NeuroformerPretrainer
        With ``pretrain=True``: the pretrainer of the pretrained arm.
    n_features_in_ : int
"""


class NeuroformerClassifierCV(ClassifierMixin, _NeuroformerSearchCV):
    __doc__ = ("""Neuroformer classifier that chooses its time resolution and spike-objective
    weight by cross-validation on the training rows, then refits on all of them.
""" + _SHARED_DOC.format(
        name="NeuroformerClassifier",
        cv_default="3 stratified folds (shuffled with ``random_state``).") + """
    classes_ : ndarray of shape (n_classes,)

    Examples
    --------
    >>> from nfestimators import NeuroformerClassifier, NeuroformerClassifierCV
    >>> from nfestimators.datasets import make_spiking_data
    >>> data = make_spiking_data(n_neurons=20, duration=20.0, random_state=0)
    >>> search = NeuroformerClassifierCV(
    ...     NeuroformerClassifier(preset="tiny", max_epochs=1),
    ...     param_grid={"readout": ["mean", "mean+count"]}, random_state=0)
    >>> search.fit(data.windows, data.labels).predict(data.windows).shape
    (400,)
    >>> sorted(search.best_params_)
    ['readout']
    """)
    _estimator_type_expected = NeuroformerClassifier

    def _default_estimator(self):
        return NeuroformerClassifier()

    @staticmethod
    def _check_targets(y):
        check_classification_targets(y)

    def _default_cv(self, y):
        n_splits = min(N_SPLITS, len(np.asarray(y)))
        return StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)

    def fit(self, X, y):
        super().fit(X, y)
        self.classes_ = self.best_estimator_.classes_
        return self

    def predict_proba(self, X):
        """Class probabilities of the refitted best estimator."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)


class NeuroformerRegressorCV(RegressorMixin, _NeuroformerSearchCV):
    __doc__ = ("""Neuroformer regressor that chooses its time resolution and spike-objective
    weight by cross-validation on the training rows, then refits on all of them.
""" + _SHARED_DOC.format(
        name="NeuroformerRegressor",
        cv_default="3 contiguous blocks of the rows in the order given (windows of a "
                   "recording in time order: each validation block is a stretch of time, "
                   "so that the autocorrelated neighbours of a validation window are in "
                   "training only at the block's two edges).") + """
    Examples
    --------
    >>> from nfestimators import NeuroformerRegressor, NeuroformerRegressorCV
    >>> from nfestimators.datasets import make_spiking_data
    >>> data = make_spiking_data(n_neurons=20, duration=20.0, random_state=0)
    >>> search = NeuroformerRegressorCV(
    ...     NeuroformerRegressor(preset="tiny", max_epochs=1),
    ...     param_grid={"readout": ["mean", "mean+count"]}, random_state=0)
    >>> search.fit(data.windows, data.behavior).predict(data.windows).shape
    (400, 3)
    """)
    _estimator_type_expected = NeuroformerRegressor

    def _default_estimator(self):
        return NeuroformerRegressor()

    @staticmethod
    def _check_targets(y):
        """The regressor checks its targets itself."""

    def _default_cv(self, y):
        return KFold(min(N_SPLITS, len(np.asarray(y))))  # contiguous blocks, in the order given
