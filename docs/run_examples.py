"""Run the scripts of ``examples/`` at small size for the Examples page of the docs.

Each script runs in its own process with ``NFE_EXAMPLE_SMALL=1``, the Agg backend and a
scratch working directory. ``plt.show()`` saves the open figures instead of showing them,
figures still open at the end are saved too, and PNG files the script writes into its
working directory are kept. A script with a ``--small`` command-line flag gets it too
(some examples had it before the environment variable was agreed on). Results go to
``docs/generated/example_runs/<name>/`` (``stdout.txt``, ``stderr.txt``, ``figure_N.png``,
``status.json``); a script whose source has not changed since its last successful run is
not run again.

Usage: ``python docs/run_examples.py [NAME ...] [--force] [--timeout SECONDS]``.
Exits non-zero when a script fails, so ``make docs`` stops on a broken example.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "generated" / "example_runs"

# Runs inside the example's process: saves figures on plt.show() and at exit.
BOOTSTRAP = """
import atexit, runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from matplotlib.figure import Figure

out, script, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
saved = [0]
saved_by_script = set()  # figures the script saved itself are collected from its files
script_savefig = Figure.savefig

def savefig(fig, *args, **kwargs):
    saved_by_script.add(id(fig))
    return script_savefig(fig, *args, **kwargs)

def save_open_figures(*args, **kwargs):
    for number in plt.get_fignums():
        fig = plt.figure(number)
        if id(fig) not in saved_by_script:
            saved[0] += 1
            script_savefig(fig, f"{out}/figure_{saved[0]}.png", dpi=90, bbox_inches="tight")
    plt.close("all")

Figure.savefig = savefig
plt.show = save_open_figures
atexit.register(save_open_figures)
sys.argv = [script, *flags]
runpy.run_path(script, run_name="__main__")
"""


def source_hash(script):
    return hashlib.sha256(script.read_bytes()).hexdigest()


def is_current(script, run):
    status = run / "status.json"
    if not status.is_file():
        return False
    status = json.loads(status.read_text())
    return status.get("sha256") == source_hash(script) and status.get("returncode") == 0


def run_example(script, timeout):
    run = RUNS / script.stem
    run.mkdir(parents=True, exist_ok=True)
    for old in run.iterdir():
        old.unlink()
    env = dict(os.environ, NFE_EXAMPLE_SMALL="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env.setdefault("OMP_NUM_THREADS", "1")  # shared small machines: oversubscription is costly
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        try:
            flags = ["--small"] if '"--small"' in script.read_text(encoding="utf-8") else []
            proc = subprocess.run(
                [sys.executable, "-c", BOOTSTRAP, str(run), str(script), *flags], cwd=scratch,
                env=env,
                capture_output=True, text=True, timeout=timeout)
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = "timeout"
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr = f"timed out after {timeout} s"
        for number, png in enumerate(sorted(Path(scratch).rglob("*.png")), start=1):
            shutil.copyfile(png, run / f"saved_{number}_{png.name}")
    seconds = time.perf_counter() - start
    (run / "stdout.txt").write_text(stdout)
    (run / "stderr.txt").write_text(stderr)
    (run / "status.json").write_text(json.dumps(
        {"sha256": source_hash(script), "returncode": returncode, "seconds": seconds}))
    return returncode, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="example names (default: all)")
    parser.add_argument("--force", action="store_true", help="run even if unchanged")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds per example (small runs should take about a minute)")
    args = parser.parse_args(argv)
    scripts = sorted((ROOT / "examples").glob("*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem in args.names]
    failed = []
    for script in scripts:
        if not args.force and is_current(script, RUNS / script.stem):
            print(f"{script.name}: unchanged since its last run", flush=True)
            continue
        returncode, seconds = run_example(script, args.timeout)
        print(f"{script.name}: exit {returncode} in {seconds:.0f} s", flush=True)
        if returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)} (see docs/generated/example_runs/*/stderr.txt)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
