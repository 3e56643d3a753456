# The two commands of the README. Both create .venv if missing and install the project.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: run test test-embedded install test-tools lint help
.DEFAULT_GOAL := help

help:
	@echo "make run   # install, provision, migrate, seed the demo, start everything"
	@echo "make test  # install, provision, run the whole test suite"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/floorbell up

# Headless Chromium (Debian's) and the Web Push service emulator for the end-to-end tests.
test-tools:
	@bash tests/tools/install.sh

# ruff (lint + format check) and mypy --strict: fast, and part of every test run.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every test against the services this machine has (or the embedded ones when it has
# none) and, side by side, the integration, end-to-end and fault layers again on the
# embedded PostgreSQL and Redis 6.2 that a laptop without its own gets (the minute of API
# fuzzing runs once). The two passes share nothing (databases, key prefixes and ports are
# each their own); the second one's output follows the first's.
test: install test-tools lint
	@mkdir -p .data
	@$(MAKE) --no-print-directory test-embedded > .data/test-embedded.log 2>&1 & again=$$!; \
	$(BIN)/pytest; first=$$?; \
	wait $$again; second=$$?; \
	echo "=== the integration, end-to-end and fault layers on the embedded PostgreSQL and Redis ==="; \
	cat .data/test-embedded.log; \
	[ $$first -eq 0 ] && [ $$second -eq 0 ]

test-embedded: install test-tools
	FLOORBELL_EMBEDDED=1 $(BIN)/pytest tests/e2e tests/integration tests/faults -m "not fuzz"
