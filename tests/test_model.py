"""Tests of nfestimators.model (tiny configs, CPU)."""

import dataclasses
import json
import math

import pytest
import torch

from nfestimators.model import PRESETS, Neuroformer, NeuroformerConfig, build_model
from nfestimators.model.embeddings import sinusoid_3d
from nfestimators.model.losses import contrastive_loss, info_nce, sclm_loss

N_NEURONS, N_DT = 12, 6
FRAMES = (3, 10, 10)


def tiny(**overrides):
    overrides.setdefault("frame_kernel", (3, 5, 5))
    return build_model("tiny", N_NEURONS, n_dt=N_DT, **overrides)


def block(lengths, capacity, n_neurons, n_dt, generator):
    """Token blocks ``[SOS, events, EOS, PAD...]`` of length capacity + 1 for given event counts."""
    B = len(lengths)
    ids = torch.full((B, capacity + 1), n_neurons + 2)
    dts = torch.full((B, capacity + 1), n_dt + 2)
    for b, n in enumerate(lengths):
        ids[b, 0], dts[b, 0] = n_neurons, 0
        event_ids = torch.randint(0, n_neurons, (n,), generator=generator)
        event_dts = torch.randint(0, n_dt, (n,), generator=generator)
        order = torch.argsort(event_dts * n_neurons + event_ids)  # token order: time, then neuron
        ids[b, 1 : n + 1], dts[b, 1 : n + 1] = event_ids[order], event_dts[order]
        ids[b, n + 1], dts[b, n + 1] = n_neurons + 1, n_dt + 1
    return ids, dts


def make_batch(config, lengths=(3, 7, 0, 5), past_lengths=(4, 0, 9, 2), frames=True, behavior=True,
               targets=True, seed=0):
    """A batch dict as in docs/design.md, padded to its longest sequences."""
    g = torch.Generator().manual_seed(seed)
    c = config
    T = max(lengths) + 2
    ids, dts = block(lengths, T, c.n_neurons, c.n_dt, g)
    batch = {"id": ids[:, :-1], "dt": dts[:, :-1]}
    if targets:
        batch["target_id"], batch["target_dt"] = ids[:, 1:], dts[:, 1:]
    if past_lengths is not None:
        id_prev, dt_prev = block(past_lengths, max(past_lengths) + 1, c.n_neurons, c.n_dt, g)
        batch["id_prev"], batch["dt_prev"] = id_prev, dt_prev
    B = len(lengths)
    if frames:
        batch["frames"] = torch.randn((B, 1, *FRAMES), generator=g)
    if behavior:
        batch["behavior"] = torch.randn((B, c.n_behavior_inputs), generator=g)
    if targets and c.n_targets:
        batch["y_reg"] = torch.randn((B, c.n_targets), generator=g)
    if targets and c.n_classes:
        batch["y_cls"] = torch.randint(0, c.n_classes, (B,), generator=g)
    return batch


def full_model(**overrides):
    kwargs = dict(frames_shape=FRAMES, n_behavior_inputs=2, n_targets=2, n_classes=3,
                  contrastive=("id", "frames", "behavior"))
    kwargs.update(overrides)
    return tiny(**kwargs).eval()


