"""Sphinx configuration of the nfestimators documentation.

The build is offline and needs no example to run: ``make docs`` first runs the scripts of
``examples/`` at small size (``docs/run_examples.py``, cached by source hash) so that their
output and figures show on the Examples page; a plain ``sphinx-build`` shows the sources (and
the results of earlier runs; ``NFE_DOCS_EXAMPLE_RUNS=0`` ignores those).
Pages generated at build time go to ``docs/generated/`` (git-ignored).
"""

import hashlib
import json
import os
import re
from pathlib import Path

from sphinx.util import logging

import nfestimators

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "generated"
EXAMPLE_RUNS = GENERATED / "example_runs"  # written by docs/run_examples.py

project = "nfestimators"
author = "nfestimators developers"
copyright = "2025, nfestimators developers"
release = nfestimators.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/example_runs", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"

# -- autodoc / numpydoc -------------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- markdown (docs/design.md, benchmarks/README.md) -------------------------------------
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
# benchmarks/README.md is written for GitHub: tolerate its heading jumps and links to files
# that are not pages of this site, rather than failing the -W build on them.
suppress_warnings = ["myst.header", "myst.xref_missing"]

# -- figures drawn at build time (matplotlib, no network) --------------------------------
plot_basedir = str(DOCS)  # `.. plot:: _scripts/x.py` from any page
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 130)]
plot_rcparams = {"figure.autolayout": False}

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"nfestimators {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    # A page table of contents only on the long reference pages: the user guide's code
    # blocks, figures and the one-object API pages need the full width.
    "secondary_sidebar_items": {"api": ["page-toc"], "design": ["page-toc"]},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "citing": [], "api": [], "examples": [], "design": []}

logger = logging.getLogger(__name__)


# -- pages generated at build time ----------------------------------------------------------
def _write_if_changed(path, text):
    """Write ``text`` unless ``path`` already holds it (keeps incremental builds quiet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def _benchmark_image(match):
    """A README image, re-pointed from docs/generated/ to benchmarks/ (text if missing)."""
    alt, target = match.groups()
    if re.match(r"^[a-z]+:|^/", target):
        return match.group(0)
    if not (ROOT / "benchmarks" / target).is_file():
        return f"*(figure `{target}` not in the repository)*"
    return f"![{alt}](../../benchmarks/{target})"


def _benchmarks_page():
    """benchmarks/README.md as a page (its first level-1 heading as the title), or a stub."""
    readme = ROOT / "benchmarks" / "README.md"
    if not readme.is_file():
        return ("# Benchmarks\n\n`benchmarks/README.md` was not present when these pages were "
                "built. The scripts in `benchmarks/` print their figures when run.\n")
    title, body, fence = "Benchmarks", [], None
    for line in readme.read_text(encoding="utf-8").splitlines():
        marker = re.match(r"^\s*(`{3,}|~{3,})", line)
        if marker:
            token = marker.group(1)[0] * 3
            fence = None if fence == token else (fence or token)
        heading = fence is None and re.match(r"^#\s+(.*)", line)
        if heading and title == "Benchmarks" and not any(body_line.strip() for body_line in body):
            title = heading.group(1).strip()  # the README's own title
            continue
        if heading:
            line = "#" + line  # a later level-1 heading becomes a section of this page
        if fence is None:
            line = _MD_IMAGE.sub(_benchmark_image, line)
        body.append(line)
    note = "*This page is `benchmarks/README.md` of the repository, included at build time.*"
    return "\n".join([f"# {title}", "", note, ""] + body) + "\n"


def _example_title_and_body(source):
    """Title and reST body of an example from its module docstring (sphinx-gallery style:
    a title underlined with ``=`` then a description), or its file name."""
    match = re.match(r'\s*(?:[rRuU]?)("""|\'\'\')(.*?)\1', source, flags=re.S)
    text = match.group(2).strip("\n") if match else ""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if len(lines) >= 2 and re.fullmatch(r"\s*([=\-~^])\1+\s*", lines[1]):
        return lines[0].strip(), "\n".join(lines[2:]).strip()
    if lines:
        return lines[0].strip().rstrip("."), "\n".join(lines[1:]).strip()
    return None, ""


