# bertlab: two commands on a fresh machine with Python 3.11 and pip.
#   make course   set up, then run every notebook headless with a summary (PROFILE=ci for a quick tour)
#   make test     set up, then run the whole test suite (ruff, tests/, every notebook under nbval)
#   make lab      open JupyterLab on notebooks/

PYTHON ?= python3
PROFILE ?= auto
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bertlab-installed
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: setup course test lab lint browser clean-runs

setup: $(STAMP)

# torch first, pinned: a looser first install pulls several GB of CUDA packages.
$(STAMP): pyproject.toml requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (bertlab)" >/dev/null
	touch $(STAMP)

course: setup
	$(OFFLINE) $(PY) -m bertlab course --profile $(PROFILE)

# The browser test needs Debian's chromium and chromedriver; install them when we can (root with apt).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver for the browser test"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "NOTE: no chromium and no root apt: the browser test will skip (or fail under CI=true)"; fi

lint: setup
	$(PY) -m ruff check bertlab tests notebooks

test: setup browser lint
	$(OFFLINE) BERTLAB_PROFILE=ci $(PY) -m pytest tests notebooks --nbval-lax \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 300 \
		-p no:cacheprovider -q

lab: setup
	$(OFFLINE) $(PY) -m jupyter lab notebooks/

clean-runs:
	rm -rf runs/
