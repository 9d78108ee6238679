"""The one declared table of the estimators' parameters: constraints and documentation.

Every parameter of the three estimators has one entry here. The estimators' ``__init__``
signatures say which parameters a class takes and their defaults (sklearn reads them from
there); :func:`parameter_constraints` gives the class's ``_parameter_constraints`` (checked
at the start of every ``fit`` by sklearn's ``_fit_context``) and :func:`parameter_docs` the
Parameters section of its docstring, defaults read from the signature. A new knob is one
entry here plus its ``__init__`` argument and assignment.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from numbers import Integral, Real

import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ..model.config import COMPAT_SWITCHES, PRESETS, READOUTS
from ..training.distributed import STRATEGIES

FREEZE_OPTIONS = ("none", "backbone")
ADAPT_OPTIONS = ("units", "units+all")
# fixed by `pretrained`
SIZE_PARAMETERS = ("preset", "n_layers", "n_embd", "n_head", "compat", "rate_prior")


@dataclass(frozen=True)
class Parameter:
    """One parameter: its sklearn constraints, its type line and its description."""

    constraints: list
    kind: str
    doc: str


def _positive_int(low=1):
    return Interval(Integral, low, None, closed="left")


def _fraction(closed):
    return Interval(Real, 0, 1, closed=closed)


PARAMETERS = {
    "pretrained": Parameter(
        [None, str, os.PathLike, FrozenEstimator, HasMethods(["fit"])],
        "str, path or FrozenEstimator, optional",
        """Weights to start from: the path of a saved estimator (:meth:`save`), or a fitted
:class:`NeuroformerPretrainer` wrapped in :class:`sklearn.frozen.FrozenEstimator` (so that
``clone``, ``GridSearchCV`` and ``cross_val_score`` start every fit from the same weights).
The data must have the pretraining data's window geometry; the model size (``preset``,
``n_layers``, ``n_embd``, ``n_head``, ``compat``, ``rate_prior``) is the pretrained one's.
Windows of a session the pretrained model does not know (another recording: a session key it
has not seen, or other neurons) are a new session, learnt as ``adapt`` says. A fitted
regressor or classifier works too: its head is kept when it decodes the same outputs (see
``readout``). None trains from scratch."""),
    "adapt": Parameter(
        [StrOptions(set(ADAPT_OPTIONS))], '{"units+all", "units"}',
        """With ``pretrained`` and a new session (see the multi-session page of the user guide):
``"units"`` learns the new session's unit embeddings (its rows of the token embedding
and of the id head) and the head, with the backbone frozen (unit identification, as
POYO's); ``"units+all"`` then finetunes everything from there (``freeze="backbone"``
stops after the first phase). Each phase trains up to ``max_epochs``. Ignored when
every session of ``X`` is known."""),
    "freeze": Parameter(
        [StrOptions(set(FREEZE_OPTIONS))], '{"none", "backbone"}',
        """``"backbone"`` trains the new head only (linear probing of the pretrained model)."""),
    "sclm_weight": Parameter(
        [Interval(Real, 0, None, closed="left")], "float",
        """Weight of the spike objective (next neuron id 0.6, next dt 0.4 of it) kept during
