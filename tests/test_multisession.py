"""Multi-session pretraining and new-session adaptation (tiny models)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

from nfestimators import NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor
from nfestimators import SpikeWindows
from nfestimators.datasets import make_multisession_data
from nfestimators.model import UNIT_TABLES
from nfestimators.training import TokenBatches

FAST = dict(preset="tiny", max_epochs=1, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_multisession_data(n_sessions=3, n_neurons=(6, 14), duration=8.0,
                                  random_state=0)


@pytest.fixture(scope="module")
def pre(data):
    """Pretrained on the first two sessions (list input: keys 0 and 1)."""
    return NeuroformerPretrainer(**FAST).fit(data.sessions[:2])


def keyed(X, key):
    return SpikeWindows.from_sessions([X], keys=[key])


# ----------------------------------------------------------------------------- container
def test_from_sessions_keeps_every_session_and_splits_back(data):
    X = data.windows
    assert X.sessions == data.session_keys
    assert X.session_n_neurons == tuple(x.n_neurons for x in data.sessions)
    assert X.n_neurons == max(X.session_n_neurons) and len(X) == sum(map(len, data.sessions))
    for (key, part), original in zip(X.split_sessions().items(), data.sessions):
        assert part.n_neurons == original.n_neurons and part.session is None
        np.testing.assert_array_equal(part.to_counts(), original.to_counts())
    # trials stay distinct across sessions; slicing keeps the session table
    first, second = (X.trial[X.session == s] for s in (0, 1))
    assert not set(first) & set(second)
    sub = X[np.flatnonzero(X.session == 1)[:5]]
    assert sub.sessions == X.sessions and set(sub.session) == {1}


def test_session_ids_are_checked_per_session(data):
    X = data.windows
    neuron = X.neuron.copy()
    first_of_smallest = np.flatnonzero(np.repeat(X.session, X.n_spikes())
                                       == int(np.argmin(X.session_n_neurons)))[0]
    neuron[first_of_smallest] = X.n_neurons - 1
    with pytest.raises(ValueError, match="session's number of neurons"):
        X._replace(neuron=neuron)


# ---------------------------------------------------------------------------- pretraining
def test_pretraining_on_a_list_of_sessions(data, pre):
    assert pre.sessions_ == (0, 1)
    sizes = [x.n_neurons for x in data.sessions[:2]]
    assert pre.model_.config.n_neurons == sum(sizes)  # one unit table of both sessions
    assert pre.model_.tok_emb.weight.shape[0] == sum(sizes) + 3
    X = SpikeWindows.from_sessions(data.sessions[:2])
    assert np.isfinite(pre.score(X))
    Z = pre.transform(X)
    assert Z.shape == (len(X), pre._n_features_out)
    # one latent space: a window's latent does not depend on the other windows it came with
    rows = np.flatnonzero(X.session == 1)[:7]
    np.testing.assert_allclose(pre.transform(X[rows]), Z[rows], atol=1e-5)
    # per-session baseline: each session's rates are over its own windows
    counts = data.sessions[0].to_counts().sum(axis=(0, 2)) / (len(data.sessions[0]) * 5)
    np.testing.assert_allclose(pre.baseline_rates_[:sizes[0]], counts)


def test_batches_mix_sessions(data, pre):
    X = SpikeWindows.from_sessions(data.sessions[:2])
    store = pre.input_encoder_.store(X, "cpu")
    batch = next(iter(TokenBatches(store, np.arange(len(X)), 32, shuffle=True, seed=0)))
    lo = batch["unit_range"][:, 0]
    assert len(torch.unique(lo)) == 2  # one step, both sessions, one embedding lookup
    spikes = batch["id"] < pre.model_.config.n_neurons
    assert torch.all(batch["id"][spikes] >= lo.unsqueeze(1).expand_as(spikes)[spikes])


def test_id_head_predicts_only_the_rows_session(data, pre):
    X = SpikeWindows.from_sessions(data.sessions[:2])
    store = pre.input_encoder_.store(X, "cpu")
    batch = store.batch(np.arange(0, len(X), 23))
    with torch.no_grad():
        probs = torch.softmax(pre.model_.eval()(batch)["logits_id"].float(), dim=-1)  # (B, T, V)
    vocab = torch.arange(probs.shape[-1])
    lo, hi = batch["unit_range"].T
    other = (vocab < pre.model_.config.n_neurons) & (
        (vocab < lo[:, None, None]) | (vocab >= hi[:, None, None]))
    assert other.any() and torch.all(probs[other.expand_as(probs)] == 0)
    mine = ~other & (vocab < pre.model_.config.n_neurons)
    assert torch.all(probs.masked_fill(~mine, 0).sum(-1)[batch["target_dt"] < 5] > 0)


def test_sample_draws_each_sessions_own_neurons(data, pre):
    X = SpikeWindows.from_sessions(data.sessions[:2])
    rows = np.concatenate([np.flatnonzero(X.session == s)[:20] for s in (0, 1)])
    generated = pre.sample(X[rows], random_state=0)
    assert generated.sessions == X.sessions  # a valid container: ids below each session's size
    assert generated.n_spikes().sum() > 0


def test_single_session_path_has_no_session_table():
    X = make_multisession_data(n_sessions=1, n_neurons=6, duration=4.0,
                               random_state=0).sessions[0]
    est = NeuroformerPretrainer(**FAST).fit(X)
    assert est.sessions_ is None
    assert "unit_range" not in est.input_encoder_.store(X, "cpu").batch(np.arange(3))


# --------------------------------------------------------------------------- adaptation
def _backbone(model):
    return {k: v.clone() for k, v in model.state_dict().items()
            if not k.startswith(("head_reg", "head_cls"))}


def test_new_session_learns_its_units_with_the_backbone_frozen(data, pre):
    X_new, y_new = data.sessions[2], data.behavior[2]
    before = _backbone(pre.model_)
    reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), adapt="units",
                               **{**FAST, "max_epochs": 2}).fit(X_new, y_new)
    assert reg.sessions_ == (0, 1, 2) and reg.input_encoder_.default_session == 2
    n_old = pre.model_.config.n_neurons
    n_new = n_old + X_new.n_neurons
    assert reg.model_.config.n_neurons == n_new
    after = reg.model_.state_dict()
    for name, weight in before.items():
        if name in UNIT_TABLES:
            assert torch.equal(after[name][:n_old], weight[:n_old])  # old sessions' units
            assert torch.equal(after[name][n_new:], weight[n_old:])  # SOS, EOS, PAD
        elif name == "unit_rates":  # the rate prior: the new session's own training rates
            assert torch.equal(after[name][:n_old], weight)
            rates = np.bincount(X_new.neuron, minlength=X_new.n_neurons) / (
                len(X_new) * X_new.n_bins)
            np.testing.assert_allclose(after[name][n_old:], np.maximum(rates, 1 / (
                2 * len(X_new) * X_new.n_bins + 1)), rtol=1e-6)
        else:
            assert torch.equal(after[name], weight), name
    assert len(reg.units_history_) == 2
    assert reg.predict(X_new).shape == y_new.shape  # the fitted session is the default
    assert reg.predict(keyed(X_new, 2)).shape == y_new.shape


def test_units_then_all_finetunes_the_backbone(data, pre):
    before = _backbone(pre.model_)
    clf = NeuroformerClassifier(pretrained=FrozenEstimator(pre), **FAST).fit(
        data.sessions[2], data.labels[2])
    assert len(clf.units_history_) == 1 and clf.n_epochs_ == 1
    changed = [k for k, v in before.items() if k not in UNIT_TABLES
               and not torch.equal(clf.model_.state_dict()[k], v)]
    assert changed  # the second phase trained the shared weights
    assert set(clf.predict(data.sessions[2])) <= set(clf.classes_)


def test_known_session_finetunes_without_new_units(data, pre):
    reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), **FAST).fit(
        keyed(data.sessions[1], 1), data.behavior[1])
    assert reg.sessions_ == (0, 1) and not hasattr(reg, "units_history_")
    assert reg.model_.config.n_neurons == pre.model_.config.n_neurons


def test_adapting_a_single_session_model_to_other_neurons(data):
    one = NeuroformerPretrainer(**FAST).fit(data.sessions[0])
    reg = NeuroformerRegressor(pretrained=FrozenEstimator(one), **FAST).fit(
        data.sessions[1], data.behavior[1])
    assert reg.sessions_ == (0, 1)
    assert reg.predict(data.sessions[1]).shape == data.behavior[1].shape


def test_supervised_pretraining_keeps_its_head_for_a_new_session(data):
    """A regressor fitted on sessions 0 and 1 (their labels) adapts to session 2 with its
    head kept: the known neurons' columns of the binned readout and the targets' scale are
    the pretrained ones, the new neurons' columns start at 0 (a learning rate of 1e-12
    keeps them there)."""
    sessions = SpikeWindows.from_sessions(data.sessions[:2])
    y = np.concatenate(data.behavior[:2])
    source = NeuroformerRegressor(**FAST).fit(sessions, y)
    X_new, y_new = data.sessions[2], data.behavior[2]
    reg = NeuroformerRegressor(pretrained=FrozenEstimator(source), adapt="units",
                               **{**FAST, "lr": 1e-12, "weight_decay": 0.0}).fit(X_new, y_new)
    np.testing.assert_array_equal(reg.y_mean_, source.y_mean_)  # the source's units
    np.testing.assert_array_equal(reg.y_scale_, source.y_scale_)
    old, new = source.model_.head_reg.weight.detach(), reg.model_.head_reg.weight.detach()
    config = reg.model_.config
    n_added = X_new.n_neurons * (config.count_bins + 1)  # binned and neuron counts
    assert new.shape == (old.shape[0], old.shape[1] + n_added)
    assert_head_grown(old, new, source.model_.config, config)
    assert reg.model_.config.count_knots == source.model_.config.count_knots
    # another readout, or other targets: a new head (of the new width)
    fresh = NeuroformerRegressor(pretrained=FrozenEstimator(source), readout="mean",
                                 **FAST).fit(X_new, y_new)
    assert fresh.model_.head_reg.weight.shape[1] == fresh.model_.config.n_embd
    one_target = NeuroformerRegressor(pretrained=FrozenEstimator(source), **FAST).fit(
        X_new, y_new[:, 0])
    assert one_target.model_.head_reg.weight.shape[0] == 1
    assert not np.array_equal(one_target.y_mean_, source.y_mean_[:1])


def assert_head_grown(old, new, old_config, new_config):
    """The kept head ``new`` holds ``old``'s weights at the start of each of its blocks (the
    pooled stream and every count-input block) and zeros for the new neurons."""
    E = old_config.n_embd
    torch.testing.assert_close(new[:, :E], old[:, :E], atol=1e-6, rtol=0)
    old_blocks = old_config.count_input_blocks()
    for name, block in new_config.count_input_blocks().items():
        width = old_blocks[name].stop - old_blocks[name].start
        grown = new[:, E + block.start:E + block.stop]
        torch.testing.assert_close(grown[:, :width], old[:, E + old_blocks[name].start:
                                                         E + old_blocks[name].stop],
                                   atol=1e-6, rtol=0)
        assert not grown[:, width:].abs().gt(1e-6).any()


def test_supervised_pretraining_of_a_classifier_needs_the_same_classes(data):
    sessions = SpikeWindows.from_sessions(data.sessions[:2])
    labels = np.concatenate(data.labels[:2])
    source = NeuroformerClassifier(**FAST).fit(sessions, labels)
    X_new, y_new = data.sessions[2], data.labels[2]
    assert set(y_new) == set(source.classes_)
    kept = NeuroformerClassifier(pretrained=FrozenEstimator(source), adapt="units",
                                 **{**FAST, "lr": 1e-12, "weight_decay": 0.0}).fit(X_new, y_new)
    assert_head_grown(source.model_.head_cls.weight.detach(),
                      kept.model_.head_cls.weight.detach(), source.model_.config,
                      kept.model_.config)
    other = np.where(y_new == y_new[0], "a", "b")  # other classes: a new head
    fresh = NeuroformerClassifier(pretrained=FrozenEstimator(source), **FAST).fit(X_new, other)
    assert fresh.model_.head_cls.weight.shape[0] == 2


# ------------------------------------------------------------------ sklearn citizenship
def test_clone_pickle_save_load_and_grid_search(data, pre, tmp_path):
    X_new, y_new = data.sessions[2], data.behavior[2][:, 0]
    reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), **FAST)
    search = GridSearchCV(reg, {"adapt": ["units", "units+all"]}, cv=2).fit(X_new, y_new)
    assert search.best_estimator_.sessions_ == (0, 1, 2)
    fitted = search.best_estimator_
    assert clone(fitted).get_params()["pretrained"].estimator is pre
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.predict(X_new), fitted.predict(X_new), atol=1e-5)
    fitted.save(tmp_path / "reg.pt")
    loaded = NeuroformerRegressor.load(tmp_path / "reg.pt")
    assert loaded.sessions_ == (0, 1, 2)
    np.testing.assert_allclose(loaded.predict(X_new), fitted.predict(X_new), atol=1e-5)
    pre.save(tmp_path / "pre.pt")
    X = SpikeWindows.from_sessions(data.sessions[:2])
    np.testing.assert_allclose(NeuroformerPretrainer.load(tmp_path / "pre.pt").transform(X),
                               pre.transform(X), atol=1e-5)
    from_path = NeuroformerRegressor(pretrained=str(tmp_path / "pre.pt"), **FAST).fit(
        X_new, y_new)
    assert from_path.sessions_ == (0, 1, 2)


def test_make_multisession_data_ground_truth():
    data = make_multisession_data(n_sessions=3, n_neurons=[5, 9, 7], duration=(4.0, 8.0),
                                  random_state=1)
    assert [x.n_neurons for x in data.sessions] == [5, 9, 7]
    assert all(len(b) == len(x) for b, x in zip(data.behavior, data.sessions))
    assert all(t.rates.shape[0] == x.n_neurons for t, x in zip(data.ground_truth, data.sessions))
    again = make_multisession_data(n_sessions=3, n_neurons=[5, 9, 7], duration=(4.0, 8.0),
                                   random_state=1)
    np.testing.assert_array_equal(again.windows.neuron, data.windows.neuron)
    with pytest.raises(ValueError, match="n_neurons"):
        make_multisession_data(n_sessions=3, n_neurons=[5, 9, 7, 3])


def test_benchmark_small_runs(tmp_path):
    """benchmarks/multisession.py --small (the GPU run's figures are in benchmarks/README.md)."""
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(repo / "benchmarks" / "multisession.py"),
                           "--small", "--device", "cpu", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=repo,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| adapted |" in done.stdout and "| latents: across sessions |" in done.stdout
    table = pd.read_csv(tmp_path / "table.csv")
    assert {"adapted", "single", "scratch", "ridge"} <= set(table["method"])
    assert table["mean"].notna().all()


# ----------------------------------------------------------------------------- shared latents
@pytest.mark.parametrize("draw", [0, 1])
def test_supervised_latents_decode_across_sessions(draw):
    """A regressor fitted on two sessions' behaviour places both in one latent space: a
    ridge decoder of one session's latents reads the other's (R² far above the decoder fitted
    on shuffled behaviour, which is about 0)."""
    data = make_multisession_data(n_sessions=2, n_neurons=(20, 30), duration=20.0,
                                  random_state=draw)
    X = SpikeWindows.from_sessions(data.sessions)
    reg = NeuroformerRegressor(preset="tiny", max_epochs=10, validation_fraction=None,
                               n_iter_no_change=None, device="cpu", random_state=0)
    Z = reg.fit(X, np.concatenate(data.behavior)).transform(X)
    assert Z.shape == (len(X), reg.model_.config.n_embd) and Z.dtype == np.float32
    assert list(reg.get_feature_names_out()) == [f"neuroformerregressor{i}"
                                                  for i in range(Z.shape[1])]
    first = X.session == 0
    decoder = RidgeCV().fit(Z[first], data.behavior[0])
    shuffled = RidgeCV().fit(Z[first], np.random.default_rng(0).permutation(data.behavior[0]))
    across = r2_score(data.behavior[1], decoder.predict(Z[~first]))
    chance = r2_score(data.behavior[1], shuffled.predict(Z[~first]))
    assert across > 0.3 and across > chance + 0.3, (across, chance)
