"""The script a finishing worker starts with (see `finish_pool.py`); run as a file, never imported.

It makes Kiln importable under the package name the artist's Blender loaded it as (`bl_ext.<repo>.kiln`),
without running the add-on's `__init__` (no registration, no scheduler, no UI), then serves requests:

    blender --factory-startup -b --python worker_entry.py -- --package bl_ext.user_default.kiln --root DIR
    python worker_entry.py --package bl_ext.kiln_dev.kiln --root DIR          (with the `bpy` module)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types


def _arguments() -> argparse.Namespace:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser(prog="kiln-finish-worker")
    parser.add_argument("--package", required=True)
    parser.add_argument("--root", required=True)
    return parser.parse_args(argv)


def _package(name: str, path: list[str]) -> None:
    """An empty package module (parents of Kiln's own are plain namespaces; Kiln's points at its folder)."""
    if name in sys.modules:
        return
    module = types.ModuleType(name)
    module.__path__ = path
    module.__package__ = name
    sys.modules[name] = module


def main() -> int:
    arguments = _arguments()
    # Blender first: starting up, it sets up its own `bl_ext` package and enables the default add-ons
    # (the glTF importer, Cycles), which a stand-in `bl_ext` made before it would stop.
    importlib.import_module("bpy")
    parts = arguments.package.split(".")
    for end in range(1, len(parts)):
        _package(".".join(parts[:end]), [])
    _package(arguments.package, [arguments.root])
    worker = importlib.import_module(f"{arguments.package}.addon.blender.finish_worker")
    return int(worker.serve())


if __name__ == "__main__":
    sys.exit(main())
