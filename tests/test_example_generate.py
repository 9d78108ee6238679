"""examples/generate_spikes.py runs end to end in its small (CI) mode and saves its figure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_generate_spikes_small(tmp_path):
    pytest.importorskip("matplotlib")
    env = {**os.environ, "NFE_EXAMPLE_SMALL": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "generate_spikes.py"), "--device", "cpu",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=180, cwd=tmp_path,
        env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for text in ("bits per spike, held out", "noise ceiling", "past='true'",
                 "past='generated'", "window F1"):
        assert text in result.stdout
    assert (tmp_path / "generate_spikes.png").stat().st_size > 0
