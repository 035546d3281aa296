"""The scheduler: one queue, two lanes, every backend's concurrency limit, budgets and recovery.

Threads:
- one dispatcher thread decides what to submit next (it never does network I/O itself);
- one watcher thread per backend with tasks in flight calls `Backend.watch`;
- a bounded pool of worker threads runs submits, downloads and cancels.
So the thread count depends on the number of backends, never on the number of jobs. All job state
is guarded by one lock; public methods are safe from any thread. Nothing here touches `bpy`: results
wait in a ready queue that the main-thread pump drains (`addon/blender/runtime.py`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .backends.base import Backend, BackendError, TaskStatus, TaskUpdate
from .jobs import BatchSpec, Job, JobSpec, JobState, Mode, Priority
from .journal import Journal
from .retry import backoff_delay

_log = logging.getLogger(__name__)


@dataclass
class SchedulerConfig:
    workers: int = 6
    draft_reserved_slots: int = 1
    """Slots per backend group that production leaves free so a draft never waits behind a batch.
    The artist's UI keeps one; a headless batch run, where nobody drafts, sets 0 to use every slot."""
    concurrency_cap: int | None = None
    """At most this many tasks in flight per backend group, below the provider's limit (batch --jobs)."""
    watch_timeout_s: float = 0.25
    max_submit_retries: int = 8
    max_read_retries: int = 6
    read_backoff_cap_s: float = 10.0


@dataclass
class _GroupSlots:
    declared: int
    believed: int
    in_flight: int = 0
    not_before: float = 0.0
    """Monotonic time before which no create is sent (after a concurrency refusal)."""


@dataclass
class _LatencyModel:
    """Observed create→ready seconds per (backend, mode), as an exponentially weighted mean."""

    priors: dict[tuple[str, str], float] = field(default_factory=dict)
    observed: dict[tuple[str, str], float] = field(default_factory=dict)
    samples: dict[tuple[str, str], int] = field(default_factory=dict)

    def expected(self, backend: str, mode: str) -> float:
        key = (backend, mode)
        return self.observed.get(key, self.priors.get(key, 60.0))

    def observe(self, backend: str, mode: str, seconds: float) -> None:
        key = (backend, mode)
        count = self.samples.get(key, 0)
        weight = 1.0 / (count + 1) if count < 10 else 0.1
        self.observed[key] = (1 - weight) * self.observed.get(key, seconds) + weight * seconds
        self.samples[key] = count + 1


