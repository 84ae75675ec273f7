# `make train` and `make test` set everything up on a fresh machine: a virtual environment in .venv,
# the package and its pinned dependencies, then the job. Extra arguments go in ARGS, e.g.
#   make train ARGS="experiment=mnist_cnn paths.data_dir=../shared/data/mnist-subset"
#   make test ARGS="-m slow"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test lint format mutate clean-logs

# editable_mode=compat puts src/ itself on the path: Hydra discovers plugins (our sweeper) by scanning the
# hydra_plugins namespace there, which setuptools' default editable finder hides from it.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) train.py $(ARGS)

# One pytest worker per core (pytest-xdist), each test file on one worker so that its module fixtures run once;
# a later `-n` in ARGS wins (`ARGS="-n 0 tests/test_train.py"`: one process, as a debugger wants).
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Mutation testing of one module (not part of `make test`: minutes per module), e.g.
#   make mutate MODULE=src/litlab/data/base.py
mutate: $(STAMP)
	@test -n "$(MODULE)" || { echo "Say which module: make mutate MODULE=src/litlab/data/base.py"; exit 2; }
	$(PY) scripts/mutate.py $(MODULE) $(ARGS)

clean-logs:
	rm -rf logs/*/
