# Two commands on a fresh machine:
#   make demo   create .venv, install, train a CRF NER tagger on CoNLL-2003 English and print its scores
#   make test   create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
DEMO_STEPS ?= 1500
DEMO_DIR ?= training/demo
PYTEST_ARGS ?= -n 2

.PHONY: install test demo clean

$(VENV)/.installed: setup.cfg constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip setuptools wheel
	# torch first and pinned: an unconstrained resolve pulls several GB of CUDA packages
	$(PY) -m pip install -q -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,eval]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS) tests

demo: install
	$(PY) -m spacy train configs/crf_tagger_efficiency.cfg -o $(DEMO_DIR) \
		--paths.train $(DATA)/conll2003_en/train.conll --paths.dev $(DATA)/conll2003_en/dev.conll \
		--training.max_steps $(DEMO_STEPS)
	$(PY) -m spacy skd convert $(DATA)/conll2003_en/test.conll $(DEMO_DIR)/test.spacy --scheme IOB1
	$(PY) -m spacy evaluate $(DEMO_DIR)/model-best $(DEMO_DIR)/test.spacy

clean:
	rm -rf $(VENV) training build *.egg-info .pytest_cache .hypothesis
