# Cypher: `make run` sets everything up and serves; `make test` sets everything up and tests.
# Every step is idempotent and skips itself when its inputs have not changed.

# The distribution's own Python when it is 3.11 or newer: it is what a fresh Debian or Ubuntu
# server runs, and its optimised build answers a login about 15% faster here than a plain source
# build (a pyenv python3 earlier on PATH, say). Else python3 from PATH; PYTHON=... chooses another.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
VENDOR := cypher/static/vendor
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: install system-deps test-tools run serve test bench lint clean help

help:
	@echo "make run    install everything, then serve on http://$(HOST):$(PORT)"
	@echo "make test   install everything, then run the whole test suite"
	@echo "make serve  install everything, then serve with gunicorn (deploy/gunicorn.conf.py)"
	@echo "make bench  install everything, then run the benchmarks in bench/"
	@echo "make lint   ruff check, ruff format --check and mypy --strict (make test runs it too)"
	@echo "make clean  remove the virtualenv, node_modules and vendored assets (not instance/)"

install: system-deps $(BIN)/.installed $(VENDOR)/.vendored

system-deps:
	@PYTHON=$(PYTHON) bash scripts/install-system-deps.sh

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENDOR)/.vendored: node_modules/.package-lock.json scripts/vendor-assets.sh
	bash scripts/vendor-assets.sh
	touch $@

run: install
	$(BIN)/flask --app cypher run --host $(HOST) --port $(PORT)

# The production setup, locally: gunicorn with deploy/gunicorn.conf.py (CYPHER_BIND, CYPHER_WORKERS).
# Its workers count rate limits apart unless CYPHER_RATELIMIT_STORAGE names a Redis (a warning
# says so; production refuses it): docs/configuration.md.
serve: install
	$(BIN)/gunicorn -c deploy/gunicorn.conf.py wsgi:app

# The browser and nginx tests need Debian's chromium, nginx and openssl: installed here when
# missing and root, else those tests are skipped with a message saying how to install them.
test-tools:
	@bash scripts/install-system-deps.sh --test-tools

# Lint first (CI runs `make test` alone); then pytest, with the local PostgreSQL and Redis when
# they answer (scripts/test-services.sh says which).
test: install test-tools lint
	@. scripts/test-services.sh && $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/login_cost.py
	$(BIN)/python bench/gateway_throughput.py

lint: install
	$(BIN)/ruff check cypher tests bench
	$(BIN)/ruff format --check cypher tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules $(VENDOR)
