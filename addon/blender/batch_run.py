"""The Blender side of a headless batch: prepare inputs, pump the jobs, finish, export, save, report.

`addon/batch/cli.py` validates everything it can without Blender, then calls this module as its
injected `Runner` (`prepare`, then `run`). Every file is written inside out/<batch>/, except exports
when the command line names --export-dir. The run is resumable: the journal lives in
`out/<batch>/.kiln/`, the .blend is saved whenever results have landed, and `--resume` reattaches to
what was running and skips what was already imported.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bpy

from ..backends import registry
from ..backends.base import Backend, BackendError
from ..backends.registry import BackendSettings
from ..batch import report as batch_report
from ..batch.manifest import Manifest, ManifestError, PlannedAsset
from ..batch.plan import BatchOptions, Plan, ProgressSink, batch_folder, export_folder, export_settings
from ..jobs import BatchSpec, JobSpec, JobState, JobView, spec_key
from ..naming import asset_name
from ..requests import PreparedInput, manifest_asset_specs, manifest_batch
from ..scheduling import SchedulerConfig
from ..validation import InputError
from . import runtime
from .contact_sheet import render_contact_sheet
from .exporter import ExportError, export
from .images import prepare_image
from .importer import find_result
from .quiet import quiet_stdout

_log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 5.0
"""Save the .blend at most this often while results land, so a crash loses little and --resume skips it."""


PROGRESS_INTERVAL_S = 1.0
"""Progress is redrawn when a job changed, and at least this often (the elapsed time and ETA move)."""


def _warnings_and_up(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def _make_folder(path: Path, key: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ManifestError(key, f"cannot create {path}: {exc.strerror or exc}") from exc


def prepare(manifest: Manifest, assets: list[PlannedAsset], options: BatchOptions,
            backend: Backend | None = None, settings: BackendSettings | None = None) -> Plan:
    """Everything that can fail before money is spent: folders (the export folder too, so one that
    cannot be made stops the run here, not after every job was paid for), images, specs, the cost
    estimate. The backend is built from `settings` (key and endpoint as the caller found them), pointed
    at the manifest's [backends.<name>] base_url unless the environment names one."""
    out = batch_folder(manifest, options)
    work = out / ".kiln"
    if not options.resume and not options.dry_run and work.exists():
        shutil.rmtree(work)  # a fresh run: the previous journal must not be reattached
    _make_folder(work, "--out")
    exports = export_folder(manifest, options)
    if exports is not None and not options.dry_run:
        _make_folder(exports, "--export-dir" if options.export_dir is not None else "[export] folder")
    specs: list[JobSpec] = []
    for asset in assets:
        try:
            specs += specs_for(manifest, asset, work / "inputs")
        except InputError as exc:
            raise ManifestError(f"asset[{asset.index + 1}]", str(exc)) from exc
        except OSError as exc:
            raise ManifestError(f"asset[{asset.index + 1}]", f"cannot prepare its image: {exc.strerror or exc}") \
                from exc
    if backend is None:
        url = manifest.backend_settings.get(manifest.backend, {}).get("base_url", "")
        chosen = registry.with_endpoint(manifest.backend, settings or registry.resolve(manifest.backend), url)
        try:
            backend = registry.build(manifest.backend, chosen, scratch_dir=work / "scratch",
                                     online=lambda: bool(bpy.app.online_access))
            backend.verify()  # a wrong key or an unreachable host stops the run before anything is spent
        except BackendError as exc:
            raise ManifestError("[batch] backend", f"{manifest.backend}: {exc.message}") from exc
    return Plan(specs, sum(backend.estimate_credits(s) for s in specs), backend, out, work, exports,
                export_settings(manifest, options))


def batch_spec(manifest: Manifest) -> BatchSpec:
    return manifest_batch(name=manifest.name, mode=manifest.mode, backend=manifest.backend,
                          priority=manifest.priority, start_at=manifest.start_at, budget=manifest.budget,
                          finish=manifest.finish, target=manifest.target, theme=manifest.theme,
                          manifest_text=manifest.text)


