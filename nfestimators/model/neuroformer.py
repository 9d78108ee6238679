"""The Neuroformer model (spec 3-4): a multimodal GPT over spike tokens.

Data flow, for a batch dict as in ``docs/design.md``::

    current tokens ─ tok + time + pos ─► causal SA × n_layers_state (feature encoder) ─► h
    past tokens    ─ tok + time_prev + pos_prev ─► P                    (embedded only)
    frames         ─ Conv3d tokens [+ 3-D PE], SOS prepended ─► SA × n_layers_stimulus ─► V
    behaviour      ─ value * w_v + e_v ─► M
    h ─► cross-attn to P (n_layers_history) ─► to V (n_layers_stimulus) ─► to M (n_layers_behavior)
      ─► causal SA × n_layers_state ─► z ─► id / dt heads at every position
    masked mean of z [+ spike count] ─► regression / classification heads
    masked mean of the embedded current tokens ─► contrastive latent "id" (spikes alone)
    frame tokens (before their SA) ─ weighted sum per token and channel ─► latent "frames"

Everything that does not depend on the current tokens is computed by
:meth:`Neuroformer.encode_context`; the current-token path :meth:`Neuroformer.decode`
runs either on a whole sequence or incrementally with a :class:`DecodeState` (K/V caches
of the causal self-attention layers, cross-attention K/V computed once). ``forward``
uses the same path without a cache.

The supervised heads read the masked mean of z over SOS and the spike positions (the
paper's readout, ``config.readout="mean"``). A mean is blind to how many spikes were
averaged, so ``readout="mean+count"`` appends a code of the current window's number of spike
tokens n: piecewise-linear interpolation weights of ``log(1 + n)`` between the K knots
``config.count_knots``, and the heads read E + K inputs (:meth:`Neuroformer.readout_features`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import CrossAttentionBlock, SelfAttentionBlock, causal_mask, padding_mask
from .config import NeuroformerConfig, behavior_column
from .embeddings import BehaviorEmbedding, TimeEmbedding, VideoEncoder
from .heads import (IdGivenDt, RatePrior, binned_counts, count_code, impossible_dts,
                    impossible_ids, neuron_counts, other_sessions_units, pair_coincidences,
                    run_positions)
from .losses import contrastive_loss, sclm_loss
from .state import Context, DecodeState


def exact_linear(layer, x):
    """``layer(x)`` computed in float64 (float32 on MPS, which has no float64) outside
    autocast, returned in float32: the supervised heads in eval mode.

    The supervised heads may hold a converged linear decoder of the count inputs
    (:func:`~nfestimators.training.blend_count_decoder`), whose large weights of both signs
    cancel: in bfloat16 the result would lose most of its digits, and in float32 it would
    change with the batch's size at the last digits (scikit-learn's subset invariance). The
    head is a few thousand multiply-adds per window, small beside the transformer's layers
    (its float64 cost has not been benchmarked)."""
    dtype = torch.float32 if x.device.type == "mps" else torch.float64
    with torch.autocast(x.device.type, enabled=False):
        bias = None if layer.bias is None else layer.bias.to(dtype)
        return F.linear(x.to(dtype), layer.weight.to(dtype), bias).float()


class Neuroformer(nn.Module):
    """Neuroformer (Antoniades et al., ICLR 2024) on spike tokens.

    Parameters
    ----------
    config : NeuroformerConfig

    Examples
    --------
    >>> import torch
    >>> from nfestimators.model import build_model
    >>> model = build_model("tiny", n_neurons=10, n_dt=6)
    >>> batch = {"id": torch.tensor([[10, 3, 11]]), "dt": torch.tensor([[0, 2, 7]]),
    ...          "target_id": torch.tensor([[3, 11, 12]]), "target_dt": torch.tensor([[2, 7, 8]])}
    >>> out = model(batch)
    >>> out["logits_id"].shape, sorted(model.losses(out, batch))
    (torch.Size([1, 3, 13]), ['dt', 'id'])
    >>> sorted(model({"id": batch["id"], "dt": batch["dt"]}, token_logits=False))
    ['latents', 'pooled']
    """

    def __init__(self, config: NeuroformerConfig):
        super().__init__()
        self.config = c = config
        E = c.n_embd

        def self_blocks(n):
            return nn.ModuleList(
                SelfAttentionBlock(E, c.n_head, c.dropout_attn, c.dropout_resid) for _ in range(n)
            )

        def cross_blocks(n):
            return nn.ModuleList(
                CrossAttentionBlock(E, c.n_head, c.dropout_attn, c.dropout_resid) for _ in range(n)
            )

        # Current tokens; the token embedding is shared with the past tokens.
        self.tok_emb = nn.Embedding(c.id_vocab_size, E)
        self.pos_emb = nn.Parameter(torch.zeros(1, c.block_size, E))
        self.time_emb = TimeEmbedding(E, c.time_embedding)
        self.drop_embd = nn.Dropout(c.dropout_embd)
        self.fusion = nn.ModuleDict()

        # Past tokens: embedded only, no encoder (as the original).
        self.register_parameter("pos_emb_prev", None)
        self.time_emb_prev = None
        if c.n_layers_history > 0:
            self.pos_emb_prev = nn.Parameter(torch.zeros(1, c.block_size_prev, E))
            self.time_emb_prev = TimeEmbedding(E, c.time_embedding)
            self.fusion["history"] = cross_blocks(c.n_layers_history)

        # Stimulus: frame tokens and their bidirectional feature encoder.
        self.video = None
        self.frame_blocks = nn.ModuleList()
        if c.use_frames:
            self.video = VideoEncoder(
                E, c.frame_kernel, c.frame_stride, position_code=c.frame_pe and not c.compat_drop_frame_pe
            )
            self.drop_frames = nn.Dropout(c.dropout_frames)
            self.frame_blocks = self_blocks(c.n_layers_stimulus)
            self.fusion["stimulus"] = cross_blocks(c.n_layers_stimulus)

        # Behaviour inputs.
        self.behavior_emb = None
        aligns_behavior = c.use_contrastive and any(m.startswith("behavior") for m in c.contrastive)
        if c.n_behavior_inputs > 0 and (c.n_layers_behavior > 0 or aligns_behavior):
            self.behavior_emb = BehaviorEmbedding(c.n_behavior_inputs, E, c.compat_layernorm_behavior)
            if c.n_layers_behavior > 0:
                self.fusion["behavior"] = cross_blocks(c.n_layers_behavior)

        # Causal self-attention: feature encoder and final stack (separate weights).
        self.state_blocks = self_blocks(c.n_layers_state)
        self.decoder_blocks = self_blocks(c.n_layers_state)

        # Heads.
        self.head_id = nn.Linear(E, c.id_vocab_size, bias=False)
        self.head_dt = nn.Linear(E, c.dt_vocab_size, bias=False)
        # The next token's neuron given its dt: P(id, dt | z) = P(dt | z) P(id | z, dt).
        self.id_given_dt = IdGivenDt(E, c.dt_vocab_size) if c.id_head == "given_dt" else None
        # Supervised heads, on the pooled stream [+ the readout's count inputs].
        n_count = c.n_count_inputs
        self.register_buffer("count_knots", torch.tensor(c.count_knots, dtype=torch.float32),
                             persistent=False)  # (K,), from the config: not in state_dict
        slot = torch.full((c.n_neurons,), len(c.pair_units), dtype=torch.long)
        slot[list(c.pair_units)] = torch.arange(len(c.pair_units))
        self.register_buffer("pair_slot", slot, persistent=False)  # neuron -> its pair unit
        self.head_reg = nn.Linear(E + n_count, c.n_targets) if c.n_targets > 0 else None
        self.head_cls = (nn.Linear(E + n_count, c.n_classes, bias=False) if c.n_classes > 0
                         else None)
        self.clip_proj = nn.Linear(E, c.clip_embd or E, bias=False) if c.use_contrastive else None
        # Where each frame feature lies, per channel, for the "frames" latent (frame_feature).
        self.register_parameter("frame_pool", None)
        if c.use_contrastive and "frames" in c.contrastive and c.use_frames and not (
                c.compat_clip_mean_frames):
            self.frame_pool = nn.Parameter(torch.full((c.n_frame_tokens, E), 1 / c.n_frame_tokens))

        # The rate prior's per-neuron spikes per bin (set by the estimators at fit).
        self.register_buffer("unit_rates", torch.ones(c.n_neurons) if c.rate_prior else None)

        self.apply(self._init_weights)
        if c.rate_prior:  # the heads start silent: the model starts as the Poisson prior
            nn.init.zeros_(self.head_id.weight)
            nn.init.zeros_(self.head_dt.weight)
        with torch.no_grad():  # weights 0 until the count decoder sets them
            for head in (self.head_reg, self.head_cls):
                if head is not None:
                    head.weight[:, self.decoder_only_columns] = 0.0

    @property
    def decoder_only_columns(self):
        """The columns of the supervised heads' inputs that only the count decoder reads
        (``config.decoder_only_inputs()``, after the pooled stream); an empty slice for
        readouts without them."""
        inputs, offset = self.config.decoder_only_inputs(), self.config.n_embd
        return slice(offset + inputs.start, offset + inputs.stop)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # ------------------------------------------------------------------ context
    def encode_context(self, batch):
        """Encode the past tokens, frames and behaviour inputs of ``batch``.

        Parameters
        ----------
        batch : dict
            Batch dict (``docs/design.md``); ``id``/``dt`` and targets are not used.
            Modalities absent from the batch or not built in this model are skipped.

        Returns
        -------
        Context
        """
        c = self.config
        context = Context()
        if "history" in self.fusion and "id_prev" in batch:
            id_prev = batch["id_prev"]  # (B, Tp)
            Tp = id_prev.shape[1]
            if Tp > c.block_size_prev:
                raise ValueError(f"past block length {Tp} exceeds block_size_prev={c.block_size_prev}")
            past = self.tok_emb(id_prev) + self.time_emb_prev(batch["dt_prev"]) + self.pos_emb_prev[:, :Tp]
            context.past = self.drop_embd(past)  # (B, Tp, E)
            if not c.compat_attend_pad:
                context.past_valid = id_prev != c.pad_id
        if self.video is not None and "frames" in batch:
            frames = batch["frames"]  # (B, 1, F, H, W)
            B = frames.shape[0]
            sos = self._embed_tokens(
                torch.full((B, 1), c.sos_id, device=frames.device),
                torch.zeros((B, 1), device=frames.device),
                offset=0,
            )  # (B, 1, E)
            x = self.drop_frames(torch.cat([sos, self.video(frames)], dim=1))  # (B, 1 + Nf, E)
            if self.frame_pool is not None:
                context.frame_tokens = x[:, 1:]  # (B, Nf, E)
            for block in self.frame_blocks:
                x, _ = block(x)
            context.frames = x
        if self.behavior_emb is not None and "behavior" in batch:
            context.behavior = self.drop_embd(self.behavior_emb(batch["behavior"]))  # (B, V, E)
        return context

    def _fusion_memory(self, context):
        """Cross-attention K/V of every fusion block whose modality is in ``context``."""
        sources = {
            "history": (context.past, padding_mask(context.past_valid)),
            "stimulus": (context.frames, None),
            "behavior": (context.behavior, None),
        }
        memory = {}
        for name, blocks in self.fusion.items():
            tokens, mask = sources[name]
            if tokens is not None:
                memory[name] = ([block.attn.memory_kv(tokens) for block in blocks], mask)
        return memory

    def start_decoding(self, context):
        """Empty :class:`DecodeState` for incremental decoding given an encoded context."""
        return DecodeState(self._fusion_memory(context), [None] * (2 * self.config.n_layers_state))

    # ------------------------------------------------------------ current path
    def _embed_tokens(self, ids, dts, offset):
        """Token + dt time + position embedding (B, T, E) of tokens at ``offset`` onwards."""
        T = ids.shape[1]
        if offset + T > self.config.block_size:
            raise ValueError(f"sequence length {offset + T} exceeds block_size={self.config.block_size}")
        return self.tok_emb(ids) + self.time_emb(dts) + self.pos_emb[:, offset : offset + T]

    def decode(self, ids, dts, context=None, state=None, return_embedded=False):
        """Run the current tokens through the feature encoder and the fusion transformer.

        Parameters
        ----------
        ids, dts : LongTensor of shape (B, T)
            Current id and dt tokens. With ``state``, these are the next T tokens after the
            ``state.length`` already decoded ones and must not contain PAD.
        context : Context, optional
            Encoded context; used when ``state`` is None.
        state : DecodeState, optional
            Incremental decoding state; updated in place (caches grow by T).
        return_embedded : bool, default=False
            Also return the embedded current tokens e (token + dt + position embeddings,
            before any attention: the spikes alone).

        Returns
        -------
        Tensor of shape (B, T, E)
            Final stream z; ``(z, e)`` with ``return_embedded``.
        """
        c = self.config
        T = ids.shape[1]
        if state is None:
            offset, memory = 0, self._fusion_memory(context)
            self_kv = [None] * (2 * c.n_layers_state)
            key_valid = None if c.compat_attend_pad else ids != c.pad_id
        else:
            offset, memory, self_kv, key_valid = state.length, state.memory, state.self_kv, None
        mask, is_causal = causal_mask(T, offset, key_valid)

        x = embedded = self.drop_embd(self._embed_tokens(ids, dts, offset))  # (B, T, E)
        n = c.n_layers_state
        for i, block in enumerate(self.state_blocks):
            x, self_kv[i] = block(x, mask, is_causal, self_kv[i])
        for name, (kvs, kv_mask) in memory.items():
            for block, kv in zip(self.fusion[name], kvs):
                x = block(x, kv, kv_mask)
        for i, block in enumerate(self.decoder_blocks):
            x, self_kv[n + i] = block(x, mask, is_causal, self_kv[n + i])
        if state is not None:
            state.length += T
        return (x, embedded) if return_embedded else x

    def token_logits(self, z, ids, dts, next_dt, unit_range=None):
        """Next-token id and dt logits, (B, T, N+3) and (B, T, K+3), from the final stream.

        Parameters
        ----------
        z : Tensor of shape (B, T, E)
            Final stream.
        ids, dts : LongTensor of shape (B, T)
            The current (input) tokens.
        next_dt : LongTensor of shape (B, T)
            dt of the next token (the target, or the one just drawn when sampling); the id
            logits are conditioned on it (``config.id_head="given_dt"``; ignored with
            ``"independent"``).
        unit_range : LongTensor of shape (B, 2), optional
            Multi-session models: the ids ``[lo, hi)`` of every row's session in the
            concatenated unit vocabulary; the id logits of other sessions' neurons are -inf
            (their probability 0). None: every neuron.

        Notes
        -----
        The next spike's neuron and bin are dependent: tokens are time-major, then neuron
        ascending, so after neuron n in bin b the next spike lies in bin b with a neuron id
        >= n, or in a later bin with any id. The paper's two heads read z independently and
        can only give the product of the marginals; they lose that mutual information (about
        0.3 bit per spike for 80 neurons at a few Hz) and spend probability on sequences that
        never occur. With ``id_head="given_dt"`` the joint is factorised exactly as
        ``P(dt | z) P(id | z, dt)``, and the layout's order is enforced instead of learned:
        value dts before the current one, and ids below the current one in the same bin,
        get probability 0 (their logits are -inf). On spikes with little to learn beyond
        per-neuron rates this is what lets the model beat a Poisson model at all.
        """
        prior = self.rate_prior(ids, dts, unit_range=unit_range)
        return (self.id_logits(z, ids, dts, next_dt, unit_range, prior),
                self.dt_logits(z, dts, prior))

    def rate_prior(self, ids, dts, repeat=None, unit_range=None):
        """The :class:`~nfestimators.model.heads.RatePrior` of the current tokens ``ids``,
        ``dts`` (...) whose positions in their runs of equal spikes are ``repeat`` (...;
        None: :func:`~nfestimators.model.heads.run_positions` of ``ids``, ``dts`` as
        sequences), at the ``unit_rates`` buffer; None without ``config.rate_prior``."""
        if not self.config.rate_prior:
            return None
        if repeat is None:
            repeat = run_positions(ids, dts, self.config)
        return RatePrior(self.unit_rates, ids, dts, repeat, unit_range, self.config)

    def dt_logits(self, z, dts, prior=None):
        """Logits of the next token's dt, (..., K+3), given the stream and the current dts (...).

        With ``id_head="given_dt"`` the impossible ones are -inf: SOS and PAD, and after a
        value dt every earlier value. ``prior`` (:meth:`rate_prior`) is added when given.
        """
        logits = self.head_dt(z)
        if self.id_given_dt is None:  # the paper's heads, unconstrained
            return logits
        if prior is not None:
            logits = logits + prior.dt_logits()
        return logits.masked_fill(impossible_dts(dts, self.config), float("-inf"))

    def id_logits(self, z, ids, dts, next_dt, unit_range=None, prior=None):
        """Logits of the next token's neuron id, (..., N+3), given its dt (see :meth:`token_logits`).

        With ``id_head="given_dt"`` the impossible ones are -inf: after an EOS dt every id but
        EOS; after a value dt every special id, and in the current token's bin every neuron
        below the current one. (Positions whose next dt is PAD are left alone: no target.)
        With ``unit_range`` (B, 2), the neurons outside every row's session are -inf too.
        ``prior`` (:meth:`rate_prior`) is added when given.
        """
        if self.id_given_dt is None:
            logits = self.head_id(z)
        else:
            logits = self.head_id(self.id_given_dt(z, next_dt))
            if prior is not None:
                logits = logits + prior.id_logits(next_dt)
            logits = logits.masked_fill(impossible_ids(ids, dts, next_dt, self.config),
                                        float("-inf"))
        if unit_range is not None:
            logits = logits.masked_fill(
                other_sessions_units(unit_range, logits.ndim, self.config), float("-inf"))
        return logits

    def readout_features(self, ids, dts, pooled):
        """Input of the regression and classification heads (``config.readout``).

        Parameters
        ----------
        ids, dts : LongTensor of shape (B, T)
            Current id and dt tokens.
        pooled : Tensor of shape (B, E)
            Masked mean of the final stream.

        Returns
        -------
        Tensor of shape (B, E) or (B, E + K)
            ``pooled`` (``"mean"``), or ``pooled`` followed by ``sqrt(E)`` times
            :meth:`count_code` of the window's number of spike tokens (neither PAD, SOS nor
            EOS) (``"mean+count"``).

        Notes
        -----
        The code's rows sum to 1, while ``pooled`` (a mean of layer-normed vectors) has a norm
        of about ``sqrt(E)``. AdamW moves every head weight by about the learning rate per
        step, so at equal scale the E pooled inputs would move the logits some E times faster
        than the code, and a backbone that fits the training windows' noise would win over
        the count. Scaling the code by ``sqrt(E)`` puts it on the pooled features' scale (on
        the D_A_I rate code, tiny preset, 10 epochs: 0.706 test accuracy unscaled, 0.789
        scaled).
        """
        if self.config.readout == "mean":
            return pooled
        return torch.cat([pooled, self.count_features(ids, dts).to(pooled.dtype)], dim=1)

    def count_features(self, ids, dts):
        """The readout's inputs after ``pooled`` (:meth:`readout_features`), in the blocks of
        ``config.count_input_blocks()``: ``sqrt(E)`` times the count code of the window's
        spike tokens (K), then (``"mean+binned+pairs"``) the P pairwise coincidences
        (:func:`~nfestimators.model.heads.pair_coincidences`), then (the binned readouts)
        every neuron's count over the window (the neuron counts, when ``count_bins > 1``)
        and in each of the ``count_bins`` time bins, as ``log(1 + count)`` or raw
        (``config.count_transform``). They depend on
        the tokens alone, not on the network's weights.

        The blocks of ``config.decoder_only_blocks`` (the coincidences and the neuron
        counts; the regressor's binned counts too) are zeros in training mode: their head
        weights start at 0 and training leaves them there (no gradient reaches them), so
        the network trains as with the other blocks alone; only the count decoder
        (``count_decoder="blend"``, fitted after training on the validated choice of its
        inputs) sets them. A thousand raw pair inputs trained with
        the network cost the regression sets of the decoding suite about 0.01 R² (H200, 3
        seeds: behaviour 0.945 against 0.954, ``make_spiking_data`` 0.809 against 0.817)."""
        c = self.config
        spikes = (ids != c.pad_id) & (ids != c.sos_id) & (ids != c.eos_id)
        code = self.count_code(spikes.sum(1, dtype=torch.float32))  # (B, K)
        features = [code * math.sqrt(c.n_embd)]  # see readout_features' Notes
        blocks = c.count_input_blocks()
        if self.training:  # the decoder-only blocks (adjacent) are zeros
            decoder_only = c.decoder_only_inputs()
            features.append(ids.new_zeros((ids.shape[0], decoder_only.stop - decoder_only.start),
                                          dtype=torch.float32))
            if "binned counts" in blocks and "binned counts" not in c.decoder_only_blocks:
                features.append(binned_counts(ids, dts, spikes, c))  # the last block
        else:
            if "pairs" in blocks:
                features.append(pair_coincidences(ids, dts, spikes, c, self.pair_slot))
            if "neuron counts" in blocks:
                features.append(neuron_counts(ids, spikes, c.n_neurons, c.count_transform))
            if "binned counts" in blocks:
                features.append(binned_counts(ids, dts, spikes, c))
        return torch.cat(features, dim=1)

    def count_code(self, n_spikes):
        """:func:`~nfestimators.model.heads.count_code` over ``config.count_knots``."""
        return count_code(n_spikes, self.count_knots)

    # ------------------------------------------------------------------ forward
    def forward(self, batch, *, token_logits=True):
        """Full forward pass: the model's outputs, no loss (see :meth:`losses`).

        Parameters
        ----------
        batch : dict
            Batch dict of ``docs/design.md``.
        token_logits : bool, default=True
            Compute the next-token logits ``logits_id`` and ``logits_dt`` (:meth:`token_logits`),
            which training and the likelihood need. ``False`` is the inference path of
            ``transform`` and ``predict``: the heads over the id and dt vocabularies are
            skipped (the outputs that remain are the same) and the batch needs no targets.

        Returns
        -------
        dict
            ``logits_id`` (B, T, N+3) and ``logits_dt`` (B, T, K+3) (with ``token_logits``),
            ``pooled`` (B, E),
            ``latents`` (modality -> (B, clip_embd), L2-normalized; only the contrastive
            modalities present, empty without contrastive), ``y_reg`` (B, n_targets) and
            ``class_logits`` (B, n_classes) when the heads exist (read from ``pooled``, and
            from the window's spike-count code with ``config.readout="mean+count"``: see
            :meth:`readout_features`). Of the targets in ``batch`` only ``target_dt`` is read:
            the id logits are conditioned on the next token's dt (:meth:`token_logits`).
        """
        c = self.config
        ids = batch["id"]
        context = self.encode_context(batch)
        z, embedded = self.decode(ids, batch["dt"], context=context, return_embedded=True)  # (B, T, E)
        out = {}
        if token_logits:
            # the id logits are conditioned on the next token's dt: the target's (without
            # targets, the input's, which only tests of the model itself look at)
            next_dt = batch["target_dt"] if "target_dt" in batch else batch["dt"]
            out["logits_id"], out["logits_dt"] = self.token_logits(
                z, ids, batch["dt"], next_dt, batch.get("unit_range"))

        # Pool over SOS and the spike positions. The EOS input position is left out too, so
        # that a window's latent does not depend on how far its batch was padded.
        valid = (torch.ones_like(ids, dtype=torch.bool) if c.compat_pool_pad
                 else (ids != c.pad_id) & (ids != c.eos_id))
        weights = valid.unsqueeze(-1).to(z.dtype)  # (B, T, 1)
        pooled = (z * weights).sum(1) / weights.sum(1)  # (B, E)
        out["pooled"] = pooled

        latents = {}
        if self.clip_proj is not None:
            # The spike feature is taken before any attention: the final stream has already
            # seen the frames, so aligning it with them would say nothing about the spikes;
            # and the feature encoder's self-attention lets InfoNCE be met by telling the
            # training windows apart (see spike_feature).
            spikes = pooled if c.compat_clip_final_layer else self.spike_feature(embedded, weights)
            behavior = context.behavior  # (B, V, E) or None
            features = {
                "id": spikes,
                "frames": self.frame_feature(context),
                "behavior": None if behavior is None else behavior.mean(1),
            }
            for name in dict.fromkeys(c.contrastive):
                column = behavior_column(name)
                if column is not None:  # one behaviour input
                    feature = None if behavior is None else behavior[:, column]
                else:
                    feature = features[name]
                if feature is not None:
                    latents[name] = F.normalize(self.clip_proj(feature), dim=-1)
        out["latents"] = latents

        head_input = self.readout_features(ids, batch["dt"], pooled)  # (B, E) or (B, E + K)
        if self.head_reg is not None:
            out["y_reg"] = self.head_output(self.head_reg, head_input)  # (B, n_targets)
        if self.head_cls is not None:
            out["class_logits"] = self.head_output(self.head_cls, head_input)  # (B, n_classes)
        return out

    def head_output(self, head, head_input):
        """A supervised head's output: ``head(head_input)`` while training (under the fit's
        autocast, as every layer), :func:`exact_linear` in eval mode, where the head may
        hold the blended count decoder (``count_decoder="blend"``, applied after training)."""
        return head(head_input) if self.training else exact_linear(head, head_input)

    @staticmethod
    def spike_feature(embedded, weights):
        """The spike feature of the ``"id"`` contrastive latent, (B, E): the mean of the
        embedded current tokens ``embedded`` (B, T, E) over the positions where ``weights``
        (B, T, 1) is 1 (SOS and the spikes).

        The embeddings are those the feature encoder starts from (token + dt + position), so
        the feature is a bag of the window's spikes and their bins, linear in the counts of
        every neuron in every bin, as a linear decoder of spike counts. The output of the
        feature encoder's causal self-attention, aligned instead, could tell every training
        window apart: on ``make_spiking_data(stimulus=True)`` (seed 3, ``small`` preset,
        default settings, 18 epochs) its held-out spike -> frame top-1 retrieval stayed at
        3-4x chance while the training windows reached 16x (see
        ``benchmarks/contrastive_retrieval.py``).
        """
        return (embedded * weights).sum(1) / weights.sum(1)

    def frame_feature(self, context):
        """The frame feature of the ``"frames"`` contrastive latent, (B, E), or None.

        A learnt weighting of the frame tokens, one weight per token and channel, on the
        tokenizer's output (before the frame self-attention): ``sum_p w[p, e] x[p, e]``,
        starting as their mean. The original's mean of the frame encoder's output
        (``compat_clip_mean_frames``) cannot say *where* a feature lies in the image, which
        is what neurons with receptive fields respond to; and its self-attention blocks
        tell every training clip from every other, so the InfoNCE loss is met by
        memorising the training windows. On ``make_spiking_data(stimulus=True)`` (seed 3,
        held-out top-1 spike -> frame retrieval, as a multiple of chance; a linear spike
        encoder trained alone on InfoNCE against each frame readout): mean after two
        self-attention blocks 1x (800x on the training windows), mean of the tokens 3x,
        this weighting 10x, a linear map of the raw pixels 13x.
        """
        if context.frames is None:
            return None
        if self.frame_pool is None:
            return context.frames.mean(1)
        return (context.frame_tokens * self.frame_pool.to(context.frame_tokens.dtype)).sum(1)

    def losses(self, out, batch):
        """The unweighted losses of the outputs ``out`` of :meth:`forward` whose targets are
        in ``batch`` (a separate call: inference never pays for them).

        Parameters
        ----------
        out : dict
            ``forward(batch)``.
        batch : dict
            The batch dict, with any of ``target_id``, ``target_dt``, ``y_reg``, ``y_cls``.

        Returns
        -------
        dict of str to Tensor
            Scalars ``id``, ``dt`` (next-token cross-entropy), ``contrastive`` (two or more
            latents), ``regression`` (MSE) and ``classification`` (cross-entropy), as present.
        """
        c = self.config
        losses = {}
        if "target_id" in batch:
            losses["id"] = sclm_loss(out["logits_id"], batch["target_id"], c.pad_id)
        if "target_dt" in batch:
            losses["dt"] = sclm_loss(out["logits_dt"], batch["target_dt"], c.pad_dt)
        if len(out["latents"]) >= 2:
            losses["contrastive"] = contrastive_loss(out["latents"], c.clip_temp, c.symmetric_clip)
        if "y_reg" in out and "y_reg" in batch:
            target = batch["y_reg"].float().reshape(out["y_reg"].shape)
            losses["regression"] = F.mse_loss(out["y_reg"].float(), target)
        if "class_logits" in out and "y_cls" in batch:
            losses["classification"] = F.cross_entropy(out["class_logits"].float(), batch["y_cls"],
                                                       label_smoothing=c.label_smoothing)
        return losses
