"""Tests of nfestimators.model.generation and the closed-loop past blocks (tiny models, CPU)."""

import numpy as np
import pytest
import torch

from generation_reference import generate_tokens_reference

from nfestimators.data import TokenLayout
from nfestimators.estimators._sampling import past_from_generated
from nfestimators.model import build_model
from nfestimators.model.generation import GeneratedTokens, filter_logits, generate_tokens

N_NEURONS, N_DT, MAX_NEW = 12, 6, 15


def lively_model(id_head="independent", **overrides):
    """A tiny random model whose windows run for a while: larger weights, neutral EOS logit.

    The paper's independent heads by default, so that a test can steer the next id through
    ``head_id`` alone; the tests of ``id_head="given_dt"`` say so."""
    with torch.random.fork_rng():  # the weights not overwritten below: same in any test order
        torch.manual_seed(0)
        model = build_model("tiny", N_NEURONS, n_dt=N_DT, frames_shape=(3, 10, 10),
                            n_behavior_inputs=2, id_head=id_head, **overrides)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "video" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        model.head_id.weight[model.config.eos_id] *= 0.15
    return model.eval()


def context_batch(n_windows=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    id_prev = torch.randint(0, N_NEURONS, (n_windows, 8), generator=g)
    dt_prev = torch.randint(0, N_DT, (n_windows, 8), generator=g).sort(dim=1).values
    id_prev[:, 0], dt_prev[:, 0] = N_NEURONS, 0
    id_prev[:, 6], dt_prev[:, 6] = N_NEURONS + 1, N_DT + 1
    id_prev[:, 7], dt_prev[:, 7] = N_NEURONS + 2, N_DT + 2
    return {
        "id_prev": id_prev,
        "dt_prev": dt_prev,
        "frames": torch.randn((n_windows, 1, 3, 10, 10), generator=g),
        "behavior": torch.randn((n_windows, 2), generator=g),
    }


def assert_same(a, b):
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.dts, b.dts)


def seeded(seed=7):
    return torch.Generator().manual_seed(seed)


LENGTHS = (2, 5, 9, 0, 12, 4)


@pytest.fixture(scope="module")
def memorizing():
    """A tiny model trained to recite 6 windows, each identified by its past block and behaviour.

    Returns the model, the context batch and the true events (ids, dts as lists per window).
    """
    torch.manual_seed(0)
    model = build_model("tiny", N_NEURONS, n_dt=N_DT, frames_shape=(3, 10, 10), n_behavior_inputs=2)
    c = model.config
    g = torch.Generator().manual_seed(11)
    batch = context_batch()
    T = max(LENGTHS) + 1
    ids = torch.full((6, T + 1), c.pad_id)
    dts = torch.full((6, T + 1), c.pad_dt)
    events = []
    for w, n in enumerate(LENGTHS):
        window_ids = torch.randint(0, N_NEURONS, (n,), generator=g)
        window_dts = torch.randint(0, N_DT, (n,), generator=g)
        order = torch.argsort(window_dts * N_NEURONS + window_ids)  # token order: time, then neuron
        window_ids, window_dts = window_ids[order], window_dts[order]
        ids[w, : n + 2] = torch.cat([torch.tensor([c.sos_id]), window_ids, torch.tensor([c.eos_id])])
        dts[w, : n + 2] = torch.cat([torch.tensor([0]), window_dts, torch.tensor([c.eos_dt])])
        events.append((window_ids.tolist(), window_dts.tolist()))
    train = dict(batch, id=ids[:, :-1], dt=dts[:, :-1], target_id=ids[:, 1:], target_dt=dts[:, 1:])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(200):
        losses = model.losses(model(train), train)
        optimizer.zero_grad()
        (losses["id"] + losses["dt"]).backward()
        optimizer.step()
    return model.eval(), batch, events


