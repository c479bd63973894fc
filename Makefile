# The two commands of README.md: `make run` and `make test`. Both set up .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make run`/`make weights` pull weight files from: a local mirror folder when there is one, else the internet.
WEIGHTS_MIRROR ?= $(wildcard ../shared/weights)

.PHONY: setup weights run check test container-test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(STAMP)

weights: setup
	ANIMEBOT_WEIGHTS_MIRROR=$(WEIGHTS_MIRROR) $(BIN)/animebot weights pull

run: weights
	$(BIN)/animebot serve

# Lint, formatting and types: the fast half of `make test`, first so a slip fails in seconds.
check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: check
	$(BIN)/python -m pytest -q

# The Dockerfile image and compose.yaml brought up for real with podman (also part of `make test`).
container-test: setup
	$(BIN)/python -m pytest -q tests/test_containers.py

bench: weights
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache test-artifacts
