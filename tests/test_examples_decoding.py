"""The decoding example and benchmark run end to end (``--small``: machinery only)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AUDITORY = ROOT.parent / "shared" / "data" / "auditory_cortex"


def _run(script, *args):
    result = subprocess.run([sys.executable, str(ROOT / script), "--small", "--device", "cpu",
                             *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_decode_synthetic_small():
    out = _run("benchmarks/decode_synthetic.py")
    for name in ("Ridge, current-window counts", "Ridge, current + past-window counts",
                 "NeuroformerRegressor"):
        assert name in out


def test_auditory_cortex_small():
    if not all((AUDITORY / f).is_file() for f in ("D_E_III.csv", "D_A_I.csv")):
        pytest.skip(f"auditory cortex data not found at {AUDITORY} (../shared/data beside the repo)")
    out = _run("examples/auditory_cortex.py")
    for name in ("logistic, 10 x 50 ms per-cell counts", "linear SVM (one-vs-one)",
                 "logistic, total count alone", "NeuroformerClassifier", "D_E_III", "D_A_I"):
        assert name in out



def test_hippocampus_wmaze_small():
    data = ROOT.parent / "shared" / "data" / "hippocampus_wmaze"
    if not all((data / f).is_file() for f in ("spikes.npz", "position.npz")):
        pytest.skip(f"hippocampus W-maze data not found at {data} (../shared/data beside the repo)")
    out = _run("examples/hippocampus_wmaze.py")
    assert "200 running windows" in out and "2 contiguous folds" in out
    for name in ("NeuroformerRegressor", "Ridge, 100 ms counts (current + past)",
                 "k-NN, unit counts (current, past)", "R² mean"):
        assert name in out
