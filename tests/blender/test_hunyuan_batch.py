"""A headless manifest run (scripts/kiln_batch.py) on a pool of two Hunyuan3D sandbox servers, named by the
manifest's `[backends.hunyuan] urls`."""

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
from sandbox.hunyuan import HunyuanSandbox, HunyuanState  # noqa: E402


@pytest.mark.bpy50_only
def test_a_manifest_runs_on_a_pool_of_hunyuan_servers(tmp_path: Path) -> None:
    for shape in ("star", "disc"):
        rgba, _ = draw(shape, 128, alpha=True)
        (tmp_path / f"{shape}.png").write_bytes(encode_png(rgba))
    with HunyuanSandbox(HunyuanState(latency_s=0.3)) as first, HunyuanSandbox(HunyuanState(latency_s=0.3)) as second:
        manifest = tmp_path / "pool.toml"
        manifest.write_text('[batch]\nname = "props_hy_01"\nbackend = "hunyuan"\nmode = "draft"\n\n'
                            '[[asset]]\nimage = "star.png"\n\n[[asset]]\nimage = "disc.png"\n\n'
                            f'[backends.hunyuan]\nurls = ["{first.url}", "{second.url}"]\n')
        env = {k: v for k, v in os.environ.items() if k not in ("BLENDER_USER_RESOURCES", "KILN_HUNYUAN_URLS")}
        run = subprocess.run([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out",
                              str(tmp_path / "out"), "--online-mode", "--quiet"], capture_output=True, text=True,
                             timeout=300, env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        report = json.loads((tmp_path / "out/props_hy_01/report.json").read_text())
        assert report["totals"]["finished"] == 2
        assert first.state.sends == second.state.sends == 1, "one job per server: the least loaded one"
        owners = sorted(str(asset["task_id"]).split("@")[1] for asset in report["assets"])
        assert owners == sorted([first.url, second.url])
