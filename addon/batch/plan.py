"""What a headless run will do, decided before anything is spent: its options, where every file goes,
whether the budget and the start time allow it, and the dry-run listing.

No Blender here. The Blender half (`addon/blender/batch_run.py`) is handed to `cli.main` as a
`Runner`: it turns the manifest into specs and a cost estimate (`prepare`), then runs them (`run`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from .. import preflight
from ..backends.base import Backend
from ..backends.registry import BackendSettings
from ..jobs import JobSpec, JobView, Mode
from ..naming import asset_name
from .manifest import ExportSettings, Manifest, ManifestError, PlannedAsset, job_count, resolve_path

DEFAULT_GIVE_UP_S = 120.0
"""Per job, how long Kiln keeps trying to reach the provider before it fails the job (DESIGN: Give up)."""
MAX_START_DELAY_S = 7 * 24 * 3600.0
"""A start time further away than this is refused unless --wait says it is meant (year 9999 would hang)."""
OUTPUT_FILES = ("report.json", "contact_sheet.png")
"""Files a run writes into out/<batch>/ besides `<batch>.blend`."""


@dataclass
class BatchOptions:
    manifest: Path
    out: Path
    resume: bool = False
    shard: tuple[int, int] = (1, 1)
    dry_run: bool = False
    jobs: int | None = None
    quiet: bool = False
    json: bool = False
    give_up_after_s: float = DEFAULT_GIVE_UP_S
    """Per job, the time without reaching the provider before the job fails (polls and downloads)."""
    wait: bool = False
    """Allow a [batch] start_at more than 7 days away."""
    export_dir: Path | None = None
    """The command line's --export-dir: the only way exports leave out/<batch>/."""
    fresh: bool = False
    """Discard a previous run's journal, even one holding paid tasks that never landed."""
    resubmit_uncertain: bool = False
    """Send again the creates whose outcome is unknown (they may be charged twice)."""
    finish_workers: int | None = None
    """Background Blender processes that finish assets (0: in this Blender; None: one per core)."""
    allow_hosts: tuple[str, ...] = ()
    """The command line's --allow-host values: hosts a manifest's [backends.<name>] base_url may send the
    key to besides the provider's own (a manifest alone can never redirect a key)."""

    @property
    def shard_suffix(self) -> str:
        """"" for a whole run; ".shard-2-of-4" for a shard, whose files sit beside the others' in out/<batch>/."""
        index, count = self.shard
        return "" if count == 1 else f".shard-{index}-of-{count}"


@dataclass
class Plan:
    """What `Runner.prepare` found: the specs, what they cost, the backend that runs them, and the folders."""

    specs: list[JobSpec]
    estimated_credits: float
    backend: Backend
    out: Path
    """out/<batch>/: the .blend, the report, the contact sheet."""
    work: Path
    """out/<batch>/.kiln/: journal, prepared inputs, scratch."""
    export_dir: Path | None = None
    export: ExportSettings | None = None
    findings: dict[str, list[preflight.Finding]] = field(default_factory=dict)
    """Asset label → the pre-flight's warnings and tips on its prompt and images (errors stopped the run)."""
    balance: float | None = None
    """The account's balance, read before anything was created (None: the backend has none)."""


class ProgressSink(Protocol):
    def update(self, jobs: Sequence[JobView], eta_s: float | None) -> None: ...

    def close(self) -> None: ...


class Runner(Protocol):
    """The Blender half of a batch, injected into `cli.main` (addon/ never imports addon.blender)."""

    def prepare(self, manifest: Manifest, assets: list[PlannedAsset], options: BatchOptions,
                backend: Backend | None = None, settings: BackendSettings | None = None) -> Plan: ...

    def run(self, manifest: Manifest, plan: Plan, options: BatchOptions, progress: ProgressSink) -> dict[str, Any]:
        ...


