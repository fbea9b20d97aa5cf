# Switchboard — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
SUM := $(shell cksum < pyproject.toml | cut -d' ' -f1)
# One stamp per install: `make run` needs the runtime dependencies only, the test and lint tools come with
# `make test`, `make lint` and `make bench`. Each is redone when pyproject.toml changes.
RUN_STAMP := $(VENV)/.installed-run-$(SUM)
DEV_STAMP := $(VENV)/.installed-dev-$(SUM)
SERVICES := deploy/local/services.sh

.PHONY: install install-dev run test test-unit fuzz services services-down lint format bench faults soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing Switchboard and its runtime dependencies into $(VENV) (first run only)..."
	$(PIP) install -e .
	@rm -f $(VENV)/.installed-run-*; touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing Switchboard with its test and lint tools into $(VENV) (once per pyproject.toml change)..."
	$(PIP) install -e ".[dev]"
	@rm -f $(VENV)/.installed-dev-* $(VENV)/.installed-run-*; touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

install-dev: $(DEV_STAMP)

## The embedded desk: router, connectors and an in-process bus on SQLite, demo tenant seeded.
## `make run ARGS=--reset` starts the demo desk afresh.
run: install
	$(BIN)/switchboard dev $(ARGS)

## Unit + integration + e2e, then the CI fault suite. Starts (or reuses) the real PostgreSQL and Kafka first.
## The first part runs on TEST_WORKERS pytest-xdist workers, a test file per worker at a time: most of its tests
## wait on the servers and on the processes they start. The second runs alone: the fresh clone, whose time to
## serve is a figure of its own (another test beside it would add to it), and the fault suite, which stops and
## restarts the shared servers. Both parts always run; the target fails if either does.
TEST_WORKERS ?= 2
ALONE := tests/e2e/test_fresh_clone.py tests/faults
test: install-dev
	@eval "$$($(SERVICES) up)" && eval "$$(deploy/local/tools.sh)" || exit 1; rc=0; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(ALONE:%=--ignore=%) --durations=25 || rc=$$?; \
	$(BIN)/pytest $(ALONE) --durations=5 || rc=$$?; \
	exit $$rc

test-unit: install-dev
	$(BIN)/pytest tests/unit

## The API fuzz test with ten times the examples `make test` gives it (100 per operation as admin, 50 as
## each other role), on both shapes.
fuzz: install-dev
	@eval "$$($(SERVICES) up)" && SWITCHBOARD_FUZZ_EXAMPLES=100 SWITCHBOARD_FUZZ_ROLE_EXAMPLES=50 \
		$(BIN)/pytest tests/e2e/test_api_fuzz.py

## Local real servers: PostgreSQL (Debian packages) and Apache Kafka (KRaft, jars from Maven Central).
services:
	@$(SERVICES) up

services-down:
	@$(SERVICES) down

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks (results in tests/bench/results/): the routing engine at 15,000 agents / 500,000 waiting, then
## end-to-end throughput and latency on the real servers against the bare Kafka → PostgreSQL pipeline.
bench: install-dev
	$(BIN)/python -m tests.bench.bench_routing
	$(BIN)/python -m tests.bench.bench_simulation
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.bench.bench_pipeline
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.bench.bench_http
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.bench.bench_takeover
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.bench.bench_sla

## The fault suite: 100,000 messages, every fault kind 3 times placed by messages sent (kill -9 of routers and
## connectors, Kafka SIGKILL, PostgreSQL immediate stop; latency, bandwidth and resets to both servers and a
## router cut off from Kafka, by Toxiproxy), checked from outside.
faults: install-dev
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.faults.run

## An hour at about half of the harness's limit, a fault every few minutes; memory and open files must not grow.
soak: install-dev
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.faults.soak $(ARGS)
