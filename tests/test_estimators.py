"""Behaviour of the three estimators (issue #9): shapes, sampling, composition with sklearn
tools, persistence, reproducibility, input safety, history and early stopping.

Tiny models and a few hundred windows keep every test to a few seconds on a CPU.
"""

import copy
import pickle

import joblib
import numpy as np
import pytest
import scipy.stats
import torch
from skorch.callbacks import Callback
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

import nfestimators.estimators._base as base_module
import nfestimators.estimators._sampling as sampling_module
from nfestimators import (NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor,
                          SpikeWindows)
from nfestimators.datasets import make_code_data, make_spiking_data
from nfestimators.estimators._base import NeuroformerBase
from nfestimators.estimators._supervised import HEADS

FAST = dict(preset="tiny", random_state=0, device="cpu")
HEAD_PREFIXES = tuple(HEADS.values())



@pytest.fixture(scope="module")
def data():
    return make_spiking_data(n_neurons=20, duration=20.0, random_state=0)  # 400 windows


@pytest.fixture(scope="module")
def X(data):
    return data.windows


@pytest.fixture(scope="module")
def y_count(X):
    """A target the spikes determine: total spike count of the first 8 neurons."""
    return X.to_counts()[:, :8].sum(axis=(1, 2)).astype(float)


@pytest.fixture(scope="module")
def pre(X):
    return NeuroformerPretrainer(max_epochs=2, **FAST).fit(X)


@pytest.fixture(scope="module")
def reg(X, y_count):
    return NeuroformerRegressor(max_epochs=2, **FAST).fit(X, y_count)


@pytest.fixture(scope="module")
def clf(X, data):
    labels = np.array(["go", "nogo", "stop", "wait"])[data.labels]
    return NeuroformerClassifier(max_epochs=1, **FAST).fit(X, labels)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_backbone_equal(state, pretrained_state):
    backbone = [k for k in state if not k.startswith(HEAD_PREFIXES)]
    assert backbone and set(backbone) == set(pretrained_state)
    for k in backbone:
        torch.testing.assert_close(state[k], pretrained_state[k], rtol=0, atol=0, msg=k)


class RecordStart(Callback):
    """Records the weights every fit starts from (a class-level list: clones share it)."""

    starts = []

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        RecordStart.starts.append(_state(net.module_))


class RecordEpochs(Callback):
    """Snapshots the weights at the end of every completed epoch and after the last step."""

    def initialize(self):
        self.epoch_ends_, self.last_step_ = [], None
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self.last_step_ = _state(net.module_)

    def on_epoch_end(self, net, **kwargs):
        self.epoch_ends_.append(_state(net.module_))


