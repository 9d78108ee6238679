# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU wheel known to work; installed before the package so pip never resolves a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,plot]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m nfestimators.demo

test: install
	$(PY) -m pytest -n 2 -q

bench: install
	$(PY) benchmarks/bench_tokenize.py

clean:
	rm -rf $(VENV) build *.egg-info