# ------------------------------------------------------------------------------------------- paths
def batch_folder(manifest: Manifest, options: BatchOptions) -> Path:
    """out/<batch>/, absolute. The batch name is a slug, so it never climbs out of --out."""
    return resolve_path(options.out / manifest.name, "--out")


def work_folder(manifest: Manifest, options: BatchOptions) -> Path:
    """The run's journal, lock and inputs: out/<batch>/.kiln/, one folder per shard, so shards of one
    manifest can share an --out without touching each other's journal."""
    folder = batch_folder(manifest, options) / ".kiln"
    return folder / options.shard_suffix.lstrip(".") if options.shard_suffix else folder


def blend_path(manifest: Manifest, options: BatchOptions) -> Path:
    return batch_folder(manifest, options) / f"{manifest.name}{options.shard_suffix}.blend"


def report_path(manifest: Manifest, options: BatchOptions) -> Path:
    return batch_folder(manifest, options) / f"report{options.shard_suffix}.json"


def export_settings(manifest: Manifest, options: BatchOptions) -> ExportSettings | None:
    """The manifest's [export] table; with --export-dir and no table, the defaults (the user asked)."""
    if manifest.export is None and options.export_dir is not None:
        return ExportSettings()
    return manifest.export


def export_folder(manifest: Manifest, options: BatchOptions) -> Path | None:
    """Where exports go: --export-dir as given, else [export] folder inside out/<batch>/. A folder that
    leads outside it through a link is refused: a shared manifest must not write elsewhere."""
    if options.export_dir is not None:
        return resolve_path(options.export_dir.expanduser(), "--export-dir")
    if manifest.export is None:
        return None
    root = batch_folder(manifest, options)
    target = resolve_path(root / manifest.export.folder, "[export] folder")
    if not target.is_relative_to(root):
        raise ManifestError("[export] folder", f"\"{manifest.export.folder}\" leads outside {root} (through a "
                            "link): exports stay in the batch folder; pass --export-dir DIR to write elsewhere")
    return target


def check_folder(path: Path, key: str) -> None:
    """A folder Kiln will create or write into: every part of it that exists must be a folder, and the
    nearest existing one writable. Checked without creating anything (a dry run writes nothing)."""
    probe = path
    while True:
        try:
            info = probe.stat()
        except (FileNotFoundError, NotADirectoryError):
            if probe.is_symlink():
                raise ManifestError(key, f"{probe} is a broken link") from None
            if probe.parent == probe:
                raise ManifestError(key, f"cannot create {path}: no part of it exists") from None
            probe = probe.parent
            continue
        except OSError as exc:
            raise ManifestError(key, f"cannot use {path}: {exc.strerror or exc}") from exc
        if not stat.S_ISDIR(info.st_mode):
            where = f"{path} is a file, not a folder" if probe == path else \
                f"cannot create {path}: {probe} is a file"
            raise ManifestError(key, where)
        if not os.access(probe, os.W_OK | os.X_OK):
            raise ManifestError(key, f"cannot write in {probe} (permission denied)")
        return


def check_outputs(manifest: Manifest, options: BatchOptions) -> Path | None:
    """--out, out/<batch>/, the files written there and the export folder, before Blender does any work.
    Returns the export folder."""
    check_folder(options.out.absolute(), "--out")
    check_folder(options.out.absolute() / manifest.name, "--out")  # before links are followed: a dangling one
    root = batch_folder(manifest, options)
    check_folder(root, "--out")
    for name in (f"{manifest.name}.blend", *OUTPUT_FILES):
        if (root / name).is_dir():
            raise ManifestError("--out", f"{root / name} is a folder; Kiln writes its {name} file there")
    folder = export_folder(manifest, options)
    if folder is not None:
        check_folder(folder, "--export-dir" if options.export_dir is not None else "[export] folder")
    return folder