# ------------------------------------------------------------------------------ pretrainer
def test_pretrainer_transform_shape_dtype_and_batching(pre, X, monkeypatch):
    Z = pre.transform(X)
    assert Z.shape == (len(X), pre.model_.config.n_embd) == (400, 32)
    assert Z.dtype == np.float32 and np.all(np.isfinite(Z))
    assert len(X) > max(pre.batch_size, 256)  # several inference batches
    # rows do not depend on the batch they were computed in
    for i in (0, 257, 399):
        np.testing.assert_allclose(pre.transform(X[[i]])[0], Z[i], rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(base_module, "_INFERENCE_CHUNK", 7)  # many tokenizer chunks
    np.testing.assert_allclose(pre.transform(X), Z, rtol=1e-5, atol=1e-5)


def test_pretrainer_score_bits_per_spike(pre, X):
    score = pre.score(X)
    assert isinstance(score, float) and np.isfinite(score)
    assert pre.score(X[:100]) != score  # depends on the data


def test_pretrainer_score_of_silent_heads_with_the_rate_prior_is_zero(pre, X):
    """With zero token heads a rate-prior model is the score's baseline: 0 bits per spike
    on its training windows (same rates, same floor)."""
    silent = copy.deepcopy(pre)
    silent.model_.head_id.weight.data.zero_()
    silent.model_.head_dt.weight.data.zero_()
    assert abs(silent.score(X)) < 1e-5


def test_pretrainer_score_of_a_uniform_model_matches_an_independent_computation(X):
    """Without the rate prior, with zero token heads, the model spreads each next dt
    uniformly over what may follow (the current dt or a later one, or EOS) and each next
    neuron uniformly over what may follow in its bin (every neuron in a new bin, the current
    one or a higher one in the same bin), so its log-likelihood is known; the baseline's is
    that of independent Poisson counts."""
    pre = NeuroformerPretrainer(rate_prior=False, **FAST).fit(X)
    uniform = copy.deepcopy(pre)
    uniform.model_.head_id.weight.data.zero_()
    uniform.model_.head_dt.weight.data.zero_()
    n_dt = uniform.model_.config.n_dt
    counts = X.to_counts()  # (n_samples, n_neurons, n_bins)
    assert counts.sum(axis=(1, 2)).max() < uniform.tokenizer_.max_tokens  # no spike dropped
    model_ll = 0.0
    for w in range(len(X)):
        events = zip(X.bin[X.offsets[w]:X.offsets[w + 1]], X.neuron[X.offsets[w]:X.offsets[w + 1]])
        bin_now, neuron_now = 0, None  # after SOS: dt 0, no neuron yet
        for b, n in events:
            model_ll -= np.log(n_dt - bin_now + 1)  # values bin_now..n_dt-1, and EOS
            same_bin = neuron_now is not None and b == bin_now
            model_ll -= np.log(X.n_neurons - (neuron_now if same_bin else 0))
            bin_now, neuron_now = b, n
        model_ll -= np.log(n_dt - bin_now + 1)  # EOS (its id then follows with certainty)
    n_spikes = counts.sum()
    rates = np.maximum(pre.baseline_rates_, 1.0 / (2 * len(X) * X.n_bins + 1))
    baseline_ll = scipy.stats.poisson.logpmf(counts, rates[None, :, None]).sum()
    expected = (model_ll - baseline_ll) / (n_spikes * np.log(2))
    np.testing.assert_allclose(uniform.score(X), expected, rtol=1e-6)


def test_inference_computes_no_loss(pre, reg, clf, X, monkeypatch):
    def no_loss(*args, **kwargs):
        raise AssertionError("a loss was computed at inference")

    monkeypatch.setattr(type(pre.model_), "losses", no_loss)
    with pytest.raises(AssertionError, match="at inference"):  # the spy is in place
        pre.model_.losses({}, {})
    assert pre.transform(X[:10]).shape[0] == reg.predict(X[:10]).shape[0] == 10
    assert np.isfinite(pre.score(X[:10])) and len(pre.sample(X[:3], random_state=0)) == 3
    assert clf.predict_proba(X[:10]).shape == (10, len(clf.classes_))


def _check_sampled(gen, X):
    assert isinstance(gen, SpikeWindows)
    assert len(gen) == len(X) and gen.shape == X.shape
    assert (gen.n_neurons, gen.dt, gen.n_bins, gen.n_prev_bins) == (
        X.n_neurons, X.dt, X.n_bins, X.n_prev_bins)
    for name in ("window_end", "trial", "prev_neuron", "prev_bin", "prev_offsets"):
        np.testing.assert_array_equal(getattr(gen, name), getattr(X, name), err_msg=name)
    assert gen.behavior_names == X.behavior_names
    assert np.all((gen.neuron >= 0) & (gen.neuron < X.n_neurons))
    assert np.all((gen.bin >= 0) & (gen.bin < X.n_bins))


def test_sample_true_past(pre, X):
    Xs = X[:120]
    gen = pre.sample(Xs, random_state=0)
    _check_sampled(gen, Xs)
    assert gen.n_spikes().sum() > 0
    again = pre.sample(Xs, random_state=0)
    np.testing.assert_array_equal(again.neuron, gen.neuron)
    np.testing.assert_array_equal(again.bin, gen.bin)
    np.testing.assert_array_equal(again.offsets, gen.offsets)
    # batch_size does not change the result (each window has its own draws)
    batched = pre.sample(Xs, random_state=0, batch_size=7)
    np.testing.assert_array_equal(batched.to_counts(), gen.to_counts())
    other = pre.sample(Xs, random_state=1)
    assert not np.array_equal(other.to_counts(), gen.to_counts())
    # hot, unfiltered draws still only give real neurons and bins inside the window
    _check_sampled(pre.sample(Xs, temperature=10.0, random_state=0), Xs)
    with pytest.raises(ValueError, match="past"):
        pre.sample(Xs, past="model")


@pytest.fixture(scope="module")
def short_trials():
    """Trials of 5 back-to-back windows, high rates so that greedy decoding emits spikes."""
    d = make_spiking_data(n_neurons=12, duration=10.0, trial_duration=0.25, mean_rate=20.0,
                          random_state=1)
    return d.windows


@pytest.fixture(scope="module")
def pre_short(short_trials):
    return NeuroformerPretrainer(max_epochs=1, **FAST).fit(short_trials)


def test_sample_generated_past_first_windows_match_true_past(pre_short, short_trials):
    Xs = short_trials[short_trials.trial < 6]  # 6 trials x 5 windows
    first = np.r_[True, Xs.trial[1:] != Xs.trial[:-1]]
    assert first.sum() == 6
    true = pre_short.sample(Xs, past="true", greedy=True)
    closed = pre_short.sample(Xs, past="generated", greedy=True)
    _check_sampled(closed, Xs)
    assert true.n_spikes()[first].sum() > 0  # not trivially empty
    # the first window of each trial keeps its recorded past: same context, same tokens
    np.testing.assert_array_equal(closed.to_counts()[first], true.to_counts()[first])
    # sampled closed loop differs from sampled true past, and is reproducible
    a = pre_short.sample(Xs, past="generated", random_state=0)
    _check_sampled(a, Xs)
    b = pre_short.sample(Xs, past="generated", random_state=0)
    np.testing.assert_array_equal(a.to_counts(), b.to_counts())
    assert not np.array_equal(a.to_counts(), pre_short.sample(Xs, random_state=0).to_counts())
    # windows in any order: generated in time order, returned in the input order
    perm = np.random.default_rng(0).permutation(len(Xs))
    shuffled = pre_short.sample(Xs[perm], past="generated", random_state=0)
    np.testing.assert_array_equal(shuffled.to_counts(), a.to_counts()[perm])
    # trials of different lengths
    uneven = Xs[[0, 1, 2, 5, 6, 10]]
    closed = pre_short.sample(uneven, past="generated", greedy=True)
    _check_sampled(closed, uneven)
    np.testing.assert_array_equal(closed.to_counts()[[0, 3, 5]], true.to_counts()[[0, 5, 10]])


def test_sample_generated_past_feeds_back_model_output(pre_short, short_trials, monkeypatch):
    """Every later window's past block is the tokenization of the model's previous window."""
    Xs = short_trials[short_trials.trial < 4]  # 4 trials x 5 windows, in time order
    calls = []
    real = sampling_module.generate_tokens

    def spy(model, batch, **kwargs):
        calls.append({k: batch[k].cpu().numpy().copy() for k in ("id_prev", "dt_prev")})
        return real(model, batch, **kwargs)

    monkeypatch.setattr(sampling_module, "generate_tokens", spy)
    gen = pre_short.sample(Xs, past="generated", random_state=0)
    assert len(calls) == 5  # one call per time step, all trials together
    n_neurons = Xs.n_neurons
    cap = pre_short.model_.config.block_size_prev - 2
    starts = np.flatnonzero(np.r_[True, Xs.trial[1:] != Xs.trial[:-1]])
    fed_back = 0
    for k, call in enumerate(calls):
        for r, start in enumerate(starts):
            ids, dts = call["id_prev"][r], call["dt_prev"][r]
            events = sorted(zip(dts[ids < n_neurons].tolist(), ids[ids < n_neurons].tolist()))
            if k == 0:  # the recorded past
                window = Xs[[start]]
                expected = sorted(zip(window.prev_bin.tolist(), window.prev_neuron.tolist()))
            else:  # what the model generated for the previous window of the trial
                window = gen[[start + k - 1]]
                expected = sorted(zip(window.bin.tolist(), window.neuron.tolist()))
            expected = expected[len(expected) - min(len(expected), cap):]
            assert events == expected, (k, r)
            fed_back += bool(k and expected)
    assert fed_back > 0  # some generated spikes did become a past window


def test_sample_generated_past_rejects_overlapping_windows(pre, data):
    trial = np.repeat(np.arange(10), 200)
    overlapping = SpikeWindows.from_counts(data.counts, dt=0.01, window=0.05, prev_window=0.05,
                                           stride=0.02, trial=trial)
    pre.sample(overlapping[:20], random_state=0)  # fine with the recorded past
    with pytest.raises(ValueError, match="back-to-back"):
        pre.sample(overlapping, past="generated", random_state=0)


# ------------------------------------------------------------------------ supervised
def test_regressor_output_dims(reg, X, y_count, data):
    p = reg.predict(X)
    assert p.shape == (len(X),) and p.dtype == np.float64
    reg2 = NeuroformerRegressor(max_epochs=1, **FAST)
    assert reg2.fit(X, y_count[:, None]).predict(X).shape == (len(X), 1)
    assert reg2.fit(X, data.behavior).predict(X).shape == (len(X), 3)


def test_regressor_learns_spike_count(X, y_count):
    train, test = np.arange(300), np.arange(300, 400)
    reg = NeuroformerRegressor(max_epochs=8, lr=3e-3, n_iter_no_change=None, **FAST)
    reg.fit(X[train], y_count[train])
    assert r2_score(y_count[train], reg.predict(X[train])) > 0.5
    assert reg.score(X[test], y_count[test]) > 0.4


def test_classifier_labels_and_probabilities(clf, X, data):
    labels = np.array(["go", "nogo", "stop", "wait"])[data.labels]
    np.testing.assert_array_equal(clf.classes_, ["go", "nogo", "stop", "wait"])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    pred = clf.predict(X)
    assert pred.shape == (len(X),) and pred.dtype.kind == "U"
    assert set(pred) <= set(clf.classes_)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, labels) == np.mean(pred == labels)  # accuracy
    # integer labels give integer predictions, unsorted input gives sorted classes_
    ints = NeuroformerClassifier(max_epochs=1, **FAST).fit(X[:100], 10 - data.labels[:100] * 3)
    assert ints.predict(X[:5]).dtype.kind == "i"
    assert list(ints.classes_) == sorted(set(10 - data.labels[:100] * 3))


