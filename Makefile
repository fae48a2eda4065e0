# Two commands on a fresh machine: `make run` (app on SQLite with sample data) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup seed lint clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed: set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

seed: setup
	$(BIN)/workbench seed

run: seed
	$(BIN)/streamlit run streamlit_app.py --server.address=127.0.0.1 --server.headless=true --browser.gatherUsageStats=false

# pytest exits 5 when it collects no tests: that is not a failure of the suite's code.
test: setup
	@$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# ruff, then the layering contracts of pyproject.toml's [tool.importlinter]
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .workbench .pytest_cache