def _examples_body():
    """reST of every script in examples/: description, output and figures, source."""
    scripts = sorted((ROOT / "examples").glob("*.py"),
                     key=lambda p: (p.stem != "quickstart", p.stem))
    if not scripts:
        return "No example scripts were found in ``examples/``.\n"
    titles = {s: _example_title_and_body(s.read_text(encoding="utf-8"))[0] or s.stem
              for s in scripts}
    out = [f"* :ref:`example-{s.stem}`" for s in scripts] + [""]
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        title, body = _example_title_and_body(source)
        title = titles[script]
        out += [f".. _example-{script.stem}:", "", title, "-" * len(title), ""]
        out += [f"``examples/{script.name}``", ""]
        if body:
            out += [body, ""]
        out += _example_run(script, source)
        opened = " open" if script.stem == "quickstart" else ""
        out += [".. raw:: html", "", f"   <details class=\"example-source\"{opened}><summary>Source: "
                f"<code>examples/{script.name}</code></summary>", "",
                f".. literalinclude:: ../examples/{script.name}", "   :language: python",
                "   :linenos:", "", ".. raw:: html", "", "   </details>", ""]
    return "\n".join(out) + "\n"


def _example_run(script, source):
    """Output and figures of the last small-size run of ``script``, if it is current."""
    run = EXAMPLE_RUNS / script.stem
    status_file = run / "status.json"
    if os.environ.get("NFE_DOCS_EXAMPLE_RUNS", "1") == "0" or not status_file.is_file():
        return [".. note::", "", "   Run by ``make docs`` (at ``NFE_EXAMPLE_SMALL=1``) to show "
                "its output and figures here.", ""]
    status = json.loads(status_file.read_text(encoding="utf-8"))
    if status.get("sha256") != hashlib.sha256(source.encode()).hexdigest():
        return [".. note::", "", "   The script changed since its last run; ``make docs`` runs "
                "it again.", ""]
    if status.get("returncode") != 0:
        hint = (" (does it read NFE_EXAMPLE_SMALL=1?)" if status.get("returncode") == "timeout"
                else "")
        logger.warning("example %s failed at small size (exit %s)%s; see %s", script.name,
                       status.get("returncode"), hint, run / "stderr.txt")
        return [".. error::", "", f"   This example failed at small size "
                f"(exit code {status.get('returncode')}).", ""]
    lines = [f"*Run with* ``NFE_EXAMPLE_SMALL=1`` *in {status['seconds']:.0f} s on a CPU.*", ""]
    if (run / "stdout.txt").is_file() and (run / "stdout.txt").read_text().strip():
        lines += [".. rubric:: Output", "",
                  f".. literalinclude:: generated/example_runs/{script.stem}/stdout.txt",
                  "   :language: none", ""]
    for figure in sorted(run.glob("figure_*.png")) + sorted(run.glob("saved_*.png")):
        lines += [f".. image:: generated/example_runs/{script.stem}/{figure.name}",
                  f"   :alt: figure of {script.name}", "   :width: 100%", ""]
    return lines


def generate_pages(app):
    _write_if_changed(GENERATED / "benchmarks.md", _benchmarks_page())
    _write_if_changed(GENERATED / "examples.inc", _examples_body())


def skip_member(app, what, name, obj, skip, options):
    """Hide sklearn's generated metadata-routing setters (``set_fit_request``, ...): their
    docstrings point into sklearn's own documentation."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


_SKLEARN_ROLE = re.compile(r":(?:ref|term):`(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")


def plain_sklearn_refs(app, what, name, obj, options, lines):
    """Inherited sklearn methods (``get_params``, ``score``, ...) keep their docstrings, but
    their ``:ref:`` / ``:term:`` roles point into sklearn's own site: show them as text."""
    if not getattr(obj, "__module__", "").startswith("sklearn"):
        return
    lines[:] = [_SKLEARN_ROLE.sub(lambda m: m.group(1) or m.group(2), line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", plain_sklearn_refs)
    app.connect("builder-inited", generate_pages)
    app.connect("autodoc-skip-member", skip_member)
