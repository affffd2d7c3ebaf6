# The two commands a newcomer needs: `make demo` (main job) and `make test` (the suite).
# Both build their own virtual environment in .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench mutation clean influxdb chromium compose

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "hipback needs Python 3.11 or newer (found $$($(PYTHON) --version))."; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
		echo "Python's venv module is missing: installing the Debian package python3-venv ..."; \
		apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv --clear $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hipback demo

influxdb:
	@bash tests/install_influxdb.sh

chromium:
	@sh tests/install_chromium.sh

compose:
	@sh tests/install_compose.sh

lint: $(STAMP)
	$(BIN)/ruff check hipback ingest processing simulator tests bench dashboards

# Two workers, a test file's tests on one of them (module fixtures built once): on the 2-core machines CI runs on
# the suite takes about half the time; every test is meant to hold on a busy machine anyway. The files are
# handed out in collection order, the longest first (tests/conftest.py), not xdist's order by number of tests.
test: $(STAMP) influxdb chromium compose lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# Benchmarks print figures; they are not part of the test suite (see bench/README.md).
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/processing_bench.py
	$(BIN)/python -m bench.influx_writer
	$(BIN)/python bench/ingest_load.py --sensors 12,16,24 --max-batch 2

# Mutation testing on a throw-away copy of the committed tree (scores in bench/README.md); CPU heavy: 3-10 min
# per group on two cores, about two hours for GROUPS="--group all". One module: GROUPS="--group holds".
GROUPS ?= --group lineprotocol --group outbox --group decoders
mutation: $(STAMP)
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(BIN)/python bench/mutation.py $(GROUPS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
