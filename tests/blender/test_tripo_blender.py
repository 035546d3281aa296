"""Tripo from Blender: the panel and a headless batch against the sandbox server over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_blender_test_key_42"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.3, "textured": 0.5}, valid_keys={KEY})) as server:
        monkeypatch.setenv("KILN_TRIPO_BASE_URL", server.url)
        yield server


def test_generate_on_tripo_lands_in_the_scene(runtime: ModuleType, sandbox: TripoSandbox, online: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import bpy

    monkeypatch.setenv("KILN_TRIPO_API_KEY", KEY)
    bpy.context.scene.kiln.backend = "tripo"
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    obj = next(o for o in bpy.data.objects if o.get("kiln_backend") == "tripo")
    assert obj["kiln_task_id"] in sandbox.state.tasks and obj["kiln_model_version"] == "v3.0-20250812"
    assert obj["kiln_credits"] == 10.0 and obj.preview is not None


def test_tripo_without_key_or_offline_says_so(runtime: ModuleType, sandbox: TripoSandbox,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import bpy

    bpy.context.scene.kiln.backend = "tripo"
    bpy.context.preferences.system.use_online_access = False
    with pytest.raises(RuntimeError, match="needs the internet, but Blender's online access is off"):
        bpy.ops.kiln.generate(prompt="crate")
    bpy.context.preferences.system.use_online_access = True
    try:
        monkeypatch.delenv("KILN_TRIPO_API_KEY", raising=False)
        with pytest.raises(RuntimeError, match="No Tripo API key"):
            bpy.ops.kiln.generate(prompt="crate")
        monkeypatch.setenv("KILN_TRIPO_API_KEY", "tsk_wrong")
        bpy.ops.kiln.generate(prompt="crate")
        assert runtime.run_until_done(timeout=30)
        job = runtime.scheduler().views()[-1]
        assert job.state.value == "failed" and "API key rejected" in job.error.message
    finally:
        bpy.context.preferences.system.use_online_access = False
    assert sandbox.state.creates == 0


def run_batch(manifest: Path, out: Path, key: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BLENDER_USER_RESOURCES", "KILN_TRIPO_BASE_URL")}
    env["KILN_TRIPO_API_KEY"] = key
    return subprocess.run([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out", str(out),
                           "--online-mode", "--quiet", *flags], capture_output=True, text=True, timeout=300, env=env)


def test_headless_batch_on_the_sandbox_and_a_bad_key_stops_it_first(sandbox: TripoSandbox, tmp_path: Path) -> None:
    manifest = tmp_path / "tripo.toml"
    manifest.write_text(f'[batch]\nname = "env_tripo_01"\nbackend = "tripo"\nbudget = 100\n\n'
                        f'[[asset]]\nprompt = "wooden barrel"\n\n[[asset]]\nprompt = "crate"\n\n'
                        f'[backends.tripo]\nbase_url = "{sandbox.url}"\n')
    # The manifest points the key at the sandbox, not at Tripo: only the command line may allow that.
    refused = run_batch(manifest, tmp_path / "refused", KEY)
    assert refused.returncode == 2 and "[backends.tripo] base_url" in refused.stderr
    assert "--allow-host 127.0.0.1" in refused.stderr and sandbox.state.requests_seen == []
    bad = run_batch(manifest, tmp_path / "bad", "tsk_wrong", "--allow-host", "127.0.0.1")
    assert bad.returncode == 2 and "API key rejected" in bad.stderr
    assert sandbox.state.creates == 0, "nothing submitted with a bad key"
    good = run_batch(manifest, tmp_path / "good", KEY, "--allow-host", "127.0.0.1")
    assert good.returncode == 0, good.stderr[-2000:]
    report = json.loads((tmp_path / "good/env_tripo_01/report.json").read_text())
    assert report["totals"]["finished"] == 2 and report["totals"]["credits"] == 40.0
    assert sandbox.state.creates == 2 and KEY not in good.stdout + good.stderr + refused.stderr
    downloads = [auth for _, path, auth in sandbox.state.requests_seen if path.startswith("/cdn/")]
    assert len(downloads) == 4 and set(downloads) == {""}, "results from the API host never get the key"


def test_a_headless_run_ends_when_the_provider_disappears(sandbox: TripoSandbox, tmp_path: Path) -> None:
    """The provider is killed mid-run: the batch gives up after --give-up-after, says how to fetch the
    paid tasks later, and exits 1, instead of polling forever."""
    sandbox.state.latency_s = {"draft": 30.0, "textured": 30.0}
    manifest = tmp_path / "gone.toml"
    manifest.write_text('[batch]\nname = "env_gone_01"\nbackend = "tripo"\n\n'
                        '[[asset]]\nprompt = "barrel"\n\n[[asset]]\nprompt = "crate"\n')
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    env["KILN_TRIPO_API_KEY"] = KEY
    run = subprocess.Popen([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out",
                            str(tmp_path / "out"), "--online-mode", "--quiet", "--give-up-after", "2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while sandbox.state.creates < 2 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox.state.creates == 2, run.stderr.read() if run.poll() is not None else "no creates"
        sandbox.__exit__(None, None, None)  # the provider is gone, with both tasks paid for
        _, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, err[-2000:]
    report = json.loads((tmp_path / "out/env_gone_01/report.json").read_text())
    errors = [asset["error"] for asset in report["assets"]]
    assert [e["code"] for e in errors] == ["unreachable", "unreachable"]
    assert all("could not reach tripo" in e["message"] and "--resume" in e["message"] for e in errors)
    assert all(asset["task_id"] for asset in report["assets"]), "the paid task ids are kept"


def test_a_manifest_plan_concurrency_holds_a_headless_run_below_it(sandbox: TripoSandbox, tmp_path: Path) -> None:
    """`[backends.tripo] concurrency = 2` on a provider that would take 10: never more than 2 tasks in
    flight, and no create is sent to be refused."""
    sandbox.state.latency_s = {"draft": 0.6, "textured": 0.6}
    assets = "".join(f'\n[[asset]]\nprompt = "{p}"\n' for p in ("barrel", "crate", "rock", "pillar", "lamp"))
    manifest = tmp_path / "plan.toml"
    manifest.write_text(f'[batch]\nname = "env_plan_01"\nbackend = "tripo"\nmode = "draft"\n{assets}'
                        f'\n[backends.tripo]\nbase_url = "{sandbox.url}"\nconcurrency = 2\n')
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    env["KILN_TRIPO_API_KEY"] = KEY
    run = subprocess.run([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out",
                          str(tmp_path / "out"), "--online-mode", "--quiet"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    creates = [entry for entry in sandbox.state.timeline if entry[1] == "create"]
    assert len(creates) == 5
    assert max(in_flight for _, _, _, in_flight in creates) == 2, "two at a time, as the plan allows"
    assert not [entry for entry in sandbox.state.timeline if entry[1] == "refused"]
