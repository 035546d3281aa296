"""Kiln's layering (DESIGN invariant 2 and "Layout"), checked on the source: every import, absolute or
relative, is resolved to a module path from the repository root and held against the rules.

- Only the Blender layer (addon/blender, operators, ui, the root __init__.py) imports bpy.
- Nothing in addon/ outside addon/blender imports addon.blender.
- Nothing outside addon/backends/local imports it (the registry builds it; tests and benchmarks of the
  engine itself may reach inside).
- A backend module (addon/backends/*.py) knows its interface, http, imaging and jobs, nothing else.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "bpy_extras", "addon_utils", "gpu", "blf", "aud", "idprop"}
BPY_ALLOWED = ("addon/blender/", "operators/", "ui/")
SKIPPED_DIRS = {".venv", ".venv-42", ".git", "tests", "dist", "out", "__pycache__", "node_modules"}
BACKEND_MAY_IMPORT = ("addon.backends.base", "addon.backends.registry", "addon.http", "addon.imaging", "addon.jobs")
REGISTRY_BUILDS = ("addon.backends.local", "addon.backends.tripo", "addon.backends.meshy", "addon.backends.rodin",
                   "addon.backends.stability", "addon.backends.hunyuan")
"""The registry maps names to backends, so it alone imports each one."""

KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()
"""(file, import) pairs allowed to break a rule for now. Empty: the batch CLI gets its Blender runner
injected (addon/batch/cli.py, main(argv, runner=...)) instead of importing it."""


@dataclass(frozen=True)
class Import:
    source: str
    """The importing file, relative to the root (posix)."""
    line: int
    target: str
    """What is imported, dotted from the root: "addon.http.HttpClient", "bpy"; "?…" beyond the root."""


def _under(target: str, *modules: str) -> bool:
    return any(target == m or target.startswith(m + ".") for m in modules)


def resolve(source: str, level: int, module: str | None) -> str:
    """The dotted module a `from <level dots><module> import …` in `source` names, from the root."""
    parts = source.removesuffix(".py").split("/")
    package = parts[:-1]  # a module's package; for __init__.py the package itself (its last part is dropped)
    if level - 1 > len(package):
        return "?"
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, *(module.split(".") if module else [])])


def imports_of(path: Path, root: Path) -> list[Import]:
    source = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(source, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # Each imported name as a dotted path: "from .local import png" is addon.backends.local.png,
            # "from .base import Backend" addon.backends.base.Backend (the rules compare prefixes).
            base = (node.module or "") if node.level == 0 else resolve(source, node.level, node.module)
            found += [Import(source, node.lineno, f"{base}.{alias.name}".lstrip(".")) for alias in node.names]
    return found


def problem(item: Import) -> str | None:
    """What `item` breaks, or None."""
    source, target = item.source, item.target
    in_addon = source.startswith("addon/")
    if target.split(".")[0] in BLENDER_MODULES and not (source == "__init__.py" or source.startswith(BPY_ALLOWED)):
        return "imports bpy outside the Blender layer"
    if in_addon and not source.startswith("addon/blender/") and _under(target, "addon.blender"):
        return "imports addon.blender from the engine"
    if (_under(target, "addon.backends.local") and not source.startswith(("addon/backends/local/", "bench/"))
            and source != "addon/backends/registry.py"):
        return "imports the local backend's insides"
    if source.startswith("addon/backends/") and source.count("/") == 2 and source != "addon/backends/__init__.py":
        allowed = (*BACKEND_MAY_IMPORT, *REGISTRY_BUILDS) if source == "addon/backends/registry.py" \
            else BACKEND_MAY_IMPORT
        if target.startswith("addon.") and not _under(target, *allowed):
            return "a backend may import only base, http, imaging and jobs"
    return None


def violations(root: Path, known: set[tuple[str, str]] | None = None) -> list[str]:
    known = KNOWN_EXCEPTIONS if known is None else known
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if set(relative.parts) & SKIPPED_DIRS or relative.as_posix().startswith("scripts/"):
            continue
        for item in imports_of(path, root):
            reason = problem(item)
            if reason is not None and (item.source, item.target) not in known:
                found.append(f"{item.source}:{item.line} imports {item.target}: {reason}")
    return found


def test_the_layers_hold() -> None:
    assert violations(REPO) == []


def test_known_exceptions_still_exist() -> None:
    """An exception whose import is gone must leave the list, so it cannot hide a new violation."""
    for source, target in KNOWN_EXCEPTIONS:
        assert target in {i.target for i in imports_of(REPO / source, REPO)}, (source, target)


def test_relative_imports_resolve_from_the_root() -> None:
    assert resolve("addon/backends/tripo.py", 2, "http") == "addon.http"
    assert resolve("addon/backends/local/__init__.py", 3, "jobs") == "addon.jobs"
    assert resolve("addon/backends/local/text.py", 1, "shapes") == "addon.backends.local.shapes"
    assert resolve("ui/panels.py", 2, "addon.blender") == "addon.blender"
    assert resolve("__init__.py", 1, "addon") == "addon"
    assert resolve("addon/jobs.py", 3, "x") == "?"


def test_the_check_catches_violations(tmp_path: Path) -> None:
    files = {
        "addon/sneaky.py": "def f():\n    from bpy import data\n    import mathutils\n",
        "addon/jobs.py": "from .blender import runtime\nfrom . import blender\n",
        "addon/imaging/png.py": "from ..blender.importer import x\nfrom ..backends.local import png\n",
        "addon/backends/meshy.py": "from ..manifest import Manifest\nfrom .local.text import plan\n"
                                   "from ..imaging import png\nfrom .base import Backend\nfrom .. import jobs\n",
        "addon/backends/local/text.py": "from ...imaging.glb import MeshPart\nfrom . import shapes\n",
        "addon/backends/registry.py": "from .local import LocalBackend\nfrom ..modes import VIEWS\n",
        "addon/blender/runtime.py": "import bpy\nfrom ..backends import registry\n",
        "ui/panel.py": "import bpy\nfrom ..addon.backends.local import LocalBackend\nfrom ..addon.blender import x\n",
        "sandbox/server.py": "from addon.backends.local import generate_text\n",
        "addon/batch.py": "from .blender import batch_run\n",
        "__init__.py": "import bpy\nfrom .addon import batch\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(tmp_path, known={("addon/batch.py", "addon.blender.batch_run")}) == [
        "addon/backends/meshy.py:1 imports addon.manifest.Manifest: a backend may import only base, http, imaging "
        "and jobs",
        "addon/backends/meshy.py:2 imports addon.backends.local.text.plan: imports the local backend's insides",
        "addon/backends/registry.py:2 imports addon.modes.VIEWS: a backend may import only base, http, imaging "
        "and jobs",
        "addon/imaging/png.py:1 imports addon.blender.importer.x: imports addon.blender from the engine",
        "addon/imaging/png.py:2 imports addon.backends.local.png: imports the local backend's insides",
        "addon/jobs.py:1 imports addon.blender.runtime: imports addon.blender from the engine",
        "addon/jobs.py:2 imports addon.blender: imports addon.blender from the engine",
        "addon/sneaky.py:2 imports bpy.data: imports bpy outside the Blender layer",
        "addon/sneaky.py:3 imports mathutils: imports bpy outside the Blender layer",
        "sandbox/server.py:1 imports addon.backends.local.generate_text: imports the local backend's insides",
        "ui/panel.py:2 imports addon.backends.local.LocalBackend: imports the local backend's insides",
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
