"""Spike generation speed: batched KV-cache sampler vs the uncached per-window reference.

A randomly initialized model (preset ``small`` or ``paper``) generates windows from a
random past block (and a random stimulus clip with ``--frames``). Both samplers use the
same draws, so they generate the same tokens; the reference runs one full forward per
token and window (the original's inference loop, spec 6.1), on ``--reference-windows``
windows only, and its figures are per window.

    python -m benchmarks.bench_generate [--device cpu|cuda] [--preset small|paper]
        [--n-windows 8] [--reference-windows 2] [--repeats 3] [--frames] [--threads 1]

Prints, for each sampler, the median over repeats of ms per generated window and
generated tokens per second.
"""

import argparse
import time

import numpy as np
import torch

from nfestimators.model import build_model
from nfestimators.model.generation import generate_tokens
from tests.generation_reference import generate_tokens_reference


def random_context(config, n_windows, past_events, frames_shape, generator):
    """Past blocks ``[SOS, events, EOS]`` (no PAD) and optional frames for n_windows."""
    c = config
    n = min(past_events, c.block_size_prev - 2)
    id_prev = torch.randint(0, c.n_neurons, (n_windows, n + 2), generator=generator)
    dt_prev = torch.randint(0, c.n_dt, (n_windows, n + 2), generator=generator).sort(dim=1).values
    id_prev[:, 0], dt_prev[:, 0] = c.sos_id, 0
    id_prev[:, -1], dt_prev[:, -1] = c.eos_id, c.eos_dt
    batch = {"id_prev": id_prev, "dt_prev": dt_prev}
    if frames_shape is not None:
        batch["frames"] = torch.rand((n_windows, 1, *frames_shape), generator=generator)
    return batch


def timed(fn, repeats, device):
    """Median wall time over repeats and the last result."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--preset", default="small", choices=["small", "paper"])
    parser.add_argument("--n-windows", type=int, default=8)
    parser.add_argument("--reference-windows", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-neurons", type=int, default=None, help="default: 200 (small), 2023 (paper)")
    parser.add_argument("--past-events", type=int, default=None, help="default: half the past block")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: block_size - 1")
    parser.add_argument("--frames", action="store_true", help="add a (3, 30, 100) stimulus clip")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    n_neurons = args.n_neurons or (2023 if args.preset == "paper" else 200)
    frames_shape = (3, 30, 100) if args.frames else None
    torch.manual_seed(0)
    model = build_model(args.preset, n_neurons, n_dt=6, frames_shape=frames_shape).to(device).eval()
    c = model.config
    past_events = args.past_events if args.past_events is not None else c.block_size_prev // 2
    batch = random_context(c, args.n_windows, past_events, frames_shape, torch.Generator().manual_seed(1))
    kwargs = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"preset={args.preset} params={n_params:,} device={args.device} threads={torch.get_num_threads()} "
          f"neurons={n_neurons} past_tokens={past_events + 2} frames={frames_shape}")
    generate_tokens(model, batch, generator=torch.Generator().manual_seed(0), **kwargs)  # warm-up

    rows = []
    seconds, out = timed(
        lambda: generate_tokens(model, batch, generator=torch.Generator().manual_seed(0), **kwargs),
        args.repeats, device,
    )
    rows.append(("cached, batched", args.n_windows, int(out.lengths.sum()), seconds))

    n_ref = min(args.reference_windows, args.n_windows)
    reference_batch = {k: v[:n_ref] for k, v in batch.items()}
    seconds, ref = timed(
        lambda: generate_tokens_reference(
            model, reference_batch, generator=torch.Generator().manual_seed(0), **kwargs),
        args.repeats, device,
    )
    rows.append(("uncached reference, per window", n_ref, int(ref.lengths.sum()), seconds))
    same = np.array_equal(ref.ids, out.ids[:n_ref]) and np.array_equal(ref.dts, out.dts[:n_ref])

    print(f"{'sampler':32s} {'windows':>8s} {'tokens':>8s} {'ms/window':>10s} {'tokens/s':>10s}")
    for name, n_windows, n_tokens, seconds in rows:
        print(f"{name:32s} {n_windows:8d} {n_tokens:8d} {1e3 * seconds / n_windows:10.1f} "
              f"{n_tokens / seconds:10.0f}")
    speedup = (rows[1][3] / rows[1][1]) / (rows[0][3] / rows[0][1])
    print(f"speed-up per window: {speedup:.1f}x; same tokens on the shared windows: {same}")


if __name__ == "__main__":
    main()
