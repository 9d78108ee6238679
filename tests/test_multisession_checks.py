"""scikit-learn conformance of estimators finetuned from a multi-session pretrained model:
every check's data is a new session for the pretrained model (other neurons), so each check
exercises the adaptation path (tiny models, a few epochs)."""

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from nfestimators import NeuroformerPretrainer, NeuroformerRegressor
from nfestimators.data import as_windows

# as tests/test_sklearn_checks.py: sklearn's continuous features read as counts
FAST = dict(preset="tiny", max_epochs=2, lr=3e-3, batch_size=16, round_counts=True,
            random_state=0, device="cpu")


def _pretrained():
    """A pretrainer of two sessions (4 and 6 neurons) of one-bin windows, the geometry of
    sklearn's 2-D check data."""
    rng = np.random.default_rng(0)
    sessions = [as_windows(rng.poisson(1.0, (40, n))) for n in (4, 6)]
    return FrozenEstimator(NeuroformerPretrainer(**{**FAST, "max_epochs": 2}).fit(sessions))


PRETRAINED = _pretrained()
# the regressor only (the classifier shares the adaptation code; both would take a minute)
ESTIMATORS = [NeuroformerRegressor(pretrained=PRETRAINED, adapt="units", **FAST)]
UNSTABLE_HASH = ("joblib.hash of a fitted Neuroformer estimator differs between two calls "
                 "on the same object (its torch weights do not hash reproducibly), so the "
                 "check reports a change that did not happen; tests/test_multisession.py "
                 "asserts the pretrained weights are untouched by the adaptation")
POOR_SCORE = ("two epochs per phase on sklearn's toy data do not reach the check's score "
              "threshold (kept short so that this file runs in under a minute); the plain "
              "estimators pass it in tests/test_sklearn_checks.py, and the adaptation's "
              "quality is measured by benchmarks/multisession.py")
EXPECTED_FAILURES = {
    "NeuroformerRegressor": {"check_estimators_overwrite_params": UNSTABLE_HASH,
                             "check_regressors_train": POOR_SCORE},
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILURES[type(estimator).__name__]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_multisession(estimator, check):
    check(estimator)
