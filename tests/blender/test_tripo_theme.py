"""A themed batch on Tripo, headless in Blender against the sandbox: Tripo's texture route runs on every
model with the batch's shared prompt, the estimate and the budget count it, and the textured model is the
one in the saved scene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_blender_theme_key_42"
THEME = "mossy green stone"


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.3, "textured": 0.4}, valid_keys={KEY})) as server:
        yield server


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BLENDER_USER_RESOURCES", "KILN_TRIPO_BASE_URL")}
    env["KILN_TRIPO_API_KEY"] = KEY
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env)


MATERIALS = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[-1])
for obj in bpy.data.objects:
    root = obj
    while root.parent is not None:
        root = root.parent
    shown = "_LOD" not in obj.name or obj.name.endswith("_LOD0")
    if obj.type == "MESH" and (root.get("kiln_task_id") or obj.get("kiln_task_id")) and shown:
        print("MATERIALS", obj.name, "|".join(m.name for m in obj.data.materials if m))
"""


@pytest.mark.bpy50_only
@pytest.mark.parametrize("finish", ["", '[finish]\npreset = "game"\n'], ids=["raw", "finished"])
def test_a_themed_batch_is_textured_by_tripo(sandbox: TripoSandbox, tmp_path: Path, finish: str) -> None:
    manifest = tmp_path / "ruins.toml"
    # With [finish] too: finishing's own theme material (for backends that cannot texture) must not
    # paint over the texture Tripo made.
    manifest.write_text(f'[batch]\nname = "env_ruins_01"\nbackend = "tripo"\nbudget = 60\ntheme = "{THEME}"\n\n'
                        f'[[asset]]\nprompt = "broken column"\n\n[[asset]]\nprompt = "fallen arch"\n\n'
                        f'{finish}[backends.tripo]\nbase_url = "{sandbox.url}"\n')
    batch = [str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out", str(tmp_path / "out"), "--online-mode",
             "--quiet", "--allow-host", "127.0.0.1"]
    plan = run(*batch, "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert '"estimated_credits": 60' in plan.stdout.replace(".0", ""), "geometry 20 + texture 10, per asset"
    done = run(*batch)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out/env_ruins_01/report.json").read_text())
    assert report["totals"]["finished"] == 2 and report["totals"]["credits"] == 60.0
    textures = [t for t in sandbox.state.tasks.values() if t.kind == "texture"]
    assert len(textures) == 2 and all(t.request["texture_prompt"] == {"text": THEME} for t in textures)
    assert {t.request["input"] for t in textures} == {t.task_id for t in sandbox.state.tasks.values()
                                                      if t.kind == "text"}
    blend = next((tmp_path / "out/env_ruins_01").glob("*.blend"))
    scene = run("-c", MATERIALS, str(blend))
    found = [line for line in scene.stdout.splitlines() if line.startswith("MATERIALS")]
    assert len(found) == 2, scene.stdout[-2000:] + scene.stderr[-2000:]
    assert all(f"textured: {THEME}" in line for line in found), \
        f"the textured model's materials are in the scene: {found}"
