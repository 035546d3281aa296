"""Journal → jobs: what a restart does with each job the journal remembers.

Nothing recorded as sent is ever sent again. A running remote task is reattached (watched again), a
download is resumed, a result already in the cache waits for import, and a create interrupted
mid-flight is settled by asking the provider when it can tell; when it cannot, the job is UNCERTAIN:
it may have been charged, so it is never sent again without the artist's confirmation.
The engine applies the returned `Recovery` (slots, watchers, downloads, the ready queue); this
module only decides, and may ask a backend `find_submitted` (network I/O, so it runs before the
engine's threads start and outside its lock).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import Backend, BackendError
from ..jobs import Job, JobError, JobState, Stage

_log = logging.getLogger(__name__)


@dataclass
class Recovery:
    jobs: list[Job] = field(default_factory=list)
    """Every job of the journal, in its order, with its state settled."""
    records: list[tuple[Job, bool]] = field(default_factory=list)
    """Jobs whose state changed, for the journal: (job, durable)."""
    running: list[Job] = field(default_factory=list)
    """Tasks still on the provider: count their slot and watch them."""
    downloading: list[Job] = field(default_factory=list)
    """Tasks done on the provider whose download did not finish: download again."""
    ready: list[str] = field(default_factory=list)
    """Results in the cache that the pump has not imported yet."""


def recover(jobs: Iterable[Job], backends: Mapping[str, Backend]) -> Recovery:
    result = Recovery()
    for job in jobs:
        result.jobs.append(job)
        if job.state.is_terminal or job.state is JobState.IMPORTED:
            continue
        backend = backends.get(job.spec.backend)
        if backend is None:
            # Its stage and task id are kept: once the backend is set up, Retry picks up where it stopped.
            paid = " without paying again" if job.task_id else ""
            job.fail("unknown_backend", f"backend '{job.spec.backend}' is not available after restart (a key, "
                     f"or online access?); Retry continues this job once it is{paid}")
            result.records.append((job, False))
            continue
        if not backend.capabilities.durable_tasks and job.state in (
            JobState.SUBMITTING, JobState.RUNNING, JobState.DOWNLOADING
        ):
            # The embedded engine's work died with the process; it cost nothing, so start again.
            # (Set directly: "back to queued" is not a move a live job may make.)
            job.state, job.task_id, job.progress, job.stage = JobState.QUEUED, None, 0.0, Stage.NONE
            result.records.append((job, False))
            continue
        if job.state is JobState.SUBMITTING and job.task_id is None:
            if job.stage is Stage.NONE:
                # Picked for sending, but its create never went out (no intent was written): send it.
                job.move_to(JobState.QUEUED)
                result.records.append((job, False))
                continue
            result.records.append((job, settle_interrupted_submit(job, backend)))
        if job.state is JobState.RUNNING:
            result.running.append(job)
        elif job.state is JobState.DOWNLOADING:
            result.downloading.append(job)
        elif job.state is JobState.READY:
            if all(Path(p).exists() for p in job.files.values()):
                result.ready.append(job.job_id)
            else:
                job.fail("result_missing", "the downloaded result is no longer in the cache; Retry downloads it "
                         "again without paying")
                result.records.append((job, False))
    return result


UNCERTAIN_CODE = "uncertain_create"


def uncertain_error(job: Job, backend: str, cause: str) -> JobError:
    """Why a job is uncertain, with what it may have cost: the artist decides whether to send it again."""
    return JobError(UNCERTAIN_CODE, (
        f"{cause}: the create may have reached {backend}, and may have been charged ~{job.credits_estimated:g} "
        "credits, but no task id came back; check the provider's dashboard. Kiln will not send it again "
        "unless you confirm the possible double charge (Retry in the panel, --resubmit-uncertain in a batch)"))


def settle_interrupted_submit(job: Job, backend: Backend) -> bool:
    """Kiln stopped while this job's create was on the wire (its intent is journaled, its task id is not).
    Returns whether the new state must be recorded durably (a task id was found: it is what stops a
    double charge)."""
    found = None
    cause = f"Kiln stopped while sending this job to {backend.name}"
    if backend.capabilities.reconcile:
        try:
            found = backend.find_submitted(job.job_id)
        except BackendError as exc:
            _log.warning("%s: could not check for an interrupted create: %s", backend.name, exc.message)
            job.error = uncertain_error(job, backend.name, f"{cause} and could not check ({exc.message})")
            job.move_to(JobState.UNCERTAIN)
            return True
        if found is None:
            job.stage = Stage.NONE
            job.move_to(JobState.QUEUED)  # the provider confirms nothing was created
            return False
        job.task_id = found
        job.move_to(JobState.RUNNING)
        return True
    job.error = uncertain_error(job, backend.name, cause)
    job.move_to(JobState.UNCERTAIN)
    return True
