# mypy: disable-error-code="attr-defined,override,misc,operator,index"
"""The "Kiln" sidebar tab in the 3D Viewport. Drawing only: every decision lives in addon/.

Written for the default sidebar width (about 280 px at UI scale 1), where a property's inline label
gets some 15 characters before Blender cuts it with "…": a label that could be longer goes on its own
row above its field, and sentences wrap onto as many lines as they need (ui/layout.py). A button the
panel knows cannot run is grey, with the reason written under it (addon/blender/panel.py says why)."""

from __future__ import annotations

import time
from typing import Any

import bpy

from ..addon import preflight
from ..addon.backends import registry
from ..addon.blender import runtime
from ..addon.blender.assets import catalog_hint
from ..addon.blender.panel import (
    affordability,
    backend_problem,
    credit_text,
    export_problem,
    keep_option_problem,
    panel_request,
    parts_problem,
    promote_problem,
    prompt_findings,
    prompt_problem,
    scene_prompt_findings,
    scene_settings,
    selection_problem,
    taken_names,
    variations_problem,
)
from ..addon.blender.results import result_of
from ..addon.requests import Request, estimate, named_batch, text_request
from ..addon.validation import joined_prompt
from .layout import labelled, prop_with_placeholder, text_field, wrapped_label
from .preferences import refresh_engine_settings

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


