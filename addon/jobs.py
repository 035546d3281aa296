"""Jobs: the immutable request (`JobSpec`) and its live state (`Job`).

A JobSpec is plain, JSON-serialisable data: it is what the journal stores and what a retry or a
promotion copies. A Job wraps one spec with the state machine of one attempt at it, and the furthest
`Stage` that attempt reached, which is what a retry resumes from (a paid task is never created again).
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
    UNCERTAIN = "uncertain"
    """A create may have reached the provider (and been charged), but no task id came back and the
    provider cannot be asked. Never sent again on its own: a retry needs `confirm_double_charge`."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_in_flight(self) -> bool:
        """The provider counts this job against the account's concurrency limit."""
        return self in IN_FLIGHT_STATES


TERMINAL_STATES = frozenset({JobState.FINISHED, JobState.FAILED, JobState.CANCELLED, JobState.UNCERTAIN})
IN_FLIGHT_STATES = frozenset({JobState.SUBMITTING, JobState.RUNNING})
TITLE = "title"
"""Spec parameter: what a job without a prompt is called (a camera capture: "Camera: <camera name>"),
rather than the path of its input image."""

# The only legal moves. SUBMITTING → QUEUED is the provider refusing for concurrency (nothing
# was created), so the job goes back to wait for a slot; SUBMITTING → UNCERTAIN is a create whose
# outcome nobody can know. RUNNING → RUNNING is not listed: progress updates are not state changes.
# Terminal states have no way out: a retry is a new job that resumes at the old one's stage.
ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTING, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUBMITTING: frozenset({JobState.QUEUED, JobState.RUNNING, JobState.FAILED, JobState.CANCELLED,
                                    JobState.UNCERTAIN}),
    JobState.RUNNING: frozenset({JobState.DOWNLOADING, JobState.FAILED, JobState.CANCELLED}),
    JobState.DOWNLOADING: frozenset({JobState.READY, JobState.FAILED, JobState.CANCELLED}),
    JobState.READY: frozenset({JobState.IMPORTED, JobState.FAILED, JobState.CANCELLED}),
    JobState.IMPORTED: frozenset({JobState.FINISHED, JobState.FAILED}),
    JobState.FINISHED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.UNCERTAIN: frozenset(),
}


class Stage(enum.StrEnum):
    """The furthest a job got towards its result, kept through a failure (the state says only that it
    failed). It is what a retry resumes from: everything from `SUBMITTED` on may have been paid for."""

    NONE = "none"
    """Nothing on the provider costs anything: never sent, refused, or failed there (and refunded)."""
    SUBMITTED = "submitted"
    """A create went out (its intent is journaled); the task id is known unless the job is uncertain."""
    TASK_DONE = "task_done"
    """The provider finished the task and charged for it; the result waits there."""
    DOWNLOADED = "downloaded"
    """The result is in Kiln's cache."""
    FINISHED = "finished"
    """A finishing worker wrote the finished asset (`Job.metadata["finished_blend"]`) into the cache."""
    IMPORTED = "imported"
    """The result is in the scene."""


class DoubleChargeRisk(ValueError):
    """A retry that could pay twice (an uncertain create) was asked for without the artist's confirmation."""


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


THEME_PROMPT = "theme_prompt"
"""Spec parameter: a batch's shared theme, for a backend that applies it with its own texturing (Tripo's
texture route after geometry; `modes.PROVIDER_THEMES`). The request builder sets it, the backend reads it."""
PREVIEW_TASK_ID = "preview_task_id"
"""Spec parameter: the finished preview a promoted job refines (the draft's Kiln task id; `modes.REFINE_PROMOTES`).
The request builder sets it from the draft object, the backend reads it."""


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
    """The artist cancelled, but the task was already on the provider: it is still watched, and a result
    that arrives anyway is kept (`result_kept`) instead of thrown away."""
    retry_of: str | None = None
    superseded_by: str | None = None
    """The retry that replaced this attempt: its row shows this one among its attempts."""
    stage: Stage = Stage.NONE
    result_kept: bool = False
    """Cancelled, but the provider finished (and charged for) the task anyway: the result is in the cache,
    and "import anyway" brings it in without paying again."""
    task_ids: list[str] = field(default_factory=list)
    """Every provider task this job owns, in order, when it chains them (geometry, then texture): each is
    journaled before the next is created. `task_id` is the current one."""

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

    def reach(self, stage: Stage) -> None:
        """Record progress (never backwards: use `refunded` when the provider gave the money back)."""
        if _STAGE_ORDER[stage] > _STAGE_ORDER[self.stage]:
            self.stage = stage

    def refunded(self) -> None:
        """The provider failed or cancelled the task and charged nothing: a retry may create again."""
        self.stage = Stage.NONE
        self.credits_spent = 0.0

    @property
    def label(self) -> str:
        return self.spec.prompt or str(self.spec.params_dict.get(TITLE) or "") or ", ".join(self.spec.image_paths) \
            or self.spec.kind.value

    def view(self, eta_s: float | None = None, attempts: tuple[JobView, ...] = ()) -> JobView:
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
            superseded_by=self.superseded_by,
            stage=self.stage,
            cancel_requested=self.cancel_requested,
            result_kept=self.result_kept,
            attempts=attempts,
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
            "superseded_by": self.superseded_by,
            "stage": self.stage.value,
            "cancel_requested": self.cancel_requested,
            "result_kept": self.result_kept,
            "note": self.note,
            "task_ids": list(self.task_ids),
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
            superseded_by=data.get("superseded_by"),
            stage=Stage(data["stage"]) if "stage" in data else _stage_of_old_snapshot(data),
            cancel_requested=bool(data.get("cancel_requested", False)),
            result_kept=bool(data.get("result_kept", False)),
            note=str(data.get("note", "")),
            task_ids=[str(t) for t in data.get("task_ids", ())],
        )

    @property
    def step(self) -> int:
        """Which of its chained provider tasks the job is on (0: the first, or the only one)."""
        return max(0, len(self.task_ids) - 1)


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
    superseded_by: str | None = None
    stage: Stage = Stage.NONE
    cancel_requested: bool = False
    result_kept: bool = False
    attempts: tuple[JobView, ...] = ()
    """Earlier attempts at this asset that this job's retry replaced, oldest first (their rows are hidden)."""

    @property
    def can_cancel(self) -> bool:
        return not self.state.is_terminal and self.state is not JobState.IMPORTED and not self.cancel_requested

    @property
    def can_retry(self) -> bool:
        """A Retry button: failed, cancelled or uncertain, not already replaced by a retry, and not a kept
        result (that row offers "import anyway")."""
        return (self.state in RETRYABLE_STATES and self.superseded_by is None and not self.result_kept)

    @property
    def can_import_anyway(self) -> bool:
        return self.state is JobState.CANCELLED and self.result_kept and self.superseded_by is None

    @property
    def needs_confirmation(self) -> bool:
        """Retrying sends a create that may already have been paid for."""
        return self.state is JobState.UNCERTAIN

    @property
    def recoverable(self) -> bool:
        """Failed or cancelled, but a paid task (or its result) is still there: a retry (or --resume)
        fetches it without paying again."""
        return self.state in RETRYABLE_STATES and self.stage in PAID_STAGES and self.superseded_by is None


