# mypy: disable-error-code="attr-defined,override,unreachable,misc"
"""Queue control: cancel, retry, import a kept result, pause and resume production, clear finished jobs."""

from __future__ import annotations

from typing import cast

import bpy

from ..addon.blender import runtime
from ..addon.blender.panel import scene_settings
from ..addon.blender.results import JOB_ID
from ..addon.jobs import DoubleChargeRisk, JobState, JobView
from ..addon.presentation import double_charge_question, job_tooltip
from ..addon.validation import InputError
from .generate import backend_ready, engine_ready, engine_running


class _OnJob:
    """Every per-row queue button: which job it acts on, and usable while the engine runs."""

    job_id: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_running(cls)


class _JobAction(_OnJob):
    """The row's action buttons (cancel, retry, import anyway): not undo steps of their own."""

    bl_options = {"REGISTER", "INTERNAL"}

    @classmethod
    def description(cls, context: bpy.types.Context, properties: bpy.types.OperatorProperties) -> str:
        """The button's own text, then which job it acts on in full (a row shows a short title)."""
        job = runtime.scheduler().view(properties.job_id) if runtime.is_running() else None
        what = (cls.__doc__ or "").strip()
        if job is None:
            return what
        return f"{what}\n\n{job_tooltip(job, paused=runtime.scheduler().production_paused)}"


class KILN_OT_select_job(_OnJob, bpy.types.Operator):
    """Select this job's result in the scene, make it active and frame it; a finished result missing
    from this file is brought in again from Kiln's cache (no new generation)"""

    bl_idname = "kiln.select_job"
    bl_label = "Select Result"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}  # unlike the other row buttons: a selection is undoable

    @classmethod
    def description(cls, context: bpy.types.Context, properties: bpy.types.OperatorProperties) -> str:
        """The row's whole text: its title and status are cut short to fit the sidebar."""
        job = runtime.scheduler().view(properties.job_id) if runtime.is_running() else None
        if job is None:
            return "This job is no longer in the queue"
        paused = runtime.scheduler().production_paused
        return (f"{job_tooltip(job, paused=paused)}\n\nClick to select and frame its result (if it is not in this "
                "file, it is brought in again from Kiln's cache, without a new generation)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = runtime.scheduler().view(self.job_id)
        # Every object the job imported (a segmented asset's parts each carry the id), in the scene's order.
        objects = [o for o in bpy.data.objects if o.get(JOB_ID) == self.job_id]
        if not objects and job is not None and context.mode == "OBJECT" and runtime.bring_back(self.job_id):
            # Not in this file (opened from before it landed, or lost in a crash before a save): the paid
            # result came back from the cache (never mid-edit: an import would drop the artist's mode).
            self.report({"INFO"}, f"Kiln: brought '{job.label}' in again from the cache (no new generation)")
            objects = [o for o in bpy.data.objects if o.get(JOB_ID) == self.job_id]
        if not objects:
            state = job.state.value if job is not None else "no longer in the queue"
            name = f"'{job.label}'" if job is not None else "This job"
            self.report({"WARNING"}, f"{name} has no object in the scene yet ({state})")
            return {"CANCELLED"}
        if context.mode != "OBJECT":  # changing the active object mid-edit would drop the artist's mode
            mode = context.mode.replace("_", " ").title()
            self.report({"WARNING"}, f"Leave {mode} mode to select '{objects[0].name}'")
            return {"CANCELLED"}
        view_layer = context.view_layer
        if view_layer is None:
            return {"CANCELLED"}
        selectable = [o for o in objects if o.name in view_layer.objects and o.visible_get()]
        if not selectable:
            self.report({"WARNING"}, f"'{objects[0].name}' is hidden or excluded from this view layer")
            return {"CANCELLED"}
        for obj in context.selected_objects:
            obj.select_set(False)
        for obj in selectable:
            obj.select_set(True)
        view_layer.objects.active = selectable[0]
        _frame_selected(context)
        return {"FINISHED"}


def _frame_selected(context: bpy.types.Context) -> None:
    """Frame the selection in the 3D view the button was clicked in (or the first one); nothing to
    frame in a background Blender."""
    screen = context.screen
    if screen is None:
        return
    areas = [context.area] if context.area is not None and context.area.type == "VIEW_3D" else []
    areas += [a for a in screen.areas if a.type == "VIEW_3D" and a not in areas]
    for area in areas:
        region = next((r for r in area.regions if r.type == "WINDOW"), None)
        if region is not None:
            with context.temp_override(area=area, region=region):
                bpy.ops.view3d.view_selected()
            return


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
    """Try this job again from where it stopped: a paid task is fetched again, never paid for twice"""

    bl_idname = "kiln.retry_job"
    bl_label = "Retry Job"

    confirm_double_charge: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Confirm Possible Double Charge",
        description="This job's create may already have been charged; send it again anyway",
        options={"SKIP_SAVE"})

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        job = runtime.scheduler().view(self.job_id)
        if job is not None and job.needs_confirmation and not self.confirm_double_charge:
            # Confirming runs execute with the flag set; dismissing the dialog sends nothing.
            wm = context.window_manager
            if wm is None:
                return self.execute(context)  # no window to ask in: execute refuses without the flag
            self.confirm_double_charge = True
            return cast(set[str], wm.invoke_confirm(
                self, event, title="Send Again? It May Charge Twice", message=double_charge_question(job),
                confirm_text="Send Again", icon="WARNING"))
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = _job_or_report(self)
        if job is None:
            return {"CANCELLED"}
        if job.needs_confirmation and not self.confirm_double_charge:
            self.report({"ERROR"}, f"Not sent: {double_charge_question(job)} Confirm to send it again.")
            return {"CANCELLED"}
        return _retry(self, job, confirm_double_charge=self.confirm_double_charge)


