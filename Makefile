# Targets are what CI runs. `make up` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
CHROMIUM ?= /usr/bin/chromium
SOURCES := cli detector store web workers tests bench

.PHONY: up demo test lint bench browser clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.test: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.runtime

up: $(VENV)/.runtime  ## run everything on an embedded Redis: http://127.0.0.1:8000
	$(VENV)/bin/outage up $(ARGS)

demo: $(VENV)/.runtime  ## same, with a synthetic stream of reports and outages
	$(VENV)/bin/outage up --demo $(ARGS)

browser:  ## Debian's chromium for the browser tests (never a browser download)
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: $(CHROMIUM) missing and not root; browser tests will be skipped (fail under CI=true)"; fi; \
	fi

test: lint browser  ## lint, then the whole suite with coverage, as CI runs it
	@$(PY) -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; \
	exit $$rc

lint: $(VENV)/.test  ## ruff check, ruff format --check, mypy (config in pyproject.toml)
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)
	$(VENV)/bin/mypy

bench: $(VENV)/.test  ## every benchmark, printing its table
	$(VENV)/bin/outage bench quality
	$(VENV)/bin/outage bench replay
	$(VENV)/bin/outage bench ingest
	$(VENV)/bin/outage bench detect

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
