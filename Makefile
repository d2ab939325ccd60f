# Two commands do all the set-up on a fresh clone:
#   make demo   create .venv (once), install the project, run the main job
#   make test   create .venv (once), install the project, run the whole test suite
# The virtual environment is rebuilt only when a pyproject.toml changes. Each deployable is
# its own distribution (shared/, onboard/, ground/, lab/; the command at the top); this
# installs them all, editable, in one pip call so they resolve one another locally.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PROJECTS := pyproject.toml shared/pyproject.toml onboard/pyproject.toml \
            ground/pyproject.toml lab/pyproject.toml

.PHONY: demo test test-fast lint clean

$(STAMP): $(PROJECTS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e ./shared -e ./onboard -e ./ground -e ./lab \
	    -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/targetfuse demo

# Everything that can run on this machine (CI runs exactly this).
test: $(STAMP)
	$(VENV)/bin/python -m pytest

# The fast tier for everyday work (under a minute): no slow, integration or netns tests.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow and not integration and not netns and not compose"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) out
