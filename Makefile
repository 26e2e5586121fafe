# llgfem: `make demo` and `make test` install what is missing into ./.venv first.
SHELL   := /bin/bash
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.llgfem-installed
MPIEXEC ?= $(shell if [ -x $(VENV)/bin/mpiexec ]; then echo $(VENV)/bin/mpiexec; else echo mpiexec; fi)
NPROCS  ?= 2
PYTEST_ARGS ?= -q -m "not slow"
DEMO_CONFIG ?= demos/configs/default.toml

.PHONY: install demo test test-serial test-mpi lint bench clean

$(STAMP): pyproject.toml tools/bootstrap-venv.sh
	bash tools/bootstrap-venv.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/llgfem run $(DEMO_CONFIG)

test: $(STAMP)
	$(MAKE) --no-print-directory test-serial
	$(MAKE) --no-print-directory test-mpi

test-serial: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-mpi: $(STAMP)
	$(MPIEXEC) -n $(NPROCS) $(PY) -m mpi4py -m pytest $(PYTEST_ARGS) -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf outputs .pytest_cache
