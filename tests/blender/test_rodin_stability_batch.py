"""Rodin and Stability Fast 3D in a headless manifest run (scripts/kiln_batch.py) against their sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests/tools"))

from test_images import draw  # noqa: E402

from addon.imaging.png import encode_png  # noqa: E402
from sandbox.rodin import RodinSandbox, RodinState  # noqa: E402
from sandbox.stability import StabilitySandbox  # noqa: E402


def run_batch(manifest: Path, out: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    env.update(env_extra)
    return subprocess.run([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out", str(out),
                           "--online-mode", "--quiet"], capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.bpy50_only
def test_a_manifest_runs_on_rodin_and_on_stability(tmp_path: Path) -> None:
    rgba, _ = draw("star", 256, alpha=True)
    (tmp_path / "star.png").write_bytes(encode_png(rgba))
    manifest = tmp_path / "mixed.toml"
    manifest.write_text('[batch]\nname = "props_rs_01"\nbackend = "BACKEND"\nmode = "draft"\n\n'
                        '[[asset]]\nprompt = "wooden barrel"\n\n[[asset]]\nimage = "star.png"\n')
    with RodinSandbox(RodinState(latency_s={"Sketch": 0.3, "default": 0.3})) as rodin, StabilitySandbox() as stability:
        rodin_env = {"KILN_RODIN_BASE_URL": rodin.url, "KILN_RODIN_API_KEY": "rodin_key_42"}
        stability_env = {"KILN_STABILITY_BASE_URL": stability.url, "KILN_STABILITY_API_KEY": "sk-key_42"}
        manifest.write_text(manifest.read_text().replace("BACKEND", "rodin"))
        on_rodin = run_batch(manifest, tmp_path / "rodin", rodin_env)
        assert on_rodin.returncode == 0, on_rodin.stderr[-2000:]
        report = json.loads((tmp_path / "rodin/props_rs_01/report.json").read_text())
        assert report["totals"]["finished"] == 2 and report["totals"]["credits"] == 1.0
        assert rodin.state.creates == 2

        # Stability takes the image asset only (a text asset is refused at validation: tests/unit/test_stability.py).
        manifest.write_text(manifest.read_text().replace('"rodin"', '"stability"')
                            .replace('[[asset]]\nprompt = "wooden barrel"\n\n', ""))
        on_stability = run_batch(manifest, tmp_path / "stability", stability_env)
        assert on_stability.returncode == 0, on_stability.stderr[-2000:]
        report = json.loads((tmp_path / "stability/props_rs_01/report.json").read_text())
        assert report["totals"]["finished"] == 1 and len(stability.state.calls) == 1
    assert str(report["assets"][0]["task_id"]).startswith("sf3d-")