SETTINGS = [
    dict(greedy=True),
    dict(temperature=2.0),
    dict(temperature=2.0, temperature_dt=1.3, top_k=5, top_p_dt=0.8),
    dict(temperature=3.0, top_p=0.9, top_k_dt=2),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_cached_sampler_matches_uncached_reference(settings, memorizing):
    model, batch, _ = memorizing
    cached = generate_tokens(model, batch, max_new_tokens=MAX_NEW, generator=seeded(), **settings)
    reference = generate_tokens_reference(model, batch, max_new_tokens=MAX_NEW, generator=seeded(), **settings)
    assert_same(cached, reference)
    assert cached.ids.shape == (6, MAX_NEW)
    assert len(set(cached.lengths.tolist())) >= 3  # windows end at different steps


def test_greedy_recites_memorized_windows_and_stops_at_eos(memorizing):
    model, batch, events = memorizing
    out = generate_tokens(model, batch, max_new_tokens=MAX_NEW, greedy=True)
    np.testing.assert_array_equal(out.lengths, LENGTHS)
    for w, (ids, dts) in enumerate(events):
        assert out.ids[w].tolist() == ids + [-1] * (MAX_NEW - len(ids))
        assert out.dts[w].tolist() == dts + [-1] * (MAX_NEW - len(dts))


def test_output_format():
    model = lively_model()
    out = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded())
    filled = np.arange(MAX_NEW)[None, :] < out.lengths[:, None]
    assert ((out.ids >= 0) == filled).all() and ((out.dts >= 0) == filled).all()
    assert out.ids.dtype == out.dts.dtype == out.lengths.dtype == np.int64


def constant_stream(model):
    """Make the final stream z a constant unit vector u (the last LayerNorm's bias); returns u."""
    u = torch.nn.functional.normalize(torch.randn(model.config.n_embd, generator=seeded(5)), dim=0)
    with torch.no_grad():
        model.decoder_blocks[-1].ln_out.weight.zero_()
        model.decoder_blocks[-1].ln_out.bias.copy_(u)
    return u


def test_eos_ends_windows_and_capacity_cuts_them():
    model = lively_model()
    c = model.config
    u = constant_stream(model)
    with torch.no_grad():
        model.head_id.weight[c.eos_id] = 20 * u  # EOS logit 20, the others about +-0.3
    out = generate_tokens(model, context_batch(), generator=seeded())
    assert out.ids.shape[1] == c.block_size - 1
    assert (out.lengths == 0).all() and (out.ids == -1).all()
    with torch.no_grad():
        model.head_id.weight[c.eos_id] = -20 * u  # never EOS: windows are cut at capacity
    for settings in ({"greedy": True}, {}):
        out = generate_tokens(model, context_batch(), generator=seeded(), **settings)
        assert (out.lengths == c.block_size - 1).all() and (out.ids >= 0).all()


def test_never_emits_special_tokens():
    model = lively_model()
    c = model.config
    u = constant_stream(model)
    with torch.no_grad():  # SOS and PAD (and the dt specials) are by far the most likely tokens
        model.head_id.weight[[c.sos_id, c.pad_id]] = 20 * u
        model.head_id.weight[c.eos_id] = -20 * u
        model.head_dt.weight[[c.sos_dt, c.eos_dt, c.pad_dt]] = 20 * u
    for settings in ({"greedy": True}, {}, {"top_k": 2}):
        out = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded(), **settings)
        assert (out.lengths == MAX_NEW).all()
        assert ((out.ids >= 0) & (out.ids < N_NEURONS)).all() and ((out.dts >= 0) & (out.dts < N_DT)).all()
    out = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded(), dt_limit=2)
    assert (out.dts < 2).all()


def test_given_dt_heads_end_windows_by_the_eos_dt():
    """With ``id_head="given_dt"`` the dt is drawn first: an EOS dt ends the window, and a
    value dt is always followed by a neuron id (never an id special, whatever its logit)."""
    model = lively_model(id_head="given_dt")
    c = model.config
    u = constant_stream(model)
    with torch.no_grad():
        model.head_dt.weight[c.eos_dt] = 20 * u
    out = generate_tokens(model, context_batch(), generator=seeded())
    assert (out.lengths == 0).all()
    with torch.no_grad():
        model.head_dt.weight[c.eos_dt] = -20 * u
        model.head_dt.weight[[c.sos_dt, c.pad_dt]] = 20 * u
        model.head_id.weight[[c.sos_id, c.eos_id, c.pad_id]] = 20 * u
    for settings in ({"greedy": True}, {}):
        out = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded(),
                              **settings)
        assert (out.lengths == MAX_NEW).all()
        assert ((out.ids >= 0) & (out.ids < N_NEURONS)).all() and ((out.dts >= 0) & (out.dts < N_DT)).all()


