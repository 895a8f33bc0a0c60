# The two commands of the README: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DB ?= demo.sqlite
PORT ?= 7860

.PHONY: install run test test-fast lint bench system-deps fuzz

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: PostgreSQL (store tests, team load) and Chromium (browser tests).
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! test -x /usr/bin/chromium; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql chromium >/dev/null; \
	fi

run: install
	$(VENV)/bin/clipmark demo --db $(DB) --port $(PORT) $(DEMO_ARGS)

test: install system-deps
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not browser and not postgres and not slow"

# ruff, mypy and the import contracts of pyproject.toml ([tool.importlinter]: layers, no gradio in core,
# torch only in core.models, webapp only through the service facade).
lint: install
	$(VENV)/bin/ruff check core webapp tests bench
	$(VENV)/bin/mypy core webapp
	$(VENV)/bin/lint-imports

# Property-based fuzzing of the import boundary (core/io): the suite runs a few seconds of it, this thousands of examples.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider tests/io/test_fuzz.py
