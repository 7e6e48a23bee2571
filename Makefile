# `make test` and `make demo` each create (or reuse) .venv by themselves.
# PYTHON picks the interpreter: `make test PYTHON=python3.13`.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# pyenv shims only expose the global version; fall back to pyenv's own install dirs.
PYEXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $$HOME/.pyenv/versions/*/bin/$(PYTHON) 2>/dev/null | tail -n 1)
PYVER := $(shell $(PYEXE) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
STAMP := $(VENV)/.installed-$(PYVER)

.PHONY: venv test test-deep demo lint typecheck bench clean

$(STAMP): pyproject.toml Makefile
	@test -n "$(PYVER)" || { echo "cannot find a Python called '$(PYTHON)'"; exit 1; }
	@if [ ! -x $(VPY) ] || [ "$$($(VPY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "creating $(VENV) with $(PYEXE)"; rm -rf $(VENV); $(PYEXE) -m venv $(VENV); fi
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[testing,dev,examples,plot,otel]'
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy --strict chronopype chronopype_testing

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict chronopype chronopype_testing
	$(VENV)/bin/pytest

test-deep: venv
	CHRONOPYPE_MACHINE_EXAMPLES=2000 CHRONOPYPE_FUZZ_SEEDS=5000 $(VENV)/bin/pytest tests -k "machine or fuzz"

demo: venv
	$(VENV)/bin/chronopype-sim --hours 24 --random-outages 6 --seed 7

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
