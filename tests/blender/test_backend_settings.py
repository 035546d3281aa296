"""Backends built from the preferences: Local survives every edit, a key or endpoint change is used at
once, the balance reads before any job, and `blender -c kiln batch` finds keys as the add-on does
(environment first, then the preferences), against the Tripo sandbox over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from conftest import ADDON_MODULE, disable_kiln, enable_kiln
from test_panel import Recorder, draw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_settings_test_key_9"
KEY_VARIABLE, URL_VARIABLE = "KILN_TRIPO_API_KEY", "KILN_TRIPO_BASE_URL"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[TripoSandbox]:
    """A Tripo sandbox that takes only KEY; no key or endpoint in the environment."""
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    with TripoSandbox(SandboxState(latency_s={"draft": 0.3, "textured": 0.5}, valid_keys={KEY})) as server:
        yield server


@pytest.fixture
def online(kiln: ModuleType) -> Iterator[None]:
    import bpy

    system = bpy.context.preferences.system
    saved = system.use_online_access
    system.use_online_access = True
    yield
    system.use_online_access = saved


@pytest.fixture
def prefs(online: None) -> Iterator[object]:
    """Kiln's preferences; every field edited here is put back afterwards."""
    import bpy

    preferences = bpy.context.preferences.addons[ADDON_MODULE].preferences
    yield preferences
    preferences.tripo_api_key, preferences.tripo_base_url = "", ""
    preferences.request_timeout_s, preferences.draft_reserved_slots = 30.0, 1


def balance_after_refresh(runtime: ModuleType, backend: str) -> object:
    import bpy

    scheduler = runtime.scheduler()
    scheduler.balances.pop(backend, None)
    bpy.context.scene.kiln.backend = backend
    assert bpy.ops.kiln.refresh_balance() == {"FINISHED"}
    deadline = time.monotonic() + 10
    while backend not in scheduler.balances and time.monotonic() < deadline:
        time.sleep(0.02)
    return scheduler.balances.get(backend)


def test_preference_edits_keep_local_and_use_the_new_key(runtime: ModuleType, sandbox: TripoSandbox,
                                                       prefs: object) -> None:
    import bpy

    prefs.tripo_base_url = sandbox.url  # type: ignore[attr-defined]
    bpy.context.scene.kiln.backend = "tripo"
    assert "Balance: no key" in draw("KILN_PT_generate").labels()
    with pytest.raises(RuntimeError, match="No Tripo API key"):
        bpy.ops.kiln.generate(prompt="crate")

    prefs.tripo_api_key = "tsk_wrong"  # type: ignore[attr-defined]
    assert set(runtime.scheduler().backends) == {"local", "tripo"}
    assert "API key rejected" in str(balance_after_refresh(runtime, "tripo"))

    prefs.tripo_api_key = KEY  # type: ignore[attr-defined]
    assert balance_after_refresh(runtime, "tripo") == 1000.0, "the new key is used, before any generation"
    assert "Balance: 1000 credits" in draw("KILN_PT_generate").labels()

    prefs.draft_reserved_slots = 2  # type: ignore[attr-defined]  # restarts the engine
    prefs.request_timeout_s = 12.0  # type: ignore[attr-defined]
    backends = runtime.scheduler().backends
    assert set(backends) == {"local", "tripo"}, "Local survives a restart with a remote backend registered"
    assert backends["tripo"].http.timeout_s == 12.0
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    job = runtime.scheduler().views()[-1]
    assert job.state.value == "finished" and job.spec.backend == "tripo"
    assert {auth for _, route, auth in sandbox.state.requests_seen if route.startswith("/v3/")} <= \
        {f"Bearer {KEY}", "Bearer tsk_wrong"}

    prefs.tripo_api_key = ""  # type: ignore[attr-defined]
    assert "Balance: no key" in draw("KILN_PT_generate").labels()
    with pytest.raises(RuntimeError, match="No Tripo API key"):
        bpy.ops.kiln.generate(prompt="crate")
    bpy.context.scene.kiln.backend = "local"
    assert bpy.ops.kiln.generate(prompt="crate") == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)


