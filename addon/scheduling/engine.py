"""The scheduler's engine: threads, the lock, the journal; `policy.py` decides, this module acts.

Threads:
- one dispatcher thread asks the policy what to submit next (it never does network I/O itself);
- one watcher thread per backend with tasks in flight calls `Backend.watch` (polling);
- for a push provider (`Capabilities.streams`), one stream thread per task reads its status stream,
  at most `max_streams` of them in all: the scheduler hears of a finish when it is pushed, with no poll.
  A task past that bound is polled, and so is one whose stream dropped, until its stream reconnects;
- a small pool runs creates, so a freed slot is refilled at once, and a bounded pool runs downloads,
  cancels and balance requests.
So the thread count depends on the number of backends, never on the number of jobs. All job state
is guarded by one lock; public methods are safe from any thread. Other threads (the UI, the batch
progress) read jobs as immutable `JobView`s (`views()`), never the live `Job`s the workers change.
Nothing here touches `bpy`: results wait in a ready queue that the main-thread pump drains
(`addon/blender/runtime.py`).

Money rules the engine keeps (DESIGN, "Decisions that several open issues share"):
- a create's intent is fsynced to the journal before the create is sent, its task id the moment it
  returns; a create whose outcome cannot be known makes the job UNCERTAIN, never sent again on its own;
- a retry resumes at the stage that failed (`jobs.retry_start`): a paid task is watched or downloaded
  again, never created again; one retry per attempt, and it replaces that attempt's row;
- a cancelled task the provider cannot stop stays watched, and its result is kept (`result_kept`);
- every job ends: `give_up_after_s` without a usable answer from the provider fails it (recoverably:
  the task id is kept), and so do a few "no such task" answers in a row.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..backends.base import Backend, BackendError, TaskStatus, TaskUpdate, unknown_task_message
from ..jobs import (
    RETRYABLE_STATES,
    BatchSpec,
    DoubleChargeRisk,
    Job,
    JobSpec,
    JobState,
    JobView,
    Mode,
    Stage,
    retry_start,
)
from ..journal import Journal, UnreadableEntry
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
    plan_concurrency: Mapping[str, int] = field(default_factory=dict)
    """Backend name → the account plan's real limit of tasks in flight, when it is below the provider's
    documented one (the preference "Plan concurrency", `[backends.<name>] concurrency`): without it the
    slot kept for drafts would be believed free on a smaller plan. A backend not named, or 0, keeps the
    documented limit; refusals still lower it at run time."""
    watch_timeout_s: float = 0.25
    max_streams: int = 16
    """Status streams open at once over all push backends (a thread each); past it, tasks are polled."""
    stream_retry_s: float = 2.0
    """After a stream drops: its task is polled at once, and its stream reconnects this long after."""
    max_submit_retries: int = 8
    """Resends of a create refused with nothing created, other than for concurrency (a concurrency
    refusal only means "wait for a slot", so it is sent again as often as it takes)."""
    max_read_retries: int = 6
    read_backoff_cap_s: float = 10.0
    credit_reserve: float = 0.0
    """Credits production leaves on each account for drafts (the preference "Reserve for drafts",
    `[batch] reserve`). Above 0, production waits for a backend's balance to be read before it spends."""
    give_up_after_s: float = 120.0
    """Per job: this long without a usable answer from the provider (status polls, downloads) fails it,
    recoverably (its task id is kept). The preference "Give up after", the batch's --give-up-after."""
    unknown_task_limit: int = 3
    """Consecutive "no such task" answers that fail a job (a changed key, an expired task)."""


UNREACHABLE = "unreachable"
"""Error code of a job failed by `give_up_after_s`: recoverable, its task id kept."""
UNKNOWN_TASK = "unknown_task"
HELD_NOTE_PREFIX = "waiting: its batch"
PENDING_STEP = "pending_step"
"""Job metadata: the chained step whose create went out and whose task id is not back yet."""
MOVED_FROM = "moved_from"
"""Job metadata: the task ids this job's task had before its backend resent it elsewhere, oldest first."""
STEP_CREDITS = "step_credits"
"""Job metadata: what each finished step of a chained job was charged, until the last one is done."""
BOOKED_CREDITS = "booked_credits"
"""Job metadata: credits of a chained job's paid steps already counted for the session when a later
step failed or was cancelled; its Retry counts only the rest when it finishes."""

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

    @property
    def failed(self) -> int:
        return self.counts[JobState.FAILED]

    @property
    def uncertain(self) -> int:
        return self.counts[JobState.UNCERTAIN]


class QueueReadOnly(RuntimeError):
    """This engine only shows a queue that another process runs (it holds the journal's lock)."""


_SERIALS = itertools.count(1)


