"""``count_decoder="blend"``: a converged linear decoder of the count inputs, blended into
the trained head with the weight the validation rows choose
(:func:`nfestimators.training.blend_count_decoder`)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from nfestimators import NeuroformerClassifier, NeuroformerRegressor
from nfestimators.datasets import make_code_data, make_spiking_data
from nfestimators.training import count_decoder

FAST = dict(preset="tiny", max_epochs=2, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def rate():
    data = make_code_data("rate", n_trials=240, random_state=0)
    return data.windows, data.labels


@pytest.fixture(scope="module")
def pair(rate):
    """The same fit with and without the blend (the network is trained identically)."""
    X, y = rate
    return (NeuroformerClassifier(count_decoder="blend", **FAST).fit(X[:180], y[:180]),
            NeuroformerClassifier(count_decoder="none", **FAST).fit(X[:180], y[:180]))


@pytest.mark.parametrize("classify", [True, False])
def test_decoder_fits_are_scikit_learns(classify):
    """Every (inputs, C) problem of the batched L-BFGS reaches scikit-learn's solution."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    if classify:
        y = (x @ rng.normal(size=(6, 3)) + rng.normal(size=(300, 3))).argmax(1)
        n_outputs = 3
    else:
        y = x @ rng.normal(size=(6, 2)) + rng.normal(size=(300, 2))
        n_outputs = 2
    penalties = torch.tensor([0.1, 10.0])
    target = torch.as_tensor(y, dtype=torch.long if classify else torch.float32)
    weight, bias = count_decoder._fit(torch.as_tensor(x, dtype=torch.float32), target,
                                      penalties, n_outputs, classify)
    for q, C in enumerate(penalties.tolist()):
        if classify:
            reference = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(x, y)
        else:
            reference = Ridge(alpha=1 / (2 * C)).fit(x, y)
        coef = reference.coef_.T
        if classify:  # softmax logits are defined up to a constant per row
            coef = coef - coef.mean(1, keepdims=True)
        ours = weight[q].numpy()
        ours = ours - ours.mean(1, keepdims=True) if classify else ours
        np.testing.assert_allclose(ours, coef, atol=2e-3)


def test_blend_keeps_the_network_and_adds_the_decoder(pair, rate):
    blended, plain = pair
    X, y = rate
    chosen = blended.count_decoder_
    assert set(chosen) == {"blocks", "C", "weight", "count_transform"}
    assert plain.count_decoder_ is None
    # the classifier's network trains on the binned counts: their log transform stays
    assert chosen["count_transform"] == "log" == blended.model_config_.count_transform
    assert chosen["C"] in count_decoder.PENALTIES
    assert chosen["weight"] in count_decoder.BLEND_WEIGHTS
    assert set(chosen["blocks"]) <= {"count code", "pairs", "neuron counts", "binned counts"}
    w, E = chosen["weight"], blended.model_.config.n_embd
    a, b = blended.model_.state_dict(), plain.model_.state_dict()
    for name in a:  # the network is the same; the head's pooled columns are scaled by 1 - w
        if not name.startswith("head_cls"):
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    torch.testing.assert_close(a["head_cls.weight"][:, :E], (1 - w) * b["head_cls.weight"][:, :E])
    # two epochs of a tiny network are far from the rate code; the decoder reads it
    assert w > 0
    assert blended.score(X[180:], y[180:]) > plain.score(X[180:], y[180:]) + 0.1


def test_regressor_blend_on_a_count_code():
    data = make_spiking_data(n_neurons=20, duration=60.0, random_state=1)
    X, y = data.windows, data.behavior
    n = int(0.75 * len(X))
    blended = NeuroformerRegressor(**FAST).fit(X[:n], y[:n])
    plain = NeuroformerRegressor(count_decoder="none", **FAST).fit(X[:n], y[:n])
    assert blended.count_decoder_["weight"] in count_decoder.BLEND_WEIGHTS
    assert blended.score(X[n:], y[n:]) >= plain.score(X[n:], y[n:]) - 0.02
    E = blended.model_.config.n_embd
    w = blended.count_decoder_["weight"]
    torch.testing.assert_close(blended.model_.head_reg.weight[:, :E],
                               (1 - w) * plain.model_.head_reg.weight[:, :E])


