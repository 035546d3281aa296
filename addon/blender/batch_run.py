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
import os
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from .. import preflight
from ..backends import registry
from ..backends.base import Backend, BackendError, InputLimits
from ..backends.registry import BackendSettings
from ..batch import report as batch_report
from ..batch.manifest import Manifest, ManifestError, PlannedAsset
from ..batch.plan import (
    BatchOptions,
    Plan,
    ProgressSink,
    batch_folder,
    blend_path,
    export_folder,
    export_settings,
    report_path,
    work_folder,
)
from ..jobs import BatchSpec, Job, JobSpec, JobState, JobView, Mode, spec_key
from ..journal import Journal
from ..locks import LOCK_NAME, FolderLock, FolderLocked
from ..naming import asset_name
from ..requests import PreparedInput, manifest_asset_specs, manifest_batch
from ..scheduling import SchedulerConfig
from ..validation import InputError, joined_prompt
from . import runtime
from .contact_sheet import render_contact_sheet
from .exporter import ExportError, export
from .finish_pool import default_size
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
    work = work_folder(manifest, options)
    if not options.dry_run:
        _make_folder(work, "--out")
        _take_the_lock(work, options)
        if not options.resume:
            _start_over(work, out, options)
    else:
        _make_folder(work, "--out")
    exports = export_folder(manifest, options)
    if exports is not None and not options.dry_run:
        _make_folder(exports, "--export-dir" if options.export_dir is not None else "[export] folder")
    specs: list[JobSpec] = []
    findings: dict[str, list[preflight.Finding]] = {}
    limits, label = preflight.limits_for(manifest.backend)
    for asset in assets:
        try:
            found = prompt_preflight(manifest, asset, limits, label)
            asset_specs, image_findings = specs_for(manifest, asset, work / "inputs", limits, label)
            specs += asset_specs
            if found or image_findings:
                findings[asset_name(manifest.name, asset.index)] = found + image_findings
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
    try:
        balance = backend.balance()  # headless: nothing else runs yet, so the run may wait for this answer
    except BackendError as exc:
        raise ManifestError("[batch] backend", f"{manifest.backend}: cannot read the balance: {exc.message}") \
            from exc
    return Plan(specs, sum(backend.estimate_credits(s) for s in specs), backend, out, work, exports,
                export_settings(manifest, options), findings, balance)


def prompt_preflight(manifest: Manifest, asset: PlannedAsset, limits: InputLimits, label: str
                     ) -> list[preflight.Finding]:
    """The pre-flight of every prompt an asset sends; its first hard error raises InputError."""
    prompts = [joined_prompt(asset.prompt, part) for part in asset.parts] if asset.parts else \
        [asset.prompt] if asset.prompt else []
    found: dict[str, preflight.Finding] = {}
    for prompt in prompts:
        for finding in preflight.check_prompt(prompt, limits, mode=manifest.mode.value, target=manifest.target,
                                              backend_label=label):
            if finding.severity is preflight.Severity.ERROR:
                raise InputError(f"prompt: {finding.line}")
            found.setdefault(finding.code, finding)
    return list(found.values())


_held: FolderLock | None = None
"""The run's lock on its journal folder, held from `prepare` to the end of `run` (or of the process)."""


def _take_the_lock(work: Path, options: BatchOptions) -> None:
    """One run per journal: a second run into the same out/<batch>/ (and shard) refuses, naming the other."""
    global _held
    if _held is not None and _held.folder == work:
        return
    try:
        _held = FolderLock(work).acquire(f"kiln batch {options.manifest.name} (shard "
                                         f"{options.shard[0]}/{options.shard[1]})")
    except FolderLocked as exc:
        raise ManifestError("--out", f"{exc}; wait for it to end, or use another --out") from exc
    except OSError as exc:
        raise ManifestError("--out", f"cannot lock {work}: {exc.strerror or exc}") from exc


def _release_the_lock() -> None:
    global _held
    if _held is not None:
        _held.release()
        _held = None


