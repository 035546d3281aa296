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
from ..jobs import BatchSpec, Job, Mode
from ..journal import Journal
from ..scheduling import Scheduler, SchedulerConfig
from .calm import can_land_now

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


@dataclass(frozen=True)
class EngineSettings:
    """Everything the preferences decide for the engine, as plain values (`ui.preferences` builds it)."""

    backends: Mapping[str, BackendSettings] = field(default_factory=dict)
    """Per backend name: its key, endpoint and timeout, already resolved (environment first)."""
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    cache_dir: Path | None = None
    """The artist's results folder; None: the extension's user folder."""


_runtime: _Runtime | None = None
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
) -> Scheduler:
    """Create and start the scheduler (recovering from the journal). Idempotent: stops any previous one.

    Without `backends`, every backend the current settings allow is built (Local always); tests and the
    headless batch pass their own.
    """
    global _runtime
    stop()
    journal_folder = journal_dir or user_folder(package, "journal")
    if cache_dir is not None:
        cache = Path(cache_dir)  # the artist's choice (preferences)
        cache.mkdir(parents=True, exist_ok=True)
    else:
        cache = user_folder(package, "results") if journal_dir is None else journal_dir / "results"
    if backends is None:
        backends = [b for b in (_build(entry.name, cache) for entry in registry.BACKENDS) if b is not None]
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
    sched = _runtime.scheduler
    cache = sched.cache_dir or user_folder(_runtime.package, "results")
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


def finish_now(job: Job, batch: BatchSpec) -> None:
    """Finish an imported result that a crash left unfinished (main thread; resume)."""
    if _runtime is None:
        raise RuntimeError("Kiln is not running: enable the add-on first")
    if _runtime.finish is not None:
        _runtime.finish(job, batch)


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
    while can_land_now() and (time.perf_counter() < deadline or moved == 0):  # results never interrupt
        job = scheduler.take_ready()
        if job is None:
            break
        moved += 1
        try:
            runtime.apply(job)
        except Exception as exc:
            _log.warning("import of %s failed: %s", job.label, exc)
            scheduler.mark_failed(job, getattr(exc, "code", "import_failed"),
                                  f"{exc} (the downloaded result is kept: Retry imports it again without paying)")
            continue
        # Finishing settings come from the batch as journaled (restored before anything was dispatched),
        # so a restart, a reload or a preferences edit finishes results exactly as the batch asked.
        batch = scheduler.batches.get(job.spec.batch)
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
    while runtime.to_finish and can_land_now() and (time.perf_counter() < deadline or moved == 0):
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


def unregister() -> None:
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _write_catalogs_on_save in bpy.app.handlers.save_post:
        bpy.app.handlers.save_post.remove(_write_catalogs_on_save)
    stop()