class Scheduler:
    def __init__(
        self,
        backends: Iterable[Backend],
        *,
        journal: Journal | None = None,
        cache_dir: Path | None = None,
        config: SchedulerConfig | None = None,
        on_change: Callable[[], None] | None = None,
        read_only: str = "",
    ) -> None:
        self.config = config or SchedulerConfig()
        self.read_only = read_only
        """Why this engine may only show its journal (another Blender runs that queue), or "". A read-only
        engine sends, watches, downloads and writes nothing: two engines on one journal would each send
        its queued jobs, and the provider would charge twice."""
        self.backends: dict[str, Backend] = {b.name: b for b in backends}
        self.journal = journal
        # Neither given (an engine for a script or a benchmark): a private temporary folder, never the
        # current directory, which may be the artist's project or a read-only install.
        self.cache_dir = Path(cache_dir) if cache_dir else (
            journal.folder / "results" if journal else Path(tempfile.mkdtemp(prefix="kiln-results-")))
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
        self.session_spent = 0.0
        """Credits charged by tasks that ended since this engine started; clearing the queue keeps it."""
        self._charged_total: dict[str, float] = collections.defaultdict(float)
        """Backend → credits charged since this engine started."""
        self._charged_at_read: dict[str, float] = collections.defaultdict(float)
        """Backend → `_charged_total` when the balance in `balances` was asked for: charges since then are
        not in that balance yet."""
        self._balance_queued: set[str] = set()
        """Backends with a balance request waiting for a worker: a batch's charges share one, and never
        fill the pool that downloads run in."""
        self.latency = eta_model.LatencyModel()
        """Seconds from create to a downloaded result, per (backend, mode): queued jobs' ETAs."""
        self.task_latency = eta_model.LatencyModel()
        """Seconds from create to the provider reporting the task done, per (backend, step): predictions."""
        self._predictors: dict[str, eta_model.FinishPredictor] = {}
        """Backend → the predicted finish of its tasks in flight (when to poll, the panel's ETA)."""
        self._task_started: dict[str, float] = {}
        """Task id → monotonic time its create returned."""
        self.polls: collections.deque[tuple[float, str, int]] = collections.deque(maxlen=10000)
        """(monotonic time, the task whose predicted finish made it due, tasks asked about) of every paced
        status request: who waited for whom, for tests and the benchmark."""
        self.version = 0
        """Bumped on every change, so a UI can redraw only when something happened."""
        self.serial = next(_SERIALS)
        """Which engine this is, unique in the process (a restart makes a new one). Not `id()`: a new
        engine can reuse a discarded one's address, and a UI would then show the old engine's jobs."""

        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._slots: dict[SlotKey, SlotState] = {}
        self._ready: collections.deque[str] = collections.deque()
        self._unreachable_since: dict[str, float] = {}
        """Job id → monotonic time since which the provider gave no usable answer about it."""
        self._misses: dict[str, int] = {}
        """Job id → consecutive "no such task" answers."""
        self._held: set[str] = set()
        """Queued production jobs waiting for their batch to be declared (their note says so)."""
        self.journal_problems: list[UnreadableEntry] = []
        """Journal entries this version could not read (kept in the file): for the panel and reports."""
        self._facts: dict[str, policy.QueuedJob] = {}
        """Job id → what the policy reads of it (see `_queued_facts`)."""
        self._creates: set[Future[None]] = set()
        """Creates sent (or about to be) whose answer has not been handled yet."""
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
        self._streams: dict[str, threading.Thread] = {}
        """Task id → the thread reading its status stream (push backends)."""
        self._stream_retry_at: dict[str, float] = {}
        """Task id → monotonic time its dropped stream may reconnect; until then it is polled."""
        self._poll_now: set[str] = set()
        """Tasks whose stream just dropped: the next status request asks about them at once."""
        self.stream_drops = 0
        """Streams that ended without a terminal status (each one fell back to polling)."""
        self._stepping: set[str] = set()
        """Jobs whose next chained step is being created: their finished task is not watched again (a
        second "done" would look like a step sent before a crash)."""
        """Streams that ended without a terminal status (each one fell back to polling)."""
        self._dispatcher: threading.Thread | None = None
        self.threads_peak = 0
        for backend in self.backends.values():
            self._set_priors(backend)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Recover from the journal (batches first, so no job is dispatched without its batch's budget,
        start time and finishing), then start dispatching. A read-only engine only reads the journal."""
        if self.read_only:
            self.reload()
            return
        if self.journal is not None:
            contents = self.journal.load()
            with self._lock:
                for batch in contents.batches.values():
                    self._declare_batch(batch)
                self.journal_problems = list(contents.unreadable)
            self._apply_recovery(recovery.recover(contents.jobs, self.backends))
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name=f"{self._thread_prefix}-dispatch", daemon=True
        )
        self._dispatcher.start()

    def reload(self) -> None:
        """Read-only: show the journal as the engine that owns it last wrote it."""
        if not self.read_only or self.journal is None:
            return
        contents = self.journal.load()
        with self._lock:
            self.batches = dict(contents.batches)
            self.jobs = {job.job_id: job for job in contents.jobs}
            self.journal_problems = list(contents.unreadable)
            self._changed()

    def _writable(self) -> None:
        """Raise QueueReadOnly, with the reason, in an engine that only shows another one's queue."""
        if self.read_only:
            raise QueueReadOnly(self.read_only)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop threads without losing anything: running tasks stay `running` in the journal and are
        reattached by the next start."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout_s
        for backend in self.backends.values():
            if backend.capabilities.streams:
                backend.close()  # wakes the stream threads blocked on a read; closed again below, harmlessly
        threads = [self._dispatcher, *self._watchers.values(), *self._streams.values()]
        for thread in threads:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._submit_pool.shutdown(wait=False, cancel_futures=True)
        # A create on the wire cannot be called back: give it the rest of the time to bring its task id
        # home to the journal, so the next start reattaches it rather than calling it uncertain.
        wait_for_futures(list(self._creates), timeout=max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)
        for backend in self.backends.values():
            backend.close()
        if self.journal is not None and not self.read_only:
            with self._lock:
                try:
                    self.journal.compact(list(self.jobs.values()), list(self.batches.values()))
                except OSError:
                    _log.exception("could not compact the journal (it is left as it was)")

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ public API
    def add_backend(self, backend: Backend) -> None:
        """Make a backend available (or replace one whose key or endpoint changed)."""
        with self._lock:
            previous = self.backends.get(backend.name)
            self.backends[backend.name] = backend
            self._set_priors(backend)
            if previous is not None and previous is not backend:
                previous.close()

    def _set_priors(self, backend: Backend) -> None:
        self.latency.set_priors(backend.name, backend.capabilities.typical_latency_s)
        self.task_latency.set_priors(backend.name, backend.capabilities.typical_latency_s)
        self._predictors[backend.name] = eta_model.FinishPredictor(backend.name, self.task_latency)

    def add_batch(self, batch: BatchSpec) -> None:
        """Declare a batch before its jobs: its priority, start time and budget apply to them. It is
        journaled, so a restart restores it before anything is dispatched."""
        self._writable()
        with self._lock:
            if self.batches.get(batch.name) != batch and self.journal is not None:
                try:
                    self.journal.record_batch(batch)
                except OSError:
                    _log.exception("could not journal batch %s", batch.name)
            self._declare_batch(batch)
            self._changed()

    def _declare_batch(self, batch: BatchSpec) -> None:
        """Take in a batch's settings (lock held); jobs that waited for it may go now."""
        self._batch_seq += 1
        self.batches[batch.name] = batch
        self._batch_policy[batch.name] = policy.BatchPolicy(
            name=batch.name, priority=int(batch.priority), order=self._batch_seq,
            start_at=batch.start_at, budget=batch.budget)
        for job_id in [j for j in self._held if self.jobs[j].spec.batch == batch.name]:
            self._held.discard(job_id)
            job = self.jobs[job_id]
            if job.note.startswith(HELD_NOTE_PREFIX):
                job.note = ""

    def add(self, spec: JobSpec) -> Job:
        """Queue a spec. Unknown backends fail now, with a message, instead of waiting forever.
        The returned job is live (the engine's): other threads should read it through `view()`."""
        self._writable()
        backend = self.backends.get(spec.backend)
        job = Job(spec=spec)
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
        self._writable()
        with self._lock:
            self.production_paused = True
            self._changed()

    def resume_production(self) -> None:
        self._writable()
        with self._lock:
            self.production_paused = False
            self._changed()

    def cancel(self, job_id: str) -> str:
        """Cancel a job in any live state; returns what happened, in words for the artist. A task already
        on the provider stays watched until the provider ends it: if it finishes anyway (a provider that
        cannot stop a started task charges for it), its result is downloaded and kept."""
        self._writable()
        with self._lock:
            job = self.jobs[job_id]
            state = job.state
            if state.is_terminal or state is JobState.IMPORTED:
                return f"'{job.label}' is already {state.value}; nothing to cancel"
            if job.cancel_requested:
                return job.note or f"'{job.label}' is being cancelled"
            if state is JobState.QUEUED:
                job.move_to(JobState.CANCELLED)
                self._held.discard(job_id)
                message = f"cancelled '{job.label}' before it was sent"
            elif state is JobState.SUBMITTING:
                # The worker holding the create finishes it, sees the flag and cancels the new task.
                job.cancel_requested = True
                message = f"cancelling '{job.label}'"
            elif state is JobState.RUNNING:
                message = self._cancel_running(job)
            elif state is JobState.DOWNLOADING:
                job.cancel_requested = True
                message = f"cancelling '{job.label}': the paid result is still downloaded and kept in the cache"
            else:  # READY: downloaded but not imported yet
                self._discard_ready(job_id)
                self._end_cancelled(job)
                message = job.note
            job.note = message
            self._record(job)
            self._changed()
            return message

    def retry(self, job_id: str, *, confirm_double_charge: bool = False) -> Job:
        """Try a failed, cancelled or uncertain job again, as a new attempt that replaces its row and
        resumes at the stage that failed: a paid task is watched or downloaded again, never created again.

        Only one retry of an attempt is ever made: asking again returns the attempt that replaced it.
        An uncertain job (a create that may have been charged) is sent again only with
        `confirm_double_charge=True`; without it this raises `DoubleChargeRisk`. A job whose cancel is
        still pending is simply kept (the cancel is withdrawn). Raises KeyError for an unknown id and
        ValueError for a job that cannot be retried."""
        self._writable()
        with self._lock:
            old = self.jobs[job_id]
            latest = self._latest_attempt(old)
            if latest is not old:
                return latest
            if old.cancel_requested and not old.state.is_terminal:
                old.cancel_requested = False
                old.note = f"kept '{old.label}': the cancel was withdrawn"
                self._record(old)
                self._changed()
                return old
            if old.state not in RETRYABLE_STATES:
                raise ValueError(f"only failed, cancelled or uncertain jobs can be retried, not {old.state.value} ones")
            if old.state is JobState.UNCERTAIN and not confirm_double_charge:
                raise DoubleChargeRisk(
                    f"'{old.label}' may already have been created and charged (~{old.credits_estimated:g} credits) "
                    f"on {old.spec.backend}; check the provider's dashboard, then confirm the possible double "
                    "charge to send it again")
            backend = self.backends.get(old.spec.backend)
            if backend is None:
                raise ValueError(f"backend '{old.spec.backend}' is not available (set it up, then retry)")
            files_present = bool(old.files) and all(Path(p).is_file() for p in old.files.values())
            start = retry_start(old.stage, has_task=old.task_id is not None, files_present=files_present,
                                durable_tasks=backend.capabilities.durable_tasks)
            job = Job(spec=old.spec, retry_of=old.job_id, state=start)
            job.credits_estimated = old.credits_estimated
            if start is not JobState.QUEUED:
                # The paid task (and what it cost) moves to the new attempt.
                job.task_id, job.stage, job.credits_spent = old.task_id, old.stage, old.credits_spent
                job.task_ids = list(old.task_ids)
                job.metadata.update(old.metadata)
                job.warnings.extend(old.warnings)
                old.credits_spent = 0.0
                if start is JobState.READY:
                    job.files = dict(old.files)
            else:
                job.credits_estimated = backend.estimate_credits(job.spec)
            old.superseded_by = job.job_id
            self.jobs[job.job_id] = job
            self._resume(job, backend)
            self._record(job, durable=job.task_id is not None)
            self._record(old)
            self._changed()
            return job

    def import_anyway(self, job_id: str) -> Job:
        """Bring in the result of a cancelled task the provider finished (and charged for) anyway: a
        retry that starts at the cached result (or its download), never at a create."""
        with self._lock:
            job = self.jobs[job_id]
            if not job.result_kept:
                raise ValueError(f"'{job.label}' has no kept result to import")
            return self.retry(job_id)

    def _resume(self, job: Job, backend: Backend) -> None:
        """Start a job that begins past QUEUED (a retry at its stage; lock held)."""
        if job.state is JobState.RUNNING:
            key = self._slot_key(backend, job.spec)
            self._slots[key] = policy.occupied(self._slots[key])
            self._ensure_watcher(backend)
        elif job.state is JobState.DOWNLOADING:
            self._pool.submit(self._download_worker, job, backend)
        elif job.state is JobState.READY:
            self._ready.append(job.job_id)

    def _latest_attempt(self, job: Job) -> Job:
        """The newest attempt at this job's asset (following retries); the job itself if never retried."""
        seen = {job.job_id}
        while job.superseded_by is not None and job.superseded_by in self.jobs and job.superseded_by not in seen:
            job = self.jobs[job.superseded_by]
            seen.add(job.job_id)
        return job

    def _attempts(self, job: Job) -> tuple[JobView, ...]:
        """Earlier attempts this job replaced, oldest first (lock held)."""
        earlier: list[JobView] = []
        seen = {job.job_id}
        previous = self.jobs.get(job.retry_of) if job.retry_of else None
        while previous is not None and previous.job_id not in seen:
            seen.add(previous.job_id)
            earlier.append(previous.view(0.0 if previous.state.is_terminal else None))
            previous = self.jobs.get(previous.retry_of) if previous.retry_of else None
        return tuple(reversed(earlier))

    def refresh_balance(self, backend_name: str) -> None:
        """Ask the provider for the account balance on a worker thread; `balances` has the answer
        (a number, None for "no such notion", or the error text) when it arrives."""
        backend = self.backends.get(backend_name)
        if backend is None:
            return
        with self._lock:
            if backend_name in self._balance_queued:
                return  # a request not yet sent will read the balance after this moment anyway
            self._balance_queued.add(backend_name)

        def ask() -> None:
            with self._lock:
                self._balance_queued.discard(backend_name)
                charged_before = self._charged_total[backend_name]
            try:
                value: float | str | None = backend.balance()
            except BackendError as exc:
                value = exc.message
            with self._lock:
                # Two reads may overlap: an answer older than the one already kept is dropped. Charges from
                # before this read are in its balance; later ones are not (yet).
                if charged_before >= self._charged_at_read[backend_name] or backend_name not in self.balances:
                    self.balances[backend_name] = value
                    self._charged_at_read[backend_name] = charged_before
                    self._changed()

        self._pool.submit(ask)

    def _charged(self, backend: Backend, credits: float) -> None:
        """A task ended and was charged (lock held): count it for the session, and ask for the balance
        again in the background, so the panel shows what is left without anyone pressing refresh."""
        if credits <= 0:
            return
        self.session_spent += credits
        self._charged_total[backend.name] += credits
        self.refresh_balance(backend.name)

    def clear_finished(self) -> int:
        """Forget ended jobs, except attempts a live retry still lists (and kept results nobody imported:
        their row is how the artist imports them). Returns the rows removed."""
        self._writable()
        with self._lock:
            done = [j for j in self.jobs.values() if j.state.is_terminal and not self._latest_attempt(j).result_kept
                    and self._latest_attempt(j).state.is_terminal]
            for job in done:
                del self.jobs[job.job_id]
                self._facts.pop(job.job_id, None)
            self._changed()
            return sum(1 for j in done if j.superseded_by is None)

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
            job.reach(Stage.IMPORTED)
            if finished:
                job.move_to(JobState.FINISHED)
            self._record(job)
            self._changed()

    def mark_stage(self, job: Job, stage: Stage, **metadata: Any) -> None:
        """Main thread: a job it holds reached `stage` outside the scheduler (a finishing worker wrote its
        finished asset); journaled with `metadata`, so a resume skips that stage."""
        with self._lock:
            job.metadata.update(metadata)
            job.reach(stage)
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
        """Immutable copies of jobs, each with its ETA and earlier attempts: one per asset (an attempt a
        retry replaced is listed inside that retry, not on its own) in the order they were added (only
        the `last` N if given), or those of `job_ids` in that order, skipping unknown ids."""
        with self._lock:
            if job_ids is not None:
                jobs = [self.jobs[i] for i in job_ids if i in self.jobs]
            else:
                jobs = [j for j in self.jobs.values() if not self._is_replaced(j)]
                if last is not None:
                    jobs = jobs[-last:] if last > 0 else []
            etas = self._etas(jobs)
            return [job.view(etas[job.job_id], self._attempts(job)) for job in jobs]

    def _is_replaced(self, job: Job) -> bool:
        return job.superseded_by is not None and job.superseded_by in self.jobs

    def view(self, job_id: str) -> JobView | None:
        found = self.views([job_id])
        return found[0] if found else None

    def summary(self) -> QueueSummary:
        """Counts per state, one per asset: an attempt a retry replaced no longer counts as failed."""
        with self._lock:
            counts = collections.Counter(j.state for j in self.jobs.values() if not self._is_replaced(j))
            return QueueSummary(MappingProxyType({state: counts.get(state, 0) for state in JobState}),
                                self.production_paused)

    def is_idle(self) -> bool:
        """True when no job can still change state without the pump or the artist: nothing queued or in
        flight, except production jobs held for want of their batch (they wait for it, and say so)."""
        with self._lock:
            return all(
                j.state.is_terminal or j.state is JobState.IMPORTED or j.job_id in self._held
                for j in self.jobs.values()
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
            if job.state is JobState.RUNNING and expected is not None and backend is not None and job.task_id:
                predictor = self._predictors.get(backend.name)
                left = predictor.left_s(job.task_id, now) if predictor is not None else None
                result[job.job_id] = eta_model.running_eta(expected, now - started, job.progress, left)
                continue
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
        if self.journal is not None and not self.read_only:
            try:
                self.journal.record(job, durable=durable)
            except OSError:
                _log.exception("could not write the journal for job %s", job.job_id)

    def _slot_key(self, backend: Backend, spec: JobSpec) -> SlotKey:
        """The (backend, group) this spec counts against, with its slots created on first use."""
        group = backend.concurrency_group(spec)
        key = (backend.name, group)
        if key not in self._slots:
            limit = backend.capabilities.concurrency.get(group, 1)
            plan = self.config.plan_concurrency.get(backend.name)
            self._slots[key] = policy.new_slots(min(limit, plan) if plan else limit, self.config.concurrency_cap)
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
        # An uncertain create may have been charged: it counts against the budget as if it were.
        totals = policy.batch_totals(
            (j.spec.batch, j.credits_estimated if j.state is JobState.UNCERTAIN else j.credits_spent,
             j.credits_estimated, j.state.is_in_flight)
            for j in self.jobs.values() if j.spec.batch in budgeted) if budgeted else {}
        queued = tuple(self._queued_facts())
        return policy.QueueView(
            queued=queued, slots=dict(self._slots), batches=dict(self._batch_policy),
            totals=totals, production_paused=self.production_paused,
            draft_reserved_slots=self.config.draft_reserved_slots,
            credits=self._credit_pools({job.backend for job in queued if not job.draft}))

    def _credit_pools(self, backends: Iterable[str]) -> dict[str, policy.CreditPool]:
        """The accounts production spends from (lock held): every backend with a balance read, and, while a
        reserve is set, those not read yet (asked now; production waits for the answer)."""
        pools: dict[str, policy.CreditPool] = {}
        for name in backends:
            value = self.balances.get(name, "unread")
            if value == "unread" and self.config.credit_reserve > 0:
                self.refresh_balance(name)
                pools[name] = policy.CreditPool(None, self.config.credit_reserve)
            elif isinstance(value, int | float):
                committed = sum(j.credits_estimated for j in self.jobs.values()
                                if j.spec.backend == name and j.state.is_in_flight)
                spent_since = self._charged_total[name] - self._charged_at_read[name]
                pools[name] = policy.CreditPool(float(value), self.config.credit_reserve, spent_since, committed)
        return pools

    def credit_pool(self, backend_name: str) -> policy.CreditPool | None:
        """`backend_name`'s account as a new request may spend it (None: no balance known), counting the
        jobs still queued as committed too: what the panel's Queue buttons and the operators check."""
        with self._lock:
            pool = self._credit_pools([backend_name]).get(backend_name) if backend_name in self.balances else None
            if pool is None or pool.balance is None:
                return None
            queued = sum(j.credits_estimated for j in self.jobs.values()
                         if j.spec.backend == backend_name and j.state is JobState.QUEUED)
            return replace(pool, committed=pool.committed + queued)

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
            self._record(job)  # waiting for a submit thread; `_write_intent` records the create going out
            future = self._submit_pool.submit(self._submit_worker, job, backend, self._slot_key(backend, job.spec))
            self._creates.add(future)
            future.add_done_callback(self._creates.discard)
        newly_held = [j for j in decision.held if j not in self._held]
        for job_id in newly_held:
            self._held.add(job_id)
            job = self.jobs[job_id]
            job.note = (f"{HELD_NOTE_PREFIX} '{job.spec.batch}' is not known (its budget, start time and "
                        "finishing were not recovered), so this job is not sent")
        if decision.over_budget or newly_held:
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
        if not self._write_intent(job, key):
            return
        try:
            task_id = backend.submit(job.spec, client_ref=job.job_id)
        except BackendError as exc:
            if exc.nothing_created:
                self._create_refused(job, key, exc)
            else:
                self._create_unknown(job, backend, key, exc.code, exc.message)
            return
        except Exception as exc:  # a bug in a backend must end one job, not the scheduler
            _log.exception("backend %s crashed on submit", backend.name)
            self._create_unknown(job, backend, key, "internal_error", f"{backend.name} failed unexpectedly: {exc}")
            return
        self._task_created(job, backend, task_id)

    def _write_intent(self, job: Job, key: SlotKey) -> bool:
        """Right before the create goes out: record that it does, durably (fsync, outside the engine's
        lock). A crash after this and before the task id is recorded leaves an uncertain job; a crash
        before it, a job that was never sent. Returns False (and ends the job) when it must not be sent."""
        with self._lock:
            if job.cancel_requested:  # cancelled while waiting for a submit thread: nothing was sent
                self._slots[key] = policy.failed_create(self._slots[key])
                job.move_to(JobState.CANCELLED)
                self._record(job)
                self._changed()
                return False
            job.reach(Stage.SUBMITTED)
            snapshot = job.snapshot()
            durable = self.backends[job.spec.backend].capabilities.durable_tasks
        if self.journal is None:
            return True
        try:
            self.journal.record_snapshot(snapshot, durable=durable)
        except OSError as exc:
            with self._lock:
                self._slots[key] = policy.failed_create(self._slots[key])
                job.stage = Stage.NONE
                job.fail("journal_unwritable", f"not sent: Kiln could not write its journal ({exc})")
                self._changed()
            return False
        return True

    def _task_created(self, job: Job, backend: Backend, task_id: str) -> None:
        with self._lock:
            self._resends.pop(job.job_id, None)
            job.task_id = task_id
            job.task_ids = [task_id]
            self._task_started[task_id] = time.monotonic()
            key = self._slot_key(backend, job.spec)
            running = sum(1 for j in self.jobs.values() if j.state is JobState.RUNNING
                          and j.spec.backend == backend.name and self._slot_key(backend, j.spec) == key)
            self._slots[key] = policy.accepted(self._slots[key], running)
            job.metadata.update(backend.describe(job.spec))
            job.move_to(JobState.RUNNING)
            # Durable before anything else happens: this id is what stops a double charge.
            self._record(job, durable=True)
            if job.cancel_requested:
                job.cancel_requested = False  # set again by _cancel_running, with its own words
                job.note = self._cancel_running(job)
                self._record(job)
            self._ensure_watcher(backend)
            self._changed()

    def _create_refused(self, job: Job, key: SlotKey, exc: BackendError) -> None:
        """The provider guarantees this create made nothing: send it again if that may help, else fail."""
        with self._lock:
            job.stage = Stage.NONE
            concurrency = exc.code == "concurrency_limit"
            attempt = policy.resend_attempt(self._resends.get(job.job_id, 0), concurrency=concurrency,
                                            max_retries=self.config.max_submit_retries) if exc.retryable else None
            if attempt is not None:
                delay = backoff_delay(max(1, attempt), base_s=0.05, retry_after_s=exc.retry_after_s)
                self._slots[key] = policy.refused(self._slots[key], concurrency=concurrency,
                                                  retry_at=time.monotonic() + delay, retry_after_s=exc.retry_after_s)
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

    def _create_unknown(self, job: Job, backend: Backend, key: SlotKey, code: str, message: str) -> None:
        """A create whose outcome nobody told us: it may have made (and charged for) a task. Ask the
        provider where it can tell; otherwise the job is uncertain and never sent again on its own. The
        embedded engine charges nothing and keeps nothing after a failure, so there it is a plain failure."""
        found: str | None = None
        checked = False
        if backend.capabilities.durable_tasks and backend.capabilities.reconcile:
            try:
                found, checked = backend.find_submitted(job.job_id), True
            except BackendError as exc:
                _log.warning("%s: could not check for a create that failed: %s", backend.name, exc.message)
        if found is not None:
            self._task_created(job, backend, found)
            return
        with self._lock:
            self._resends.pop(job.job_id, None)
            self._slots[key] = policy.failed_create(self._slots[key])
            if not backend.capabilities.durable_tasks or checked:
                job.stage = Stage.NONE  # nothing exists: the provider said so, or it keeps nothing
                job.fail(code, message)
            else:
                job.error = recovery.uncertain_error(job, backend.name, f"the create failed with: {message}")
                job.move_to(JobState.UNCERTAIN)
            self._record(job, durable=True)
            self._changed()

    def _ensure_watcher(self, backend: Backend) -> None:
        """Lock held: open the status streams a push backend's running tasks may have, and make sure the
        backend's watcher (which polls whatever has no stream) runs."""
        self._open_streams(backend)
        thread = self._watchers.get(backend.name)
        if thread is None or not thread.is_alive():
            name = f"{self._thread_prefix}-watch-{backend.name}"
            thread = threading.Thread(target=self._watch_loop, args=(backend,), name=name, daemon=True)
            self._watchers[backend.name] = thread
            thread.start()

    def _open_streams(self, backend: Backend) -> None:
        """Lock held: a stream thread for each running task of `backend` that has none, is not waiting to
        reconnect, and fits under both bounds (the provider's and `max_streams`)."""
        if not backend.capabilities.streams or self._stop.is_set():
            return
        now = time.monotonic()
        mine = sum(1 for t in self._streams if self._stream_owner(t) == backend.name)
        for job in self.jobs.values():
            task_id = job.task_id
            if len(self._streams) >= self.config.max_streams or mine >= backend.capabilities.streams:
                return
            if (job.state is not JobState.RUNNING or job.spec.backend != backend.name or not task_id
                    or job.job_id in self._stepping or task_id in self._streams
                    or self._stream_retry_at.get(task_id, 0.0) > now):
                continue
            self._stream_retry_at.pop(task_id, None)
            thread = threading.Thread(target=self._stream_loop, args=(backend, task_id), daemon=True,
                                      name=f"{self._thread_prefix}-stream-{backend.name}-{task_id[-8:]}")
            self._streams[task_id] = thread
            mine += 1
            thread.start()

    def _stream_owner(self, task_id: str) -> str:
        return next((j.spec.backend for j in self.jobs.values() if j.task_id == task_id), "")

    def _stream_loop(self, backend: Backend, task_id: str) -> None:
        """Read one task's status stream into the queue until a terminal status. Anything else (the
        stream broke, the server ended it early, a bug) is a drop: the task is polled at once and its
        stream reconnects after `stream_retry_s`, so a dropped stream never loses a job."""
        ended = False
        try:
            for update in backend.stream(task_id):
                if self._stop.is_set():
                    return
                self._pushed(backend, update)
                if update.status.is_terminal or update.status is TaskStatus.MISSING:
                    ended = True
                    break
        except BackendError as exc:
            _log.info("%s: status stream of %s dropped (%s); polling it", backend.name, task_id, exc.message)
        except Exception:
            _log.exception("%s: status stream of %s crashed; polling it", backend.name, task_id)
        finally:
            with self._lock:
                if self._streams.get(task_id) is threading.current_thread():
                    del self._streams[task_id]
                if not ended and not self._stop.is_set():
                    self.stream_drops += 1
                    self._poll_now.add(task_id)
                    self._stream_retry_at[task_id] = time.monotonic() + self.config.stream_retry_s
                else:
                    self._stream_retry_at.pop(task_id, None)
                current = self.backends.get(backend.name)  # a key change may have replaced (and closed) it
                if current is not None and not self._stop.is_set():
                    self._ensure_watcher(current)  # polls the dropped task; a freed slot streams a waiting one
                    self._wake.notify_all()

    def _pushed(self, backend: Backend, update: TaskUpdate) -> None:
        """A status a stream pushed: applied as a polled one is, and a finish teaches the task times (the
        provider's own duration when it gives one, else since the create returned)."""
        with self._lock:
            job = next((j for j in self.jobs.values() if j.task_id == update.task_id
                        and j.state is JobState.RUNNING), None)
            started = self._task_started.get(update.task_id)
            self._apply_update(backend, update)
            if job is None or update.status is not TaskStatus.SUCCESS:
                return
            steps = backend.steps(job.spec)
            took = update.duration_s if update.duration_s is not None else \
                time.monotonic() - started if started is not None else None
            if took is not None and took > 0:
                self.task_latency.observe(backend.name, steps[min(job.step, len(steps) - 1)], took)

    def _watch_loop(self, backend: Backend) -> None:
        failures = 0
        idle_since: float | None = None
        paced = backend.capabilities.paced_polling
        while not self._stop.is_set():
            with self._lock:
                self._open_streams(backend)  # reconnects dropped streams that are due, fills freed slots
                running = [j for j in self.jobs.values()
                           if j.spec.backend == backend.name and j.state is JobState.RUNNING and j.task_id
                           and j.task_id not in self._streams]
                watched = {j.task_id: j.job_id for j in running if j.task_id}
                urgent = next((t for t in watched if t in self._poll_now), None)
                self._poll_now.intersection_update(watched)
                due = self._poll_due(backend, running) if paced and running else None
                if urgent is not None:
                    due = (time.monotonic(), urgent)  # a stream just dropped: ask about its task now
            if due is not None:
                # A polled provider is asked when the earliest predicted finish of its tasks is due (each
                # task paces itself, so a draft is never paced by the Production tasks around it); one
                # batched request then serves every task in flight.
                wait_s = due[0] - time.monotonic()
                if wait_s > 0:
                    self._stop.wait(min(wait_s, self.config.watch_timeout_s))
                    continue
                self.polls.append((time.monotonic(), due[1], len(watched)))
                with self._lock:
                    self._poll_now.difference_update(watched)
            if not watched:
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
                updates = backend.watch(list(watched), self.config.watch_timeout_s)
                failures = 0
            except Exception as exc:
                # Not reached (or a bug in the backend): every watched job's clock towards giving up runs.
                failures += 1
                reason = exc.message if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
                if isinstance(exc, BackendError):
                    _log.warning("%s: status check failed (%s)", backend.name, reason)
                else:
                    _log.exception("%s: watch crashed", backend.name)
                retry_after = exc.retry_after_s if isinstance(exc, BackendError) else None
                delay = backoff_delay(failures, cap_s=self.config.read_backoff_cap_s, retry_after_s=retry_after)
                self._stop.wait(min(delay, self._unreachable(backend, list(watched.values()), cause=reason)))
                continue
            for update in updates:
                try:
                    self._apply_update(backend, update)
                except Exception:
                    # One task's odd answer must never stall the poll of the others.
                    _log.exception("%s: could not apply the status of task %s", backend.name, update.task_id)
            if paced:
                self._polled(backend, watched, updates)

    def _poll_due(self, backend: Backend, running: Sequence[Job]) -> tuple[float, str] | None:
        """(When, for which task) the next status request of this polled backend is due (lock held)."""
        predictor = self._predictors[backend.name]
        now = time.monotonic()
        for job in running:
            assert job.task_id is not None
            steps = backend.steps(job.spec)
            step = steps[min(job.step, len(steps) - 1)]
            predictor.track(job.task_id, step, self._task_started.get(job.task_id, now))
        predictor.forget_others(j.task_id for j in running if j.task_id)
        return predictor.due()

    def _polled(self, backend: Backend, watched: Mapping[str, str], updates: Sequence[TaskUpdate]) -> None:
        """Feed one status answer to the predictions: progress, the provider's time left, finishes."""
        now = time.monotonic()
        by_id = {u.task_id: u for u in updates}
        with self._lock:
            predictor = self._predictors[backend.name]
            for task_id in watched:
                update = by_id.get(task_id)
                if update is None or update.status in (TaskStatus.UNKNOWN, TaskStatus.MISSING):
                    predictor.unanswered(task_id, now)
                elif update.status.is_terminal:
                    predictor.saw(task_id, now, progress=1.0, done=update.status is TaskStatus.SUCCESS,
                                  duration_s=update.duration_s)
                    predictor.clocks.pop(task_id, None)
                    self._task_started.pop(task_id, None)
                else:
                    predictor.saw(task_id, now, progress=update.progress, left_s=update.left_s)

    def _unreachable(self, backend: Backend, job_ids: Sequence[str], *, unreadable: str = "",
                     cause: str = "") -> float:
        """These jobs got no usable answer just now (`unreadable`: the answer that could not be used;
        `cause`: why the provider could not be asked): fail those past `give_up_after_s`, recoverably.
        Returns the seconds until the next of them would give up."""
        now = time.monotonic()
        limit = self.config.give_up_after_s
        next_due = limit
        with self._lock:
            changed = False
            for job_id in job_ids:
                job = self.jobs.get(job_id)
                if job is None or job.state.is_terminal:
                    continue
                since = self._unreachable_since.setdefault(job_id, now)
                if now - since < limit:
                    next_due = min(next_due, limit - (now - since))
                    continue
                waited = f"{now - since:.0f} s"
                self._give_up(job, backend, f"{backend.name} gave no readable status for {waited} ({unreadable})"
                              if unreadable else f"could not reach {backend.name} for {waited}"
                              + (f" (last: {cause})" if cause else ""))
                changed = True
            if changed:
                self._changed()
        return max(0.05, next_due)

    def _give_up(self, job: Job, backend: Backend, what: str) -> None:
        """Fail a job the provider did not usefully answer for (lock held). Its task id and stage are
        kept, so a resume or Retry fetches the result without paying again."""
        self._unreachable_since.pop(job.job_id, None)
        self._misses.pop(job.job_id, None)
        self._task_started.pop(job.task_id or "", None)
        if job.state is JobState.RUNNING:
            key = self._slot_key(backend, job.spec)
            self._slots[key] = policy.released(self._slots[key])
        job.fail(UNREACHABLE, f"{what}; the task id is kept: --resume (or Retry) fetches it without paying again")
        self._record(job)

    def _apply_update(self, backend: Backend, update: TaskUpdate) -> None:
        with self._lock:
            job = next(
                (j for j in self.jobs.values() if j.task_id == update.task_id and j.spec.backend == backend.name
                 and j.state is JobState.RUNNING),
                None,
            )
            if job is None or job.job_id in self._stepping:
                return
            if update.moved_to:
                self._moved(job, update)
                return
            if update.status is TaskStatus.UNKNOWN:
                self._unreachable(backend, [job.job_id],
                                  unreadable=update.error_message or "its status could not be read")
                return
            self._unreachable_since.pop(job.job_id, None)
            if update.status is TaskStatus.MISSING:
                self._misses[job.job_id] = misses = self._misses.get(job.job_id, 0) + 1
                if misses >= self.config.unknown_task_limit:
                    self._misses.pop(job.job_id, None)
                    self._task_started.pop(update.task_id, None)
                    key = self._slot_key(backend, job.spec)
                    self._slots[key] = policy.released(self._slots[key])
                    job.fail(UNKNOWN_TASK, unknown_task_message(update.task_id))
                    self._record(job)
                    self._changed()
                return
            self._misses.pop(job.job_id, None)
            steps = backend.steps(job.spec)
            if not update.status.is_terminal:
                progress = (job.step + update.progress) / len(steps)
                if progress != job.progress:
                    job.progress = progress
                    self.version += 1
                return
            self._task_started.pop(update.task_id, None)
            if update.status is TaskStatus.SUCCESS and job.step + 1 < len(steps) and not job.cancel_requested:
                self._next_step(job, backend, update)
                return
            key = self._slot_key(backend, job.spec)
            self._slots[key] = policy.released(self._slots[key])
            if update.status is TaskStatus.SUCCESS:
                job.progress = 1.0
                earlier = sum(float(c) for c in job.metadata.pop(STEP_CREDITS, []))
                job.credits_spent = earlier + update.credits if update.credits else job.credits_estimated
                job.reach(Stage.TASK_DONE)
                job.move_to(JobState.DOWNLOADING)
                self._record(job)
                self._pool.submit(self._download_worker, job, backend)
                self._charged(backend, job.credits_spent - float(job.metadata.pop(BOOKED_CREDITS, 0.0)))
            elif job.step > 0:
                self._later_step_ended(job, backend, update)
            elif update.status is TaskStatus.CANCELLED or job.cancel_requested:
                job.refunded()
                job.move_to(JobState.CANCELLED)
                job.note = "cancelled on the provider; nothing was charged"
                self._record(job)
            else:
                job.refunded()  # providers refund failed tasks: a retry may create again
                job.fail(update.error_code or "task_failed", update.error_message or "the provider failed this task")
                self._record(job)
            self._changed()

    def _book_paid_steps(self, job: Job, backend: Backend, steps_done: int) -> float:
        """A chained job stops before its last step (lock held): its first `steps_done` tasks succeeded
        and were paid. Count them as spent, once, and put the job back at the last of them, so Retry
        watches that task and creates only the steps after it, never a paid one again. Returns the credits."""
        paid = sum(float(c) for c in job.metadata.get(STEP_CREDITS, [])[:steps_done])
        del job.task_ids[steps_done:]
        job.task_id = job.task_ids[-1]
        job.credits_spent = paid
        self._charged(backend, paid - float(job.metadata.get(BOOKED_CREDITS, 0.0)))
        job.metadata[BOOKED_CREDITS] = paid
        return paid

    def _later_step_ended(self, job: Job, backend: Backend, update: TaskUpdate) -> None:
        """A chained job's later task failed or was cancelled on the provider (lock held). That task is
        refunded, but the earlier steps' tasks were paid: booked, and kept for Retry."""
        steps = backend.steps(job.spec)
        ended, kept = steps[job.step], steps[job.step - 1]
        paid = self._book_paid_steps(job, backend, job.step)
        spent = f"the {kept} is paid ({paid:g} credits) and kept"
        if update.status is TaskStatus.CANCELLED or job.cancel_requested:
            job.move_to(JobState.CANCELLED)
            job.note = f"cancelled during the {ended} step, which was not charged; {spent}: Retry continues from it"
        else:
            job.fail(update.error_code or "task_failed",
                     f"the {ended} step failed: {update.error_message or 'the provider failed this task'} "
                     f"(not charged); {spent}: Retry continues from it")
        self._record(job)

    def _moved(self, job: Job, update: TaskUpdate) -> None:
        """The backend resent this job's task under a new id (lock held): follow it, journaled at once so
        a resume asks the server that owns it now."""
        self._task_started.pop(update.task_id, None)
        self._unreachable_since.pop(job.job_id, None)
        self._misses.pop(job.job_id, None)
        job.task_id = update.moved_to
        job.task_ids[-1:] = [update.moved_to]  # the same step (`Job.step` counts these), on a new task
        job.metadata.setdefault(MOVED_FROM, []).append(update.task_id)
        self._task_started[update.moved_to] = time.monotonic()
        self._record(job, durable=True)
        self._changed()

    def _next_step(self, job: Job, backend: Backend, update: TaskUpdate) -> None:
        """A chained job's task is done and the next one is due (lock held): create it at once, on the
        submit pool, keeping the job's slot. A create for this step that was sent before a crash, with no
        id back, may have been charged: the job fails saying so rather than paying twice on its own."""
        step = job.step + 1
        charged = job.metadata.setdefault(STEP_CREDITS, [])
        del charged[job.step:]  # a retry that watches this task again must not count it twice
        charged.append(update.credits)
        if job.metadata.pop(PENDING_STEP, None) == step:
            key = self._slot_key(backend, job.spec)
            self._slots[key] = policy.released(self._slots[key])
            job.fail("uncertain_step", f"step {step + 1} of '{job.label}' ({backend.steps(job.spec)[step]}) was "
                     "sent before Kiln stopped and may have been charged; check the provider, then Retry sends it")
            self._record(job)
            self._changed()
            return
        assert job.task_id is not None
        previous = job.task_id
        job.metadata[PENDING_STEP] = step
        self._stepping.add(job.job_id)
        self._record(job, durable=True)  # the intent, before the create goes out
        future = self._submit_pool.submit(self._step_worker, job, backend, step, previous)
        self._creates.add(future)
        future.add_done_callback(self._creates.discard)
        future.add_done_callback(lambda _: self._stepped(job.job_id))  # however the worker ended
        self._changed()

    def _stepped(self, job_id: str) -> None:
        with self._lock:
            self._stepping.discard(job_id)

    def _step_worker(self, job: Job, backend: Backend, step: int, previous: str) -> None:
        """Create a chained step. A refusal that created nothing is sent again (concurrency: as often as
        it takes, within `give_up_after_s`); a failure leaves the job at its paid first task, so Retry
        watches that task and creates this step again, never the first one."""
        started = time.monotonic()
        attempt = 0
        while not self._stop.is_set():
            try:
                task_id = backend.submit_step(job.spec, step, previous, job.job_id)
                break
            except BackendError as exc:
                attempt += 1
                waited = time.monotonic() - started
                again = exc.nothing_created and exc.retryable and waited < self.config.give_up_after_s and (
                    exc.code == "concurrency_limit" or attempt <= self.config.max_submit_retries)
                if again:
                    self._stop.wait(backoff_delay(attempt, base_s=0.05, retry_after_s=exc.retry_after_s))
                    continue
                self._step_failed(job, backend, exc.code, exc.message, charged=not exc.nothing_created)
                return
            except Exception as exc:
                _log.exception("backend %s crashed on a chained step", backend.name)
                self._step_failed(job, backend, "internal_error", str(exc), charged=True)
                return
        else:
            return  # stopping: the journal's pending step makes the next start say so
        with self._lock:
            self._stepping.discard(job.job_id)
            job.metadata.pop(PENDING_STEP, None)
            job.task_id = task_id
            job.task_ids.append(task_id)
            self._task_started[task_id] = time.monotonic()
            self._record(job, durable=True)  # this id is what stops a double charge
            self._ensure_watcher(backend)  # a push backend opens this task's stream now
            self._changed()

    def _step_failed(self, job: Job, backend: Backend, code: str, message: str, *, charged: bool) -> None:
        with self._lock:
            key = self._slot_key(backend, job.spec)
            self._slots[key] = policy.released(self._slots[key])
            job.metadata.pop(PENDING_STEP, None)  # the message says what may be charged; Retry is the artist's call
            steps = backend.steps(job.spec)
            step, kept = steps[job.step + 1], steps[job.step]
            paid = self._book_paid_steps(job, backend, job.step + 1)
            job.fail(code, f"the {step} step failed: {message}; the {kept} is paid ({paid:g} credits) and kept: "
                     "Retry continues from it" + (" (this step may have been charged: check the provider first)"
                                                  if charged else ""))
            self._record(job)
            self._changed()

    def _download_worker(self, job: Job, backend: Backend) -> None:
        """Fetch a finished task's result into the cache. Retryable failures are tried again until
        `give_up_after_s` has passed without success; then (or on a failure that will not change) the
        job fails with its task id and stage kept, so a resume or Retry downloads it without paying again."""
        assert job.task_id is not None
        dest = self.cache_dir / job.job_id
        attempt = 0
        failing_since: float | None = None
        started = job.state_times.get(JobState.SUBMITTING.value, time.monotonic())
        while True:
            if self._stop.is_set():
                return  # stays `downloading` in the journal: the next start downloads it
            try:
                files = backend.download(job.task_id, dest)
                metadata, warnings = backend.task_metadata(job.task_id)
                break
            except BackendError as exc:
                if self._stop.is_set():
                    return
                now = time.monotonic()
                failing_since = failing_since or now
                waited = now - failing_since
                if exc.retryable and waited < self.config.give_up_after_s:
                    attempt += 1
                    delay = backoff_delay(attempt, cap_s=self.config.read_backoff_cap_s,
                                          retry_after_s=exc.retry_after_s)
                    self._stop.wait(min(delay, self.config.give_up_after_s - waited))
                    continue
                with self._lock:
                    if exc.retryable:
                        self._give_up(job, backend, f"could not download from {backend.name} for {waited:.0f} s "
                                      f"({exc.message})")
                    else:
                        job.fail(exc.code, f"download failed: {exc.message}; the task id is kept: --resume (or "
                                 "Retry) fetches it without paying again")
                        self._record(job)
                    self._changed()
                return
            except Exception as exc:
                _log.exception("download of %s crashed", job.task_id)
                with self._lock:
                    job.fail("internal_error", f"download failed unexpectedly: {exc}; the task id is kept: "
                             "Retry fetches it without paying again")
                    self._record(job)
                    self._changed()
                return
        with self._lock:
            job.files = files
            job.metadata.update(metadata)
            job.warnings.extend(w for w in warnings if w not in job.warnings)
            job.reach(Stage.DOWNLOADED)
            if job.cancel_requested:
                self._end_cancelled(job)
            else:
                job.move_to(JobState.READY)
                self.latency.observe(backend.name, job.spec.mode.value, time.monotonic() - started)
                self._ready.append(job.job_id)
            self._record(job, durable=True)
            self._changed()

    def _cancel_running(self, job: Job) -> str:
        """The artist cancelled a task that is on the provider (lock held). It stays watched: the
        provider's last word decides whether anything was charged, and a finished result is kept."""
        backend = self.backends[job.spec.backend]
        assert job.task_id is not None
        job.cancel_requested = True
        if backend.capabilities.cancel:
            self._pool.submit(self._cancel_worker, backend, job.task_id)
            return f"cancelled '{job.label}' on {backend.name}"
        return (
            f"{backend.name} cannot cancel a started task: it will finish and charge for '{job.label}' "
            f"(~{job.credits_estimated:g} credits); Kiln keeps the result, to import anyway"
        )

    def _end_cancelled(self, job: Job) -> None:
        """A cancelled job whose paid result is in the cache (lock held): kept, with its cost, for
        "import anyway"; never thrown away and never paid for again."""
        job.move_to(JobState.CANCELLED)
        job.result_kept = True
        job.cancel_requested = False
        job.note = (f"cancelled, import anyway: {job.credits_spent:g} credits were charged; "
                    "the result is kept in the cache")

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
