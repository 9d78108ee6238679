"""GridSearchCV / RandomizedSearchCV beyond one process: joblib's dask backend on a real
local dask.distributed cluster (CPU, 2 worker processes, tiny estimators)."""

import joblib
import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

from nfestimators import NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor
from nfestimators.datasets import make_spiking_data

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

FAST = dict(preset="tiny", random_state=0, device="cpu", max_epochs=1, n_iter_no_change=None)


@pytest.fixture(scope="module")
def data():
    return make_spiking_data(n_neurons=10, duration=8.0, random_state=0)  # 160 windows


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def _on_dask(client, search, X, y):
    """Fit ``search`` through joblib's dask backend; return it and the workers that ran tasks."""
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        search.fit(X, y)
    return search, {task["worker"] for task in stream.data}


def test_grid_search_from_a_saved_pretrainer_matches_one_process(client, data, tmp_path):
    X, y = data.windows, data.behavior[:, 0]
    path = tmp_path / "pretrained.pt"  # local workers share this file system
    NeuroformerPretrainer(**FAST).fit(X).save(path)
    reg = NeuroformerRegressor(pretrained=str(path), **FAST)
    grid = {"lr": [1e-3, 1e-2]}
    local = GridSearchCV(reg, grid, cv=2).fit(X, y)
    remote, workers = _on_dask(client, GridSearchCV(reg, grid, cv=2, n_jobs=-1), X, y)
    assert workers <= set(client.scheduler_info()["workers"]) and len(workers) == 2
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=1e-4, atol=1e-6)
    assert remote.best_params_ == local.best_params_
    assert remote.best_estimator_.predict(X[:5]).shape == (5,)


def test_randomized_search_ships_a_frozen_pretrainer(client, data):
    X, labels = data.windows, data.labels
    pre = NeuroformerPretrainer(**FAST).fit(X)
    clf = NeuroformerClassifier(pretrained=FrozenEstimator(pre), **FAST)
    search = RandomizedSearchCV(clf, {"lr": [1e-3, 3e-3, 1e-2]}, n_iter=2, cv=2, n_jobs=-1,
                                random_state=0)
    search, workers = _on_dask(client, search, X, labels)
    assert workers and np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert set(search.best_estimator_.classes_) == set(np.unique(labels))
