"""Many small fits (issue #16, part 5): where one small fit's time goes, and what
``GridSearchCV(n_jobs=k)`` costs when its processes share one device.

One fit of ``NeuroformerRegressor`` on a small synthetic recording, timed by phase:

* process start-up: a fresh Python process importing the package and touching the device
  (what every new joblib worker pays once);
* input encoding: fitting the tokenizer, tokenizing the windows and moving the token
  store to the device (``SpikeTokenizer`` and ``TokenStore``, as ``fit`` does);
* fit set-up: from the ``fit`` call to the start of training (checks, input encoding,
  model and optimizer construction);
* first step, first epoch (CUDA-graph warm-up steps and captures happen there), the
  median later epoch, and the whole fit; on CUDA the same fit with ``cuda_graphs=False``.

Then ``GridSearchCV`` with ``--fits`` fits (``lr`` settings x 2 folds, no refit) at each
``--n-jobs`` (loky processes; on CUDA they all share the one GPU): total wall, its ratio to
``--fits`` x one fit, the device's occupancy sampled during the search (``nvidia-smi`` on
CUDA, the machine's busy CPU fraction from ``/proc/stat`` on a CPU) and the torch threads
of a worker (joblib caps a loky worker's BLAS/OpenMP threads at cores // n_jobs).

Every fit trains a fixed number of epochs (no early stopping) so fits cost the same.

    python benchmarks/bench_many_fits.py --device cuda --n-jobs 1 4 8     # about 2-3 min
    python benchmarks/bench_many_fits.py --device cpu --quick            # seconds
"""

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from skorch.callbacks import Callback
from sklearn.model_selection import GridSearchCV, KFold

from nfestimators import NeuroformerRegressor, SpikeTokenizer
from nfestimators.data import TokenStore
from nfestimators.datasets import make_spiking_data

FULL = dict(n_neurons=60, duration=120.0, preset="small", epochs=8, fits=20, batch_size=32)
QUICK = dict(n_neurons=12, duration=12.0, preset="tiny", epochs=2, fits=4, batch_size=32)
CV_FOLDS = 2


