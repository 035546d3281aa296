"""FakeBackend: a provider simulator for tests and benchmarks only (sandbox/ is excluded from the zip).

It implements the Backend interface honestly: it enforces its own concurrency limit and refuses
over it, completes tasks after a fixed latency, can fail creates ambiguously (created but the client
was told otherwise), can fail tasks, and can keep its tasks in a folder so a second process can
reattach to tasks the first one created, as a real provider would allow.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The fake must raise the very classes the scheduler catches. In Blender tests that is the extension's
# package (imported as `bl_ext.<repo>.kiln.sandbox.fake`); in unit tests and benchmarks it is the
# checkout's `addon` package on sys.path, where a relative import beyond the top level fails.
try:
    from ..addon.backends.base import (
        Backend,
        BackendError,
        Capabilities,
        ConcurrencyRefused,
        TaskStatus,
        TaskUpdate,
    )
    from ..addon.jobs import JobSpec
except ImportError:
    from addon.backends.base import Backend, BackendError, Capabilities, ConcurrencyRefused, TaskStatus, TaskUpdate
    from addon.jobs import JobSpec

_log = logging.getLogger(__name__)


@dataclass
class _FakeTask:
    task_id: str
    client_ref: str
    created_at: float
    done_at: float
    fails: bool
    cancelled: bool = False
    credits: float = 10.0

    def status(self, now: float) -> TaskStatus:
        if self.cancelled:
            return TaskStatus.CANCELLED
        if now < self.done_at:
            return TaskStatus.RUNNING
        return TaskStatus.FAILED if self.fails else TaskStatus.SUCCESS


class FakeBackend(Backend):
    """A controllable provider.

    latency_s: time from create to success. limit: tasks in flight the "provider" allows.
    refuse_next: the next N creates are refused for concurrency (nothing created).
    ambiguous_failures: the next N creates DO create a task but raise a non-retryable error, as when a
    connection drops after the request was sent.
    fail_when: a predicate on the spec; matching tasks end in `failed` with code 2008.
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        latency_s: float = 0.2,
        limit: int = 10,
        credits_per_task: float = 10.0,
        can_cancel: bool = True,
        state_dir: Path | None = None,
        fail_when: Callable[[JobSpec], bool] | None = None,
    ) -> None:
        self.name = name
        self.latency_s = latency_s
        self.limit = limit
        self.credits_per_task = credits_per_task
        self.capabilities = Capabilities(
            cancel=can_cancel,
            reconcile=state_dir is not None,
            concurrency={"generation": limit},
            typical_latency_s={"draft": latency_s, "production": latency_s},
        )
        self.state_dir = state_dir
        self.fail_when = fail_when
        self.submit_delay_s = 0.0
        self.download_delay_s = 0.0
        self.refuse_next = 0
        self.ambiguous_failures = 0
        self.transient_watch_failures = 0
        self.transient_download_failures = 0
        self.create_calls = 0
        self.refusals = 0
        self.peak_in_flight = 0
        self._tasks: dict[str, _FakeTask] = {}
        self._cond = threading.Condition()
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            for path in state_dir.glob("task_*.json"):
                data = json.loads(path.read_text())
                self._tasks[data["task_id"]] = _FakeTask(**data)

    # -- provider-side bookkeeping -------------------------------------------------------------
    def _in_flight(self, now: float) -> int:
        return sum(1 for t in self._tasks.values() if not t.status(now).is_terminal)

    def _persist(self, task: _FakeTask) -> None:
        if self.state_dir is not None:
            path = self.state_dir / f"task_{task.task_id}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(task.__dict__))
            tmp.replace(path)

    @property
    def created_refs(self) -> list[str]:
        """client_ref of every task ever created, in creation order (duplicates mean double billing)."""
        with self._cond:
            return [t.client_ref for t in sorted(self._tasks.values(), key=lambda t: t.created_at)]

    # -- Backend interface ---------------------------------------------------------------------
    def estimate_credits(self, spec: JobSpec) -> float:
        return self.credits_per_task

    def submit(self, spec: JobSpec, client_ref: str) -> str:
        if self.submit_delay_s:
            time.sleep(self.submit_delay_s)  # the round trip of a real create
        with self._cond:
            self.create_calls += 1
            now = time.time()
            if self.refuse_next > 0 or self._in_flight(now) >= self.limit:
                self.refuse_next = max(0, self.refuse_next - 1)
                self.refusals += 1
                raise ConcurrencyRefused("fake provider: too many tasks in flight", retry_after_s=0.05)
            task = _FakeTask(
                task_id=uuid.uuid4().hex,
                client_ref=client_ref,
                created_at=now,
                done_at=now + self.latency_s,
                fails=bool(self.fail_when and self.fail_when(spec)),
                credits=self.credits_per_task,
            )
            self._tasks[task.task_id] = task
            self._persist(task)
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight(now))
            self._cond.notify_all()
            if self.ambiguous_failures > 0:
                self.ambiguous_failures -= 1
                raise BackendError("connection_lost", "connection lost after the request was sent")
            return task.task_id

    def watch(self, task_ids: Sequence[str], timeout_s: float) -> list[TaskUpdate]:
        deadline = time.time() + timeout_s
        with self._cond:
            if self.transient_watch_failures > 0:
                self.transient_watch_failures -= 1
                raise BackendError("server_error", "fake provider: 503", retryable=True)
            while True:
                now = time.time()
                known = [self._tasks[t] for t in task_ids if t in self._tasks]
                missing = [t for t in task_ids if t not in self._tasks]
                done = [t for t in known if t.status(now).is_terminal]
                if done or missing or now >= deadline:
                    break
                next_done = min((t.done_at for t in known), default=deadline)
                self._cond.wait(max(0.0, min(deadline, next_done) - now))
            updates = [self._update(t, now) for t in known]
            updates += [TaskUpdate(t, TaskStatus.MISSING) for t in missing]
            return updates

    def _update(self, task: _FakeTask, now: float) -> TaskUpdate:
        status = task.status(now)
        progress = min(1.0, (now - task.created_at) / max(1e-9, task.done_at - task.created_at))
        if status is TaskStatus.FAILED:
            return TaskUpdate(task.task_id, status, progress, 0.0, "2008", "prompt refused by content policy")
        return TaskUpdate(task.task_id, status, progress, task.credits if status is TaskStatus.SUCCESS else 0.0)

    def download(self, task_id: str, dest_dir: Path) -> dict[str, str]:
        if self.download_delay_s:
            time.sleep(self.download_delay_s)
        with self._cond:
            if self.transient_download_failures > 0:
                self.transient_download_failures -= 1
                raise BackendError("server_error", "fake CDN: 502", retryable=True)
            task = self._tasks[task_id]
        dest_dir.mkdir(parents=True, exist_ok=True)
        model = dest_dir / "model.glb"
        tmp = model.with_suffix(".part")
        tmp.write_text(json.dumps({"task_id": task_id, "client_ref": task.client_ref}))
        tmp.replace(model)
        return {"model": str(model)}

    def cancel(self, task_id: str) -> None:
        if not self.capabilities.cancel:
            super().cancel(task_id)
        with self._cond:
            task = self._tasks[task_id]
            if not task.status(time.time()).is_terminal:
                task.cancelled = True
                self._persist(task)
            self._cond.notify_all()

    def balance(self) -> float | None:
        return 1000.0

    def find_submitted(self, client_ref: str) -> str | None:
        with self._cond:
            return next((t.task_id for t in self._tasks.values() if t.client_ref == client_ref), None)

    def describe(self, spec: JobSpec) -> dict[str, Any]:
        return {"model_version": "fake-1"}
