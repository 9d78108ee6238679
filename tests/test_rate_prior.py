"""The rate prior (``rate_prior``): a model whose heads say nothing is exactly a per-neuron
Poisson model, generates like one, and lets the pretrainer beat that model held out."""

import warnings

import numpy as np
import pytest
import torch

from generation_reference import generate_tokens_reference

from nfestimators import NeuroformerPretrainer, SpikeTokenizer, SpikeWindows
from nfestimators.data import TokenStore
from nfestimators.datasets import make_code_data
from nfestimators.metrics import poisson_log_likelihood
from nfestimators.model import Neuroformer, NeuroformerConfig, make_config
from nfestimators.model.generation import generate_tokens
from nfestimators.model.heads import run_positions
from nfestimators.model.losses import sclm_loss


def poisson_windows(rates, n_bins=3000, seed=0):
    counts = np.random.default_rng(seed).poisson(np.asarray(rates)[:, None],
                                                 (len(rates), n_bins))
    return SpikeWindows.from_counts(counts, dt=0.01, window=0.05, prev_window=0.05)


def prior_only_model(X, rates, tok):
    """A fresh rate-prior model (its heads start at 0) at ``rates``."""
    config = make_config("tiny", X.n_neurons, n_dt=tok.n_dt_, block_size=int(tok.max_tokens),
                         block_size_prev=int(tok.max_prev_tokens), rate_prior=True,
                         window_bins=X.n_bins)
    torch.manual_seed(0)
    model = Neuroformer(config).eval()
    model.unit_rates.copy_(torch.as_tensor(rates))
    return model


def token_log_likelihood(model, batch):
    c = model.config
    with torch.no_grad():
        out = model(batch)
    nll = (sclm_loss(out["logits_id"], batch["target_id"], c.pad_id, "none")
           + sclm_loss(out["logits_dt"], batch["target_dt"], c.pad_dt, "none"))
    return -float(nll.sum())


def test_run_positions_count_repeats_of_one_spike():
    config = NeuroformerConfig(n_neurons=5, n_dt=4)
    ids = torch.tensor([[5, 2, 2, 2, 3, 3, 6, 7]])
    dts = torch.tensor([[0, 1, 1, 1, 1, 2, 5, 6]])
    assert run_positions(ids, dts, config).tolist() == [[1, 1, 2, 3, 1, 1, 1, 1]]


def test_prior_alone_is_exactly_the_poisson_model():
    """The token log-likelihood of every window (spikes with repeats, empty windows, the end
    of the window) equals the Poisson log-likelihood of its counts."""
    rates = np.array([0.05, 0.8, 0.3, 0.02, 1.5, 0.4])  # spikes per bin: repeats happen
    X = poisson_windows(rates)
    tok = SpikeTokenizer().fit(X)
    model = prior_only_model(X, rates, tok)
    batch = TokenStore(tok.transform(X), "cpu").batch(np.arange(len(X)))
    expected = poisson_log_likelihood(X, np.broadcast_to(rates[None, :, None],
                                                         X.to_counts().shape))
    assert token_log_likelihood(model, batch) == pytest.approx(expected, rel=1e-5)


def test_prior_alone_is_exactly_the_poisson_model_of_each_session():
    """Two sessions in one unit vocabulary: each row is its own session's Poisson model."""
    rates_a, rates_b = np.array([0.1, 0.6, 0.3]), np.array([0.9, 0.05, 0.2, 0.4])
    X_a, X_b = poisson_windows(rates_a, 1500, seed=1), poisson_windows(rates_b, 1500, seed=2)
    expected = sum(poisson_log_likelihood(X, np.broadcast_to(r[None, :, None],
                                                             X.to_counts().shape))
                   for X, r in ((X_a, rates_a), (X_b, rates_b)))
    # the sessions' windows with ids in the concatenated vocabulary
    shifted = X_b._replace(neuron=X_b.neuron + 3, prev_neuron=X_b.prev_neuron + 3,
                           n_neurons=7)
    X = SpikeWindows.concatenate([X_a._replace(n_neurons=7), shifted])
    tok = SpikeTokenizer().fit(X)
    model = prior_only_model(X, np.concatenate([rates_a, rates_b]), tok)
    unit_range = np.repeat([[0, 3], [3, 7]], [len(X_a), len(X_b)], axis=0)
    store = TokenStore(tok.transform(X), "cpu", unit_range=unit_range)
    assert token_log_likelihood(model, store.batch(np.arange(len(X)))) == pytest.approx(
        expected, rel=1e-5)


