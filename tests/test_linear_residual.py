"""linear_residual: the supervised heads correct a cross-validated linear decoder."""

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax

from nfestimators import NeuroformerClassifier, NeuroformerRegressor, SpikeWindows
from nfestimators.estimators._linear import count_features, fit_linear_readout, linear_outputs

TINY = dict(preset="tiny", max_epochs=2, random_state=0, device="cpu")


def rate_code(n=120, n_neurons=12, seed=0):
    """Labels carried by the population rate alone (class k fires at rate 1 + k)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    counts = rng.poisson((1 + labels)[:, None, None] * 0.15, size=(n, n_neurons, 10))
    return SpikeWindows.from_trials(counts, dt=0.01), labels


def test_count_features_are_log_counts_per_neuron_and_time_group():
    counts = np.zeros((2, 3, 10), dtype=int)
    counts[0, 1, 0] = 3  # neuron 1, first half of the window
    counts[1, 2, 9] = 1  # neuron 2, second half
    X = SpikeWindows.from_trials(counts, dt=0.01)
    population = count_features(X, 2, "population").toarray()
    np.testing.assert_allclose(population[:, 0], np.log1p([3, 1]))
    neurons = count_features(X, 2, "neurons").toarray()
    assert neurons.shape == (2, 1 + 3 * 2)
    np.testing.assert_allclose(neurons[0, 1 + 1 * 2 + 0], np.log1p(3))
    np.testing.assert_allclose(neurons[1, 1 + 2 * 2 + 1], np.log1p(1))
    assert np.count_nonzero(neurons) == 4


def test_training_outputs_are_out_of_fold():
    X, y = rate_code()
    readout, train_outputs = fit_linear_readout(X, y, "classification", 3, 5, random_state=0)
    assert train_outputs.shape == (len(X), 3)
    np.testing.assert_allclose(np.exp(train_outputs).sum(1), 1.0, rtol=1e-6)
    refit = linear_outputs(readout, X)
    assert not np.allclose(refit, train_outputs)  # the refit saw every row; the folds did not
    assert (np.argmax(refit, 1) == y).mean() > 0.6  # a rate code is linear in the count
    assert readout["features"] in ("population", "neurons") and readout["cv_loss"] < np.log(3)


def test_classifier_logits_are_head_plus_linear_log_probabilities():
    X, y = rate_code()
    clf = NeuroformerClassifier(**TINY).fit(X, y)
    offset = linear_outputs(clf.linear_readout_, X)
    store = clf.input_encoder_.store(X, "cpu")  # no offset: the head alone
    clf.model_.eval()
    with torch.no_grad():
        head = clf.model_(store.batch(np.arange(len(X)), targets=False),
                          token_logits=False)["class_logits"].numpy()
    np.testing.assert_allclose(clf.predict_proba(X), softmax(head + offset, axis=1),
                               rtol=1e-4, atol=1e-6)
    plain = NeuroformerClassifier(linear_residual=False, **TINY).fit(X, y)
    assert plain.linear_readout_ is None


def test_regressor_corrects_a_ridge_fit_and_saves_it(tmp_path):
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.3, size=(90, 8, 10))
    y = counts[:, :4].sum((1, 2)) + 0.1 * rng.standard_normal(90)  # linear in the counts
    X = SpikeWindows.from_trials(counts, dt=0.01)
    reg = NeuroformerRegressor(**TINY).fit(X, y)
    assert reg.linear_readout_["task"] == "regression"
    assert reg.linear_readout_["features"] == "neurons"  # 4 of 8 neurons carry y
    assert reg.score(X, y) > 0.8
    reg.save(tmp_path / "reg.pt")
    back = NeuroformerRegressor.load(tmp_path / "reg.pt")
    np.testing.assert_allclose(back.predict(X), reg.predict(X), rtol=1e-5)
    assert back.linear_readout_["penalty"] == reg.linear_readout_["penalty"]


@pytest.mark.parametrize("n", [4, 5])
def test_too_few_windows_fit_without_an_offset(n):
    X, y = rate_code(n=n)
    y = np.arange(n) % 2
    readout, outputs = fit_linear_readout(X, y, "classification", 2, 5, random_state=0)
    np.testing.assert_allclose(outputs, log_softmax(np.zeros((n, 2)), 1))  # uniform
    np.testing.assert_allclose(linear_outputs(readout, X), outputs)