def test_classifier_invalid_labels(clf, X, data):
    labels = np.array(["go", "nogo", "stop", "wait"])[data.labels]
    unseen = labels.copy()
    unseen[:3] = "jump"
    with pytest.raises(ValueError, match="not seen in fit"):
        clf.score(X, unseen)
    with pytest.raises(ValueError, match="1 class"):
        NeuroformerClassifier(max_epochs=1, **FAST).fit(X[:20], ["go"] * 20)
    y_nan = data.labels[:20].astype(float)
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NeuroformerClassifier(max_epochs=1, **FAST).fit(X[:20], y_nan)


def test_regressor_rejects_nan_y(X, y_count):
    y = y_count[:20].copy()
    y[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NeuroformerRegressor(max_epochs=1, **FAST).fit(X[:20], y)


def test_wrong_neuron_count_and_1d_X(pre, reg, clf, X):
    other = make_spiking_data(n_neurons=7, duration=2.0, random_state=0).windows
    for est in (pre, reg, clf):
        method = est.transform if est is pre else est.predict
        with pytest.raises(ValueError, match="features"):
            method(other)
        with pytest.raises(ValueError, match="features"):
            method(X.to_counts()[:, :7])
        with pytest.raises(ValueError):
            method(np.zeros(20))
    with pytest.raises(ValueError):
        NeuroformerRegressor(max_epochs=1, **FAST).fit(np.zeros(20), np.zeros(20))
    with pytest.raises(ValueError):
        NeuroformerPretrainer(max_epochs=1, **FAST).fit(np.zeros(20))


# ----------------------------------------------------------------------- composition
def test_pipeline_cross_val_score(X, data):
    pipe = make_pipeline(NeuroformerPretrainer(max_epochs=1, **FAST),
                         LogisticRegression(max_iter=200))
    scores = cross_val_score(pipe, X, data.labels, cv=3)
    # the same as fitting a fresh pipeline on every stratified fold by hand
    by_hand = [clone(pipe).fit(X[train], data.labels[train]).score(X[test], data.labels[test])
               for train, test in StratifiedKFold(3).split(np.zeros(len(X)), data.labels)]
    np.testing.assert_allclose(scores, by_hand)


def test_grid_search_every_fold_starts_from_pretrained(pre, X, y_count):
    before = _state(pre.model_)
    RecordStart.starts = []
    reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), max_epochs=1,
                               n_iter_no_change=None, callbacks=[("start", RecordStart())], **FAST)
    search = GridSearchCV(reg, {"lr": [1e-3, 3e-3], "freeze": ["none", "backbone"]}, cv=2)
    search.fit(X, y_count)
    assert len(RecordStart.starts) == 2 * 2 * 2 + 1  # every fold of every candidate + refit
    for start in RecordStart.starts:
        _assert_backbone_equal(start, before)
    # finetuning left the pretrainer alone, and the refit model came from it
    _assert_backbone_equal(_state(pre.model_), before)
    assert search.best_estimator_.pretrained.estimator is pre
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_freeze_backbone_trains_the_head_only(pre, X, y_count):
    reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), freeze="backbone",
                               max_epochs=2, lr=1e-2, **FAST).fit(X, y_count)
    after = _state(reg.model_)
    _assert_backbone_equal(after, _state(pre.model_))
    # the head did train: a fresh one from the same seed differs
    RecordStart.starts = []
    NeuroformerRegressor(pretrained=FrozenEstimator(pre), freeze="backbone", max_epochs=1,
                         callbacks=[("start", RecordStart())], **FAST).fit(X[:50], y_count[:50])
    head = [k for k in after if k.startswith(HEAD_PREFIXES)]
    assert head and any(not torch.equal(after[k], RecordStart.starts[0][k]) for k in head)


