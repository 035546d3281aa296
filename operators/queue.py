# mypy: disable-error-code="union-attr,attr-defined,override,arg-type,unreachable,misc"
"""Queue control: cancel, retry, pause and resume production, clear finished jobs."""

from __future__ import annotations

import bpy

from ..addon.blender import runtime
from .generate import engine_ready, engine_running


class _JobAction:
    """Shared by the per-row queue buttons: which job, and usable while the engine runs."""

    bl_options = {"REGISTER", "INTERNAL"}

    job_id: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_running(cls)


class KILN_OT_cancel_job(_JobAction, bpy.types.Operator):
    """Cancel this job (on the provider too, where it can cancel)"""

    bl_idname = "kiln.cancel_job"
    bl_label = "Cancel Job"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if runtime.scheduler().view(self.job_id) is None:
            self.report({"ERROR"}, "That job is no longer in the queue")
            return {"CANCELLED"}
        self.report({"INFO"}, runtime.scheduler().cancel(self.job_id))
        return {"FINISHED"}


class KILN_OT_retry_job(_JobAction, bpy.types.Operator):
    """Queue this failed or cancelled job again, with the same settings"""

    bl_idname = "kiln.retry_job"
    bl_label = "Retry Job"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            job = runtime.scheduler().retry(self.job_id)
        except (KeyError, ValueError) as exc:
            self.report({"ERROR"}, f"Cannot retry: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Kiln: queued '{job.label}' again")
        return {"FINISHED"}


class KILN_OT_pause_production(bpy.types.Operator):
    """Stop sending production jobs; running ones finish, drafts still run"""

    bl_idname = "kiln.pause_production"
    bl_label = "Pause Production"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_running(cls) and not runtime.scheduler().production_paused

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.scheduler().pause_production()
        self.report({"INFO"}, "Kiln: production paused; running jobs will finish")
        return {"FINISHED"}


class KILN_OT_resume_production(bpy.types.Operator):
    """Send queued production jobs again"""

    bl_idname = "kiln.resume_production"
    bl_label = "Resume Production"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_running(cls) and runtime.scheduler().production_paused

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.scheduler().resume_production()
        self.report({"INFO"}, "Kiln: production resumed")
        return {"FINISHED"}


class KILN_OT_clear_finished(bpy.types.Operator):
    """Remove finished, failed and cancelled jobs from the queue (the scene keeps its results)"""

    bl_idname = "kiln.clear_finished"
    bl_label = "Clear Finished"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_running(cls)

    def execute(self, context: bpy.types.Context) -> set[str]:
        removed = runtime.scheduler().clear_finished()
        self.report({"INFO"}, f"Kiln: cleared {removed} job(s)")
        return {"FINISHED"}


class KILN_OT_refresh_balance(bpy.types.Operator):
    """Ask the backend for the account's credit balance (in the background)"""

    bl_idname = "kiln.refresh_balance"
    bl_label = "Refresh Balance"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_ready(cls)

    def execute(self, context: bpy.types.Context) -> set[str]:
        runtime.scheduler().refresh_balance(context.scene.kiln.backend)
        return {"FINISHED"}


classes = (KILN_OT_refresh_balance, KILN_OT_cancel_job, KILN_OT_retry_job, KILN_OT_pause_production,
           KILN_OT_resume_production, KILN_OT_clear_finished)
register, unregister = bpy.utils.register_classes_factory(classes)
