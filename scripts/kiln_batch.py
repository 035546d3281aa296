"""Headless Kiln batch: a manifest in, finished assets out.

    blender -b --python-exit-code 1 --python scripts/kiln_batch.py -- examples/demo.toml --out out/
    python scripts/kiln_batch.py examples/demo.toml --out out/          (with the bpy module from PyPI)

Both forms run `addon/batch.py` in the Kiln extension: an installed one if Blender has it enabled,
otherwise this checkout, registered as a local extension repository. Under plain Python, Blender's
user resources go to a private temporary folder, so your own preferences are never touched.
Remote backends need network access: `--online-mode` (Blender's own flag) allows it. Keys are found
as `blender -c kiln batch` finds them: the KILN_<BACKEND>_API_KEY variables first, then the enabled add-on's
preferences (under plain Python those are private and empty, so only the environment counts).
Exit codes: 0 all succeeded, 1 some assets failed, 2 bad manifest or setup, 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kiln_loader


def script_arguments() -> list[str]:
    argv = sys.argv
    if "--" in argv:  # inside a Blender binary: Blender's own options come before "--"
        return argv[argv.index("--") + 1 :]
    return argv[1:]


def main() -> int:
    inside_blender = "bpy" in sys.modules
    if not inside_blender:
        kiln_loader.isolate_user_resources()
    bpy = importlib.import_module("bpy")
    arguments = script_arguments()
    if "--online-mode" in arguments:  # as Blender's own flag: the user allows network access
        arguments.remove("--online-mode")
        bpy.context.preferences.system.use_online_access = True
    kiln = kiln_loader.load_kiln()
    batch = importlib.import_module(f"{kiln.__name__}.addon.batch")
    preferences = importlib.import_module(f"{kiln.__name__}.ui.preferences")
    online = bool(bpy.app.online_access)
    return int(batch.main(arguments, online_access=online, backends=preferences.installed_engine_settings().backends))


if __name__ == "__main__":
    sys.exit(main())
