# mypy: disable-error-code="attr-defined,override,misc,operator,index"
"""The Queue sub-panel: one row per job, mirrored from the engine into WindowManager rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bpy

from ..addon.blender import runtime
from ..addon.presentation import JobRow, QueueHeader, job_rows, queue_header
from .layout import wrapped_label
from .panels import _KilnPanel, panel_layout, set_props

MAX_QUEUE_ROWS = 50


ROW_SPLIT = 0.55
"""The title's share of a row; the status column has the rest, less the action button. Every status fits
it at the default sidebar width (measured in the Blender tests), so it is never cut; a long title is,
and its tooltip has it whole."""


class KILN_UL_jobs(bpy.types.UIList):
    """One row per job: [icon + short title (click: select its object)] [status or progress] [action].
    Every button carries its own row's job id, so an action never lands on another row."""

    bl_idname = "KILN_UL_jobs"

    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: object, item: Any,
                  icon: int, active_data: object, active_propname: str, index: int = 0, flt_flag: int = 0) -> None:
        split = layout.split(factor=ROW_SPLIT, align=True)
        title = f"{item.title} ({item.attempt})" if item.attempt > 1 else item.title
        # The title is the select button: its tooltip (the operator's description) has the full text.
        cell = split.row(align=True)
        cell.alignment = "LEFT"  # read like a list, not centred like a button
        set_props(cell.operator("kiln.select_job", text=title, icon=item.icon, emboss=False), job_id=item.job_id)
        row = split.row(align=True)
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
        shown = _shown if _shown.engine == scheduler.serial else _Shown()
        header = shown.header
        if header.counts:
            counts = layout.grid_flow(row_major=True, columns=2, even_columns=True, align=True)
            for text, state_icon in header.count_texts():
                icon: Any = state_icon  # one of presentation.ICONS, all valid Blender icons (tested)
                counts.label(text=text, icon=icon)
        if shown.hidden:
            layout.label(text=f"Showing the newest {len(shown.rows)} of {len(shown.rows) + shown.hidden}")
        for text in header.spend_texts():
            layout.label(text=text)
        if scheduler.journal_problems:
            count = len(scheduler.journal_problems)
            layout.label(text=f"{count} journal {'entry' if count == 1 else 'entries'} this Kiln cannot read "
                              "(kept, not acted on)", icon="ERROR")
        if scheduler.read_only:
            wrapped_label(layout, context, scheduler.read_only, icon="LOCKED")
        row = layout.row(align=True)
        if scheduler.production_paused:
            row.operator("kiln.resume_production", icon="PLAY", text="Resume")
        else:
            row.operator("kiln.pause_production", icon="PAUSE", text="Pause")
        row.operator("kiln.clear_finished", icon="TRASH", text="Clear")
        if not shown.rows:
            layout.label(text="No jobs yet")
            return
        layout.template_list("KILN_UL_jobs", "", context.window_manager, "kiln_jobs", context.window_manager,
                             "kiln_jobs_index", rows=min(len(shown.rows), 8))


@dataclass(frozen=True)
class _Shown:
    """What the queue list holds, and the header computed from exactly those rows (draw() cannot
    write RNA, so the pump's sync leaves it here)."""

    rows: tuple[JobRow, ...] = ()
    header: QueueHeader = field(default_factory=QueueHeader)
    hidden: int = 0
    """Older jobs beyond `MAX_QUEUE_ROWS` the list leaves out (the header says so)."""
    engine: int = 0
    """Which engine these rows came from: a restarted engine shows nothing stale before its first sync."""


_shown = _Shown()


def sync_job_rows() -> None:
    """Mirror the engine's jobs into the WindowManager rows the queue UIList shows (main thread;
    the pump calls this when something changed). Rows are oldest first, so none moves while jobs change
    state or new ones arrive: new rows are added at the bottom."""
    global _shown
    wm = bpy.context.window_manager
    if wm is None or not hasattr(wm, "kiln_jobs") or not runtime.is_running():
        return
    scheduler = runtime.scheduler()
    views = scheduler.views(last=MAX_QUEUE_ROWS)
    data = job_rows(views, paused=scheduler.production_paused)
    hidden = max(0, scheduler.summary().total - len(views))
    _shown = _Shown(tuple(data), queue_header(data, scheduler.session_spent), hidden, scheduler.serial)
    rows = wm.kiln_jobs
    while len(rows) > len(data):
        rows.remove(len(rows) - 1)
    while len(rows) < len(data):
        rows.add()
    for row, shown in zip(rows, data, strict=True):
        row.job_id, row.title, row.status, row.icon = shown.job_id, shown.title, shown.status, shown.icon
        row.progress, row.can_cancel, row.can_retry = shown.progress, shown.can_cancel, shown.can_retry
        row.can_import_anyway, row.needs_confirmation, row.attempt = (shown.can_import_anyway,
                                                                       shown.needs_confirmation, shown.attempt)


classes = (KILN_UL_jobs, KILN_PT_queue)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    runtime.add_listener(sync_job_rows)


def unregister() -> None:
    runtime.remove_listener(sync_job_rows)
    _unregister()