def jobs_text(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


# ---------------------------------------------------------------------------------------------- money
def _estimate(context: bpy.types.Context, jobs: int) -> str:
    """What `jobs` text jobs with the panel's settings commit: built by the same request builder, and
    priced by the same backend estimate, as what the scheduler records when they are queued. "no
    credits" for a backend that charges none (Local); empty while the engine is not running."""
    if not runtime.is_running():
        return ""
    panel = panel_request(context.scene, options=1, seed=1)
    info = registry.find(panel.backend)
    if info is not None and not info.needs_key:
        return "no credits"
    backend = runtime.scheduler().backends.get(panel.backend)
    if backend is None:
        return ""
    return f"~{estimate(text_request(panel, 'estimate', ()), backend.estimate_credits) * jobs:g} credits"


def _balance_text(backend: str) -> str:
    """The credit balance of a backend that charges credits; empty for one that charges none (Local), and
    for a backend that cannot run (its reason is written under the buttons), except a missing key."""
    info = registry.find(backend)
    if not runtime.is_running() or info is None or not info.needs_key:
        return ""
    error = runtime.backend_error(backend)
    if error is not None:
        return "Balance: no key" if error.code == "no_key" else ""
    balances = runtime.scheduler().balances
    if backend not in balances:
        return "Balance: press refresh"
    value = balances[backend]
    if value is None:
        return ""
    if isinstance(value, str):
        return f"Balance unavailable: {value}"
    return f"Balance: {value:g} credits"


FINDING_ICONS = {preflight.Severity.ERROR: "ERROR", preflight.Severity.WARNING: "ERROR",
                 preflight.Severity.TIP: "INFO"}
MAX_FINDINGS_SHOWN = 3


def _findings(layout: Any, context: bpy.types.Context, findings: Any) -> None:
    """The pre-flight under the prompt: warnings, then tips, one wrapped line each (errors are the
    greyed button's reason, written once below it)."""
    shown = [f for f in findings if f.severity is not preflight.Severity.ERROR][:MAX_FINDINGS_SHOWN]
    for finding in shown:
        wrapped_label(layout, context, finding.line, icon=FINDING_ICONS[finding.severity])


def _list_warning(layout: Any, context: bpy.types.Context, settings: Any, base: str, items: Any) -> None:
    """The first pre-flight warning among the prompts a list sends (each prompt's check is cached)."""
    for item in items:
        prompt = joined_prompt(base, item.text)
        found = preflight.warnings(prompt_findings(prompt, str(settings.negative_prompt), str(settings.backend),
                                                   str(settings.mode).lower(), str(settings.target).lower()))
        if found:
            wrapped_label(layout, context, found[0].line, icon="ERROR")
            return


def _fits(context: bpy.types.Context, jobs: int) -> preflight.Affordable | None:
    """Whether `jobs` text jobs with the panel's settings fit the balance (less the reserve): what the
    operators' own check will find, said on the button."""
    if not runtime.is_running() or jobs <= 0:
        return None
    panel = panel_request(context.scene, options=1, seed=1)
    sample = text_request(panel, "estimate", ())
    return affordability(Request(sample.batch, sample.specs[:1] * jobs))


def _queue_button(layout: Any, context: bpy.types.Context, problem: str | None, operator: str, icon: str,
                  text: str, jobs: int) -> None:
    """A queueing button that says, when the balance cannot pay for all of it, how many jobs fit; pressing
    it then queues those (`only_affordable`), and the shortfall is written under it."""
    fit = _fits(context, jobs)
    if fit is not None and not fit.fits and problem is None:
        row = _greyed(layout, None if fit.count else fit.message())
        set_props(row.operator(operator, icon=icon, text=f"Queue {fit.count} of {jobs} That Fit"),
                  only_affordable=True)
        wrapped_label(layout, context, fit.message(), icon="ERROR")
        return
    _greyed(layout, problem).operator(operator, icon=icon, text=text)


def _start_text(hours: float) -> str:
    """When a held batch starts, with units and the clock time."""
    if hours <= 0:
        return "Starts now"
    minutes = round(hours * 60)
    spelled = " ".join(part for part in (f"{minutes // 60} h" if minutes >= 60 else "",
                                         f"{minutes % 60} min" if minutes % 60 else "") if part)
    return f"Starts in {spelled or '0 min'} (at {time.strftime('%H:%M', time.localtime(time.time() + hours * 3600))})"


def _sends(base: str, items: Any) -> str:
    """What the first line of a list sends: the base prompt and the line, as the operators join them."""
    lines = [joined_prompt(base, item.text) for item in items if item.text.strip()]
    if not lines:
        return ""
    more = f" and {len(lines) - 1} more" if len(lines) > 1 else ""
    return f"Sends \u201c{lines[0]}\u201d{more}"


def _greyed(layout: Any, problem: str | None) -> Any:
    """A row that is grey when the panel knows its button cannot run (the reason is drawn by the caller)."""
    row = layout.row(align=True)
    row.enabled = problem is None
    return row


# ---------------------------------------------------------------------------------------------- panels
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
        if info is not None and info.needs_key:  # Local charges nothing: no balance to refresh
            row.operator("kiln.refresh_balance", icon="FILE_REFRESH", text="")
        balance = _balance_text(settings.backend)
        if balance:
            wrapped_label(layout, context, balance)
        reserved = credit_text(str(settings.backend))
        if reserved:
            wrapped_label(layout, context, reserved)
        offline = info is not None and info.needs_network and not bpy.app.online_access
        if offline:
            wrapped_label(layout, context, "Online access is off: only Local runs", icon="INTERNET_OFFLINE")
        if settings.mode == "PRODUCTION":
            layout.prop(settings, "target")
            split = layout.split(factor=0.5, align=True)
            labelled(split, settings, "face_budget", "Face Budget")
            labelled(split, settings, "texture_size", "Texture Size")
            layout.prop(settings, "finish_preset")
        text_field(layout, settings, "prompt", "Prompt", "wooden crate with iron bands")
        if settings.prompt.strip():
            _findings(layout, context, scene_prompt_findings(settings))
        row = layout.row(align=True)
        row.prop(settings, "options")
        row.prop(settings, "seed")

        refresh_engine_settings()  # a key exported or typed since the last draw counts now
        problem = backend_problem(str(settings.backend))
        prompt = prompt_problem(settings.prompt, settings.negative_prompt, str(settings.backend))
        _queue_button(layout, context, prompt, "kiln.generate", "PLAY", "Generate", settings.options)
        column = layout.column(align=True)
        column.operator("kiln.generate_from_camera", icon="CAMERA_DATA")
        split = column.split(factor=0.45, align=True)
        split.label(text="Capture with")
        split.prop(settings, "capture_engine", text="")
        column = layout.column(align=True)
        set_props(column.operator("kiln.batch_images", icon="IMAGE_DATA"), skip_flagged=settings.skip_flagged_images)
        column.prop(settings, "skip_flagged_images", text="Skip Flagged")
        cost = _estimate(context, settings.options)
        if cost:
            wrapped_label(layout, context, f"Queues {jobs_text(settings.options)} per press, {cost}")
        if problem is not None and not offline:  # offline already says it above, where the backend is
            wrapped_label(layout, context, problem, icon="ERROR")
        elif prompt is not None:
            # Mid-sentence after "Generate:", unless it begins with a name ("Stability Fast 3D makes …").
            named = any(prompt.startswith(entry.label) for entry in registry.BACKENDS)
            wrapped_label(layout, context, f"Generate: {prompt if named else prompt[:1].lower() + prompt[1:]}",
                          icon="INFO")
        if context.scene is not None and context.scene.camera is None:
            wrapped_label(layout, context, "Generate from Camera: the scene has no active camera", icon="INFO")


class KILN_PT_negative(_KilnPanel, bpy.types.Panel):
    bl_idname = "KILN_PT_negative"
    bl_order = 1  # sub-panels from two modules: the order is explicit
    bl_label = "Negative Prompt"
    bl_parent_id = "KILN_PT_generate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout, settings = panel_layout(self), scene_settings(context.scene)
        # The panel's header is the label: the field takes the whole width.
        prop_with_placeholder(layout, settings, "negative_prompt", "blurry, low detail, text", text="")
        wrapped_label(layout, context, "Used by backends that support it", icon="INFO")


class KILN_UL_text_items(bpy.types.UIList):
    bl_idname = "KILN_UL_text_items"

    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: object, item: Any,
                  icon: int, active_data: object, active_propname: str, index: int = 0, flt_flag: int = 0) -> None:
        layout.prop(item, "text", text="", emboss=False)


