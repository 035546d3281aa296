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
    can_import_anyway: bool = False
    needs_confirmation: bool = False
    """Retry sends a create that may already have been paid for: the button asks first."""
    attempt: int = 1
    """Which attempt at this asset the row shows (a retry replaces its row; earlier ones are inside)."""


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
    JobState.UNCERTAIN: "QUESTION",
}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"~{max(1, round(seconds))}s"
    return f"~{round(seconds / 60)}m"


def job_status(job: JobView) -> str:
    """The row's one line: what the job is doing, or what went wrong and what it cost."""
    if job.state is JobState.CANCELLED and job.result_kept:
        return f"cancelled, import anyway ({job.credits_spent:g} credits)"
    if job.state is JobState.UNCERTAIN:
        return f"uncertain: may have been charged ~{job.credits_estimated:g} credits; check the provider"
    if job.cancel_requested:
        return f"cancelling (the provider may finish it: ~{job.credits_estimated:g} credits, result kept)"
    if job.state is JobState.RUNNING and job.eta_s:
        return f"running {format_eta(job.eta_s)}"
    if job.state is JobState.QUEUED and job.eta_s and not job.note:
        return f"queued {format_eta(job.eta_s)}"
    if job.error is not None:
        return job.error.message
    if job.state is JobState.QUEUED and job.note:
        return job.note
    if job.warnings:
        return f"{job.state.value}: {job.warnings[0]}"
    return job.state.value


def double_charge_question(job: JobView) -> str:
    """What the Retry confirmation of an uncertain job says: the possible double charge, by name and cost."""
    return (f"'{job.label}' may already have been created and charged on {job.spec.backend} "
            f"(~{job.credits_estimated:g} credits), but Kiln never got its task id. Sending it again may "
            "charge twice: check the provider's dashboard first.")


def job_row(job: JobView) -> JobRow:
    title = job.label if len(job.label) <= 40 else job.label[:39] + "…"
    return JobRow(
        job_id=job.job_id,
        title=title,
        status=job_status(job),
        progress=job.progress,
        icon=_ICONS[job.state],
        can_cancel=job.can_cancel,
        can_retry=job.can_retry,
        can_import_anyway=job.can_import_anyway,
        needs_confirmation=job.needs_confirmation,
        attempt=len(job.attempts) + 1,
    )
