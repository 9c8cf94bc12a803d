PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test chaos soak lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

run: install
	$(BIN)/momentum up --demo

test: install
	$(BIN)/python -m pytest

# The fault-injection suite (tests/chaos, stacks of its own): not part of
# `make test` until its all-faults scenario passes again (see README,
# Reliability and security).
chaos: install
	$(BIN)/python -m pytest tests/chaos -s

# The same scenarios with ten times the load; not part of `make test`.
soak: install
	MOMENTUM_CHAOS_SOAK=1 $(BIN)/python -m pytest tests/chaos -s

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy streams schemas gateway sinks momentum tables core benchmarks

clean:
	rm -rf $(VENV) .momentum
