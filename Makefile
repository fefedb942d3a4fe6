# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit golden bench bench-postgres chromium axe print-deps clean

# What the print edition needs from Debian: its fonts and WeasyPrint's Pango.
PRINT_PACKAGES = fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

## demo: the whole weekly job on the bundled examples, through the outbox
demo: $(VENV)/.installed print-deps
	$(BIN)/digest demo

## test: lint, type checks and the test suite (installs Chromium for the browser test)
test: lint typecheck unit

lint: $(VENV)/.dev
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy digest

unit: $(VENV)/.dev chromium axe print-deps
	scripts/system-packages poppler-utils spamassassin caddy $$(command -v systemd-analyze >/dev/null || echo systemd)
	DIGEST_REQUIRE_POSTGRES=1 scripts/with-postgres $(BIN)/pytest -n 2 --dist worksteal -q --durations=30

print-deps:
	scripts/system-packages $(PRINT_PACKAGES)

## chromium: Debian's Chromium for the browser test (never a downloaded browser)
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser test (a few minutes, once)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: /usr/bin/chromium is missing and this is not root: the browser test will skip"; \
	  fi; \
	fi

## axe: axe-core from npm, injected by the browser tests to check accessibility
AXE_VERSION = 4.14.1
axe: .cache/axe/node_modules/axe-core/axe.min.js

.cache/axe/node_modules/axe-core/axe.min.js:
	mkdir -p .cache/axe
	npm install --prefix .cache/axe --no-audit --no-fund --no-save --silent axe-core@$(AXE_VERSION)

## golden: regenerate tests/golden/email.html and email.txt after a deliberate template change
golden: $(VENV)/.dev
	$(BIN)/python -m tests.golden_edition

## bench: render timings per stage, import, dispatch, the web app, a print run.
## The web bench serves with two workers: on two cores they beat one (662 against
## 440 req/s in the same minutes); `digest serve` keeps one by default on SQLite.
## Both compile digest's modules first, as `pip install .` does for a deployment: where
## PYTHONDONTWRITEBYTECODE is set (as on this project's machines), every fresh process
## (a command, a send's worker) would compile them again (0.2 s of CPU each).
bench: $(VENV)/.dev
	$(BIN)/python -m compileall -q digest
	$(BIN)/python bench/render.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/web.py --workers 2
	$(BIN)/python bench/print.py

## bench-postgres: the import and the million-recipient send on a throwaway PostgreSQL
## server (scripts/with-postgres); about 3 minutes.
bench-postgres: $(VENV)/.dev
	$(BIN)/python -m compileall -q digest
	scripts/with-postgres bash -c '$(BIN)/python bench/import.py --database-url "$$DIGEST_TEST_POSTGRES_URL" && $(BIN)/python bench/dispatch.py --recipients 100000 1000000 --latency 0 --database-url "$$DIGEST_TEST_POSTGRES_URL"'

clean:
	rm -rf $(VENV) var .cache .pytest_cache .mypy_cache .ruff_cache
