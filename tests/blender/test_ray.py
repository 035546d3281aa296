"""One manifest across a Ray cluster (`scripts/kiln_ray.py`): real Ray, real shard processes, real merge.

A local Ray cluster with 2 CPUs, shared by the tests of this module, runs a four-asset manifest (five
jobs: one asset is two parts) in two shards. It is smaller than examples/demo.toml, whose fifteen jobs
take about a minute per run on this machine: the point here is the sharding, the retry and the merge,
not the generation. The merged result must be exactly what one process makes of the same manifest:
the same asset names, the same FBX files, the same totals. Then one shard's process is SIGKILLed
mid-run: Ray retries it, the retry resumes from the shard's journal, and the merged result is still
exact, nothing generated twice.

bpy 5.0.1 only (it exercises Ray and the shard protocol, not Blender's API). Ray is installed by
`make test` (requirements-dev.txt); without it these tests are skipped with that reason.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-dev.txt (ray is pinned "
                                        "there)")

import kiln_ray  # noqa: E402  (scripts/ is on sys.path: tests/blender/conftest.py)
from conftest import ADDON_MODULE  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.timeout(600), pytest.mark.bpy50_only]

MANIFEST = """\
[batch]
name = "ray_env"
mode = "production"
backend = "local"
target = "game"
seed = 11

[[asset]]
prompt = "wooden crate with iron bands"

[[asset]]
prompt = "mossy rock"

[[asset]]
prompt = "stone pillar"

[[asset]]
name = "stall"
parts = ["table", "lantern"]

[finish]
preset = "game"
face_budget = 2000
lod_ratios = [0.5]

[export]
folder = "exports"
per = "asset"
preset = "unity"
"""


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray_manifest") / "ray_env.toml"
    path.write_text(MANIFEST)
    return path


@pytest.fixture(scope="module")
def single(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Ray for the module (2 CPUs, as on this machine, no dashboard), and the same manifest in
    one process, as `make demo` runs it: the result the shards must add up to. Ray first, alone: it
    gives its node a fixed 30 s to register, which a machine busy with Blender processes can miss."""
    out = tmp_path_factory.mktemp("ray_single")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    process = subprocess.Popen([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out", str(out),
                                "--quiet"], env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors[-1500:]
        yield out / "ray_env"
    finally:
        ray.shutdown()


def exports_of(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "exports").iterdir() if p.suffix == ".fbx")


def assets_in_blend(bpy: ModuleType, blend: Path) -> list[str]:
    """The asset-marked objects of a .blend, with their catalog: what the Asset Browser shows."""
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    try:
        return sorted(f"{o.name}@{o.asset_data.catalog_id}" for o in bpy.data.objects if o.asset_data is not None)
    finally:
        bpy.ops.wm.read_homefile(use_empty=True)


