"""Blend a tuned linear decoder of the windows' spike counts into a trained supervised head.

The head of a ``"mean+count"`` or ``"mean+binned"`` readout reads the pooled stream and the
count inputs (:meth:`~nfestimators.model.Neuroformer.count_features`). Trained with AdamW
for the few dozen epochs early stopping allows, its count weights stay far from what a
converged linear decoder of the same inputs reaches (the D_A_I rate code, a head on the
count code alone: 0.689 test accuracy after 20 epochs, 0.800 after 100), and the network
loses to a logistic regression on codes that counts carry. Starting the head as that
decoder does not help: the network then stops early as little more than the decoder, and
loses what the spike sequence adds (H200 decoding suite: D_A_I and identity up, W-maze,
behaviour, synchrony and D_E_III down). :func:`blend_count_decoder` fits the decoder after
training instead and blends it into the head with the weight the validation rows choose;
the head is linear in its inputs, so the blend is one head again.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..model import eval_mode
from ..model.config import COUNT_TRANSFORMS, COUNTED_BLOCKS

PENALTIES = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # C, as LogisticRegression's
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # of the decoder: (1 - w) network + w decoder
MAX_ROWS = 20_000  # training rows the decoder is fitted on (a seeded subset beyond)
MAX_ITER = 200  # L-BFGS iterations


def blend_count_decoder(model, store, train_rows, valid_rows, objective, seed=0):
    """Fit the linear decoder of the count inputs on ``train_rows`` of ``store`` and blend
    it into the trained head of ``objective`` (``"classification"`` or ``"regression"``).

    The decoder is a multinomial logistic regression (classifier) or a ridge regression of
    the standardised targets (regressor) on each block of the count inputs
    (``config.count_input_blocks()``: the count code, the coincidences, the neuron counts,
    the binned counts) and
    on all of them (one penalty over a block of 16 inputs and one of hundreds lets the
    larger drown the smaller), every ``C`` of ``PENALTIES`` fitted at once by full-batch
    L-BFGS, one run per block set on its inputs alone; when the network trained on neither
    the neuron counts nor the binned counts (the regressor), every set holding one of them
    is fitted on ``log(1 + c)`` and on the raw counts c too (``config.count_transform``,
    :func:`_transforms`). The one of lowest log-loss (squared error) on ``valid_rows`` is
    kept, a set with the coincidences only when it beats the best without them by more than
    a standard error (:func:`_choose`), and the model's ``count_transform`` becomes the
    kept one's.
    Inputs are standardised one by one, except the coincidences, which share one scale:
    synchrony lives in the few pairs that often fire together, among hundreds that rarely
    do, and scaling each pair to unit variance raises the rare pairs' noise to the level of
    the few (a logistic regression on the 780 coincidences of ``make_code_data("synchrony")``
    at 10 ms, test accuracy with seeds 0 and 1: 0.44 and 0.61 standardised one by one, 0.91
    and 0.87 on the raw values; chance 0.25). The head's outputs become
    ``(1 - w)`` times the network's plus ``w`` times the decoder's, ``w`` of
    ``BLEND_WEIGHTS`` chosen the same way (ties: the smaller).

    Returns
    -------
    dict or None
        ``{"blocks": names, "C": C, "weight": w, "count_transform": transform}``; None, and
        the head untouched, when the readout has no count inputs or there are no validation
        rows to choose on.
    """
    config = model.config
    if config.readout == "mean" or not len(valid_rows):
        return None
    if len(train_rows) > MAX_ROWS:
        train_rows = np.sort(np.random.default_rng(seed).choice(train_rows, MAX_ROWS,
                                                                replace=False))
    classify = objective == "classification"
    head = model.head_cls if classify else model.head_reg
    targets = store.y_cls if classify else store.y_reg
    y_train, y_valid = (targets[torch.as_tensor(rows, device=targets.device)]
                        for rows in (train_rows, valid_rows))
    net_valid = _network_outputs(model, store, valid_rows, classify).to(targets.device)
    blocks = config.count_input_blocks()
    block_sets = [(name,) for name in blocks] + ([tuple(blocks)] if len(blocks) > 1 else [])
    problems = []  # (transform, block set, weight (P, F, n_outputs), bias (P, n_outputs))
    valid_inputs = {}
    for transform in _transforms(config, blocks):
        model.config = dataclasses.replace(config, count_transform=transform)
        x_train = _count_inputs(model, store, train_rows).to(targets.device)
        valid_inputs[transform] = _count_inputs(model, store, valid_rows).to(targets.device)
        mean, scale = _standardisation(x_train, blocks)
        x_train = (x_train - mean) / scale
        for names in block_sets:
            if transform != config.count_transform and not set(names) & set(COUNTED_BLOCKS):
                continue  # the same inputs as with the model's own transform
            weight, bias = _fit_block_set(x_train, y_train, blocks, names, head.out_features,
                                          classify)
            # back to the raw inputs: w (x - mean) / scale + b = (w / scale) x + (b - w mean / scale)
            weight = weight / scale[:, None]
            problems.append((transform, names, weight, bias - mean @ weight))
    row_losses = torch.cat([_row_losses(_outputs(valid_inputs[transform], weight, bias),
                                        y_valid, classify)
                            for transform, _, weight, bias in problems])
    best = _choose(row_losses, ["pairs" in names for _, names, _, _ in problems
                                for _ in PENALTIES])
    transform, names, weight, bias = problems[best // len(PENALTIES)]
    weight, bias = weight[best % len(PENALTIES)], bias[best % len(PENALTIES)]
    model.config = dataclasses.replace(config, count_transform=transform)
    decoder_valid = valid_inputs[transform] @ weight + bias
    blends = torch.stack([(1 - w) * net_valid + w * decoder_valid for w in BLEND_WEIGHTS])
    w = BLEND_WEIGHTS[int(_losses(blends, y_valid, classify).argmin())]
    with torch.no_grad():
        full = torch.zeros_like(head.weight)
        full[:, config.n_embd:] = weight.T.to(full)
        if head.bias is not None:
            head.bias.mul_(1 - w).add_(w * bias.to(head.bias))
        else:  # the count code's K columns sum to sqrt(E) in every window: an intercept
            n_knots = len(config.count_knots)
            full[:, config.n_embd:config.n_embd + n_knots] += (
                bias / math.sqrt(config.n_embd)).to(full).unsqueeze(1)
        head.weight.mul_(1 - w).add_(w * full)
    return {"blocks": names, "C": PENALTIES[best % len(PENALTIES)], "weight": w,
            "count_transform": transform}


def _transforms(config, blocks):
    """The count transforms to fit the decoder on: both when the readout has neuron or
    binned counts and the network trained on neither (all are decoder-only, so their
    transform does not change the trained network), else the model's own."""
    counted = set(blocks) & set(COUNTED_BLOCKS)
    if counted and counted <= set(config.decoder_only_blocks):
        return (config.count_transform,) + tuple(
            t for t in COUNT_TRANSFORMS if t != config.count_transform)
    return (config.count_transform,)


