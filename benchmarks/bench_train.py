"""Training throughput of NeuroformerPretrainer on the paper's lateral workload.

The workload the original code was timed on (issue #6): 2,023 neurons, 300 s at 10 ms bins,
lognormal rates giving about 40 spikes per 50 ms window, a 20 Hz movie of 30 x 100 frames,
window 0.05 s, past window 0.05 s, frame window 0.15 s (3 frames through a 3x5x5 Conv3d),
blocks 100 / 700, contrastive on id + frames, batch 160, the "paper" preset.

Everything is timed end to end through the public estimator: tokenization, batches on the
device, forward, backward, optimizer step, LR schedule. Figures printed: samples/s and
tokens/s (median epoch), peak GPU memory, model FLOPs per step (counted by
``torch.utils.flop_counter``) and the FLOP utilisation against ``--peak-tflops`` (the H100's
measured ~790 TFLOP/s bf16 dense), plus the per-epoch train loss of every run so precisions
can be compared.

    python benchmarks/bench_train.py --device cuda --precision bf16 fp32 --epochs 8
    python benchmarks/bench_train.py --device cpu --preset small --duration 30 --epochs 2

Data-parallel over N GPUs of one host (global batch ``--batch-size``, rank 0 prints; FLOPs
per step are those of one GPU's share):

    python -m torch.distributed.run --standalone --nproc_per_node N \
        benchmarks/bench_train.py --device cuda --strategy ddp
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback
from torch.utils.flop_counter import FlopCounterMode

from nfestimators import NeuroformerPretrainer, SpikeWindows

# Kernel-name patterns of the GPU-time breakdown (first match wins; the rest is elementwise).
KERNEL_GROUPS = (
    ("optimizer", ("adam", "multi_tensor", "foreach", "l2norm", "clip")),
    ("attention", ("flash", "fmha", "attention", "sdpa", "softmax")),
    ("cross-entropy", ("cross_entropy", "log_softmax", "nll_loss", "logsumexp")),
    ("frame encoder (conv)", ("conv", "implicit", "cudnn", "wgrad", "dgrad", "fprop")),
    ("matmuls", ("gemm", "cutlass", "nvjet", "xmma", "matmul", "sm90")),
    ("LayerNorm", ("layer_norm", "layernorm")),
    ("reductions", ("reduce", "sum_", "mean_")),
)


def lateral_workload(n_neurons=2023, duration=300.0, spikes_per_window=40.0, seed=0):
    """Synthetic recording of the lateral configuration's shape, as SpikeWindows."""
    rng = np.random.default_rng(seed)
    dt, window = 0.01, 0.05
    n_bins = int(round(duration / dt))
    rates = rng.lognormal(0.0, 1.0, n_neurons)
    rates *= spikes_per_window / (window / dt) / rates.sum()  # population spikes per bin
    counts = rng.poisson(rates[:, None], size=(n_neurons, n_bins)).astype(np.int16)
    n_frames = int(duration * 20) + 1
    movie = rng.random((n_frames, 30, 100), dtype=np.float32)
    return SpikeWindows.from_counts(counts, dt=dt, window=window, prev_window=0.05,
                                    stimulus=movie, frame_rate=20.0, frame_window=0.15)


class StepFlops(Callback):
    """skorch callback: count the FLOPs of the first training step (forward, backward and
    optimizer step)."""

    def __init__(self):
        self.flops = None

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if self.flops is None and training:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if self.flops is None and training:
            self._counter.__exit__(None, None, None)
            self.flops = self._counter.get_total_flops()
            del self._counter