def _start_over(work: Path, out: Path, options: BatchOptions) -> None:
    """A run without --resume starts from nothing, unless the last run left paid work behind: then it
    refuses (exit 2) rather than silently buying it again, and says how to continue or discard it."""
    journal = Journal(work)
    if journal.path.exists():
        contents = journal.load()
        paid = [job for job in contents.jobs if money_at_stake(job)]
        if (paid or contents.unreadable) and not options.fresh:
            what = f"{len(paid)} paid or possibly paid task(s) that did not land" if paid else \
                f"{len(contents.unreadable)} journal entries this Kiln cannot read"
            raise ManifestError("--resume", f"{out} holds {what}: run again with --resume to finish them "
                                "(nothing paid is bought twice), or with --fresh to discard them")
    for entry in work.iterdir():  # everything but the lock we hold
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def money_at_stake(job: Job) -> bool:
    """A job whose task was (or may have been) paid for, and whose result has not landed."""
    if job.superseded_by is not None or job.state is JobState.FINISHED:
        return False
    if job.state is JobState.UNCERTAIN:
        return True
    if job.task_id is None:
        return False
    try:
        # The embedded engine's tasks die with the process and cost nothing; a remote provider's are paid.
        return registry.capabilities(job.spec.backend).durable_tasks
    except KeyError:
        return True  # a backend this Kiln does not know: assume its task was paid


def batch_spec(manifest: Manifest) -> BatchSpec:
    return manifest_batch(name=manifest.name, mode=manifest.mode, backend=manifest.backend,
                          priority=manifest.priority, start_at=manifest.start_at, budget=manifest.budget,
                          finish=manifest.finish, target=manifest.target, theme=manifest.theme,
                          manifest_text=manifest.text)


def specs_for(manifest: Manifest, asset: PlannedAsset, inputs: Path, limits: InputLimits,
              label: str) -> tuple[list[JobSpec], list[preflight.Finding]]:
    """One asset's specs, through the same request builder as every button, and its images' findings
    (pre-flighted for the manifest's backend: only what it cannot use stops the run)."""
    images = []
    findings: list[preflight.Finding] = []
    for view, path in asset.images:
        prepared = prepare_image(path, inputs, limits=limits, backend_label=label)
        images.append(PreparedInput(prepared.source, prepared.prepared, view=view, label=Path(path).stem))
        findings += prepared.findings
    return manifest_asset_specs(
        batch_spec(manifest), kind=asset.kind, index=asset.index, name=asset_name(manifest.name, asset.index),
        base_seed=manifest.seed, prompt=asset.prompt, images=images, parts=asset.parts, options=asset.options,
        face_budget=manifest.finish.face_budget if manifest.finish else 0), findings


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
    blend = blend_path(manifest, options)
    package = runtime.current_package()
    if options.resume and blend.exists():
        bpy.ops.wm.open_mainfile(filepath=str(blend))
    else:
        bpy.ops.wm.read_homefile(use_empty=True)
    config = SchedulerConfig(draft_reserved_slots=0, concurrency_cap=options.jobs, credit_reserve=manifest.reserve,
                             plan_concurrency=dict(manifest.plan_concurrency),
                             give_up_after_s=options.give_up_after_s)
    scheduler = runtime.start(package, backends=[plan.backend], config=config, journal_dir=plan.work,
                              finish_workers=default_size(headless=True) if options.finish_workers is None
                              else options.finish_workers)  # not the add-on's preference: every core
    batch = batch_spec(manifest)
    scheduler.add_batch(batch)
    job_ids, resumed = _reconcile(scheduler, plan, batch, options)
    interrupted = False
    last_save = time.monotonic()
    shown_version, shown_at = -1, 0.0
    stop_requested = threading.Event()
    # Our own SIGINT handler: a KeyboardInterrupt raised inside Blender's C code (an import, a save)
    # can be lost, so Ctrl-C sets a flag the loop checks between pump calls.
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop_requested.set()) \
        if threading.current_thread() is threading.main_thread() else None
    if getattr(previous_handler, "fired", False):  # Ctrl-C came while Blender was loading (scripts/kiln_batch.py)
        stop_requested.set()
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
            sheet = render_contact_sheet(items, plan.out / f"contact_sheet{options.shard_suffix}.png")
    _save(blend)
    report = build_report(manifest, jobs, plan, options, exports, sheet, started, interrupted, export_error,
                          resumed, batch)
    _write_report(manifest, options, report)
    runtime.stop()
    runtime.start(package)  # back to the add-on's own engine
    _release_the_lock()
    return report


