"""Jobs: the immutable request (`JobSpec`) and its live state (`Job`).

A JobSpec is plain, JSON-serialisable data: it is what the journal stores and what a retry or a
promotion copies. A Job wraps one spec with the state machine of one attempt at it.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from .presets import FinishPreset, Theme


class JobKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    MULTIVIEW = "multiview"
    REFINE = "refine"
    TEXTURE = "texture"


class Mode(enum.StrEnum):
    DRAFT = "draft"
    PRODUCTION = "production"


class Priority(enum.IntEnum):
    HIGH = 0
    NORMAL = 1
    LOW = 2


class JobState(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    READY = "ready"
    IMPORTED = "imported"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_in_flight(self) -> bool:
        """The provider counts this job against the account's concurrency limit."""
        return self in IN_FLIGHT_STATES


TERMINAL_STATES = frozenset({JobState.FINISHED, JobState.FAILED, JobState.CANCELLED})
IN_FLIGHT_STATES = frozenset({JobState.SUBMITTING, JobState.RUNNING})

# The only legal moves. SUBMITTING → QUEUED is the provider refusing for concurrency (nothing
# was created), so the job goes back to wait for a slot. RUNNING → RUNNING is not listed:
# progress updates are not state changes.
ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTING, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUBMITTING: frozenset({JobState.QUEUED, JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.DOWNLOADING, JobState.FAILED, JobState.CANCELLED}),
    JobState.DOWNLOADING: frozenset({JobState.READY, JobState.FAILED, JobState.CANCELLED}),
    JobState.READY: frozenset({JobState.IMPORTED, JobState.FAILED, JobState.CANCELLED}),
    JobState.IMPORTED: frozenset({JobState.FINISHED, JobState.FAILED}),
    JobState.FINISHED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the job model does not allow: always a bug in Kiln, never user error."""


@dataclass(frozen=True)
class JobSpec:
    """What to generate and how. Frozen once queued; equal specs describe the same asset."""

    kind: JobKind
    backend: str
    mode: Mode = Mode.DRAFT
    prompt: str = ""
    negative_prompt: str = ""
    image_paths: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    batch: str = ""
    index: int = 0
    seed: int = 0
    option: int = 0
    name: str = ""
    """The result's name by the convention (`draft_barrel_001`, `gen_barrel_01_001_v2`), chosen by the
    request builder; empty in journals written before names were part of the request."""

    @property
    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["kind"] = self.kind.value
        data["mode"] = self.mode.value
        data["image_paths"] = list(self.image_paths)
        data["params"] = [[k, v] for k, v in self.params]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["kind"] = JobKind(values["kind"])
        values["mode"] = Mode(values.get("mode", Mode.DRAFT))
        values["image_paths"] = tuple(values.get("image_paths", ()))
        values["params"] = tuple((str(k), _freeze(v)) for k, v in values.get("params", ()))
        return cls(**values)

    @staticmethod
    def make_params(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        """Backend parameters as a hashable, order-stable tuple, so the spec stays frozen."""
        return tuple(sorted((k, _freeze(v)) for k, v in params.items()))


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class JobError:
    """A failure as the artist reads it (`message`) and as code branches on it (`code`)."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class Job:
    """One attempt at a JobSpec, with its live state. Mutated only by the scheduler."""

    spec: JobSpec
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: JobState = JobState.QUEUED
    task_id: str | None = None
    progress: float = 0.0
    credits_estimated: float = 0.0
    credits_spent: float = 0.0
    error: JobError | None = None
    warnings: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    created_at: float = field(default_factory=time.time)
    state_times: dict[str, float] = field(default_factory=dict)
    cancel_requested: bool = False
    retry_of: str | None = None

    def __post_init__(self) -> None:
        self.state_times.setdefault(self.state.value, time.monotonic())

    def move_to(self, new_state: JobState) -> None:
        if new_state not in ALLOWED_TRANSITIONS[self.state]:
            raise IllegalTransition(f"job {self.job_id}: {self.state.value} → {new_state.value} is not allowed")
        self.state = new_state
        self.state_times[new_state.value] = time.monotonic()

    def fail(self, code: str, message: str) -> None:
        self.error = JobError(code, message)
        self.move_to(JobState.FAILED)

    @property
    def label(self) -> str:
        return self.spec.prompt or ", ".join(self.spec.image_paths) or self.spec.kind.value

    def view(self, eta_s: float | None = None) -> JobView:
        """An immutable copy for other threads (the UI, batch progress); the scheduler builds it under
        its lock, so the copy is consistent even while workers move the job on."""
        return JobView(
            job_id=self.job_id,
            spec=self.spec,
            state=self.state,
            label=self.label,
            progress=self.progress,
            eta_s=eta_s,
            task_id=self.task_id,
            credits_estimated=self.credits_estimated,
            credits_spent=self.credits_spent,
            error=self.error,
            note=self.note,
            warnings=tuple(self.warnings),
            retry_of=self.retry_of,
            files=MappingProxyType(dict(self.files)),
            metadata=MappingProxyType(dict(self.metadata)),
            created_at=self.created_at,
            state_times=MappingProxyType(dict(self.state_times)),
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to rebuild this job after a restart (monotonic times are not kept)."""
        return {
            "job_id": self.job_id,
            "spec": self.spec.to_json(),
            "state": self.state.value,
            "task_id": self.task_id,
            "credits_estimated": self.credits_estimated,
            "credits_spent": self.credits_spent,
            "error": self.error.to_json() if self.error else None,
            "warnings": list(self.warnings),
            "files": dict(self.files),
            "metadata": self.metadata,
            "created_at": self.created_at,
            "retry_of": self.retry_of,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Job:
        error = data.get("error")
        return cls(
            spec=JobSpec.from_json(data["spec"]),
            job_id=data["job_id"],
            state=JobState(data["state"]),
            task_id=data.get("task_id"),
            credits_estimated=float(data.get("credits_estimated", 0.0)),
            credits_spent=float(data.get("credits_spent", 0.0)),
            error=JobError(**error) if error else None,
            warnings=list(data.get("warnings", [])),
            files=dict(data.get("files", {})),
            metadata=dict(data.get("metadata", {})),
            created_at=float(data.get("created_at", time.time())),
            retry_of=data.get("retry_of"),
        )


@dataclass(frozen=True)
class JobView:
    """A job as it was at one moment, read-only: what the queue panel, the batch progress and reports
    read, so no other thread ever holds a live `Job` the scheduler's workers are changing."""

    job_id: str
    spec: JobSpec
    state: JobState
    label: str
    progress: float
    eta_s: float | None
    """Seconds until the result is ready, from the scheduler's latency model (None: not known)."""
    task_id: str | None
    credits_estimated: float
    credits_spent: float
    error: JobError | None
    note: str
    warnings: tuple[str, ...]
    retry_of: str | None
    files: Mapping[str, str]
    metadata: Mapping[str, Any]
    created_at: float
    state_times: Mapping[str, float]
    """Monotonic time each state was entered."""

    @property
    def can_cancel(self) -> bool:
        return not self.state.is_terminal and self.state is not JobState.IMPORTED

    @property
    def can_retry(self) -> bool:
        return self.state in (JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class BatchSpec:
    """What a batch asks for as a whole, frozen when it is queued: how the scheduler orders and limits
    it (priority, start time, budget) and what happens to each result after import (finishing preset,
    target, theme). Every entry point builds one (`addon/requests.py`); a Draft has none."""

    name: str
    mode: Mode = Mode.PRODUCTION
    backend: str = "local"
    priority: Priority = Priority.NORMAL
    start_at: float | None = None
    """Wall-clock time (epoch seconds) before which nothing of this batch is submitted."""
    budget: float | None = None
    """Credits this batch may commit; None means no limit."""
    finish: FinishPreset | None = None
    """Applied to each Production result after import (None: leave results raw)."""
    target: str = "game"
    """"game" makes LODs; "film" keeps detail and makes none."""
    theme: Theme | None = None
    """One shared look for the whole batch."""
    manifest_hash: str = ""
    """For manifest batches: the hash of the manifest text, so a resume can tell an edit."""


def spec_key(spec: JobSpec) -> str:
    """A stable identity for a spec, used to find 'the same asset' across runs (resume, dedup)."""
    return json.dumps(spec.to_json(), sort_keys=True, separators=(",", ":"))
