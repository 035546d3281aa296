"""Pure-module tests: the engine under plain Python. `bpy` must never be imported here.

`make test` runs these once, in `.venv` (with bpy 5.0.1 installed but never imported); the Blender 4.2
LTS run covers `tests/blender` only (see tests/blender/conftest.py for the `bpy50_only` marker).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for path in (REPO, REPO / "tests/tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(autouse=True)
def _no_bpy() -> None:
    yield
    assert "bpy" not in sys.modules, "a pure-module test imported bpy"
