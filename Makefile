# Two commands on a fresh machine with only Python 3.11+:
#   make serve   run the API on the embedded default (SQLite, in-process cache) at :8000
#                (another port: make serve PORT=8080)
#   make test    lint (ruff, bandit, semgrep), type-check and run the whole test suite
#   make image   build the container image (Docker, or podman when no Docker engine runs)
#   make up      start the production-shaped stack of deploy/compose.yaml (make down stops it)
# Each target installs what it needs on first use: uv (into .tools/ unless it is on
# PATH), then the locked dependencies into .venv/: `serve` only what the server runs,
# `test` the development tools as well, and what the browser tests need (.ci/browser-deps:
# the npm packages, and Chromium and npm from apt when missing). Both share the one .venv:
# the runtime install is --inexact, so it never removes the tools that `test` added.

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

UV_ON_PATH := $(shell command -v uv 2>/dev/null)
ifeq ($(UV_ON_PATH),)
UV := .tools/bin/uv
else
UV := $(UV_ON_PATH)
endif

.PHONY: serve test lint typecheck pytest bench clean image up down ui-assets ui-screenshots

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

# Runtime dependencies only (no dev group); --inexact keeps whatever `test` installed.
.venv/.synced-runtime: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --no-dev --inexact
	@touch $@

# Everything: runtime and the dev group (test, lint and type-check tools).
.venv/.synced-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@ .venv/.synced-runtime

# .venv/bin/atrium, not `uv run`: uv run would install the dev group first.
serve: .venv/.synced-runtime
	.venv/bin/atrium serve --host $(HOST) --port $(PORT)

lint: .venv/.synced-dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache
	.venv/bin/bandit --quiet -c .bandit.yml -r src
	SEMGREP_ENABLE_VERSION_CHECK=0 SEMGREP_SEND_METRICS=off .venv/bin/semgrep scan \
		--config .semgrep --metrics=off --error --quiet src

typecheck: .venv/.synced-dev
	.venv/bin/mypy src

# One pytest-xdist worker per CPU (each with its own SQLite template and PostgreSQL
# database); PYTEST_WORKERS=0 runs in one process. Whole files go to the workers
# (--dist loadfile: a file's module-scoped server or browser starts once), the files that
# start real processes first (tests/conftest.py orders them; --no-loadscope-reorder keeps
# that order).
PYTEST_WORKERS ?= auto

# The browser and social-login tests also need Debian's Chromium and the npm packages of
# package-lock.json and tests/idp: .ci/browser-deps installs whichever is missing.
# The run keeps the bytecode of what it imports (in the ignored __pycache__ folders of
# src/, tests/ and .venv/) even where PYTHONDONTWRITEBYTECODE is set: without it every
# worker compiled the test modules again at each run, and every process the tests start
# (servers, workers, CLI commands: ~100) compiled Atrium and its libraries again.
pytest: .venv/.synced-dev
	.ci/browser-deps
	PYTHONDONTWRITEBYTECODE= .venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile \
		--no-loadscope-reorder --durations=30

test: lint typecheck pytest

bench: .venv/.synced-dev
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	.venv/bin/python bench/run.py
	.venv/bin/python bench/admin_search.py --users 1000000
	.venv/bin/python bench/ui_pages.py admin --users 1000000
	.venv/bin/python bench/ui_pages.py login
	.venv/bin/python bench/realtime.py --connections 10000 --changes 1000 --rate 20,1000
	.venv/bin/python bench/broadcast.py --users 1000000
	.venv/bin/python bench/raffles.py
	.venv/bin/python bench/mfa_login.py
	.venv/bin/python bench/activity_overhead.py
	.venv/bin/python bench/analytics.py --users 1000000 --days 365
	.venv/bin/python bench/import_users.py --users 1000000
	.venv/bin/python bench/startup.py

IMAGE ?= localhost/atrium:local
# Docker when its engine answers, otherwise podman (--format docker keeps the HEALTHCHECK).
ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
ifeq ($(ENGINE),podman)
ENGINE_BUILD_FLAGS ?= --format docker
COMPOSE ?= podman-compose
else
COMPOSE ?= docker compose
endif

image:
	$(ENGINE) build $(ENGINE_BUILD_FLAGS) -t $(IMAGE) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

up:
	deploy/compose/make-secrets.sh
	$(COMPOSE) -f deploy/compose.yaml up -d --build
	@echo "Atrium: http://localhost:8080  (mail: http://localhost:8025)"

down:
	$(COMPOSE) -f deploy/compose.yaml down

# Front-end libraries of the hosted pages: installed from the pinned npm packages
# (package.json, package-lock.json) and copied with their licences into the package, where
# they are committed; Atrium itself never runs Node.
VENDOR := src/atrium/ui/static/vendor
ui-assets:
	npm ci --no-audit --no-fund
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/htmx $(VENDOR)/uplot $(VENDOR)/pico $(VENDOR)/simplewebauthn
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx.org/LICENSE $(VENDOR)/htmx/
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE $(VENDOR)/uplot/
	cp node_modules/@picocss/pico/css/pico.min.css node_modules/@picocss/pico/LICENSE.md $(VENDOR)/pico/
	cp node_modules/@simplewebauthn/browser/dist/bundle/index.umd.min.js $(VENDOR)/simplewebauthn/simplewebauthn-browser.umd.min.js
	cp node_modules/@simplewebauthn/browser/LICENSE.md $(VENDOR)/simplewebauthn/
	node -e 'for (const p of ["htmx.org","uplot","@picocss/pico","@simplewebauthn/browser"]) { const j=require("./node_modules/"+p+"/package.json"); console.log(j.name+" "+j.version+" "+j.license) }' > $(VENDOR)/VERSIONS

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

# Screenshots of the pages shown in README.md and docs/ui.md: taken in Debian's Chromium by
# the browser tests (tests/e2e/browser.py, check_accessibility), then the shown ones copied.
UI_SHOTS := login login-mfa register account-profile account-preferences-dark-es \
	account-sessions account-mfa account-mfa-totp account-mfa-codes account-api-key-created \
	admin-overview admin-users admin-user admin-user-mfa-reset admin-audit admin-audit-event \
	admin-roles admin-outbox admin-health admin-analytics account-passkeys-added \
	login-passkey login-mfa-passkey
ui-screenshots: .venv/.synced-dev
	rm -rf .ui-shots
	ATRIUM_UI_SCREENSHOTS=.ui-shots .venv/bin/pytest -n 0 -p no:cacheprovider -q \
		tests/e2e/test_browser.py tests/e2e/test_browser_mfa.py tests/e2e/test_browser_passkeys.py
	for name in $(UI_SHOTS); do cp .ui-shots/$$name.png docs/ui/; done