class KILN_OT_import_anyway(_JobAction, bpy.types.Operator):
    """Import the result of a cancelled task the provider finished, and charged for, anyway"""

    bl_idname = "kiln.import_anyway"
    bl_label = "Import Anyway"

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = _job_or_report(self)
        if job is None:
            return {"CANCELLED"}
        if not job.result_kept:
            self.report({"ERROR"}, f"'{job.label}' has no kept result to import")
            return {"CANCELLED"}
        return _retry(self, job, confirm_double_charge=False)


def _job_or_report(operator: bpy.types.Operator) -> JobView | None:
    job = runtime.scheduler().view(operator.job_id)
    if job is None:
        operator.report({"ERROR"}, "That job is no longer in the queue")
    return job


def _retry(operator: bpy.types.Operator, job: JobView, *, confirm_double_charge: bool) -> set[str]:
    """Retry (or import) through the one engine call; the backend is set up first if this session has
    not used it yet, so a job recovered from the journal can fetch its paid task."""
    scheduler = runtime.scheduler()
    try:
        if job.spec.backend not in scheduler.backends:
            backend_ready(job.spec.backend)
        again = scheduler.retry(job.job_id, confirm_double_charge=confirm_double_charge)
    except (InputError, DoubleChargeRisk, KeyError, ValueError) as exc:
        operator.report({"ERROR"}, f"Cannot retry: {exc}")
        return {"CANCELLED"}
    starts = {JobState.QUEUED: "queued again", JobState.RUNNING: "watching its task again (no new charge)",
              JobState.DOWNLOADING: "downloading its paid result again (no new charge)",
              JobState.READY: "importing its result from the cache (no new charge)"}
    operator.report({"INFO"}, f"Kiln: '{again.label}' {starts.get(again.state, again.state.value)}")
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
        runtime.scheduler().refresh_balance(scene_settings(context.scene).backend)
        return {"FINISHED"}


classes = (KILN_OT_refresh_balance, KILN_OT_select_job, KILN_OT_cancel_job, KILN_OT_retry_job, KILN_OT_import_anyway,
           KILN_OT_pause_production, KILN_OT_resume_production, KILN_OT_clear_finished)
register, unregister = bpy.utils.register_classes_factory(classes)
