"""The inference path (issue #16, part 2): ``predict``, ``predict_proba``, ``transform`` and
``sample`` build no training targets and compute no next-token logits; their outputs are
those of the full forward pass. ``score`` still reads the targets and the logits.

Tiny models, one epoch, a hundred windows: a few seconds on a CPU.
"""

import numpy as np
import pytest
import torch

from nfestimators import (NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor,
                          SpikeWindows)
from nfestimators.data import TokenStore
from nfestimators.datasets import make_spiking_data
from nfestimators.model import Neuroformer, build_model, eval_mode

FAST = dict(preset="tiny", random_state=0, device="cpu", max_epochs=1)
TARGET_KEYS = {"target_id", "target_dt", "y_reg", "y_cls"}


@pytest.fixture(scope="module")
def data():
    return make_spiking_data(n_neurons=12, duration=5.0, random_state=0)


@pytest.fixture(scope="module")
def X(data):
    return data.windows


@pytest.fixture(scope="module")
def y_count(X):
    return X.to_counts().sum(axis=(1, 2)).astype(float)


@pytest.fixture(scope="module")
def pre(X):
    return NeuroformerPretrainer(**FAST).fit(X)


@pytest.fixture(scope="module")
def reg(X, y_count):
    return NeuroformerRegressor(**FAST).fit(X, y_count)


@pytest.fixture(scope="module")
def clf(X, data):
    return NeuroformerClassifier(**FAST).fit(X, data.labels)


@pytest.fixture
def token_logit_calls(monkeypatch):
    """Counts the calls of ``Neuroformer.token_logits`` (which still runs)."""
    calls = []
    original = Neuroformer.token_logits

    def spy(self, *args, **kwargs):
        calls.append(args[0].shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Neuroformer, "token_logits", spy)
    return calls


def _full_path_outputs(est, X, key):
    """``key`` of the model's outputs on the training-style batches (targets, token logits),
    as every inference method computed them before the inference path."""
    model = est.model_
    store = est.input_encoder_.store(X, "cpu")
    with eval_mode(model), torch.no_grad():
        out = model(store.batch(np.arange(len(X))))
    assert "logits_id" in out  # the full path
    value = out["latents"].get("id", out["pooled"]) if key == "latent" else out[key]
    return value.float().numpy()


def test_inference_batch_is_the_training_batch_without_targets(pre, X):
    store = pre.input_encoder_.store(X[:20], "cpu", {"y_reg": np.ones((20, 1))})
    rows = np.array([3, 0, 7, 19])
    full, inputs = store.batch(rows), store.batch(rows, targets=False)
    assert {"target_id", "target_dt", "y_reg"} <= set(full) and not TARGET_KEYS & set(inputs)
    assert set(inputs) == set(full) - TARGET_KEYS
    for key, value in inputs.items():
        torch.testing.assert_close(value, full[key], rtol=0, atol=0, msg=key)


def test_forward_without_token_logits_keeps_every_other_output():
    model = build_model("tiny", n_neurons=10, n_dt=6, n_targets=2, n_classes=3,
                        n_layers_history=1).eval()
    ids, dts = torch.tensor([[10, 3, 4, 11]]), torch.tensor([[0, 2, 2, 7]])
    inputs = {"id": ids, "dt": dts, "id_prev": torch.tensor([[10, 5, 11, 12]]),
              "dt_prev": torch.tensor([[0, 1, 7, 8]])}
    targets = {"target_id": torch.tensor([[3, 4, 11, 12]]),
               "target_dt": torch.tensor([[2, 2, 7, 8]])}
    with torch.no_grad():
        full = model({**inputs, **targets})
        lean = model(inputs, token_logits=False)
    assert {"logits_id", "logits_dt"} <= set(full)
    assert set(lean) == set(full) - {"logits_id", "logits_dt"}
    for key in ("pooled", "y_reg", "class_logits"):
        torch.testing.assert_close(lean[key], full[key], rtol=0, atol=0, msg=key)


def test_transform_and_predict_skip_token_logits(pre, reg, clf, X, token_logit_calls):
    assert pre.transform(X).shape[0] == len(X)
    assert reg.predict(X).shape == (len(X),)
    assert clf.predict_proba(X).shape == (len(X), len(clf.classes_))
    assert clf.predict(X).shape == (len(X),)
    assert not token_logit_calls
    assert np.isfinite(pre.score(X))  # the likelihood needs the logits of every position
    assert token_logit_calls and all(shape[1] > 1 for shape in token_logit_calls)


def test_sample_runs_on_inference_batches(pre, X):
    generated = pre.sample(X[:3], random_state=0)
    assert len(generated) == 3 and generated.n_neurons == X.n_neurons
    assert np.all((generated.neuron >= 0) & (generated.neuron < X.n_neurons))


def test_inference_outputs_equal_the_full_forward(pre, reg, clf, X):
    np.testing.assert_allclose(pre.transform(X), _full_path_outputs(pre, X, "latent"),
                               rtol=1e-6, atol=1e-7)
    y_std = _full_path_outputs(reg, X, "y_reg")[:, 0]
    np.testing.assert_allclose(reg.predict(X), y_std * reg.y_scale_[0] + reg.y_mean_[0],
                               rtol=1e-6, atol=1e-6)
    logits = _full_path_outputs(clf, X, "class_logits")
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(logits, axis=1)])


def test_store_inference_batch_of_no_rows_is_an_error(pre, X):
    store = pre.input_encoder_.store(X[:5], "cpu")
    assert isinstance(store, TokenStore)
    with pytest.raises(ValueError, match="at least one row"):
        store.batch(np.array([], dtype=int), targets=False)


def test_inference_order_sorts_by_length_and_ignores_the_input_order():
    from nfestimators.estimators._base import inference_order

    counts = np.random.default_rng(0).poisson(0.3, (200, 6, 5))
    X = SpikeWindows.from_counts(counts.transpose(1, 0, 2).reshape(6, -1), dt=0.01,
                                 window=0.05, prev_window=0.05)
    order = inference_order(X)
    assert np.all(np.diff(X.n_spikes()[order]) >= 0)  # shortest windows first
    perm = np.random.default_rng(1).permutation(len(X))
    a, b = X[order], X[perm][inference_order(X[perm])]
    np.testing.assert_array_equal(a.to_counts(), b.to_counts())
    np.testing.assert_array_equal(a.to_counts(past=True), b.to_counts(past=True))
