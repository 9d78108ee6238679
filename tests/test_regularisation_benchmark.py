"""Machinery of benchmarks/regularisation.py (issue #19 part 3): the --small run gives one
table with every arm, the same seeds in every arm, and label smoothing on classifiers only.
Figures are not checked (they need the full run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "regularisation.py"
ARMS = ["defaults", "jitter", "dropout", "ema", "smoothing", "combined", "ensemble"]


def test_small_run_reports_every_arm(tmp_path):
    out = tmp_path / "regularisation.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, str(SCRIPT), "--small", "--device", "cpu",
                           "--sets", "rate", "behavior", "--combine", "jitter", "ema",
                           "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["combined"] == ["jitter", "ema"]
    rows = {row["set"]: row for row in report["sets"]}
    assert set(rows["rate"]["arms"]) == set(ARMS)
    assert set(rows["behavior"]["arms"]) == set(ARMS) - {"smoothing"}  # a regression set
    for row in rows.values():
        for arm, result in row["arms"].items():
            assert result["seeds"] == [0], (row["set"], arm)
            assert np.all(np.isfinite(result["scores"])), (row["set"], arm)
        assert np.isfinite(row["best_baseline"]["score"])
    header = done.stdout.splitlines()[0]
    assert all(f" {arm} |" in header for arm in ARMS)
    assert "combined = jitter + ema" in done.stdout
