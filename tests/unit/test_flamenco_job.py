"""The Flamenco job type `farm/flamenco/kiln-batch.js`, run under Node with a recording stand-in for
Flamenco's documented `author` API (tests/unit/flamenco_stand_in.mjs).

This checks the job's logic (one task per shard running the same kiln_batch command, a merge task that
depends on every shard, the settings it refuses), not a Flamenco Manager: no Manager runs here."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
JOB_TYPE = REPO / "farm/flamenco/kiln-batch.js"
STAND_IN = Path(__file__).parent / "flamenco_stand_in.mjs"
SETTINGS = {"manifest": "/farm/projects/env/env.toml", "shards": 3, "output_folder": "/farm/out",
            "kiln_folder": "/farm/kiln", "extra_args": '--online-mode --jobs 8 --allow-host "gpu box:8080"',
            "blender_cmd": "{blender}"}


def compile_job(**changes: Any) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is required (the same one as the glTF-Validator tests)"
    result = subprocess.run([node, str(STAND_IN), str(JOB_TYPE), json.dumps({**SETTINGS, **changes})],
                            capture_output=True, text=True, timeout=60, check=True)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def blender_args(task: dict[str, Any]) -> list[str]:
    (command,) = task["commands"]
    assert command["type"] == "blender-render"
    parameters = command["parameters"]
    assert parameters["exe"] == "{blender}"
    assert parameters["exeArgs"].split() == ["-b", "--factory-startup"]
    assert parameters["blendfile"] == ""
    args: list[str] = parameters["args"]
    assert args[:5] == ["--python-exit-code", "1", "--python", "/farm/kiln/farm/flamenco/kiln_task.py", "--"]
    return args[5:]


def test_one_task_per_shard_then_a_merge_that_waits_for_all_of_them() -> None:
    job = compile_job()
    tasks = job["tasks"]
    assert [t["name"] for t in tasks] == ["kiln-shard-1-of-3", "kiln-shard-2-of-3", "kiln-shard-3-of-3", "kiln-merge"]
    assert {t["type"] for t in tasks} == {"blender"}
    for index, task in enumerate(tasks[:3], start=1):
        assert blender_args(task) == ["/farm/projects/env/env.toml", "--out", "/farm/out", "--shard", f"{index}/3",
                                      "--resume", "--online-mode", "--jobs", "8", "--allow-host", "gpu box:8080"]
        assert task["dependencies"] == []
    merge = tasks[3]
    assert blender_args(merge) == ["--merge", "/farm/out"]
    assert merge["dependencies"] == ["kiln-shard-1-of-3", "kiln-shard-2-of-3", "kiln-shard-3-of-3"]


def test_the_settings_an_artist_fills_in() -> None:
    settings = {s["key"]: s for s in compile_job()["jobType"]["settings"]}
    assert {"manifest", "shards", "output_folder"} <= {k for k, s in settings.items() if s.get("required")}
    assert settings["shards"]["type"] == "int32"
    assert settings["manifest"]["subtype"] == "file_path"
    assert settings["output_folder"]["subtype"] == "dir_path"


@pytest.mark.parametrize(("changes", "message"), [
    ({"shards": 0}, "shards must be a whole number from 1 to 10000, not 0"),
    ({"shards": 2.5}, "shards must be a whole number"),
    ({"manifest": ""}, 'the "manifest" setting is empty'),
])
def test_a_job_that_cannot_run_is_refused_at_submission(changes: dict[str, Any], message: str) -> None:
    assert message in compile_job(**changes)["error"]


def test_a_single_shard_still_merges() -> None:
    tasks = compile_job(shards=1, extra_args="")["tasks"]
    assert [t["name"] for t in tasks] == ["kiln-shard-1-of-1", "kiln-merge"]
    assert blender_args(tasks[0])[-1] == "--resume"
    assert tasks[1]["dependencies"] == ["kiln-shard-1-of-1"]
