"""Headless batch runs: manifest in, finished assets out. The one implementation behind
`scripts/kiln_batch.py` (blender -b or plain Python) and `blender -c kiln batch`.

This module parses arguments, validates the manifest completely (nothing is spent on a bad one),
prints progress and decides the exit code. The Blender work (import, finishing, export, contact
sheet, .blend) is in `addon/blender/batch_run.py`.

Exit codes: 0 all assets succeeded; 1 some failed (the rest are written); 2 bad manifest or setup;
130 interrupted (Ctrl-C; what finished is kept and `--resume` continues).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .backends import registry
from .backends.base import Backend
from .backends.registry import BackendSettings
from .jobs import JobState, JobView
from .manifest import Manifest, ManifestError, PlannedAsset, job_count, load_manifest

_log = logging.getLogger(__name__)

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


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


def parse_args(argv: list[str]) -> BatchOptions:
    parser = argparse.ArgumentParser(
        prog="kiln batch", description="Run a Kiln batch manifest headless: generate, finish, export.")
    parser.add_argument("manifest", type=Path, help="the batch manifest (TOML)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out/)")
    parser.add_argument("--resume", action="store_true", help="continue a run from its journal")
    parser.add_argument("--shard", default="1/1", help="run slice I of N, e.g. 2/4 (default 1/1)")
    parser.add_argument("--dry-run", action="store_true", help="print the jobs and their cost, submit nothing")
    parser.add_argument("--jobs", type=int, default=None, help="cap on jobs in flight")
    parser.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    parser.add_argument("--json", action="store_true", help="print the final report as JSON on stdout")
    args = parser.parse_args(argv)
    try:
        index, count = (int(part) for part in args.shard.split("/"))
        if not 1 <= index <= count:
            raise ValueError
    except ValueError:
        parser.error(f"--shard must look like I/N with 1 <= I <= N, not {args.shard!r}")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return BatchOptions(args.manifest, args.out, args.resume, (index, count), args.dry_run, args.jobs,
                        args.quiet, args.json)


def check_backend(manifest: Manifest, online_access: bool, settings: BackendSettings) -> None:
    info = registry.info(manifest.backend)
    if info.needs_network and not online_access:
        raise ManifestError(f"[batch] backend: '{info.name}' needs the internet, but online access is off "
                            "(run Blender with --online-mode, or use backend = \"local\")")
    if info.needs_key and not settings.api_key:
        raise ManifestError(f"[batch] backend: no API key for '{info.name}' (set {info.key_variable}, or the key "
                            "in Kiln's preferences)")


def check_budget(manifest: Manifest, estimated: float) -> None:
    if manifest.budget is not None and estimated > manifest.budget + 1e-9:
        raise ManifestError(f"[batch] budget: {manifest.budget:g} credits is below the estimated cost of "
                            f"{estimated:g} credits for this run")


@dataclass
class Progress:
    """A live line on a terminal; one log line per event otherwise (CI logs, farms)."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    started: float = field(default_factory=time.monotonic)
    _seen: dict[str, str] = field(default_factory=dict)
    _last_line: str = ""

    @property
    def live(self) -> bool:
        return self.stream.isatty() and not self.quiet

    def update(self, jobs: Sequence[JobView], eta_s: float | None) -> None:
        counts = {state: 0 for state in JobState}
        for job in jobs:
            counts[job.state] += 1
        done = counts[JobState.FINISHED]
        failed = counts[JobState.FAILED] + counts[JobState.CANCELLED]
        running = sum(counts[s] for s in (JobState.SUBMITTING, JobState.RUNNING, JobState.DOWNLOADING,
                                         JobState.READY, JobState.IMPORTED))
        credits = sum(job.credits_spent for job in jobs)
        eta = f"{eta_s:.0f}s" if eta_s is not None else "?"
        line = (f"kiln: {done}/{self.total} done, {running} running, {failed} failed, ETA {eta}, "
                f"{credits:g} credits, {time.monotonic() - self.started:.0f}s")
        if self.live:
            if line != self._last_line:
                self.stream.write("\r" + line.ljust(len(self._last_line)))
                self.stream.flush()
                self._last_line = line
            return
        if self.quiet:
            return
        for job in jobs:
            if self._seen.get(job.job_id) != job.state.value:
                self._seen[job.job_id] = job.state.value
                detail = f": {job.error.message}" if job.error else ""
                self.stream.write(f"kiln: {job.spec.batch}#{job.spec.index + 1} {job.label[:48]!r} → "
                                  f"{job.state.value}{detail}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._last_line:
            self.stream.write("\n")


def describe_plan(manifest: Manifest, assets: list[PlannedAsset], cost: float, stream: TextIO) -> None:
    stream.write(f"batch {manifest.name}: {len(assets)} asset(s), {job_count(manifest, assets)} job(s) on "
                 f"{manifest.backend} ({manifest.mode.value}), estimated {cost:g} credits\n")
    names = dict(zip((a.index for a in manifest.assets), manifest.asset_names(), strict=True))
    for asset in assets:
        name = names[asset.index]
        what = asset.prompt or ", ".join(f"{v}={Path(p).name}" for v, p in asset.images) or ""
        if asset.parts:
            what = f"{what} parts: {', '.join(asset.parts)}".strip()
        stream.write(f"  {name}  {asset.kind:9s} {what}\n")


def main(argv: list[str], *, online_access: bool = False, backends: Mapping[str, BackendSettings] | None = None,
         backend: Backend | None = None) -> int:
    """Run a batch; returns the process exit code. `backends` holds each backend's key and endpoint as
    the caller found them (`ui.preferences.installed_engine_settings`: the environment, then the
    add-on's preferences); without it the environment alone decides. `backend` replaces the
    manifest's (tests)."""
    options = parse_args(argv)
    try:
        manifest = load_manifest(options.manifest, set(registry.names()))
        settings = (backends or {}).get(manifest.backend) or registry.resolve(manifest.backend)
        check_backend(manifest, online_access, settings)
    except ManifestError as exc:
        print(f"kiln batch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    assets = manifest.shard(*options.shard)
    if not assets:
        print(f"kiln batch: shard {options.shard[0]}/{options.shard[1]} has no assets; nothing to do",
              file=sys.stderr)
        return EXIT_OK
    from .blender import batch_run  # Blender is needed from here on

    try:
        plan = batch_run.prepare(manifest, assets, options, backend, settings)
        check_budget(manifest, plan.estimated_credits)
    except ManifestError as exc:
        print(f"kiln batch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if options.dry_run:
        describe_plan(manifest, assets, plan.estimated_credits, sys.stdout)
        return EXIT_OK
    progress = Progress(total=len(plan.specs), quiet=options.quiet)
    report = batch_run.run(manifest, plan, options, progress)
    if options.json:
        print(json.dumps(report, indent=2))
    elif not options.quiet:
        totals = report["totals"]
        print(f"kiln batch: {totals['assets']} assets from {totals['jobs']} jobs: {totals['finished']} jobs finished, "
              f"{totals['failed']} failed, in {totals['wall_s']:.1f}s")
        for label, key in (("blend", "blend"), ("exports", "exports"), ("report", "report"),
                           ("contact sheet", "contact_sheet")):
            value = report["output"].get(key)
            if value:
                print(f"  {label}: {value}")
    if report.get("interrupted"):
        return EXIT_INTERRUPTED
    return EXIT_OK if report["totals"]["failed"] == 0 else EXIT_SOME_FAILED


def cli_command(argv: list[str], *, online_access: bool = False,
                backends: Mapping[str, BackendSettings] | None = None) -> int:
    """`blender -c kiln batch …` (registered with bpy.utils.register_cli_command in the add-on)."""
    if not argv or argv[0] != "batch":
        print("usage: blender -c kiln batch MANIFEST [--out DIR] [--resume] [--shard I/N] [--dry-run] "
              "[--jobs N] [--quiet|--json]", file=sys.stderr)
        return EXIT_BAD_INPUT
    return main(argv[1:], online_access=online_access, backends=backends)
