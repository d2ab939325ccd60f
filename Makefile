# Two commands do all the set-up on a fresh clone:
#   make demo   create .venv (once), install the project, run the main job
#   make test   create .venv (once), install the project, run the whole test suite
# The virtual environment is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e ".[onboard,ground,train,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/targetfuse demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) out
