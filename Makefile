# Two commands on a fresh machine:
#   make demo   create .venv, install, run the weasel `demo` workflow (project.yml): a CNN CRF teacher on
#               CoNLL-2003 English, then CNN MaxEnt students on 10% of the gold sentences (+ the other 90%
#               as unlabeled text) without and with structural KD; prints the three test scores
#               (~15 minutes on 2 CPU cores; needs no transformer weights)
#   make test   create .venv, install, run the test suite
#   make gpu-wheelhouse   (a machine with a package index) wheels + data slices for the GPU check,
#               packed into wheelhouse/bundle.tar.xz (< 60 MiB, git-ignored)
#   make gpu-check        (a GPU machine without an index, the bundle copied along) install it offline,
#               run every case on GPU $(GPU_ID), print the table (scripts/gpu_check.py)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
DEMO_STEPS ?= 1500
DEMO_STUDENT_STEPS ?= 800
PYTEST_ARGS ?= -n 2
GPU_ID ?= 0
GPU_CHECK_STEPS ?= 40
GPU_CHECK_OUTPUT ?= gpu_check

.PHONY: install test demo clean gpu-wheelhouse gpu-check

$(VENV)/.installed: setup.cfg constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip setuptools wheel
	# torch first and pinned: an unconstrained resolve pulls several GB of CUDA packages
	$(PY) -m pip install -q -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,eval,transformers,seq2seq,ray]"
	touch $@

install: $(VENV)/.installed

test: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_ARGS) tests

demo: install
	$(PY) -m spacy project run demo . --vars.data "$(DATA)" \
		--vars.demo_teacher_steps $(DEMO_STEPS) --vars.demo_student_steps $(DEMO_STUDENT_STEPS)

gpu-wheelhouse: install
	$(PY) scripts/gpu_wheelhouse.py --data "$(DATA)"

# no `install`: the GPU machine has no package index; the bundle brings everything
gpu-check:
	$(PYTHON) scripts/gpu_check.py --bundle wheelhouse/bundle.tar.xz --gpu-id $(GPU_ID) --steps $(GPU_CHECK_STEPS) \
		--output "$(GPU_CHECK_OUTPUT)"

clean:
	rm -rf $(VENV) training corpus cache metrics reports packages project.lock build *.egg-info .pytest_cache .hypothesis \
		wheelhouse gpu_check