def test_pretrained_from_path(pre, X, y_count, tmp_path):
    path = tmp_path / "pre.pt"
    pre.save(path)
    for source in (str(path), path):
        RecordStart.starts = []
        reg = NeuroformerRegressor(pretrained=source, max_epochs=1,
                                   callbacks=[("start", RecordStart())], **FAST)
        reg.fit(X[:100], y_count[:100])
        assert len(RecordStart.starts) == 1
        _assert_backbone_equal(RecordStart.starts[0], _state(pre.model_))
        assert clone(reg).get_params()["pretrained"] == source


def test_pretrained_errors(pre, X, y_count):
    other = make_spiking_data(n_neurons=7, duration=2.0, random_state=0)
    y = other.windows.to_counts().sum(axis=(1, 2)).astype(float)
    # other neurons are another session: learnt as a new one (tests/test_multisession.py)
    adapted = NeuroformerRegressor(pretrained=FrozenEstimator(pre), max_epochs=1, **FAST).fit(
        other.windows, y)
    assert adapted.sessions_ == (0, 1)
    with pytest.raises(ValueError, match="pretrained"):
        NeuroformerRegressor(freeze="backbone", max_epochs=1, **FAST).fit(X[:20], y_count[:20])
    with pytest.raises(ValueError, match="freeze"):
        NeuroformerRegressor(freeze="head", max_epochs=1, **FAST).fit(X[:20], y_count[:20])
    with pytest.raises(NotFittedError):
        NeuroformerRegressor(pretrained=FrozenEstimator(NeuroformerPretrainer()),
                             max_epochs=1, **FAST).fit(X[:20], y_count[:20])


