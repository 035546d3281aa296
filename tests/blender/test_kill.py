"""Money safety under real crashes: SIGKILL and Ctrl-C at seeded random moments of real batch processes,
against the Tripo sandbox (which counts every create) and the local engine, then `--resume` until the
run ends. Nothing paid for is lost, nothing is bought twice, and the report and exit code tell the truth.

These run on bpy 5.0.1 only (they are slow and exercise the engine, not Blender's API)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/kiln_batch.py"
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_kill_test_key_0042"
SEED = int(os.environ.get("KILN_KILL_SEED", "20261127"))
pytestmark = [pytest.mark.timeout(900), pytest.mark.bpy50_only]


@dataclass(frozen=True)
class Scenario:
    name: str
    backend: str
    mode: str
    jobs: int
    preset: str
    kills: int


SCENARIOS = (
    Scenario("tripo_draft", "tripo", "draft", 8, "", 6),
    Scenario("tripo_production", "tripo", "production", 6, "game", 4),
    Scenario("local_production", "local", "production", 6, "game_organic", 4),
)
PROMPTS = ("wooden barrel", "iron lantern", "stone pillar", "mossy rock", "wooden crate", "oil drum",
           "brass lamp", "clay pot")


def manifest_for(scenario: Scenario, folder: Path, url: str) -> Path:
    assets = "\n".join(f'[[asset]]\nprompt = "{p}"\n' for p in PROMPTS[: scenario.jobs])
    finish = f'\n[finish]\npreset = "{scenario.preset}"\n' if scenario.preset else ""
    backends = f'\n[backends.tripo]\nbase_url = "{url}"\n' if scenario.backend == "tripo" else ""
    path = folder / f"{scenario.name}.toml"
    path.write_text(f'[batch]\nname = "kill_{scenario.name}"\nmode = "{scenario.mode}"\nbackend = '
                    f'"{scenario.backend}"\nseed = 5\n\n{assets}{finish}{backends}')
    return path


def environment(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    env.update(KILN_TRIPO_API_KEY=KEY, KILN_TRIPO_BASE_URL=url)
    return env


def command(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(SCRIPT), str(manifest), "--out", str(out), "--online-mode", "--quiet",
            "--give-up-after", "20", *extra]


def interrupt_at(manifest: Path, out: Path, env: dict[str, str], delay_s: float, sig: int, resume: bool,
                 started: Path | None = None, once: Callable[[], bool] | None = None) -> int:
    """Start a run (or a resume), send `sig` after `delay_s`, and return its exit code. With `started`,
    the delay counts from when that path exists: an artist presses Ctrl-C at a run they saw start, not
    inside the Python interpreter's own start-up, before any of Kiln's code can run (on a loaded machine
    that took over a second, and Python's default handler then ends the process with -SIGINT). With `once`,
    the delay counts from when that condition holds (a state the test needs the run to have reached, however
    loaded the machine is)."""
    process = subprocess.Popen(command(manifest, out, *(["--resume"] if resume else [])), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if started is not None:
        deadline = time.monotonic() + 120
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    if once is not None:
        deadline = time.monotonic() + 120
        while not once() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    try:
        return process.wait(timeout=delay_s)  # it may finish before the signal
    except subprocess.TimeoutExpired:
        process.send_signal(sig)
        return process.wait(timeout=120)


def resume_to_the_end(manifest: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(manifest, out, "--resume"), env=env, capture_output=True, text=True, timeout=300)


def check_the_outcome(bpy: ModuleType, scenario: Scenario, out: Path, result: subprocess.CompletedProcess[str],
                      creates: int) -> dict[str, int]:
    """The promise, asserted from what a user can see: the report, the .blend and the provider's counter."""
    folder = out / f"kill_{scenario.name}"
    assert result.returncode in (0, 1), f"rc={result.returncode}: {result.stderr[-1500:]}"
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    report = json.loads((folder / "report.json").read_text())
    entries = report["assets"]
    assert len(entries) == scenario.jobs, "one entry per job: nothing lost, nothing doubled"
    statuses = [e["status"] for e in entries]
    assert set(statuses) <= {"finished", "failed", "uncertain"}, statuses
    for entry in entries:
        if entry["status"] != "finished":
            assert entry["error"] and entry["error"]["message"], f"{entry['asset']} ended without a reason"
    assert (result.returncode == 0) == all(s == "finished" for s in statuses)
    if scenario.backend == "tripo":
        assert creates <= scenario.jobs, f"{creates} creates for {scenario.jobs} jobs: something was bought twice"
    bpy.ops.wm.open_mainfile(filepath=str(folder / f"kill_{scenario.name}.blend"))
    for entry in entries:
        if entry["status"] != "finished":
            continue
        root = bpy.data.objects.get(entry["asset"])
        assert root is not None, f"report says {entry['asset']} finished, but it is not in the .blend"
        if scenario.preset.startswith("game"):
            lods = sorted(o.name for o in root.children_recursive)
            assert lods == [f"{entry['asset']}_LOD{i}" for i in range(3)], f"{entry['asset']}: {lods}"
            assert all(o.get("kiln_finished") or o.get("kiln_lod") for o in root.children_recursive)
    bpy.ops.wm.read_homefile(use_empty=True)
    return {s: statuses.count(s) for s in ("finished", "failed", "uncertain")}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_sigkill_at_random_moments_then_resume(kiln: ModuleType, tmp_path: Path, scenario: Scenario) -> None:
    import bpy

    rng = random.Random(f"{SEED}:{scenario.name}")
    totals = {"finished": 0, "failed": 0, "uncertain": 0, "creates": 0, "jobs": 0, "kills": 0}
    for run in range(scenario.kills):
        state = SandboxState(latency_s={"draft": 1.0, "textured": 1.5}, valid_keys={KEY})
        with TripoSandbox(state) as server:
            out = tmp_path / f"run{run}"
            manifest = manifest_for(scenario, tmp_path, server.url)
            env = environment(server.url)
            # One or two kills per run, at moments spread over start-up, creates, polls, downloads and finishing.
            for kill in range(rng.choice((1, 2))):
                interrupt_at(manifest, out, env, rng.uniform(1.0, 7.0), signal.SIGKILL, resume=kill > 0)
                totals["kills"] += 1
            result = resume_to_the_end(manifest, out, env)
            counts = check_the_outcome(bpy, scenario, out, result, state.creates)
            for key, value in counts.items():
                totals[key] += value
            totals["creates"] += state.creates
            totals["jobs"] += scenario.jobs
    print(f"kill test {scenario.name}: {json.dumps(totals)}")
    assert totals["finished"] > 0, "some runs must finish at all"


def test_ctrl_c_at_random_moments_then_resume(kiln: ModuleType, tmp_path: Path) -> None:
    import bpy

    scenario = Scenario("tripo_ctrl_c", "tripo", "production", 5, "game", 0)
    rng = random.Random(f"{SEED}:ctrl_c")
    for run in range(3):
        state = SandboxState(latency_s={"draft": 1.0, "textured": 1.5}, valid_keys={KEY})
        with TripoSandbox(state) as server:
            out = tmp_path / f"run{run}"
            manifest = manifest_for(scenario, tmp_path, server.url)
            env = environment(server.url)
            code = interrupt_at(manifest, out, env, rng.uniform(0.0, 6.5), signal.SIGINT, resume=False,
                                started=out / f"kill_{scenario.name}")
            assert code in (0, 130), f"Ctrl-C exits 130 (or the run had already finished), not {code}"
            result = resume_to_the_end(manifest, out, env)
            counts = check_the_outcome(bpy, scenario, out, result, state.creates)
            assert counts["uncertain"] == 0, "Ctrl-C is orderly: every create's outcome is known"


def test_a_provider_that_goes_away_ends_the_run_and_resume_fetches_what_was_paid(kiln: ModuleType,
                                                                                tmp_path: Path) -> None:
    scenario = Scenario("tripo_gone", "tripo", "draft", 4, "", 0)
    state = SandboxState(latency_s={"draft": 3.0, "textured": 3.0}, valid_keys={KEY})
    server = TripoSandbox(state)
    server.__enter__()
    url = server.url
    manifest = manifest_for(scenario, tmp_path, url)
    env = environment(url)
    process = subprocess.Popen(command(manifest, tmp_path, "--give-up-after", "4"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while state.creates < scenario.jobs and time.monotonic() < deadline:
        time.sleep(0.05)
    server.__exit__(None, None, None)  # the provider disappears with every task running
    _stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr[-1500:]
    report = json.loads((tmp_path / "kill_tripo_gone/report.json").read_text())
    for entry in report["assets"]:
        assert entry["status"] == "failed" and entry["task_id"], entry
        assert "could not reach" in entry["error"]["message"] and "--resume" in entry["error"]["message"]
    assert "Traceback" not in stderr


def test_task_ids_the_provider_does_not_know_fail_with_the_reason(kiln: ModuleType, tmp_path: Path) -> None:
    scenario = Scenario("tripo_unknown", "tripo", "draft", 3, "", 0)
    state = SandboxState(latency_s={"draft": 30.0, "textured": 30.0}, valid_keys={KEY, "tsk_other_key"})
    with TripoSandbox(state) as server:
        manifest = manifest_for(scenario, tmp_path, server.url)
        env = environment(server.url)
        interrupt_at(manifest, tmp_path, env, 0.5, signal.SIGKILL, resume=False,
                     once=lambda: state.creates == scenario.jobs)
        assert state.creates == scenario.jobs
        state.tasks.clear()  # the provider forgets them (as with another account's key)
        result = resume_to_the_end(manifest, tmp_path, env)
    assert result.returncode == 1, result.stderr[-1500:]
    report = json.loads((tmp_path / "kill_tripo_unknown/report.json").read_text())
    for entry in report["assets"]:
        assert entry["status"] == "failed"
        assert "does not know task" in entry["error"]["message"] and "API key" in entry["error"]["message"]
    assert state.creates == scenario.jobs, "unknown tasks are never bought again"
