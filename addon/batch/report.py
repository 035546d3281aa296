"""The run's report without Blender: totals from the per-job entries, and the exit code they mean.

The Blender runner gathers one entry per job (what landed in the scene, the faces, the files); this
module adds them up the same way for report.json, the summary line and the exit code, so the three
never disagree.

Exit codes: 0 every asset finished (and its exports were written); 1 the run completed with failed or
unfinished jobs, or a failed export (what finished is written; for a farm, a completed shard);
2 bad input or setup, nothing was submitted; 130 interrupted (Ctrl-C; `--resume` continues).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

FINISHED = "finished"
FAILED = ("failed", "cancelled", "missing")
UNCERTAIN = "uncertain"


def totals(entries: Sequence[dict[str, Any]], wall_s: float, reimported: int = 0) -> dict[str, Any]:
    finished = sum(e["status"] == FINISHED for e in entries)
    failed = sum(e["status"] in FAILED for e in entries)
    uncertain = sum(e["status"] == UNCERTAIN for e in entries)
    return {
        "jobs": len(entries), "assets": len({e["asset"] for e in entries}), "finished": finished, "failed": failed,
        "uncertain": uncertain,
        "uncertain_credits": sum(e.get("credits_estimated", 0.0) for e in entries if e["status"] == UNCERTAIN),
        "unfinished": len(entries) - finished - failed - uncertain,
        "credits": sum(e.get("credits", 0.0) for e in entries),
        "faces": sum(e.get("faces", 0) for e in entries),
        "wall_s": round(wall_s, 2),
        "reimported_after_resume": reimported,
    }


def assemble(*, batch: str, manifest: str, mode: str, backend: str, interrupted: bool,
             entries: list[dict[str, Any]], wall_s: float, output: dict[str, Any], reimported: int = 0,
             shard: tuple[int, int] = (1, 1), resume: dict[str, Any] | None = None,
             preflight: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    """The report document (report.json, and stdout under --json). `preflight`: asset → the pre-flight's
    findings on its inputs (severity, code, reason, fix), as the dry run listed them."""
    document: dict[str, Any] = {
        "batch": batch, "manifest": manifest, "mode": mode, "backend": backend,
        "shard": f"{shard[0]}/{shard[1]}", "interrupted": interrupted,
        "assets": entries,
        "totals": totals(entries, wall_s, reimported),
        "output": output,
    }
    if resume is not None:
        document["resume"] = resume
    if preflight:
        document["preflight"] = preflight
    return document


def exit_code(report: dict[str, Any]) -> int:
    """0 only when every job finished and nothing failed on the way out (an export)."""
    if report.get("interrupted"):
        return EXIT_INTERRUPTED
    counted = report["totals"]
    if counted["finished"] < counted["jobs"] or report["output"].get("export_error"):
        return EXIT_SOME_FAILED
    return EXIT_OK


def summary(report: dict[str, Any]) -> list[str]:
    """The human summary: the totals line, then where things were written."""
    counted = report["totals"]
    lines = [f"kiln batch: {counted['assets']} assets from {counted['jobs']} jobs: {counted['finished']} jobs "
             f"finished, {counted['failed']} failed"
             + (f", {counted['uncertain']} uncertain (may have cost ~{counted['uncertain_credits']:g} credits; "
                "check the provider's dashboard, then --resume --resubmit-uncertain)"
                if counted.get("uncertain") else "")
             + (f", {counted['unfinished']} unfinished" if counted["unfinished"] else "")
             + f", in {counted['wall_s']:.1f}s"]
    output = report["output"]
    for label, key in (("blend", "blend"), ("exports", "exports"), ("report", "report"),
                       ("contact sheet", "contact_sheet")):
        if output.get(key):
            lines.append(f"  {label}: {output[key]}")
    return lines
