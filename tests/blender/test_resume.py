"""One run per output folder, shards that share one, a run that will not silently start over paid work,
and a resume after the manifest was edited (real processes, real HTTP against the Tripo sandbox)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/kiln_batch.py"
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_resume_test_key_7"
pytestmark = pytest.mark.bpy50_only  # the engine's promise, not Blender's API: once is enough


def environment(url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    if url:
        env.update(KILN_TRIPO_API_KEY=KEY, KILN_TRIPO_BASE_URL=url)
    return env


def manifest(folder: Path, name: str, prompts: list[str], backend: str = "local", url: str = "",
             mode: str = "production") -> Path:
    assets = "\n".join(f'[[asset]]\nprompt = "{p}"\n' for p in prompts)
    extra = f'\n[backends.tripo]\nbase_url = "{url}"\n' if url else ""
    path = folder / f"{name}.toml"
    path.write_text(f'[batch]\nname = "{name}"\nmode = "{mode}"\nbackend = "{backend}"\nseed = 9\n\n{assets}'
                    f'\n[finish]\npreset = "game"\n{extra}')
    return path


def run(path: Path, out: Path, *flags: str, url: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(path), "--out", str(out), "--quiet", "--online-mode",
                           *flags], capture_output=True, text=True, timeout=300, env=environment(url))


def start(path: Path, out: Path, *flags: str, url: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(SCRIPT), str(path), "--out", str(out), "--online-mode", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment(url))


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_run_into_the_same_folder_is_refused_and_named(tmp_path: Path) -> None:
    # The provider holds the tasks until the second run has been refused: however slowly that process
    # starts on a loaded machine, the first run is still running then (CI once saw it finish first).
    state = SandboxState(latency_s={"draft": 600.0, "textured": 600.0}, valid_keys={KEY})
    with TripoSandbox(state) as server:
        path = manifest(tmp_path, "locked_01", ["crate", "barrel"], "tripo", server.url, mode="draft")
        first = start(path, tmp_path, url=server.url)
        try:
            wait_for(lambda: state.creates == 2)
            second = run(path, tmp_path, "--resume", url=server.url)
            assert first.poll() is None, "the first run is still running"
            assert second.returncode == 2
            assert f"pid {first.pid}" in second.stderr and "in use by another Kiln run" in second.stderr
            assert state.creates == 2
        finally:
            for task in state.tasks.values():  # let the provider finish them now
                task.duration = 0.0
            assert first.wait(timeout=120) == 0


def test_a_run_without_resume_will_not_start_over_paid_work(tmp_path: Path) -> None:
    state = SandboxState(latency_s={"draft": 30.0, "textured": 30.0}, valid_keys={KEY})
    with TripoSandbox(state) as server:
        path = manifest(tmp_path, "paid_01", ["crate", "barrel"], "tripo", server.url, mode="draft")
        first = start(path, tmp_path, url=server.url)
        wait_for(lambda: state.creates == 2)
        time.sleep(0.5)  # the task ids are journaled the moment the creates return
        first.send_signal(signal.SIGKILL)
        first.wait()
        again = run(path, tmp_path, url=server.url)
        assert again.returncode == 2 and "Traceback" not in again.stderr
        assert "2 paid or possibly paid task(s)" in again.stderr
        assert "--resume" in again.stderr and "--fresh" in again.stderr
        assert state.creates == 2, "nothing bought again"
        for task in state.tasks.values():  # let the provider finish them now
            task.duration = 0.0
        resumed = run(path, tmp_path, "--resume", url=server.url)
        assert resumed.returncode == 0, resumed.stderr[-1500:]
        assert state.creates == 2
        report = json.loads((tmp_path / "paid_01/report.json").read_text())
        assert report["totals"]["finished"] == 2 and report["resume"]["kept"] == ["paid_01_001", "paid_01_002"]


def test_shards_share_one_output_folder_and_make_one_report(tmp_path: Path) -> None:
    path = manifest(tmp_path, "sharded_01", ["crate", "barrel", "rock", "pillar"])
    shards = [start(path, tmp_path, "--shard", f"{i}/2", "--quiet") for i in (1, 2)]
    for shard in shards:
        _, stderr = shard.communicate(timeout=300)
        assert shard.returncode == 0, stderr[-1500:]
    folder = tmp_path / "sharded_01"
    assert (folder / "sharded_01.shard-1-of-2.blend").is_file() and (folder / "sharded_01.shard-2-of-2.blend").is_file()
    assert (folder / ".kiln/shard-1-of-2/journal.jsonl").is_file()
    assert (folder / ".kiln/shard-2-of-2/journal.jsonl").is_file()
    report = json.loads((folder / "report.json").read_text())
    assert sorted(e["asset"] for e in report["assets"]) == [f"sharded_01_{i:03d}" for i in range(1, 5)]
    assert report["totals"]["finished"] == 4 and sorted(report["shards"]) == ["1/2", "2/2"]


def test_resume_after_an_edit_keeps_adds_and_removes(kiln: ModuleType, tmp_path: Path) -> None:
    import bpy

    path = manifest(tmp_path, "edited_01", ["wooden crate", "oil barrel", "mossy rock"])
    assert run(path, tmp_path).returncode == 0
    first = json.loads((tmp_path / "edited_01/report.json").read_text())
    tasks = {e["asset"]: e["task_id"] for e in first["assets"]}
    path = manifest(tmp_path, "edited_01", ["wooden crate", "oil barrel", "stone pillar"])  # asset 3 changed
    result = run(path, tmp_path, "--resume")
    assert result.returncode == 0, result.stderr[-1500:]
    report = json.loads((tmp_path / "edited_01/report.json").read_text())
    assert report["resume"]["kept"] == ["edited_01_001", "edited_01_002"]
    assert report["resume"]["added"] == ["edited_01_003"] and report["resume"]["removed"] == ["edited_01_003"]
    by_asset = {e["asset"]: e for e in report["assets"]}
    assert by_asset["edited_01_001"]["task_id"] == tasks["edited_01_001"], "unchanged assets are not made again"
    assert by_asset["edited_01_003"]["prompt"] == "stone pillar" and len(report["assets"]) == 3
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "edited_01/edited_01.blend"))
    names = sorted(o.name for o in bpy.data.objects if o.get("kiln_lod_group"))
    assert names == ["edited_01_001", "edited_01_002", "edited_01_003"]
    assert not any("." in o.name for o in bpy.data.objects), "no orphan copies of the removed asset"
    prompts = {o["kiln_prompt"] for o in bpy.data.objects if o.get("kiln_job_id")}
    assert prompts == {"wooden crate", "oil barrel", "stone pillar"}
    bpy.ops.wm.read_homefile(use_empty=True)


@pytest.mark.parametrize("flags", [("--fresh", "--resume"), ("--resubmit-uncertain",)])
def test_contradictory_flags_are_refused(tmp_path: Path, flags: tuple[str, ...]) -> None:
    result = run(manifest(tmp_path, "flags_01", ["crate"]), tmp_path, *flags)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and flags[0] in result.stderr