def specs_for(manifest: Manifest, asset: PlannedAsset, inputs: Path) -> list[JobSpec]:
    """One asset's specs, through the same request builder as every button."""
    images = []
    for view, path in asset.images:
        prepared = prepare_image(path, inputs)
        images.append(PreparedInput(prepared.source, prepared.prepared, view=view, label=Path(path).stem))
    return manifest_asset_specs(
        batch_spec(manifest), kind=asset.kind, index=asset.index, name=asset_name(manifest.name, asset.index),
        base_seed=manifest.seed, prompt=asset.prompt, images=images, parts=asset.parts, options=asset.options,
        face_budget=manifest.finish.face_budget if manifest.finish else 0)


def _save(path: Path) -> None:
    with quiet_stdout():
        bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)


def _asset_root(job: JobView) -> bpy.types.Object | None:
    obj = find_result(job.job_id)
    while obj is not None and obj.parent is not None:
        obj = obj.parent
    return obj


def _meshes_of(root: bpy.types.Object) -> list[bpy.types.Object]:
    """The meshes that show an asset: itself, or every part's LOD0 (LOD1… are left out)."""
    members = [root, *root.children_recursive]
    return [o for o in members if isinstance(o.data, bpy.types.Mesh) and o.get("kiln_lod") is None]


def run(manifest: Manifest, plan: Plan, options: BatchOptions, progress: ProgressSink) -> dict[str, Any]:
    started = time.monotonic()
    # Blender's glTF importer logs three INFO lines per file (and resets its level on every import):
    # noise in a batch log of hundreds, so filter them out; warnings and errors still show.
    logging.getLogger("glTFImporter").addFilter(_warnings_and_up)
    blend = plan.out / f"{manifest.name}.blend"
    package = runtime.current_package()
    if options.resume and blend.exists():
        bpy.ops.wm.open_mainfile(filepath=str(blend))
    else:
        bpy.ops.wm.read_homefile(use_empty=True)
    config = SchedulerConfig(draft_reserved_slots=0, concurrency_cap=options.jobs,
                             give_up_after_s=options.give_up_after_s)
    scheduler = runtime.start(package, backends=[plan.backend], config=config, journal_dir=plan.work)
    scheduler.add_batch(batch_spec(manifest))
    known = {spec_key(job.spec): job for job in scheduler.views()}
    job_ids: list[str] = []
    redone_imports = 0
    for spec in plan.specs:
        previous = known.get(spec_key(spec))
        if previous is not None and previous.state not in (JobState.FAILED, JobState.CANCELLED):
            if previous.state is JobState.FINISHED and find_result(previous.job_id) is None:
                # Finished before the last save: bring the downloaded result in again (no new generation).
                # A finished job is no worker's any more, so the main thread may hand the live one on.
                runtime.reimport(scheduler.jobs[previous.job_id])
                redone_imports += 1
            job_ids.append(previous.job_id)
            continue
        job_ids.append(scheduler.add(spec).job_id)
    interrupted = False
    last_save = time.monotonic()
    shown_version, shown_at = -1, 0.0
    stop_requested = threading.Event()
    # Our own SIGINT handler: a KeyboardInterrupt raised inside Blender's C code (an import, a save)
    # can be lost, so Ctrl-C sets a flag the loop checks between pump calls.
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop_requested.set()) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        while not stop_requested.is_set():
            moved = runtime.pump(50.0)
            if scheduler.version != shown_version or time.monotonic() - shown_at >= PROGRESS_INTERVAL_S:
                shown_version, shown_at = scheduler.version, time.monotonic()
                progress.update(scheduler.views(job_ids), scheduler.batch_eta(manifest.name))
            if moved and time.monotonic() - last_save > SAVE_INTERVAL_S:
                _save(blend)
                last_save = time.monotonic()
            if runtime.is_done():
                break
            if not moved:
                time.sleep(0.01)
    except KeyboardInterrupt:
        stop_requested.set()
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    interrupted = stop_requested.is_set() and not runtime.is_done()
    jobs = scheduler.views(job_ids)
    progress.update(jobs, 0.0)
    progress.close()
    finished = [j for j in jobs if j.state is JobState.FINISHED]
    exports, export_error = ({}, "") if interrupted else _export(manifest, plan, options, finished)
    sheet = None
    if not interrupted and finished:
        items: list[tuple[str, list[bpy.types.Object]]] = []
        for job in finished:
            root = _asset_root(job)
            if root is not None and all(root.name != name for name, _ in items):
                items.append((root.name, _meshes_of(root)))
        with quiet_stdout():
            sheet = render_contact_sheet(items, plan.out / "contact_sheet.png")
    _save(blend)
    report = build_report(manifest, jobs, plan, options, exports, sheet, started, interrupted, export_error,
                          redone_imports)
    (plan.out / "report.json").write_text(json.dumps(report, indent=2))
    runtime.stop()
    runtime.start(package)  # back to the add-on's own engine
    return report