@pytest.mark.parametrize("settings", SETTINGS[:2])
def test_given_dt_cached_sampler_matches_uncached_reference(settings):
    model = lively_model(id_head="given_dt")
    cached = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded(), **settings)
    reference = generate_tokens_reference(model, context_batch(), max_new_tokens=MAX_NEW,
                                          generator=seeded(), **settings)
    assert_same(cached, reference)
    assert len(set(cached.lengths.tolist())) >= 2


def test_top_k_one_equals_greedy():
    model = lively_model()
    greedy = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, greedy=True)
    top1 = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, top_k=1, generator=seeded())
    assert_same(greedy, top1)


def test_top_p_never_draws_outside_the_nucleus():
    logits = torch.log(torch.tensor([[0.45, 0.25, 0.15, 0.1, 0.05]])).expand(4000, 5)
    kept = filter_logits(logits, top_p=0.8).isfinite()[0]
    assert kept.tolist() == [True, True, True, False, False]  # 0.45 + 0.25 < 0.8 <= + 0.15
    from nfestimators.model.generation import _draw, _Sampling

    uniforms = torch.rand(4000, generator=seeded(), dtype=torch.float64)
    draws = _draw(logits, _Sampling(1.0, None, 0.8), False, uniforms)
    assert set(draws.tolist()) == {0, 1, 2}

    # In generation: every drawn id lies in the nucleus of the model's distribution at its step.
    model = lively_model()
    c = model.config
    batch = context_batch(3)
    out = generate_tokens(model, batch, max_new_tokens=MAX_NEW, top_p=0.5, generator=seeded())
    for w in range(3):
        n = out.lengths[w]
        window = {k: v[w : w + 1] for k, v in batch.items()}
        window["id"] = torch.tensor([[c.sos_id, *out.ids[w, :n]]])
        window["dt"] = torch.tensor([[0, *out.dts[w, :n]]])
        next_dt = torch.tensor([[*out.dts[w, :n]]])  # the id was drawn given the next dt
        z = model.decode(window["id"][:, :n], window["dt"][:, :n], context=model.encode_context(window))
        logits = model.id_logits(z, window["id"][:, :n], window["dt"][:, :n], next_dt)[0]
        logits[:, [c.sos_id, c.pad_id]] = float("-inf")
        nucleus = filter_logits(logits, top_p=0.5).isfinite()
        assert nucleus[torch.arange(n), torch.as_tensor(out.ids[w, :n])].all()


@pytest.mark.parametrize("settings", [dict(greedy=True), dict(top_p=0.9)])
def test_batch_equals_one_by_one(settings):
    model = lively_model()
    batch = context_batch()
    together = generate_tokens(model, batch, max_new_tokens=MAX_NEW, generator=seeded(), **settings)
    chunked = generate_tokens(model, batch, max_new_tokens=MAX_NEW, generator=seeded(), batch_size=4, **settings)
    assert_same(together, chunked)
    if settings.get("greedy"):
        for w in range(len(together.lengths)):
            alone = generate_tokens(model, {k: v[w : w + 1] for k, v in batch.items()},
                                    max_new_tokens=MAX_NEW, **settings)
            np.testing.assert_array_equal(alone.ids[0], together.ids[w])
            np.testing.assert_array_equal(alone.dts[0], together.dts[w])


def test_random_state_only_from_generator():
    model = lively_model().train()
    state = torch.get_rng_state()
    a = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded(3))
    b = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded(3))
    c = generate_tokens(model, context_batch(), max_new_tokens=MAX_NEW, generator=seeded(4))
    assert torch.equal(state, torch.get_rng_state())
    assert_same(a, b)
    assert not np.array_equal(a.ids, c.ids)
    assert model.training  # the mode is restored


