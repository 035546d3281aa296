"""The runtime: the add-on's one Scheduler, and the pump that moves its results into the scene.

`pump(budget_ms)` is the only code that brings results into Blender. In the UI a persistent
`bpy.app.timers` timer calls it; in background mode and in the `bpy` module timers never fire, so
scripts and tests call `run_until_done()`, which pumps in a loop.
"""

from __future__ import annotations

import collections
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from ..backends import create_backend
from ..backends.base import Backend
from ..jobs import BatchSpec, Job, Mode
from ..journal import Journal
from ..scheduling import Scheduler, SchedulerConfig

_log = logging.getLogger(__name__)

PUMP_BUDGET_MS = 20.0
TIMER_INTERVAL_S = 0.1
IDLE_TIMER_INTERVAL_S = 0.5
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
    to_finish: collections.deque[Job] = field(default_factory=collections.deque)
    redrawn_version: int = -1
    pump_max_ms: float = 0.0


_runtime: _Runtime | None = None
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
) -> Scheduler:
    """Create and start the scheduler (recovering from the journal). Idempotent: stops any previous one."""
    global _runtime
    stop()
    journal_folder = journal_dir or user_folder(package, "journal")
    if cache_dir is not None:
        cache = Path(cache_dir)  # the artist's choice (preferences)
        cache.mkdir(parents=True, exist_ok=True)
    else:
        cache = user_folder(package, "results") if journal_dir is None else journal_dir / "results"
    if backends is None:
        backends = [create_backend("local", scratch_dir=cache / "local_scratch")]
    if apply is None:
        from .finishing import finish_result
        from .importer import import_result

        apply, finish = import_result, finish or finish_result
    scheduler = Scheduler(backends, journal=Journal(journal_folder), cache_dir=cache, config=config)
    scheduler.start()
    inputs = user_folder(package, "inputs") if journal_dir is None else journal_dir / "inputs"
    _runtime = _Runtime(scheduler, apply, finish, package, inputs)
    return scheduler


def stop(timeout_s: float = 3.0) -> None:
    """Stop threads; what was running stays in the journal and is reattached on the next start."""
    global _runtime
    if _runtime is not None:
        runtime, _runtime = _runtime, None
        runtime.scheduler.shutdown(timeout_s)


def scheduler() -> Scheduler:
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    return _runtime.scheduler


def inputs_folder() -> Path:
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    return _runtime.inputs


def ensure_backend(name: str, *, api_key: str = "", base_url: str = "", timeout_s: float = 30.0) -> None:
    """Create a remote backend on first use (with the current key and endpoint) and hand it to the
    scheduler; network access is checked against Blender's online access on every request."""
    sched = scheduler()
    existing = sched.backends.get(name)
    key_changed = existing is not None and getattr(getattr(existing, "http", None), "_api_key", api_key) != api_key
    if existing is None or (api_key and key_changed):
        sched.add_backend(create_backend(name, api_key=api_key, base_url=base_url, timeout_s=timeout_s,
                                         online=lambda: bool(bpy.app.online_access)))


def current_package() -> str:
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    return _runtime.package


def is_done() -> bool:
    """Nothing queued, in flight, waiting for import or for finishing."""
    return _runtime is None or (_runtime.scheduler.is_idle() and not _runtime.to_finish)


def reimport(job: Job) -> None:
    """Bring an already finished job's downloaded result into the scene again (after a crash lost the
    scene before it was saved). No new generation; finishing runs again as the batch asks."""
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    _runtime.apply(job)
    batch = _runtime.scheduler.batches.get(job.spec.batch)
    if _runtime.finish is not None and batch is not None and batch.finish is not None \
            and job.spec.mode is Mode.PRODUCTION:
        _runtime.finish(job, batch)


def is_running() -> bool:
    return _runtime is not None


def pump(budget_ms: float = PUMP_BUDGET_MS) -> int:
    """Main thread only: import ready results, then finish imported Production results, until the
    time budget is spent; returns how many jobs moved.

    At least one job moves per call, so a slow import or finish still makes progress; the rest wait
    for the next call, which keeps the UI responsive while 200 results arrive.
    """
    if _runtime is None:
        return 0
    runtime = _runtime
    scheduler = runtime.scheduler
    started = time.perf_counter()
    deadline = started + budget_ms / 1000.0
    moved = 0
    while time.perf_counter() < deadline or moved == 0:
        job = scheduler.take_ready()
        if job is None:
            break
        moved += 1
        try:
            runtime.apply(job)
        except Exception as exc:
            _log.warning("import of %s failed: %s", job.label, exc)
            scheduler.mark_failed(job, getattr(exc, "code", "import_failed"), str(exc))
            continue
        batch = scheduler.batches.get(job.spec.batch)
        needs_finish = (runtime.finish is not None and job.spec.mode is Mode.PRODUCTION
                        and batch is not None and batch.finish is not None)
        scheduler.mark_imported(job, finished=not needs_finish)
        if needs_finish:
            runtime.to_finish.append(job)
        if not bpy.app.background:
            bpy.ops.ed.undo_push(message=f"Kiln: import {job.label}")
    while runtime.to_finish and (time.perf_counter() < deadline or moved == 0):
        job = runtime.to_finish.popleft()
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
    return TIMER_INTERVAL_S if _runtime.scheduler.has_waiting_work() else IDLE_TIMER_INTERVAL_S


@bpy.app.handlers.persistent  # type: ignore[untyped-decorator]  # untyped in the stubs
def _write_catalogs_on_save(*_args: object) -> None:
    """Batch catalogs live in blender_assets.cats.txt beside the .blend, which exists only once saved."""
    from .assets import batches_in_file, write_catalogs_beside_blend

    try:
        write_catalogs_beside_blend(batches_in_file())
    except OSError as exc:
        _log.warning("could not write the asset catalogs: %s", exc)


def register_settings(config: SchedulerConfig, cache_dir: Path | None) -> None:
    """Restart the engine with new settings (from the preferences); keeps the remote backends."""
    if _runtime is None:
        return
    package = _runtime.package
    backends = list(_runtime.scheduler.backends.values())
    start(package, config=config, cache_dir=cache_dir,
          backends=[b for b in backends if b.name != "local"] or None)


def register(package: str, config: SchedulerConfig | None = None, cache_dir: Path | None = None) -> None:
    start(package, config=config, cache_dir=cache_dir)
    if not bpy.app.background and not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=TIMER_INTERVAL_S, persistent=True)
    if _write_catalogs_on_save not in bpy.app.handlers.save_post:
        bpy.app.handlers.save_post.append(_write_catalogs_on_save)


def unregister() -> None:
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _write_catalogs_on_save in bpy.app.handlers.save_post:
        bpy.app.handlers.save_post.remove(_write_catalogs_on_save)
    stop()
