"""scikit-learn conformance of the three estimators (tiny models, a few epochs)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from nfestimators import NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor

# sklearn's checks feed continuous features; round_counts=True reads them as counts
# (non-negative thanks to the positive_only tag).
FAST = dict(preset="tiny", max_epochs=10, lr=3e-3, batch_size=16, round_counts=True, random_state=0,
            device="cpu")

ESTIMATORS = [
    NeuroformerPretrainer(**FAST),
    NeuroformerRegressor(**FAST),
    NeuroformerClassifier(**FAST),
]


# Checks known to fail, per estimator, as {check name: reason}. None fail today.
EXPECTED_FAILURES = {"NeuroformerPretrainer": {}, "NeuroformerRegressor": {},
                     "NeuroformerClassifier": {}}


def expected_failed_checks(estimator):
    return EXPECTED_FAILURES[type(estimator).__name__]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