finetuning next to the supervised loss: a regulariser that makes the backbone model the
spikes it reads (on an H200, from-scratch classifier at 10 ms bins: D_E_III 0.426 test
accuracy with 0, 0.531 with 1; D_A_I 0.683 and 0.744)."""),
    "readout": Parameter(
        [StrOptions(set(READOUTS))],
        '{"mean", "mean+count", "mean+binned", "mean+binned+pairs"}',
        """What the linear head reads. ``"mean"`` (the paper's): the mean of the last layer over
the window's SOS and spike positions. A mean does not say how many spikes were averaged,
so a rate code (information in the number of spikes) is hard to read from it.
``"mean+count"`` adds a code of the window's spike count n: 16 piecewise-linear
interpolation weights of ``log(1 + n)`` between knots at quantiles of the training
windows, through which the head learns any function of the count in a few epochs.
``"mean+binned"`` also adds ``log(1 + count)`` of every neuron in 5 equal
time bins of the window (every bin of shorter windows): the head then holds a linear
decoder of binned counts, the baseline neuroscientists fit first, and the transformer's
features add what such a decoder misses (spike order, timing inside the bins, the past
window, the other modalities); with more than one time bin it also holds every neuron's
``log(1 + count)`` over the whole window (the rate code, read by the count decoder only,
see ``count_decoder``). ``"mean+binned+pairs"`` (the default) also adds the
pairwise coincidences of the 48 most active units of the training windows: ``log(1 + c)``
of every pair, c the number of their spike pairs in a same time bin (``dt``) of the window,
the code of synchrony between cells, which no count per neuron carries (1,128 inputs at 48
units; read by the count decoder only). The regressor's network does not train on the
binned counts either (the count decoder reads them): with them in the trained head, a
behaviour code of 2 s windows of 80 neurons scored R² 0.949 against 0.987 without (H200,
2 seeds). With ``pretrained``, the backbone is loaded and
the head is new, unless ``pretrained`` is an estimator of this class fitted with this readout on the
same targets (regressor) or classes (classifier): then its head, its count code and its
targets' scale are kept (supervised pretraining, e.g. on other sessions' labels)."""),
    "count_decoder": Parameter(
        [StrOptions({"blend", "none"})], '{"blend", "none"}',
        """``"blend"`` (the default): after training, fit a linear decoder of the readout's
count inputs (the count code, the coincidences, the neuron counts over the window, the
binned counts, or all of them) to
convergence on the training rows (logistic regression for the classifier, ridge for the
regressor, on the standardised inputs, the coincidences sharing one scale, ``C`` in 0.001
.. 1000) and blend it into the head, ``(1 - w)`` times the network's outputs plus ``w``
times the decoder's; the inputs, ``C`` and ``w`` (0, 0.25, .. 1) are those of lowest loss
on the validation rows (the coincidences only when they beat the best decoder without them
by more than a standard error; for the regressor, whose network does not train on the
neuron and binned counts, read as ``log(1 + c)`` or as the raw counts c), and
``count_decoder_`` says which. ``w = 0`` keeps the
network as it is: the blend costs the network nothing where its features win, and gives it
the converged count decoder AdamW does not reach in a short fit where counts carry the code
(:func:`nfestimators.training.blend_count_decoder`). On the decoding suite (H200, 3
seeds, ``benchmarks/README.md``) it raised D_A_I 0.776 -> 0.802, identity 0.987 -> 1.000,
D_E_III 0.640 -> 0.656, left the timing codes, place and behaviour decoding within 0.002, and
cost synchrony 0.280 -> 0.257. No effect with ``readout="mean"``,
``validation_fraction=0``, or a kept pretrained head. ``"none"``: the trained head as it is."""),
    "contrastive": Parameter(
        [StrOptions({"auto"}), tuple, list], '"auto" or tuple of str',
        """Modalities to align: ``"id"`` (the spikes of the window: the mean of their embeddings,
before any attention, so blind to the other modalities), ``"frames"`` (stimulus: a learnt
spatial weighting of the frame tokens), ``"behavior"`` (all behaviour inputs
together) or the name of one behaviour variable of ``X`` (e.g. ``("id", "frames",
"speed")``); a named variable is also fed to the model as a behaviour input. ``"auto"``
aligns spikes with frames when ``X`` carries frames, else nothing."""),
    "strategy": Parameter(
        [StrOptions(set(STRATEGIES))], '{"single", "ddp"}',
        """``"ddp"``: data-parallel training with ``DistributedDataParallel``, one process per
