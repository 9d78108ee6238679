"""Machinery of the decoding suite (issue #19, part 7): the --small run on the synthetic sets
gives a table with every set and method. Figures are not checked (they need the full run)."""

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from nfestimators.datasets import make_spiking_data

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "decoding_suite.py"
SYNTHETIC = ["rate", "identity", "order", "latency", "synchrony", "behavior", "spiking"]
METHODS = ["defaults", "CV", "linear", "k-NN"]


def _suite_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("decoding_suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, str(SCRIPT), "--small", "--device", "cpu", *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_small_run_reports_every_synthetic_set_and_method(tmp_path):
    out = tmp_path / "suite.json"
    done = _run("--sets", *SYNTHETIC, "--json", str(out))
    rows = json.loads(out.read_text())
    assert [row["set"] for row in rows] == SYNTHETIC
    for row in rows:
        assert set(row["methods"]) == set(METHODS)
        assert row["best_baseline"] in ("linear", "k-NN")
        for method, result in row["methods"].items():
            if method == "CV" and result["missing"]:
                continue
            assert result["scores"] and np.all(np.isfinite(result["scores"])), (row, method)
            assert np.all(np.isfinite(result["seconds"])), (row, method)
    table = done.stdout.splitlines()
    header = table[0]
    assert all(f" {method} |" in header for method in METHODS)
    for name in SYNTHETIC:
        line = next(line for line in table if line.startswith(f"| {name} |"))
        assert "nan" not in line


def test_missing_real_data_is_skipped_with_a_message(tmp_path):
    done = _run("--sets", "D_E_III", "wmaze", "--data-root", str(tmp_path))
    assert "skipping D_E_III" in done.stderr and "skipping wmaze" in done.stderr
    assert str(tmp_path) in done.stderr


def test_code_params_draw_other_window_lengths_and_sizes(monkeypatch):
    suite = _suite_module(monkeypatch)
    load = functools.partial(suite.load_set, code_params={"window": 0.4, "n_neurons": 12})
    (dataset,) = suite.available_sets(["latency"], Path("."), True, 0, load)
    assert (dataset.X.n_neurons, dataset.X.n_bins * dataset.X.dt) == (12, 0.4)
    assert len(dataset.X) == suite.SMALL_CODES["n_trials"]  # the --small sizes stay


def test_code_families_table_has_every_family_and_code(tmp_path):
    """benchmarks/code_families.py: a row per family, a cell per code, and the generator's
    reason where a family's setting cannot hold a code (8 latency classes in 200 ms)."""
    out = tmp_path / "families.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    families = ["1 s trials", "8 classes, 480 trials"]
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "code_families.py"),
                           "--small", "--device", "cpu", "--families", *families,
                           "--data-seeds", "0", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert list(results) == families
    for family, runs in results.items():
        assert list(runs) == SYNTHETIC[:-1]  # every code family of the suite
    assert "beyond window" in results["8 classes, 480 trials"]["latency"]
    draws = results["1 s trials"]["latency"]
    assert len(draws) == 2  # one per data seed
    scores = [draw["methods"]["defaults"]["scores"] for draw in draws]
    assert [len(s) for s in scores] == [1, 1] and np.isfinite(scores).all()
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 s") or
            line.startswith("| 8 classes")]
    assert len(rows) == 2 and "not generated" in rows[1] and "nan" not in done.stdout
    assert rows[0].count(" of 2)") == len(SYNTHETIC[:-1])  # wins over the two draws


def test_code_families_with_cv_report_defaults_cv_and_baseline(tmp_path):
    """``--cv``: the CV estimators fitted too, a cell "defaults / CV / best baseline"."""
    out = tmp_path / "families.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "code_families.py"),
                           "--small", "--device", "cpu", "--families", "1 s trials",
                           "--codes", "rate", "--cv", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (draw,) = json.loads(out.read_text())["1 s trials"]["rate"]
    cv_scores = draw["methods"]["CV"]["scores"]
    assert len(cv_scores) == 1 and np.isfinite(cv_scores[0])
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| 1 s")]
    assert row.split("|")[2].count(" / ") == 2  # defaults / CV / best baseline


def test_binned_counts_keep_every_spike(monkeypatch):
    suite = _suite_module(monkeypatch)
    X = make_spiking_data(n_neurons=6, duration=4.0, random_state=0).windows  # 50 ms, 10 ms bins
    widths = suite.available_bin_widths(X)
    assert widths == [5, 2]  # whole window, 20 ms; 100 ms is longer than the window
    whole = suite.binned_counts(X, X.n_bins)
    assert np.array_equal(whole[:, :6], X.to_counts().sum(2))
    assert np.array_equal(whole[:, 6:], X.to_counts(past=True).sum(2))
    fine = suite.binned_counts(X, 2)  # 3 groups per window, the last one a single bin
    assert fine.shape == (len(X), 2 * 6 * 3)
    assert np.array_equal(fine.sum(1), X.n_spikes() + X.n_spikes(past=True))
    total = suite.features(X, suite.TOTAL_COUNT)
    assert np.array_equal(total, np.stack([X.n_spikes(), X.n_spikes(past=True)], axis=1))
