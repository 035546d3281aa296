"""Pure-module tests: the engine under plain Python. `bpy` must never be imported here."""

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