device, launched by ``torchrun`` (see :mod:`nfestimators.train`); every process calls
``fit`` on the same data. Each global batch of ``batch_size`` windows is split over the
processes and the objective is exactly that of the global batch, so the fit matches the
single-process one up to float rounding. A CUDA ``device`` becomes ``cuda:<LOCAL_RANK>``.
``random_state=None`` takes rank 0's draw. ``callbacks`` run on every rank."""),
    "preset": Parameter(
        [StrOptions(set(PRESETS))], '{"small", "paper", "tiny"}',
        """Model size. ``"paper"`` is the lateral configuration of the paper (width 256, 8 heads,
6 layers per stack, dropout 0.2); it is sized for a GPU (on a CPU it trains at about 15
windows/s, and ``fit`` warns). ``"small"`` trains on a CPU in minutes; ``"tiny"`` is for
tests."""),
    "n_layers": Parameter(
        [_positive_int(), None], "int, optional",
        """Override the preset's number of layers of every stack."""),
    "n_embd": Parameter(
        [_positive_int(2), None], "int, optional",
        """Override the preset's model width (even, a multiple of ``n_head``)."""),
    "n_head": Parameter(
        [_positive_int(), None], "int, optional",
        """Override the preset's number of attention heads."""),
    "dropout": Parameter(
        [_fraction("left"), None], "float, optional",
        """Override every dropout rate of the preset."""),
    "compat": Parameter(
        [tuple, list], "tuple of str",
        f"""Behaviours of the original code to switch back on (see the differences page of the
user guide): any of {", ".join(f'``"{name}"``' for name in COMPAT_SWITCHES)} (the
``compat_<name>`` fields of :class:`~nfestimators.model.NeuroformerConfig`). Empty: the
fixed model."""),
    "rate_prior": Parameter(
        ["boolean"], "bool",
        """Start the next-spike heads from a homogeneous Poisson model of every neuron at its
training rate: the heads' logits are added to that model's log-probabilities of the next
token (:class:`~nfestimators.model.heads.RatePrior`) and start at 0, so that the model
starts exactly at the baseline of :meth:`NeuroformerPretrainer.score` (0 bits per spike)
and learns only how the spikes depart from it; early stopping on the held-out spikes then
keeps whatever it learnt that generalises. False: the paper's heads, which must first learn
every neuron's rate and, on small data sets, memorise the training windows before they get
there (negative held-out bits per spike)."""),
    "dt": Parameter(
        [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"}), None],
        '"auto", float or None',
        """Time bin in seconds, a whole multiple of ``X.dt`` that divides the windows: every
``X`` given to the estimator (in fit and after) is rebinned to it
(:meth:`SpikeWindows.rebin`), so that ``GridSearchCV`` can search the time resolution.
``"auto"``: the finest such bins that give at most 50 per window (2 ms for 100 ms windows
recorded at 1 ms; the windows' own bins when they are already that coarse), or, for windows
recorded at bins finer than 10 ms, 10 ms bins when those are finer, at most 1,000 per window
(10 ms for trials of 500 ms to 10 s recorded at 1 ms; a plain count array counts as 10 ms
bins and keeps the 50-bin rule); with
``pretrained``, the pretrained model's bins. None keeps the bins of ``X``. The bins
chosen are ``tokenizer_.dt_``."""),
    "max_tokens": Parameter(
        [_positive_int(2), None], "int, optional",
        """Token budget of a current window (``block_size.id``). Windows with more spikes keep
their latest ``max_tokens - 1`` and a warning says how many were dropped. Default: room
for windows a quarter fuller than the fullest training window that is not an outlier
(more than 4 times the 90th percentile of the windows' spike counts), at most the
preset's cap (``tiny`` 256, ``small`` 1024, ``paper`` 2048)."""),
    "max_prev_tokens": Parameter(
        [_positive_int(2), None], "int, optional",
        """Token budget of a past window (``block_size.prev_id``); default as ``max_tokens``."""),
    "behavior_inputs": Parameter(
        [None, str, list, tuple], 'list of str or "all", optional',
        """Behaviour variables of ``X`` (``X.behavior_names``) fed to the model as inputs
through cross-attention. None uses none."""),
    "round_counts": Parameter(
        ["boolean"], "bool",
        """Round non-integer counts (e.g. deconvolved calcium "rates", which the original code
rounds) to the nearest integer instead of raising an error."""),
    "max_epochs": Parameter(
        [_positive_int()], "int", """Passes over the training windows."""),
    "batch_size": Parameter(
        [_positive_int()], "int", """Windows per optimisation step."""),
    "lr": Parameter(
        [Interval(Real, 0, None, closed="neither")], "float",
        """Peak learning rate of AdamW (betas 0.9, 0.95), reached after a linear warmup and
followed by a cosine decay to 10 %."""),
    "weight_decay": Parameter(
        [Interval(Real, 0, None, closed="left")], "float",
        """AdamW weight decay, applied to the weights of linear layers only."""),
    "warmup_fraction": Parameter(
        [_fraction("both")], "float", """Fraction of the steps spent in linear LR warmup."""),
    "validation_fraction": Parameter(
        [_fraction("left"), None], "float or None",
        """Fraction of the windows held out to monitor ``valid_loss`` (None or 0: no validation).
The classifier's split is stratified by class (every class keeps windows to train on)."""),
    "n_iter_no_change": Parameter(
        [_positive_int(), None], "int or None",
        """Early stopping: stop after this many epochs without a better ``valid_loss`` and
restore the best weights. None trains for ``max_epochs``."""),
    "augment_jitter": Parameter(
        [Interval(Integral, 0, None, closed="left")], "int",
        """Training augmentation: every spike of a training window (current and past) moves by
a whole number of bins drawn uniformly from ``-augment_jitter .. augment_jitter``, clipped
to its window, the token order kept (time, then neuron). In bins of the estimator's
time resolution (``tokenizer_.dt_``; with ``dt="auto"`` about a fiftieth of the window, or
10 ms in longer ones), not seconds, so that a shift is exact and never rounds to nothing.
Drawn afresh for every batch, on its device; validation, ``predict`` and the other inference
methods see the spikes as they are. 0: off. The default of 1 bin, with ``ema_decay=0.99``, is from the
decoding suite on an H200 (2 seeds, ``benchmarks/regularisation.py``): against the previous
defaults (no augmentation, raw weights) it raised 6 of 9 sets and lowered none (D_E_III
0.574 -> 0.648, spiking R² 0.791 -> 0.815, behavior R² 0.928 -> 0.946, rate 0.965 ->
0.990; D_A_I 0.775 -> 0.781)."""),
    "augment_neuron_dropout": Parameter(
        [Interval(Real, 0, 1, closed="left")], "float",
        """Training augmentation: in every training window each neuron is silenced with this
probability (all of its spikes, in the current and the past window, are removed), so
that the decoder cannot lean on a few cells. Validation and inference see every neuron.
0: off."""),
    "ema_decay": Parameter(
        [Interval(Real, 0, 1, closed="left"), None], "float or None",
        """Keep an exponential moving average (EMA) of the weights, updated after every
optimizer step with this decay (at most ``(1 + n) / (10 + n)`` at the n-th step, so that a
short fit averages about its last tenth), and use it for the validation loss, early
stopping's best weights and the fitted model. Chosen over stochastic weight averaging
(SWA) because it needs no second schedule or final pass, and early stopping can pick
among averaged weights. None or 0: the raw weights. In the decoders the default 0.99 goes
with ``augment_jitter=1`` (see there for the measurement). In the pretrainer (H100, one run
beside its raw-weight arm, ``benchmarks/README.md``) it raised the held-out bits per spike
on 10 of 11 sets (e.g. ``make_spiking_data`` +0.360 -> +0.380, D_E_III +0.492 -> +0.509;
D_A_I +0.174 -> +0.172) and the held-out spike -> frame retrieval of
``contrastive=("id", "frames")`` from 8, 13, 14, 22, 7x chance on five draws to 10, 14, 13,
20, 12x."""),
    "label_smoothing": Parameter(
        [Interval(Real, 0, 1, closed="left")], "float",
        """Label smoothing of the classification loss (as ``torch.nn.CrossEntropyLoss``): the
target puts ``1 - label_smoothing`` on the true class plus ``label_smoothing`` spread
evenly over all classes. 0: plain cross-entropy."""),
    "device": Parameter(
        [str, torch.device, None], "str",
        """``"auto"`` picks CUDA, then MPS, then the CPU; resolved into ``device_``."""),
    "precision": Parameter(
        [StrOptions({"auto", "fp32", "bf16"})], '{"auto", "fp32", "bf16"}',
        """``"auto"`` trains in bf16 autocast on CUDA and in fp32 elsewhere."""),
    "compile": Parameter(
        ["boolean"], "bool",
        """Compile the attention blocks with ``torch.compile`` (dynamic shapes) for training."""),
    "cuda_graphs": Parameter(
        [StrOptions({"auto"}), "boolean"], 'bool or "auto"',
        """Capture the whole training step (forward, losses, backward, gradient clipping,
AdamW) in a CUDA graph per padded batch shape and replay it, which removes the per-kernel
launch cost that dominates small and medium models. ``"auto"`` uses graphs when training
on one CUDA device without ``compile``; ``True`` asks for them (an error off CUDA).
Batches are then padded to multiples of 32 tokens so that few shapes occur."""),
    "callbacks": Parameter(
        [None, list], "list of (name, skorch.callbacks.Callback), optional",
        """Extra skorch callbacks, passed to the training engine."""),
    "random_state": Parameter(
        ["random_state"], "int, RandomState instance or None",
        """Seeds weight initialisation, shuffling, dropout and the validation split. Torch's
global RNG is left as it was."""),
    "verbose": Parameter(
        ["verbose"], "int",
        """Show tqdm progress bars: over the epochs of ``fit`` with the current losses, and
over the windows of ``predict``, ``predict_proba``, ``transform`` and ``score``."""),
}