def test_an_endpoint_change_is_used_and_a_key_never_goes_over_plain_http(runtime: ModuleType,
                                                                        sandbox: TripoSandbox,
                                                                        prefs: object) -> None:
    import bpy

    prefs.tripo_api_key = KEY  # type: ignore[attr-defined]
    prefs.tripo_base_url = "http://gpu.example.lan:8080"  # type: ignore[attr-defined]
    bpy.context.scene.kiln.backend = "tripo"
    assert "travel unencrypted" in draw("KILN_PT_generate").labels()
    with pytest.raises(RuntimeError, match="unencrypted"):
        bpy.ops.kiln.generate(prompt="crate")
    prefs.tripo_base_url = sandbox.url  # type: ignore[attr-defined]
    assert balance_after_refresh(runtime, "tripo") == 1000.0
    assert sandbox.state.creates == 0


def test_a_key_in_the_environment_gives_a_balance_as_soon_as_kiln_is_enabled(
        kiln: ModuleType, sandbox: TripoSandbox, online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    monkeypatch.setenv(URL_VARIABLE, sandbox.url)
    disable_kiln()
    enable_kiln()
    runtime = sys.modules[f"{ADDON_MODULE}.addon.blender.runtime"]
    assert set(runtime.scheduler().backends) == {"local", "tripo"}
    assert balance_after_refresh(runtime, "tripo") == 1000.0


def test_preferences_draw_each_backend_field_and_say_when_the_environment_wins(
        kiln: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import bpy

    panel = type(bpy.context.preferences.addons[ADDON_MODULE].preferences)
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    recorder = Recorder()
    panel.draw(SimpleNamespace(layout=recorder), bpy.context)
    assert recorder.names("prop")[:2] == ["tripo_api_key", "tripo_base_url"]
    monkeypatch.setenv(KEY_VARIABLE, "tsk_from_env")
    recorder = Recorder()
    panel.draw(SimpleNamespace(layout=recorder), bpy.context)
    assert f"Using {KEY_VARIABLE} from the environment" in recorder.labels()


# ------------------------------------------------------------------- blender -c kiln batch
CLI_DRIVER = """
import sys
sys.path.insert(0, {scripts!r})
import kiln_loader
kiln_loader.isolate_user_resources()
import bpy
bpy.context.preferences.system.use_online_access = True  # what Blender's --online-mode does
kiln = kiln_loader.load_kiln()
bpy.context.preferences.addons[kiln.__name__].preferences.tripo_api_key = {prefs_key!r}
# Blender runs `blender -c kiln ARGS…` by calling the registered function with ARGS.
sys.exit(kiln._cli(["batch", {manifest!r}, "--out", {out!r}, "--quiet"]))
"""


def run_cli(manifest: Path, out: Path, *, env_key: str = "", prefs_key: str = "",
            url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BLENDER_USER_RESOURCES", KEY_VARIABLE, URL_VARIABLE)}
    env.update({KEY_VARIABLE: env_key} if env_key else {})
    env.update({URL_VARIABLE: url} if url else {})
    code = CLI_DRIVER.format(scripts=str(REPO / "scripts"), prefs_key=prefs_key, manifest=str(manifest),
                             out=str(out))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)


def test_the_cli_command_runs_a_remote_batch_with_keys_found_like_the_add_on(sandbox: TripoSandbox,
                                                                           tmp_path: Path) -> None:
    manifest = tmp_path / "tripo.toml"
    manifest.write_text('[batch]\nname = "env_cli_01"\nbackend = "tripo"\n\n[[asset]]\nprompt = "wooden barrel"\n')

    from_env = run_cli(manifest, tmp_path / "env", env_key=KEY, url=sandbox.url)
    assert from_env.returncode == 0, from_env.stderr[-2000:]
    report = json.loads((tmp_path / "env/env_cli_01/report.json").read_text())
    assert report["totals"]["finished"] == 1 and report["assets"][0]["status"] == "finished"
    assert (tmp_path / "env/env_cli_01/env_cli_01.blend").is_file()
    assert sandbox.state.creates == 1 and KEY not in from_env.stdout + from_env.stderr

    from_prefs = run_cli(manifest, tmp_path / "prefs", prefs_key=KEY, url=sandbox.url)
    assert from_prefs.returncode == 0, from_prefs.stderr[-2000:]
    assert sandbox.state.creates == 2

    env_wins = run_cli(manifest, tmp_path / "wins", env_key="tsk_wrong", prefs_key=KEY, url=sandbox.url)
    assert env_wins.returncode == 2 and "API key rejected" in env_wins.stderr
    no_key = run_cli(manifest, tmp_path / "none", url=sandbox.url)
    assert no_key.returncode == 2 and f"no API key for 'tripo' (set {KEY_VARIABLE}" in no_key.stderr
    assert sandbox.state.creates == 2, "nothing submitted without a valid key"