def assert_same_result(bpy: ModuleType, merged: Path, single: Path) -> dict[str, Any]:
    """The merged folder holds what one process made: assets, jobs, FBX files, .blend assets, one sheet."""
    report = json.loads((merged / "report.json").read_text())
    reference = json.loads((single / "report.json").read_text())
    assert [(e["asset"], e["status"]) for e in report["assets"]] == \
        [(e["asset"], e["status"]) for e in reference["assets"]]
    for key in ("jobs", "assets", "finished", "failed", "faces"):
        assert report["totals"][key] == reference["totals"][key], key
    assert exports_of(merged) == exports_of(single)
    listed = json.loads((merged / "exports/export_manifest.json").read_text())["files"]
    assert sorted(Path(f["path"]).name for f in listed) == exports_of(single)
    assert [s["shard"] for s in report["shards"]] == ["1/2", "2/2"]
    assert all(s["wall_s"] > 0 for s in report["shards"])
    assert assets_in_blend(bpy, merged / "ray_env.blend") == assets_in_blend(bpy, single / "ray_env.blend")
    assert (merged / "contact_sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return report


def test_two_shards_on_ray_merge_into_the_single_machine_result(
        bpy_module: ModuleType, manifest: Path, single: Path, tmp_path: Path) -> None:
    terminal = io.StringIO()
    summary = kiln_ray.run(manifest, tmp_path, shards=2, stream=terminal)
    assert summary["exit"] == 0, summary
    assert [(s["shard"], s["exit"], s["attempt"]) for s in summary["shards"]] == [("1/2", 0, 1), ("2/2", 0, 1)]
    report = assert_same_result(bpy_module, tmp_path / "ray_env", single)
    assert [s["attempt"] for s in report["ray"]["shards"]] == [1, 1]
    # Progress per shard and in total, as the user saw it (one line per change off a terminal).
    jobs = report["totals"]["jobs"]
    per_shard = [s["jobs"] for s in report["shards"]]
    last = terminal.getvalue().splitlines()[-1]
    assert last.startswith(f"kiln ray: {jobs}/{jobs} done · shards 1: {per_shard[0]}/{per_shard[0]} ✓ · "
                           f"2: {per_shard[1]}/{per_shard[1]} ✓"), last
    # A merge never hides a shard that has yet to run: without shard 2's report it refuses, naming it.
    (tmp_path / "ray_env/report.shard-2-of-2.json").unlink()
    merge = importlib.import_module(f"{ADDON_MODULE}.addon.blender.merge")
    with pytest.raises(merge.MergeError, match=r"shard 2/2 has not completed .* run it, or --resume it"):
        merge.merge(tmp_path / "ray_env")


def journal_jobs(path: Path) -> dict[str, dict[str, Any]]:
    """The last snapshot of every job in a shard's journal, by asset name."""
    jobs: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                with_job = json.loads(line).get("job")
            except ValueError:  # a line the killed process was writing
                continue
            if with_job:
                jobs[with_job["spec"]["name"]] = with_job
    return jobs


def test_a_killed_shard_is_retried_by_ray_and_the_merge_is_still_exact(
        bpy_module: ModuleType, manifest: Path, single: Path, tmp_path: Path) -> None:
    outcome: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: outcome.update(kiln_ray.run(manifest, tmp_path, shards=2,
                                                                          run_id="killed")))
    driver.start()
    board = tmp_path / ".kiln-ray/killed"
    log, pid_file = board / "shard-1-of-2.log", board / "shard-1-of-2.pid"
    deadline = time.monotonic() + 240
    # Mid-run: the first of shard 1's jobs has finished (the log shows it), the rest, the export and the
    # save have not.
    while time.monotonic() < deadline and not (log.is_file() and "→ finished" in log.read_text(errors="replace")):
        assert driver.is_alive(), f"the run ended before shard 1 finished a job: {outcome}"
        time.sleep(0.05)
    journal = tmp_path / "ray_env/.kiln/shard-1-of-2/journal.jsonl"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    # What the killed shard had downloaded (its result in the shard's cache), as its journal says.
    landed_before = {name: job["task_id"] for name, job in journal_jobs(journal).items()
                     if job["state"] in ("ready", "imported", "finished")}
    driver.join(timeout=300)
    assert not driver.is_alive()

    assert outcome["exit"] == 0, outcome
    assert [(s["shard"], s["attempt"]) for s in outcome["shards"]] == [("1/2", 2), ("2/2", 1)], \
        "Ray ran shard 1 again after the kill, and shard 2 once"
    assert "--- attempt 2:" in log.read_text() and "--resume" in log.read_text().split("--- attempt 2:")[1]
    report = assert_same_result(bpy_module, tmp_path / "ray_env", single)
    assert [s["attempt"] for s in report["ray"]["shards"]] == [2, 1]
    # Nothing generated twice: what had landed before the kill kept its task (the retry resumed it from
    # the journal and its cache), and the shard's report lists every job once.
    assert landed_before, "the kill came after a job's result landed"
    shard_report = json.loads((tmp_path / "ray_env/report.shard-1-of-2.json").read_text())
    tasks = {e["asset"]: e["task_id"] for e in shard_report["assets"]}
    for name, task_id in landed_before.items():
        assert tasks[name] == task_id, f"{name} was generated again after the kill"
    assert set(landed_before) <= set(shard_report["resume"]["kept"])
    assert len(shard_report["assets"]) == len({e["task_id"] for e in shard_report["assets"]})
