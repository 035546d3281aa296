# mypy: disable-error-code="attr-defined,override,unreachable"
"""Work on results: promote drafts, keep one option, finish and export the selection."""

from __future__ import annotations

import json

import bpy

from ..addon.blender.exporter import ExportError, export
from ..addon.blender.finishing import finish_object
from ..addon.blender.panel import (
    export_problem,
    keep_option_problem,
    panel_request,
    promote_problem,
    queue,
    scene_settings,
    selected_results,
    selection_problem,
    taken_names,
)
from ..addon.blender.results import kiln_roots, reject_other_options, result_of
from ..addon.presets import PRESETS
from ..addon.requests import promote_request
from .generate import engine_ready


def _poll(operator: type, problem: str | None) -> bool:
    """poll() with the panel's own sentence for why not (addon/blender/panel.py)."""
    if problem is not None:
        operator.poll_message_set(problem)
        return False
    return True


class KILN_OT_promote(bpy.types.Operator):
    """Regenerate the selected drafts as Production jobs with the same prompt and seed; each replaces
    its draft when done (the draft stays, hidden, in Kiln Drafts)"""

    bl_idname = "kiln.promote"
    bl_label = "Promote to Production"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_ready(cls) and _poll(cls, promote_problem(context))

    def execute(self, context: bpy.types.Context) -> set[str]:
        drafts = [o for o in selected_results(context) if o.get("kiln_mode") == "draft"]
        panel = panel_request(context.scene)
        taken = taken_names()
        errors: list[str] = []
        promoted = []
        for draft in drafts:
            try:
                stored = json.loads(str(draft.get("kiln_spec", "")))
                request = promote_request(panel, stored, draft.name, taken, str(draft.get("kiln_task_id", "")))
            except (ValueError, KeyError, TypeError):
                self.report({"WARNING"}, f"'{draft.name}' does not carry its request (made by an older Kiln); "
                                         "generate it again to promote it")
                continue
            taken |= {spec.name for spec in request.specs} | {request.batch.name if request.batch else ""}
            errors += queue(request)
            promoted.append(request)
        if not promoted:
            self.report({"ERROR"}, "Nothing to promote")
            return {"CANCELLED"}
        if errors:
            self.report({"ERROR"}, errors[0])
            return {"CANCELLED"}
        names = ", ".join(r.batch.name for r in promoted if r.batch)
        self.report({"INFO"}, f"Kiln: promoting {len(promoted)} draft(s) to Production ({names})")
        return {"FINISHED"}


class KILN_OT_keep_option(bpy.types.Operator):
    """Keep the selected option of a prompt; its other options move to the excluded 'Rejected' collection"""

    bl_idname = "kiln.keep_option"
    bl_label = "Keep This Option"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _poll(cls, keep_option_problem(context))

    def execute(self, context: bpy.types.Context) -> set[str]:
        kept = result_of(context.active_object)
        if kept is None:
            self.report({"ERROR"}, "Select the Kiln result to keep")
            return {"CANCELLED"}
        rejected = reject_other_options(kept)
        if not rejected:
            self.report({"WARNING"}, "This result has no other options to reject")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Kiln: kept {kept.name}; moved {len(rejected)} option(s) to Rejected")
        return {"FINISHED"}


class KILN_OT_finish(bpy.types.Operator):
    """Run the finishing preset (remesh, UV, bake, textures, LODs) on the selected results"""

    bl_idname = "kiln.finish"
    bl_label = "Finish Selected"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _poll(cls, selection_problem(context))

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = scene_settings(context.scene)
        preset = PRESETS[settings.finish_preset]
        results = selected_results(context)
        # Selecting an asset's LOD group now reaches its LOD0: finishing that again would nest a second
        # LOD chain inside the first, so finished results are skipped and named.
        done = [o for o in results if o.get("kiln_finished")]
        for obj in done:
            self.report({"WARNING"}, f"'{obj.name}' is already finished ('{obj['kiln_finished']}'): skipped")
        reports = [finish_object(o, preset, game=settings.target == "GAME") for o in results if o not in done]
        if not reports:
            self.report({"ERROR"}, "The selected results are already finished")
            return {"CANCELLED"}
        failed = [f"{r.asset}: {s.step}: {s.error}" for r in reports for s in r.steps if not s.ok]
        for message in failed:
            self.report({"WARNING"}, message)
        self.report({"INFO"}, f"Kiln: finished {len(reports)} asset(s) with '{preset.name}'"
                              + (f", {len(failed)} step(s) failed" if failed else ""))
        return {"FINISHED"}


class KILN_OT_export_fbx(bpy.types.Operator):
    """Export the selected results (with their LODs) as FBX, one file per asset or one per batch"""

    bl_idname = "kiln.export_fbx"
    bl_label = "Export FBX"
    bl_options = {"REGISTER"}

    directory: bpy.props.StringProperty(subtype="DIR_PATH")  # type: ignore[valid-type]
    per: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Files", items=[("asset", "One per Asset", ""), ("batch", "One per Batch", "")])
    preset: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Engine", items=[("unity", "Unity", ""), ("unreal", "Unreal", "")])
    gltf: bpy.props.BoolProperty(name="Also glTF", default=False)  # type: ignore[valid-type]
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _poll(cls, export_problem(context))

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if context.window_manager is None:
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        roots = kiln_roots(selected_results(context))
        try:
            written = export(roots, self.directory or "//exports", per=self.per, preset=self.preset,
                             gltf=self.gltf)
        except ExportError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Kiln: wrote {len(written)} file(s) to {self.directory or '//exports'}")
        return {"FINISHED"}


classes = (KILN_OT_promote, KILN_OT_keep_option, KILN_OT_finish, KILN_OT_export_fbx)
register, unregister = bpy.utils.register_classes_factory(classes)
