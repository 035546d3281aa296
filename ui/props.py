# mypy: disable-error-code="attr-defined,override,misc,untyped-decorator"
"""Kiln's settings: per scene (mode, backend, prompt, batch) and the queue rows the panel lists."""

from __future__ import annotations

from typing import Any

import bpy

from ..addon.backends import registry
from ..addon.presets import PRESETS

_MODE_ITEMS = [
    ("DRAFT", "Draft", "Fastest usable shape, for ideation", "MESH_ICOSPHERE", 0),
    ("PRODUCTION", "Production", "Finished assets from queued batches", "OUTLINER_COLLECTION", 1),
]
_TARGET_ITEMS = [
    ("GAME", "Game", "Face budget, LODs, power-of-two textures"),
    ("FILM", "Film", "Keep detail, no LODs"),
]
_PRIORITY_ITEMS = [("HIGH", "High", ""), ("NORMAL", "Normal", ""), ("LOW", "Low", "")]
_CAPTURE_ITEMS = [
    ("BLENDER_WORKBENCH", "Workbench", "Fast flat render of the camera's framing"),
    ("EEVEE", "Eevee", "Shaded render"),
    ("CYCLES", "Cycles", "Path-traced render (slow)"),
]


def _backend_items(self: bpy.types.PropertyGroup, context: bpy.types.Context | None) -> list[tuple[str, str, str]]:
    return [(info.name, info.label, info.description) for info in registry.BACKENDS]


def _preset_items(self: bpy.types.PropertyGroup, context: bpy.types.Context | None) -> list[tuple[str, str, str]]:
    return [(name, name.replace("_", " ").title(), f"Finishing preset '{name}'") for name in PRESETS]


class KILN_TextItem(bpy.types.PropertyGroup):
    """One line of a list: a prompt variation or a part."""

    text: bpy.props.StringProperty(name="Text")  # type: ignore[valid-type]


class KILN_JobRow(bpy.types.PropertyGroup):
    """A queue row, mirrored from the engine by the pump on the main thread (UILists need RNA data)."""

    job_id: bpy.props.StringProperty()  # type: ignore[valid-type]
    title: bpy.props.StringProperty()  # type: ignore[valid-type]
    status: bpy.props.StringProperty()  # type: ignore[valid-type]
    icon: bpy.props.StringProperty(default="TIME")  # type: ignore[valid-type]
    progress: bpy.props.FloatProperty(min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    can_cancel: bpy.props.BoolProperty()  # type: ignore[valid-type]
    can_retry: bpy.props.BoolProperty()  # type: ignore[valid-type]
    can_import_anyway: bpy.props.BoolProperty()  # type: ignore[valid-type]
    needs_confirmation: bpy.props.BoolProperty()  # type: ignore[valid-type]
    attempt: bpy.props.IntProperty(default=1)  # type: ignore[valid-type]


class KILN_SceneSettings(bpy.types.PropertyGroup):
    mode: bpy.props.EnumProperty(name="Mode", items=_MODE_ITEMS, default="DRAFT")  # type: ignore[valid-type]
    backend: bpy.props.EnumProperty(name="Backend", items=_backend_items)  # type: ignore[valid-type]
    target: bpy.props.EnumProperty(name="Target", items=_TARGET_ITEMS, default="GAME")  # type: ignore[valid-type]
    face_budget: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Face Budget", description="Production results are decimated to at most this many faces",
        default=5000, min=100, soft_max=100000)
    texture_size: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Texture Size", items=[(str(s), str(s), "") for s in (512, 1024, 2048, 4096)], default="1024")
    finish_preset: bpy.props.EnumProperty(name="Finish", items=_preset_items)  # type: ignore[valid-type]
    prompt: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Prompt", description="What to generate, e.g. 'wooden crate with iron bands'")
    negative_prompt: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Negative Prompt", description="What to avoid (used by backends that support it)")
    options: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Options", description="Variants to generate for this prompt, to choose from", default=1, min=1, max=4)
    seed: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Seed", description="0 picks a new random seed for every generation", default=0, min=0)
    skip_flagged_images: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Skip Flagged Images", description="Generate from Images leaves out the images the pre-flight warns "
        "about (busy background, cropped subject, blur …)", default=False)
    capture_engine: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Capture With", items=_CAPTURE_ITEMS, default="BLENDER_WORKBENCH")
    batch_base: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Base Prompt", description="Shared by every variation and every part: each line of the lists "
        "below is sent after it, e.g. 'sci-fi panel' + 'with vents'")
    variations: bpy.props.CollectionProperty(type=KILN_TextItem)  # type: ignore[valid-type]
    variations_index: bpy.props.IntProperty()  # type: ignore[valid-type]
    parts: bpy.props.CollectionProperty(type=KILN_TextItem)  # type: ignore[valid-type]
    parts_index: bpy.props.IntProperty()  # type: ignore[valid-type]
    batch_name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Batch Name", description="Empty: named from the base prompt (env_sci_fi_panel_01)")
    priority: bpy.props.EnumProperty(name="Priority", items=_PRIORITY_ITEMS, default="NORMAL")  # type: ignore[valid-type]
    budget: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Credit Budget", description="Credits this batch may spend (0: no limit)", default=0.0, min=0.0)
    defaults_applied: bpy.props.BoolProperty(default=False, options={"HIDDEN"})  # type: ignore[valid-type]
    start_in_hours: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Start In (h)", description="Hours to hold the batch before it starts (off-peak runs); 0 starts now",
        default=0.0, min=0.0, max=72.0, step=25, precision=2)


classes = (KILN_TextItem, KILN_JobRow, KILN_SceneSettings)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def apply_default_settings() -> None:
    """Give scenes Kiln has not seen yet the default mode and target from the preferences."""
    from .. import __package__ as base_package

    preferences = bpy.context.preferences
    if preferences is None or base_package not in preferences.addons:
        return
    prefs: Any = preferences.addons[base_package].preferences  # Kiln's own AddonPreferences (ui/preferences.py)
    if prefs is None:
        return
    for scene in bpy.data.scenes:
        settings = scene.kiln
        if not settings.defaults_applied:
            settings.mode, settings.target = prefs.default_mode, prefs.default_target
            settings.defaults_applied = True


@bpy.app.handlers.persistent
def _on_load(*_args: object) -> None:
    apply_default_settings()


def register() -> None:
    _register()
    bpy.types.Scene.kiln = bpy.props.PointerProperty(type=KILN_SceneSettings)
    bpy.types.WindowManager.kiln_jobs = bpy.props.CollectionProperty(type=KILN_JobRow)
    bpy.types.WindowManager.kiln_jobs_index = bpy.props.IntProperty()
    if _on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load)


def unregister() -> None:
    if _on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load)
    del bpy.types.WindowManager.kiln_jobs_index
    del bpy.types.WindowManager.kiln_jobs
    del bpy.types.Scene.kiln
    _unregister()
