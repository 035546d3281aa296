"""The Backend interface: how a JobSpec becomes a result file, for any provider.

A backend is used only from worker threads. It never touches `bpy`, and it reports failure through
`BackendError`, whose flags tell the scheduler what it may safely do next.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..jobs import JobSpec


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    """The provider answered, but with a status Kiln cannot read (or literally "unknown"): not an answer.
    The job stays watched, and time spent without a readable answer counts towards giving up."""
    MISSING = "missing"
    """The provider says it has no such task (a list's `missed` ids, 404, Tripo 2001): a changed key, or
    a task that expired. A few in a row fail the job."""

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclass(frozen=True)
class InputLimits:
    """What a provider accepts and what it can use, read by the pre-flight checks (`addon/preflight.py`):
    every finding's severity follows from these, so a backend's author fills in data, never a check."""

    prompt_max_chars: int = 1024
    """The provider refuses a longer prompt (Tripo 1024, Meshy 600)."""
    negative_prompt_max_chars: int = 255
    """0: the provider has no negative prompt (one typed is ignored, and the artist is told)."""
    image_min_px: int = 256
    """Below this on the short side a reference loses the detail the provider needs (a warning)."""
    needs_separable_subject: bool = False
    """The backend cannot cut a subject out of a busy photo itself (the local engine): a reference without
    a plain background or transparency is a hard error. Providers that segment the subject themselves
    (Tripo, Meshy) get a warning and the artist decides."""


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; the scheduler adapts to it instead of asking by name. (How a backend is
    watched is said here too: polled through `watch`, paced by the scheduler or by itself, and pushed
    through `stream` where it has one; whether it needs the network or a key is the registry's to say,
    before any backend is built.)"""

    cancel: bool = False
    """`cancel` stops a started task on the provider (without it, a cancelled task may still charge)."""
    reconcile: bool = False
    """`find_submitted` can tell whether an interrupted create reached the provider."""
    durable_tasks: bool = True
    """Tasks outlive Kiln's process (a remote provider). False for the embedded engine: after a
    restart its running tasks are gone, nothing was charged, and they are simply queued again."""
    concurrency: Mapping[str, int] = field(default_factory=lambda: {"default": 1})
    """Tasks in flight (queued + running) the provider allows per task group."""
    typical_latency_s: Mapping[str, float] = field(default_factory=lambda: {"draft": 30.0, "production": 120.0})
    """Prior for ETAs until Kiln has observed this backend (`scheduling.eta.TASK_PRIORS_S` wins)."""
    input_kinds: frozenset[str] | None = None
    """The job kinds (`JobKind` values) the provider can start from; None: every kind. A request of
    another kind is refused before anything is queued (`registry.input_problem`)."""
    limits: InputLimits = field(default_factory=InputLimits)
    """Input limits for the pre-flight checks (prompt length, image size, subject separation)."""
    paced_polling: bool = False
    """`watch` asks the provider once, at once, and the scheduler decides when to call it: each task is
    looked at when its own predicted finish is due (a polled provider). Otherwise `watch` paces itself
    (an in-process engine) and may block up to its timeout."""
    streams: int = 0
    """Push: how many status streams (`stream`) the provider lets one account hold open; 0 when it has
    none. The scheduler's own stream threads read them (at most `SchedulerConfig.max_streams` in all);
    a task without a stream, past the bound or while its dropped stream waits to reconnect, is polled
    through `watch` as any other."""


@dataclass
class TaskUpdate:
    task_id: str
    status: TaskStatus
    progress: float = 0.0
    credits: float = 0.0
    error_code: str = ""
    error_message: str = ""
    left_s: float | None = None
    """The provider's own estimate of the seconds left (Tripo's `running_left_time`), when it gives one."""
    duration_s: float | None = None
    """A finished task's time from the provider's own timestamps (created → completed), when it gives
    them: the task time to learn from, free of how late Kiln happened to look."""
    moved_to: str = ""
    """The backend sent this task again under a new id (a pooled server died after accepting it, and
    nothing was charged): the job follows the new id, and the journal keeps both."""


def unknown_task_message(task_id: str) -> str:
    """What the artist reads when a provider denies knowing a task Kiln created (one wording everywhere)."""
    return f"the provider does not know task {task_id}: was the API key changed?"


class BackendError(Exception):
    """A provider or transport failure.

    `retryable` says a later identical request may succeed. `nothing_created` says the provider
    guarantees this create request left nothing behind and charged nothing: only then may a create be
    sent again (DESIGN invariant 3).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        nothing_created: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.nothing_created = nothing_created
        self.retry_after_s = retry_after_s


class ConcurrencyRefused(BackendError):
    """The provider is at its concurrency limit; nothing was created or charged."""

    def __init__(self, message: str = "provider concurrency limit reached", retry_after_s: float | None = None):
        super().__init__(
            "concurrency_limit", message, retryable=True, nothing_created=True, retry_after_s=retry_after_s
        )


class Backend(abc.ABC):
    """A generation provider. Instances are shared by worker threads and must be thread-safe."""

    name: str = ""
    capabilities: Capabilities = Capabilities()

    def concurrency_group(self, spec: JobSpec) -> str:
        """The provider's concurrency bucket this spec counts against."""
        return next(iter(self.capabilities.concurrency))

    @abc.abstractmethod
    def estimate_credits(self, spec: JobSpec) -> float:
        """Credits this spec will cost if it succeeds (failed tasks are refunded by providers)."""

    @abc.abstractmethod
    def submit(self, spec: JobSpec, client_ref: str) -> str:
        """Create the remote task and return its id. `client_ref` is Kiln's job id."""

    @abc.abstractmethod
    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        """Report on these tasks, returning within about `timeout_s`.

        Push backends block until an event; poll backends pace themselves (adaptive or batched
        polling) and return what one round learnt. Tasks not mentioned are unchanged. A task the
        provider denies knowing is MISSING, and one whose answer cannot be read is UNKNOWN: one odd
        task never makes this raise (raising means the provider could not be asked at all).
        """

    def stream(self, task_id: str) -> Iterator[TaskUpdate]:
        """Push (`Capabilities.streams` > 0): this task's status changes as the provider reports them,
        ending after a terminal (or MISSING) one. Raises BackendError when the stream cannot be opened or
        breaks; ending without a terminal status is a drop too. Either way the scheduler polls the task
        and connects again later, so a dropped stream never loses a job."""
        raise BackendError("unsupported", f"{self.name} has no status stream")

    def steps(self, spec: JobSpec) -> tuple[str, ...]:
        """The provider tasks one job runs, in order, as latency keys: usually one (its mode); a chain
        such as geometry then texture has more. Every task id is journaled before the next is created."""
        return (spec.mode.value,)

    def submit_step(self, spec: JobSpec, step: int, previous_task_id: str, client_ref: str) -> str:
        """Create step `step` (1 or later) of a chained job, on the result of `previous_task_id`."""
        raise BackendError("unsupported_input", f"{self.name} has no step {step}")

    @abc.abstractmethod
    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        """Fetch a succeeded task's files into `dest_dir`; returns role → path ("model", "preview")."""

    def task_metadata(self, task_id: str) -> tuple[dict[str, Any], list[str]]:
        """After download: what the provider said about this result (metadata, warnings for the artist)."""
        return {}, []

    def cancel(self, task_id: str) -> None:
        raise BackendError("cancel_unsupported", f"{self.name} cannot cancel a task once it has started")

    def verify(self) -> None:  # noqa: B027 - optional: backends without credentials have nothing to check
        """Check credentials and reachability before anything is spent (raises BackendError)."""

    def balance(self) -> float | None:
        """Credits left on the account, or None when the provider has no such notion."""
        return None

    def not_enough_credits(self, code: str, spec: JobSpec) -> BackendError:
        """A create the provider refused for want of credits, saying how short the account is (what the
        artist needs to know), with the balance read now. Nothing was created: the job simply fails."""
        try:
            balance = self.balance()
            have = "unknown" if balance is None else f"{balance:g}"
        except BackendError:
            have = "unknown"
        return BackendError(code, f"not enough {self.name.title()} credits: need ~{self.estimate_credits(spec):g}, "
                            f"have {have}", nothing_created=True)

    def find_submitted(self, client_ref: str) -> str | None:
        """After a crash mid-create: the task created for `client_ref`, if the provider can tell."""
        return None

    def describe(self, spec: JobSpec) -> dict[str, Any]:
        """Extra metadata for the imported asset (model version, matched archetype …)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing to release
        """Release connections and threads."""
