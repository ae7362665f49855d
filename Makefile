# Entry points: `make demo`, `make test`, `make lab`. Each bootstraps .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all test-browser lab lint clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned resolve pulls the multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(PY) -m replicantface generate --out outputs/demo --count 8 --seed 0 --quality preview
	$(PY) -m replicantface sheet outputs/demo --out outputs/demo/contact_sheet.png
	@echo "Dataset: outputs/demo   Contact sheet: outputs/demo/contact_sheet.png"

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

# JupyterLab in headless Chromium: opens the workbench, moves a slider, saves docs/workbench.png.
test-browser: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,lab,browser]'
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pytest -q -m browser -o addopts='' tests/test_browser.py

lab: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,lab]'
	$(VENV)/bin/jupyter lab notebooks/

lint: $(STAMP)
	$(VENV)/bin/ruff check replicantface tests benchmarks

clean-venv:
	rm -rf $(VENV)