def test_prior_alone_generates_poisson_counts():
    rates = np.array([0.05, 0.6, 0.3, 1.2])
    X = poisson_windows(rates, 6000)  # 1200 windows of 5 bins
    tok = SpikeTokenizer().fit(X)
    model = prior_only_model(X, rates, tok)
    batch = TokenStore(tok.transform(X), "cpu").batch(np.arange(len(X)), targets=False)
    out = generate_tokens(model, batch, generator=torch.Generator().manual_seed(0),
                          dt_limit=X.n_bins)
    spikes = out.ids[(out.ids >= 0) & (out.ids < len(rates))]
    mean_count = np.bincount(spikes, minlength=len(rates)) / (len(X) * X.n_bins)
    np.testing.assert_allclose(mean_count, rates, rtol=0.1)
    assert np.all((out.dts[out.ids < len(rates)] < X.n_bins) | (out.ids[out.ids < 4] < 0))


def test_cached_sampler_tracks_repeats_as_the_uncached_reference():
    """The sampler keeps each row's run position as it goes (rows end and are dropped); the
    reference recomputes it from the whole sequence at every step: same draws, same tokens."""
    rates = np.array([0.9, 1.5, 0.4])  # repeats are common
    X = poisson_windows(rates, 60)
    tok = SpikeTokenizer().fit(X)
    model = prior_only_model(X, rates, tok)
    with torch.no_grad():  # heads that say something, so the stream matters too
        model.head_id.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
        model.head_dt.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    batch = TokenStore(tok.transform(X), "cpu").batch(np.arange(len(X)), targets=False)
    cached = generate_tokens(model, batch, generator=torch.Generator().manual_seed(3),
                             dt_limit=X.n_bins)
    reference = generate_tokens_reference(model, batch, generator=torch.Generator().manual_seed(3),
                                          dt_limit=X.n_bins)
    np.testing.assert_array_equal(cached.ids, reference.ids)
    np.testing.assert_array_equal(cached.dts, reference.dts)
    repeats = (cached.ids[:, 1:] == cached.ids[:, :-1]) & (cached.dts[:, 1:] == cached.dts[:, :-1])
    assert (repeats & (cached.ids[:, 1:] >= 0)).sum() > 10


def test_config_needs_the_conditioned_head_and_the_window_bins():
    with pytest.raises(ValueError, match="rate_prior=True needs"):
        NeuroformerConfig(n_neurons=4, n_dt=6, rate_prior=True)
    with pytest.raises(ValueError, match="rate_prior=True needs"):
        NeuroformerConfig(n_neurons=4, n_dt=6, rate_prior=True, window_bins=5,
                          id_head="independent")


def test_pretrainer_beats_the_poisson_baseline_held_out():
    """A rate code of 40 neurons: with the prior the held-out score is positive after a few
    epochs; the paper's heads are still far below the baseline at the same point."""
    X = make_code_data("rate", n_trials=200, random_state=0).windows
    train, test = X[:160], X[160:]
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for prior in (True, False):
            pre = NeuroformerPretrainer(preset="tiny", max_epochs=6, rate_prior=prior,
                                        device="cpu", random_state=0).fit(train)
            scores[prior] = pre.score(test)
    assert scores[True] > 0.0
    assert scores[False] < scores[True] - 0.5


def test_finetuning_keeps_the_pretrained_prior_and_refuses_another():
    from sklearn.frozen import FrozenEstimator

    from nfestimators import NeuroformerRegressor

    data = make_code_data("behavior", n_trials=60, random_state=0)
    X, y = data.windows, data.target
    fast = dict(preset="tiny", max_epochs=1, device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pre = NeuroformerPretrainer(**fast).fit(X)
        reg = NeuroformerRegressor(pretrained=FrozenEstimator(pre), **fast).fit(X, y)
    assert reg.model_.config.rate_prior
    torch.testing.assert_close(reg.model_.unit_rates, pre.model_.unit_rates)
    with pytest.raises(ValueError, match="rate_prior=False"):
        NeuroformerRegressor(pretrained=FrozenEstimator(pre), rate_prior=False, **fast).fit(X, y)
