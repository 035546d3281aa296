# Kiln developer entry points. `make test` and `make demo` each set up everything from nothing.
PYTHON_311 ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Blender 4.2 LTS, the oldest version blender_manifest.toml claims: a second venv for `tests/blender`.
VENV_42 := .venv-42
PY_42 := $(VENV_42)/bin/python
STAMP_42 := $(VENV_42)/.installed

NODE_TOOLS := tests/tools/node_modules/.installed

.PHONY: venv venv-42 tools test lint unit blender blender-42 unit-then-42 demo zip bench clean

venv: $(STAMP)
venv-42: $(STAMP_42)

# The Khronos glTF-Validator (npm) that the tests run on every GLB Kiln writes.
tools: $(NODE_TOOLS)

$(NODE_TOOLS): tests/tools/package.json tests/tools/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "error: npm (Node.js) is required by the tests, for the Khronos glTF-Validator." >&2; exit 1; }
	cd tests/tools && npm ci --silent --no-audit --no-fund
	@touch $(NODE_TOOLS)

# Both venvs need CPython 3.11 exactly: the bpy wheels (5.0.1 and 4.2.23) are built only for it.
define check_python_311
	@command -v $(PYTHON_311) >/dev/null 2>&1 || { \
	  echo "error: CPython 3.11 ('$(PYTHON_311)') is required: the bpy module is built only for 3.11." >&2; \
	  echo "       Install it (e.g. 'apt install python3.11' or pyenv) or run 'make PYTHON_311=/path/to/python3.11'." >&2; \
	  exit 1; }
	@$(PYTHON_311) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || { \
	  echo "error: '$(PYTHON_311)' is not CPython 3.11." >&2; exit 1; }
endef

# Each stamp depends on its pinned requirements, so a second run is a no-op and an edit reinstalls.
$(STAMP): requirements-dev.txt
	$(check_python_311)
	@test -x $(PY) || $(PYTHON_311) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

$(STAMP_42): requirements-blender42.txt
	$(check_python_311)
	@test -x $(PY_42) || $(PYTHON_311) -m venv $(VENV_42)
	$(PY_42) -m pip install --quiet --disable-pip-version-check -r requirements-blender42.txt
	@touch $(STAMP_42)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: venv tools
	$(PY) -m pytest tests/unit

# Blender 5.0.1 runs everything; 4.2.23 runs `tests/blender` less the tests marked `bpy50_only`
# (kill tests, fuzz sets, sandbox benchmarks: see tests/blender/conftest.py).
blender: venv tools
	$(PY) -m pytest tests/blender

blender-42: venv-42 tools
	$(PY_42) -m pytest tests/blender

# The long Blender 5.0.1 run goes side by side with the unit tests followed by the 4.2 run: much of
# their time is waiting on sandbox latencies and subprocesses, so two at once fit a 2-core machine.
# Each run's output is printed whole when it ends (--output-sync), never interleaved.
test: lint venv venv-42 tools
	$(MAKE) --no-print-directory --output-sync=target -j2 blender unit-then-42

unit-then-42: venv venv-42 tools
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory blender-42

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
	$(PY) bench/meshy_bench.py
	$(PY) bench/backends_bench.py
	$(PY) bench/hunyuan_bench.py
	$(PY) bench/soak_bench.py
	$(PY) bench/finish_bench.py
	$(PY) bench/ray_bench.py
	$(PY) bench/preflight_bench.py
	$(PY) bench/camera_local_bench.py

clean:
	rm -rf $(VENV) $(VENV_42) dist .pytest_cache .mypy_cache .ruff_cache tests/tools/node_modules
