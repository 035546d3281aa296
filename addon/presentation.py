"""What the queue shows for its jobs, as plain data, so panels only lay it out.

A row must read at the default sidebar width (about 280 px): a short title with the part that tells
rows apart first, a status short enough for its own column, and one icon per `RowState`. The full text
(whole prompt, name, cost, the complete message) is the row's tooltip. Counts in the header are
counted from the same rows, so they always add up to what the list shows.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from .jobs import TITLE, JobError, JobState, JobView, Mode

TITLE_CHARS = 28
"""Titles longer than this end in "…" (Blender clips further at a narrower width, from the end: the
distinguishing part comes first, so it is what stays)."""
STATUS_CHARS = 14
"""No status is longer, so the status column is never cut (the Blender tests measure the pixels)."""


class RowState(enum.StrEnum):
    """What a row is, as the artist tells rows apart: one icon and one header count each. Finer than
    `JobState` where the artist needs it (a finished result with warnings, a kept paid result)."""

    QUEUED = "queued"
    SENDING = "sending"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    IMPORTING = "importing"
    FINISHING = "finishing"
    FINISHED = "finished"
    WARNINGS = "with warnings"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    CANCELLED = "cancelled"
    KEPT = "kept"


ICONS: Mapping[RowState, str] = {
    RowState.QUEUED: "TIME",
    RowState.SENDING: "EXPORT",
    RowState.RUNNING: "PLAY",
    RowState.DOWNLOADING: "IMPORT",
    RowState.IMPORTING: "APPEND_BLEND",
    RowState.FINISHING: "MODIFIER",
    RowState.FINISHED: "CHECKMARK",
    RowState.WARNINGS: "ERROR",  # Blender's warning triangle (its reports use it for WARNING)
    RowState.FAILED: "CANCEL",  # Blender's error icon (its reports use it for ERROR)
    RowState.UNCERTAIN: "QUESTION",
    RowState.CANCELLED: "X",
    RowState.KEPT: "PACKAGE",
}

_STATE_OF: Mapping[JobState, RowState] = {
    JobState.QUEUED: RowState.QUEUED,
    JobState.SUBMITTING: RowState.SENDING,
    JobState.RUNNING: RowState.RUNNING,
    JobState.DOWNLOADING: RowState.DOWNLOADING,
    JobState.READY: RowState.IMPORTING,
    JobState.IMPORTED: RowState.FINISHING,
    JobState.FINISHED: RowState.FINISHED,
    JobState.FAILED: RowState.FAILED,
    JobState.UNCERTAIN: RowState.UNCERTAIN,
    JobState.CANCELLED: RowState.CANCELLED,
}


@dataclass(frozen=True)
class JobRow:
    job_id: str
    title: str
    """Short: the part that tells this row from the others first (see `row_titles`)."""
    status: str
    """At most `STATUS_CHARS`: what the job is doing, or the short reason it stopped."""
    progress: float
    icon: str
    can_cancel: bool
    can_retry: bool
    can_import_anyway: bool = False
    needs_confirmation: bool = False
    """Retry sends a create that may already have been paid for: the button asks first."""
    attempt: int = 1
    """Which attempt at this asset the row shows (a retry replaces its row; earlier ones are inside)."""
    state: RowState = RowState.QUEUED
    batch: str = ""
    credits_spent: float = 0.0
    credits_estimated: float = 0.0


def row_state(job: JobView) -> RowState:
    if job.state is JobState.FINISHED and job.warnings:
        return RowState.WARNINGS
    if job.state is JobState.CANCELLED and job.result_kept:
        return RowState.KEPT
    return _STATE_OF[job.state]


def format_eta(seconds: float | None) -> str:
    """"~12 s", "~3 min", "~2 h": always with a unit; empty when not known."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"~{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min"
    return f"~{round(seconds / 3600)} h"


# Kiln's own failure codes, and the usual provider phrases, in words that fit the status column.
_SHORT_CODES = {
    "over_budget": "over budget", "unreachable": "unreachable", "unknown_task": "task unknown",
    "journal_unwritable": "journal error", "internal_error": "Kiln error", "unknown_backend": "no backend",
    "result_missing": "result missing", "import_failed": "import failed", "no_key": "no key",
}
_SHORT_PHRASES = (  # first match wins: the specific before the general
    ("credit", "no credits"), ("key rejected", "key rejected"), ("does not know this task", "task unknown"),
    ("content policy", "refused"), ("concurrency", "no free slot"), ("rate limit", "rate limited"),
    ("expired", "expired"), ("server error", "server error"), ("too complex", "too complex"),
    ("deprecated", "deprecated"), ("not support", "unsupported"), ("forbids", "forbidden"),
    ("download", "no download"), ("uploaded file", "bad upload"), ("audit", "audit failed"),
    ("request", "bad request"), ("source task", "bad source"),
)


def short_reason(error: JobError | None) -> str:
    """Why a job failed, in at most `STATUS_CHARS` (the whole message is in the tooltip)."""
    if error is None:
        return "failed"
    if error.code in _SHORT_CODES:
        return _SHORT_CODES[error.code]
    first = re.split(r"[:;(]| - ", error.message, maxsplit=1)[0].strip()
    if first and len(first) <= STATUS_CHARS:
        return first
    lowered = error.message.lower()
    return next((short for phrase, short in _SHORT_PHRASES if phrase in lowered), "failed")


def short_status(job: JobView, *, paused: bool = False) -> str:
    """The row's status column: at most `STATUS_CHARS`, with units on times. `paused`: production is
    paused, so a queued production job waits for Resume, whatever its ETA would be."""
    state = row_state(job)
    eta = format_eta(job.eta_s) if job.eta_s else ""
    if job.cancel_requested:
        return "cancelling"
    if state is RowState.QUEUED:
        if job.note:
            return "waiting"
        if paused and job.spec.mode is Mode.PRODUCTION:
            return "paused"
        return f"in {eta}" if eta else "queued"  # the clock icon says queued; the tooltip says more
    if state is RowState.RUNNING:
        percent = f"{round(job.progress * 100)}%" if job.progress > 0 else ""
        return " ".join(part for part in (percent, eta) if part) or "running"
    if state is RowState.FAILED:
        return short_reason(job.error)
    if state is RowState.UNCERTAIN:
        return "uncertain"  # its Retry button asks before a possible double charge
    if state is RowState.KEPT:
        return f"kept ({job.credits_spent:g} cr)"
    if state is RowState.WARNINGS:
        return "done, warnings"
    return state.value


def job_status(job: JobView, *, paused: bool = False) -> str:
    """The whole status, for the tooltip: what the job is doing, or what went wrong and what it cost."""
    if paused and job.state is JobState.QUEUED and job.spec.mode is Mode.PRODUCTION and not job.note:
        return "queued: production is paused; Resume sends it"
    if job.state is JobState.CANCELLED and job.result_kept:
        return f"cancelled, import anyway ({job.credits_spent:g} credits)"
    if job.state is JobState.UNCERTAIN:
        return f"uncertain: may have been charged ~{job.credits_estimated:g} credits; check the provider"
    if job.cancel_requested:
        return f"cancelling (the provider may finish it: ~{job.credits_estimated:g} credits, result kept)"
    if job.state is JobState.RUNNING and job.eta_s:
        return f"running, {round(job.progress * 100)}% done, {format_eta(job.eta_s)} left"
    if job.state is JobState.QUEUED and job.eta_s and not job.note:
        return f"queued, ready in {format_eta(job.eta_s)}"
    if job.error is not None:
        return job.error.message
    if job.state is JobState.QUEUED and job.note:
        return job.note
    if job.warnings:
        return f"{job.state.value}: {'; '.join(job.warnings)}"
    return job.state.value


def double_charge_question(job: JobView) -> str:
    """What the Retry confirmation of an uncertain job says: the possible double charge, by name and cost."""
    return (f"'{job.label}' may already have been created and charged on {job.spec.backend} "
            f"(~{job.credits_estimated:g} credits), but Kiln never got its task id. Sending it again may "
            "charge twice: check the provider's dashboard first.")


# ------------------------------------------------------------------------------------------- titles
def subject(job: JobView) -> str:
    """What the job makes, in full: its label ("Camera: <name>" for a capture), with an image job's
    input paths shortened to their file names."""
    if not job.spec.prompt and not job.spec.params_dict.get(TITLE) and job.spec.image_paths:
        return ", ".join(PurePath(path).stem for path in job.spec.image_paths)
    return job.label


_NUMBER = re.compile(r"_(\d{3})(?:_v(\d+))?$")


def _number(job: JobView) -> str:
    """"#3", "#3 v2": the asset's place in its batch, from its name (`env_car_01_003_v2`)."""
    found = _NUMBER.search(job.spec.name)
    if found is None:
        return f"#{job.spec.index + 1}" + (f" v{job.spec.option + 1}" if job.spec.option else "")
    number = f"#{int(found.group(1))}"
    return f"{number} v{found.group(2)}" if found.group(2) else number


_JOINERS = frozenset({"a", "an", "and", "for", "in", "of", "on", "the", "with", "without"})


def _shared_words(texts: Sequence[str]) -> int:
    """How many leading words all `texts` share (the batch's base prompt). A shared joining word at the
    end stays with the variation: "sci-fi car" + "with vents" / "with lights" reads "with vents"."""
    split = [text.split() for text in texts]
    shared = 0
    for words in zip(*split, strict=False):
        if any(word != words[0] for word in words):
            break
        shared += 1
    while shared and split[0][shared - 1].lower() in _JOINERS:
        shared -= 1
    return shared


def _clip(text: str, limit: int = TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def row_titles(jobs: Sequence[JobView]) -> dict[str, str]:
    """Short titles that tell rows apart: within a batch the shared base prompt is dropped ("with vents",
    not "sci-fi car with…"), and rows that would still read alike get their number ("#3 v2")."""
    subjects = {job.job_id: subject(job) for job in jobs}
    by_batch: dict[str, list[JobView]] = {}
    for job in jobs:
        if job.spec.batch:
            by_batch.setdefault(job.spec.batch, []).append(job)
    titles = dict(subjects)
    for members in by_batch.values():
        texts = [subjects[job.job_id] for job in members]
        if len(set(texts)) < 2:
            continue
        shared = _shared_words(texts)
        for job in members:
            rest = " ".join(subjects[job.job_id].split()[shared:])
            if rest:
                titles[job.job_id] = rest
    alike = Counter(titles.values())
    by_id = {job.job_id: job for job in jobs}
    numbered = {job_id: _number(by_id[job_id]) for job_id, title in titles.items() if alike[title] > 1}
    return {job_id: (f"{_clip(title, TITLE_CHARS - len(numbered[job_id]) - 1)} {numbered[job_id]}"
                     if job_id in numbered else _clip(title))
            for job_id, title in titles.items()}


# ------------------------------------------------------------------------------------------- rows
def job_rows(jobs: Sequence[JobView], *, paused: bool = False) -> list[JobRow]:
    """The queue's rows, oldest first: a row keeps its place while its job moves on, new jobs are added
    at the bottom, and a retry stays where the attempt it replaced was (ordered by its first attempt)."""
    ordered = sorted(jobs, key=lambda job: job.attempts[0].created_at if job.attempts else job.created_at)
    titles = row_titles(ordered)
    return [job_row(job, titles[job.job_id], paused=paused) for job in ordered]


def job_row(job: JobView, title: str | None = None, *, paused: bool = False) -> JobRow:
    state = row_state(job)
    return JobRow(
        job_id=job.job_id,
        title=title if title is not None else _clip(subject(job)),
        status=short_status(job, paused=paused),
        progress=job.progress,
        icon=ICONS[state],
        can_cancel=job.can_cancel,
        can_retry=job.can_retry,
        can_import_anyway=job.can_import_anyway,
        needs_confirmation=job.needs_confirmation,
        attempt=len(job.attempts) + 1,
        state=state,
        batch=job.spec.batch,
        credits_spent=job.credits_spent,
        credits_estimated=job.credits_estimated,
    )


def job_tooltip(job: JobView, *, paused: bool = False) -> str:
    """Everything a row leaves out: the whole subject, its name and batch, the full status, the cost."""
    lines = [subject(job)]
    where = f"{job.spec.mode.value} on {job.spec.backend}"
    lines.append(f"{job.spec.name} ({where})" if job.spec.name else where)
    if job.spec.batch:
        lines.append(f"Batch: {job.spec.batch}")
    lines.append(f"Status: {job_status(job, paused=paused)}")
    if job.credits_spent:
        lines.append(f"Credits: {job.credits_spent:g} charged")
    elif job.credits_estimated:
        lines.append(f"Credits: ~{job.credits_estimated:g} estimated")
    if job.attempts:
        lines.append(f"Attempt {len(job.attempts) + 1}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- header
@dataclass(frozen=True)
class QueueHeader:
    counts: tuple[tuple[RowState, int], ...] = ()
    """Rows per state, in the order a job goes through them; only states with rows."""
    batch: str = ""
    """The newest row's batch ("" for drafts)."""
    batch_spent: float = 0.0
    session_spent: float = 0.0
    costs: bool = False
    """Anything in the queue or the session costs credits (a free backend shows no spend)."""

    def count_texts(self) -> list[tuple[str, str]]:
        """(text, icon) per state with rows: "3 finished", "1 with warnings"."""
        return [(f"{count} {state.value}", ICONS[state]) for state, count in self.counts]

    def spend_texts(self) -> list[str]:
        """What the newest rows' batch (or the drafts, when the newest row is one) and the whole session
        spent, in credits charged."""
        if not self.costs:
            return []
        session = f"This session: {self.session_spent:g} credits"
        if not self.counts:
            return [session]
        # Not the batch's name: it would not fit the sidebar; the newest rows are the batch meant.
        return [f"{'This batch' if self.batch else 'Drafts'}: {self.batch_spent:g} credits", session]


def queue_header(rows: Sequence[JobRow], session_spent: float) -> QueueHeader:
    """The header for exactly these rows (so its counts add up to them) and the session's spend."""
    counted = Counter(row.state for row in rows)
    batch = rows[-1].batch if rows else ""
    batch_spent = sum(row.credits_spent for row in rows if row.batch == batch)
    costs = session_spent > 0 or any(row.credits_spent or row.credits_estimated for row in rows)
    return QueueHeader(tuple((state, counted[state]) for state in RowState if counted[state]), batch,
                       batch_spent, session_spent, costs)