def run(X, args, precision, graphs, count_flops):
    flops = StepFlops()
    pre = NeuroformerPretrainer(
        preset=args.preset, contrastive=("id", "frames"), max_tokens=100, max_prev_tokens=700,
        batch_size=args.batch_size, max_epochs=args.epochs, lr=1e-4, weight_decay=1.0,
        validation_fraction=None, device=args.device, precision=precision,
        compile=args.compile, cuda_graphs=graphs, random_state=0, strategy=args.strategy,
        rate_prior=not args.no_rate_prior,
        callbacks=[("flops", flops)] if count_flops else None)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre.fit(X)
    wall = time.perf_counter() - t0
    durations = np.array([row["dur"] for row in pre.history_])
    steady = durations[1:] if len(durations) > 1 else durations
    epoch_s = float(np.median(steady))
    tokens = (X.n_spikes() + 2).sum() + (X.n_spikes(past=True) + 2).sum()
    result = {
        "precision": precision, "wall_s": wall, "first_epoch_s": float(durations[0]),
        "epoch_s": epoch_s, "samples_per_s": len(X) / epoch_s, "tokens_per_s": tokens / epoch_s,
        "steps_per_epoch": pre.history_[-1]["train_batch_count"],
        "losses": [round(row["train_loss"], 4) for row in pre.history_],
        "flops_per_step": flops.flops if count_flops else None,
        "n_params": sum(p.numel() for p in pre.model_.parameters()),
    }
    if args.device == "cuda":
        result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def profile_steps(X, args, precision, graphs, n_steps=20):
    """Model-only timing (batches prebuilt on the device, plain loop) plus a profiler table."""
    from torch.profiler import ProfilerActivity, profile

    from nfestimators.estimators.pretrainer import LOSS_WEIGHTS
    from nfestimators.training import (LossCombiner, compile_blocks, decay_param_groups,
                                       device_context)
    from nfestimators.training.graphs import GraphedTrainStep

    pre = NeuroformerPretrainer(preset=args.preset, contrastive=("id", "frames"), max_tokens=100,
                                max_prev_tokens=700, max_epochs=1, validation_fraction=None,
                                device=args.device, precision=precision, random_state=0,
                                rate_prior=not args.no_rate_prior)
    pre.fit(X[: args.batch_size * 2])
    model = pre.model_.train()
    store = pre.input_encoder_.store(X, args.device, pad_multiple=32 if graphs else 8)
    rows = np.random.default_rng(0).permutation(len(X))
    batches = [store.batch(rows[i * args.batch_size:(i + 1) * args.batch_size])
               for i in range(n_steps)]
    opt = torch.optim.AdamW(decay_param_groups(model, 0.1), lr=1e-4, fused=args.device == "cuda",
                            capturable=graphs)
    forward = compile_blocks(model) if args.compile else model
    criterion = LossCombiner(LOSS_WEIGHTS)

    def body(batch):
        with device_context(args.device, precision, cache=not graphs):
            out = forward(batch)
        losses = {k: v.float() for k, v in model.losses(out, batch).items()}
        loss = criterion(losses)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0, foreach=True)
        opt.step()
        return loss, losses

    graphed = GraphedTrainStep(body, opt, args.device) if graphs else None

    def step(batch):
        if graphed is not None:
            return graphed(batch)
        opt.zero_grad(set_to_none=True)
        return body(batch)

    for batch in batches[:4]:  # graphs: two eager warm-up steps per shape, then capture
        step(batch)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for batch in batches:
        step(batch)
    torch.cuda.synchronize()
    step_s = (time.perf_counter() - t0) / len(batches)
    shapes = sorted({(tuple(b["id"].shape), tuple(b["id_prev"].shape)) for b in batches})
    print(f"[{precision}{', CUDA graphs' if graphs else ''}] model only: {step_s * 1e3:.1f} "
          f"ms/step = {args.batch_size / step_s:,.0f} samples/s; batch shapes (id, id_prev) "
          f"{shapes}" + (f", {graphed.n_graphs} graphs" if graphs else ""))
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for batch in batches[:5]:
            step(batch)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=15))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    print_gpu_breakdown(prof, n_steps=5)