@pytest.mark.parametrize("transform", ["raw", "log"])
def test_regressor_decoder_chooses_the_count_transform_on_validation(transform, tmp_path):
    """Targets linear in the raw counts of dense windows, or in their logs: the regressor's
    count decoder (every count block decoder-only) reads the counts the way the validation
    rows favour, and the fitted model (saved and loaded too) reads them that way."""
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 1.0, size=(600, 8, 1))  # (windows, neurons, 1): dense, varied
    counts = rng.poisson(rates * np.ones((1, 1, 4)))
    total = counts.sum(2).astype(float)
    y = (total if transform == "raw" else np.log1p(total)) @ rng.normal(size=8)
    reg = NeuroformerRegressor(**FAST).fit(counts[:450], y[:450])
    assert reg.count_decoder_["count_transform"] == transform
    assert reg.model_config_.count_transform == transform == reg.model_.config.count_transform
    assert reg.count_decoder_["weight"] > 0 and reg.score(counts[450:], y[450:]) > 0.8
    assert set(reg.count_decoder_["blocks"]) & {"neuron counts", "binned counts"}
    reg.save(tmp_path / "reg.nfe")
    loaded = NeuroformerRegressor.load(tmp_path / "reg.nfe")
    assert loaded.model_.config.count_transform == transform
    np.testing.assert_allclose(loaded.predict(counts[450:]), reg.predict(counts[450:]), rtol=1e-5)


def test_blend_after_early_stopping(rate):
    """skorch's early stopping ends a fit through KeyboardInterrupt: the blend still runs
    (a user's Ctrl-C keeps the finished epoch's weights as they are,
    tests/test_bad_inputs.py)."""
    X, y = rate
    clf = NeuroformerClassifier(**{**FAST, "max_epochs": 30, "lr": 1.0, "n_iter_no_change": 1})
    clf.fit(X[:180], y[:180])
    assert clf.n_epochs_ < 30 and clf.count_decoder_ is not None


@pytest.mark.parametrize("params", [dict(readout="mean"), dict(validation_fraction=0.0),
                                    dict(count_decoder="none")])
def test_nothing_blended_without_count_inputs_or_validation_rows(params, rate):
    X, y = rate
    clf = NeuroformerClassifier(**{**FAST, "max_epochs": 1, **params}).fit(X[:80], y[:80])
    assert clf.count_decoder_ is None


def test_invalid_count_decoder_is_refused(rate):
    X, y = rate
    with pytest.raises(ValueError, match="count_decoder"):
        NeuroformerClassifier(count_decoder="yes", **FAST).fit(X[:40], y[:40])


def test_the_coincidences_are_taken_on_evidence_only():
    """A block set with the coincidences replaces the best one without them only when its
    validation loss is lower by more than the standard error of the paired difference."""
    rng = np.random.default_rng(0)
    plain = torch.as_tensor(rng.uniform(0.5, 1.5, 200), dtype=torch.float32)
    noise = torch.as_tensor(rng.normal(0, 0.3, 200), dtype=torch.float32)
    noise -= noise.mean()  # the paired difference: mean 0.01 or 0.2, standard error 0.021
    flagged = [False, True]
    slightly = torch.stack([plain, plain - 0.01 + noise])  # better on average, within noise
    assert slightly[1].mean() < slightly[0].mean()
    assert count_decoder._choose(slightly, flagged) == 0
    clearly = torch.stack([plain, plain - 0.2 + noise])
    assert count_decoder._choose(clearly, flagged) == 1
    # without flagged problems (or only flagged ones) the lowest mean loss wins
    assert count_decoder._choose(slightly, [False, False]) == 1
    assert count_decoder._choose(slightly[[1, 0]], [True, True]) == 0


def test_pair_units_are_the_most_active_units():
    rng = np.random.default_rng(0)
    rates = np.r_[np.full(50, 0.02), np.full(10, 0.0)]  # 10 silent neurons
    rates[[3, 7]] = 0.2
    counts = rng.poisson(rates[None, :, None], size=(40, 60, 20))
    y = rng.integers(2, size=40)
    clf = NeuroformerClassifier(**FAST).fit(counts, y)
    units = clf.model_config_.pair_units
    assert len(units) == 48 and list(units) == sorted(units)
    assert {3, 7} <= set(units) and not set(units) & set(range(50, 60))


@pytest.mark.parametrize("shape", [(300, 6), (30, 50)])
def test_ridge_is_exact_with_more_rows_or_more_inputs(shape):
    """The closed-form ridge (primal with more rows than inputs, dual otherwise) is
    scikit-learn's to float32 precision."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=shape), rng.normal(size=(shape[0], 2))
    penalties = torch.tensor([0.001, 1.0, 1000.0])
    weight, bias = count_decoder._fit(torch.as_tensor(x, dtype=torch.float32),
                                      torch.as_tensor(y, dtype=torch.float32), penalties, 2,
                                      classify=False)
    for q, C in enumerate(penalties.tolist()):
        reference = Ridge(alpha=1 / (2 * C)).fit(x, y)
        np.testing.assert_allclose(weight[q].numpy(), reference.coef_.T, atol=1e-4)
        np.testing.assert_allclose(bias[q].numpy(), reference.intercept_, atol=1e-4)
