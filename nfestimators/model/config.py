"""Configuration of the Neuroformer model and named presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

MODALITIES = ("id", "frames", "behavior")
READOUTS = ("mean", "mean+count", "mean+binned", "mean+binned+pairs")
BINNED_READOUTS = ("mean+binned", "mean+binned+pairs")  # the readouts with binned counts
# Count-input blocks the network does not train on by default: zeros in training mode, head
# weights 0 until the count decoder sets them (Neuroformer.count_features). The config field
# ``decoder_only_blocks`` may be ALL_DECODER_ONLY_BLOCKS, the regressor's.
DECODER_ONLY_BLOCKS = ("pairs", "neuron counts")
ALL_DECODER_ONLY_BLOCKS = DECODER_ONLY_BLOCKS + ("binned counts",)  # the other choice
# How the neuron counts and the binned counts read a count c: log(1 + c), or c itself.
COUNT_TRANSFORMS = ("log", "raw")
COUNTED_BLOCKS = ("neuron counts", "binned counts")  # the blocks count_transform applies to
# The original code's behaviours kept as switches (the ``compat_<name>`` fields below).
COMPAT_SWITCHES = ("drop_frame_pe", "layernorm_behavior", "attend_pad", "pool_pad",
                   "clip_final_layer", "clip_mean_frames")
BEHAVIOR_PREFIX = "behavior:"


def behavior_modality(column):
    """Contrastive modality name of behaviour input column ``column``: ``"behavior:<j>"``."""
    return f"{BEHAVIOR_PREFIX}{int(column)}"


def behavior_column(modality):
    """Column ``j`` of a ``"behavior:<j>"`` modality name; None for any other name."""
    if not modality.startswith(BEHAVIOR_PREFIX):
        return None
    return int(modality[len(BEHAVIOR_PREFIX):])


def compat_fields(switches):
    """Config fields ``{"compat_<name>": True}`` of the switch names ``switches``
    (a subset of :data:`COMPAT_SWITCHES`)."""
    unknown = sorted(set(switches) - set(COMPAT_SWITCHES))
    if unknown:
        raise ValueError(f"unknown compat switches {unknown}; choose among {COMPAT_SWITCHES}")
    return {f"compat_{name}": True for name in switches}


@dataclass
class NeuroformerConfig:
    """Hyper-parameters of :class:`~nfestimators.model.Neuroformer`.

    Parameters
    ----------
    n_neurons : int
        Number of neurons N; the id vocabulary is ``N + 3`` (values, SOS, EOS, PAD).
    n_dt : int
        Number of dt values K; the dt vocabulary is ``K + 3``.
    n_embd, n_head : int
        Model width E and number of attention heads.
    n_layers_state : int
        Causal self-attention blocks over the current tokens, used twice with separate
        weights: in the feature encoder and as the final stack.
    n_layers_history : int
        Cross-attention blocks from the current tokens to the past-window tokens.
    n_layers_stimulus : int
        Bidirectional self-attention blocks over the frame tokens (feature encoder) and
        cross-attention blocks from the current tokens to the frame tokens.
    n_layers_behavior : int
        Cross-attention blocks from the current tokens to the behaviour inputs.
    block_size, block_size_prev : int
        Maximum current and past token lengths (size of the position embeddings).
    dropout_attn, dropout_resid, dropout_embd, dropout_frames : float
        Dropout on attention probabilities, residual branches, token and behaviour
        embeddings, and frame tokens.
    time_embedding : {"learned", "sinusoidal"}
        Learned MLP on the dt index (what the original's trained models use) or a fixed
        sinusoid of it.
    frames_shape : tuple of int or None
        ``(F, H, W)`` of a stimulus clip; None builds no stimulus path.
    frame_kernel, frame_stride : tuple of int
        Conv3d kernel and stride of the frame tokenizer; ``frame_stride=None`` means the
        kernel (non-overlapping patches).
    frame_pe : bool
        Add the 3-D sinusoidal position encoding to the frame tokens.
    n_behavior_inputs : int
        Number of behaviour input variables (``batch["behavior"]`` has this many columns).
    n_targets, n_classes : int
        Width of the regression and classification heads (0 builds no head).
    readout : {"mean", "mean+count", "mean+binned", "mean+binned+pairs"}
        Input of the regression and classification heads. ``"mean"`` (the paper's): the
        masked mean of the final stream over SOS and the spike positions, (B, E).
        ``"mean+count"``: that mean and a code of the current window's spike count n
        scaled by ``sqrt(n_embd)``, (B, E + len(count_knots)). The mean alone cannot tell
        how many spikes a window holds, and rate codes live in that number.
        ``"mean+binned"``: both, followed by ``log(1 + c)`` of every neuron's spike count c
        in each of ``count_bins`` equal time bins of the current window (after the neuron
        counts below), (B, E + K + n_neurons * (1 + count_bins)): a linear (count) decoder
        inside the head, which the transformer's features complement (spike order, timing
        below the bins, the past window and the other modalities), so that the head starts
        from what a linear decoder of binned counts reads.
        With ``count_bins`` above 1, both binned readouts also hold ``log(1 + c)`` of every
        neuron's count c over the whole window (the "neuron counts", before the binned
        ones; with ``count_bins=1`` the binned counts are those, and the block is left
        out): the rate code a logistic regression reads first, with ``count_bins`` times
        fewer inputs than the binned counts. The count decoder alone sets their weights.
        ``"mean+binned+pairs"``: the code, then ``log(1 + c)`` of every pair of the units
        ``pair_units`` with c the number of their spike pairs in a same time bin (dt
        value) of the window (coincidences, the code of synchrony between cells, which
        counts per neuron cannot carry), then the neuron counts and the binned counts,
        (B, E + K + P + n_neurons * (1 + count_bins)) with P = M (M - 1) / 2 for M pair
        units. The blocks of ``decoder_only_blocks`` are read by the count decoder only
        (:meth:`Neuroformer.count_features`).
    decoder_only_blocks : tuple of str
        Blocks of the count inputs (``count_input_blocks``) that the network does not train
        on: zeros in training mode, head weights 0 until the count decoder sets them.
        ``DECODER_ONLY_BLOCKS`` (the coincidences and the neuron counts), or
        ``ALL_DECODER_ONLY_BLOCKS`` (those and ``"binned counts"``); blocks the readout does
        not have are ignored.
    count_transform : {"log", "raw"}
        What the neuron counts and the binned counts hold of a count c: ``log(1 + c)`` (the
        default) or c. When both blocks are decoder-only (the regressor's), the count
        decoder chooses it on the validation rows.
    pair_units : tuple of int
        Neurons (0-based) whose pairwise coincidences the ``"mean+binned+pairs"`` readout
        reads; pairs in the order of ``numpy.triu_indices(M, 1)`` over this tuple.
    count_bins : int
        Time bins of the ``"mean+binned"`` counts (the window's dt values ``0..window_bins -
        1`` split into this many equal groups).
    window_bins : int
        Bins (dt values) of a current window; used by ``"mean+binned"`` and ``rate_prior``.
    count_knots : tuple of float
        Knots, strictly increasing, on the axis ``log(1 + n)`` of the ``"mean+count"``
        code: piecewise-linear interpolation weights ("hat" functions; the two knots around
        ``log(1 + n)`` share a weight of 1, values outside the knots are clamped to the end
        knots). A linear head reads any function of the count through them with weights of
        order one, which it learns in a few epochs. The estimators put them at quantiles of
        the training windows; unused (empty) with ``"mean"``.
    contrastive : tuple of str
        Modalities to align among ``"id"`` (the embedded current spikes, before attention),
        ``"frames"``, ``"behavior"`` (all behaviour inputs, pooled) and ``"behavior:<j>"``
        (behaviour input column ``j`` alone). The contrastive loss and the CLIP projection
        exist only when two or more are named.
    clip_embd : int or None
        Width of the CLIP projection (None means ``n_embd``).
    clip_temp : float
        Temperature of the InfoNCE similarities.
    symmetric_clip : bool
        Symmetric CLIP loss instead of the original one-directional InfoNCE.
    id_head : {"given_dt", "independent"}
        How the next token's neuron id is predicted. ``"given_dt"``: from the final stream
        and the next token's dt (the joint of id and dt factorised exactly as
        ``P(dt) P(id | dt)``; see :meth:`Neuroformer.token_logits`). ``"independent"``: the
        paper's two independent heads, whose product cannot represent the ordering of
        spikes inside a bin.
    rate_prior : bool
        Add to the next-token logits the log-probabilities of a homogeneous Poisson model of
        every neuron at the rates of the ``unit_rates`` buffer
        (:class:`~nfestimators.model.heads.RatePrior`; the estimators set it to the training
        rates), with the id and dt heads starting at 0: the model starts as that Poisson
        model and learns how the spikes depart from it.
        Needs ``id_head="given_dt"`` and ``window_bins``.
    label_smoothing : float
        Label smoothing of the classification loss (as ``torch.nn.functional.cross_entropy``).
    compat_drop_frame_pe : bool
        Original behaviour (spec 3.3): the 3-D frame position encoding is computed and
        discarded, so frame tokens carry no position.
    compat_layernorm_behavior : bool
        Original behaviour (spec 3.6): a LayerNorm over the size-1 value axis precedes the
        value projection, so the behaviour *value* never reaches the model.
    compat_attend_pad : bool
        Original behaviour (spec 3.4): no key-padding masks; PAD tokens of the past and
        current blocks are attended to.
    compat_pool_pad : bool
        Original behaviour (spec 3.8, 4.2): mean pooling of the final stream includes
        PAD positions.
    compat_clip_final_layer : bool
        Original behaviour (spec 4.2): the ``"id"`` contrastive feature is the pooled final
        stream, which has cross-attended to the frames and behaviour, instead of the mean
        of the embedded spikes alone (see :meth:`Neuroformer.spike_feature`).
    compat_clip_mean_frames : bool
        Original behaviour (spec 4.2): the ``"frames"`` contrastive feature is the mean of
        the frame feature-encoder output (SOS included), instead of a learnt spatial
        weighting of the frame tokens (see :meth:`Neuroformer.frame_feature`).
    """

    n_neurons: int
    n_dt: int
    n_embd: int = 256
    n_head: int = 8
    n_layers_state: int = 6
    n_layers_history: int = 6
    n_layers_stimulus: int = 6
    n_layers_behavior: int = 4
    block_size: int = 100
    block_size_prev: int = 700
    dropout_attn: float = 0.2
    dropout_resid: float = 0.2
    dropout_embd: float = 0.2
    dropout_frames: float = 0.2
    time_embedding: str = "learned"
    frames_shape: tuple[int, int, int] | None = None
    frame_kernel: tuple[int, int, int] = (3, 5, 5)
    frame_stride: tuple[int, int, int] | None = None
    frame_pe: bool = True
    n_behavior_inputs: int = 0
    n_targets: int = 0
    n_classes: int = 0
    readout: str = "mean"
    count_knots: tuple[float, ...] = ()
    count_bins: int = 0
    window_bins: int = 0
    pair_units: tuple[int, ...] = ()
    decoder_only_blocks: tuple[str, ...] = DECODER_ONLY_BLOCKS
    count_transform: str = "log"
    contrastive: tuple[str, ...] = ("id",)
    clip_embd: int | None = None
    clip_temp: float = 0.5
    symmetric_clip: bool = False
    id_head: str = "given_dt"
    rate_prior: bool = False
    label_smoothing: float = 0.0
    compat_drop_frame_pe: bool = False
    compat_layernorm_behavior: bool = False
    compat_attend_pad: bool = False
    compat_pool_pad: bool = False
    compat_clip_final_layer: bool = False
    compat_clip_mean_frames: bool = False

    def __post_init__(self):
        # Accept lists (e.g. after a JSON round trip) for the tuple fields.
        if self.frames_shape is not None:
            self.frames_shape = tuple(int(s) for s in self.frames_shape)
        self.frame_kernel = tuple(int(k) for k in self.frame_kernel)
        if self.frame_stride is not None:
            self.frame_stride = tuple(int(s) for s in self.frame_stride)
        self.contrastive = tuple(self.contrastive)
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd={self.n_embd} is not a multiple of n_head={self.n_head}")
        if self.n_embd % 2 != 0:
            raise ValueError(f"n_embd must be even, got {self.n_embd}")
        if self.time_embedding not in ("learned", "sinusoidal"):
            raise ValueError(f"time_embedding must be 'learned' or 'sinusoidal', got {self.time_embedding!r}")
        if self.id_head not in ("given_dt", "independent"):
            raise ValueError(f"id_head must be 'given_dt' or 'independent'; got {self.id_head!r}")
        if self.rate_prior and (self.id_head != "given_dt" or self.window_bins < 1):
            raise ValueError("rate_prior=True needs id_head='given_dt' and window_bins >= 1 (the "
                             f"current window's bins); got id_head={self.id_head!r}, "
                             f"window_bins={self.window_bins}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}; got {self.readout!r}")
        self.count_knots = tuple(float(k) for k in self.count_knots)
        if self.readout in BINNED_READOUTS and not 1 <= self.count_bins <= self.window_bins:
            raise ValueError(f"readout={self.readout!r} needs 1 <= count_bins <= window_bins; "
                             f"got count_bins={self.count_bins}, window_bins={self.window_bins}")
        self.pair_units = tuple(int(u) for u in self.pair_units)
        if self.readout != "mean+binned+pairs":
            self.pair_units = ()
        elif len(set(self.pair_units)) != len(self.pair_units) or not all(
                0 <= u < self.n_neurons for u in self.pair_units):
            raise ValueError("readout='mean+binned+pairs' needs pair_units: distinct neurons in "
                             f"0..n_neurons - 1 = {self.n_neurons - 1}; got {self.pair_units}")
        self.decoder_only_blocks = tuple(self.decoder_only_blocks)
        if self.decoder_only_blocks not in (DECODER_ONLY_BLOCKS, ALL_DECODER_ONLY_BLOCKS):
            raise ValueError(f"decoder_only_blocks must be {DECODER_ONLY_BLOCKS} or "
                             f"{ALL_DECODER_ONLY_BLOCKS}; got {self.decoder_only_blocks}")
        if self.count_transform not in COUNT_TRANSFORMS:
            raise ValueError(f"count_transform must be one of {COUNT_TRANSFORMS}; got "
                             f"{self.count_transform!r}")
        if self.readout != "mean":
            knots = self.count_knots
            if not knots or not all(math.isfinite(k) for k in knots) or any(
                    b <= a for a, b in zip(knots, knots[1:])):
                raise ValueError("readout='mean+count' needs count_knots: one or more finite, "
                                 f"strictly increasing values; got {knots}")
        columns = [behavior_modality(j) for j in range(self.n_behavior_inputs)]
        unknown = set(self.contrastive) - set(MODALITIES) - set(columns)
        if unknown:
            raise ValueError(f"unknown contrastive modalities {sorted(unknown)}; choose among "
                             f"{MODALITIES} or a behaviour input column {columns}")
        if self.n_neurons < 1 or self.n_dt < 1:
            raise ValueError("n_neurons and n_dt must be positive")

    # Vocabulary (docs/design.md): values first, then SOS, EOS, PAD.
    def count_input_blocks(self) -> dict[str, slice]:
        """The blocks of the supervised heads' count inputs, the columns after the pooled
        stream (:meth:`~nfestimators.model.Neuroformer.count_features`, in that order):
        name -> slice of those columns; empty for ``readout="mean"``.

        Examples
        --------
        >>> config = NeuroformerConfig(n_neurons=4, n_dt=5, readout="mean+binned+pairs",
        ...     count_knots=(0.0, 1.0), count_bins=2, window_bins=5, pair_units=(0, 1, 3))
        >>> {name: (b.start, b.stop) for name, b in config.count_input_blocks().items()}
        {'count code': (0, 2), 'pairs': (2, 5), 'neuron counts': (5, 9), 'binned counts': (9, 17)}

        The blocks of ``decoder_only_blocks`` are adjacent.
        """
        if self.readout == "mean":
            return {}
        sizes = {"count code": len(self.count_knots), "pairs": self.n_pairs}
        if self.readout in BINNED_READOUTS:
            sizes["neuron counts"] = self.n_neurons if self.count_bins > 1 else 0
            sizes["binned counts"] = self.n_neurons * self.count_bins
        blocks, start = {}, 0
        for name, size in sizes.items():
            if size:
                blocks[name] = slice(start, start + size)
                start += size
        return blocks

    def decoder_only_inputs(self) -> slice:
        """The count inputs of ``decoder_only_blocks`` (adjacent: the last blocks), a slice
        of the columns after the pooled stream; empty when the readout has none."""
        blocks = [b for name, b in self.count_input_blocks().items()
                  if name in self.decoder_only_blocks]
        if not blocks:
            return slice(0, 0)
        return slice(blocks[0].start, blocks[-1].stop)

    @property
    def n_count_inputs(self) -> int:
        """Number of count inputs the supervised heads read after the pooled stream."""
        return max((block.stop for block in self.count_input_blocks().values()), default=0)

    @property
    def n_pairs(self) -> int:
        """Inputs of the pairwise coincidences of ``"mean+binned+pairs"`` (0 otherwise)."""
        m = len(self.pair_units)
        return m * (m - 1) // 2

    @property
    def id_vocab_size(self) -> int:
        return self.n_neurons + 3

    @property
    def dt_vocab_size(self) -> int:
        return self.n_dt + 3

    @property
    def sos_id(self) -> int:
        return self.n_neurons

    @property
    def eos_id(self) -> int:
        return self.n_neurons + 1

    @property
    def pad_id(self) -> int:
        return self.n_neurons + 2

    @property
    def sos_dt(self) -> int:
        return self.n_dt

    @property
    def eos_dt(self) -> int:
        return self.n_dt + 1

    @property
    def pad_dt(self) -> int:
        return self.n_dt + 2

    @property
    def use_contrastive(self) -> bool:
        """True when two or more modalities are aligned (loss and projection exist)."""
        return len(set(self.contrastive)) >= 2

    @property
    def use_frames(self) -> bool:
        return self.frames_shape is not None and self.n_layers_stimulus > 0

    @property
    def n_frame_tokens(self) -> int:
        """Tokens of one clip out of the frame tokenizer (Conv3d without padding)."""
        stride = self.frame_stride or self.frame_kernel
        return math.prod((size - k) // s + 1
                         for size, k, s in zip(self.frames_shape, self.frame_kernel, stride))

    def to_dict(self) -> dict:
        """Plain-dict form, inverse of ``NeuroformerConfig(**d)``."""
        return dataclasses.asdict(self)


PRESETS = {
    # The lateral Visnav configuration of the paper (spec 1.3).
    "paper": dict(
        n_embd=256, n_head=8, n_layers_state=6, n_layers_history=6, n_layers_stimulus=6,
        n_layers_behavior=4, block_size=100, block_size_prev=700,
        dropout_attn=0.2, dropout_resid=0.2, dropout_embd=0.2, dropout_frames=0.2,
    ),
    # CPU-friendly: trains in minutes on a laptop.
    "small": dict(
        n_embd=64, n_head=4, n_layers_state=2, n_layers_history=2, n_layers_stimulus=2,
        n_layers_behavior=2, block_size=100, block_size_prev=100,
        dropout_attn=0.1, dropout_resid=0.1, dropout_embd=0.1, dropout_frames=0.1,
    ),
    # Unit tests.
    "tiny": dict(
        n_embd=32, n_head=2, n_layers_state=1, n_layers_history=1, n_layers_stimulus=1,
        n_layers_behavior=1, block_size=32, block_size_prev=32,
        dropout_attn=0.0, dropout_resid=0.0, dropout_embd=0.0, dropout_frames=0.0,
    ),
}


def make_config(preset, n_neurons, *, n_dt, frames_shape=None, contrastive=("id",), **overrides):
    """Build a :class:`NeuroformerConfig` from a named preset.

    Parameters
    ----------
    preset : {"paper", "small", "tiny"}
        Name of an entry of :data:`PRESETS`.
    n_neurons, n_dt : int
        Vocabulary sizes (see :class:`NeuroformerConfig`).
    frames_shape : tuple of int or None
        ``(F, H, W)`` of the stimulus clip, or None for no stimulus.
    contrastive : tuple of str
        Modalities to align.
    **overrides
        Any other :class:`NeuroformerConfig` field.

    Returns
    -------
    NeuroformerConfig
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose among {sorted(PRESETS)}")
    fields = {**PRESETS[preset], **overrides}
    return NeuroformerConfig(
        n_neurons=n_neurons, n_dt=n_dt, frames_shape=frames_shape, contrastive=contrastive, **fields
    )