def print_gpu_breakdown(prof, n_steps):
    """GPU time per step of the profiled steps, by kernel group (KERNEL_GROUPS)."""
    totals, kernels = {}, {}
    for event in prof.key_averages():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        name = event.key.lower()
        group = next((g for g, keys in KERNEL_GROUPS if any(k in name for k in keys)),
                     "elementwise and other")
        totals[group] = totals.get(group, 0.0) + event.self_device_time_total
        kernels[group] = kernels.get(group, 0) + event.count
    total = sum(totals.values())
    print(f"GPU time per step {total / n_steps / 1e3:.2f} ms, by kernel group:")
    for group, us in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"    {group:<24} {us / n_steps / 1e3:7.2f} ms  {100 * us / total:5.1f} %  "
              f"{kernels[group] / n_steps:6.0f} kernels/step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--precision", nargs="+", default=["bf16"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=160)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of recording")
    parser.add_argument("--n-neurons", type=int, default=2023)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-rate-prior", action="store_true",
                        help="rate_prior=False (the paper's heads; the default adds the prior)")
    parser.add_argument("--cuda-graphs", nargs="+", choices=("on", "off"), default=["on"],
                        help="train with CUDA graph replays, eager steps, or both in turn")
    parser.add_argument("--peak-tflops", type=float, default=790.0)
    parser.add_argument("--profile", action="store_true",
                        help="time model-only steps and print profiler tables (CUDA)")
    parser.add_argument("--strategy", choices=("single", "ddp"), default="single",
                        help="ddp: one process per GPU under torchrun")
    parser.add_argument("--original", type=Path, default=None,
                        help="JSON of ../shared/reference/orig_neuroformer/bench_orig.py run on "
                             "the same GPU in the same session: prints the ratios against it")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    if args.strategy == "ddp":
        from nfestimators.train import init_distributed

        rank, world_size = init_distributed(device=args.device)  # NVLink multicast off
        if rank:
            sys.stdout = open(os.devnull, "w")  # rank 0 prints
        print(f"ddp: {world_size} processes, global batch {args.batch_size}")

    t0 = time.perf_counter()
    X = lateral_workload(args.n_neurons, args.duration)
    print(f"workload: {X} ({time.perf_counter() - t0:.1f} s to build); mean spikes/window "
          f"{X.n_spikes().mean():.1f}; device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""))
    original = {p: run["samples_per_s_train_from_median"]  # median step, as our epochs
                for p, run in json.loads(args.original.read_text())["runs"].items()
                } if args.original else {}
    variants = [(p, g == "on") for g in args.cuda_graphs for p in args.precision]
    if args.device != "cuda" or args.strategy != "single":
        variants = [(p, False) for p in args.precision]
    if args.profile:
        for precision, graphs in variants:
            profile_steps(X, args, precision, graphs)
        return
    for i, (precision, graphs) in enumerate(variants):
        r = run(X, args, precision, graphs, count_flops=(i == 0))
        label = (precision + (" compiled" if args.compile else "")
                 + (", CUDA graphs" if graphs else ""))
        line = (f"[{label}] {r['samples_per_s']:,.0f} samples/s"
                + "".join(f" ({r['samples_per_s'] / rate:.1f}x the original's {rate:,.0f} "
                          f"in {p})" for p, rate in original.items())
                + f", {r['tokens_per_s']:,.0f} tokens/s, epoch {r['epoch_s']:.2f} s "
                f"({r['steps_per_epoch']} steps; first epoch {r['first_epoch_s']:.2f} s), "
                f"{r['n_params']:,} parameters")
        if "peak_gib" in r:
            line += f", peak memory {r['peak_gib']:.2f} GiB"
        print(line)
        if r["flops_per_step"]:
            step_s = r["epoch_s"] / r["steps_per_epoch"]
            tflops = r["flops_per_step"] / step_s / 1e12
            print(f"    model FLOPs/step {r['flops_per_step'] / 1e12:.2f} TFLOP (first batch), "
                  f"{tflops:.1f} TFLOP/s achieved = {100 * tflops / args.peak_tflops:.1f}% of "
                  f"{args.peak_tflops:.0f}")
        print(f"    train loss per epoch: {r['losses']}")
    if args.strategy == "ddp":
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