# ----------------------------------------------------------------------------- config
def test_presets_and_config_round_trip():
    assert set(PRESETS) == {"paper", "small", "tiny"}
    config = full_model().config
    restored = NeuroformerConfig(**json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert config.id_vocab_size == N_NEURONS + 3 and config.dt_vocab_size == N_DT + 3
    with pytest.raises(ValueError, match="contrastive"):
        NeuroformerConfig(n_neurons=3, n_dt=2, contrastive=("id", "speed"))
    with pytest.raises(ValueError, match="preset"):
        build_model("huge", 3, n_dt=2)


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("past", [True, False])
@pytest.mark.parametrize("frames", [True, False])
@pytest.mark.parametrize("behavior", [True, False])
@pytest.mark.parametrize("targets", [True, False])
def test_shapes_every_stage(past, frames, behavior, targets):
    model = full_model()
    c = model.config
    batch = make_batch(c, past_lengths=(4, 0, 9, 2) if past else None, frames=frames, behavior=behavior,
                       targets=targets)
    B, T = batch["id"].shape
    context = model.encode_context(batch)
    assert (context.past is not None) == past and (context.frames is not None) == frames
    if past:
        assert context.past.shape == (B, batch["id_prev"].shape[1], c.n_embd)
    if frames:
        # (3, 10, 10) with a (3, 5, 5) kernel -> 1 x 2 x 2 = 4 frame tokens, plus SOS.
        assert context.frames.shape == (B, 5, c.n_embd)
    if behavior:
        assert context.behavior.shape == (B, 2, c.n_embd)
    out = model(batch)
    assert out["logits_id"].shape == (B, T, N_NEURONS + 3)
    assert out["logits_dt"].shape == (B, T, N_DT + 3)
    assert out["pooled"].shape == (B, c.n_embd)
    assert out["y_reg"].shape == (B, 2) and out["class_logits"].shape == (B, 3)
    expected_latents = {"id"} | ({"frames"} if frames else set()) | ({"behavior"} if behavior else set())
    assert set(out["latents"]) == expected_latents
    for latent in out["latents"].values():
        assert latent.shape == (B, c.n_embd)
        torch.testing.assert_close(latent.norm(dim=-1), torch.ones(B))
    expected_losses = set()
    if targets:
        expected_losses |= {"id", "dt", "regression", "classification"}
    if len(expected_latents) >= 2:
        expected_losses.add("contrastive")
    assert "losses" not in out  # outputs and losses are separate calls
    losses = model.losses(out, batch)
    assert set(losses) == expected_losses
    for loss in losses.values():
        assert loss.shape == () and torch.isfinite(loss)


def test_minimal_model_has_no_optional_parts():
    model = tiny()
    assert model.video is None and model.behavior_emb is None and model.clip_proj is None
    assert model.head_reg is None and model.head_cls is None
    batch = make_batch(model.config, frames=False, behavior=False)
    out = model(batch)
    assert out["latents"] == {} and "y_reg" not in out and "class_logits" not in out
    assert set(model.losses(out, batch)) == {"id", "dt"}


def test_clip_embd_and_sinusoidal_time_embedding():
    model = full_model(clip_embd=7, time_embedding="sinusoidal")
    assert model.time_emb.mlp is None
    out = model(make_batch(model.config))
    assert all(latent.shape == (4, 7) for latent in out["latents"].values())


def test_block_size_is_enforced():
    model = tiny(block_size=4)
    with pytest.raises(ValueError, match="block_size"):
        model(make_batch(model.config, frames=False, behavior=False))


# ----------------------------------------------------------------------------- masks
def test_causal():
    model = full_model()
    batch = make_batch(model.config, lengths=(9, 9, 9, 9))
    reference = model(batch)["logits_id"]
    T = batch["id"].shape[1]
    for t in range(1, T):
        changed = dict(batch, id=batch["id"].clone(), dt=batch["dt"].clone())
        changed["id"][:, t] = (changed["id"][:, t] + 1) % N_NEURONS
        changed["dt"][:, t] = (changed["dt"][:, t] + 1) % N_DT
        logits = model(changed)["logits_id"]
        torch.testing.assert_close(logits[:, :t], reference[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(logits[:, t], reference[:, t])


def non_pad_outputs(model, batch):
    out = model(batch)
    valid = batch["id"] != model.config.pad_id
    return out["logits_id"][valid], out["logits_dt"][valid], out["pooled"], out["y_reg"], out["latents"]["id"]


def extra_padding(batch, config, n_extra, n_extra_prev):
    """The same windows padded with more PAD columns (current and past blocks)."""
    padded = dict(batch)
    for key, pad, n in (("id", config.pad_id, n_extra), ("dt", config.pad_dt, n_extra),
                        ("target_id", config.pad_id, n_extra), ("target_dt", config.pad_dt, n_extra),
                        ("id_prev", config.pad_id, n_extra_prev), ("dt_prev", config.pad_dt, n_extra_prev)):
        padded[key] = torch.cat([batch[key], torch.full((len(batch[key]), n), pad)], dim=1)
    return padded


def test_pad_keys_have_no_effect():
    model = full_model()
    c = model.config
    batch = make_batch(c)
    reference = non_pad_outputs(model, batch)
    # 1. Pad the current and past blocks further.
    for got, want in zip(non_pad_outputs(model, extra_padding(batch, c, 3, 5)), reference):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # 2. Change the dt tokens at PAD positions (current and past).
    changed = dict(batch, dt=batch["dt"].clone(), dt_prev=batch["dt_prev"].clone())
    changed["dt"][batch["id"] == c.pad_id] = 1
    changed["dt_prev"][batch["id_prev"] == c.pad_id] = 2
    for got, want in zip(non_pad_outputs(model, changed), reference):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # 3. Change the PAD embedding itself.
    with torch.no_grad():
        model.tok_emb.weight[c.pad_id] += 1.0
    for got, want in zip(non_pad_outputs(model, batch), reference):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_fully_padded_query_rows_are_finite():
    model = full_model()
    batch = make_batch(model.config, lengths=(0, 0, 0, 0), past_lengths=(0, 0, 0, 0))
    batch = extra_padding(batch, model.config, 4, 4)
    out = model(batch)
    # impossible next tokens are -inf by design; every position keeps a possible one
    for key in ("logits_id", "logits_dt"):
        assert torch.isfinite(out[key]).any(-1).all() and not torch.isnan(out[key]).any()
    assert torch.isfinite(out["pooled"]).all()


# ------------------------------------------------------------------- KV-cache path
def test_incremental_decoding_matches_full_forward():
    model = full_model()
    batch = make_batch(model.config, lengths=(6, 6, 6, 6), targets=False)
    ids, dts = batch["id"][:, :7], batch["dt"][:, :7]  # no PAD: SOS + 6 events
    full = model(dict(batch, id=ids, dt=dts))["logits_id"]
    context = model.encode_context(batch)
    state = model.start_decoding(context)
    def id_logits(t0, t1):  # conditioned on the input dts, as the full forward without targets
        z = model.decode(ids[:, t0:t1], dts[:, t0:t1], state=state)
        return model.id_logits(z, ids[:, t0:t1], dts[:, t0:t1], dts[:, t0:t1])

    steps = [id_logits(0, 3)]  # a 3-token prefix
    for t in range(3, 7):
        steps.append(id_logits(t, t + 1))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    assert state.length == 7
    # Selecting rows keeps the rows' caches.
    rows = torch.tensor([2, 0])
    sub = state.select(rows)
    assert sub.self_kv[0][0].shape[0] == 2 and sub.memory["history"][1].shape[0] == 2


# ------------------------------------------------------------------------ gradients
def test_gradients_reach_every_parameter():
    model = full_model().train()
    batch = make_batch(model.config)
    losses = model.losses(model(batch), batch)
    assert set(losses) == {"id", "dt", "contrastive", "regression", "classification"}
    sum(losses.values()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_losses_match_independent_computations():
    model = full_model().eval()
    batch = make_batch(model.config)
    out = model(batch)
    losses = model.losses(out, batch)
    c = model.config
    for key, pad in (("id", c.pad_id), ("dt", c.pad_dt)):
        logits = out[f"logits_{key}"]
        target = batch[f"target_{key}"]
        log_p = torch.log_softmax(logits.float(), -1).gather(-1, target[..., None])[..., 0]
        torch.testing.assert_close(losses[key], -log_p[target != pad].mean())
    error = out["y_reg"] - batch["y_reg"]
    torch.testing.assert_close(losses["regression"], (error ** 2).mean())
    # a batch without targets gives no supervised or token loss
    targets = ("target_id", "target_dt", "y_reg", "y_cls")
    inputs = {k: v for k, v in batch.items() if k not in targets}
    assert set(model.losses(model(inputs), inputs)) == {"contrastive"}


def test_sclm_loss_per_token_sums_to_the_summed_loss():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 4, 6), torch.tensor([[1, 2, 5, 5], [0, 3, 4, 5]])
    per_token = sclm_loss(logits, targets, pad_index=5, reduction="none")
    assert per_token.shape == (2, 4) and torch.all(per_token[targets == 5] == 0)
    torch.testing.assert_close(per_token.sum(), sclm_loss(logits, targets, 5, reduction="sum"))


# ---------------------------------------------------------------------- contrastive
@pytest.mark.parametrize("symmetric", [False, True])
def test_contrastive_loss_lower_for_aligned_pairs(symmetric):
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(32, 16, generator=g), dim=-1)
    b = torch.nn.functional.normalize(a + 0.1 * torch.randn(32, 16, generator=g), dim=-1)
    shuffled = b[torch.randperm(32, generator=g)]
    aligned = info_nce(a, b, 0.5, symmetric)
    assert aligned < info_nce(a, shuffled, 0.5, symmetric)
    three = contrastive_loss({"id": a, "frames": b, "behavior": b}, 0.5, symmetric)
    assert three < contrastive_loss({"id": a, "frames": shuffled, "behavior": shuffled}, 0.5, symmetric)


def test_contrastive_one_way_matches_definition():
    g = torch.Generator().manual_seed(1)
    a = torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=-1)
    S = a @ b.T / 0.5
    expected = (S.logsumexp(dim=1) - S.diag()).mean()
    torch.testing.assert_close(info_nce(a, b, 0.5), expected)
    expected_symmetric = 0.5 * (expected + (S.T.logsumexp(dim=1) - S.diag()).mean())
    torch.testing.assert_close(info_nce(a, b, 0.5, symmetric=True), expected_symmetric)


def test_contrastive_temperature_and_normalisation():
    B = 8
    a = torch.eye(B)  # orthonormal rows: perfectly aligned with themselves
    # a lower temperature sharpens the softmax over the batch: the loss of aligned pairs falls
    losses = [info_nce(a, a, t).item() for t in (1.0, 0.5, 0.1)]
    assert losses[0] > losses[1] > losses[2] > 0
    # identical latents for every sample carry nothing: log(B) at any temperature
    same = torch.nn.functional.normalize(torch.ones(B, 4), dim=-1)
    for t in (1.0, 0.1):
        torch.testing.assert_close(info_nce(same, same, t), torch.tensor(math.log(B)))
    # the model's latents are unit vectors, whatever the scale of its features
    model = build_model("tiny", n_neurons=5, n_dt=6, contrastive=("id", "frames"),
                        frames_shape=(3, 4, 6), frame_kernel=(3, 2, 3)).eval()
    batch = {"id": torch.tensor([[5, 1, 3, 6]]), "dt": torch.tensor([[0, 1, 2, 7]]),
             "frames": 10 * torch.randn(1, 1, 3, 4, 6)}
    with torch.no_grad():
        latents = model(batch, token_logits=False)["latents"]
    for z in latents.values():
        torch.testing.assert_close(z.norm(dim=-1), torch.ones(1))


# -------------------------------------------------------------------------- overfit
def test_tiny_model_overfits_fixed_windows():
    torch.manual_seed(0)
    model = tiny(n_layers_history=1).train()
    batch = make_batch(model.config, lengths=(8, 5, 10, 3), frames=False, behavior=False, seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        losses = model.losses(model(batch), batch)
        loss = losses["id"] + losses["dt"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # Chance level is log(15) + log(9) = 4.9 nats; memorizing 4 windows goes far below.
    assert loss.item() < 0.1


# ----------------------------------------------------------------------- param count
def test_paper_parameter_count():
    """Parameter count of the lateral pretraining model (spec header and 3.9).

    The spec's hand count of the original, matching its logged 2.510515e+07, is 25,105,152
    (N = 2023, 6 dt values -> vocab 9, frames (3, 30, 100) with a (3, 5, 5) kernel, 6/6/6
    layers, blocks 100/700, contrastive on 'id' and 'frames'). Ours is exactly 512 less:
    the original builds a final ``ln_f = LayerNorm(256)`` (256 weights + 256 biases) that
    it never applies; we do not build it. Everything else matches one to one: fused QKV
    (3 E^2 + 3 E) and Q + fused KV have the parameters of separate q, k, v; the 3-D frame
    position encoding has no parameters; ``clip_embd=None`` gives the original's E -> E
    projection (65,536). The lateral pretraining config has no behaviour modalities, so no
    behaviour parameters enter either count. The paper's independent id and dt heads are
    ``id_head="independent"``; the default ``"given_dt"`` adds the dt-conditioned id path
    (a dt embedding, a LayerNorm and a 256 -> 512 -> 256 MLP). The original's mean-pooled
    frame latent is ``compat_clip_mean_frames=True``; the default adds the spatial weights
    of :meth:`Neuroformer.frame_feature`.
    """
    model = build_model("paper", 2023, n_dt=6, frames_shape=(3, 30, 100), frame_kernel=(3, 5, 5),
                        contrastive=("id", "frames"), id_head="independent",
                        compat_clip_mean_frames=True)
    count = sum(p.numel() for p in model.parameters())
    unused_ln_f = 2 * 256
    assert count == 25_105_152 - unused_ln_f == 25_104_640
    joint = build_model("paper", 2023, n_dt=6, frames_shape=(3, 30, 100), frame_kernel=(3, 5, 5),
                        contrastive=("id", "frames"))
    E, dt_vocab = 256, 9
    id_given_dt = dt_vocab * E + 2 * E + (E * 2 * E + 2 * E) + (2 * E * E + E)
    frame_pool = (1 * 6 * 20) * E  # a weight per frame token (3x30x100 clip, 3x5x5 patches) and channel
    assert sum(p.numel() for p in joint.parameters()) == count + id_given_dt + frame_pool

    # Contrastive off removes the 256 x 256 projection: spec 3.9 gives 25,039,616 for the original.
    model = build_model("paper", 2023, n_dt=6, frames_shape=(3, 30, 100), id_head="independent")
    assert sum(p.numel() for p in model.parameters()) == 25_039_616 - unused_ln_f

    # mconf_predict_all (spec header: 28,203,023): contrastive off, 3 behaviour variables with a
    # 4-layer cross-attention group and 3 regression heads (3 x 257 = one Linear(E, 3)). Our
    # behaviour embedding has 2 E = 512 parameters per variable where the original's ProjectNorm
    # has 516 (LayerNorm(1): 2, Linear(1, 2): 2, Linear(2, E): 512), and there is no ln_f.
    model = build_model("paper", 2023, n_dt=6, frames_shape=(3, 30, 100), n_behavior_inputs=3, n_targets=3,
                        id_head="independent")
    assert sum(p.numel() for p in model.parameters()) == 28_203_023 - unused_ln_f - 3 * 4


# ---------------------------------------------------------------------- compat flags
def test_compat_drop_frame_pe():
    """Without the position code, a spatially uniform clip gives identical frame tokens."""
    frames = torch.ones(2, 1, 3, 10, 10)
    for drop, identical in ((True, True), (False, False)):
        model = full_model(compat_drop_frame_pe=drop)
        tokens = model.video(frames)  # (2, 4, E)
        assert torch.allclose(tokens, tokens[:, :1].expand_as(tokens)) == identical
    code = sinusoid_3d((1, 2, 2), 32)
    assert code.shape == (1, 2, 2, 32) and not torch.allclose(code[0, 0, 0], code[0, 1, 1])


def test_compat_layernorm_behavior():
    """With the original LayerNorm(1), behaviour values never reach the model (spec 3.6)."""
    for compat, same in ((True, True), (False, False)):
        model = full_model(compat_layernorm_behavior=compat)
        batch = make_batch(model.config)
        changed = dict(batch, behavior=batch["behavior"] + 1.0)
        assert torch.allclose(model(batch)["logits_id"], model(changed)["logits_id"]) == same


def test_compat_attend_pad():
    """Without key-padding masks, extra PAD columns change the outputs (spec 3.4)."""
    model = full_model(compat_attend_pad=True)
    batch = make_batch(model.config)
    got, want = non_pad_outputs(model, extra_padding(batch, model.config, 0, 5))[0], non_pad_outputs(model, batch)[0]
    assert not torch.allclose(got, want)


def test_compat_pool_pad():
    """Pooling over PAD positions makes the pooled stream depend on the padding (spec 3.8)."""
    model = full_model(compat_pool_pad=True)
    batch = make_batch(model.config)
    padded = extra_padding(batch, model.config, 3, 0)
    assert not torch.allclose(model(padded)["pooled"], model(batch)["pooled"])
    default = full_model()
    torch.testing.assert_close(default(padded)["pooled"], default(batch)["pooled"], rtol=0, atol=1e-6)


def test_model_holds_no_device_or_counter_state():
    model = full_model()
    assert isinstance(model, Neuroformer)
    assert not any(f.name in ("device", "epoch") for f in dataclasses.fields(model.config))
    assert not hasattr(model, "device") and not hasattr(model, "epoch")
