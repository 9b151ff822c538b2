# Two commands do all setup on a fresh machine with Python >= 3.11:
#   make demo   runs the main job (the vanishing-gradient experiment, quick preset)
#   make test   runs the test suite
# Both create .venv and install rnnlab with its test extras on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test demo torch lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,plot]'
	touch $(STAMP)

venv: $(STAMP)

# Test processes (pytest-xdist): most of the suite's time is single-threaded XLA compilation.
TEST_WORKERS ?= 2
# The tests' small shapes are compile-bound: XLA:CPU's unoptimized code generation compiles faster (the same
# optimized HLO, built into slower machine code; test_train.py and test_fit.py took 48 s instead of 61 s).
TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0

test: $(STAMP)
	$(BIN)/ruff check rnnlab tests experiments bench
	XLA_FLAGS="$(TEST_XLA_FLAGS) $$XLA_FLAGS" $(BIN)/python -m pytest -n $(TEST_WORKERS)

demo: $(STAMP)
	$(BIN)/python experiments/vanishing_gradient.py --preset quick --overwrite

# Optional: PyTorch (CPU) for the parity tests and the benchmark.
torch: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0

lint: $(STAMP)
	$(BIN)/ruff check rnnlab tests experiments bench

bench: torch
	$(BIN)/python bench/bench_rnn.py
	$(BIN)/python bench/bench_seeds.py
	$(BIN)/python bench/bench_memory.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