def _export(manifest: Manifest, plan: Plan, options: BatchOptions,
            finished: list[JobView]) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Export the finished assets; returns the files per object name and the error, if any. The folder
    is checked again first: a link swapped in during the run must not carry files out of out/<batch>/."""
    exports: dict[str, list[dict[str, Any]]] = {}
    settings = plan.export
    if settings is None or plan.export_dir is None or not finished:
        return exports, ""
    roots = []
    for job in finished:
        root = _asset_root(job)
        if root is not None and root not in roots:
            roots.append(root)
    try:
        if export_folder(manifest, options) != plan.export_dir:
            raise ExportError(f"the export folder {plan.export_dir} changed during the run")
        for item in export(roots, str(plan.export_dir), per=settings.per, preset=settings.preset,
                           gltf=settings.gltf, batch_name=manifest.name):
            for name in item.objects:
                exports.setdefault(name, []).append(item.__dict__)
    except (ExportError, ManifestError, OSError, RuntimeError, ValueError) as exc:
        # Blender's exporters raise RuntimeError; a damaged export_manifest.json a ValueError. The run
        # is kept (the .blend and report are written) and exits 1.
        _log.debug("export failed", exc_info=True)
        return exports, " ".join(str(exc).split()) or type(exc).__name__
    return exports, ""


def build_report(manifest: Manifest, jobs: list[JobView], plan: Plan, options: BatchOptions,
                 exports: dict[str, list[dict[str, Any]]], sheet: dict[str, int | str] | None, started: float,
                 interrupted: bool, export_error: str, redone_imports: int) -> dict[str, Any]:
    """One entry per job from the scene (what landed, its faces and files); totals and the exit code's
    meaning are `addon/batch/report.py`'s."""
    entries = []

    def span(times: Mapping[str, float], a: str, b: str) -> float | None:
        return round(times[b] - times[a], 3) if a in times and b in times else None

    for job in jobs:
        times = job.state_times
        root = _asset_root(job)
        own = find_result(job.job_id)
        finish = job.metadata.get("finish") or {}
        name = asset_name(manifest.name, job.spec.index, job.spec.option)
        entries.append({
            "asset": root.name if root is not None else name,
            "status": job.state.value,
            "error": job.error.to_json() if job.error else None,
            "warnings": list(job.warnings),
            "prompt": job.spec.prompt,
            "images": list(job.spec.image_paths),
            "seed": job.spec.seed,
            "backend": job.spec.backend,
            "mode": job.spec.mode.value,
            "task_id": job.task_id,
            "credits": job.credits_spent,
            "timings_s": {
                "queued": span(times, "queued", "submitting"),
                "generation": span(times, "submitting", "downloading"),
                "download": span(times, "downloading", "ready"),
                "import": round(job.metadata.get("import_ms", 0) / 1000, 4) if "import_ms" in job.metadata else None,
                "finish": finish.get("seconds"),
                "export": round(sum(f["ms"] for f in exports.get(root.name, [])) / 1000, 4) if root else None,
            },
            "faces": len(own.data.polygons) if own is not None and isinstance(own.data, bpy.types.Mesh) else 0,
            "lods": finish.get("lods", []),
            "files": {
                "result": dict(job.files),
                "exports": sorted({f["path"] for f in exports.get(root.name, [])}) if root else [],
            },
        })
    output = {
        "folder": str(plan.out),
        "blend": str(plan.out / f"{manifest.name}.blend"),
        "exports": str(plan.export_dir) if plan.export_dir is not None and plan.export is not None else None,
        "export_error": export_error or None,
        "report": str(plan.out / "report.json"),
        "contact_sheet": str(plan.out / "contact_sheet.png") if sheet else None,
        "contact_sheet_grid": sheet,
    }
    return batch_report.assemble(batch=manifest.name, manifest=str(manifest.path), mode=manifest.mode.value,
                                 backend=manifest.backend, interrupted=interrupted, entries=entries,
                                 wall_s=time.monotonic() - started, output=output, reimported=redone_imports,
                                 shard=options.shard)
