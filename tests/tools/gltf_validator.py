"""Run the Khronos glTF-Validator (installed by `make tools`) on GLB files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

TOOLS = Path(__file__).parent


def validate(paths: list[Path]) -> dict[str, dict]:
    """path → {"errors", "warnings", "messages"} as reported by the validator."""
    node = shutil.which("node")
    assert node, "Node.js is required for the glTF-Validator"
    assert (TOOLS / "node_modules/gltf-validator").is_dir(), "run `make tools` first"
    result = subprocess.run([node, str(TOOLS / "validate_gltf.mjs"), *map(str, paths)],
                            capture_output=True, text=True, timeout=300, cwd=TOOLS)
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {report["path"]: report for report in reports}
