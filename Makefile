# The two set-up commands of the README: `make run` and `make test`.
# A fresh machine needs only Python ≥ 3.11, node and apt.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
JS_DIR  = tests/compat/js

.PHONY: run test install test-deps lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

## make run: install, then start the server on the embedded PostgreSQL.
run: install
	$(BIN)/supalite start

## Test dependencies: Python packages, the npm packages of the JS compatibility tests, a
## system PostgreSQL (the tests run it as an "external" DATABASE_URL server) and redis-server
## (the session store's Redis backend is tested against a real one).
test-deps: $(VENV)/.test-installed
	@if [ -f $(JS_DIR)/package.json ]; then cd $(JS_DIR) && npm install --no-audit --no-fund --silent; fi
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || sh scripts/install-system-postgres.sh
	@command -v redis-server >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null || (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null))
	@# Debian's pg_cron, against which tests/cron checks the emulation of it.
	@ls /usr/lib/postgresql/*/lib/pg_cron.so >/dev/null 2>&1 || (PGCRON=postgresql-$$(ls /usr/lib/postgresql | sort -n | tail -1)-cron; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$PGCRON >/dev/null 2>&1 || (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$PGCRON >/dev/null))
	@# Debian's PostGIS 3 for the major version the embedded Postgres runs (the newest), which
	@# tests/rest/test_geojson.py creates in `extensions` as Supabase does.
	@PGV=$$(ls /usr/lib/postgresql | sort -n | tail -1); ls /usr/lib/postgresql/$$PGV/lib/postgis-3.so >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-$$PGV-postgis-3 >/dev/null 2>&1 || (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-$$PGV-postgis-3 >/dev/null))

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## make test: install the test dependencies and run every test (lint and types included).
test: test-deps lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) supabase/.supalite
