# `make demo` and `make test` set everything up on first use: a .venv with pinned dependencies
# (torch 2.13.0, CPU build) and weightinit installed into it (not editable: tests run against
# the installed package, as users get it).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed
PKG := $(VENV)/.pkg-installed
TORCH := 2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
# Folders too: deleting or adding a module changes its folder's mtime, which reinstalls.
SOURCES := $(shell find src -type d -o -name '*.py' -o -name 'py.typed' -o -path '*/templates/*') \
	pyproject.toml

.PHONY: demo test bench lint api clean

# torch first, and the CPU build explicitly: PyPI's Linux wheel of torch==2.13.0 is a CUDA build
# of several GB. A torch 2.13.0 already in the venv is kept (that is how to use a CUDA build: see
# the README); else the +cpu wheel from pip's configured indexes and wheel folders (a local wheel
# here), else from PyTorch's CPU index, else (macOS, where PyPI's wheel is the CPU build) PyPI's.
$(DEPS): requirements/constraints.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch, sys; sys.exit(not torch.__version__.startswith('$(TORCH)'))" \
		2>/dev/null \
	|| $(BIN)/python -m pip install --quiet "torch==$(TORCH)+cpu" 2>/dev/null \
	|| $(BIN)/python -m pip install --quiet --index-url $(TORCH_CPU_INDEX) "torch==$(TORCH)+cpu" \
	|| { [ "$$(uname)" = Darwin ] && $(BIN)/python -m pip install --quiet "torch==$(TORCH)"; }
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -r requirements/dev.txt
	touch $@

# build/ is removed first: setuptools would otherwise package modules deleted since the last build.
$(PKG): $(DEPS) $(SOURCES)
	rm -rf build
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall .
	touch $@

demo: $(PKG)
	$(BIN)/weightinit demo

test: $(PKG)
	$(BIN)/python -m pytest -q

# `make bench ARGS="--only cli"` passes options to benchmarks/run.py. The PyPI `lsuv` package
# is installed only here, for the comparison; --no-deps so that pip never
# resolves another torch (it needs only torch, already pinned in the venv).
bench: $(PKG)
	$(BIN)/python -m pip install --quiet --no-deps -r benchmarks/requirements-lsuv.txt
	$(BIN)/python benchmarks/run.py $(ARGS)

# mypy --strict checks pyproject's [tool.mypy] files: src/weightinit and benchmarks.
lint: $(DEPS)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# docs/api.md from the installed package's docstrings (tests/test_api_docs.py checks it is current).
api: $(PKG)
	$(BIN)/python docs/make_api.py

clean:
	rm -rf $(VENV) build src/*.egg-info
