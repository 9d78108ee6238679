# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU wheel known to work; installed before the package so pip never resolves a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test bench docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,plot,docs,nwb,spikeinterface,pynapple,dask]"
	touch $@

install: $(VENV)/.installed

# `make demo SMALL=1`: the tiny version, in seconds (python -m nfestimators.demo --help).
demo: install
	$(PY) -m nfestimators.demo $(if $(SMALL),--small)

test: install
	$(PY) -m pytest -n 2 -q

# The documentation site (docs/_build/html): the examples run at small size first (cached by
# source hash), then Sphinx with warnings as errors. (`make test` builds it too, without the
# example runs, in tests/test_docs.py.)
docs: install
	-$(PY) docs/run_examples.py
	$(PY) -m sphinx -b html -W --keep-going -q docs docs/_build/html
	@echo "open docs/_build/html/index.html"

bench: install
	$(PY) benchmarks/bench_tokenize.py

clean:
	rm -rf $(VENV) build *.egg-info
