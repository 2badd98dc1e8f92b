# Development entry points. Everything installs itself: a fresh clone needs only python3.12.
SHELL := /bin/bash
PY312 := $(shell .ci/find-python 3.12)
export PYTHONDONTWRITEBYTECODE := 1
UV_BOOT := .uv
UV := $(shell command -v uv 2>/dev/null || echo $(UV_BOOT)/bin/uv)
VENV := .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=
# Second leg: the oldest supported AstrBot (requirements-compat.txt, 4.14.6) on the oldest
# Python the plugin supports: it catches both AstrBot API differences and 3.11+ stdlib APIs.
# (COMPAT_PY=3.11 runs it on 3.11; that leg never caught anything the 3.10 one did not.)
COMPAT_PY ?= 3.10
COMPAT_VENV ?= .venv-compat
PY_COMPAT := $(shell .ci/find-python $(COMPAT_PY) 2>/dev/null)
# The browser test needs Debian's chromium (.ci/install-chromium) and the web panel that
# AstrBot's wheel bundles since 4.28 (the main leg, 4.29.3).
SUITE := -m "not browser"
# The suite in this many processes, a module (and its module-scoped servers) in one of them; the
# real-time waits of one overlap the work of the other. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadscope)

.PHONY: test test-compat test-browser test-install lint run bench clean venv venv-compat

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

$(COMPAT_VENV)/.installed: requirements.txt requirements-compat.txt | $(UV)
	@test -n "$(PY_COMPAT)" || { echo "python$(COMPAT_PY) is required for test-compat" >&2; exit 1; }
	$(UV) venv --allow-existing --python $(PY_COMPAT) $(COMPAT_VENV)
	$(UV) pip install --python $(COMPAT_VENV)/bin/python --compile-bytecode -r requirements-compat.txt
	$(UV) pip check --python $(COMPAT_VENV)/bin/python
	touch $@

venv-compat: $(COMPAT_VENV)/.installed

test: venv
	$(PYTHON) -m pytest -p no:cacheprovider $(PARALLEL) $(SUITE) $(PYTEST_ARGS)

test-compat: venv-compat
	$(COMPAT_VENV)/bin/python -m pytest -p no:cacheprovider $(PARALLEL) $(SUITE) $(PYTEST_ARGS)

test-browser: venv
	$(PYTHON) -m pytest -p no:cacheprovider -m browser $(PYTEST_ARGS)

# The zip install through the dashboard alone, on both legs (make test and test-compat run it too).
test-install: venv venv-compat
	$(PYTHON) -m pytest -p no:cacheprovider -m install $(PYTEST_ARGS)
	$(COMPAT_VENV)/bin/python -m pytest -p no:cacheprovider -m install $(PYTEST_ARGS)

# mypy (strict, pyproject.toml) sees main.py and utils/ as the package AstrBot loads: main.py
# imports utils relatively. The package is a directory of links, remade on each run.
PLUGIN_PACKAGE := astrbot_plugin_gemini25_image_openrouter
MYPY_TREE := .mypy-tree

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	rm -rf $(MYPY_TREE) && mkdir -p $(MYPY_TREE)/$(PLUGIN_PACKAGE)
	ln -s ../../main.py ../../utils $(MYPY_TREE)/$(PLUGIN_PACKAGE)/
	$(VENV)/bin/mypy -p $(PLUGIN_PACKAGE)
	@# The plugin must also run on Python 3.10 (AstrBot 4.14 users): byte-compile it there when available.
	@py310=$$(.ci/find-python 3.10 2>/dev/null) \
		&& $$py310 -c 'import sys; [compile(open(f, encoding="utf-8").read(), f, "exec") for f in sys.argv[1:]]' main.py $$(find utils -name '*.py') \
		&& echo "main.py and utils/ compile under $$py310" \
		|| { test -z "$$py310" && echo "python3.10 not found: syntax check relies on ruff target py310"; }

run: venv
	bash .ci/astrbot-run.sh

bench: venv
	$(PYTHON) tests/bench/run.py

clean:
	rm -rf $(VENV) $(VENV)-* $(COMPAT_VENV) $(UV_BOOT) .ruff_cache .mypy_cache $(MYPY_TREE)
