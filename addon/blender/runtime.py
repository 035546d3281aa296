"""The runtime: the add-on's one Scheduler, and the pump that moves its results into the scene.

`pump(budget_ms)` is the only code that brings results into Blender. In the UI a persistent
`bpy.app.timers` timer calls it; in background mode and in the `bpy` module timers never fire, so
scripts and tests call `run_until_done()`, which pumps in a loop.
"""

from __future__ import annotations

import atexit
import collections
import logging
import tempfile
import threading
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from ..backends import registry
from ..backends.base import Backend, BackendError
from ..backends.registry import BackendSettings
from ..jobs import BatchSpec, Job, JobState, Mode, Stage
from ..journal import Journal
from ..locks import FolderLock, FolderLocked, held_here
from ..scheduling import Scheduler, SchedulerConfig
from .calm import can_land_now
from .finish_pool import FinishPool, Outcome, default_size

_log = logging.getLogger(__name__)

PUMP_BUDGET_MS = 20.0
TIMER_INTERVAL_S = 0.1
IDLE_TIMER_INTERVAL_S = 0.5
READ_ONLY_CHECK_S = 2.0
"""How often a read-only engine looks whether the other Blender has let go of the queue (and re-reads
what that one wrote)."""
FINISHING_TIMER_INTERVAL_S = 0.3
"""After a call that ran finishing (a second or so of Blender's own tools), give the UI this long to
redraw and take input before the next one."""

ApplyResult = Callable[[Job], None]
FinishResult = Callable[[Job, BatchSpec], object]


@dataclass
class _Runtime:
    scheduler: Scheduler
    apply: ApplyResult
    finish: FinishResult | None
    package: str
    inputs: Path
    """Where prepared input images are kept for the life of their jobs."""
    own_finishing: bool = True
    """Kiln's own import and finishing (tests may inject theirs, which then run on the main thread)."""
    finish_workers: int = 0
    """Finishing processes (0: Production results are finished here, on the main thread)."""
    to_finish: collections.deque[Job] = field(default_factory=collections.deque)
    """Imported results to finish on the main thread (in-process finishing)."""
    unfinished: set[str] = field(default_factory=set)
    """Imported Production results an earlier engine did not get to finish (a crash, or the restart a
    preferences edit makes): the journal has them as imported; each is finished once its object is in
    the open file (looked for at start and whenever a file is opened)."""
    drafts: collections.deque[Job] = field(default_factory=collections.deque)
    production: collections.deque[Job] = field(default_factory=collections.deque)
    """Ready results taken from the scheduler, not yet imported (or sent to a worker): drafts go first."""
    finishing: dict[str, tuple[Job, BatchSpec]] = field(default_factory=dict)
    """Results a finishing worker has (or had: see `landing`), by job id."""
    landing: collections.deque[Outcome] = field(default_factory=collections.deque)
    """Worker outcomes to bring into the scene (append the finished .blend) or to fail the job with."""
    warmed: bool = False
    redrawn_version: int = -1
    pump_max_ms: float = 0.0
    take_over: Callable[[], object] | None = None
    """Read-only: start again as the journal's writer, with the same arguments (see `_follow_owner`)."""
    next_look: float = 0.0
    """Read-only: when `_follow_owner` looks at the journal's lock again (monotonic)."""
    seen_journal: tuple[int, int] = (0, 0)
    """Read-only: the journal's (mtime, size) when last read, so it is re-read only when it changed."""


@dataclass(frozen=True)
class EngineSettings:
    """Everything the preferences decide for the engine, as plain values (`ui.preferences` builds it)."""

    backends: Mapping[str, BackendSettings] = field(default_factory=dict)
    """Per backend name: its key, endpoint and timeout, already resolved (environment first)."""
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    cache_dir: Path | None = None
    """The artist's results folder; None: the extension's user folder."""
    finish_workers: int | None = None
    """Background Blender processes that finish Production results; 0: finish on the main thread;
    None: the default (`finish_pool.default_size`)."""


