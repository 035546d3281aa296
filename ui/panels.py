# mypy: disable-error-code="attr-defined,override,misc,operator,index"
"""The "Kiln" sidebar tab in the 3D Viewport. Drawing only: every decision lives in addon/."""

from __future__ import annotations

from typing import Any

import bpy

from ..addon.backends import registry
from ..addon.blender import runtime
from ..addon.blender.panel import scene_settings
from ..addon.blender.results import result_of

RESULT_KEYS = (("Prompt", "kiln_prompt"), ("Seed", "kiln_seed"), ("Backend", "kiln_backend"),
               ("Mode", "kiln_mode"), ("Credits", "kiln_credits"), ("Time (s)", "kiln_generation_s"),
               ("Task", "kiln_task_id"))


def panel_layout(panel: bpy.types.Panel | bpy.types.UIList) -> bpy.types.UILayout:
    """The layout Blender gives a panel while drawing (typed: the stubs allow None, which draw() never sees)."""
    layout = getattr(panel, "layout", None)
    if layout is None:
        raise RuntimeError(f"{type(panel).__name__}.draw() called without a layout")
    return layout  # type: ignore[no-any-return]


def set_props(properties: Any, **values: Any) -> None:
    """Fill the properties of an operator button (None when Blender cannot make the button)."""
    if properties is None:
        return
    for name, value in values.items():
        setattr(properties, name, value)


class _KilnPanel:
    bl_space_type: str = "VIEW_3D"
    bl_region_type: str = "UI"
    bl_category = "Kiln"


def _estimate(context: bpy.types.Context, jobs: int) -> str:
    """What `jobs` text jobs with the panel's settings commit: built by the same request builder, and
    priced by the same backend estimate, as what the scheduler records when they are queued."""
    if not runtime.is_running():
        return ""
    from ..addon.blender.panel import panel_request
    from ..addon.requests import estimate, text_request

    panel = panel_request(context.scene, options=1, seed=1)
    backend = runtime.scheduler().backends.get(panel.backend)
    if backend is None:
        return ""
    return f"~{estimate(text_request(panel, 'estimate', ()), backend.estimate_credits) * jobs:g} credits"


def _balance_text(backend: str) -> str:
    if not runtime.is_running():
        return ""
    error = runtime.backend_error(backend)
    if error is not None:
        return "Balance: no key" if error.code == "no_key" else f"Balance unavailable: {error.message}"
    balances = runtime.scheduler().balances
    if backend not in balances:
        return "Balance: press refresh"
    value = balances[backend]
    if value is None:
        return "Balance: no credits needed"
    if isinstance(value, str):
        return f"Balance unavailable: {value}"
    return f"Balance: {value:g} credits"


class KILN_PT_generate(_KilnPanel, bpy.types.Panel):
    bl_idname = "KILN_PT_generate"
    bl_label = "Kiln"

    def draw(self, context: bpy.types.Context) -> None:
        settings = scene_settings(context.scene)
        layout = panel_layout(self)
        layout.row().prop(settings, "mode", expand=True)
        info = registry.find(settings.backend)
        row = layout.row(align=True)
        row.prop(settings, "backend", text="")
        row.operator("kiln.refresh_balance", icon="FILE_REFRESH", text="")
        layout.label(text=_balance_text(settings.backend))
        if info is not None and info.needs_network and not bpy.app.online_access:
            layout.label(text="Online access is off: only Local runs", icon="INTERNET_OFFLINE")
        if settings.mode == "PRODUCTION":
            layout.prop(settings, "target")
            row = layout.row(align=True)
            row.prop(settings, "face_budget")
            row.prop(settings, "texture_size", text="")
            layout.prop(settings, "finish_preset")
        layout.prop(settings, "prompt", text="")
        row = layout.row(align=True)
        row.prop(settings, "options")
        row.prop(settings, "seed")
        column = layout.column(align=True)
        column.operator("kiln.generate", icon="PLAY")
        column.operator("kiln.generate_from_camera", icon="CAMERA_DATA")
        column.operator("kiln.batch_images", icon="IMAGE_DATA")
        if settings.mode == "PRODUCTION":
            layout.label(text=f"Queues {settings.options} job(s), {_estimate(context, settings.options)}")