def _list(layout: Any, settings: Any, target: str, title: str) -> None:
    """A titled list with its add and remove buttons beside it."""
    layout.label(text=title)
    row = layout.row()
    row.template_list("KILN_UL_text_items", target, settings, target, settings, f"{target}_index", rows=3)
    column = row.column(align=True)
    set_props(column.operator("kiln.list_edit", icon="ADD", text=""), target=target, action="ADD")
    set_props(column.operator("kiln.list_edit", icon="REMOVE", text=""), target=target, action="REMOVE")


class KILN_PT_batch(_KilnPanel, bpy.types.Panel):
    """The base prompt, then each list with its own button right under it (the Variations' Queue button
    is never below the Parts list), then the batch's settings in their own sub-panel."""

    bl_idname = "KILN_PT_batch"
    bl_order = 2  # sub-panels from two modules: the order is explicit
    bl_label = "Batch"
    bl_parent_id = "KILN_PT_generate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = scene_settings(context.scene)
        layout = panel_layout(self)
        base = " ".join(settings.batch_base.split())
        text_field(layout, settings, "batch_base", "Base Prompt", "sci-fi panel (every line adds to it)")
        backend = backend_problem(str(settings.backend))
        if backend is not None:  # once for both buttons, above them; each list's own reason goes under it
            wrapped_label(layout, context, backend, icon="ERROR")

        _list(layout, settings, "variations", "Variations")
        variations = [v for v in settings.variations if v.text.strip()]
        jobs = len(variations) * settings.options
        problem = variations_problem(settings)
        cost = _estimate(context, jobs)
        text = f"Queue {jobs_text(jobs)}" + (f" \u00b7 {cost}" if cost else "")
        _queue_button(layout, context, backend or problem, "kiln.batch_prompts", "OUTLINER_COLLECTION", text, jobs)
        if problem is not None:
            wrapped_label(layout, context, problem, icon="INFO")
        else:
            wrapped_label(layout, context, _sends(base, settings.variations))
            _list_warning(layout, context, settings, base, variations)

        _list(layout, settings, "parts", "Parts")
        parts = [p for p in settings.parts if p.text.strip()]
        problem = parts_problem(settings)
        cost = _estimate(context, len(parts))
        text = f"Generate {len(parts)} Part{'' if len(parts) == 1 else 's'}" + (f" \u00b7 {cost}" if cost else "")
        _queue_button(layout, context, backend or problem, "kiln.generate_parts", "GROUP", text, len(parts))
        if problem is not None:
            wrapped_label(layout, context, problem, icon="INFO")
        else:
            wrapped_label(layout, context, _sends(base, settings.parts) + (
                "" if base else " (no base prompt: each part alone)"))


class KILN_PT_batch_settings(_KilnPanel, bpy.types.Panel):
    bl_idname = "KILN_PT_batch_settings"
    bl_label = "Batch Settings"
    bl_parent_id = "KILN_PT_batch"

    def draw(self, context: bpy.types.Context) -> None:
        settings = scene_settings(context.scene)
        layout = panel_layout(self)
        base = " ".join(settings.batch_base.split())
        # The example is the very name the request builder would give the variations now.
        example = (named_batch(panel_request(context.scene, batch_name=""), base, taken_names(), prefix="env").name
                   if base else "env_<base prompt>_01")
        text_field(layout, settings, "batch_name", "Batch Name", f"empty: {example}")
        layout.prop(settings, "priority")
        layout.prop(settings, "budget")
        layout.prop(settings, "start_in_hours")
        wrapped_label(layout, context, _start_text(settings.start_in_hours), icon="TIME")


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
                wrapped_label(column, context, f"{label}: {obj[key]}")
        if obj.get("kiln_warnings"):
            wrapped_label(layout, context, str(obj["kiln_warnings"]), icon="ERROR")
        hint = catalog_hint()
        if hint:
            wrapped_label(layout, context, hint, icon="ASSET_MANAGER")
        reasons = []
        column = layout.column(align=True)  # one button a row: "Promote to Production" needs the width
        for operator, icon, problem in (("kiln.promote", "TRIA_UP", promote_problem(context)),
                                        ("kiln.keep_option", "CHECKMARK", keep_option_problem(context)),
                                        ("kiln.finish", "MODIFIER", selection_problem(context)),
                                        ("kiln.export_fbx", "EXPORT", export_problem(context))):
            _greyed(column, problem).operator(operator, icon=icon)
            if problem is not None and problem not in reasons:
                reasons.append(problem)
        for reason in reasons:
            wrapped_label(layout, context, reason, icon="INFO")


classes = (KILN_UL_text_items, KILN_PT_generate, KILN_PT_negative, KILN_PT_batch, KILN_PT_batch_settings,
           KILN_PT_result)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()


def unregister() -> None:
    _unregister()
