# kalshi-ingestor: `make demo` runs the whole thing locally, `make test` runs the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check ingestor roles tests bench

test: lint
	rm -f .pytest-junit.xml
	$(BIN)/pytest --junitxml=.pytest-junit.xml
	$(BIN)/python .ci/check_junit.py .pytest-junit.xml

demo: install
	$(BIN)/ingestor demo

bench: install
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
