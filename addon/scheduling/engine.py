"""The scheduler's engine: threads, the lock, the journal; `policy.py` decides, this module acts.

Threads:
- one dispatcher thread asks the policy what to submit next (it never does network I/O itself);
- one watcher thread per backend with tasks in flight calls `Backend.watch`;
- a small pool runs creates, so a freed slot is refilled at once, and a bounded pool runs downloads,
  cancels and balance requests.
So the thread count depends on the number of backends, never on the number of jobs. All job state
is guarded by one lock; public methods are safe from any thread. Other threads (the UI, the batch
progress) read jobs as immutable `JobView`s (`views()`), never the live `Job`s the workers change.
Nothing here touches `bpy`: results wait in a ready queue that the main-thread pump drains
(`addon/blender/runtime.py`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ..backends.base import Backend, BackendError, TaskStatus, TaskUpdate
from ..jobs import BatchSpec, Job, JobSpec, JobState, JobView, Mode
from ..journal import Journal
from ..retry import backoff_delay
from . import eta as eta_model
from . import policy, recovery
from .policy import SlotKey, SlotState

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
    """Resends of a create refused with nothing created, other than for concurrency (a concurrency
    refusal only means "wait for a slot", so it is sent again as often as it takes)."""
    max_read_retries: int = 6
    read_backoff_cap_s: float = 10.0


@dataclass(frozen=True)
class QueueSummary:
    """The queue at a glance, for the panel's header (one lock, no job objects)."""

    counts: Mapping[JobState, int]
    production_paused: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def active(self) -> int:
        """Jobs still on their way to the scene."""
        return sum(self.counts[s] for s in (JobState.QUEUED, JobState.SUBMITTING, JobState.RUNNING,
                                            JobState.DOWNLOADING, JobState.READY))


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
        """The live jobs, owned by this engine: change them only through its methods, read them
        from other threads through `views()`."""
        self.batches: dict[str, BatchSpec] = {}
        """Every batch as it was added (the runtime reads how to finish its results; the engine reads
        only its policy, copied into `_batch_policy`)."""
        self._batch_policy: dict[str, policy.BatchPolicy] = {}
        self._batch_seq = 0
        self.production_paused = False
        self.budget_skipped: dict[str, list[str]] = collections.defaultdict(list)
        self.balances: dict[str, float | str | None] = {}
        self.latency = eta_model.LatencyModel()
        self.version = 0
        """Bumped on every change, so a UI can redraw only when something happened."""

        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._slots: dict[SlotKey, SlotState] = {}
        self._ready: collections.deque[str] = collections.deque()
        self._orphans: dict[tuple[str, str], SlotKey] = {}
        """(backend, task id) cancelled in Kiln but maybe not yet on the provider: watched only to free
        its slot, because the provider counts it until it ends."""
        self._facts: dict[str, policy.QueuedJob] = {}
        """Job id → what the policy reads of it (see `_queued_facts`)."""
        self._resends: dict[str, int] = {}
        """Job id → creates sent again after a refusal other than concurrency (rate limit, refused
        connection), so those stop after `max_submit_retries`."""
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
            self.latency.set_priors(backend.name, backend.capabilities.typical_latency_s)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Recover from the journal, then start dispatching."""
        if self.journal is not None:
            self._apply_recovery(recovery.recover(self.journal.load(), self.backends))
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
            self.latency.set_priors(backend.name, backend.capabilities.typical_latency_s)
            if previous is not None and previous is not backend:
                previous.close()

    def add_batch(self, batch: BatchSpec) -> None:
        """Declare a batch before its jobs: its priority, start time and budget apply to them."""
        with self._lock:
            self._batch_seq += 1
            self.batches[batch.name] = batch
            self._batch_policy[batch.name] = policy.BatchPolicy(
                name=batch.name, priority=int(batch.priority), order=self._batch_seq,
                start_at=batch.start_at, budget=batch.budget)
            self._changed()

    def add(self, spec: JobSpec, *, retry_of: str | None = None) -> Job:
        """Queue a spec. Unknown backends fail now, with a message, instead of waiting forever.
        The returned job is live (the engine's): other threads should read it through `view()`."""
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
                self._facts.pop(job.job_id, None)
            self._changed()
            return len(done)

    def take_ready(self) -> Job | None:
        """Main thread: the next downloaded result to bring into the scene, or None. From here until
        it is marked imported, failed or finished, the job belongs to the main thread."""
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

    def views(self, job_ids: Sequence[str] | None = None, *, last: int | None = None) -> list[JobView]:
        """Immutable copies of jobs, each with its ETA: all of them in the order they were added (only
        the `last` N if given), or those of `job_ids` in that order, skipping unknown ids."""
        with self._lock:
            if job_ids is not None:
                jobs = [self.jobs[i] for i in job_ids if i in self.jobs]
            else:
                jobs = list(self.jobs.values())
                if last is not None:
                    jobs = jobs[-last:] if last > 0 else []
            etas = self._etas(jobs)
            return [job.view(etas[job.job_id]) for job in jobs]

    def view(self, job_id: str) -> JobView | None:
        found = self.views([job_id])
        return found[0] if found else None

    def summary(self) -> QueueSummary:
        with self._lock:
            counts = collections.Counter(j.state for j in self.jobs.values())
            return QueueSummary(MappingProxyType({state: counts.get(state, 0) for state in JobState}),
                                self.production_paused)

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
            return self._etas([self.jobs[job_id]])[job_id]

    def batch_eta(self, batch: str) -> float | None:
        with self._lock:
            etas = self._etas([j for j in self.jobs.values() if j.spec.batch == batch])
            known = [e for e in etas.values() if e is not None]
            return max(known) if known else None

    def _etas(self, jobs: Sequence[Job]) -> dict[str, float | None]:
        """ETAs of these jobs, with the queue ordered once for all of them (lock held)."""
        ahead: dict[str, int] = {}
        if any(j.state is JobState.QUEUED for j in jobs):
            ahead = eta_model.ahead_on_backend(policy.in_order(self._queued_facts(), self._batch_policy))
        now = time.monotonic()
        result: dict[str, float | None] = {}
        for job in jobs:
            backend = self.backends.get(job.spec.backend)
            expected = self.latency.expected(backend.name, job.spec.mode.value) if backend else None
            started = job.state_times.get(JobState.SUBMITTING.value, now)
            slots = self._slots[self._slot_key(backend, job.spec)] \
                if backend is not None and job.state is JobState.QUEUED else None
            result[job.job_id] = eta_model.job_eta(job.state, expected, elapsed_s=now - started,
                                                   ahead=ahead.get(job.job_id, 0), slots=slots)
        return result

    # ------------------------------------------------------------------ internals: bookkeeping
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

    def _slot_key(self, backend: Backend, spec: JobSpec) -> SlotKey:
        """The (backend, group) this spec counts against, with its slots created on first use."""
        group = backend.concurrency_group(spec)
        key = (backend.name, group)
        if key not in self._slots:
            self._slots[key] = policy.new_slots(backend.capabilities.concurrency.get(group, 1),
                                                self.config.concurrency_cap)
        return key

    def _queued_facts(self) -> list[policy.QueuedJob]:
        """What the policy needs to know of each queued job whose backend is known (lock held). A job's
        facts never change (its spec is frozen, its estimate set once), so each is built only once."""
        facts = []
        for job in self.jobs.values():
            if job.state is not JobState.QUEUED:
                continue
            fact = self._facts.get(job.job_id)
            if fact is None:
                backend = self.backends.get(job.spec.backend)
                if backend is None:
                    continue
                _, group = self._slot_key(backend, job.spec)
                fact = self._facts[job.job_id] = policy.QueuedJob(
                    job_id=job.job_id, backend=backend.name, group=group, draft=job.spec.mode is Mode.DRAFT,
                    batch=job.spec.batch, index=job.spec.index, created_at=job.created_at,
                    credits_estimated=job.credits_estimated)
            facts.append(fact)
        return facts

    def _queue_view(self) -> policy.QueueView:
        """One pass over the jobs: the queued ones, and the running credit totals of batches with a budget."""
        budgeted = {name for name, batch in self._batch_policy.items() if batch.budget is not None}
        totals = policy.batch_totals(
            (j.spec.batch, j.credits_spent, j.credits_estimated, j.state.is_in_flight)
            for j in self.jobs.values() if j.spec.batch in budgeted) if budgeted else {}
        return policy.QueueView(
            queued=tuple(self._queued_facts()), slots=dict(self._slots), batches=dict(self._batch_policy),
            totals=totals, production_paused=self.production_paused,
            draft_reserved_slots=self.config.draft_reserved_slots)

    # ------------------------------------------------------------------ internals: dispatch
    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                wait_s = self._dispatch_once()
                if self._stop.is_set():
                    return
                self._wake.wait(timeout=wait_s)

    def _dispatch_once(self) -> float:
        """Send every job the policy lets go now; returns how long to sleep if nothing wakes us sooner."""
        decision = policy.dispatch(self._queue_view(), now_mono=time.monotonic(), now_wall=time.time())
        for skipped in decision.over_budget:
            job = self.jobs[skipped.job_id]
            job.fail("over_budget", skipped.message)
            self.budget_skipped[skipped.batch].append(job.job_id)
            self._record(job)
        self._slots.update(decision.slots)
        for job_id in decision.submit:
            job = self.jobs[job_id]
            backend = self.backends[job.spec.backend]
            job.move_to(JobState.SUBMITTING)
            self._record(job)
            self._submit_pool.submit(self._submit_worker, job, backend, self._slot_key(backend, job.spec))
        if decision.over_budget:
            self._changed()
        elif decision.submit:
            self.version += 1  # the queue panel shows "submitting"; nothing else needs waking
        self._track_threads()
        return decision.sleep_s

    def _track_threads(self) -> None:
        """Peak of this scheduler's own threads (dispatcher, watchers, workers), for the benchmark."""
        count = sum(1 for t in threading.enumerate() if t.name.startswith(self._thread_prefix))
        self.threads_peak = max(self.threads_peak, count)

    # ------------------------------------------------------------------ internals: workers
    def _submit_worker(self, job: Job, backend: Backend, key: SlotKey) -> None:
        try:
            task_id = backend.submit(job.spec, client_ref=job.job_id)
        except BackendError as exc:
            with self._lock:
                concurrency = exc.code == "concurrency_limit"
                attempt = policy.resend_attempt(self._resends.get(job.job_id, 0), concurrency=concurrency,
                                                max_retries=self.config.max_submit_retries) \
                    if exc.nothing_created and exc.retryable else None
                if attempt is not None:
                    # Safe to send again: the provider guarantees nothing was created or charged.
                    delay = backoff_delay(max(1, attempt), base_s=0.05, retry_after_s=exc.retry_after_s)
                    self._slots[key] = policy.refused(self._slots[key], concurrency=concurrency,
                                                      retry_at=time.monotonic() + delay)
                    if job.cancel_requested:
                        self._resends.pop(job.job_id, None)
                        job.move_to(JobState.CANCELLED)
                    else:
                        self._resends[job.job_id] = attempt
                        job.move_to(JobState.QUEUED)
                else:
                    self._resends.pop(job.job_id, None)
                    self._slots[key] = policy.failed_create(self._slots[key])
                    job.fail(exc.code, exc.message)
                self._record(job)
                self._changed()
            return
        except Exception as exc:  # a bug in a backend must fail one job, not the scheduler
            _log.exception("backend %s crashed on submit", backend.name)
            with self._lock:
                self._resends.pop(job.job_id, None)
                self._slots[key] = policy.failed_create(self._slots[key])
                job.fail("internal_error", f"{backend.name} failed unexpectedly: {exc}")
                self._record(job)
                self._changed()
            return
        with self._lock:
            self._resends.pop(job.job_id, None)
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
                watched = [
                    j.task_id
                    for j in self.jobs.values()
                    if j.spec.backend == backend.name and j.state is JobState.RUNNING and j.task_id
                ]
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
            orphan = self._orphans.get((backend.name, update.task_id))
            if orphan is not None:
                if update.status.is_terminal:
                    del self._orphans[(backend.name, update.task_id)]
                    self._slots[orphan] = policy.released(self._slots[orphan])
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
            key = self._slot_key(backend, job.spec)
            self._slots[key] = policy.released(self._slots[key])
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
        self._orphans[(backend.name, job.task_id)] = self._slot_key(backend, job.spec)
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
    def _apply_recovery(self, found: recovery.Recovery) -> None:
        """Take in what the journal held (see `recovery.py`): reattach, download, queue for import."""
        with self._lock:
            for job in found.jobs:
                self.jobs[job.job_id] = job
            for job, durable in found.records:
                self._record(job, durable=durable)
            for job in found.running:
                backend = self.backends[job.spec.backend]
                key = self._slot_key(backend, job.spec)
                self._slots[key] = policy.occupied(self._slots[key])
                self._ensure_watcher(backend)
            for job in found.downloading:
                self._pool.submit(self._download_worker, job, self.backends[job.spec.backend])
            self._ready.extend(found.ready)
            self._changed()
