# `make test`, `make quick` and `make demo` each create (or reuse) .venv by themselves.
# PYTHON picks the interpreter: `make test PYTHON=python3.13`.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# pyenv shims only expose the global version; fall back to pyenv's own install dirs.
PYEXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $$HOME/.pyenv/versions/*/bin/$(PYTHON) 2>/dev/null | tail -n 1)
PYVER := $(shell $(PYEXE) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
STAMP := $(VENV)/.installed-$(PYVER)
# The demo installs only the simulator's own extra, read from pyproject.toml (one list).
DEMO_STAMP := $(VENV)/.demo-installed-$(PYVER)
SIM_DEPS = $(shell $(PYEXE) -c 'import shlex, tomllib; print(shlex.join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["sim"]))')
# pytest-xdist workers for `make test`: the PostgreSQL chaos test (about 40 s of mostly waiting
# for the server) runs first on one worker, and two more share the rest of the suite; worksteal
# lets them take the tests queued behind it (see tests/conftest.py).
WORKERS ?= 3
# `make quick`, for the edit-test loop: everything on FakeClock; no real servers, no
# pytest-in-pytest, no subprocesses. The same properties with a shallower search: the state
# machine at 25 examples instead of 200, the fuzzer at 60 seeds instead of 300, the other
# property tests at a tenth of their examples (tests/search_budget.py).
QUICK_MARKERS := not postgres and not pytester and not subprocess and not slow
QUICK_BUDGET := CHRONOPYPE_MACHINE_EXAMPLES=25 CHRONOPYPE_FUZZ_SEEDS=60 CHRONOPYPE_EXAMPLES_SCALE=0.1

# Bytecode caching on, under the venv (not in the source tree), even where the environment sets
# PYTHONDONTWRITEBYTECODE: without it every pytest process, and every pytest a test starts,
# compiles and assertion-rewrites the whole tree again (collection: 4.2 s of CPU instead of 1.3 s).
CACHED_BYTECODE := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache

define ENSURE_VENV
	@test -n "$(PYVER)" || { echo "cannot find a Python called '$(PYTHON)'"; exit 1; }
	@if [ ! -x $(VPY) ] || [ "$$($(VPY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "creating $(VENV) with $(PYEXE)"; rm -rf $(VENV); $(PYEXE) -m venv $(VENV); fi
endef

.PHONY: venv test quick test-deep test-compat demo dist lint typecheck bench clean

$(STAMP): pyproject.toml Makefile
	$(ENSURE_VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[testing,dev,examples,plot,sim,eventspype,otel]'
	@rm -f $(VENV)/.installed-*; touch $@

$(DEMO_STAMP): pyproject.toml Makefile
	$(ENSURE_VENV)
	$(VPY) -m pip install -q --disable-pip-version-check $(SIM_DEPS)
	@rm -f $(VENV)/.demo-installed-*; touch $@

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy --strict chronopype chronopype_testing

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict chronopype chronopype_testing
	$(CACHED_BYTECODE) $(VENV)/bin/pytest -n $(WORKERS) --dist worksteal

quick: venv
	$(QUICK_BUDGET) $(CACHED_BYTECODE) $(VENV)/bin/pytest -q -p no:cacheprovider -n $(WORKERS) --dist worksteal -m '$(QUICK_MARKERS)'

test-deep: venv
	CHRONOPYPE_MACHINE_EXAMPLES=2000 CHRONOPYPE_FUZZ_SEEDS=5000 $(VENV)/bin/pytest tests -k "machine or fuzz"
	CHRONOPYPE_SIM_MEMORY_HOURS=720 $(VENV)/bin/pytest tests/test_sim.py -k memory -rA

# Runs the simulator from the source tree (python -m), with nothing but its own extra installed.
demo: $(DEMO_STAMP)
	$(VPY) -m chronopype_testing.sim --hours 24 --random-outages 6 --seed 7

dist: venv
	rm -rf dist
	$(VPY) -m build

# chronopype 0.8.3's own test suite against this tree (downloads 0.8.3's sdist and a Python 3.13
# venv for its tests into ~/.cache/chronopype-compat once); see tests/compat/run_083_suite.py.
test-compat:
	$(PYEXE) tests/compat/run_083_suite.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache dist
