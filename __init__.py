"""Kiln: AI 3D generation for Blender, with fast drafts and batch production.

Registration wiring only; the engine lives in `addon/`, the Blender classes in `operators/` and `ui/`.
"""

import bpy

from . import operators, ui
from .addon.batch import cli as batch_cli
from .addon.blender import batch_run, runtime

_cli_handle = None


def _cli(argv: list[str]) -> int:
    """`blender -c kiln batch MANIFEST …`: the same code path as scripts/kiln_batch.py (Blender's half
    injected as the runner), and keys are found the same way (the environment, then these preferences)."""
    return batch_cli.cli_command(list(argv), runner=batch_run, online_access=bpy.app.online_access,
                                 backends=ui.preferences.installed_engine_settings().backends)


def register() -> None:
    global _cli_handle
    ui.register()
    operators.register()
    runtime.register(__package__, ui.preferences.installed_engine_settings())
    _cli_handle = bpy.utils.register_cli_command("kiln", _cli)


def unregister() -> None:
    global _cli_handle
    # Stop the engine first, so no timer fires into classes that are being removed.
    runtime.unregister()
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    operators.unregister()
    ui.unregister()