def test_argument_validation():
    model = lively_model()
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_tokens(model, context_batch(), max_new_tokens=model.config.block_size)
    with pytest.raises(ValueError, match="dt_limit"):
        generate_tokens(model, context_batch(), dt_limit=N_DT + 1)


def test_generation_without_context_modalities():
    model = build_model("tiny", N_NEURONS, n_dt=N_DT, n_layers_history=0)
    out = generate_tokens(model, {"id": torch.zeros(3, 1, dtype=torch.long)}, max_new_tokens=5, generator=seeded())
    assert out.ids.shape == (3, 5)


def test_past_from_generated_retokenizes_recent_windows():
    # Two generated windows of 3 bins each; the past window is 5 bins long.
    older = GeneratedTokens(
        ids=np.array([[2, 0, 5, -1], [1, -1, -1, -1]]),
        dts=np.array([[0, 1, 2, -1], [2, -1, -1, -1]]),
        lengths=np.array([3, 1]),
    )
    newer = GeneratedTokens(
        ids=np.array([[4, 3, 1, -1], [-1, -1, -1, -1]]),
        dts=np.array([[2, 0, 0, -1], [-1, -1, -1, -1]]),
        lengths=np.array([3, 0]),
    )
    kwargs = dict(stride_bins=3, prev_bins=5, layout=TokenLayout(n_neurons=6, n_dt=6))
    id_prev, dt_prev = past_from_generated([older, newer], block_size_prev=10, **kwargs)
    SOS, EOS, PAD, EOS_DT, PAD_DT = 6, 7, 8, 7, 8
    # Row 0: older events at past offsets -1 (dropped), 0, 1; newer at 2 + (2, 0, 0).
    # Time-major, neuron ascending: (0, n0) (1, n5) (2, n1) (2, n3) (4, n4).
    assert id_prev[0].tolist() == [SOS, 0, 5, 1, 3, 4, EOS]
    assert dt_prev[0].tolist() == [0, 0, 1, 2, 2, 4, EOS_DT]
    # Row 1: one older event at offset 1, then padding to the batch's longest block.
    assert id_prev[1].tolist() == [SOS, 1, EOS, PAD, PAD, PAD, PAD]
    assert dt_prev[1].tolist() == [0, 1, EOS_DT, PAD_DT, PAD_DT, PAD_DT, PAD_DT]
    # Overflow keeps the latest events (block_size_prev - 2 of them).
    id_prev, dt_prev = past_from_generated([older, newer], block_size_prev=4, **kwargs)
    assert id_prev[0].tolist() == [SOS, 3, 4, EOS] and dt_prev[0].tolist() == [0, 2, 4, EOS_DT]


def test_closed_loop_generation_runs():
    """The estimator's closed loop: each window's past is the model's previous output."""
    model = lively_model()
    c = model.config
    batch = context_batch(2)
    history = []
    for _ in range(3):
        out = generate_tokens(model, batch, max_new_tokens=MAX_NEW, generator=seeded())
        history = (history + [out])[-2:]
        batch["id_prev"], batch["dt_prev"] = past_from_generated(
            history, stride_bins=3, prev_bins=5, layout=TokenLayout(c.n_neurons, c.n_dt),
            block_size_prev=c.block_size_prev)
        assert batch["id_prev"].shape[1] <= c.block_size_prev
        assert (batch["id_prev"][:, 0] == c.sos_id).all()


def test_sample_output_shares_no_array_with_the_input():
    """Editing generated windows never edits the user's X (issue #15, item 14)."""
    from nfestimators import NeuroformerPretrainer
    from nfestimators.datasets import make_spiking_data

    X = make_spiking_data(n_neurons=6, duration=2.0, trial_duration=2.0, random_state=0,
                          behavior_as_input=True).windows[:12]
    pre = NeuroformerPretrainer(preset="tiny", max_epochs=1, random_state=0, device="cpu").fit(X)
    generated = pre.sample(X, random_state=0)
    for name in ("window_end", "trial", "behavior", "prev_neuron", "prev_bin", "prev_offsets"):
        assert not np.shares_memory(getattr(generated, name), getattr(X, name)), name
    before = X.window_end.copy()
    generated.window_end[:] = -1.0
    np.testing.assert_array_equal(X.window_end, before)
