# Cypher: `make run` sets everything up and serves; `make test` sets everything up and tests.
# Every step is idempotent and skips itself when its inputs have not changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := cypher/static/vendor
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: install system-deps run test bench lint clean help

help:
	@echo "make run    install everything, then serve on http://$(HOST):$(PORT)"
	@echo "make test   install everything, then run the whole test suite"
	@echo "make bench  install everything, then run the benchmarks in bench/"
	@echo "make lint   ruff check and ruff format --check"
	@echo "make clean  remove the virtualenv, node_modules and vendored assets (not instance/)"

install: system-deps $(BIN)/.installed $(VENDOR)/opaque.js

system-deps:
	@bash scripts/install-system-deps.sh

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENDOR)/opaque.js: node_modules/.package-lock.json
	mkdir -p $(VENDOR)
	cp node_modules/@serenity-kit/opaque/esm/index.js $@

run: install
	$(BIN)/flask --app cypher run --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/login_cost.py

lint: install
	$(BIN)/ruff check cypher tests bench
	$(BIN)/ruff format --check cypher tests bench

clean:
	rm -rf $(VENV) node_modules $(VENDOR)