RETRYABLE_STATES = frozenset({JobState.FAILED, JobState.CANCELLED, JobState.UNCERTAIN})
PAID_STAGES = frozenset({Stage.SUBMITTED, Stage.TASK_DONE, Stage.DOWNLOADED, Stage.FINISHED})
"""Stages at which a task exists (or existed) on the provider that a retry must reuse, not create again.
`SUBMITTED` without a task id is the uncertain case, the only one where a create may be sent again."""
_STAGE_ORDER = {stage: number for number, stage in enumerate(Stage)}


def _stage_of_old_snapshot(data: Mapping[str, Any]) -> Stage:
    """Journals written before stages were recorded: the safest stage their state implies (a task id
    means something may have been paid)."""
    state = data.get("state")
    if state in ("imported", "finished"):
        return Stage.IMPORTED
    if state == "ready" or (data.get("files") and state in ("failed", "cancelled")):
        return Stage.DOWNLOADED
    if state == "downloading":
        return Stage.TASK_DONE
    return Stage.SUBMITTED if data.get("task_id") or state == "submitting" else Stage.NONE


def retry_start(stage: Stage, *, has_task: bool, files_present: bool, durable_tasks: bool) -> JobState:
    """Where a retry of an attempt that reached `stage` begins: the first step whose output is missing.
    A task the provider created is watched or downloaded again, never created again; only a job with
    nothing on the provider (or an uncertain one, after confirmation) is queued for a create. The
    embedded engine's tasks die with the process and cost nothing, so those simply start over."""
    if stage is Stage.IMPORTED:
        raise ValueError("its result is already in the scene")
    if stage in (Stage.DOWNLOADED, Stage.FINISHED) and files_present:
        return JobState.READY  # the pump finishes it again, or appends the finished .blend it finds
    if not has_task or not durable_tasks or stage is Stage.NONE:
        return JobState.QUEUED
    if stage is Stage.SUBMITTED:
        return JobState.RUNNING
    return JobState.DOWNLOADING


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

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the journal: a batch's budget, start time and finishing must survive a restart."""
        return {
            "name": self.name,
            "mode": self.mode.value,
            "backend": self.backend,
            "priority": self.priority.name,
            "start_at": self.start_at,
            "budget": self.budget,
            "finish": _dataclass_json(self.finish),
            "target": self.target,
            "theme": _dataclass_json(self.theme),
            "manifest_hash": self.manifest_hash,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchSpec:
        """The inverse of `to_json`; raises KeyError/ValueError/TypeError on an entry it cannot read (the
        journal keeps such entries and reports them rather than guess a budget)."""
        budget, start_at = data.get("budget"), data.get("start_at")
        return cls(
            name=str(data["name"]),
            mode=Mode(data.get("mode", Mode.PRODUCTION)),
            backend=str(data.get("backend", "local")),
            priority=Priority[str(data.get("priority", Priority.NORMAL.name))],
            start_at=float(start_at) if start_at is not None else None,
            budget=float(budget) if budget is not None else None,
            finish=_dataclass_from_json(FinishPreset, data.get("finish")),
            target=str(data.get("target", "game")),
            theme=_dataclass_from_json(Theme, data.get("theme")),
            manifest_hash=str(data.get("manifest_hash", "")),
        )


def _dataclass_json(value: FinishPreset | Theme | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {f.name: list(v) if isinstance(v := getattr(value, f.name), tuple) else v for f in fields(value)}


def _dataclass_from_json(cls: Any, data: Any) -> Any:
    """A frozen settings record (FinishPreset, Theme) from its JSON; lists become the tuples they were.
    Unknown keys are an error, not silently dropped: a setting this version cannot apply must not be
    replaced by a default."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}: expected an object, not {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown setting(s) {', '.join(sorted(unknown))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def spec_key(spec: JobSpec) -> str:
    """A stable identity for a spec, used to find 'the same asset' across runs (resume, dedup)."""
    return json.dumps(spec.to_json(), sort_keys=True, separators=(",", ":"))