@dataclass
class Resumed:
    """What a run found in its journal, and what it did about it (the report's "resume" section)."""

    kept: list[str] = field(default_factory=list)
    """Assets whose earlier job carries on (finished, running, or paid and fetched again)."""
    added: list[str] = field(default_factory=list)
    """Assets new to this run (or whose earlier create was refused, so nothing was paid)."""
    removed: list[str] = field(default_factory=list)
    """Assets the manifest no longer has: cancelled, and their objects taken out of the scene."""
    uncertain: list[str] = field(default_factory=list)
    """Creates whose outcome is unknown, left alone (see --resubmit-uncertain)."""
    reimported: int = 0
    finished_now: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "added": self.added, "removed": self.removed, "uncertain": self.uncertain,
                "reimported": self.reimported, "finished_on_resume": self.finished_now}


def _reconcile(scheduler: Any, plan: Plan, batch: BatchSpec, options: BatchOptions) -> tuple[list[str], Resumed]:
    """Match this run's specs with the journal's jobs, by the job's identity (its name and request).

    Nothing paid is bought again: an earlier job that is live, finished, or failed after its task was
    paid carries on (a retry resumes at the stage that failed: it downloads or imports, never creates);
    an uncertain create is left alone unless --resubmit-uncertain says otherwise. Jobs the manifest no
    longer has are cancelled and their objects removed. What was imported but not finished is finished."""
    resumed = Resumed()
    latest = {spec_key(view.spec): view for view in scheduler.views() if view.superseded_by is None}
    wanted = {spec_key(spec): spec for spec in plan.specs}
    job_ids: list[str] = []
    for key, spec in wanted.items():
        previous = latest.get(key)
        name = spec.name or spec.prompt
        if previous is None:
            job_ids.append(scheduler.add(spec).job_id)
            resumed.added.append(name)
            continue
        if previous.state is JobState.UNCERTAIN and not options.resubmit_uncertain:
            job_ids.append(previous.job_id)
            resumed.uncertain.append(name)
            continue
        if previous.state in (JobState.FAILED, JobState.CANCELLED, JobState.UNCERTAIN):
            try:
                job = scheduler.retry(previous.job_id, confirm_double_charge=options.resubmit_uncertain)
            except (ValueError, KeyError) as exc:
                _log.warning("cannot retry %s: %s", name, exc)
                job_ids.append(previous.job_id)
                continue
            (resumed.kept if previous.task_id else resumed.added).append(name)
            job_ids.append(job.job_id)
            continue
        job_ids.append(previous.job_id)
        resumed.kept.append(name)
        _settle(scheduler, previous, batch, resumed)
    for key, view in latest.items():
        if key in wanted or view.spec.batch != batch.name:
            continue
        resumed.removed.append(view.spec.name or view.spec.prompt)
        if view.can_cancel:
            scheduler.cancel(view.job_id)
        _remove_from_scene(view.job_id)
    return job_ids, resumed


def _settle(scheduler: Any, view: JobView, batch: BatchSpec, resumed: Resumed) -> None:
    """A job the journal says was imported or finished: make the scene agree. Missing from the .blend (the
    crash came before a save) → import its cached result again; imported but not finished → finish it."""
    if view.state not in (JobState.IMPORTED, JobState.FINISHED):
        return
    job: Job = scheduler.jobs[view.job_id]  # no worker holds an imported job: the main thread may use it
    obj = find_result(view.job_id)
    needs_finish = batch.finish is not None and view.spec.mode is Mode.PRODUCTION
    if obj is None:
        if all(Path(p).is_file() for p in view.files.values()) and view.files:
            runtime.reimport(job)  # imports and finishes as the batch asks; no new generation
            resumed.reimported += 1
    elif needs_finish and not obj.get("kiln_finished"):
        runtime.finish_now(job, batch)
        resumed.finished_now += 1
    if view.state is JobState.IMPORTED:
        scheduler.mark_finished(job)


def _remove_from_scene(job_id: str) -> None:
    obj = find_result(job_id)
    if obj is None:
        return
    root = obj
    while root.parent is not None and root.parent.get("kiln_lod_group"):
        root = root.parent
    for member in [*root.children_recursive, root]:
        bpy.data.objects.remove(member, do_unlink=True)


