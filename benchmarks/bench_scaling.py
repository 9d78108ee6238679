"""Cost as the work grows (issue #16, part 3): time and peak memory of a training step and
of a predict batch, and predict throughput, each curve varying one factor.

Curves (the other factors at their fixed values, ``FIXED``):

* ``spikes``: spikes per window (tokens of the current and of the past window), training
  step and predict batch;
* ``neurons``: neurons (the id vocabulary), training step and predict batch;
* ``windows``: windows given to ``NeuroformerRegressor.predict``, end to end.

A training step (forward, losses, backward, AdamW step) and a predict batch
(``forward(batch, token_logits=False)`` under ``no_grad``) run on the model itself, on
batches cut by :class:`~nfestimators.data.TokenStore`. Times are medians of ``--repeats``
runs after a warm-up. Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on a CPU
the growth of the process's peak resident set (Linux ``/proc/self/status`` ``VmHWM``, reset
through ``/proc/self/clear_refs`` before each measurement). ``--plot`` draws the time curves
on log-log axes with the slope of a straight-line fit on them: 1 is linear; the table says
``linear`` for slopes within 0.8 to 1.2.

    python benchmarks/bench_scaling.py --device cuda --json scaling.json --plot scaling.png
    python benchmarks/bench_scaling.py --device cpu --quick
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from bench_inference import fit_estimators, median_seconds, spike_windows, token_budget
from nfestimators import SpikeTokenizer
from nfestimators.data import TokenStore
from nfestimators.model import build_model

FULL = dict(preset="small", batch=32, predict_batch=256, repeats=5,
            spikes=[64, 128, 256, 512, 1024, 2048, 4096, 8192],
            neurons=[100, 300, 1000, 3000, 10_000],
            windows=[10_000, 30_000, 100_000, 300_000, 1_000_000],
            fixed=dict(spikes=40, neurons=200, windows=10_000))
QUICK = dict(preset="tiny", batch=8, predict_batch=32, repeats=2,
             spikes=[64, 128, 256], neurons=[100, 200, 400], windows=[500, 1000, 2000],
             fixed=dict(spikes=40, neurons=100, windows=500))
LINEAR_SLOPES = (0.8, 1.2)


class PeakMemory:
    """Peak memory (bytes) allocated inside a ``with`` block on ``device``."""

    def __init__(self, device):
        self.cuda = device.startswith("cuda")
        self.bytes = None

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
            self.start = _status_bytes("VmRSS")
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated() - self.start
        else:
            self.bytes = max(0, _status_bytes("VmHWM") - self.start)


def _status_bytes(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def timed(call, repeats, device):
    """(median seconds, peak bytes) of ``call()`` over ``repeats`` runs after a warm-up."""
    call()  # the warm-up stays outside the memory measurement
    with PeakMemory(device) as memory:
        seconds = median_seconds(call, repeats, device, warmup=False)
    return seconds, memory.bytes


def model_steps(setup, n_neurons, spikes, device):
    """Per-step cost of training and of predicting on one batch of the workload."""
    n_windows = max(setup["batch"], setup["predict_batch"])
    X = spike_windows(n_windows, n_neurons, spikes)
    budget = token_budget(spikes)
    tokenizer = SpikeTokenizer(max_tokens=budget, max_prev_tokens=budget).fit(X)
    store = TokenStore(tokenizer.transform(X), device)
    model = build_model(setup["preset"], tokenizer.n_neurons_, n_dt=tokenizer.n_dt_,
                        block_size=budget, block_size_prev=budget).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    train_batch = store.batch(np.arange(setup["batch"]))
    predict_batch = store.batch(np.arange(setup["predict_batch"]), targets=False)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        sum(model.losses(model(train_batch), train_batch).values()).backward()
        optimizer.step()

    def predict_step():
        with torch.no_grad():
            model(predict_batch, token_logits=False)

    model.train()
    train = timed(train_step, setup["repeats"], device)
    model.eval()
    predict = timed(predict_step, setup["repeats"], device)
    return {"train_step_s": train[0], "train_peak_bytes": train[1],
            "predict_batch_s": predict[0], "predict_peak_bytes": predict[1]}


def predict_throughput(setup, n_windows, device, fitted):
    """End-to-end ``predict`` over ``n_windows`` windows."""
    fixed = setup["fixed"]
    X = spike_windows(n_windows, fixed["neurons"], fixed["spikes"], seed=1)
    seconds, peak = timed(lambda: fitted.predict(X), 1 if n_windows > 100_000 else
                          setup["repeats"], device)
    return {"predict_s": seconds, "predict_peak_bytes": peak,
            "windows_per_second": len(X) / seconds}


def log_log_slope(x, y):
    """Slope of the least-squares line through (log x, log y)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def run_curves(setup, device):
    fixed = setup["fixed"]
    curves = {"spikes": [], "neurons": [], "windows": []}
    for spikes in setup["spikes"]:
        curves["spikes"].append({"x": spikes, **model_steps(setup, fixed["neurons"], spikes,
                                                            device)})
    for n_neurons in setup["neurons"]:
        curves["neurons"].append({"x": n_neurons, **model_steps(setup, n_neurons,
                                                               fixed["spikes"], device)})
    X_fit = spike_windows(setup["batch"] * 8, fixed["neurons"], fixed["spikes"])
    _, regressor = fit_estimators(setup["preset"], X_fit, device, token_budget(fixed["spikes"]))
    for n_windows in setup["windows"]:
        curves["windows"].append({"x": n_windows, **predict_throughput(setup, n_windows,
                                                                       device, regressor)})
    return curves