def test_clone_keeps_parameters_drops_fitted_state(pre, reg):
    frozen = FrozenEstimator(pre)
    fitted = NeuroformerRegressor(pretrained=frozen, freeze="backbone", lr=5e-4, **FAST)
    fitted.model_ = reg.model_  # pretend it was fitted
    for est in (pre, reg, fitted):
        c = clone(est)
        assert type(c) is type(est)
        params, cparams = est.get_params(deep=False), c.get_params(deep=False)
        assert params.keys() == cparams.keys()
        for k, v in params.items():
            assert cparams[k] is v or cparams[k] == v, k
        assert not any(k.endswith("_") for k in vars(c)), vars(c).keys()
        with pytest.raises(NotFittedError):
            check_is_fitted(c)
    assert clone(fitted).pretrained is frozen  # FrozenEstimator survives clone as is


# ----------------------------------------------------------------------- persistence
def _outputs(est, X):
    if isinstance(est, NeuroformerPretrainer):
        return est.transform(X[:50])
    if isinstance(est, NeuroformerClassifier):
        return est.predict_proba(X[:50])
    return est.predict(X[:50])


@pytest.mark.parametrize("kind", ["pre", "reg", "clf"])
def test_pickle_and_joblib_round_trip(kind, request, X, tmp_path):
    est = request.getfixturevalue(kind)
    expected = _outputs(est, X)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(_outputs(back, X), expected)
    joblib.dump(est, tmp_path / "est.joblib")
    back = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(_outputs(back, X), expected)
    assert back.get_params() == est.get_params()
    # the original still works (pickling did not move or strip its model)
    np.testing.assert_array_equal(_outputs(est, X), expected)


