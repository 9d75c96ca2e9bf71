# Two commands do all the set-up on a fresh clone:
#   make demo   -> venv + install + the main job on the embedded phantom set (offline)
#   make test   -> venv + install + the test suite
# CI (.ci/run) also runs: make lint, make wheel-check, make bench-smoke.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
# The real ImageNet MobileNet-V2 file lives in ../shared/torch when that folder is mounted;
# an explicit TORCH_HOME in the environment wins.
TORCH_HOME ?= $(if $(wildcard $(SHARED)/torch/hub/checkpoints),$(abspath $(SHARED)/torch),)
export TORCH_HOME
export FEATUREKIT_SHARED ?= $(abspath $(SHARED))

.PHONY: setup demo test bench clean lint wheel-check bench-smoke

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# pyradiomics is a test-only reference (GLCM equality tests); its build needs its
# build dependencies installed first and --no-build-isolation. The cluster extra
# (dask.distributed) lets the tests run the real Dask engine on a LocalCluster; timm is
# the optional extra the timm-model tests need (make demo does without both).
$(VENV)/.test-extras: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test,cluster]"
	$(PY) -m pip install --quiet versioneer SimpleITK PyWavelets pykwalify
	$(PY) -m pip install --quiet --no-build-isolation pyradiomics
	$(PY) -m pip install --quiet -e ".[timm]"
	touch $@

$(VENV)/.lint: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[lint]"
	touch $@

demo: setup
	$(VENV)/bin/featurekit demo

test: setup $(VENV)/.test-extras
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=15

# ruff and mypy as pyproject.toml configures them (each with its baseline, to shrink)
lint: setup $(VENV)/.lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy featurekit

# the wheel installed into a clean venv, run from outside the source tree
wheel-check: setup
	.ci/wheel_check.sh $(PY)

# every benchmarks/bench_*.py --smoke
bench-smoke: setup $(VENV)/.test-extras
	$(PY) .ci/bench_smoke.py

bench: setup
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_handcrafted.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
