"""Every bad input to the public API, in one table: the call, the error type, the message.

Each row of ``CASES`` is ``(id, call, error, pattern)``: ``call(ctx)`` makes the bad call
(``ctx`` holds small data and fitted tiny estimators), ``error`` is the exception type it must
raise and ``pattern`` a regular expression its message must match. To cover a new case,
append a row.
"""

from __future__ import annotations

import copy
import re
import types

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from nfestimators import (NeuroformerClassifier, NeuroformerPretrainer, NeuroformerRegressor,
                          SpikeWindows)
from nfestimators.datasets import make_spiking_data

from bad_builder_inputs import BAD_BUILDER_INPUTS

FAST = dict(preset="tiny", max_epochs=1, device="cpu", random_state=0)
PRE, REG, CLF = NeuroformerPretrainer, NeuroformerRegressor, NeuroformerClassifier


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    data = make_spiking_data(n_neurons=8, duration=6.0, random_state=0)  # 120 windows, past 5 bins
    X, labels = data.windows, data.labels
    y = X.to_counts().sum(axis=(1, 2)).astype(float)
    pre = PRE(**FAST).fit(X)
    folder = tmp_path_factory.mktemp("bad_inputs")
    saved = folder / "pre.pt"
    pre.save(saved)
    return types.SimpleNamespace(
        X=X, y=y, labels=labels, pre=pre, reg=REG(**FAST).fit(X, y),
        clf=CLF(**FAST).fit(X, labels), saved=saved, folder=folder,
        pre_ms=PRE(**FAST).fit([X, make_spiking_data(n_neurons=5, duration=2.0,
                                                     random_state=1).windows]),
        no_past=SpikeWindows.from_array(X.to_counts(), dt=X.dt),
        short=SpikeWindows.from_array(X.to_counts()[:, :, :3], dt=X.dt))


def fit(cls, **params):
    """``call(ctx)`` fitting a fresh ``cls(**FAST, **params)`` on ctx's data (labels for the
    classifier, counts for the regressor)."""
    def call(ctx):
        est = cls(**{**FAST, **params})
        target = {PRE: None, REG: ctx.y, CLF: ctx.labels}[cls]
        return est.fit(ctx.X, target)
    return call


def tampered(change):
    """``call(ctx)`` loading a copy of ctx's saved pretrainer after ``change(payload)``."""
    def call(ctx):
        payload = torch.load(ctx.saved, weights_only=True)
        change(payload)
        path = ctx.folder / f"tampered_{abs(hash(change))}.pt"
        torch.save(payload, path)
        return PRE.load(path)
    return call


def counts_with(value):
    counts = np.zeros((6, 8, 5))
    counts[0, 0, 0] = value
    return counts


