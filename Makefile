# Every target that runs something first makes sure .venv exists and holds the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint schemas serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/iadvize-harness demo

# pytest exits 5 when it collects no test; that is a failure of the suite, not of the machine,
# but CI must still see the closing line, so we let pytest print it and pass its code on.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schemas: $(STAMP)
	$(BIN)/iadvize-harness schemas --out contracts/schemas

serve: $(STAMP)
	$(BIN)/iadvize-harness serve

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
