# mypy: disable-error-code="attr-defined,override"
"""Add-on preferences, grouped as the artist looks for them: Backends (each with its key and endpoint),
Scheduling, Storage and Defaults.

Keys live in Blender's user preferences, never in a .blend; an environment variable wins over the
field, so a farm can inject keys without touching preferences. Which backends have a key or an
endpoint, and under which names, comes from the backend registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy

from .. import __package__ as base_package
from ..addon.backends import registry
from ..addon.blender import runtime
from ..addon.blender.finish_pool import default_size
from ..addon.scheduling import SchedulerConfig
from .layout import prop_with_placeholder


def engine_settings(prefs: bpy.types.AddonPreferences | None) -> runtime.EngineSettings:
    """What the preferences ask of the engine: scheduling, the results folder, and every backend's key,
    endpoint and timeout (the environment first). Without preferences the environment alone decides."""
    if prefs is None:
        return runtime.EngineSettings(backends=registry.resolve_all())
    folder = bpy.path.abspath(prefs.cache_folder) if prefs.cache_folder else ""
    plans = {entry.name: int(getattr(prefs, plan_property(entry))) for entry in registry.BACKENDS
             if entry.needs_network}
    plans = {name: plan for name, plan in plans.items() if plan}  # 0: the provider's declared limit
    config = SchedulerConfig(draft_reserved_slots=prefs.draft_reserved_slots,
                             credit_reserve=float(prefs.credit_reserve),
                             concurrency_cap=prefs.concurrency_cap or None,
                             give_up_after_s=float(prefs.give_up_after_s), plan_concurrency=plans)
    values = {entry.name: {"api_key": getattr(prefs, entry.key_property) if entry.key_property else "",
                           "base_url": getattr(prefs, entry.url_property) if entry.url_property else ""}
              for entry in registry.BACKENDS}
    backends = registry.resolve_all(values, timeout_s=prefs.request_timeout_s)
    return runtime.EngineSettings(backends, config, Path(folder) if folder else None, prefs.finish_workers)


def installed_engine_settings() -> runtime.EngineSettings:
    """`engine_settings` for Kiln's own preferences, if the add-on has any yet. The add-on, the
    `blender -c kiln batch` command and scripts/kiln_batch.py all find keys through this."""
    preferences = bpy.context.preferences
    addon = preferences.addons.get(base_package) if preferences is not None else None
    return engine_settings(addon.preferences if addon is not None else None)


def refresh_engine_settings() -> None:
    """Read the preferences and the environment again: a key exported or typed since the last edit
    counts now, and an unchanged one rebuilds nothing. Buttons' poll() calls this, so what greys them
    (no key) is what a click would find."""
    runtime.settings_changed(installed_engine_settings())


def _settings_changed(self: bpy.types.AddonPreferences, context: bpy.types.Context) -> None:
    """Every engine setting takes effect at once (see `runtime.settings_changed`)."""
    runtime.settings_changed(engine_settings(self))


def plan_property(entry: registry.BackendInfo) -> str:
    """The preference holding a remote backend's plan concurrency (the tasks in flight its account allows)."""
    return f"{entry.name}_plan_concurrency"


def _backend_properties() -> dict[str, Any]:
    """A key field, an endpoint field and a plan concurrency per remote backend, named as the registry says."""
    properties: dict[str, Any] = {}
    for entry in registry.BACKENDS:
        if entry.needs_network:
            # The provider's declared limit is not read here: that would import the backend's module
            # (and its HTTP library) at every start.
            properties[plan_property(entry)] = bpy.props.IntProperty(
                name="Plan concurrency", description=f"Tasks in flight your {entry.label} plan allows (0: what "
                f"{entry.label} declares for its best plan); a refusal from the provider lowers it while Kiln runs",
                default=0, min=0, max=50, update=_settings_changed)
        if entry.key_property:
            properties[entry.key_property] = bpy.props.StringProperty(
                name=f"{entry.label} API key", description=f"Your {entry.label} key; {entry.key_variable} wins "
                "over this field", subtype="PASSWORD", update=_settings_changed)
        if entry.url_property and entry.url_list:
            properties[entry.url_property] = bpy.props.StringProperty(
                name=f"{entry.label} servers",
                description="Your servers' URLs, one per GPU box, separated by commas (http://gpu1:8081, "
                f"http://gpu2:8081): Kiln spreads jobs over them and moves work off one that fails; "
                f"{entry.url_variable} wins over this field", update=_settings_changed)
        elif entry.url_property:
            properties[entry.url_property] = bpy.props.StringProperty(
                name=f"{entry.label} endpoint",
                description=f"Where Kiln sends {entry.label} requests: only for a proxy or a self-hosted server "
                f"that speaks the {entry.label} API (empty: {entry.default_base_url}); {entry.url_variable} wins "
                "over this field", update=_settings_changed)
    return properties