CASES = [
    # -------------------------------------------------- parameters (the declared table)
    ("weight_decay<0", fit(REG, weight_decay=-1), ValueError, "'weight_decay' parameter"),
    ("validation_fraction>1", fit(PRE, validation_fraction=1.5), ValueError,
     "'validation_fraction' parameter"),
    ("validation_fraction<0", fit(CLF, validation_fraction=-0.2), ValueError,
     "'validation_fraction' parameter"),
    ("warmup_fraction>1", fit(REG, warmup_fraction=1.5), ValueError, "'warmup_fraction' parameter"),
    ("lr=0", fit(PRE, lr=0), ValueError, "'lr' parameter"),
    ("max_epochs=0", fit(PRE, max_epochs=0), ValueError, "'max_epochs' parameter"),
    ("batch_size=0.5", fit(CLF, batch_size=0.5), ValueError, "'batch_size' parameter"),
    ("dropout>1", fit(PRE, dropout=1.5), ValueError, "'dropout' parameter"),
    ("preset unknown", fit(REG, preset="huge"), ValueError, "'preset' parameter"),
    ("freeze unknown", fit(REG, freeze="head"), ValueError, "'freeze' parameter"),
    ("readout unknown", fit(CLF, readout="count"), ValueError, "'readout' parameter"),
    ("sclm_weight<0", fit(REG, sclm_weight=-1.0), ValueError, "'sclm_weight' parameter"),
    ("precision unknown", fit(PRE, precision="fp16"), ValueError, "'precision' parameter"),
    ("cuda_graphs unknown", fit(PRE, cuda_graphs="always"), ValueError, "'cuda_graphs' parameter"),
    ("cuda_graphs on cpu", fit(PRE, cuda_graphs=True), ValueError, "one CUDA device"),
    ("strategy unknown", fit(PRE, strategy="fsdp"), ValueError, "'strategy' parameter"),
    ("n_embd not a multiple of n_head", fit(PRE, n_embd=30, n_head=4), ValueError, "multiple"),
    ("max_tokens=1", fit(PRE, max_tokens=1), ValueError, "'max_tokens' parameter"),
    ("dt=0", fit(PRE, dt=0.0), ValueError, "'dt' parameter"),
    ("dt off the bins", fit(PRE, dt=0.015), ValueError, "whole multiple"),
    ("dt not dividing the window", fit(PRE, dt=0.02), ValueError, "divide"),
    ("compat unknown", fit(PRE, compat=("nope",)), ValueError, "unknown compat switches"),
    ("contrastive unknown", fit(PRE, contrastive=("id", "phi")), ValueError,
     "unknown contrastive modality"),
    ("behavior_inputs without behaviour", fit(REG, behavior_inputs=["speed"]), ValueError,
     "carries no behaviour"),
    ("device cuda without CUDA", fit(PRE, device="cuda"), ValueError, "CUDA"),
    ("augment_jitter<0", fit(CLF, augment_jitter=-1), ValueError, "'augment_jitter' parameter"),
    ("augment_jitter fractional", fit(REG, augment_jitter=0.5), ValueError,
     "'augment_jitter' parameter"),
    ("augment_neuron_dropout=1", fit(CLF, augment_neuron_dropout=1.0), ValueError,
     "'augment_neuron_dropout' parameter"),
    ("ema_decay=1", fit(REG, ema_decay=1.0), ValueError, "'ema_decay' parameter"),
    ("ema_decay<0", fit(CLF, ema_decay=-0.5), ValueError, "'ema_decay' parameter"),
    ("label_smoothing=1", fit(CLF, label_smoothing=1.0), ValueError, "'label_smoothing' parameter"),
    ("label_smoothing for the regressor", lambda ctx: REG(label_smoothing=0.1), TypeError,
     "label_smoothing"),
    # ---------------------------------------------------------------------------- X
    ("X NaN", lambda ctx: PRE(**FAST).fit(counts_with(np.nan)), ValueError, "NaN"),
    ("X negative", lambda ctx: PRE(**FAST).fit(counts_with(-1)), ValueError, ">= 0"),
    ("X fractional", lambda ctx: PRE(**FAST).fit(counts_with(0.5)), ValueError, "whole numbers"),
    ("X 1-D", lambda ctx: PRE(**FAST).fit(np.ones(5)), ValueError, "2D|2-D"),
    ("X 4-D", lambda ctx: PRE(**FAST).fit(np.ones((2, 3, 4, 5))), ValueError, "3-D"),
    ("X other neurons", lambda ctx: ctx.reg.predict(np.ones((4, 5, 5))), ValueError, "features"),
    ("X without the fitted past window", lambda ctx: ctx.pre.transform(ctx.no_past), ValueError,
     "past window of 0 bins"),
    ("X with shorter windows", lambda ctx: ctx.clf.predict(ctx.short), ValueError,
     "windows of 3 bins"),
    ("X with a past window fitted without",
     lambda ctx: PRE(**FAST).fit(ctx.no_past).score(ctx.X), ValueError, "past window of 5 bins"),
    # ---------------------------------------------------------------------------- y
    ("y None (regressor)", lambda ctx: REG(**FAST).fit(ctx.X, None), ValueError, "requires y"),
    ("y NaN", lambda ctx: REG(**FAST).fit(ctx.X, np.full(len(ctx.X), np.nan)), ValueError, "NaN"),
    ("y wrong length", lambda ctx: REG(**FAST).fit(ctx.X, ctx.y[:5]), ValueError, "n_samples"),
    ("labels wrong length", lambda ctx: CLF(**FAST).fit(ctx.X, ctx.labels[:5]), ValueError,
     "labels for"),
    ("labels of one class", lambda ctx: CLF(**FAST).fit(ctx.X, np.zeros(len(ctx.X))), ValueError,
     "1 class"),
    ("labels of mixed types",
     lambda ctx: CLF(**FAST).fit(ctx.X, np.array(["a"] + [1] * (len(ctx.X) - 1), dtype=object)),
     ValueError, "mixes labels"),
    ("labels continuous", lambda ctx: CLF(**FAST).fit(ctx.X, ctx.y + 0.5), ValueError,
     "Unknown label type"),
    ("labels unseen in score", lambda ctx: ctx.clf.score(ctx.X, np.full(len(ctx.X), 9)),
     ValueError, "not seen in fit"),
    # ------------------------------------------------------------------- before fit
    ("classifier score before fit", lambda ctx: CLF().score(ctx.X, ctx.labels), NotFittedError,
     "not fitted"),
    ("regressor predict before fit", lambda ctx: REG().predict(ctx.X), NotFittedError,
     "not fitted"),
    ("transform before fit", lambda ctx: PRE().transform(ctx.X), NotFittedError, "not fitted"),
    ("sample before fit", lambda ctx: PRE().sample(ctx.X), NotFittedError, "not fitted"),
    ("save before fit", lambda ctx: PRE().save(ctx.folder / "x.pt"), NotFittedError, "not fitted"),
    # ------------------------------------------------------------------- pretrained=
    ("pretrained unfitted, cloned",
     lambda ctx: clone(REG(pretrained=ctx.pre, **FAST)).fit(ctx.X, ctx.y), ValueError,
     "FrozenEstimator"),
    ("pretrained frozen unfitted",
     lambda ctx: REG(pretrained=FrozenEstimator(PRE()), **FAST).fit(ctx.X, ctx.y),
     NotFittedError, "not fitted"),
    ("pretrained with a size setting",
     lambda ctx: REG(pretrained=FrozenEstimator(ctx.pre), **{**FAST, "n_embd": 64}).fit(
         ctx.X, ctx.y), ValueError, "model size"),
    ("pretrained with another preset",
     lambda ctx: REG(pretrained=ctx.saved, **{**FAST, "preset": "paper"}).fit(ctx.X, ctx.y),
     ValueError, "preset='paper'"),
    ("pretrained of another type", lambda ctx: REG(pretrained=3, **FAST).fit(ctx.X, ctx.y),
     ValueError, "'pretrained' parameter"),
    ("pretrained, a known session with other neurons",
     lambda ctx: REG(pretrained=FrozenEstimator(ctx.pre_ms), **FAST).fit(
         SpikeWindows.from_sessions([ctx.X[:20]], keys=[1]), ctx.y[:20]),
     ValueError, "session 1 has 8 neurons in X, but 5"),
    ("adapt unknown", fit(REG, adapt="all"), ValueError, "'adapt' parameter"),
    # ------------------------------------------------------------------------ sessions
    ("sessions of other window geometry", lambda ctx: PRE(**FAST).fit([ctx.X, ctx.no_past]),
     ValueError, "sessions must share dt, window and prev_window"),
    ("sessions with duplicate keys",
     lambda ctx: SpikeWindows.from_sessions([ctx.X, ctx.X], keys=["a", "a"]), ValueError,
     "distinct session keys"),
    ("session unknown in score",
     lambda ctx: ctx.pre_ms.score(SpikeWindows.from_sessions([ctx.X], keys=["z"])),
     ValueError, "session 'z', unknown to the model"),
    ("no session table for a multi-session model", lambda ctx: ctx.pre_ms.transform(ctx.X),
     ValueError, "no session table"),
    ("session table without session", lambda ctx: ctx.X._replace(sessions=("a",)),
     ValueError, "go together"),
    ("freeze without pretrained", fit(REG, freeze="backbone"), ValueError, "needs pretrained"),
    # ---------------------------------------------------------------------- methods
    ("sample past unknown", lambda ctx: ctx.pre.sample(ctx.X[:4], past="bogus"), ValueError,
     "past must be one of"),
    ("transform modality unknown", lambda ctx: ctx.pre.transform(ctx.X, modality="phi"),
     ValueError, "no latent"),
    # ------------------------------------------------------------------- save / load
    ("save a parameter load() cannot read",
     lambda ctx: copy.deepcopy(ctx.pre).set_params(verbose=object()).save(ctx.folder / "v.pt"),
     TypeError, "cannot store"),
    ("load a missing file", lambda ctx: PRE.load(ctx.folder / "none.pt"), FileNotFoundError,
     "no saved estimator"),
    ("load a foreign file", lambda ctx: (torch.save({"a": 1}, ctx.folder / "f.pt"),
                                         PRE.load(ctx.folder / "f.pt")), ValueError,
     "not an nfestimators file"),
    ("load as another class", lambda ctx: REG.load(ctx.saved), ValueError, "not a"),
    ("load an unknown class", tampered(lambda p: p.update({"class": "NeuroformerMagic"})),
     ValueError, "unknown estimator class"),
    ("load without weights", tampered(lambda p: p.pop("model_state")), ValueError, "lacks"),
    ("load with missing weights", tampered(lambda p: p["model_state"].pop("head_id.weight")),
     ValueError, "do not fit"),
    ("load a newer format", tampered(lambda p: p.update({"version": 99})), ValueError, "newer"),
]


