# Every target that runs something first makes sure .venv exists and holds the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint schemas pacts serve clean browser postgresql wrk bench fuzz dist screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/iadvize-harness demo

# When make started: the wall time that make test prints at the end counts the install too.
test: export IADVIZE_MAKE_STARTED := $(shell date +%s)
# Bytecode is cached even where the environment says not to (Python's Docker images set
# PYTHONDONTWRITEBYTECODE=1): else every worker rewrites the asserts of ~450 modules again (10 s each at
# start) and every bot, command and kernel the tests start compiles its modules again (an empty value
# is off).
test: export PYTHONDONTWRITEBYTECODE :=
# Two pytest-xdist workers a core: about half of the suite's time is spent waiting on real clocks (iAdvize's
# 2 s and 10 s budgets, Locust runs, servers starting), and a second worker a core keeps the cores busy then.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
# More pytest options, e.g. make test PYTEST_ARGS="--durations=30" for the slowest tests (CONTRIBUTING.md).
PYTEST_ARGS ?=

# pytest exits 5 when it collects no test: for us that means the suite went missing, so say so.
test: $(STAMP) browser postgresql wrk lint
	@status=0; $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

# Over 10,000 generated requests against the reference bot (make test runs a fixed-seed sample).
fuzz: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-profile=fuzz tests/test_fuzz.py tests/test_openapi_fuzz.py

# The README's picture of the chat page, taken by its test in Chromium (docs/chat-screenshot.png).
screenshots: $(STAMP) browser
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_chat_page.py -k offers_drawn

# Ratios measured side by side (not part of make test, which runs a smoke pass of each).
bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks.run

# Debian's packages the tests and benchmarks start, installed once: $(call debian,CHECK,PACKAGE,WHAT FOR).
debian = @$(1) >/dev/null 2>&1 || { \
  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
  echo "installing Debian's $(2) ($(3))"; \
  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(2) >/dev/null \
  || { echo "make needs Debian's $(2) ($(3)): apt-get install $(2)" >&2; exit 1; }; }

browser:
	$(call debian,command -v chromium,chromium,for the report's browser test)

postgresql:
	$(call debian,ls /usr/lib/postgresql/*/bin/initdb,postgresql,for the store's tests on a real server)

wrk:
	$(call debian,command -v wrk,wrk,for the concurrent benchmarks)

# The rules (with a complexity bound) and the layout (ruff format, 120 columns) are both checked.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schemas: $(STAMP)
	$(BIN)/iadvize-harness schemas --out contracts/schemas --openapi contracts/openapi.yaml

# The consumer suite writes the pacts; commit them (a test fails when they drift).
pacts: $(STAMP)
	$(BIN)/python -m contracts.generate contracts/pacts

# The wheel and the sdist, as users install them (they carry the pacts, notebooks and sample): built in a venv
# of its own holding `build` alone, not the whole development install.
dist:
	$(PYTHON) -m venv build/dist-venv
	build/dist-venv/bin/pip install --quiet build
	build/dist-venv/bin/python -m build --outdir dist .

serve: $(STAMP)
	$(BIN)/iadvize-harness serve

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