def _standardisation(x, blocks):
    """Per-input ``(mean, scale)`` of the training inputs ``x``; the coincidences share one
    scale (see :func:`blend_count_decoder`)."""
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    if "pairs" in blocks:
        pairs = blocks["pairs"]
        scale[pairs] = (x[:, pairs] - mean[pairs]).pow(2).mean().sqrt().clamp_min(1e-6)
    return mean, scale


def _fit_block_set(x, y, blocks, names, n_outputs, classify):
    """Weights (P, F, n_outputs), 0 outside the inputs of the blocks ``names``, and
    intercepts (P, n_outputs) of the decoder of those blocks of the standardised inputs
    ``x``, one problem per penalty of ``PENALTIES``."""
    columns = torch.cat([torch.arange(x.shape[1], device=x.device)[blocks[name]]
                         for name in names])
    weight = x.new_zeros(len(PENALTIES), x.shape[1], n_outputs)
    penalties = torch.tensor(PENALTIES, device=x.device)
    weight[:, columns], bias = _fit(x[:, columns], y, penalties, n_outputs, classify)
    return weight, bias


def _count_inputs(model, store, rows):
    """The count inputs of ``rows`` (float32, on the model's device)."""
    return _over_batches(model, store, rows,
                         lambda batch: model.count_features(batch["id"], batch["dt"]))


def _network_outputs(model, store, rows, classify):
    """The trained head's outputs of ``rows`` (float32): the network before the blend."""
    key = "class_logits" if classify else "y_reg"
    return _over_batches(model, store, rows,
                         lambda batch: model(batch, token_logits=False)[key])


def _over_batches(model, store, rows, compute, batch_size=1024):
    """``compute(batch)`` of the model in eval mode, without gradients, over ``rows`` of
    ``store`` in batches, concatenated (float32)."""
    with torch.no_grad(), eval_mode(model):
        return torch.cat([compute(store.batch(rows[start:start + batch_size],
                                              targets=False)).float()
                          for start in range(0, len(rows), batch_size)])


def _choose(row_losses, on_evidence):
    """The problem to keep, from its validation losses per row (Q, n): the one of lowest
    mean loss among those not ``on_evidence`` (a bool per problem), unless the best of those
    ``on_evidence`` beats it by more than the standard error of their paired difference.

    The coincidences add hundreds of inputs that carry rates too (a pair fires together
    more often when both cells fire more), so on rate codes a decoder of them alone can be
    the lucky best of the validation rows and lose on the test rows (the rate set of the
    decoding suite, one seed of three: 0.92 against 0.98 test accuracy); they are taken on
    evidence only, as the CV estimators' one-standard-error rule moves away from the
    defaults.
    """
    means = row_losses.mean(1)
    flagged = torch.tensor(on_evidence, device=means.device)
    if not flagged.any() or flagged.all():
        return int(means.argmin())
    inf = torch.tensor(float("inf"), device=means.device)
    best_plain = int(torch.where(flagged, inf, means).argmin())
    best_flagged = int(torch.where(flagged, means, inf).argmin())
    gain = row_losses[best_plain] - row_losses[best_flagged]  # > 0: the flagged one is better
    standard_error = gain.std() / math.sqrt(max(len(gain), 1))
    return best_flagged if float(gain.mean()) > float(standard_error) else best_plain


