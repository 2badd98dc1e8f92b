# Development entry points. Everything installs itself: a fresh clone needs only python3.12.
SHELL := /bin/bash
PY312 := $(shell .ci/find-python 3.12)
export PYTHONDONTWRITEBYTECODE := 1
UV_BOOT := .uv
UV := $(shell command -v uv 2>/dev/null || echo $(UV_BOOT)/bin/uv)
VENV := .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: test lint run bench clean venv

$(UV_BOOT)/bin/uv:
	@test -n "$(PY312)" || { echo "python3.12 is required" >&2; exit 1; }
	$(PY312) -m venv $(UV_BOOT)
	$(UV_BOOT)/bin/pip install --quiet uv

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(UV)
	@test -n "$(PY312)" || { echo "python3.12 is required" >&2; exit 1; }
	$(UV) venv --allow-existing --python $(PY312) $(VENV)
	$(UV) pip install --python $(PYTHON) --compile-bytecode -r requirements-dev.txt
	$(UV) pip check --python $(PYTHON)
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PYTHON) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	@# The plugin must also run on Python 3.10 (AstrBot 4.14 users): byte-compile it there when available.
	@py310=$$(.ci/find-python 3.10 2>/dev/null) \
		&& $$py310 -c 'import sys; [compile(open(f, encoding="utf-8").read(), f, "exec") for f in sys.argv[1:]]' main.py utils/*.py \
		&& echo "main.py and utils/ compile under $$py310" \
		|| { test -z "$$py310" && echo "python3.10 not found: syntax check relies on ruff target py310"; }

run: venv
	bash .ci/astrbot-run.sh

bench: venv
	$(PYTHON) tests/bench/run.py

clean:
	rm -rf $(VENV) $(UV_BOOT) .ruff_cache