def synchronize(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class PhaseTimes(Callback):
    """Wall-clock marks of a fit: training start, first step, every epoch end."""

    def __init__(self, device):
        self.device = device

    def initialize(self):
        self.train_begin = None
        self.first_step = None
        self.epoch_ends = []
        return self

    def on_train_begin(self, net, **kwargs):
        self.train_begin = time.perf_counter()

    def on_batch_end(self, net, training=False, **kwargs):
        if training and self.first_step is None:
            synchronize(self.device)
            self.first_step = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        synchronize(self.device)
        self.epoch_ends.append(time.perf_counter())


def estimator(cfg, device, **params):
    return NeuroformerRegressor(preset=cfg["preset"], max_epochs=cfg["epochs"],
                                batch_size=cfg["batch_size"], n_iter_no_change=None,
                                device=device, random_state=0, **params)


def process_startup(device):
    """Wall time of a fresh interpreter importing the package and initialising ``device``."""
    code = ("import torch, nfestimators; "
            f"torch.zeros(1, device={device!r}).sum().item()")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def input_encoding(X, y, device):
    """Tokenizer fit + transform of ``X`` and its token store on ``device`` (seconds)."""
    start = time.perf_counter()
    tokens = SpikeTokenizer().fit(X).transform(X)
    store = TokenStore(tokens, device, y_reg=y)
    synchronize(device)
    del store
    return time.perf_counter() - start


def timed_fit(cfg, device, X, y, **params):
    """Phase times (seconds) of one fit."""
    marks = PhaseTimes(device)
    reg = estimator(cfg, device, callbacks=[("phase_times", marks)], **params)
    synchronize(device)
    start = time.perf_counter()
    reg.fit(X, y)
    synchronize(device)
    end = time.perf_counter()
    epochs = np.diff([marks.train_begin, *marks.epoch_ends])
    return {"setup": marks.train_begin - start, "first_step": marks.first_step - marks.train_begin,
            "first_epoch": float(epochs[0]),
            "later_epoch": float(statistics.median(epochs[1:])) if len(epochs) > 1 else None,
            "total": end - start, "cuda_graphs": bool(reg.cuda_graphs_)}


class Occupancy:
    """Samples the device's busy fraction (percent) in a thread while the block runs."""

    def __init__(self, device, interval=0.2):
        self.cuda = str(device).startswith("cuda")
        self.interval = interval
        self.samples, self.memory = [], []

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        previous = None if self.cuda else _cpu_times()
        while not self._stop.wait(self.interval):
            if self.cuda:
                sample = _nvidia_smi()
                if sample is None:
                    return
                self.samples.append(sample[0])
                self.memory.append(sample[1])
            else:
                current = _cpu_times()
                busy, total = current[0] - previous[0], current[1] - previous[1]
                if total > 0:
                    self.samples.append(100.0 * busy / total)
                previous = current

    def summary(self):
        if not self.samples:
            return "n/a"
        text = f"{np.mean(self.samples):.0f} / {np.max(self.samples):.0f} %"
        if self.memory:
            text += f", {max(self.memory) / 1024:.1f} GiB"
        return text


def _nvidia_smi():
    """(utilisation %, memory used MiB) of GPU 0, or None without ``nvidia-smi``."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                              "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
        util, memory = out.strip().split(",")
        return float(util), float(memory)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _cpu_times():
    """(busy, total) jiffies of all CPUs (Linux ``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [float(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def worker_threads():
    return torch.get_num_threads()


def grid_search(cfg, device, X, y, n_jobs):
    """Wall time, occupancy and a worker's torch threads of the ``--fits`` fits."""
    n_settings = cfg["fits"] // CV_FOLDS
    grid = {"lr": [float(v) for v in np.geomspace(3e-4, 3e-3, n_settings)]}
    search = GridSearchCV(estimator(cfg, device), grid, cv=KFold(CV_FOLDS), refit=False,
                          n_jobs=n_jobs, error_score="raise")
    with Occupancy(device) as occupancy:
        start = time.perf_counter()
        search.fit(X, y)
        wall = time.perf_counter() - start
    threads = (torch.get_num_threads() if n_jobs == 1 else
               Parallel(n_jobs=n_jobs)(delayed(worker_threads)() for _ in range(n_jobs))[0])
    return {"n_jobs": n_jobs, "wall": wall, "occupancy": occupancy.summary(),
            "threads": threads, "best_r2": float(np.max(search.cv_results_["mean_test_score"]))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny model and data, 4 fits (a machinery check in seconds)")
    parser.add_argument("--n-jobs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--fits", type=int, default=None,
                        help="fits of the grid search, a multiple of 2 (default 20; quick 4)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    cfg.update({k: v for k, v in (("fits", args.fits), ("epochs", args.epochs)) if v})
    if cfg["fits"] % CV_FOLDS:
        parser.error(f"--fits must be a multiple of {CV_FOLDS}")
    warnings.simplefilter("ignore")  # token-budget notes of the tiny preset
    device = args.device

    data = make_spiking_data(n_neurons=cfg["n_neurons"], duration=cfg["duration"],
                             random_state=0)
    X, y = data.windows, data.behavior
    half = np.arange(len(X) // CV_FOLDS)  # a fit of the grid search sees one fold
    timed_fit(cfg, device, X[half], y[half])  # warm-up: imports, kernels, allocator
    phases = timed_fit(cfg, device, X[half], y[half])
    figures = {"config": {**cfg, "device": device, "windows_per_fit": len(half),
                          "torch_threads": torch.get_num_threads()},
               "process_startup": process_startup(device),
               "input_encoding": input_encoding(X[half], y[half], device), "fit": phases}
    if device.startswith("cuda"):
        figures["fit_eager"] = timed_fit(cfg, device, X[half], y[half], cuda_graphs=False)

    print(f"one fit: {device}, preset {cfg['preset']}, {len(half)} windows, {cfg['epochs']} "
          f"epochs, batch {cfg['batch_size']}, {torch.get_num_threads()} torch threads")
    rows = [("process start-up (import + device)", figures["process_startup"]),
            ("input encoding (tokenize + store)", figures["input_encoding"]),
            ("fit set-up (to first step)", phases["setup"]),
            ("first step", phases["first_step"]),
            ("first epoch" + (" (graph captures)" if phases["cuda_graphs"] else ""),
             phases["first_epoch"]),
            ("later epoch (median)", phases["later_epoch"]),
            ("fit total", phases["total"])]
    if "fit_eager" in figures:
        eager = figures["fit_eager"]
        rows += [("fit total, cuda_graphs=False", eager["total"]),
                 ("  its first / later epoch", f"{eager['first_epoch']:.3f} / "
                                               f"{eager['later_epoch'] or 0:.3f}")]
    for name, value in rows:
        print(f"  {name:<38} {value if isinstance(value, str) else f'{value or 0:.3f}'}"
              f"{'' if isinstance(value, str) else ' s'}")

    one_fit = phases["total"]
    print(f"GridSearchCV, {cfg['fits']} fits ({cfg['fits'] // CV_FOLDS} lr x {CV_FOLDS} "
          f"folds, refit=False); {cfg['fits']} x one fit = {cfg['fits'] * one_fit:.1f} s")
    print(f"  {'n_jobs':>6} {'wall s':>8} {'/ (fits x one fit)':>19} {'threads/worker':>15}  "
          f"{'busy mean / max' + (', peak memory' if device.startswith('cuda') else ''):}")
    figures["grid"] = []
    for n_jobs in args.n_jobs:
        result = grid_search(cfg, device, X, y, n_jobs)
        result["ratio"] = result["wall"] / (cfg["fits"] * one_fit)
        figures["grid"].append(result)
        print(f"  {n_jobs:>6} {result['wall']:>8.1f} {result['ratio']:>19.2f} "
              f"{result['threads']:>15}  {result['occupancy']}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=1)
    return figures


if __name__ == "__main__":
    main()
