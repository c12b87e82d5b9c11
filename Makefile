# The README's two commands are `make run` and `make test`; each sets up what it needs first.
# On these machines `pip install torch==2.13.0` takes the CPU wheel from local disk; installing it
# before the package keeps pip from resolving torch to a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup run test lint eval bench gpu-check clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[test]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

setup: $(STAMP)

# Command 1: estimate the bundled example maps and compare with the interpolation baselines.
run: setup
	$(PY) -m wifidiff_fast.demo --out out/demo

# Command 2: the whole test suite (CPU; GPU tests skip cleanly without a GPU).
test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider tests

# Style gate, run by `make test` (and so CI) before the tests: ruff lint + format check and
# clang-format on the C++/CUDA.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/clang-format --dry-run --Werror wifidiff_fast/csrc/*.h wifidiff_fast/csrc/*.cuh wifidiff_fast/csrc/*.cpp wifidiff_fast/csrc/*.cu

eval: setup
	$(PY) -m wifidiff_fast.eval --dataset brat-val --methods idw,rbf,kriging,wifidiff

# The engine beside the eager fp32 reference (table + JSON), then the pytest-benchmark suites.
bench: setup
	$(PY) -m wifidiff_fast.bench paper fast --json out/bench_engine.json
	$(PY) -m pytest -q bench --benchmark-only

gpu-check:
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info out
