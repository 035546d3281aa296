"""The balance before anything is queued, in real Blender against the Tripo sandbox over real HTTP: the
panel's Generate refuses a request beyond the balance with nothing created, its button says how many
jobs fit and queues just those; the headless batch stops with exit 2 before its first create (the
balance, and the balance less `[batch] reserve`); and a busy photo reaches Tripo with a warning, not
the local engine's refusal."""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from conftest import ADDON_MODULE
from test_panel import Recorder

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_preflight_money_key_42"


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.1, "textured": 0.2}, valid_keys={KEY}, balance=25.0)) \
            as server:
        monkeypatch.setenv("KILN_TRIPO_BASE_URL", server.url)
        monkeypatch.setenv("KILN_TRIPO_API_KEY", KEY)
        yield server


def test_generate_beyond_the_balance_creates_nothing_and_the_button_queues_what_fits(
        runtime: ModuleType, sandbox: TripoSandbox, online: None) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.backend, settings.mode, settings.options = "tripo", "DRAFT", 4  # 4 x 10 credits, 25 on the account
    try:
        assert bpy.ops.kiln.refresh_balance() == {"FINISHED"}
        deadline = time.monotonic() + 30
        while "tripo" not in runtime.scheduler().balances and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runtime.scheduler().balances["tripo"] == 25.0
        with pytest.raises(RuntimeError, match=r"Not queued: Needs ~40 credits, 25 available: 15 short; 2 of 4"):
            bpy.ops.kiln.generate(prompt="wooden crate, low-poly, front view")
        assert sandbox.state.creates == 0 and runtime.scheduler().views() == []

        settings.prompt = "wooden crate, low-poly, front view"
        recorder = Recorder()
        bpy.types.KILN_PT_generate.draw(SimpleNamespace(layout=recorder), bpy.context)
        assert ("operator", "kiln.generate", "Queue 2 of 4 That Fit") in recorder.calls
        assert "15 short; 2 of 4 job(s) fit" in recorder.labels()

        assert bpy.ops.kiln.generate(prompt="wooden crate, low-poly, front view", only_affordable=True) == \
            {"FINISHED"}
        assert runtime.run_until_done(timeout=60)
        assert sandbox.state.creates == 2 and sandbox.state.balance == 5.0
    finally:
        settings.backend, settings.mode, settings.options, settings.prompt = "local", "DRAFT", 1, ""