def _landed_status(job: JobView, root: bpy.types.Object | None, batch: BatchSpec) -> tuple[str, dict[str, str] | None]:
    """The status the report may claim: "finished" only when the asset is in the scene, finished by its
    preset, with its LODs when the preset makes them. Anything else says what is missing."""
    error = job.error.to_json() if job.error else None
    if job.state is not JobState.FINISHED:
        if job.state is JobState.UNCERTAIN and error is None:
            error = {"code": "uncertain", "message": job.note or "the create's outcome is unknown"}
        if error is None:
            error = {"code": job.state.value, "message": job.note or f"the job ended {job.state.value}"}
        return ("unfinished" if not job.state.is_terminal else job.state.value), error
    own = find_result(job.job_id)
    if own is None or root is None:
        return "missing", {"code": "missing", "message": "the result is not in the .blend; --resume imports it "
                                                          "again from the cache"}
    wants_finish = batch.finish is not None and job.spec.mode is Mode.PRODUCTION
    if wants_finish and not own.get("kiln_finished"):
        return "unfinished", {"code": "unfinished", "message": "imported but not finished; --resume finishes it"}
    finish = batch.finish
    if wants_finish and finish is not None and finish.lod_ratios and batch.target == "game" \
            and not any(o.get("kiln_lod") for o in root.children_recursive):
        return "unfinished", {"code": "no_lods", "message": "finished without its LODs"}
    return "finished", error


def _write_report(manifest: Manifest, options: BatchOptions, report: dict[str, Any]) -> None:
    """report.json for a whole run; for a shard, its own report.shard-I-of-N.json, then report.json again
    as the union of every shard's report in the folder, so shards together make one result."""
    path = report_path(manifest, options)
    path.write_text(json.dumps(report, indent=2))
    if options.shard_suffix:
        folder = path.parent
        parts = []
        for part in sorted(folder.glob("report.shard-*-of-*.json")):
            try:
                parts.append(json.loads(part.read_text()))
            except (OSError, ValueError):
                continue
        entries = [entry for part in parts for entry in part.get("assets", [])]
        merged = batch_report.assemble(
            batch=manifest.name, manifest=str(manifest.path), mode=manifest.mode.value, backend=manifest.backend,
            interrupted=any(p.get("interrupted") for p in parts), entries=entries,
            wall_s=max((p["totals"]["wall_s"] for p in parts), default=0.0),
            output={"folder": str(folder), "shards": [p.get("output", {}) for p in parts]})
        merged["shards"] = [p.get("shard") for p in parts]
        tmp = folder / "report.json.tmp"
        tmp.write_text(json.dumps(merged, indent=2))
        os.replace(tmp, folder / "report.json")


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
                           gltf=settings.gltf, batch_name=manifest.name,
                           # A shard's batch-wide file is its slice, beside the other shards' (named _2,
                           # _3 …) until the merge writes the whole batch's: only that name is not owned.
                           replace=settings.per == "asset" or not options.shard_suffix):
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
                 interrupted: bool, export_error: str, resumed: Resumed, batch: BatchSpec) -> dict[str, Any]:
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
        status, error = _landed_status(job, root, batch)
        entries.append({
            "asset": root.name if root is not None else name,
            "status": status,
            "error": error,
            "warnings": list(job.warnings),
            "prompt": job.spec.prompt,
            "images": list(job.spec.image_paths),
            "seed": job.spec.seed,
            "backend": job.spec.backend,
            "mode": job.spec.mode.value,
            "task_id": job.task_id,
            "credits": job.credits_spent,
            "credits_estimated": job.credits_estimated,
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
        "blend": str(blend_path(manifest, options)),
        "exports": str(plan.export_dir) if plan.export_dir is not None and plan.export is not None else None,
        "export_error": export_error or None,
        "report": str(report_path(manifest, options)),
        "contact_sheet": str(plan.out / f"contact_sheet{options.shard_suffix}.png") if sheet else None,
        "contact_sheet_grid": sheet,
    }
    return batch_report.assemble(batch=manifest.name, manifest=str(manifest.path), mode=manifest.mode.value,
                                 backend=manifest.backend, interrupted=interrupted, entries=entries,
                                 wall_s=time.monotonic() - started, output=output,
                                 reimported=resumed.reimported, shard=options.shard,
                                 resume=resumed.to_json() if options.resume else None,
                                 preflight={asset: [f.to_json() for f in found]
                                            for asset, found in plan.findings.items()})
