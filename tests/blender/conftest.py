"""Real-Blender tests: the `bpy` module from PyPI, with Kiln loaded exactly as an installed extension.

Blender's user resources point at a temporary folder (set before `bpy` is imported), so no real
preferences or extensions are touched. The repository is registered as a local extension repository,
so the add-on is imported as `bl_ext.kiln_dev.kiln` and enabled through `addon_utils`, as Blender does.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
REPO_MODULE = "kiln_dev"
ADDON_MODULE = f"bl_ext.{REPO_MODULE}.kiln"
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="kiln-blender-tests-"))
os.environ["BLENDER_USER_RESOURCES"] = str(_SESSION_DIR / "user")
# The engine and the tests log through `logging`; keep Blender's own noise down.
os.environ.setdefault("PYTHONWARNINGS", "ignore")
sys.path[:0] = [str(Path(__file__).parent), str(REPO / "tests/tools")]


def _extension_repo() -> Path:
    """A repository folder whose `kiln` entry is this checkout (a symlink, so tests run live code)."""
    repo_dir = _SESSION_DIR / "extensions_repo"
    repo_dir.mkdir(parents=True, exist_ok=True)
    link = repo_dir / "kiln"
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    return repo_dir


def enable_kiln() -> ModuleType:
    import addon_utils

    errors: list[BaseException] = []
    module = addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=errors.append)
    if errors or module is None:
        raise RuntimeError(f"enabling Kiln failed: {errors!r}")
    return module


def disable_kiln() -> None:
    import addon_utils

    errors: list[BaseException] = []
    addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=errors.append)
    if errors:
        raise RuntimeError(f"disabling Kiln failed: {errors!r}")


@pytest.fixture(scope="session")
def bpy_module() -> Iterator[ModuleType]:
    # bpy first: addon_utils only exists once Blender is loaded.
    bpy = importlib.import_module("bpy")
    import addon_utils

    repos = bpy.context.preferences.extensions.repos
    if repos.get(REPO_MODULE) is None:
        repos.new(name="Kiln dev", module=REPO_MODULE, custom_directory=str(_extension_repo()), source="USER")
    addon_utils.extensions_refresh(ensure_wheels=True, addon_modules_pending=[ADDON_MODULE])
    enable_kiln()
    yield bpy
    disable_kiln()


@pytest.fixture
def kiln(bpy_module: ModuleType) -> Iterator[ModuleType]:
    """Kiln enabled, on an empty scene."""
    bpy_module.ops.wm.read_homefile(use_empty=True)
    yield sys.modules[ADDON_MODULE]


@pytest.fixture
def runtime(kiln: ModuleType) -> Iterator[ModuleType]:
    """Kiln's runtime module; any engine a test starts is replaced by a fresh default one afterwards."""
    name = f"{ADDON_MODULE}.addon.blender.runtime"
    yield sys.modules[name]
    sys.modules[name].start(ADDON_MODULE)  # looked up again: a test may have re-enabled the add-on
