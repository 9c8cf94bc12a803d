PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# kaskade (`momentum ui`) lives in its own environment: it pins authlib<1.9 where the
# project's resolves 1.9, and brings grpcio-tools and protobuf the project does not use.
UI_VENV := .venv-ui
KASKADE := kaskade==5.1.0

.PHONY: install run test chaos soak lint lock clean

install: $(VENV)/.installed $(UI_VENV)/.installed

# Versions pinned by requirements-dev.lock (`make lock`), so every checkout installs the same.
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements-dev.lock -e '.[test,embedded,otel,bench]'
	touch $@

$(UI_VENV)/.installed: Makefile
	test -x $(UI_VENV)/bin/python || $(PYTHON) -m venv $(UI_VENV)
	$(UI_VENV)/bin/python -m pip install --quiet '$(KASKADE)'
	touch $@

run: install
	$(BIN)/momentum up --demo

# Unit and integration tests, then the fault-injection suite as a second session
# (its stacks of its own kill workers and stop Postgres; figures printed with -s).
test: install
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest tests/chaos -s

# The fault-injection suite alone.
chaos: install
	$(BIN)/python -m pytest tests/chaos -s

# The same scenarios with ten times the load; not part of `make test`.
soak: install
	MOMENTUM_CHAOS_SOAK=1 $(BIN)/python -m pytest tests/chaos -s

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy streams schemas gateway sinks momentum tables core benchmarks

# Pinned versions of every dependency, for reproducible installs: requirements.lock
# is what the production image installs (no extras); requirements-dev.lock adds
# the test tools and the embedded stack. Re-run after changing pyproject.toml.
lock: install
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --extra otel --output-file requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --extra test --extra embedded --extra otel --extra bench \
		--output-file requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) $(UI_VENV) .momentum
