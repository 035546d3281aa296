"""Every remote backend from the panel's buttons, as an artist presses them, against its sandbox over real
HTTP: Generate from Camera lands a draft on each one; Generate (text) lands a draft where the backend takes
text, and is refused before anything is sent where it does not; Promote lands the Production result.
The headless paths of each backend are covered by their own manifest tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_panel import draw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.hunyuan import HunyuanSandbox, HunyuanState  # noqa: E402
from sandbox.meshy import MeshySandbox, MeshyState  # noqa: E402
from sandbox.rodin import RodinSandbox, RodinState  # noqa: E402
from sandbox.stability import StabilitySandbox, StabilityState  # noqa: E402
from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

pytestmark = pytest.mark.bpy50_only  # network protocols, not Blender: once, on bpy 5.0.1

Environment = Callable[[Any], dict[str, str]]
BACKENDS: dict[str, tuple[Callable[[], AbstractContextManager[Any]], Environment, bool]] = {
    # name: (its sandbox, the variables pointing Kiln at it, whether it takes a text prompt)
    "tripo": (lambda: TripoSandbox(SandboxState(latency_s={"draft": 0.3, "textured": 0.3})),
              lambda s: {"KILN_TRIPO_API_KEY": "tsk_every_backend", "KILN_TRIPO_BASE_URL": s.url}, True),
    "meshy": (lambda: MeshySandbox(MeshyState(latency_s={"text-to-3d-preview": 0.3, "text-to-3d-refine": 0.3,
                                                         "image-to-3d": 0.3})),
              lambda s: {"KILN_MESHY_API_KEY": "msy_every_backend", "KILN_MESHY_BASE_URL": s.url}, True),
    "rodin": (lambda: RodinSandbox(RodinState(latency_s={"Sketch": 0.3, "default": 0.3})),
              lambda s: {"KILN_RODIN_API_KEY": "rodin_every_backend", "KILN_RODIN_BASE_URL": s.url}, True),
    "stability": (lambda: StabilitySandbox(StabilityState()),
                  lambda s: {"KILN_STABILITY_API_KEY": "sk-every-backend", "KILN_STABILITY_BASE_URL": s.url}, False),
    "hunyuan": (lambda: HunyuanSandbox(HunyuanState(latency_s=0.3, texture_latency_s=0.3)),
                lambda s: {"KILN_HUNYUAN_URLS": s.url}, False),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, online: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    make_sandbox, environment, _ = BACKENDS[request.param]
    with make_sandbox() as server:
        for name, value in environment(server).items():
            monkeypatch.setenv(name, value)
        yield request.param


def results(backend: str) -> list[Any]:
    import bpy

    return [o for o in bpy.data.objects if o.get("kiln_backend") == backend and o.get("kiln_job_id")]


def test_every_button_on_every_remote_backend(runtime: ModuleType, backend: str) -> None:
    import bpy

    bpy.ops.wm.read_homefile()  # the default scene: a cube in front of the camera
    settings = bpy.context.scene.kiln
    settings.backend, settings.mode, settings.finish_preset = backend, "DRAFT", "keep"

    assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    assert runtime.run_until_done(timeout=120)
    (captured,) = results(backend)
    assert captured["kiln_mode"] == "draft" and captured["kiln_prompt"] == "Camera: Camera"
    assert len(captured.data.polygons) > 0

    takes_text = BACKENDS[backend][2]
    if takes_text:
        assert bpy.ops.kiln.generate(prompt="iron crate") == {"FINISHED"}
        assert runtime.run_until_done(timeout=120)
        assert sorted(o["kiln_prompt"] for o in results(backend)) == ["Camera: Camera", "iron crate"]
    else:
        # The panel greys Generate with the reason before any click; the button still refuses if run.
        settings.prompt = "iron crate"
        generate = draw("KILN_PT_generate").widget("operator", "kiln.generate")
        assert not generate.enabled
        label = runtime.registry.find(backend).label
        assert f"Generate: {label} makes models from image input only" in draw("KILN_PT_generate").labels()
        sent = len(runtime.scheduler().views())
        with pytest.raises(RuntimeError) as refused:
            bpy.ops.kiln.generate(prompt="iron crate")
        assert "choose another backend" in str(refused.value), str(refused.value)
        assert len(runtime.scheduler().views()) == sent, "refused before anything was queued"

    draft = results(backend)[-1]
    bpy.ops.object.select_all(action="DESELECT")
    draft.select_set(True)
    bpy.context.view_layer.objects.active = draft
    assert bpy.ops.kiln.promote() == {"FINISHED"}
    assert runtime.run_until_done(timeout=180)
    promoted = [o for o in results(backend) if o.get("kiln_promoted_from") == draft.name]
    assert len(promoted) == 1 and promoted[0]["kiln_mode"] == "production"
    failed = [v for v in runtime.scheduler().views() if v.state.value != "finished"]
    assert not failed, [(v.label, v.state.value, v.error) for v in failed]
