# Two commands do all the set-up on a fresh clone:
#   make demo   -> venv + install + the main job on the embedded phantom set (offline)
#   make test   -> venv + install + the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
# The real ImageNet MobileNet-V2 file lives in ../shared/torch when that folder is mounted;
# an explicit TORCH_HOME in the environment wins.
TORCH_HOME ?= $(if $(wildcard $(SHARED)/torch/hub/checkpoints),$(abspath $(SHARED)/torch),)
export TORCH_HOME
export FEATUREKIT_SHARED ?= $(abspath $(SHARED))

.PHONY: setup demo test bench clean

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

demo: setup
	$(VENV)/bin/featurekit demo

test: setup $(VENV)/.test-extras
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=15

bench: setup
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_handcrafted.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
