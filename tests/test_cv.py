"""The CV estimators: a validation search of their own, refit on all rows, sklearn citizens."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from nfestimators import (NeuroformerClassifier, NeuroformerClassifierCV, NeuroformerRegressor,
                          NeuroformerRegressorCV, SpikeWindows)
from nfestimators.datasets import make_spiking_data
from nfestimators.estimators.cv import (candidate_bin_widths, default_grid,
                                        one_standard_error_choice)

FAST = dict(preset="tiny", max_epochs=10, lr=3e-3, batch_size=16, round_counts=True,
            random_state=0, device="cpu")
GRID = {"readout": ["mean", "mean+count"]}


@parametrize_with_checks([  # cv=2 keeps the checks' many fits fast; the default is tested below
    NeuroformerClassifierCV(NeuroformerClassifier(**FAST), param_grid=GRID, cv=2, random_state=0),
    NeuroformerRegressorCV(NeuroformerRegressor(**FAST), param_grid=GRID, cv=2, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_candidate_bin_widths_divide_the_windows():
    X = SpikeWindows.from_array(np.zeros((2, 3, 500), dtype=int), dt=0.001)
    assert candidate_bin_widths(X) == [None, 0.01, 0.05]
    short = SpikeWindows.from_array(np.zeros((2, 3, 5), dtype=int), dt=0.01)
    assert candidate_bin_widths(short) == [None]  # 5 bins: nothing coarser is near 50 or 10
    odd = SpikeWindows.from_array(np.zeros((2, 3, 70), dtype=int), dt=0.001)
    assert candidate_bin_widths(odd) == [None, 0.002, 0.007]  # 35 bins of 2 ms, 10 of 7 ms
    # dt="auto" is 10 ms here, the 50-bin width: searched once, as "auto"
    assert default_grid(X) == {"dt": ["auto", None, 0.05], "sclm_weight": [1.0, 0.0]}
    coarse = SpikeWindows.from_array(np.zeros((2, 3, 50), dtype=int), dt=0.01)
    assert default_grid(coarse)["dt"] == ["auto", 0.05]  # auto: the windows' own bins
    assert default_grid("not windows")["dt"] == ["auto"]


def test_one_standard_error_rule_keeps_the_given_setting_unless_beaten():
    results = {"params": [{"a": 0}, {"a": 1}, {"a": 2}],
               "mean_test_score": np.array([0.80, 0.86, 0.90]),
               "std_test_score": np.array([0.02, 0.02, 0.09]),
               **{f"split{i}_test_score": np.zeros(3) for i in range(3)}}
    assert one_standard_error_choice(results, preferred=None) == 2
    assert one_standard_error_choice(results, preferred=1) == 1  # within 0.09 / sqrt(3)
    assert one_standard_error_choice(results, preferred=0) == 2  # 0.10 below the best
    assert one_standard_error_choice(results, preferred=2) == 2


@pytest.fixture(scope="module")
def data():
    d = make_spiking_data(n_neurons=12, duration=24.0, random_state=0)
    return d.windows, d.labels, d.behavior[:, 0]


def test_classifier_cv_searches_on_validation_rows_and_refits_on_all(data):
    X, labels, _ = data
    search = NeuroformerClassifierCV(NeuroformerClassifier(**FAST), param_grid=GRID,
                                     random_state=0).fit(X, labels)
    results = search.cv_results_
    assert search.best_params_ == results["params"][search.best_index_]
    assert len(results["params"]) == 2 and "split2_test_score" in results  # 3 folds
    best = search.best_estimator_
    assert best.readout == search.best_params_["readout"]
    assert len(best.history_) == best.n_epochs_  # the refit trained on all rows
    assert search.best_score_ == results["mean_test_score"][search.best_index_]
    # the estimator's own readout ("mean+binned") is not in GRID: the best is refitted
    assert search.best_score_ == max(results["mean_test_score"])
    own = NeuroformerClassifierCV(NeuroformerClassifier(**FAST, readout="mean"),
                                  param_grid=GRID, random_state=0).fit(X, labels)
    scores, sds = own.cv_results_["mean_test_score"], own.cv_results_["std_test_score"]
    kept = scores[0] >= scores.max() - sds[scores.argmax()] / np.sqrt(3)
    assert own.best_params_ == ({"readout": "mean"} if kept else own.cv_results_["params"][1])
    np.testing.assert_array_equal(search.classes_, np.unique(labels))
    np.testing.assert_allclose(search.predict_proba(X), best.predict_proba(X))
    assert search.score(X, labels) == best.score(X, labels)


def test_regressor_cv_validates_on_contiguous_blocks_of_windows(data):
    X, _, speed = data
    search = NeuroformerRegressorCV(NeuroformerRegressor(**FAST), param_grid=GRID)
    blocks = [valid for _, valid in search._default_cv(speed).split(X, speed)]
    assert len(blocks) == 3
    np.testing.assert_array_equal(np.concatenate(blocks), np.arange(len(X)))
    search.fit(X, speed)
    assert search.predict(X).shape == (len(X),)


def test_cv_estimators_in_pipelines_searches_clones_and_pickles(data):
    X, labels, _ = data
    search = NeuroformerClassifierCV(NeuroformerClassifier(**FAST), param_grid=GRID, cv=2,
                                     random_state=0)
    scores = cross_val_score(make_pipeline(FunctionTransformer(), search), X, labels, cv=2)
    assert scores.shape == (2,) and np.all((scores > 0.2) & (scores <= 1.0))
    outer = GridSearchCV(search, {"param_grid": [GRID, {"readout": ["mean"]}]}, cv=2).fit(X, labels)
    assert outer.best_estimator_.best_estimator_.readout in GRID["readout"]
    fitted = clone(search).fit(X, labels)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(restored.predict_proba(X), fitted.predict_proba(X))


def test_pretrained_arm_is_fitted_on_the_spikes_and_searched(data):
    X, labels, _ = data
    search = NeuroformerClassifierCV(NeuroformerClassifier(**FAST), param_grid={"readout": ["mean"]},
                                     pretrain=True, random_state=0).fit(X, labels)
    arms = search.cv_results_["params"]
    assert len(arms) == 1 + 2 and sum("pretrained" in p for p in arms) == 2
    assert search.pretrainer_.n_features_in_ == X.n_neurons
    # the pretrainer learns the bins the estimator finetunes at
    coarse = NeuroformerClassifierCV(NeuroformerClassifier(**FAST, dt=0.05),
                                     param_grid={"readout": ["mean"]}, pretrain=True,
                                     random_state=0).fit(X, labels)
    assert coarse.pretrainer_.tokenizer_.dt_ == coarse.best_estimator_.tokenizer_.dt_ == 0.05


def test_wrong_estimator_type_and_pretrain_value_are_refused(data):
    X, labels, _ = data
    with pytest.raises(TypeError, match="NeuroformerClassifier"):
        NeuroformerClassifierCV(NeuroformerRegressor()).fit(X, labels)
    with pytest.raises(ValueError, match="pretrain"):
        NeuroformerClassifierCV(NeuroformerClassifier(**FAST), pretrain="yes").fit(X, labels)