@pytest.mark.parametrize("kind", ["pre", "reg", "clf"])
def test_save_load_round_trip(kind, request, X, tmp_path):
    est = request.getfixturevalue(kind)
    path = tmp_path / f"{kind}.pt"
    est.save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["class"] == type(est).__name__ and payload["version"] >= 1
    expected = _outputs(est, X)
    for loader in (type(est), NeuroformerBase):
        back = loader.load(path)
        assert type(back) is type(est)
        assert back.get_params() == est.get_params()
        assert back.n_features_in_ == est.n_features_in_ and back.n_epochs_ == est.n_epochs_
        assert back.model_config_ == est.model_config_
        assert back.history_[:, "train_loss"] == est.history_[:, "train_loss"]
        np.testing.assert_array_equal(_outputs(back, X), expected)
    if kind == "clf":
        np.testing.assert_array_equal(back.classes_, est.classes_)
        np.testing.assert_array_equal(back.predict(X[:50]), est.predict(X[:50]))
    if kind == "pre":
        assert back.score(X[:50]) == est.score(X[:50])
        np.testing.assert_array_equal(back.sample(X[:20], random_state=0).to_counts(),
                                      est.sample(X[:20], random_state=0).to_counts())
    wrong = NeuroformerRegressor if kind != "reg" else NeuroformerClassifier
    with pytest.raises(ValueError, match="not a"):
        wrong.load(path)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        NeuroformerPretrainer.load(tmp_path / "missing.pt")
    tensors = tmp_path / "tensors.pt"
    torch.save({"weight": torch.zeros(3)}, tensors)
    with pytest.raises(ValueError, match="not an nfestimators file"):
        NeuroformerBase.load(tensors)
    module = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), module)  # not loadable with weights_only=True
    with pytest.raises(ValueError, match="not an nfestimators file"):
        NeuroformerRegressor.load(module)
    for name, content in (("notes.txt", "hello"), ("empty.pt", "")):
        (tmp_path / name).write_text(content)
        with pytest.raises(ValueError, match="not an nfestimators file"):
            NeuroformerBase.load(tmp_path / name)


def _assert_same_predictions(actual, expected):
    """Equal on the CPU; on a GPU (bf16 autocast) equal to the precision of bf16."""
    if torch.cuda.is_available():
        np.testing.assert_allclose(actual, expected, rtol=0.02, atol=0.02 * np.std(expected))
    else:
        np.testing.assert_array_equal(actual, expected)


def test_gpu_trained_model_loads_and_predicts_on_cpu(reg, X, y_count, tmp_path):
    expected = reg.predict(X[:50])
    gpu = copy.deepcopy(reg)
    gpu.device, gpu.device_ = "cuda", "cuda"
    if not torch.cuda.is_available():
        assert gpu._model_to_inference_device() == "cpu"
        with pytest.raises(ValueError, match="CUDA"):  # training does not fall back silently
            clone(gpu).fit(X[:20], y_count[:20])
    for back in (pickle.loads(pickle.dumps(gpu)), joblib.load(_dump(gpu, tmp_path))):
        assert back.device == "cuda"
        _assert_same_predictions(back.predict(X[:50]), expected)
        assert next(back.model_.parameters()).device.type == (
            "cuda" if torch.cuda.is_available() else "cpu")
    gpu.save(tmp_path / "gpu.pt")
    back = NeuroformerRegressor.load(tmp_path / "gpu.pt")
    if not torch.cuda.is_available():
        assert back.device_ == "cpu"
    _assert_same_predictions(back.predict(X[:50]), expected)


def _dump(est, tmp_path):
    path = tmp_path / "gpu.joblib"
    joblib.dump(est, path)
    return path