def slopes(curves):
    """Log-log slope of every time series of every curve."""
    return {(name, key): log_log_slope([r["x"] for r in rows], [r[key] for r in rows])
            for name, rows in curves.items() for key in rows[0] if key.endswith("_s")}


def print_tables(curves, fitted):
    for name, rows in curves.items():
        keys = [k for k in rows[0] if k != "x"]
        print(f"\n{name} (others fixed)")
        print(f"{name:>10} " + " ".join(f"{k:>20}" for k in keys))
        for row in rows:
            print(f"{row['x']:>10} " + " ".join(_cell(k, row[k]) for k in keys))
        for (curve, key), slope in fitted.items():
            if curve == name:
                low, high = LINEAR_SLOPES
                verdict = "linear" if low <= slope <= high else (
                    "below linear" if slope < low else "above linear")
                print(f"  {key}: log-log slope {slope:.2f} ({verdict})")


def _cell(key, value):
    if key.endswith("_bytes"):
        return f"{value / 2**20:>17.1f} MiB"
    if key.endswith("_s"):
        return f"{value * 1e3:>18.2f} ms"
    return f"{value:>20,.0f}"


def plot(curves, fitted, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4))
    for ax, (name, rows) in zip(axes, curves.items()):
        x = [r["x"] for r in rows]
        for key in [k for k in rows[0] if k.endswith("_s")]:
            ax.loglog(x, [r[key] for r in rows], "o-",
                      label=f"{key} (slope {fitted[(name, key)]:.2f})")
        ax.set_xlabel(name)
        ax.set_ylabel("seconds")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true",
                        help="tiny preset and small sizes: a CPU check in seconds")
    parser.add_argument("--json", type=Path, help="write the curves to this file")
    parser.add_argument("--plot", type=Path, help="draw the curves (log-log) to this image")
    args = parser.parse_args()

    setup = QUICK if args.quick else FULL
    print(f"device {args.device}, preset {setup['preset']}, train batch {setup['batch']}, "
          f"predict batch {setup['predict_batch']}, fixed {setup['fixed']}")
    curves = run_curves(setup, args.device)
    fitted = slopes(curves)
    print_tables(curves, fitted)
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "setup": setup,
                                         "curves": curves}, indent=1))
    if args.plot:
        plot(curves, fitted, args.plot)


if __name__ == "__main__":
    main()
