# Kiln developer entry points. `make test` and `make demo` each set up everything from nothing.
PYTHON_311 ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

NODE_TOOLS := tests/tools/node_modules/.installed

.PHONY: venv tools test lint unit blender demo zip bench clean

venv: $(STAMP)

# The Khronos glTF-Validator (npm) that the tests run on every GLB Kiln writes.
tools: $(NODE_TOOLS)

$(NODE_TOOLS): tests/tools/package.json tests/tools/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "error: npm (Node.js) is required by the tests, for the Khronos glTF-Validator." >&2; exit 1; }
	cd tests/tools && npm ci --silent --no-audit --no-fund
	@touch $(NODE_TOOLS)

# The stamp depends on the pinned requirements, so a second run is a no-op and an edit reinstalls.
$(STAMP): requirements-dev.txt
	@command -v $(PYTHON_311) >/dev/null 2>&1 || { \
	  echo "error: CPython 3.11 ('$(PYTHON_311)') is required: bpy 5.0.1 is built only for 3.11." >&2; \
	  echo "       Install it (e.g. 'apt install python3.11' or pyenv) or run 'make PYTHON_311=/path/to/python3.11'." >&2; \
	  exit 1; }
	@$(PYTHON_311) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || { \
	  echo "error: '$(PYTHON_311)' is not CPython 3.11." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_311) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: venv tools
	$(PY) -m pytest tests/unit

blender: venv tools
	$(PY) -m pytest tests/blender

test: lint unit blender

demo: venv
	$(PY) scripts/kiln_batch.py examples/demo.toml --out out

zip: venv
	$(PY) scripts/dev/build_zip.py --output-dir dist

bench: venv
	$(PY) bench/engine_bench.py
	$(PY) bench/local_bench.py
	$(PY) bench/pipeline_bench.py
	$(PY) bench/ui_bench.py
	$(PY) bench/tripo_bench.py

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache tests/tools/node_modules
