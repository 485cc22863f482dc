# Two commands on a fresh machine with only Python 3.11+:
#   make serve   run the API on the embedded default (SQLite, in-process cache) at :8000
#   make test    lint (ruff, bandit, semgrep), type-check and run the whole test suite
# Each target installs what it needs on first use: uv (into .tools/ unless it is on
# PATH), then the locked dependencies (into .venv/).

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

UV_ON_PATH := $(shell command -v uv 2>/dev/null)
ifeq ($(UV_ON_PATH),)
UV := .tools/bin/uv
else
UV := $(UV_ON_PATH)
endif

.PHONY: serve test lint typecheck pytest bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

serve: .venv/.synced
	$(UV) run --frozen atrium serve --host $(HOST) --port $(PORT)

lint: .venv/.synced
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen bandit --quiet -c .bandit.yml -r src
	SEMGREP_ENABLE_VERSION_CHECK=0 SEMGREP_SEND_METRICS=off $(UV) run --frozen semgrep scan \
		--config .semgrep --metrics=off --error --quiet src

typecheck: .venv/.synced
	$(UV) run --frozen mypy src

pytest: .venv/.synced
	$(UV) run --frozen pytest

test: lint typecheck pytest

bench: .venv/.synced
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(UV) run --frozen python bench/run.py
	$(UV) run --frozen python bench/admin_search.py --users 1000000

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
