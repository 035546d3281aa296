"""Meshy from Blender against the Meshy sandbox over real HTTP: the key set in the preferences, a draft
promoted (the refine of that very preview lands in its place), and a headless manifest run."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ADDON_MODULE

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.meshy import MeshySandbox, MeshyState  # noqa: E402

KEY = "msy_blender_test_key_42"
FAST = {"text-to-3d-preview": 0.3, "text-to-3d-refine": 0.3}

pytestmark = pytest.mark.bpy50_only  # a network protocol, not Blender: once, on bpy 5.0.1


@pytest.fixture
def sandbox() -> Iterator[MeshySandbox]:
    with MeshySandbox(MeshyState(latency_s=dict(FAST), valid_keys={KEY})) as server:
        yield server


@pytest.fixture
def prefs(online: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Kiln's preferences, with the Meshy fields put back afterwards (and no Meshy variables set)."""
    import bpy

    monkeypatch.delenv("KILN_MESHY_API_KEY", raising=False)
    monkeypatch.delenv("KILN_MESHY_BASE_URL", raising=False)
    preferences = bpy.context.preferences.addons[ADDON_MODULE].preferences
    yield preferences
    preferences.meshy_api_key, preferences.meshy_base_url = "", ""


def test_a_promoted_meshy_draft_is_refined_from_its_own_preview(runtime: ModuleType, sandbox: MeshySandbox,
                                                                prefs: object) -> None:
    import bpy

    prefs.meshy_base_url = sandbox.url  # type: ignore[attr-defined]
    prefs.meshy_api_key = KEY  # type: ignore[attr-defined]
    bpy.context.scene.kiln.backend = "meshy"
    bpy.context.scene.kiln.finish_preset = "keep"  # what is tested is the refine, not finishing
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    draft = next(o for o in bpy.data.objects if o.get("kiln_backend") == "meshy")
    assert draft["kiln_mode"] == "draft" and draft["kiln_credits"] == 5.0 and draft.preview is not None
    preview_id = str(draft["kiln_task_id"]).split(":", 1)[1]

    bpy.ops.object.select_all(action="DESELECT")
    draft.select_set(True)
    bpy.context.view_layer.objects.active = draft
    assert bpy.ops.kiln.promote() == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    promoted = next(o for o in bpy.data.objects if o.get("kiln_promoted_from") == draft.name)
    refine = sandbox.state.tasks[str(promoted["kiln_task_id"]).split(":", 1)[1]]
    assert refine.type == "text-to-3d-refine" and refine.request["preview_task_id"] == preview_id
    assert promoted["kiln_mode"] == "production" and promoted["kiln_credits"] == 10.0
    assert len(sandbox.state.tasks) == 2, "the draft's preview was refined, not made again"
    assert sum(sandbox.state.polls.values()) == 0, "both finishes were pushed"
    assert sandbox.state.asset_auth_headers == []


def test_a_manifest_runs_on_meshy_headless(kiln: ModuleType, sandbox: MeshySandbox, online: None, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The batch command in this Blender (as `blender -c kiln batch` runs it), keys from the environment."""
    cli = importlib.import_module(f"{ADDON_MODULE}.addon.batch.cli")
    runner = importlib.import_module(f"{ADDON_MODULE}.addon.blender.batch_run")
    monkeypatch.setenv("KILN_MESHY_API_KEY", KEY)
    monkeypatch.setenv("KILN_MESHY_BASE_URL", sandbox.url)
    manifest = tmp_path / "meshy.toml"
    manifest.write_text('[batch]\nname = "env_meshy_01"\nbackend = "meshy"\nmode = "draft"\n\n'
                        '[[asset]]\nprompt = "wooden barrel"\n\n[[asset]]\nprompt = "crate"\n\n'
                        '[backends.meshy]\nconcurrency = 1\n')
    arguments = [str(manifest), "--out", str(tmp_path / "out"), "--quiet"]
    assert cli.main(arguments, runner=runner) == 2, "no online access: refused, as for every remote backend"
    assert "--online-mode" in capsys.readouterr().err and not sandbox.state.tasks
    assert cli.main(arguments, runner=runner, online_access=True) == 0
    report = json.loads((tmp_path / "out/env_meshy_01/report.json").read_text())
    assert report["totals"]["finished"] == 2 and report["totals"]["credits"] == 10.0
    assert max(queued for *_, queued in sandbox.state.timeline) == 1, "[backends.meshy] concurrency = 1 held"
    output = capsys.readouterr()
    assert KEY not in output.out + output.err
