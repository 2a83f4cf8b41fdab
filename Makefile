# The README's two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test venv lint clean-var worker fonts

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: venv fonts
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	@echo "Portal: http://127.0.0.1:$(PORT)/  (Ctrl-C stops web, worker and beat)"
	exec $(VENV)/bin/honcho start -f Procfile -p $(PORT)

test: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# One worker host (README "Running on several hosts"): the shared env set, then `make worker`
# (CPU) or `make worker QUEUES=gpu,cpu INFERENCE_DEVICE=cuda` (GPU host; takes gpu first, helps with cpu).
QUEUES ?= cpu
CONCURRENCY ?= 1
worker: venv
	exec $(VENV)/bin/celery -A workers.celery_app worker --queues $(QUEUES) --concurrency $(CONCURRENCY) --loglevel INFO

# The PDF report in Chinese needs a CJK font (Debian: fonts-noto-cjk); installed here when apt can.
fonts:
	@fc-list :lang=zh | grep -q . || { echo "No CJK font: installing fonts-noto-cjk (Chinese PDF reports)"; \
	  (apt-get install -y -qq fonts-noto-cjk || sudo apt-get install -y -qq fonts-noto-cjk) \
	  || echo "WARNING: install fonts-noto-cjk, or Chinese text in PDF reports shows as boxes"; }

lint: venv
	$(VENV)/bin/ruff check .