class KILN_PT_negative(_KilnPanel, bpy.types.Panel):
    bl_idname = "KILN_PT_negative"
    bl_order = 1  # sub-panels from two modules: the order is explicit
    bl_label = "Negative Prompt"
    bl_parent_id = "KILN_PT_generate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout, settings = panel_layout(self), scene_settings(context.scene)
        layout.prop(settings, "negative_prompt", text="")
        layout.prop(settings, "capture_engine")


class KILN_UL_text_items(bpy.types.UIList):
    bl_idname = "KILN_UL_text_items"

    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: object, item: Any,
                  icon: int, active_data: object, active_propname: str, index: int = 0, flt_flag: int = 0) -> None:
        layout.prop(item, "text", text="", emboss=False)


class KILN_PT_batch(_KilnPanel, bpy.types.Panel):
    bl_idname = "KILN_PT_batch"
    bl_order = 2  # sub-panels from two modules: the order is explicit
    bl_label = "Batch"
    bl_parent_id = "KILN_PT_generate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = scene_settings(context.scene)
        layout = panel_layout(self)
        layout.prop(settings, "batch_base")
        for target, title in (("variations", "Variations"), ("parts", "Parts")):
            layout.label(text=title)
            row = layout.row()
            row.template_list("KILN_UL_text_items", target, settings, target, settings, f"{target}_index", rows=3)
            column = row.column(align=True)
            set_props(column.operator("kiln.list_edit", icon="ADD", text=""), target=target, action="ADD")
            set_props(column.operator("kiln.list_edit", icon="REMOVE", text=""), target=target, action="REMOVE")
        layout.prop(settings, "batch_name")
        row = layout.row(align=True)
        row.prop(settings, "priority", text="")
        row.prop(settings, "budget")
        layout.prop(settings, "start_in_hours")
        jobs = len([v for v in settings.variations if v.text.strip()]) * settings.options
        layout.operator("kiln.batch_prompts", icon="OUTLINER_COLLECTION",
                        text=f"Queue {jobs} Job(s), {_estimate(context, jobs)}".rstrip(", "))
        layout.operator("kiln.generate_parts", icon="GROUP")


class KILN_PT_result(_KilnPanel, bpy.types.Panel):
    bl_idname = "KILN_PT_result"
    bl_order = 4  # sub-panels from two modules: the order is explicit
    bl_label = "Result"
    bl_parent_id = "KILN_PT_generate"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return result_of(context.active_object) is not None

    def draw(self, context: bpy.types.Context) -> None:
        obj = result_of(context.active_object)  # the LOD group, an LOD or a part shows its asset's result
        layout = panel_layout(self)
        if obj is None:
            return
        if obj.preview is not None:
            layout.template_icon(icon_value=obj.preview.icon_id, scale=5.0)
        column = layout.column(align=True)
        for label, key in RESULT_KEYS:
            if key in obj:
                column.label(text=f"{label}: {obj[key]}")
        if obj.get("kiln_warnings"):
            layout.label(text=str(obj["kiln_warnings"]), icon="ERROR")
        row = layout.row(align=True)
        row.operator("kiln.promote", icon="TRIA_UP")
        row.operator("kiln.keep_option", icon="CHECKMARK")
        row = layout.row(align=True)
        row.operator("kiln.finish", icon="MODIFIER")
        row.operator("kiln.export_fbx", icon="EXPORT")


classes = (KILN_UL_text_items, KILN_PT_generate, KILN_PT_negative, KILN_PT_batch, KILN_PT_result)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()


def unregister() -> None:
    _unregister()

