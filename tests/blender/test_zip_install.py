"""The extension builds and validates with Blender's own tools, and installs from disk like a user's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent


def build_zip(out: Path) -> Path:
    result = subprocess.run([sys.executable, str(REPO / "scripts/dev/build_zip.py"), "--output-dir", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def test_zip_builds_validates_and_leaves_dev_files_out(tmp_path: Path) -> None:
    archive = build_zip(tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "addon/scheduling/engine.py" in names
    leaked = [n for n in names if n.startswith(("tests/", "bench/", "sandbox/", "examples/", "docs/", ".ci/",
                                                 ".typecheck/", "scripts/dev/"))
              or n in ("Makefile", "pyproject.toml") or n.startswith("requirements") or n.endswith("fake.py")]
    assert leaked == []


def test_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """The gate is real: a tagline with a trailing period fails Blender's validator."""
    broken = tmp_path / "kiln"
    broken.mkdir()
    manifest = (REPO / "blender_manifest.toml").read_text()
    (broken / "blender_manifest.toml").write_text(manifest.replace('tagline = "', 'tagline = "Broken. ', 1)
                                                  .replace('production"', 'production."', 1))
    (broken / "__init__.py").write_text("def register(): pass\ndef unregister(): pass\n")
    sys.path.insert(0, str(REPO / "scripts/dev"))
    import build_zip as builder

    tool = builder.blender_scripts_dir() / "addons_core/bl_pkg/cli/blender_ext.py"
    result = subprocess.run([sys.executable, str(tool), "validate", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "tagline" in (result.stdout + result.stderr)


def test_install_from_disk_enable_and_generate_in_a_fresh_blender(tmp_path: Path) -> None:
    archive = build_zip(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    result = subprocess.run([sys.executable, str(HERE / "install_from_zip.py"), str(archive)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["install"] == ["FINISHED"] and report["enabled"] is True
    assert report["finished"] is True
    assert report["object"] == "draft_oak_barrel_001"
    assert report["collection"] == "Kiln Drafts"
    assert report["faces"] > 50
    assert "tests" not in report["installed_files"]
