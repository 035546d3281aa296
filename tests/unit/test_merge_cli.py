"""`kiln_batch.py --merge OUT/<batch>`: the command line around the Blender-side merge
(`addon/blender/merge.py`, exercised for real in tests/blender/test_ray.py). Here the merge is a small
stand-in, so the flags, the one-line error and the exit codes are checked without Blender."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from addon.batch.cli import merge_main
from addon.batch.report import assemble


class Merger:
    """What `addon.blender.merge` offers the command line: merge(folder) and MergeError."""

    class MergeError(Exception):
        pass

    def __init__(self, statuses: list[str] | None = None, problem: str = "") -> None:
        self.statuses = statuses or []
        self.problem = problem
        self.folders: list[Path] = []

    def merge(self, folder: Path) -> dict[str, Any]:
        self.folders.append(folder)
        if self.problem:
            raise self.MergeError(self.problem)
        entries = [{"asset": f"b_{i:03}", "status": s} for i, s in enumerate(self.statuses, start=1)]
        return assemble(batch="b", manifest="b.toml", mode="production", backend="local", interrupted=False,
                        entries=entries, wall_s=1.0, output={"blend": str(folder / "b.blend")})


def test_a_complete_merge_exits_0_and_prints_the_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    merger = Merger(["finished", "finished"])
    assert merge_main(["--merge", str(tmp_path)], merger=merger) == 0
    assert merger.folders == [tmp_path]
    out = capsys.readouterr().out
    assert "2 assets from 2 jobs: 2 jobs finished, 0 failed" in out
    assert f"blend: {tmp_path / 'b.blend'}" in out


def test_a_merge_with_a_failed_job_exits_1_and_json_carries_the_report(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert merge_main(["--merge", str(tmp_path), "--json"], merger=Merger(["finished", "failed"])) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["totals"]["failed"] == 1


def test_a_shard_that_has_not_completed_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    problem = "shard 2/2 has not completed (no report.shard-2-of-2.json): run it, or --resume it, then merge"
    assert merge_main(["--merge", str(tmp_path)], merger=Merger(problem=problem)) == 2
    captured = capsys.readouterr()
    assert captured.err == f"kiln batch: error: --merge: {problem}\n"
    assert captured.out == ""


def test_merge_needs_its_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert merge_main(["--merge"], merger=Merger()) == 2
    assert capsys.readouterr().err.startswith("kiln batch: error: --merge: needs a value")
