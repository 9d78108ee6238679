"""Regularisers of the supervised estimators (issue #19 part 3): spike-time jitter and neuron
dropout of the training batches, the moving average of the weights, label smoothing."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from sklearn.base import clone

from nfestimators import (NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor,
                          SpikeTokenizer)
from nfestimators.data import TokenStore
from nfestimators.datasets import make_spiking_data
from nfestimators.model import Neuroformer, make_config
from nfestimators.training import SpikeAugmenter, WeightAverage
from nfestimators.training.averaging import EMA_WARMUP

FAST = dict(preset="tiny", device="cpu", random_state=0, validation_fraction=None)
REGULARISED = dict(augment_jitter=1, augment_neuron_dropout=0.3, ema_decay=0.9)


@pytest.fixture(scope="module")
def data():
    return make_spiking_data(n_neurons=12, duration=8.0, random_state=0)  # 160 windows


@pytest.fixture(scope="module")
def store_and_config(data):
    X = data.windows
    tokens = SpikeTokenizer(max_tokens=64, max_prev_tokens=64).fit(X).transform(X)
    config = make_config("tiny", X.n_neurons, n_dt=max(X.n_bins, X.n_prev_bins) + 1,
                         block_size=64, block_size_prev=64)
    return TokenStore(tokens, "cpu"), config, X


def spikes_of(ids, dts, n_neurons):
    """Per row, the (bin, neuron) pairs of the spike tokens in block order, and whether the
    row is [SOS, spikes, EOS, PAD...]."""
    rows = []
    for row_ids, row_dts in zip(ids.tolist(), dts.tolist()):
        n = next(i for i, t in enumerate(row_ids[1:], 1) if t >= n_neurons)
        rows.append(list(zip(row_dts[1:n], row_ids[1:n])))
        assert row_ids[n] == n_neurons + 1  # EOS right after the spikes
        assert set(row_ids[n + 1:]) <= {n_neurons + 2}  # then PAD only
    return rows


def block(batch, past=False):
    """The whole current block (inputs and the last target) or the past block of a batch."""
    if past:
        return batch["id_prev"], batch["dt_prev"]
    return (torch.cat([batch["id"], batch["target_id"][:, -1:]], 1),
            torch.cat([batch["dt"], batch["target_dt"][:, -1:]], 1))


def test_jitter_keeps_every_spike_inside_the_window_in_token_order(store_and_config):
    store, config, X = store_and_config
    batch = store.batch(np.arange(64))
    augment = SpikeAugmenter(config, X.n_bins, X.n_prev_bins, jitter=2, seed=0)
    out = augment(batch)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in batch.items()}
    # the targets are still the inputs shifted by one
    torch.testing.assert_close(out["id"][:, 1:], out["target_id"][:, :-1])
    torch.testing.assert_close(out["dt"][:, 1:], out["target_dt"][:, :-1])
    moved = 0
    for past, n_bins in ((False, X.n_bins), (True, X.n_prev_bins)):
        before = spikes_of(*block(batch, past), config.n_neurons)
        after = spikes_of(*block(out, past), config.n_neurons)
        for old, new in zip(before, after):
            assert new == sorted(new)  # time-major, then neuron ascending
            assert all(0 <= b < n_bins for b, _ in new)
            assert sorted(n for _, n in old) == sorted(n for _, n in new)  # no spike lost
            # each neuron's spikes moved by at most 2 bins (compared as sorted bin lists)
            for neuron in {n for _, n in old}:
                b_old = sorted(b for b, n in old if n == neuron)
                b_new = sorted(b for b, n in new if n == neuron)
                assert max(abs(a - b) for a, b in zip(b_old, b_new)) <= 2
            moved += old != new
    assert moved > 10
    assert (out["id"][:, 0] == config.sos_id).all() and (out["dt"][:, 0] == 0).all()


def test_neuron_dropout_removes_whole_neurons_from_both_windows(store_and_config):
    store, config, X = store_and_config
    batch = store.batch(np.arange(64))
    out = SpikeAugmenter(config, X.n_bins, X.n_prev_bins, neuron_dropout=0.5, seed=1)(batch)
    n = config.n_neurons
    cur_in, cur_out = spikes_of(*block(batch), n), spikes_of(*block(out), n)
    prev_in, prev_out = spikes_of(*block(batch, True), n), spikes_of(*block(out, True), n)
    n_dropped = 0
    for rows in zip(cur_in, cur_out, prev_in, prev_out):
        c_in, c_out, p_in, p_out = rows
        kept = {nrn for _, nrn in c_out} | {nrn for _, nrn in p_out}
        # a neuron is kept whole (every spike, where it was) or not at all, in both windows
        assert c_out == [s for s in c_in if s[1] in kept]
        assert p_out == [s for s in p_in if s[1] in kept]
        n_dropped += len({nrn for _, nrn in c_in + p_in} - kept)
    assert n_dropped > 0
    assert not SpikeAugmenter(config, X.n_bins, X.n_prev_bins).active


class BatchRecorder(Callback):
    """The spike tokens of every training batch and of every model call in eval mode."""

    def on_train_begin(self, net, **kwargs):
        self.train_spikes = 0

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.train_spikes += int((batch["id"] < net.module_.config.n_neurons).sum())


def test_augmentation_changes_training_batches_not_predict(data):
    X, y = data.windows, data.labels
    recorder = BatchRecorder()
    clf = NeuroformerClassifier(max_epochs=2, augment_neuron_dropout=0.5, augment_jitter=1,
                                callbacks=[("recorder", recorder)], **FAST).fit(X, y)
    store = clf.input_encoder_.store(X, "cpu")
    spikes_per_epoch = int(store.length.sum())
    assert recorder.train_spikes < 0.75 * 2 * spikes_per_epoch  # about half the neurons left
    # predict reads the windows as they are: the model on the plain inference batches
    with torch.no_grad():
        clf.model_.eval()
        logits = clf.model_(store.batch(np.arange(len(X)), targets=False),
                            token_logits=False)["class_logits"]
    # (augmented inputs would move the probabilities by far more than this float tolerance)
    np.testing.assert_allclose(clf.predict_proba(X), torch.softmax(logits.double(), 1).numpy(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))


def test_weight_average_is_the_ema_of_the_raw_weights():
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.ones(2))]
    average = WeightAverage(params, decay=0.5)
    expected = [p.detach().clone() for p in params]
    for step in range(1, 30):
        with torch.no_grad():
            for p in params:
                p.add_(1.0)
        decay = min(0.5, (1 + step) / (EMA_WARMUP + step))
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, params)]
        average.update()
    raw = [p.detach().clone() for p in params]
    average.load_average()
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach(), e)
    average.load_raw()
    for p, r in zip(params, raw):
        torch.testing.assert_close(p.detach(), r)


class RawEMA(Callback):
    """The EMA of the raw weights, recomputed from the weights after every training step
    (the module holds the raw weights during the training pass), and the module's weights
    at every epoch end."""

    def __init__(self, decay):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.ema = {k: v.detach().clone() for k, v in net.module_.named_parameters()}
        self.steps = 0
        self.epoch_weights = []

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (EMA_WARMUP + self.steps))
        for name, p in net.module_.named_parameters():
            self.ema[name] = decay * self.ema[name] + (1 - decay) * p.detach()

    def on_epoch_end(self, net, **kwargs):
        self.epoch_weights.append({k: v.detach().clone()
                                   for k, v in net.module_.named_parameters()})


def test_ema_weights_are_what_the_fitted_model_holds(data):
    X, y = data.windows, data.behavior
    raw = NeuroformerRegressor(max_epochs=3, ema_decay=None, **FAST).fit(X, y)
    recorder = RawEMA(0.9)
    ema = NeuroformerRegressor(max_epochs=3, ema_decay=0.9, callbacks=[("ema", recorder)],
                               **FAST).fit(X, y)
    # the EMA does not change the raw trajectory: the last raw weights are the plain fit's
    raw_final = dict(raw.model_.named_parameters())
    for name, p in ema.model_.named_parameters():
        torch.testing.assert_close(p, recorder.ema[name], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(p, raw_final[name])
               for name, p in ema.model_.named_parameters())
    assert not np.allclose(ema.predict(X), raw.predict(X))


def test_the_pretrainer_keeps_the_averaged_weights_too(data):
    X = data.windows
    recorder = RawEMA(0.9)
    pre = NeuroformerPretrainer(max_epochs=2, ema_decay=0.9, callbacks=[("ema", recorder)],
                                **FAST).fit(X)
    for name, p in pre.model_.named_parameters():
        torch.testing.assert_close(p, recorder.ema[name], rtol=1e-5, atol=1e-6)
    raw = NeuroformerPretrainer(max_epochs=2, ema_decay=None, **FAST).fit(X)
    assert NeuroformerPretrainer().ema_decay == 0.99 and pre.score(X) != raw.score(X)


def test_early_stopping_restores_the_averaged_weights_of_the_best_epoch(data):
    X, y = data.windows, data.behavior
    recorder = RawEMA(0.9)
    reg = NeuroformerRegressor(max_epochs=6, ema_decay=0.9, n_iter_no_change=1,
                               callbacks=[("ema", recorder)], count_decoder="none",
                               **{**FAST, "validation_fraction": 0.2}).fit(X, y)
    best = recorder.epoch_weights[reg.best_epoch_ - 1]
    for name, p in reg.model_.named_parameters():
        torch.testing.assert_close(p, best[name])
    losses = reg.history_[:, "valid_loss"]
    assert reg.best_epoch_ == 1 + int(np.argmin(losses))


def test_label_smoothing_is_torchs():
    config = make_config("tiny", 5, n_dt=4, n_classes=3, label_smoothing=0.2)
    model = Neuroformer(config)
    logits = torch.randn(6, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    loss = model.losses({"class_logits": logits, "latents": {}}, {"y_cls": labels})
    torch.testing.assert_close(loss["classification"],
                               F.cross_entropy(logits, labels, label_smoothing=0.2))
    assert not torch.isclose(loss["classification"], F.cross_entropy(logits, labels))


def test_label_smoothing_reaches_the_classifier_loss(data):
    X, y = data.windows, data.labels
    clf = NeuroformerClassifier(max_epochs=1, label_smoothing=0.3, **FAST).fit(X, y)
    assert clf.model_config_.label_smoothing == 0.3
    plain = NeuroformerClassifier(max_epochs=1, **FAST).fit(X, y)
    assert plain.model_config_.label_smoothing == 0.0
    assert (clf.history_[-1, "train_classification"]
            != plain.history_[-1, "train_classification"])


def test_clone_and_refit_are_deterministic_with_random_state(data):
    X, y = data.windows, data.labels
    clf = NeuroformerClassifier(max_epochs=2, label_smoothing=0.1, **REGULARISED, **FAST)
    first = clf.fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(clone(clf).fit(X, y).predict_proba(X), first)
    np.testing.assert_array_equal(clf.fit(X, y).predict_proba(X), first)
    other = clone(clf).set_params(random_state=1).fit(X, y).predict_proba(X)
    assert not np.allclose(other, first)


def test_classifier_takes_the_regressors_parameters_and_label_smoothing():
    def defaults(cls):
        return {k: p.default for k, p in inspect.signature(cls).parameters.items()}

    clf, reg = defaults(NeuroformerClassifier), defaults(NeuroformerRegressor)
    assert clf.pop("label_smoothing") == 0.0
    assert clf == reg
