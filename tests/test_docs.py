"""Documentation checks: the code on the user-guide pages runs and prints what the pages say,
every public name has an API entry, and the Sphinx site builds without a warning (when the
``docs`` extra is installed)."""

import doctest
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE_PAGES = sorted(p for p in (DOCS / "user_guide").glob("*.rst") if ">>> " in p.read_text())
PUBLIC_MODULES = ["nfestimators", "nfestimators.data", "nfestimators.datasets",
                  "nfestimators.metrics", "nfestimators.plotting", "nfestimators.model",
                  "nfestimators.training"]
# Described in the text of the API page rather than given a page of their own.
DESCRIBED_IN_TEXT = {"__version__", "datasets", "PRESETS", "UNIT_TABLES", "window_f1_scorer",
                     "psth_correlation_scorer", "pearson_r_scorer"}


@pytest.mark.parametrize("page", GUIDE_PAGES, ids=lambda p: p.stem)
def test_user_guide_code_runs_as_shown(page):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # token-budget and convergence warnings of tiny fits
        result = doctest.testfile(str(page), module_relative=False, report=True,
                                  optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} example(s) of {page.name} failed (see above)"


def test_every_public_name_is_in_the_api_reference():
    api = (DOCS / "api.rst").read_text()
    documented = set(re.findall(r"^\s{3}([A-Za-z_][\w.]*)\s*$", api, flags=re.M))
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name in DESCRIBED_IN_TEXT:
                assert f"``{name}``" in api or name == "__version__" or name == "datasets"
                continue
            if name not in documented:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names without an API entry in docs/api.rst: {missing}"


def _missing_docs_packages():
    needed = {"sphinx": "sphinx", "numpydoc": "numpydoc", "myst_parser": "myst-parser",
              "pydata_sphinx_theme": "pydata-sphinx-theme", "matplotlib": "matplotlib"}
    return [pkg for module, pkg in needed.items() if importlib.util.find_spec(module) is None]


@pytest.mark.slow
@pytest.mark.skipif(bool(_missing_docs_packages()),
                    reason=f"the docs extra is not installed (missing: "
                           f"{', '.join(_missing_docs_packages())}); pip install -e '.[docs]'")
def test_sphinx_site_builds_without_warnings(tmp_path):
    out = tmp_path / "html"
    # Example runs left by `make docs` are not part of this check (NFE_DOCS_EXAMPLE_RUNS=0).
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", NFE_DOCS_EXAMPLE_RUNS="0")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    for page in ["index.html", "user_guide/neuroformer.html", "user_guide/data_model.html",
                 "user_guide/differences.html", "user_guide/gpu.html", "examples.html",
                 "api.html", "citing.html", "design.html", "generated/benchmarks.html",
                 "generated/nfestimators.NeuroformerPretrainer.html",
                 "generated/nfestimators.SpikeWindows.html",
                 "generated/nfestimators.metrics.window_f1.html"]:
        assert (out / page).is_file(), f"{page} was not built"
    pretrainer = (out / "generated/nfestimators.NeuroformerPretrainer.html").read_text()
    for method in ("fit", "transform", "sample", "score", "save", "load"):
        assert f"NeuroformerPretrainer.{method}" in pretrainer, f"{method} is not documented"
    figures = list((out / "_images").glob("*.png"))
    assert len(figures) >= 2, "the data-flow and raster figures were not drawn"
    assert "arXiv:2311.00136" in (out / "citing.html").read_text()
