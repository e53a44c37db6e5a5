# Two test legs, one code base (BUILD_NOTES.md, "Two test legs"):
#   leg 1: Python 3.11, the pinned Reverb / TensorFlow 2.15 / JAX 0.4.34 stack  -> .venv    (constraints.txt)
#   leg 2: Python 3.12, current JAX, numpy 2, no TensorFlow or Reverb           -> .venv/py312 (constraints-py312.txt)
PYTHON ?= python3.11
# pyenv's python3.12 answers only with PYENV_VERSION set; a plain python3.12 on PATH works as well.
PYTHON312 ?= $(shell for v in "$$PYENV_VERSION" 3.12.1 3.12; do \
  PYENV_VERSION=$$v python3.12 -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' \
  2>/dev/null && break; done)
EXTRAS := '.[atari,memory,control,dev]'

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Inside .venv/: both legs under one folder, which tools that skip .venv/ skip whole.
VENV312 := .venv/py312
PY312 := $(VENV312)/bin/python
STAMP312 := $(VENV312)/.installed

.PHONY: install install-312 train train-312 test test-311 test-312 device-wheels clean

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -c constraints.txt -e $(EXTRAS)
	touch $(STAMP)

$(STAMP312): setup.py constraints-py312.txt
	@test -n "$(PYTHON312)" || { echo "make: no Python 3.12 found for test leg 2; install one (pyenv install 3.12.1, or apt-get install python3.12-venv) or pass PYTHON312=/path/to/python3.12"; exit 1; }
	$(PYTHON312) -m venv $(VENV312)
	$(PY312) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY312) -m pip install --quiet -c constraints-py312.txt -e $(EXTRAS)
	touch $(STAMP312)

install: $(STAMP)

install-312: $(STAMP312)

# The default experiment: DQN on CartPole, a learner and 2 actors as Ray processes (the native replay service;
# `--replay reverb` on leg 1 for Reverb).
TRAIN_ARGS := train --agent dqn --env gym:CartPole-v1 --launcher ray --num-actors 2 \
  --max-actor-steps 60000 --seed 0 --overwrite

train: $(STAMP)
	$(VENV)/bin/repertory $(TRAIN_ARGS) --run-dir runs/cartpole_dqn

train-312: $(STAMP312)
	$(VENV312)/bin/repertory $(TRAIN_ARGS) --run-dir runs/cartpole_dqn_py312

# One leg after the other: run at the same time, the legs' Ray clusters collide (BUILD_NOTES.md, "make test").
test: test-311 test-312

# Within a leg: most files in TEST_WORKERS processes (pytest-xdist, a file to a process), then the `serial`
# ones alone: those start a Ray cluster or time their runs (BUILD_NOTES.md, "make test").
TEST_WORKERS ?= 2
# XLA executables cached on disk per leg, so a function compiled by one test process is loaded by the next
# (the same learner update is compiled in many tests and their subprocesses; BUILD_NOTES.md, "make test").
TEST_ENV = JAX_COMPILATION_CACHE_DIR=$(abspath $(1))/jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0.2
PYTEST_PARALLEL := -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 -m "not serial" tests
PYTEST_SERIAL := -m pytest --durations=10 -m serial tests

test-311: $(STAMP)
	export $(call TEST_ENV,$(VENV)) && $(PY) $(PYTEST_PARALLEL) && $(PY) $(PYTEST_SERIAL)

test-312: $(STAMP312)
	export $(call TEST_ENV,$(VENV312)) && $(PY312) $(PYTEST_PARALLEL) && $(PY312) $(PYTEST_SERIAL)

# The wheels benchmarks/device_check.sh installs on a GPU host without a package index (cp312, x86-64).
device-wheels:
	python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl -r benchmarks/device_wheels.txt

clean:
	rm -rf $(VENV) $(VENV312) runs
