# mypy: disable-error-code="attr-defined,override,misc,operator,index"
"""The Queue sub-panel: one row per job, mirrored from the engine into WindowManager rows."""

from __future__ import annotations

from typing import Any

import bpy

from ..addon.blender import runtime
from ..addon.jobs import JobState
from ..addon.presentation import job_row
from .panels import _KilnPanel, panel_layout, set_props

MAX_QUEUE_ROWS = 50


class KILN_UL_jobs(bpy.types.UIList):
    bl_idname = "KILN_UL_jobs"

    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: object, item: Any,
                  icon: int, active_data: object, active_propname: str, index: int = 0, flt_flag: int = 0) -> None:
        row = layout.row(align=True)
        title = f"{item.title} (attempt {item.attempt})" if item.attempt > 1 else item.title
        row.label(text=title, icon=item.icon)
        if item.can_cancel and item.progress > 0:
            row.progress(factor=item.progress, type="BAR", text=item.status)
        else:
            row.label(text=item.status)
        if item.can_cancel:
            set_props(row.operator("kiln.cancel_job", icon="X", text=""), job_id=item.job_id)
        elif item.can_import_anyway:
            set_props(row.operator("kiln.import_anyway", icon="IMPORT", text=""), job_id=item.job_id)
        elif item.can_retry:
            # An uncertain row's Retry asks first (its invoke names the possible double charge).
            set_props(row.operator("kiln.retry_job", icon="ERROR" if item.needs_confirmation else "FILE_REFRESH",
                                   text=""), job_id=item.job_id)


class KILN_PT_queue(_KilnPanel, bpy.types.Panel):
    bl_idname = "KILN_PT_queue"
    bl_order = 3  # sub-panels from two modules: the order is explicit
    bl_label = "Queue"
    bl_parent_id = "KILN_PT_generate"

    def draw(self, context: bpy.types.Context) -> None:
        layout = panel_layout(self)
        if not runtime.is_running():
            layout.label(text="Kiln's engine is not running", icon="ERROR")
            return
        scheduler = runtime.scheduler()
        summary = scheduler.summary()
        counts = summary.counts
        uncertain = f" · {summary.uncertain} uncertain" if summary.uncertain else ""
        layout.label(text=f"{summary.active} active · {counts[JobState.FINISHED]} done · "
                          f"{summary.failed} failed{uncertain}")
        if scheduler.journal_problems:
            count = len(scheduler.journal_problems)
            layout.label(text=f"{count} journal {'entry' if count == 1 else 'entries'} this Kiln cannot read "
                              "(kept, not acted on)", icon="ERROR")
        row = layout.row(align=True)
        if summary.production_paused:
            row.operator("kiln.resume_production", icon="PLAY", text="Resume")
        else:
            row.operator("kiln.pause_production", icon="PAUSE", text="Pause")
        row.operator("kiln.clear_finished", icon="TRASH", text="Clear")
        if not summary.total:
            layout.label(text="No jobs yet")
            return
        layout.template_list("KILN_UL_jobs", "", context.window_manager, "kiln_jobs", context.window_manager,
                             "kiln_jobs_index", rows=4)


def sync_job_rows() -> None:
    """Mirror the engine's jobs into the WindowManager rows the queue UIList shows (main thread;
    the pump calls this when something changed)."""
    wm = bpy.context.window_manager
    if wm is None or not hasattr(wm, "kiln_jobs") or not runtime.is_running():
        return
    jobs = runtime.scheduler().views(last=MAX_QUEUE_ROWS)
    rows = wm.kiln_jobs
    while len(rows) > len(jobs):
        rows.remove(len(rows) - 1)
    while len(rows) < len(jobs):
        rows.add()
    for row, job in zip(rows, reversed(jobs), strict=True):
        data = job_row(job)
        row.job_id, row.title, row.status, row.icon = data.job_id, data.title, data.status, data.icon
        row.progress, row.can_cancel, row.can_retry = data.progress, data.can_cancel, data.can_retry
        row.can_import_anyway, row.needs_confirmation, row.attempt = (data.can_import_anyway,
                                                                       data.needs_confirmation, data.attempt)


classes = (KILN_UL_jobs, KILN_PT_queue)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    runtime.add_listener(sync_job_rows)


def unregister() -> None:
    runtime.remove_listener(sync_job_rows)
    _unregister()