# ---------------------------------------------------------------------------------------- policies
def check_budget(manifest: Manifest, estimated: float) -> None:
    if manifest.budget is not None and estimated > manifest.budget + 1e-9:
        raise ManifestError("[batch] budget", f"{manifest.budget:g} credits is below the estimated cost of "
                            f"{estimated:g} credits for this run")


def check_balance(manifest: Manifest, plan: Plan) -> None:
    """The run's estimate against the account's balance, less `[batch] reserve` for a production run
    (drafts may spend the reserve): short, and the run stops here, before the first create (exit 2). A
    balance below zero (a provider that lets the account go negative) affords nothing."""
    estimates = [plan.backend.estimate_credits(spec) for spec in plan.specs]
    fit = preflight.affordable(estimates, plan.balance, manifest.reserve, draft=manifest.mode is Mode.DRAFT)
    if not fit.fits:
        key = "[batch] reserve" if manifest.reserve and plan.balance is not None and \
            fit.needed <= plan.balance else "[batch] backend"
        raise ManifestError(key, f"the account cannot pay for this run: {fit.message()}; top up, lower "
                            "[batch] reserve, or run fewer assets (--shard)")


def check_start(manifest: Manifest, wait: bool, now: float) -> None:
    if manifest.start_at is None or wait:
        return
    ahead = manifest.start_at - now
    if ahead > MAX_START_DELAY_S:
        raise ManifestError("[batch] start_at", f"is {ahead / 86400:.0f} days away (more than 7): fix the date, or "
                            "pass --wait if the run should wait that long")


# -------------------------------------------------------------------------------------------- dry run
def describe_plan(manifest: Manifest, assets: list[PlannedAsset], cost: float, stream: TextIO,
                  plan: Plan | None = None) -> None:
    stream.write(f"batch {manifest.name}: {len(assets)} asset(s), {job_count(manifest, assets)} job(s) on "
                 f"{manifest.backend} ({manifest.mode.value}), estimated {cost:g} credits\n")
    if plan is not None and plan.balance is not None:
        kept = f", {manifest.reserve:g} reserved for drafts" if manifest.reserve else ""
        stream.write(f"  balance {plan.balance:g} credits{kept}\n")
    for asset in assets:
        label = asset_label(manifest, asset)
        stream.write(f"  {label}  {asset.kind:9s} {asset_what(asset)}\n")
        for finding in (plan.findings.get(label, []) if plan is not None else []):
            stream.write(f"      {finding.severity.value}: {finding.line}\n")
    if plan is not None and plan.findings:
        warned = sum(1 for found in plan.findings.values() if preflight.warnings(found))
        if warned:
            stream.write(f"pre-flight: {warned} of {len(assets)} asset(s) have warnings (they will run; "
                         "fix them first to spend credits on inputs that work)\n")


def plan_json(manifest: Manifest, assets: list[PlannedAsset], cost: float, plan: Plan) -> dict[str, Any]:
    """The dry run for a pipeline (--dry-run --json)."""
    return {
        "batch": manifest.name, "mode": manifest.mode.value, "backend": manifest.backend,
        "assets": [{"asset": asset_label(manifest, a), "kind": a.kind, "what": asset_what(a), "options": a.options,
                    "jobs": a.jobs, "preflight": [f.to_json() for f in plan.findings.get(asset_label(manifest, a), [])]}
                   for a in assets],
        "balance": plan.balance, "reserve": manifest.reserve,
        "totals": {"assets": len(assets), "jobs": job_count(manifest, assets), "estimated_credits": cost},
        "output": {"folder": str(plan.out), "exports": str(plan.export_dir) if plan.export_dir else None},
    }


def asset_label(manifest: Manifest, asset: PlannedAsset) -> str:
    return asset_name(manifest.name, asset.index)


def asset_what(asset: PlannedAsset) -> str:
    what = asset.prompt or ", ".join(f"{v}={Path(p).name}" for v, p in asset.images)
    if asset.parts:
        what = f"{what} parts: {', '.join(asset.parts)}".strip()
    return what
