"""The soak benchmark's code, run small: it must count what it claims to (the full soak is `make bench`).
Real engine, real journal on disk, the local engine and the Tripo sandbox over real HTTP with its faults."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

import soak_bench  # noqa: E402

N = 20


def test_local_soak_finishes_every_draft_once(tmp_path: Path) -> None:
    report = soak_bench.soak_local(N, tmp_path)
    assert report["lost"] == 0 and report["duplicated_creates"] == 0
    assert report["finished"] == N and report["creates"] == N
    assert report["pump"]["rejected"] == {}
    assert report["journal"]["after_compaction"]["lines"] == N, "one line per job once compacted"
    assert report["threads"]["kiln_left_after_shutdown"] == 0
    assert report["reload"] == {"recovered": N, "missing": 0, "changed_state": 0, "creates_after_reload": 0}


def test_tripo_soak_under_faults_loses_nothing_and_buys_nothing_twice(tmp_path: Path) -> None:
    report = soak_bench.soak_tripo(N, tmp_path)
    assert report["lost"] == 0 and report["duplicated_creates"] == 0 and report["orphan_tasks"] == 0
    assert report["finished"] + report["failed"] + report["uncertain"] + report["cancelled"] == N
    assert all(report["failure_examples"].values()), "every failure says why"
    assert report["pump"]["rejected"] == {}, "no truncated or dropped download reached the import"
    assert report["faults"]["answered"].get("code_2000", 0) > 0, "the sandbox's concurrency limit was hit"
    assert report["creates"] == report["creates_needed"]
    assert report["reload"]["missing"] == 0 and report["reload"]["changed_state"] == 0
    assert report["reload"]["creates_after_reload"] == 0