def _outputs(x, weight, bias):
    """Every problem's outputs (Q, n, n_outputs) for the inputs ``x`` (n, F), weights
    (Q, F, n_outputs) and intercepts (Q, n_outputs): one matrix product over all problems
    (``x @ weight`` would broadcast ``x`` into Q copies first: on a 2-core CPU, the
    ``make_spiking_data`` regressor's decoder took 11 s that way)."""
    q, f, o = weight.shape
    flat = x @ weight.permute(1, 0, 2).reshape(f, q * o)  # (n, Q * n_outputs)
    return flat.view(-1, q, o).permute(1, 0, 2) + bias[:, None]


def _row_losses(outputs, y, classify):
    """Loss of every row of every problem's outputs (Q, n, n_outputs), (Q, n): the
    cross-entropy, or the squared error summed over the targets."""
    if classify:
        n_problems = outputs.shape[0]
        return F.cross_entropy(outputs.flatten(0, 1), y.repeat(n_problems),
                               reduction="none").view(n_problems, -1)
    return ((outputs - y) ** 2).sum(2)


def _losses(outputs, y, classify):
    """Mean loss per row of every problem's outputs (Q, n, n_outputs), (Q,)
    (:func:`_row_losses`)."""
    return _row_losses(outputs, y, classify).mean(1)


def _fit(x, y, penalties, n_outputs, classify):
    """Weights (Q, F, n_outputs) and intercepts (Q, n_outputs) of Q independent problems on
    the inputs ``x`` (n, F), problem q with penalty ``C = penalties[q]``: the loss per row
    plus ``|W|^2 / (2 C n)``, intercepts not penalised (scikit-learn's
    ``LogisticRegression(C=C)``, and ``Ridge(alpha=1 / (2 C))``). The logistic problems
    are independent, so their sum is minimised at once by L-BFGS; the ridge problems are
    solved exactly (:func:`_ridge`)."""
    if not classify:
        return _ridge(x, y, penalties)
    n = x.shape[0]
    shrink = (1.0 / (2.0 * penalties * n)).view(-1, 1, 1)
    weight = torch.zeros(len(penalties), x.shape[1], n_outputs, device=x.device,
                         requires_grad=True)
    bias = torch.zeros(len(penalties), n_outputs, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=MAX_ITER, history_size=20,
                                  tolerance_grad=1e-6, tolerance_change=1e-10,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = _losses(_outputs(x, weight, bias), y, classify).sum()
        loss = loss + (shrink * weight ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def _ridge(x, y, penalties):
    """Ridge regressions of ``y`` (n, n_outputs) on ``x`` (n, F) with unpenalised intercepts
    and ``alpha = 1 / (2 C)`` for every ``C`` of ``penalties``, in closed form: one
    eigendecomposition of the centred inputs' Gram matrix (of the F x F one, or of the
    n x n one when there are fewer rows than inputs) serves every penalty; float64 inside.
    Returns the weights (Q, F, n_outputs) and intercepts (Q, n_outputs) in ``x``'s dtype."""
    x64, y64 = x.double(), y.double()
    x_mean, y_mean = x64.mean(0), y64.mean(0)
    xc, yc = x64 - x_mean, y64 - y_mean
    alphas = (1.0 / (2.0 * penalties.double())).view(-1, 1, 1)  # (Q, 1, 1)
    if xc.shape[0] >= xc.shape[1]:  # W = V diag(1 / (s + alpha)) V^T X^T Y
        s, v = torch.linalg.eigh(xc.T @ xc)
        projected = (v.T @ (xc.T @ yc)).unsqueeze(0)  # (1, F, n_outputs)
        weight = v @ (projected / (s.clamp_min(0).view(1, -1, 1) + alphas))
    else:  # W = X^T U diag(1 / (s + alpha)) U^T Y, U from the n x n Gram matrix
        s, u = torch.linalg.eigh(xc @ xc.T)
        projected = (u.T @ yc).unsqueeze(0)  # (1, n, n_outputs)
        weight = xc.T @ (u @ (projected / (s.clamp_min(0).view(1, -1, 1) + alphas)))
    bias = y_mean - x_mean @ weight  # (Q, n_outputs)
    return weight.to(x.dtype), bias.to(x.dtype)
