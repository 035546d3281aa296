"""Kiln: AI 3D generation for Blender, with fast drafts and batch production.

Registration wiring only; the engine lives in `addon/`, the Blender classes in `operators/` and `ui/`.
"""

from pathlib import Path
from typing import Any

import bpy

from . import operators, ui
from .addon import batch
from .addon.blender import runtime
from .addon.scheduler import SchedulerConfig

_cli_handle = None


def _cli(argv: list[str]) -> int:
    """`blender -c kiln batch MANIFEST …`: the same code path as scripts/kiln_batch.py."""
    return batch.cli_command(list(argv), online_access=bpy.app.online_access)


def _scheduler_config() -> SchedulerConfig:
    """Scheduling settings from the add-on's preferences."""
    preferences = bpy.context.preferences
    addon = preferences.addons.get(__package__) if preferences is not None else None
    prefs: Any = addon.preferences if addon is not None else None
    if prefs is None:
        return SchedulerConfig()
    return SchedulerConfig(draft_reserved_slots=prefs.draft_reserved_slots,
                           concurrency_cap=prefs.concurrency_cap or None)


def _cache_folder() -> Path | None:
    """The results folder from the preferences, if the artist chose one."""
    preferences = bpy.context.preferences
    addon = preferences.addons.get(__package__) if preferences is not None else None
    prefs: Any = addon.preferences if addon is not None else None
    folder = bpy.path.abspath(prefs.cache_folder) if prefs is not None and prefs.cache_folder else ""
    return Path(folder) if folder else None


def register() -> None:
    global _cli_handle
    ui.register()
    operators.register()
    runtime.register(__package__, config=_scheduler_config(), cache_dir=_cache_folder())
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
