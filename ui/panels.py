# mypy: disable-error-code="union-attr,attr-defined,override,arg-type"
"""The "Kiln" sidebar tab in the 3D Viewport. Drawing only: every decision lives in addon/."""

from __future__ import annotations

import bpy

from ..addon.blender import runtime
from ..addon.presentation import job_row

MAX_QUEUE_ROWS = 12


class KILN_PT_generate(bpy.types.Panel):
    bl_idname = "KILN_PT_generate"
    bl_label = "Kiln"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Kiln"

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.kiln
        layout = self.layout
        layout.row().prop(settings, "mode", expand=True)
        layout.prop(settings, "backend")
        if settings.mode == "PRODUCTION":
            layout.prop(settings, "target")
        layout.prop(settings, "prompt", text="")
        row = layout.row(align=True)
        row.prop(settings, "options")
        row.prop(settings, "seed")
        layout.operator("kiln.generate", icon="PLAY")
        layout.operator("kiln.generate_from_images", icon="IMAGE_DATA")


class KILN_PT_queue(bpy.types.Panel):
    bl_idname = "KILN_PT_queue"
    bl_label = "Queue"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Kiln"
    bl_parent_id = "KILN_PT_generate"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        if not runtime.is_running():
            layout.label(text="Kiln is not running", icon="ERROR")
            return
        scheduler = runtime.scheduler()
        jobs = scheduler.snapshot()[-MAX_QUEUE_ROWS:]
        if not jobs:
            layout.label(text="No jobs yet")
            return
        for job in reversed(jobs):
            row_data = job_row(job, scheduler.eta(job.job_id))
            box = layout.box()
            box.label(text=row_data.title, icon=row_data.icon)
            if row_data.can_cancel and row_data.progress > 0:
                box.progress(factor=row_data.progress, type="BAR", text=row_data.status)
            else:
                box.label(text=row_data.status)


classes = (KILN_PT_generate, KILN_PT_queue)
register, unregister = bpy.utils.register_classes_factory(classes)
