"""What the queue shows for a job, as plain data, so panels only lay it out."""

from __future__ import annotations

from dataclasses import dataclass

from .jobs import JobState, JobView


@dataclass(frozen=True)
class JobRow:
    job_id: str
    title: str
    status: str
    progress: float
    icon: str
    can_cancel: bool
    can_retry: bool


_ICONS = {
    JobState.QUEUED: "TIME",
    JobState.SUBMITTING: "EXPORT",
    JobState.RUNNING: "PLAY",
    JobState.DOWNLOADING: "IMPORT",
    JobState.READY: "CHECKMARK",
    JobState.IMPORTED: "CHECKMARK",
    JobState.FINISHED: "CHECKMARK",
    JobState.FAILED: "ERROR",
    JobState.CANCELLED: "CANCEL",
}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"~{max(1, round(seconds))}s"
    return f"~{round(seconds / 60)}m"


def job_row(job: JobView) -> JobRow:
    status = job.state.value
    if job.state is JobState.RUNNING and job.eta_s:
        status = f"running {format_eta(job.eta_s)}"
    elif job.state is JobState.QUEUED and job.eta_s:
        status = f"queued {format_eta(job.eta_s)}"
    elif job.error is not None:
        status = job.error.message
    elif job.warnings:
        status = f"{status}: {job.warnings[0]}"
    title = job.label if len(job.label) <= 40 else job.label[:39] + "…"
    return JobRow(
        job_id=job.job_id,
        title=title,
        status=status,
        progress=job.progress,
        icon=_ICONS[job.state],
        can_cancel=job.can_cancel,
        can_retry=job.can_retry,
    )
