# mypy: disable-error-code="union-attr,attr-defined,override,arg-type"
"""Add-on preferences: keys, endpoints, concurrency, cache folder, defaults.

Keys live in Blender's user preferences, never in a .blend; an environment variable wins over the
field, so a farm can inject keys without touching preferences.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from .. import __package__ as base_package
from ..addon.scheduling import SchedulerConfig

KEY_VARIABLES = {"tripo_api_key": "KILN_TRIPO_API_KEY", "meshy_api_key": "KILN_MESHY_API_KEY"}


def engine_settings(prefs: bpy.types.AddonPreferences | None) -> tuple[SchedulerConfig, Path | None]:
    """The scheduler settings and results folder the preferences ask for (defaults without them)."""
    if prefs is None:
        return SchedulerConfig(), None
    folder = bpy.path.abspath(prefs.cache_folder) if prefs.cache_folder else ""
    config = SchedulerConfig(draft_reserved_slots=prefs.draft_reserved_slots,
                             concurrency_cap=prefs.concurrency_cap or None)
    return config, Path(folder) if folder else None


def installed_engine_settings() -> tuple[SchedulerConfig, Path | None]:
    """`engine_settings` for Kiln's own preferences, if the add-on has any yet."""
    preferences = bpy.context.preferences
    addon = preferences.addons.get(base_package) if preferences is not None else None
    return engine_settings(addon.preferences if addon is not None else None)


def _restart_engine(self: bpy.types.AddonPreferences, context: bpy.types.Context) -> None:
    """Scheduling and cache settings take effect at once: restart the engine (what was running is
    journaled and reattached, so nothing is lost)."""
    from ..addon.blender import runtime

    if runtime.is_running():
        runtime.register_settings(*engine_settings(self))


class KILN_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = base_package

    tripo_api_key: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Tripo API key", description="Your Tripo key (tsk_…); KILN_TRIPO_API_KEY wins over this field",
        subtype="PASSWORD")
    meshy_api_key: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Meshy API key", description="Your Meshy key (msy_…); KILN_MESHY_API_KEY wins over this field",
        subtype="PASSWORD")
    self_hosted_url: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Self-hosted endpoint", description="Base URL of a self-hosted generation server (https://…)")
    draft_reserved_slots: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Slots reserved for drafts",
        description="Concurrency slots per backend that production batches leave free, so a draft never waits",
        default=1, min=0, max=4, update=_restart_engine)
    concurrency_cap: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Max jobs in flight", description="Per backend, below the provider's own limit (0: the provider's)",
        default=0, min=0, max=50, update=_restart_engine)
    request_timeout_s: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Network timeout", description="Seconds to wait for a provider before treating a request as failed",
        default=30.0, min=5.0, max=300.0, subtype="TIME_ABSOLUTE")
    cache_folder: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Cache folder", description="Where results are downloaded (empty: the extension's user folder)",
        subtype="DIR_PATH", update=_restart_engine)
    default_mode: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Default mode", items=[("DRAFT", "Draft", ""), ("PRODUCTION", "Production", "")], default="DRAFT")
    default_target: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Default target", items=[("GAME", "Game", ""), ("FILM", "Film", "")], default="GAME")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        column = layout.column(heading="API keys")
        for prop, variable in KEY_VARIABLES.items():
            row = column.row()
            row.enabled = not os.environ.get(variable)
            row.prop(self, prop)
            if os.environ.get(variable):
                column.label(text=f"Using {variable} from the environment", icon="INFO")
        column.prop(self, "self_hosted_url")
        column = layout.column(heading="Scheduling")
        column.prop(self, "draft_reserved_slots")
        column.prop(self, "concurrency_cap")
        column.prop(self, "request_timeout_s")
        column = layout.column(heading="Defaults")
        column.prop(self, "default_mode")
        column.prop(self, "default_target")
        column.prop(self, "cache_folder")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: remote backends are unavailable; Local still works",
                         icon="INTERNET_OFFLINE")


def api_key(preferences: KILN_AddonPreferences, prop: str) -> str:
    """The key for a provider: the environment variable first, then the preferences field."""
    return os.environ.get(KEY_VARIABLES[prop], "") or getattr(preferences, prop)


classes = (KILN_AddonPreferences,)
register, unregister = bpy.utils.register_classes_factory(classes)
