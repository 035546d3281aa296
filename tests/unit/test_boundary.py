"""The bpy boundary (DESIGN invariant 2): only the Blender layer may import bpy."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "bpy_extras", "addon_utils", "gpu", "blf", "aud", "idprop"}
ALLOWED_DIRS = ("addon/blender/", "operators/", "ui/")
SKIPPED_DIRS = {".venv", ".git", "tests", "dist", "out", "__pycache__"}


def blender_imports(path: Path, root: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{path.relative_to(root)}:{node.lineno} imports {n}" for n in names
                  if n.split(".")[0] in BLENDER_MODULES]
    return found


def is_allowed(relative: str) -> bool:
    return relative == "__init__.py" or relative.startswith(ALLOWED_DIRS)


def offending_imports(root: Path) -> list[str]:
    problems = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if set(path.relative_to(root).parts) & SKIPPED_DIRS or relative.startswith("scripts/"):
            continue
        if not is_allowed(relative):
            problems += blender_imports(path, root)
    return problems


def test_only_the_blender_layer_imports_bpy() -> None:
    assert offending_imports(REPO) == []


def test_the_check_catches_a_violation(tmp_path: Path) -> None:
    (tmp_path / "addon").mkdir()
    (tmp_path / "addon" / "sneaky.py").write_text("def f():\n    from bpy import data\n    import mathutils\n")
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "fine.py").write_text("import bpy\n")
    assert offending_imports(tmp_path) == [
        "addon/sneaky.py:2 imports bpy",
        "addon/sneaky.py:3 imports mathutils",
    ]


def test_engine_modules_import_without_bpy() -> None:
    import importlib
    import sys

    for path in sorted((REPO / "addon").rglob("*.py")):
        relative = path.relative_to(REPO).with_suffix("").as_posix()
        if relative.startswith("addon/blender"):
            continue
        importlib.import_module(relative.replace("/", ".").removesuffix(".__init__"))
    assert "bpy" not in sys.modules