# the builders' rows (tests/bad_builder_inputs.py), in the same table
CASES += [(f"{builder.__name__}: {pattern[:40]}", lambda ctx, b=builder, k=kwargs: b(**k), error,
           re.compile(pattern, re.S)) for builder, kwargs, error, pattern in BAD_BUILDER_INPUTS]


@pytest.mark.parametrize("call, error, pattern", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input_raises_a_clear_error(ctx, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(ctx)


def test_case_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


# --------------------------------------------- situations that must leave a consistent state
def _fitted_names(est):
    return {k for k in vars(est) if k.endswith("_")}


def test_refit_starts_from_the_parameters_alone(ctx):
    speed = ctx.X.with_behavior(np.arange(len(ctx.X), dtype=float)[:, None], names=["speed"])
    pre = PRE(behavior_inputs=["speed"], **FAST).fit(speed)
    assert pre.behavior_inputs_ == ("speed",)
    pre.set_params(behavior_inputs=None).fit(ctx.X)  # X without behaviour
    assert pre.behavior_inputs_ == () and pre.model_.config.n_behavior_inputs == 0
    assert _fitted_names(pre) == _fitted_names(PRE(**FAST).fit(ctx.X))
    reg = REG(pretrained=FrozenEstimator(ctx.pre), freeze="backbone", **FAST).fit(ctx.X, ctx.y)
    assert reg.input_encoder_ is ctx.pre.input_encoder_  # taken over as a unit
    reg.set_params(pretrained=None, freeze="none").fit(ctx.X, ctx.y)
    assert reg.input_encoder_ is not ctx.pre.input_encoder_
    assert _fitted_names(reg) == _fitted_names(REG(**FAST).fit(ctx.X, ctx.y))


class Interrupt(Callback):
    """Ctrl-C in the first batch of epoch ``epoch``; records the weights at the end of every
    finished epoch."""

    def __init__(self, epoch):
        self.epoch, self.weights = epoch, []

    def on_epoch_end(self, net, **kwargs):
        self.weights.append({k: v.clone() for k, v in net.module_.state_dict().items()})

    def on_batch_end(self, net, training=None, **kwargs):
        if training and len(net.history) == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("early_stopping", [False, True])
def test_keyboard_interrupt_keeps_the_finished_epochs(ctx, early_stopping):
    spy = Interrupt(epoch=3)
    params = dict(FAST, max_epochs=6, lr=3e-3, callbacks=[("interrupt", spy)])
    if early_stopping:
        params.update(n_iter_no_change=5)
    with pytest.warns(UserWarning, match="interrupted .* after 2 finished epoch"):
        reg = REG(**params).fit(ctx.X, ctx.y)
    assert reg.n_epochs_ == len(reg.history_) == 2
    assert all("train_loss" in row and "valid_loss" in row for row in reg.history_)
    best = int(np.argmin(reg.history_[:, "valid_loss"])) + 1 if early_stopping else 2
    assert reg.best_epoch_ == best
    for name, value in reg.model_.state_dict().items():
        torch.testing.assert_close(value, spy.weights[best - 1][name], rtol=0, atol=0)


def test_save_converts_a_random_state_instance(ctx):
    est = clone(ctx.pre).set_params(random_state=np.random.RandomState(3)).fit(ctx.X)
    est.save(ctx.folder / "rs.pt")
    back = PRE.load(ctx.folder / "rs.pt")
    expected = np.random.RandomState(3)
    expected.randint(np.iinfo(np.int32).max)  # the fit drew a seed from it
    expected.permutation(len(ctx.X))  # ... and the validation split
    np.testing.assert_array_equal(back.random_state.get_state()[1], expected.get_state()[1])
    assert back.random_state.get_state()[2] == expected.get_state()[2]


def test_paper_preset_on_cpu_warns(ctx):
    with pytest.warns(UserWarning, match="sized for a GPU"), \
            pytest.raises(ValueError, match="frames"):
        PRE(preset="paper", contrastive=("id", "frames"), device="cpu").fit(ctx.X)


def test_outlying_window_does_not_set_the_token_budget():
    counts = np.random.default_rng(0).poisson(0.5, (40, 20, 5))
    counts[0, 3, 2] = 10_000
    with pytest.warns(UserWarning, match=r"1 of 40 current windows .* 9\d{3} of their earliest "
                                         r"spikes were dropped \(of the 10\d{3} spikes"):
        pre = PRE(**FAST).fit(counts)
    fullest_inlier = np.sort(counts.sum(axis=(1, 2)))[-2]
    assert fullest_inlier < pre.tokenizer_.max_tokens <= 1.25 * fullest_inlier + 10
