# The one set of commands: README, CI and developers all call these.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
BASE   := $(VENV)/.installed-base
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install system-deps timescaledb serve test firmware-test lint format model bench

# The server alone needs no TensorFlow: `make serve` installs the base package only.
$(BASE): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(BASE)

# Tests and training need the export extra (TensorFlow, LiteRT, TFLite Micro) and pytest.
$(STAMP): $(BASE)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Debian packages the tests use: OpenSCAD renders the enclosure; doctest, libsodium and
## libcurl build the firmware's host tests and host device; Prometheus scrapes the server;
## wrk drives make bench; chromium and its driver run the web app's browser tests.
DEBIAN_PACKAGES := openscad doctest-dev libsodium-dev libcurl4-openssl-dev prometheus wrk chromium chromium-driver
system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages: sudo apt-get install $$missing"; exit 1; fi; fi

## TimescaleDB for the tests' TimescaleDB leg, built into the machine's PostgreSQL 15 from
## the source archive in ../shared (root; idempotent; 1-6 minutes the first time). Without
## it the leg is skipped, except in CI, where it must run.
TIMESCALEDB_BUILD := ../shared/tools/timescaledb/build.sh
timescaledb:
	@if [ -x $(TIMESCALEDB_BUILD) ] && [ "$$(id -u)" = 0 ]; then $(TIMESCALEDB_BUILD); \
	else echo "TimescaleDB not built ($(TIMESCALEDB_BUILD) missing or not root): its test leg is skipped"; fi

## Run the whole system on the embedded SQLite default with the bundled model.
serve: $(BASE)
	$(PY) -m sync_server serve --host $(HOST) --port $(PORT)

## Lint, the firmware's host tests (g++, sanitizers), then every Python test on SQLite
## and on PostgreSQL servers the suite starts itself (plain, and with TimescaleDB).
test: install system-deps timescaledb lint firmware-test
	$(PY) -m pytest

firmware-test: install system-deps
	$(MAKE) -C edge_firmware test

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## Retrain and register a new server model version: make model VERSION=server-2 PARENT=server-1
model: install
	$(PY) -m model_export train --models server --server-version $(VERSION) $(if $(PARENT),--server-parent $(PARENT))

## Ingest, predict and storage figures of the server under gunicorn on TimescaleDB (prints them).
bench: install system-deps timescaledb
	$(PY) -m benchmarks.server
