# Switchboard — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
SERVICES := deploy/local/services.sh

.PHONY: install run test test-unit services services-down lint format bench faults

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

## The embedded desk: router, connectors and an in-process bus on SQLite, demo tenant seeded.
run: install
	$(BIN)/switchboard dev

## Unit + integration + e2e. Starts (or reuses) the real PostgreSQL and Kafka first.
test: install
	@eval "$$($(SERVICES) up)" && eval "$$(deploy/local/tools.sh)" && $(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

## Local real servers: PostgreSQL (Debian packages) and Apache Kafka (KRaft, jars from Maven Central).
services:
	@$(SERVICES) up

services-down:
	@$(SERVICES) down

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks (results in tests/bench/results/): the routing engine at 15,000 agents / 500,000 waiting, then
## end-to-end throughput and latency on the real servers against the bare Kafka → PostgreSQL pipeline.
bench: install
	$(BIN)/python -m tests.bench.bench_routing
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.bench.bench_pipeline

## The fault suite: 100,000 messages through kills, broker and database restarts, latency and loss.
faults: install
	@eval "$$($(SERVICES) up)" && $(BIN)/python -m tests.faults.run
