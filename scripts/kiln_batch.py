"""Headless Kiln batch: a manifest in, finished assets out.

    blender -b --python-exit-code 1 --python scripts/kiln_batch.py -- examples/demo.toml --out out/
    python scripts/kiln_batch.py examples/demo.toml --out out/          (with the bpy module from PyPI)

Both forms run `addon/batch/cli.py` in the Kiln extension, with `addon/blender/batch_run.py` as its
Blender runner: an installed Kiln if Blender has it enabled, otherwise this checkout, registered as a
local extension repository. Under plain Python, Blender's user resources go to a private temporary
folder (removed at exit), so your own preferences are never touched.
Remote backends need network access: `--online-mode` (Blender's own flag) allows it. Keys are found
as `blender -c kiln batch` finds them: the KILN_<BACKEND>_API_KEY variables first, then the enabled
add-on's preferences (under plain Python those are private and empty, so only the environment counts).

    python scripts/kiln_batch.py --merge out/<batch>       (after `--shard I/N` runs: one result)

Exit codes: 0 every asset finished, 1 some failed (or an export did), 2 bad manifest, flags or setup
(one line on stderr; nothing was submitted), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kiln_loader


class EarlyInterrupt:
    """Ctrl-C while Blender and Kiln load, before the run installs its own handler: remembered (a
    KeyboardInterrupt raised inside an import would be swallowed by Blender's add-on loader, and the run
    would go on), then acted on. The run's handler sees `fired` and stops at once."""

    fired = False

    def __call__(self, *_args: object) -> None:
        self.fired = True


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, EarlyInterrupt())


def script_arguments() -> list[str]:
    argv = sys.argv
    if "--" in argv:  # inside a Blender binary: Blender's own options come before "--"
        return argv[argv.index("--") + 1 :]
    return argv[1:]


def setup_error(key: str, what: str) -> int:
    """Before Kiln is loaded, its one-line error format by hand (exit 2: nothing was submitted)."""
    print(f"kiln batch: error: {key}: {what}", file=sys.stderr)
    return 2


def json_stdout(arguments: list[str]) -> TextIO | None:
    """Under --json, from the very start: file descriptor 1 goes to stderr (Blender prints there while
    it loads and enables Kiln), and the returned stream is the real stdout, for the report alone."""
    if "--json" not in arguments:
        return None
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        return None
    return os.fdopen(saved, "w", encoding="utf-8")


def main() -> int:
    arguments = script_arguments()
    report_stream = json_stdout(arguments)
    # While Blender and Kiln load, Python's prints follow descriptor 1 (stderr under --json).
    with contextlib.redirect_stdout(sys.stderr) if report_stream else contextlib.nullcontext():
        loaded = load(arguments)
    if isinstance(loaded, int):
        return loaded
    cli, runner, online, backends = loaded
    if getattr(signal.getsignal(signal.SIGINT), "fired", False):
        print("kiln batch: interrupted before the run started; nothing was submitted", file=sys.stderr)
        return 130
    with contextlib.redirect_stdout(report_stream) if report_stream else contextlib.nullcontext():
        if "--merge" in arguments or any(a.startswith("--merge=") for a in arguments):
            merger = importlib.import_module(runner.__name__.rsplit(".", 1)[0] + ".merge")
            code = int(cli.merge_main(arguments, merger=merger))
        else:
            code = int(cli.main(arguments, runner=runner, online_access=online, backends=backends))
    if report_stream is not None:
        report_stream.close()
    return code


def load(arguments: list[str]) -> tuple[ModuleType, ModuleType, bool, Any] | int:
    """Blender and Kiln, ready: the command line, its runner and what the run may use; or the exit code
    of a setup that cannot work."""
    inside_blender = "bpy" in sys.modules
    try:
        if not inside_blender:
            kiln_loader.isolate_user_resources()
        bpy = importlib.import_module("bpy")
    except ImportError as exc:
        return setup_error("bpy", f"Blender's Python module is not available ({exc}): install it with "
                           "`pip install bpy` in a Python 3.11 environment, or run this script inside Blender "
                           "(blender -b --python scripts/kiln_batch.py -- MANIFEST)")
    except OSError as exc:
        return setup_error("TMPDIR", f"cannot create a private folder for Blender's settings: {exc.strerror or exc}")
    if "--online-mode" in arguments:  # as Blender's own flag: the user allows network access
        arguments.remove("--online-mode")
        bpy.context.preferences.system.use_online_access = True
    try:
        kiln = kiln_loader.load_kiln()
    except (OSError, RuntimeError) as exc:
        return setup_error("kiln", f"cannot load the Kiln extension: {' '.join(str(exc).split())[:300]}")
    cli = importlib.import_module(f"{kiln.__name__}.addon.batch.cli")
    runner = importlib.import_module(f"{kiln.__name__}.addon.blender.batch_run")
    preferences = importlib.import_module(f"{kiln.__name__}.ui.preferences")
    return cli, runner, bool(bpy.app.online_access), preferences.installed_engine_settings().backends


if __name__ == "__main__":
    sys.exit(main())