def busy_photo(path: Path) -> Path:
    """A subject on a textured, noisy background: what a phone photo of a prop looks like to the checks."""
    rows, cols = np.mgrid[:384, :384]
    image = np.full((384, 384, 4), 255, np.uint8)
    noise = np.random.default_rng(3).integers(0, 60, (384, 384))
    image[..., :3] = ((((cols // 9 + rows // 13) % 2) * 120 + 60 + noise)[..., None]).astype(np.uint8)
    image[(cols - 192) ** 2 + (rows - 192) ** 2 < 100**2, :3] = (200, 40, 30)
    path.write_bytes(engine("imaging.png").encode_png(image))
    return path


def manifest(folder: Path, sandbox: TripoSandbox, assets: str, extra: str = "") -> Path:
    path = folder / "tripo.toml"
    path.write_text(f'[batch]\nname = "env_money_01"\nbackend = "tripo"\n{extra}\n{assets}\n'
                    f'[backends.tripo]\nbase_url = "{sandbox.url}"\n')
    return path


@pytest.mark.bpy50_only
def test_a_headless_batch_beyond_the_balance_or_the_reserve_exits_2_before_any_create(
        kiln: ModuleType, sandbox: TripoSandbox, online: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cli, runner = engine("batch.cli"), engine("blender.batch_run")
    crates = "".join(f'[[asset]]\nprompt = "wooden crate {n}, low-poly, front view"\n' for n in range(3))

    def run(path: Path, *flags: str) -> int:
        return int(cli.main([str(path), "--out", str(tmp_path / "out"), "--allow-host", "127.0.0.1", "--quiet",
                             *flags], runner=runner, online_access=True))

    sandbox.state.balance = 50.0  # three production crates cost 60
    assert run(manifest(tmp_path, sandbox, crates)) == 2
    assert "Needs ~60 credits, 50 available: 10 short; 2 of 3 job(s) fit" in capsys.readouterr().err
    sandbox.state.balance = 100.0  # enough, but not once 50 are kept for drafts
    assert run(manifest(tmp_path, sandbox, crates, "reserve = 50")) == 2
    assert "[batch] reserve: the account cannot pay for this run: Needs ~60 credits, 50 available (50 reserved " \
           "for drafts)" in capsys.readouterr().err
    sandbox.state.balance = -5.0  # a provider that let the account go below zero
    assert run(manifest(tmp_path, sandbox, '[[asset]]\nprompt = "crate"\n', 'mode = "draft"')) == 2
    assert "-5 available" in capsys.readouterr().err
    assert sandbox.state.creates == 0

    sandbox.state.balance = 1000.0
    photo = busy_photo(tmp_path / "street_prop.png")
    assert run(manifest(tmp_path, sandbox, f'[[asset]]\nimage = "{photo.name}"\n'), "--dry-run", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in plan["assets"][0]["preflight"]] == ["busy_background"]
    assert plan["assets"][0]["preflight"][0]["severity"] == "warning" and sandbox.state.creates == 0


def test_the_camera_capture_is_checked_before_it_renders(runtime: ModuleType) -> None:
    import math

    import bpy

    framing = engine("blender.framing")
    bpy.ops.wm.read_homefile()  # the default scene: a cube in front of the camera
    scene = bpy.context.scene
    try:
        assert framing.framing_findings(scene) == []
        cube = bpy.data.objects["Cube"]
        cube.scale = (0.03, 0.03, 0.03)
        bpy.context.view_layer.update()
        assert [f.code for f in framing.framing_findings(scene)] == ["camera_subject_small"]
        scene.camera.rotation_euler = (0.0, math.pi, 0.0)  # looking up at the empty sky
        bpy.context.view_layer.update()
        assert [f.code for f in framing.framing_findings(scene)] == ["camera_empty"]
        captures = engine("blender.capture").capture_folder()
        before = sorted(captures.glob("*")) if captures.exists() else []
        with pytest.raises(RuntimeError, match="sees nothing"):
            bpy.ops.kiln.generate_from_camera()
        assert (sorted(captures.glob("*")) if captures.exists() else []) == before, "nothing was rendered"
    finally:
        bpy.ops.wm.read_homefile(use_empty=True)


def disc_png(path: Path, centres: list[tuple[int, int]]) -> Path:
    rows, cols = np.mgrid[:256, :256]
    image = np.full((256, 256, 4), 240, np.uint8)
    image[..., 3] = 255
    for x, y in centres:
        image[(cols - x) ** 2 + (rows - y) ** 2 < 40**2, :3] = (60, 40, 30)
    path.write_bytes(engine("imaging.png").encode_png(image))
    return path


def test_a_batch_of_images_is_summarised_and_flagged_ones_can_be_skipped(runtime: ModuleType, tmp_path: Path
                                                                         ) -> None:
    import bpy

    disc_png(tmp_path / "one.png", [(128, 128)])
    disc_png(tmp_path / "pair.png", [(70, 128), (186, 128)])  # two subjects: a warning, even for Local
    files = [{"name": "one.png"}, {"name": "pair.png"}]
    assert bpy.ops.kiln.batch_images(directory=str(tmp_path), files=files, skip_flagged=True) == {"FINISHED"}
    assert [Path(job.spec.image_paths[0]).name for job in runtime.scheduler().views()] == ["one.png"]
    assert runtime.run_until_done(timeout=60)
