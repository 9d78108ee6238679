"""The CPU training path (issue #16, part 4): length-pooled batches, padding to the batch's
own length, and the many-fits benchmark's quick mode (part 5). No timings here."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback

from nfestimators import NeuroformerPretrainer, SpikeTokenizer
from nfestimators.data import TokenStore
from nfestimators.datasets import make_spiking_data
from nfestimators.training import TokenBatches

REPO = Path(__file__).resolve().parents[1]


def _store(n_neurons=10, duration=20.0):
    data = make_spiking_data(n_neurons=n_neurons, duration=duration, random_state=0)
    tokenizer = SpikeTokenizer().fit(data.windows)
    return TokenStore(tokenizer.transform(data.windows), "cpu"), tokenizer.id_pad_


def _padding(store, batches):
    """Token slots of one pass's batches over the windows' own (SOS + spikes) lengths."""
    rows = batches._batch_rows()
    slots = sum(store.batch(chunk)["id"].numel() for chunk in rows)
    return slots / sum(int(store.length[chunk].sum()) + len(chunk) for chunk in rows)


def test_length_pools_see_every_row_once_and_cut_padding():
    store, pad = _store()
    rows = np.arange(len(store))
    plain = TokenBatches(store, rows, 16, shuffle=True, seed=0)
    pooled = TokenBatches(store, rows, 16, shuffle=True, seed=0, length_pool=8)
    passes = [pooled._batch_rows() for _ in range(2)]
    for batches in passes:
        assert len(batches) == len(pooled) == len(plain)
        assert sorted(np.concatenate(batches)) == list(rows)  # every window once per pass
        assert max(len(b) for b in batches) == 16
    assert not all(np.array_equal(a, b) for a, b in zip(*passes))  # reshuffled every pass
    # batches hold windows of similar length: far less padding than random batches
    store.pad_multiple = 1
    assert _padding(store, pooled) < 0.8 * _padding(store, plain)
    # the next-token losses of a pooled batch are scaled by its token count over the mean
    weights, tokens = [], []
    for batch in pooled:
        weights.append(batch["token_weight"])
        tokens.append(int((batch["target_id"] != pad).sum()))
    assert np.isclose(np.mean(weights), 1.0)
    assert np.allclose(weights, np.array(tokens) / np.mean(tokens), rtol=1e-6)
    assert "token_weight" not in next(iter(plain))
    # without shuffling (validation batches) the rows keep their order
    ordered = TokenBatches(store, rows, 16, length_pool=8)._batch_rows()
    assert np.array_equal(np.concatenate(ordered), rows)


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
