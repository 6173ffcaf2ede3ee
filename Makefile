# Every target that runs something first makes sure .venv exists and holds the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint schemas pacts serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/iadvize-harness demo

# pytest exits 5 when it collects no test: for us that means the suite went missing, so say so.
test: $(STAMP)
	$(BIN)/ruff check .
	@status=0; $(BIN)/python -m pytest || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schemas: $(STAMP)
	$(BIN)/iadvize-harness schemas --out contracts/schemas --openapi contracts/openapi.yaml

# The consumer suite writes the pacts; commit them (a test fails when they drift).
pacts: $(STAMP)
	$(BIN)/python -m contracts.generate contracts/pacts

serve: $(STAMP)
	$(BIN)/iadvize-harness serve

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
