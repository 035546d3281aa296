"""Load Kiln into Blender the way Blender loads an installed extension, from this repository.

Used by the headless entry point (`scripts/kiln_batch.py`) under the `bpy` module or a Blender binary,
and by the tests and benchmarks. If a Kiln extension is already enabled (a user installed the zip),
that one is used; otherwise this checkout is registered as a local extension repository and enabled
as `bl_ext.kiln_dev.kiln`.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import cast

REPO = Path(__file__).resolve().parents[1]
REPO_MODULE = "kiln_dev"
ADDON_MODULE = f"bl_ext.{REPO_MODULE}.kiln"


_private_root: Path | None = None
"""The temporary folder this process made for Blender's user resources (the extension repository
goes inside it too), removed at exit."""


def _remove_at_exit(folder: Path) -> None:
    # atexit runs handlers last-registered first: one registered before `import bpy` runs after
    # whatever the bpy module registers for its own shutdown.
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def isolate_user_resources(folder: Path | None = None) -> Path:
    """Point Blender's user resources at a private folder; must run before `import bpy`. A folder made
    here (`kiln-user-*` in the temp folder) is removed when the process exits; a given one is kept."""
    global _private_root
    if folder is None:
        folder = _private_root = Path(tempfile.mkdtemp(prefix="kiln-user-"))
        _remove_at_exit(folder)
    os.environ["BLENDER_USER_RESOURCES"] = str(folder)
    return folder


def _repo_folder(root: Path) -> Path:
    """A folder whose `kiln` entry is this checkout (a symlink, or a copy where links are refused)."""
    folder = root / "kiln_extensions"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "kiln"
    if not link.exists():
        try:
            link.symlink_to(REPO, target_is_directory=True)
        except OSError:
            import shutil

            # `.typecheck/kiln` links back to the root (for mypy): copying it would recurse forever.
            ignore = shutil.ignore_patterns(".venv*", ".git", ".typecheck", "out", "tests", "bench")
            shutil.copytree(REPO, link, ignore=ignore)
    return folder


def enabled_kiln() -> ModuleType | None:
    """An already-enabled Kiln extension (whatever repository it came from)."""
    import bpy

    preferences = bpy.context.preferences
    if preferences is None:  # no preferences yet (typed Optional): nothing can be enabled
        return None
    for addon in preferences.addons:
        if addon.module.startswith("bl_ext.") and addon.module.endswith(".kiln"):
            return sys.modules.get(addon.module)
    return None


def load_kiln(scratch: Path | None = None) -> ModuleType:
    """Enable Kiln and return its package module."""
    bpy = importlib.import_module("bpy")
    existing = enabled_kiln()
    if existing is not None:
        return existing
    import addon_utils

    repos = bpy.context.preferences.extensions.repos
    if repos.get(REPO_MODULE) is None:
        root = scratch or _private_root
        if root is None:  # inside a Blender binary, with the user's own resources: a folder of our own
            root = Path(tempfile.mkdtemp(prefix="kiln-repo-"))
            _remove_at_exit(root)
        repos.new(name="Kiln (this checkout)", module=REPO_MODULE, custom_directory=str(_repo_folder(root)),
                  source="USER")
    addon_utils.extensions_refresh(ensure_wheels=True, addon_modules_pending=[ADDON_MODULE])
    errors: list[BaseException] = []
    # fake-bpy-module types `enable` as returning None; Blender returns the enabled module, or None on failure.
    module = cast("ModuleType | None", addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=errors.append))
    if errors or module is None:
        raise RuntimeError(f"enabling Kiln failed: {errors!r}")
    return module


def disable_kiln() -> None:
    import addon_utils

    errors: list[BaseException] = []
    addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=errors.append)
    if errors:
        raise RuntimeError(f"disabling Kiln failed: {errors!r}")
