"""The CPU training path (issue #16, part 4): batches padded to their own length, the fused
AdamW; the many-fits benchmark's quick mode (part 5). No timings here."""

import json
import sys
from pathlib import Path

import torch
from skorch.callbacks import Callback

from nfestimators import NeuroformerPretrainer
from nfestimators.datasets import make_spiking_data

REPO = Path(__file__).resolve().parents[1]


class BatchShapes(Callback):
    def initialize(self):
        self.lengths = []
        return self

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.lengths.append((batch["id"].shape[1], int(batch["id"].shape[0])))


def test_cpu_fit_pads_batches_to_their_own_length_and_uses_fused_adamw(monkeypatch):
    built = []

    class RecordingAdamW(torch.optim.AdamW):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self.defaults["fused"])

    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    data = make_spiking_data(n_neurons=10, duration=20.0, random_state=0)
    shapes = BatchShapes()
    pre = NeuroformerPretrainer(preset="tiny", max_epochs=1, device="cpu", random_state=0,
                                callbacks=[("shapes", shapes)]).fit(data.windows)
    assert pre.device_ == "cpu" and built == [True]
    assert any(length % 8 for length, _ in shapes.lengths)  # not rounded up to multiples of 8


def test_bench_many_fits_quick_mode(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_many_fits

    out = tmp_path / "many_fits.json"
    monkeypatch.setattr(sys, "argv", ["bench_many_fits.py"])
    figures = bench_many_fits.main(["--device", "cpu", "--quick", "--fits", "2",
                                    "--n-jobs", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(figures))
    fit = figures["fit"]
    assert 0 < fit["setup"] < fit["total"] and fit["first_epoch"] > 0
    assert not fit["cuda_graphs"]
    (grid,) = figures["grid"]
    assert grid["n_jobs"] == 1 and grid["wall"] > 0 and grid["threads"] == torch.get_num_threads()
    assert figures["process_startup"] > 0 and figures["input_encoding"] > 0
