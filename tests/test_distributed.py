"""Data-parallel pretraining (issue #8): ``torchrun`` with two gloo processes on the CPU
gives the model of one process trained on the same global batches."""

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nfestimators import NeuroformerPretrainer
from nfestimators.datasets import make_spiking_data
from nfestimators.training.distributed import shard_rows, shard_sizes

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-5  # parameters after 14 AdamW steps (float32; observed 1.6e-6)

# tiny model without dropout; contrastive id <-> speed so that InfoNCE needs the whole batch
PARAMS = dict(preset="tiny", contrastive=("id", "speed"), dropout=0.0, max_epochs=2,
              batch_size=16, lr=1e-3, validation_fraction=0.1, n_iter_no_change=5,
              device="cpu", random_state=0)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shard_rows_split_every_row_once():
    rows = np.arange(10, 17)
    parts = [shard_rows(rows, rank, 3) for rank in range(3)]
    assert sorted(np.concatenate(parts)) == list(rows)
    assert shard_sizes(7, 3) == [3, 2, 2] and shard_sizes(1, 2) == [1, 0]
    assert list(shard_rows(rows[:1], 1, 2)) == [10]  # stand-in row, its targets get masked


def test_ddp_strategy_needs_a_process_group():
    X = np.ones((4, 3, 5))
    with pytest.raises(RuntimeError, match="torch.distributed.run"):
        NeuroformerPretrainer(strategy="ddp", device="cpu").fit(X)
    with pytest.raises(ValueError, match="strategy"):
        NeuroformerPretrainer(strategy="fsdp", device="cpu").fit(X)


def test_two_processes_match_one(tmp_path):
    windows = make_spiking_data(n_neurons=20, duration=6.0, behavior_as_input=True,
                                random_state=0).windows[:108]
    # 11 validation windows, 97 training windows = 6 batches of 16 + 1: rank 1 sits out
    # (runs a masked stand-in row) in the last batch of every epoch
    path = tmp_path / "windows.pkl"
    with open(path, "wb") as f:
        pickle.dump(windows, f)
    out = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "nfestimators.train",
           "--windows", str(path), "--preset", "tiny", "--contrastive", "id", "speed",
           "--dropout", "0", "--max-epochs", "2", "--batch-size", "16", "--lr", "1e-3",
           "--validation-fraction", "0.1", "--n-iter-no-change", "5", "--device", "cpu",
           "--random-state", "0", "--backend", "gloo", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "strategy ddp on 2 process(es)" in proc.stderr

    ddp = NeuroformerPretrainer.load(out)
    single = NeuroformerPretrainer(**PARAMS).fit(windows)
    assert ddp.history_[-1]["train_batch_count"] == 7
    sizes = [row["train_batch_size"] for row in single.history_[-1]["batches"]
             if "train_batch_size" in row]
    assert sizes == [16] * 6 + [1]

    expected, got = single.model_.state_dict(), ddp.model_.state_dict()
    assert expected.keys() == got.keys()
    diff = max((expected[k] - got[k]).abs().max().item() for k in expected)
    assert diff < ATOL, f"max abs parameter difference {diff:.2e}"
    for key in ("train_loss", "valid_loss", "train_id", "train_dt", "train_contrastive"):
        np.testing.assert_allclose(ddp.history_[:, key], single.history_[:, key], rtol=1e-5)
