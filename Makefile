# Two commands: `make run` starts the whole site, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_WORKERS ?= 2
# `make run PORT=8010` moves the whole site (web server, the links in e-mails and the demo's sign-in line).
PORT ?= 8000

.PHONY: run test faults install lint smoke e2e bench screenshots clean messages

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	PORT=$(PORT) $(PY) manage.py seed_demo
	PORT=$(PORT) $(PY) manage.py run_all --port $(PORT)

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run

test: lint
	@command -v chromium >/dev/null 2>&1 || echo "NOTE: no chromium on PATH: the browser tests (tests/e2e) will be skipped. apt-get install chromium to run them."
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not fault" $(PYTEST_ARGS)

# The fault tests (tests/faults and the 300-send kill test): private Redis, PostgreSQL and mail
# servers stopped, hung and restarted under real processes; about three minutes on two cores.
faults: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m fault $(PYTEST_ARGS)

smoke: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m smoke $(PYTEST_ARGS)

bench: install
	$(PY) manage.py bench --scale small

# Refresh the README's images (docs/img/) from the browser tests; page 1 of the PDF is drawn by
# pdftoppm (apt-get install poppler-utils).
screenshots: install
	SCREENSHOTS=1 $(PY) -m pytest tests/e2e -m e2e -p no:xdist

# After changing a marked string: collect the strings into locale/*/django.po, translate the new ones,
# then compile. The compiled .mo files are committed (so `make run` and `make test` need no gettext);
# a test fails when a .mo no longer matches its .po or a string is left untranslated.
MESSAGE_IGNORES := --ignore=.venv --ignore=staticfiles --ignore=var --ignore=tests --ignore=static --ignore=docs --ignore="*.egg-info"
messages: install
	$(PY) manage.py makemessages -l es --no-obsolete $(MESSAGE_IGNORES)
	$(PY) manage.py compilemessages -l es $(MESSAGE_IGNORES)

clean:
	rm -rf var .pytest_cache
