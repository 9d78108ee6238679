"""Machinery of the label-efficiency benchmark (issue #10): runs, writes the table with the
documented columns. Figures are not checked here (they need the full-size run)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "label_efficiency.py"
COLUMNS = ["dataset", "task", "metric", "fraction", "n_labels", "method", "mean", "std", "draws"]


def _run_small(tmp_path, *extra):
    cmd = [sys.executable, str(SCRIPT), "--small", "--device", "cpu", "--out", str(tmp_path),
           *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _check_table(path, tasks, methods):
    table = pd.read_csv(path)
    assert list(table.columns) == COLUMNS
    assert set(table["task"]) == set(tasks)
    assert set(table["method"]) == set(methods)
    assert sorted(table["fraction"].unique()) == [0.05, 1.0]
    assert (table["draws"] == 1).all()
    assert table["mean"].notna().all()
    n = table.set_index(["task", "method", "fraction"])["n_labels"]
    assert all(n[t, m, 0.05] < n[t, m, 1.0] for t in tasks for m in methods)
    return table


def test_small_synthetic(tmp_path):
    out = _run_small(tmp_path, "--dataset", "synthetic", "--methods", "finetune", "probe",
                     "scratch", "linear")
    _check_table(tmp_path / "table_synthetic.csv", ["behavior", "condition"],
                 ["finetune", "probe", "scratch", "linear"])
    raw = pd.read_csv(tmp_path / "raw_synthetic.csv")
    assert {"draw", "score", "seconds"} <= set(raw.columns)
    assert "| labels | n | finetune | probe | scratch | linear | draws |" in out


def test_small_auditory(tmp_path, shared_data):
    csv = shared_data / "auditory_cortex" / "D_E_III.csv"
    if not csv.is_file():
        pytest.skip(f"{csv} not found")
    _run_small(tmp_path, "--dataset", "auditory", "--data", str(csv))
    table = _check_table(tmp_path / "table_auditory.csv", ["sound"],
                         ["finetune", "scratch", "linear"])
    assert (table["n_labels"] >= 18).all()  # stratified: every sound labelled at least once
