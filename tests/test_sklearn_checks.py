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


def expected_failed_checks(estimator):
    return estimator._more_tags_expected_failures()


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
