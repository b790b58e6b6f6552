# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test bench mutation migrate lint install clean-venv

$(INSTALLED): requirements.txt requirements-broker.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-broker.txt
	touch $@

install: $(INSTALLED)

migrate: install
	$(BIN)/alembic upgrade head

run: install
	DEMO=$${DEMO:-1} $(BIN)/python -m launcher

# Two pytest-xdist workers, one per core (docs/TESTING.md). TEST_WORKERS=0 runs the
# suite in one process.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=20 $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

# Mutation testing of the money core (minutes; not part of `make test`). One worker by
# default and niced: the machine is shared. MUTATION_JOBS=2 to go faster on a free one.
mutation: install
	nice -n 19 $(BIN)/python -m mutation

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