class KILN_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = base_package

    # The backends' key and endpoint fields are added from the registry below the class.
    draft_reserved_slots: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Slots reserved for drafts",
        description="Concurrency slots per backend that production batches leave free, so a draft never waits",
        default=1, min=0, max=4, update=_settings_changed)
    credit_reserve: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Reserve for drafts",
        description="Credits production batches leave on each account, so a long batch never starves the drafts "
                    "you want tomorrow (a manifest sets its own with [batch] reserve); 0: no reserve",
        default=0.0, min=0.0, soft_max=10000.0, update=_settings_changed)
    finish_workers: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Finishing processes",
        description="Background Blender processes that finish Production results (remesh, bake, LODs) while "
                    "you keep working; 0 finishes them in this Blender, which pauses it for each asset",
        default=default_size(headless=False), min=0, max=32, update=_settings_changed)
    concurrency_cap: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Max jobs in flight", description="Per backend, for every backend, below each plan's own limit "
        "(0: each backend's plan concurrency)",
        default=0, min=0, max=50, update=_settings_changed)
    request_timeout_s: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Network timeout", description="Seconds to wait for a provider before treating a request as failed",
        default=30.0, min=5.0, max=300.0, subtype="TIME_ABSOLUTE", update=_settings_changed)
    give_up_after_s: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Give up after",
        description="A job the provider has not answered for this long fails; its paid task is kept, and "
                    "Retry fetches it without paying again",
        default=SchedulerConfig.give_up_after_s, min=10.0, max=3600.0, subtype="TIME_ABSOLUTE",
        update=_settings_changed)
    cache_folder: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Cache folder", description="Where results are downloaded (empty: the extension's user folder)",
        subtype="DIR_PATH", update=_settings_changed)
    default_mode: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Default mode", items=[("DRAFT", "Draft", ""), ("PRODUCTION", "Production", "")], default="DRAFT")
    default_target: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Default target", items=[("GAME", "Game", ""), ("FILM", "Film", "")], default="GAME")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        box = layout.box()
        box.label(text="Backends", icon="WORLD")
        for entry in registry.BACKENDS:  # only backends that exist: the registry is the list
            _draw_backend(box.column(), self, entry)
        box = layout.box()
        box.label(text="Scheduling", icon="SORTTIME")
        column = box.column()
        column.prop(self, "draft_reserved_slots")
        column.prop(self, "credit_reserve")
        column.prop(self, "concurrency_cap")
        column.prop(self, "request_timeout_s")
        column.prop(self, "give_up_after_s")
        column.prop(self, "finish_workers")
        box = layout.box()
        box.label(text="Storage", icon="FILE_FOLDER")
        box.prop(self, "cache_folder")
        box = layout.box()
        box.label(text="Defaults for new scenes", icon="SCENE_DATA")
        column = box.column()
        column.prop(self, "default_mode")
        column.prop(self, "default_target")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: remote backends are unavailable; Local still works",
                         icon="INTERNET_OFFLINE")


def _draw_backend(column: bpy.types.UILayout, prefs: Any, entry: registry.BackendInfo) -> None:
    """One backend's heading, then its own fields under it, never another backend's."""
    column.label(text=entry.label, icon="NETWORK_DRIVE" if entry.needs_network else "DESKTOP")
    if not entry.key_property and not entry.url_property:
        column.label(text=f"{entry.description}: nothing to set", icon="BLANK1")
        return
    fields = ((entry.key_property, entry.key_variable, "API Key", ""),
              (entry.url_property, entry.url_variable, "Servers" if entry.url_list else "Endpoint",
               "http://gpu1:8081, http://gpu2:8081" if entry.url_list else entry.default_base_url))
    for prop, variable, text, placeholder in fields:
        if not prop:
            continue
        row = column.row()
        row.enabled = not os.environ.get(variable)
        prop_with_placeholder(row, prefs, prop, placeholder, text=text)
        if os.environ.get(variable):
            column.label(text=f"Using {variable} from the environment", icon="INFO")
    if entry.needs_network:
        column.prop(prefs, plan_property(entry))
    if entry.url_property and entry.url_list:
        column.label(text="One URL per GPU box, separated by commas: jobs go to the least busy server",
                     icon="BLANK1")
    elif entry.url_property:
        column.label(text=f"Endpoint: only for a proxy or a self-hosted {entry.label}-compatible server; "
                          "leave it empty otherwise", icon="BLANK1")
    problem = runtime.backend_error(entry.name) if runtime.is_running() else None
    if problem is not None:
        column.label(text=problem.message, icon="ERROR")
    column.separator()


KILN_AddonPreferences.__annotations__.update(_backend_properties())

classes = (KILN_AddonPreferences,)
register, unregister = bpy.utils.register_classes_factory(classes)
