"""Shared test helpers for driving the scheduler."""

from __future__ import annotations

import time
from collections.abc import Callable

from addon.jobs import JobKind, JobSpec, Mode
from addon.scheduling import Scheduler


def spec(
    backend: str = "fake", mode: Mode = Mode.PRODUCTION, batch: str = "b", index: int = 0, prompt: str = ""
) -> JobSpec:
    return JobSpec(
        kind=JobKind.TEXT, backend=backend, mode=mode, prompt=prompt or f"rock {index}", batch=batch, index=index
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def drain(scheduler: Scheduler, timeout: float = 20.0) -> list[str]:
    """Stand-in for the main-thread pump: mark every ready job imported until nothing is left."""
    imported: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = scheduler.take_ready()
        if job is not None:
            scheduler.mark_imported(job)
            imported.append(job.job_id)
            continue
        if scheduler.is_idle():
            return imported
        time.sleep(0.005)
    raise AssertionError("scheduler did not become idle")