_runtime: _Runtime | None = None
_journal_lock: FolderLock | None = None
"""This Blender's lock on the add-on's journal folder: one writer per journal, the add-on's own included."""
_pool: FinishPool | None = None
"""The finishing processes, kept across engine restarts (a worker costs a Blender start-up)."""
_settings = EngineSettings()
"""The last settings given to `settings_changed`; an engine started without explicit backends is built
from them."""
_backend_errors: dict[str, BackendError] = {}
"""Why a backend could not be built from the current settings (no key, an endpoint a key must not go to)."""
_listeners: list[Callable[[], None]] = []
"""Called on the main thread after the pump saw a change (the UI mirrors the queue with these)."""


def add_listener(listener: Callable[[], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def user_folder(package: str, name: str) -> Path:
    """A writable folder in the extension's user directory (kept outside the .blend and the add-on)."""
    try:
        return Path(bpy.utils.extension_path_user(package, path=name, create=True))
    except ValueError:
        # Loaded as a plain module (not an installed extension): use a private temp folder.
        folder = Path(tempfile.gettempdir()) / "kiln" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def start(
    package: str,
    *,
    backends: list[Backend] | None = None,
    config: SchedulerConfig | None = None,
    apply: ApplyResult | None = None,
    finish: FinishResult | None = None,
    journal_dir: Path | None = None,
    cache_dir: Path | None = None,
    finish_workers: int | None = None,
) -> Scheduler:
    """Create and start the scheduler (recovering from the journal). Idempotent: stops any previous one.

    Without `backends`, every backend the current settings allow is built (Local always); tests and the
    headless batch pass their own. `finish_workers` (else the settings', else the default) sizes the
    finishing pool; it is used only with the built-in import and finishing (a given `apply` or `finish`
    runs on the main thread).
    """
    global _runtime
    stop()
    journal_folder = journal_dir or user_folder(package, "journal")
    read_only = _lock_journal(journal_folder)
    if cache_dir is not None:
        cache = Path(cache_dir)  # the artist's choice (preferences)
        cache.mkdir(parents=True, exist_ok=True)
    else:
        cache = user_folder(package, "results") if journal_dir is None else journal_dir / "results"
    if backends is None:
        backends = [b for b in (_build(entry.name, cache) for entry in registry.BACKENDS) if b is not None]
    own_finishing = apply is None and finish is None
    if apply is None:
        from .finishing import finish_result
        from .importer import import_result

        apply, finish = import_result, finish or finish_result
    scheduler = Scheduler(backends, journal=Journal(journal_folder), cache_dir=cache, config=config,
                          read_only=read_only)
    scheduler.start()
    inputs = user_folder(package, "inputs") if journal_dir is None else journal_dir / "inputs"
    _runtime = _Runtime(scheduler, apply, finish, package, inputs, own_finishing=own_finishing,
                        finish_workers=_pool_size(finish_workers) if own_finishing else 0)
    if not read_only:
        _look_for_unfinished(_runtime)
    if read_only:
        _log.warning("Kiln: %s", read_only)
        given = None if own_finishing else (apply, finish)
        _runtime.take_over = lambda: start(package, backends=backends, config=config,
                                           apply=given[0] if given else None, finish=given[1] if given else None,
                                           journal_dir=journal_dir, cache_dir=cache_dir,
                                           finish_workers=finish_workers)
    return scheduler


def _lock_journal(folder: Path) -> str:
    """Take the journal's lock; returns "" when this Blender is its writer, else why it may only show it.

    Two engines on one journal would each send its queued jobs (paid twice) and import each result
    twice, so a second Blender with Kiln enabled opens the queue read-only, and says so."""
    global _journal_lock
    if held_here(folder):
        return ""  # this process already owns it (a headless batch runs the engine on its own journal)
    try:
        _journal_lock = FolderLock(folder).acquire(f"Blender {bpy.app.version_string}")
    except FolderLocked as exc:
        return (f"Another Blender runs Kiln's queue ({exc.holder or 'unknown process'}): this one only shows "
                "it, and takes over when that one closes")
    except OSError as exc:  # a read-only folder: the journal cannot be written either, and says so itself
        _log.warning("could not lock the journal folder %s: %s", folder, exc.strerror or exc)
    return ""


def _release_journal() -> None:
    global _journal_lock
    lock, _journal_lock = _journal_lock, None
    if lock is not None:
        lock.release()


def read_only() -> str:
    """Why this Blender may only show Kiln's queue (another Blender runs it), or ""."""
    return _runtime.scheduler.read_only if _runtime is not None else ""


def _follow_owner(runtime: _Runtime) -> None:
    """Read-only: every few seconds, take the queue over if the other Blender has let go of it, else
    re-read what it wrote (when the journal changed)."""
    now = time.monotonic()
    if now < runtime.next_look:
        return
    runtime.next_look = now + READ_ONLY_CHECK_S
    journal = runtime.scheduler.journal
    if journal is None:
        return
    try:
        FolderLock(journal.folder).acquire().release()
    except (FolderLocked, OSError):
        try:
            stat = journal.path.stat()
        except OSError:
            return
        if (stat.st_mtime_ns, stat.st_size) != runtime.seen_journal:
            runtime.seen_journal = (stat.st_mtime_ns, stat.st_size)
            runtime.scheduler.reload()
        return
    if runtime.take_over is not None:
        _log.info("Kiln: the other Blender let go of the queue; this one runs it now")
        runtime.take_over()


def _pool_size(asked: int | None) -> int:
    """The finishing pool's size: asked for, else the settings', else the default for this Blender."""
    if asked is None:
        asked = _settings.finish_workers
    return max(0, asked) if asked is not None else default_size(bool(bpy.app.background))


def stop(timeout_s: float = 3.0) -> None:
    """Stop threads; what was running stays in the journal and is reattached on the next start."""
    global _runtime
    if _runtime is not None:
        runtime, _runtime = _runtime, None
        if _pool is not None:
            _pool.forget()  # its jobs stay READY in the journal; the next engine finishes them
        runtime.scheduler.shutdown(timeout_s)
    _release_journal()  # after the shutdown's last journal write


def close_pool() -> None:
    """End the finishing processes (at exit, and when the add-on is disabled)."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def finish_pool() -> FinishPool | None:
    """The finishing processes, when some were started (tests read which worker has which job)."""
    return _pool


def _workers_for(runtime: _Runtime) -> FinishPool:
    global _pool
    if _pool is None or _pool.package != runtime.package:
        close_pool()
        _pool = FinishPool(runtime.package, runtime.finish_workers)
    _pool.size = runtime.finish_workers
    return _pool


def scheduler() -> Scheduler:
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    return _runtime.scheduler


def inputs_folder() -> Path:
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    return _runtime.inputs


def _online() -> bool:
    return bool(bpy.app.online_access)


def _build(name: str, cache: Path) -> Backend | None:
    """The backend `name` from the current settings, or None (the reason is kept for `backend_error`).
    Remote backends ask for Blender's online access before every request, not just here."""
    settings = _settings.backends.get(name) or registry.resolve(name)
    try:
        backend = registry.build(name, settings, scratch_dir=cache / f"{name}_scratch", online=_online)
    except BackendError as exc:
        _backend_errors[name] = exc
        return None
    _backend_errors.pop(name, None)
    return backend


def settings_changed(settings: EngineSettings) -> None:
    """The one way settings reach the engine: at registration, on every edit in the preferences, and
    before a request (an environment variable may have changed since).

    Scheduling or cache settings restart the engine (what was running is journaled and reattached). A
    backend whose own settings changed is rebuilt and replaces the old one; tasks already running on
    the old one are still watched to the end. Local is built in every case. A backend that cannot be
    built (its key was cleared) stays for what it is running, and `backend_error` refuses new work.
    """
    global _settings
    previous, _settings = _settings, settings
    if _runtime is None:
        return
    if (previous.config, previous.cache_dir) != (settings.config, settings.cache_dir):
        start(_runtime.package, config=settings.config, cache_dir=settings.cache_dir)
        return
    if previous.finish_workers != settings.finish_workers and _runtime.own_finishing:
        _runtime.finish_workers = _pool_size(None)
    sched = _runtime.scheduler
    cache = sched.cache_dir
    for entry in registry.BACKENDS:
        if previous.backends.get(entry.name) == settings.backends.get(entry.name):
            continue
        backend = _build(entry.name, cache)
        if backend is not None:
            sched.add_backend(backend)


def backend_error(name: str) -> BackendError | None:
    """Why `name` takes no new jobs with the current settings (code "no_key", "bad_endpoint"), or None."""
    return _backend_errors.get(name)


def current_package() -> str:
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    return _runtime.package


def is_done() -> bool:
    """Nothing queued, in flight, waiting for import, for finishing, or in a finishing worker."""
    if _runtime is None:
        return True
    runtime = _runtime
    if runtime.scheduler.read_only:
        return True  # nothing here is this Blender's to finish
    return runtime.scheduler.is_idle() and not (runtime.to_finish or runtime.drafts or runtime.production
                                                or runtime.finishing or runtime.landing)


def reimport(job: Job) -> None:
    """Bring an already finished job's downloaded result into the scene again (after a crash lost the
    scene before it was saved). No new generation; finishing runs again as the batch asks, unless a
    worker's finished asset is still in the cache: then that is appended."""
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    finished = _finished_blend(job)
    if finished is not None:
        from .finished import append_finished

        append_finished(job, finished)
        return
    _runtime.apply(job)
    batch = _runtime.scheduler.batches.get(job.spec.batch)
    if _runtime.finish is not None and batch is not None and batch.finish is not None \
            and job.spec.mode is Mode.PRODUCTION:
        _runtime.finish(job, batch)


def bring_back(job_id: str) -> bool:
    """Import again the cached result of a finished (or imported, not yet finished) job that is not in
    the open file: the file is from before it landed, or a crash lost it before a save. No new
    generation; it is finished as its batch asks. False when there is no such cached result."""
    from .importer import find_result

    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    scheduler = _runtime.scheduler
    job = scheduler.jobs.get(job_id)
    if job is None or job.state not in (JobState.FINISHED, JobState.IMPORTED) or find_result(job_id) is not None:
        return False
    if not job.files or not all(Path(path).is_file() for path in job.files.values()):
        return False
    reimport(job)
    if job.state is JobState.IMPORTED and not scheduler.read_only:
        scheduler.mark_finished(job)
    return True


def is_running() -> bool:
    return _runtime is not None


def finish_now(job: Job, batch: BatchSpec) -> None:
    """Finish an imported result that a crash left unfinished (main thread; resume)."""
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    if _runtime.finish is not None:
        _runtime.finish(job, batch)


def _finished_blend(job: Job) -> Path | None:
    """The finished asset a worker wrote for this job (or the attempt it retries), if still in the cache."""
    known = job.metadata.get("finished_blend")
    return Path(known) if known and Path(known).is_file() else None


def pump(budget_ms: float = PUMP_BUDGET_MS) -> int:
    """Main thread only: bring ready results into the scene until the time budget is spent; returns how
    many jobs moved.

    Order: ready drafts first (an artist waiting on a draft never waits behind a batch), then Production
    results: each is sent to a finishing worker (or imported, to be finished here when there are
    none), then what workers finished is appended, then results finished here, one at a time.
    At least one job moves per call, so a slow import or finish still makes progress; the rest wait
    for the next call, which keeps the UI responsive while 200 results arrive. Workers are only
    polled: the main thread never waits for one.
    """
    if _runtime is None:
        return 0
    runtime = _runtime
    scheduler = runtime.scheduler
    if scheduler.read_only:
        _follow_owner(runtime)
        return 0
    started = time.perf_counter()
    deadline = started + budget_ms / 1000.0
    moved = 0

    def has_time() -> bool:
        return moved == 0 or time.perf_counter() < deadline

    calm = can_land_now()  # results never interrupt: nothing lands while the artist is mid-edit
    if not runtime.warmed and not bpy.app.background and runtime.own_finishing and runtime.finish_workers > 0 \
            and any(batch.finish is not None for batch in scheduler.batches.values()) \
            and scheduler.has_waiting_work():
        # A batch to finish is under way: the artist's first result should not wait for a Blender to
        # start. (Headless, workers start with their first job: a second, once, in a long run.)
        runtime.warmed = True
        _workers_for(runtime).warm()
    while (ready := scheduler.take_ready()) is not None:
        (runtime.production if ready.spec.mode is Mode.PRODUCTION else runtime.drafts).append(ready)
    if _pool is not None and runtime.finishing:
        runtime.landing.extend(_pool.poll())
    for waiting in (runtime.drafts, runtime.production):
        held: list[Job] = []  # to import once the artist is back in Object Mode (workers start meanwhile)
        while waiting and has_time():
            job = waiting.popleft()
            if job.state is not JobState.READY:
                continue  # cancelled since it was taken
            batch = scheduler.batches.get(job.spec.batch)
            if _for_worker(runtime, job, batch):
                assert batch is not None
                _send_to_worker(runtime, job, batch)  # no time taken, nothing in the scene: not counted
                continue
            if not calm:
                held.append(job)
                continue
            moved += 1
            _import(runtime, job, batch)
        waiting.extendleft(reversed(held))
    while runtime.landing and calm and has_time():
        moved += 1
        _land(runtime, runtime.landing.popleft())
    if runtime.unfinished and calm:
        _queue_unfinished(runtime)
    while runtime.to_finish and calm and has_time():
        job = runtime.to_finish.popleft()
        if job.state is not JobState.IMPORTED:
            continue  # finished meanwhile (a headless resume finishes what it finds itself)
        moved += 1
        batch = scheduler.batches.get(job.spec.batch)
        try:
            if runtime.finish is not None and batch is not None:
                runtime.finish(job, batch)
        except Exception as exc:  # finishing steps report their own errors; this is a bug guard
            _log.exception("finishing %s failed", job.label)
            job.warnings.append(f"finishing failed: {exc}")
        scheduler.mark_finished(job)
    if scheduler.version != runtime.redrawn_version:
        runtime.redrawn_version = scheduler.version
        for listener in list(_listeners):
            try:
                listener()
            except Exception:
                _log.exception("Kiln UI listener failed")
        _tag_redraw()
    runtime.pump_max_ms = max(runtime.pump_max_ms, (time.perf_counter() - started) * 1000.0)
    return moved


def _import(runtime: _Runtime, job: Job, batch: BatchSpec | None) -> None:
    """Import on the main thread; a Production result to finish here joins `to_finish`."""
    scheduler = runtime.scheduler
    try:
        runtime.apply(job)
    except Exception as exc:
        _log.warning("import of %s failed: %s", job.label, exc)
        scheduler.mark_failed(job, getattr(exc, "code", "import_failed"),
                              f"{exc} (the downloaded result is kept: Retry imports it again without paying)")
        return
    # Finishing settings come from the batch as journaled (restored before anything was dispatched),
    # so a restart, a reload or a preferences edit finishes results exactly as the batch asked.
    production = job.spec.mode is Mode.PRODUCTION and runtime.finish is not None
    if production and batch is None:
        # How to finish it is unknown: never call a raw result finished.
        job.warnings.append(f"not finished: the settings of batch '{job.spec.batch}' were not recovered; "
                            "use Finish on the result")
        scheduler.mark_imported(job, finished=False)
    else:
        needs_finish = production and batch is not None and batch.finish is not None
        scheduler.mark_imported(job, finished=not needs_finish)
        if needs_finish:
            runtime.to_finish.append(job)
    if not bpy.app.background:
        bpy.ops.ed.undo_push(message=f"Kiln: import {job.label}")


def _look_for_unfinished(runtime: _Runtime) -> None:
    """Note every job the journal has as imported but not finished; the pump finishes those it finds."""
    runtime.unfinished.update(job.job_id for job in runtime.scheduler.jobs.values()
                              if job.state is JobState.IMPORTED)


def _queue_unfinished(runtime: _Runtime) -> None:
    """Finish, as its batch asks, each imported-but-unfinished result whose object is in the open file.
    One that is not stays imported (nothing is lost: its download is cached) and is looked for again
    when a file is opened: the artist may open the file it was imported into only later."""
    from .importer import find_result

    scheduler = runtime.scheduler
    queued = {job.job_id for job in runtime.to_finish}
    while runtime.unfinished:
        job = scheduler.jobs.get(runtime.unfinished.pop())
        if job is None or job.state is not JobState.IMPORTED or job.job_id in queued:
            continue
        obj = find_result(job.job_id)
        if obj is None:
            continue
        batch = scheduler.batches.get(job.spec.batch)
        if obj.get("kiln_finished") or runtime.finish is None or batch is None or batch.finish is None:
            if batch is None and not obj.get("kiln_finished"):
                job.warnings.append(f"not finished: the settings of batch '{job.spec.batch}' were not "
                                    "recovered; use Finish on the result")
            scheduler.mark_finished(job)
        else:
            _log.info("finishing %s, which Kiln had imported but not finished before it stopped", job.label)
            runtime.to_finish.append(job)


@bpy.app.handlers.persistent  # type: ignore[untyped-decorator]  # untyped in the stubs
def _unfinished_on_load(*_args: object) -> None:
    """A file was opened: it may hold results imported, but not finished, before a crash or restart."""
    if _runtime is not None and not _runtime.scheduler.read_only:
        _look_for_unfinished(_runtime)


def _for_worker(runtime: _Runtime, job: Job, batch: BatchSpec | None) -> bool:
    """A Production result with a finishing preset goes to a worker, when there are workers. The parts
    of a segmented asset are finished here: each takes its place in a group of the scene's."""
    return (runtime.own_finishing and runtime.finish_workers > 0 and job.spec.mode is Mode.PRODUCTION
            and batch is not None and batch.finish is not None and "part_name" not in job.spec.params_dict)


def _send_to_worker(runtime: _Runtime, job: Job, batch: BatchSpec) -> None:
    runtime.finishing[job.job_id] = (job, batch)
    finished = _finished_blend(job)
    if finished is not None:  # a resume: the finishing was done; only the append is left
        runtime.landing.append(Outcome(job.job_id, True, {"blend": str(finished)}))
        return
    from .importer import object_name

    cache = runtime.scheduler.cache_dir
    blend = Path(cache) / "finished" / job.job_id / f"{object_name(job)}.blend"
    _workers_for(runtime).submit(job.job_id, {"job": job.snapshot(), "batch": batch.to_json(),
                                              "blend": str(blend)})


def _land(runtime: _Runtime, outcome: Outcome) -> None:
    """A worker's outcome: append the finished asset, or fail the job with the worker's reason."""
    from .finished import append_finished

    scheduler = runtime.scheduler
    held = runtime.finishing.pop(outcome.job_id, None)
    if held is None:
        return
    job, _batch = held
    if job.state is not JobState.READY:
        return  # cancelled meanwhile
    if not outcome.ok:
        message = outcome.message or "the finishing process failed"
        if outcome.code == "finish_failed":
            message += " (the downloaded result is kept: Retry finishes it again without paying)"
        scheduler.mark_failed(job, outcome.code or "finish_failed", message)
        return
    reply = outcome.reply
    if "finish" in reply:  # fresh from a worker (not a finished .blend found on resume)
        for warning in reply.get("warnings") or ():
            if warning not in job.warnings:
                job.warnings.append(warning)
        timings = {key: reply[key] for key in ("import_ms", "kiln_import_ms") if reply.get(key) is not None}
        scheduler.mark_stage(job, Stage.FINISHED, finished_blend=reply["blend"], finish=reply["finish"], **timings)
    try:
        append_finished(job, Path(reply["blend"]))
    except Exception as exc:
        _log.warning("appending %s failed: %s", job.label, exc)
        scheduler.mark_failed(job, getattr(exc, "code", "import_failed"),
                              f"{exc} (the finished result is kept: Retry brings it in without paying)")
        return
    scheduler.mark_imported(job, finished=True)
    if not bpy.app.background:
        bpy.ops.ed.undo_push(message=f"Kiln: import {job.label}")


def run_until_done(timeout: float | None = None, budget_ms: float = PUMP_BUDGET_MS) -> bool:
    """Background mode: pump until every queued job has ended. Returns False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    scheduler()  # raises when Kiln is not running
    while True:
        pump(budget_ms)
        if is_done():
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _tag_redraw() -> None:
    if bpy.app.background:
        return
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _timer() -> float | None:
    if _runtime is None:
        return None
    try:
        pump()
    except Exception:
        _log.exception("Kiln pump failed")
    if _runtime.to_finish:
        return FINISHING_TIMER_INTERVAL_S
    if _runtime.scheduler.read_only:
        return IDLE_TIMER_INTERVAL_S
    return TIMER_INTERVAL_S if _runtime.scheduler.has_waiting_work() else IDLE_TIMER_INTERVAL_S


@bpy.app.handlers.persistent  # type: ignore[untyped-decorator]  # untyped in the stubs
def _write_catalogs_on_save(*_args: object) -> None:
    """Batch catalogs live in blender_assets.cats.txt beside the .blend, which exists only once saved."""
    from .assets import batches_in_file, write_catalogs_beside_blend

    try:
        write_catalogs_beside_blend(batches_in_file())
    except OSError as exc:
        _log.warning("could not write the asset catalogs: %s", exc)


def _at_exit() -> None:
    """Python is exiting: stop the engine's threads while Blender is still whole (a script that ends
    with Kiln enabled never calls `unregister`).

    Under the `bpy` module, Blender shuts itself down only when the `bpy` module object is freed at
    the end of Python's finalization. Blender 4.2's glTF exporter (which Kiln's export and tests run)
    annotates with `typing.List[Keyframe]`; typing's caches keep that class alive past the point where
    Python clears module globals, its module's globals keep `bpy` alive, Blender never shuts down, and
    its space types are then freed after Python is gone: a segfault (exit code 139) after a clean run.
    Emptying typing's caches here (they are only a speed-up) lets `bpy` be freed in time.
    """
    stop()
    close_pool()
    if not bpy.app.binary_path:  # the `bpy` module; the Blender binary shuts down before Python does
        for clear_cache in getattr(typing, "_cleanups", ()):
            clear_cache()


_exit_hook_registered = False


def _register_exit_hook() -> None:
    """Once per import of this module; the hook stays after `unregister` (the exporter may have run).

    Python closes every `concurrent.futures` pool *before* it runs `atexit` handlers, and the engine's
    watchers would then fail to hand downloads to its pool ("cannot schedule new futures after
    interpreter shutdown"). So the hook goes where `concurrent.futures` registers its own, run just
    before that: `threading._register_atexit` (CPython-internal; plain `atexit` where it is missing).
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        _exit_hook_registered = True
        register_early = getattr(threading, "_register_atexit", None)
        (register_early or atexit.register)(_at_exit)


def register(package: str, settings: EngineSettings | None = None) -> None:
    """Start the engine with every backend the settings allow (Local always), so a remote backend's
    balance can be read before its first job."""
    global _settings
    _settings = settings or EngineSettings()
    start(package, config=_settings.config, cache_dir=_settings.cache_dir)
    _register_exit_hook()
    if not bpy.app.background and not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=TIMER_INTERVAL_S, persistent=True)
    if _write_catalogs_on_save not in bpy.app.handlers.save_post:
        bpy.app.handlers.save_post.append(_write_catalogs_on_save)
    if _unfinished_on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_unfinished_on_load)


def unregister() -> None:
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _write_catalogs_on_save in bpy.app.handlers.save_post:
        bpy.app.handlers.save_post.remove(_write_catalogs_on_save)
    if _unfinished_on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_unfinished_on_load)
    stop()
    close_pool()