# -------------------------------------------------------------------- reproducibility
def test_fit_is_reproducible_and_leaves_global_rngs_alone(X, y_count):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    reg = NeuroformerRegressor(max_epochs=2, dropout=0.1, **FAST)
    first = reg.fit(X[:150], y_count[:150]).predict(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    second = reg.fit(X[:150], y_count[:150]).predict(X)
    np.testing.assert_array_equal(first, second)
    third = clone(reg).fit(X[:150], y_count[:150]).predict(X)
    np.testing.assert_array_equal(first, third)
    pre = NeuroformerPretrainer(max_epochs=1, dropout=0.1, **FAST)
    Z = pre.fit(X[:150]).transform(X)
    pre.sample(X[:10], random_state=0)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(pre.fit(X[:150]).transform(X), Z)


def _snapshot(X):
    names = ["neuron", "bin", "offsets", "prev_neuron", "prev_bin", "prev_offsets",
             "window_end", "trial"]
    if X.behavior is not None:
        names.append("behavior")
    return {n: getattr(X, n).copy() for n in names}


def test_inputs_are_not_modified(X, y_count, data):
    Xb = X[:120].with_behavior(data.behavior[:120], names=data.behavior_names)
    snap = _snapshot(Xb)
    y2 = data.behavior[:120].copy()
    y2_orig = y2.copy()
    labels = data.labels[:120].copy()
    labels_orig = labels.copy()
    pre = NeuroformerPretrainer(max_epochs=1, behavior_inputs=["speed"], **FAST).fit(Xb)
    pre.transform(Xb), pre.score(Xb), pre.sample(Xb[:10], random_state=0)
    NeuroformerRegressor(pretrained=FrozenEstimator(pre), max_epochs=1, **FAST).fit(
        Xb, y2).predict(Xb)
    NeuroformerClassifier(max_epochs=1, **FAST).fit(Xb, labels).predict(Xb)
    for name, values in snap.items():
        np.testing.assert_array_equal(getattr(Xb, name), values, err_msg=name)
    np.testing.assert_array_equal(y2, y2_orig)
    np.testing.assert_array_equal(labels, labels_orig)
    # dense count arrays (and float ones rounded by round_counts)
    dense = X[:60].to_counts()
    dense_orig = dense.copy()
    y = y_count[:60].copy()
    reg = NeuroformerRegressor(max_epochs=1, **FAST).fit(dense, y)
    reg.predict(dense)
    np.testing.assert_array_equal(dense, dense_orig)
    np.testing.assert_array_equal(y, y_count[:60])
    noisy = dense + 0.2
    noisy_orig = noisy.copy()
    NeuroformerPretrainer(max_epochs=1, round_counts=True, **FAST).fit(noisy).transform(noisy)
    np.testing.assert_array_equal(noisy, noisy_orig)


# ------------------------------------------------------------ history, early stopping, verbose
def test_history_records_every_loss(reg, pre):
    assert reg.n_epochs_ == len(reg.history_) == 2
    for row in reg.history_:
        for key in ("train_loss", "valid_loss", "train_regression", "valid_regression",
                    "train_id", "train_dt"):
            assert np.isfinite(row[key]), key
    for key in ("train_loss", "valid_loss", "train_id", "train_dt", "valid_id", "valid_dt"):
        assert len(pre.history_[:, key]) == pre.n_epochs_ == 2, key
    # without validation there is no valid_loss
    counts = np.random.default_rng(0).poisson(0.3, size=(30, 20, 5))
    reg2 = NeuroformerRegressor(max_epochs=1, validation_fraction=None, **FAST)
    reg2.fit(counts, np.arange(30.0))
    assert "valid_loss" not in reg2.history_[-1] and np.isfinite(reg2.history_[-1]["train_loss"])


def test_classifier_history_has_classification_loss(clf):
    row = clf.history_[-1]
    assert np.isfinite(row["train_classification"]) and np.isfinite(row["valid_classification"])


def test_early_stopping_restores_best_weights(X, y_count):
    epochs = RecordEpochs()
    # lr=1.0 makes the validation loss go up soon; without the rate prior, whose spike
    # loss starts at the Poisson model's and keeps improving longer, it does within 20 epochs;
    # no count decoder blended into the head after training (tests/test_count_decoder.py)
    reg = NeuroformerRegressor(max_epochs=20, lr=1.0, n_iter_no_change=1, rate_prior=False,
                               count_decoder="none", callbacks=[("epochs", epochs)],
                               **FAST).fit(X[:200], y_count[:200])
    assert reg.n_epochs_ < 20
    valid = reg.history_[:, "valid_loss"]
    best = int(np.argmin(valid))
    assert best < reg.n_epochs_ - 1  # the last epoch was worse: weights must be rolled back
    assert reg.best_epoch_ == best + 1  # epochs count from 1
    final = _state(reg.model_)
    assert not all(torch.equal(final[k], v) for k, v in epochs.last_step_.items())
    for k, v in epochs.epoch_ends_[best].items():
        torch.testing.assert_close(final[k], v, rtol=0, atol=0, msg=k)


class FakeBar:
    """Stands in for tqdm: records what the progress bar was told."""

    bars = []

    def __init__(self, total=None, desc=None, **kwargs):
        self.total, self.desc, self.updates, self.postfix = total, desc, 0, None
        FakeBar.bars.append(self)

    def set_postfix(self, shown, refresh=True):
        self.postfix = shown

    def update(self, n=1):
        self.updates += n

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_verbose_shows_progress_bar(X, y_count, monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    FakeBar.bars = []
    reg = NeuroformerRegressor(max_epochs=2, verbose=1, **FAST).fit(X[:60], y_count[:60])
    (bar,) = FakeBar.bars
    assert (bar.desc, bar.total, bar.updates) == ("NeuroformerRegressor", 2, reg.n_epochs_)
    assert bar.postfix == {k: f"{reg.history_[-1][k]:.4f}" for k in ("train_loss", "valid_loss")}
    reg.predict(X[:70])  # a bar over the windows of an inference pass
    assert (FakeBar.bars[-1].total, FakeBar.bars[-1].updates) == (70, 70)
    pre = NeuroformerPretrainer(max_epochs=1, **FAST).fit(X[:60])
    pre.set_params(verbose=1).sample(X[:12], random_state=0)  # and over the generated windows
    assert (FakeBar.bars[-1].desc, FakeBar.bars[-1].updates) == ("NeuroformerPretrainer.sample", 12)
    quiet = NeuroformerRegressor(max_epochs=1, verbose=0, **FAST).fit(X[:60], y_count[:60])
    quiet.predict(X[:70])
    assert len(FakeBar.bars) == 3  # no bar without verbose


# ----------------------------------------------------------------------------- time bins
def test_dt_rebins_every_X_the_estimator_sees(X, y_count):
    reg = NeuroformerRegressor(dt=0.05, max_epochs=1, **FAST).fit(X[:120], y_count[:120])
    assert reg.tokenizer_.dt_ == 0.05 and reg.tokenizer_.n_bins_ == 1
    coarse = X[:40].rebin(0.05)
    np.testing.assert_array_equal(reg.predict(X[:40]), reg.predict(coarse))
    search = GridSearchCV(NeuroformerRegressor(max_epochs=1, **FAST), {"dt": [None, 0.05]},
                          cv=2).fit(X[:120], y_count[:120])
    assert [p["dt"] for p in search.cv_results_["params"]] == [None, 0.05]
    assert search.best_estimator_.tokenizer_.dt_ == (search.best_params_["dt"] or X.dt)


def test_auto_dt_keeps_10_ms_bins_in_long_windows():
    """dt="auto" is the 50-bin width in short windows and never coarser than 10 ms in long
    ones (a fiftieth of a 2 s trial, 40 ms, erased a latency code on the GPU suite)."""
    data = make_code_data("latency", n_trials=24, n_neurons=8, window=2.0, random_state=0)
    clf = NeuroformerClassifier(max_epochs=1, **FAST).fit(data.windows, data.labels)
    assert clf.tokenizer_.dt_ == 0.01 and clf.tokenizer_.n_bins_ == 200
    short = make_code_data("latency", n_trials=24, n_neurons=8, window=0.25, n_classes=2,
                           random_state=0)
    clf = NeuroformerClassifier(max_epochs=1, **FAST).fit(short.windows, short.labels)
    assert clf.tokenizer_.dt_ == 0.005 and clf.tokenizer_.n_bins_ == 50
    counts = data.windows.to_counts()  # a plain array of 2,000 bins: read as 10 ms ones
    clf = NeuroformerClassifier(max_epochs=1, **FAST).fit(counts, data.labels)
    assert clf.tokenizer_.n_bins_ == 50  # the 50-bin rule: no time base to floor at 10 ms


# ------------------------------------------------------------------------ the parameters
@pytest.mark.parametrize("cls", [NeuroformerPretrainer, NeuroformerRegressor,
                                 NeuroformerClassifier])
def test_every_parameter_is_constrained_and_documented(cls):
    names = set(cls().get_params(deep=False))
    assert set(cls._parameter_constraints) == names
    for name in names:
        assert f"\n    {name} : " in cls.__doc__, name


def test_classifier_validation_split_keeps_every_class_in_training():
    from nfestimators.estimators._training import validation_split

    labels = np.array([0] * 50 + [1] * 8 + [2] * 2)
    rows = np.random.default_rng(0).permutation(len(labels))
    valid, train = validation_split(rows, 0.5, labels)
    assert sorted(np.concatenate([valid, train])) == list(range(len(labels)))
    assert np.bincount(labels[valid]).tolist() == [25, 4, 1]
    assert set(labels[train]) == {0, 1, 2}
    valid, train = validation_split(rows, 0.1, None)  # unstratified: the first 10 %
    np.testing.assert_array_equal(valid, rows[:6])


def test_compat_switches_reach_the_model(X):
    pre = NeuroformerPretrainer(compat=("attend_pad", "pool_pad"), max_epochs=1, **FAST).fit(X[:60])
    config = pre.model_config_
    assert config.compat_attend_pad and config.compat_pool_pad
    assert not (config.compat_drop_frame_pe or config.compat_clip_final_layer)
    assert not NeuroformerPretrainer(max_epochs=1, **FAST).fit(X[:60]).model_config_.compat_pool_pad