class Scheduler:
    def __init__(
        self,
        backends: Iterable[Backend],
        *,
        journal: Journal | None = None,
        cache_dir: Path | None = None,
        config: SchedulerConfig | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config or SchedulerConfig()
        self.backends: dict[str, Backend] = {b.name: b for b in backends}
        self.journal = journal
        self.cache_dir = Path(cache_dir) if cache_dir else (journal.folder / "results" if journal else None)
        self.on_change = on_change
        self.jobs: dict[str, Job] = {}
        self.batches: dict[str, BatchSpec] = {}
        self._batch_order: dict[str, int] = {}
        self.production_paused = False
        self.budget_skipped: dict[str, list[str]] = collections.defaultdict(list)
        self.balances: dict[str, float | str | None] = {}
        self.latency = _LatencyModel()
        self.version = 0
        """Bumped on every change, so a UI can redraw only when something happened."""

        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._slots: dict[tuple[str, str], _GroupSlots] = {}
        self._ready: collections.deque[str] = collections.deque()
        self._orphans: dict[tuple[str, str], _GroupSlots] = {}
        """(backend, task id) cancelled in Kiln but maybe not yet on the provider: watched only to free
        its slot, because the provider counts it until it ends."""
        self._batch_seq = 0
        self._thread_prefix = f"kiln-{id(self) & 0xFFFF:04x}"
        # Creates get their own small pool so a slot freed by a finished task is refilled at once,
        # never queued behind that task's (slower) download.
        self._submit_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"{self._thread_prefix}-submit")
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.config.workers - 2), thread_name_prefix=f"{self._thread_prefix}-work"
        )
        self._watchers: dict[str, threading.Thread] = {}
        self._dispatcher: threading.Thread | None = None
        self.threads_peak = 0
        for backend in self.backends.values():
            for mode, seconds in backend.capabilities.typical_latency_s.items():
                self.latency.priors[(backend.name, mode)] = seconds

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Recover from the journal, then start dispatching."""
        if self.journal is not None:
            self._recover(self.journal.load())
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name=f"{self._thread_prefix}-dispatch", daemon=True
        )
        self._dispatcher.start()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop threads without losing anything: running tasks stay `running` in the journal and are
        reattached by the next start."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout_s
        threads = [self._dispatcher, *self._watchers.values()]
        for thread in threads:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._submit_pool.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for backend in self.backends.values():
            backend.close()
        if self.journal is not None:
            with self._lock:
                self.journal.compact(list(self.jobs.values()))

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ public API
    def add_backend(self, backend: Backend) -> None:
        """Make a backend available (or replace one whose key or endpoint changed)."""
        with self._lock:
            previous = self.backends.get(backend.name)
            self.backends[backend.name] = backend
            for mode, seconds in backend.capabilities.typical_latency_s.items():
                self.latency.priors[(backend.name, mode)] = seconds
            if previous is not None and previous is not backend:
                previous.close()

    def add_batch(self, settings: BatchSpec) -> None:
        with self._lock:
            self._batch_seq += 1
            self._batch_order[settings.name] = self._batch_seq
            self.batches[settings.name] = settings
            self._changed()

    def add(self, spec: JobSpec, *, retry_of: str | None = None) -> Job:
        """Queue a spec. Unknown backends fail now, with a message, instead of waiting forever."""
        backend = self.backends.get(spec.backend)
        job = Job(spec=spec, retry_of=retry_of)
        with self._lock:
            self.jobs[job.job_id] = job
            if backend is None:
                job.fail("unknown_backend", f"backend '{spec.backend}' is not available")
            else:
                job.credits_estimated = backend.estimate_credits(spec)
            self._record(job)
            self._changed()
        return job

    def add_many(self, specs: Iterable[JobSpec]) -> list[Job]:
        return [self.add(spec) for spec in specs]

    def pause_production(self) -> None:
        with self._lock:
            self.production_paused = True
            self._changed()

    def resume_production(self) -> None:
        with self._lock:
            self.production_paused = False
            self._changed()

    def cancel(self, job_id: str) -> str:
        """Cancel a job in any live state; returns what happened, in words for the artist."""
        with self._lock:
            job = self.jobs[job_id]
            state = job.state
            if state.is_terminal or state is JobState.IMPORTED:
                return f"'{job.label}' is already {state.value}; nothing to cancel"
            if state is JobState.QUEUED:
                job.move_to(JobState.CANCELLED)
                message = f"cancelled '{job.label}' before it was sent"
            elif state in (JobState.SUBMITTING, JobState.DOWNLOADING):
                # The worker holding it finishes the call, sees the flag and cancels cleanly.
                job.cancel_requested = True
                message = f"cancelling '{job.label}'"
            elif state is JobState.RUNNING:
                message = self._cancel_running(job)
            else:  # READY: downloaded but not imported yet
                job.move_to(JobState.CANCELLED)
                self._discard_ready(job_id)
                message = f"cancelled '{job.label}'; its downloaded files are kept in the cache"
            job.note = message
            self._record(job)
            self._changed()
            return message

    def retry(self, job_id: str) -> Job:
        """Queue a failed or cancelled job again, as a new job with the same spec."""
        with self._lock:
            old = self.jobs[job_id]
            if old.state not in (JobState.FAILED, JobState.CANCELLED):
                raise ValueError(f"only failed or cancelled jobs can be retried, not {old.state.value} ones")
        return self.add(old.spec, retry_of=job_id)

    def refresh_balance(self, backend_name: str) -> None:
        """Ask the provider for the account balance on a worker thread; `balances` has the answer
        (a number, None for "no such notion", or the error text) when it arrives."""
        backend = self.backends.get(backend_name)
        if backend is None:
            return

        def ask() -> None:
            try:
                value: float | str | None = backend.balance()
            except BackendError as exc:
                value = exc.message
            with self._lock:
                self.balances[backend_name] = value
                self._changed()

        self._pool.submit(ask)

    def clear_finished(self) -> int:
        with self._lock:
            done = [j for j in self.jobs.values() if j.state.is_terminal]
            for job in done:
                del self.jobs[job.job_id]
            self._changed()
            return len(done)

    def take_ready(self) -> Job | None:
        """Main thread: the next downloaded result to bring into the scene, or None."""
        with self._lock:
            while self._ready:
                job = self.jobs.get(self._ready.popleft())
                if job is not None and job.state is JobState.READY:
                    return job
            return None

    def mark_imported(self, job: Job, *, finished: bool = True) -> None:
        with self._lock:
            job.move_to(JobState.IMPORTED)
            if finished:
                job.move_to(JobState.FINISHED)
            self._record(job)
            self._changed()

    def mark_finished(self, job: Job) -> None:
        with self._lock:
            job.move_to(JobState.FINISHED)
            self._record(job)
            self._changed()

    def mark_failed(self, job: Job, code: str, message: str) -> None:
        with self._lock:
            job.fail(code, message)
            self._record(job)
            self._changed()

    def snapshot(self) -> list[Job]:
        with self._lock:
            return list(self.jobs.values())

    def is_idle(self) -> bool:
        """True when no job can still change state without the pump (nothing queued or in flight)."""
        with self._lock:
            return all(
                j.state.is_terminal or j.state in (JobState.IMPORTED,) for j in self.jobs.values()
            ) and not self._ready

    def has_waiting_work(self) -> bool:
        with self._lock:
            return any(not j.state.is_terminal and j.state is not JobState.IMPORTED for j in self.jobs.values())

    def in_flight(self, backend: str) -> int:
        with self._lock:
            return sum(s.in_flight for (b, _), s in self._slots.items() if b == backend)

    # ------------------------------------------------------------------ ETA
    def eta(self, job_id: str) -> float | None:
        """Seconds until this job's result is ready, from observed latencies; None when not known."""
        with self._lock:
            job = self.jobs[job_id]
            if job.state.is_terminal or job.state in (JobState.READY, JobState.IMPORTED):
                return 0.0
            backend = self.backends.get(job.spec.backend)
            if backend is None:
                return None
            expected = self.latency.expected(backend.name, job.spec.mode.value)
            if job.state in (JobState.RUNNING, JobState.SUBMITTING, JobState.DOWNLOADING):
                started = job.state_times.get(JobState.SUBMITTING.value, time.monotonic())
                return max(0.0, expected - (time.monotonic() - started))
            slots = self._slots_for(backend, job.spec)
            order = self._queued_in_order()
            ahead = sum(1 for other in order[: order.index(job)] if other.spec.backend == job.spec.backend)
            waves = (ahead + slots.in_flight) // max(1, slots.believed)
            return (waves + 1) * expected

    def batch_eta(self, batch: str) -> float | None:
        with self._lock:
            etas = [self.eta(j.job_id) for j in self.jobs.values() if j.spec.batch == batch]
            known = [e for e in etas if e is not None]
            return max(known) if known else None

    # ------------------------------------------------------------------ internals: dispatch
    def _changed(self) -> None:
        self.version += 1
        self._wake.notify_all()
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                _log.exception("on_change callback failed")

    def _record(self, job: Job, *, durable: bool = False) -> None:
        if self.journal is not None:
            try:
                self.journal.record(job, durable=durable)
            except OSError:
                _log.exception("could not write the journal for job %s", job.job_id)

    def _slots_for(self, backend: Backend, spec: JobSpec) -> _GroupSlots:
        group = backend.concurrency_group(spec)
        key = (backend.name, group)
        slots = self._slots.get(key)
        if slots is None:
            declared = backend.capabilities.concurrency.get(group, 1)
            if self.config.concurrency_cap:
                declared = max(1, min(declared, self.config.concurrency_cap))
            slots = self._slots[key] = _GroupSlots(declared=declared, believed=declared)
        return slots

    def _queued_in_order(self) -> list[Job]:
        """Drafts first (oldest first), then production by batch priority, batch age and index."""
        queued = [j for j in self.jobs.values() if j.state is JobState.QUEUED]

        def order(job: Job) -> tuple[int, int, int, int, float]:
            if job.spec.mode is Mode.DRAFT:
                return (0, 0, 0, 0, job.created_at)
            batch = self.batches.get(job.spec.batch)
            priority = int(batch.priority) if batch else int(Priority.NORMAL)
            return (1, priority, self._batch_order.get(job.spec.batch, 0), job.spec.index, job.created_at)

        return sorted(queued, key=order)

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                wait_s = self._dispatch_once()
                if self._stop.is_set():
                    return
                self._wake.wait(timeout=wait_s)

    def _dispatch_once(self) -> float:
        """Send every job that may go now; returns how long to sleep if nothing wakes us sooner."""
        now_mono = time.monotonic()
        now_wall = time.time()
        next_wake = 1.0
        for job in self._queued_in_order():
            backend = self.backends[job.spec.backend]
            slots = self._slots_for(backend, job.spec)
            if now_mono < slots.not_before:
                next_wake = min(next_wake, slots.not_before - now_mono)
                continue
            if job.spec.mode is Mode.DRAFT:
                allowed = slots.believed
            else:
                if self.production_paused:
                    continue
                batch = self.batches.get(job.spec.batch)
                if batch and batch.start_at and now_wall < batch.start_at:
                    next_wake = min(next_wake, batch.start_at - now_wall)
                    continue
                if batch and batch.budget is not None and not self._fits_budget(job, batch):
                    continue
                reserve = min(self.config.draft_reserved_slots, slots.declared - 1)
                allowed = slots.believed - max(0, reserve)
            if slots.in_flight >= allowed:
                continue
            slots.in_flight += 1
            job.move_to(JobState.SUBMITTING)
            self._record(job)
            self._submit_pool.submit(self._submit_worker, job, backend, slots)
        self._track_threads()
        return next_wake

    def _fits_budget(self, job: Job, batch: BatchSpec) -> bool:
        """Whether the job may be sent now. Jobs that can never fit are failed and reported; jobs
        that fit only if a running job fails (and is refunded) wait."""
        members = [j for j in self.jobs.values() if j.spec.batch == batch.name and j is not job]
        spent = sum(j.credits_spent for j in members)
        committed = sum(j.credits_estimated for j in members if j.state.is_in_flight)
        budget = batch.budget or 0.0
        if spent + job.credits_estimated > budget + 1e-9:
            job.fail(
                "over_budget",
                f"skipped: needs ~{job.credits_estimated:g} credits, batch '{batch.name}' has "
                f"{max(0.0, budget - spent):g} of {budget:g} left",
            )
            self.budget_skipped[batch.name].append(job.job_id)
            self._record(job)
            self._changed()
            return False
        return spent + committed + job.credits_estimated <= budget + 1e-9

    def _track_threads(self) -> None:
        """Peak of this scheduler's own threads (dispatcher, watchers, workers), for the benchmark."""
        count = sum(1 for t in threading.enumerate() if t.name.startswith(self._thread_prefix))
        self.threads_peak = max(self.threads_peak, count)

    # ------------------------------------------------------------------ internals: workers
    def _submit_worker(self, job: Job, backend: Backend, slots: _GroupSlots) -> None:
        attempt = 0
        while True:
            try:
                task_id = backend.submit(job.spec, client_ref=job.job_id)
            except BackendError as exc:
                with self._lock:
                    if exc.nothing_created and exc.retryable and attempt < self.config.max_submit_retries:
                        # Safe to send again: the provider guarantees nothing was created or charged.
                        attempt += 1
                        slots.in_flight -= 1
                        if exc.code == "concurrency_limit":
                            slots.believed = max(1, min(slots.believed, slots.in_flight))
                        delay = backoff_delay(attempt, base_s=0.05, retry_after_s=exc.retry_after_s)
                        slots.not_before = time.monotonic() + delay
                        if job.cancel_requested:
                            job.move_to(JobState.CANCELLED)
                        else:
                            job.move_to(JobState.QUEUED)
                        self._record(job)
                        self._changed()
                        return
                    slots.in_flight -= 1
                    job.fail(exc.code, exc.message)
                    self._record(job)
                    self._changed()
                return
            except Exception as exc:  # a bug in a backend must fail one job, not the scheduler
                _log.exception("backend %s crashed on submit", backend.name)
                with self._lock:
                    slots.in_flight -= 1
                    job.fail("internal_error", f"{backend.name} failed unexpectedly: {exc}")
                    self._record(job)
                    self._changed()
                return
            with self._lock:
                job.task_id = task_id
                job.metadata.update(backend.describe(job.spec))
                job.move_to(JobState.RUNNING)
                # Durable before anything else happens: this id is what stops a double charge.
                self._record(job, durable=True)
                if job.cancel_requested:
                    job.note = self._cancel_running(job)
                    self._record(job)
                self._ensure_watcher(backend)
                self._changed()
            return

    def _ensure_watcher(self, backend: Backend) -> None:
        thread = self._watchers.get(backend.name)
        if thread is None or not thread.is_alive():
            name = f"{self._thread_prefix}-watch-{backend.name}"
            thread = threading.Thread(target=self._watch_loop, args=(backend,), name=name, daemon=True)
            self._watchers[backend.name] = thread
            thread.start()

    def _watch_loop(self, backend: Backend) -> None:
        failures = 0
        idle_since: float | None = None
        while not self._stop.is_set():
            with self._lock:
                watched = {
                    j.task_id: j
                    for j in self.jobs.values()
                    if j.spec.backend == backend.name and j.state is JobState.RUNNING and j.task_id
                }
                orphans = [task for name, task in self._orphans if name == backend.name]
            task_ids = [*watched, *orphans]
            if not task_ids:
                # Linger briefly so a steady stream of jobs does not start a thread per job.
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 2.0:
                    with self._lock:
                        if self._watchers.get(backend.name) is threading.current_thread():
                            del self._watchers[backend.name]
                    return
                self._stop.wait(0.05)
                continue
            idle_since = None
            try:
                updates = backend.watch(task_ids, self.config.watch_timeout_s)
                failures = 0
            except BackendError as exc:
                failures += 1
                delay = backoff_delay(
                    failures, cap_s=self.config.read_backoff_cap_s, retry_after_s=exc.retry_after_s
                )
                _log.warning("%s: status check failed (%s); retrying in %.1fs", backend.name, exc.message, delay)
                self._stop.wait(delay)
                continue
            except Exception:
                failures += 1
                _log.exception("%s: watch crashed", backend.name)
                self._stop.wait(min(10.0, 0.5 * failures))
                continue
            for update in updates:
                self._apply_update(backend, update)

    def _apply_update(self, backend: Backend, update: TaskUpdate) -> None:
        with self._lock:
            orphan_slots = self._orphans.get((backend.name, update.task_id))
            if orphan_slots is not None:
                if update.status.is_terminal:
                    del self._orphans[(backend.name, update.task_id)]
                    self._release(orphan_slots)
                    self._changed()
                return
            job = next(
                (j for j in self.jobs.values() if j.task_id == update.task_id and j.spec.backend == backend.name),
                None,
            )
            if job is None or job.state is not JobState.RUNNING:
                return
            if not update.status.is_terminal:
                if update.progress != job.progress:
                    job.progress = update.progress
                    self.version += 1
                return
            self._release(self._slots_for(backend, job.spec))
            if update.status is TaskStatus.SUCCESS:
                job.progress = 1.0
                job.credits_spent = update.credits or job.credits_estimated
                job.move_to(JobState.DOWNLOADING)
                self._record(job)
                self._pool.submit(self._download_worker, job, backend)
            elif update.status is TaskStatus.CANCELLED:
                job.move_to(JobState.CANCELLED)
                job.note = job.note or "cancelled on the provider"
                self._record(job)
            else:
                # Providers refund failed tasks, so nothing counts as spent.
                job.credits_spent = 0.0
                job.fail(update.error_code or "task_failed", update.error_message or "the provider failed this task")
                self._record(job)
            self._changed()

    def _release(self, slots: _GroupSlots) -> None:
        """The provider finished a task, so a slot is free. A refusal shrank the limit we believe in;
        each freed slot earns one back, up to the declared limit."""
        slots.in_flight = max(0, slots.in_flight - 1)
        if slots.believed < slots.declared:
            slots.believed += 1

    def _download_worker(self, job: Job, backend: Backend) -> None:
        assert job.task_id is not None
        dest = (self.cache_dir or Path(".")) / job.job_id
        attempt = 0
        started = job.state_times.get(JobState.SUBMITTING.value, time.monotonic())
        while True:
            try:
                files = backend.download(job.task_id, dest)
                metadata, warnings = backend.task_metadata(job.task_id)
                break
            except BackendError as exc:
                if exc.retryable and attempt < self.config.max_read_retries and not self._stop.is_set():
                    attempt += 1
                    self._stop.wait(backoff_delay(attempt, cap_s=self.config.read_backoff_cap_s,
                                                  retry_after_s=exc.retry_after_s))
                    continue
                self.mark_failed(job, exc.code, f"download failed: {exc.message}")
                return
            except Exception as exc:
                _log.exception("download of %s crashed", job.task_id)
                self.mark_failed(job, "internal_error", f"download failed unexpectedly: {exc}")
                return
        with self._lock:
            job.files = files
            job.metadata.update(metadata)
            job.warnings.extend(w for w in warnings if w not in job.warnings)
            if job.cancel_requested:
                job.move_to(JobState.CANCELLED)
                job.note = "cancelled after download; files kept in the cache"
            else:
                job.move_to(JobState.READY)
                self.latency.observe(backend.name, job.spec.mode.value, time.monotonic() - started)
                self._ready.append(job.job_id)
            self._record(job)
            self._changed()

    def _cancel_running(self, job: Job) -> str:
        backend = self.backends[job.spec.backend]
        assert job.task_id is not None
        job.move_to(JobState.CANCELLED)
        self._orphans[(backend.name, job.task_id)] = self._slots_for(backend, job.spec)
        if backend.capabilities.cancel:
            self._pool.submit(self._cancel_worker, backend, job.task_id)
            return f"cancelled '{job.label}' on {backend.name}"
        return (
            f"{backend.name} cannot cancel a started task: Kiln stopped waiting for '{job.label}', "
            "but the provider may still finish it and charge for it"
        )

    def _cancel_worker(self, backend: Backend, task_id: str) -> None:
        try:
            backend.cancel(task_id)
        except BackendError as exc:
            _log.warning("%s: cancel of %s failed: %s", backend.name, task_id, exc.message)

    def _discard_ready(self, job_id: str) -> None:
        with contextlib.suppress(ValueError):
            self._ready.remove(job_id)

    # ------------------------------------------------------------------ internals: recovery
    def _recover(self, jobs: list[Job]) -> None:
        """Rebuild jobs from the journal. Nothing recorded as sent is ever sent again."""
        with self._lock:
            for job in jobs:
                self.jobs[job.job_id] = job
                backend = self.backends.get(job.spec.backend)
                if job.state.is_terminal or job.state is JobState.IMPORTED:
                    continue
                if backend is None:
                    job.fail("unknown_backend", f"backend '{job.spec.backend}' is not available after restart")
                    self._record(job)
                    continue
                if not backend.capabilities.durable_tasks and job.state in (
                    JobState.SUBMITTING, JobState.RUNNING, JobState.DOWNLOADING
                ):
                    # The embedded engine's work died with the process; it cost nothing, so start again.
                    job.state, job.task_id, job.progress = JobState.QUEUED, None, 0.0
                    self._record(job)
                    continue
                if job.state is JobState.SUBMITTING and job.task_id is None:
                    self._recover_interrupted_submit(job, backend)
                if job.state is JobState.RUNNING:
                    self._slots_for(backend, job.spec).in_flight += 1
                    self._ensure_watcher(backend)
                elif job.state is JobState.DOWNLOADING:
                    self._pool.submit(self._download_worker, job, backend)
                elif job.state is JobState.READY:
                    if all(Path(p).exists() for p in job.files.values()):
                        self._ready.append(job.job_id)
                    else:
                        job.fail("result_missing", "the downloaded result is no longer in the cache")
                        self._record(job)
            self._changed()

    def _recover_interrupted_submit(self, job: Job, backend: Backend) -> None:
        found = backend.find_submitted(job.job_id) if backend.capabilities.reconcile else None
        if found is not None:
            job.task_id = found
            job.move_to(JobState.RUNNING)
            self._record(job, durable=True)
        elif backend.capabilities.reconcile:
            job.move_to(JobState.QUEUED)  # the provider confirms nothing was created
            self._record(job)
        else:
            job.fail(
                "submit_interrupted",
                f"Kiln stopped while sending this job to {backend.name}; it may have been created there. "
                "Check the provider's dashboard before retrying, to avoid paying twice",
            )
            self._record(job)