def _signature_defaults(cls):
    """``{name: default}`` of the keyword parameters of ``cls.__init__``."""
    parameters = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name != "self"}


def parameter_constraints(cls):
    """The ``_parameter_constraints`` of ``cls``: the table's entries of its parameters."""
    return {name: list(PARAMETERS[name].constraints) for name in _signature_defaults(cls)}


def parameter_docs(cls, indent="    "):
    """Numpy-style Parameters entries of ``cls``, in signature order, defaults included."""
    lines = []
    for name, default in _signature_defaults(cls).items():
        entry = PARAMETERS[name]
        head = entry.kind if default is None else f"{entry.kind}, default={default!r}"
        lines.append(f"{indent}{name} : {head}")
        lines += [f"{indent}    {line}" for line in entry.doc.splitlines()]
    return "\n".join(lines)


FITTED_ATTRIBUTES = """\
    n_features_in_ : int
        Number of neurons seen in fit.
    device_ : str
        Device the model was trained on.
    precision_ : str
        ``"fp32"`` or ``"bf16"``: the training precision.
    cuda_graphs_ : bool
        Whether training steps ran as CUDA graph replays.
    input_encoder_ : InputEncoder
        The fitted input side as one unit: time bins, tokenizer, behaviour inputs and their
        standardisation, frame normalisation, window geometry.
    tokenizer_ : SpikeTokenizer
        Vocabulary and token budgets (``input_encoder_.tokenizer``).
    behavior_inputs_ : tuple of str
        Behaviour variables fed to the model.
    model_config_ : NeuroformerConfig
        Configuration of ``model_``.
    model_ : nfestimators.model.Neuroformer
        The trained torch module.
    history_ : skorch.History
        Per-epoch (and per-batch) record of every loss of the finished epochs:
        ``train_loss``, ``valid_loss``, ``train_id``, ``train_dt``, ``train_contrastive``,
        ``train_regression``, ...
    n_epochs_ : int
        Epochs finished (fewer than ``max_epochs`` after early stopping or a
        ``KeyboardInterrupt``, which stops the fit cleanly with a warning).
    best_epoch_ : int
        The epoch whose weights ``model_`` holds: the best ``valid_loss`` with early
        stopping, else the last finished epoch."""
