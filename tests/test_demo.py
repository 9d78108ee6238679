"""The demo's command line, and `make demo SMALL=1` (the README's small mode)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from nfestimators.demo import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_help_describes_every_option():
    text = build_parser().format_help()
    for option, words in [("--small", "seconds"), ("--device", "cuda"), ("--seed", "seed")]:
        assert option in text and words in text
    assert build_parser().parse_args(["--small", "--seed", "3"]).seed == 3


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_small_passes_small_to_the_demo():
    def demo_command(*args):
        out = subprocess.run(["make", "-n", "demo", *args],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return [line for line in out.splitlines() if "nfestimators.demo" in line][-1]

    assert demo_command("SMALL=1").endswith("-m nfestimators.demo --small")
    assert demo_command().rstrip().endswith("-m nfestimators.demo")
