# The two commands of the README: `make run` (the app at http://127.0.0.1:8000) and `make test`;
# `make dev` serves with Django's autoreloading development server, `make stop` stops a running app.
# Each does its own set-up: a virtualenv in .venv, the pinned packages, and for tests Debian's Chromium.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: run dev stop prepare test lint format deps browser axe compose-validator

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

deps: $(VENV)/.installed

# Real-browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

# The browser tests check every page with axe-core (tests/axe.py), from npm at the version package-lock.json pins.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

axe: node_modules/.installed

# The deployment files' validators need no container engine: Debian's docker-compose (1.29) resolves
# compose.yaml, and hadolint (requirements-dev.txt) lints the Dockerfile (tests/test_deployment_files.py).
compose-validator:
	@command -v docker-compose >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; fi; }

prepare: deps
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py starter_catalog

# gunicorn reads gunicorn.conf.py: workers, the embedded database's lifetime, the model warmed per worker.
run: prepare
	HOST=$(HOST) $(VENV)/bin/gunicorn revimg.wsgi

dev: prepare
	DJANGO_DEBUG=1 $(PY) manage.py runserver $(HOST)

# Stops the app server (graceful: requests in flight finish), then the embedded database if it still runs.
stop: deps
	@pid=$$(cat "$${REVIMG_DATA_DIR:-var}/gunicorn.pid" 2>/dev/null); \
	if [ -n "$$pid" ] && kill -TERM "$$pid" 2>/dev/null; then \
		echo "stopping gunicorn (pid $$pid)"; \
		while kill -0 "$$pid" 2>/dev/null; do sleep 0.2; done; \
	fi
	$(PY) manage.py embedded_postgres stop

test: deps browser axe compose-validator
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
