# The two commands of the README's quick start: `make demo` and `make test`.
# Each creates .venv and installs into it when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions

.PHONY: setup demo test clean

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(PY) -m avvp_dist.cli demo $(ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf runs .cache .pytest_cache
