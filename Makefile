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

# Two passes (docs/testing/suite-time.md): the browser tests and the tests marked `serial`
# (wall-clock and load-sensitive) alone, then the rest on TEST_WORKERS pytest-xdist workers,
# one file per unit of work (its closing line is the run's). pytest exits 5 when a pass
# collects no tests: that is not a failure of the suite's code. Both passes always run; the
# first failing pass's exit code is the target's.
TEST_WORKERS ?= 2
test: setup
	@$(BIN)/python -m pytest -q -n 0 -m 'serial or e2e'; \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "no serial tests collected"; rc=0; fi; \
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m 'not serial and not e2e'; \
	rc2=$$?; if [ $$rc2 -eq 5 ]; then echo "no tests collected"; rc2=0; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; exit $$rc2

# ruff, then the layering contracts of pyproject.toml's [tool.importlinter]
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .workbench .pytest_cache
