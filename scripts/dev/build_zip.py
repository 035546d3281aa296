"""Build the Kiln extension zip with Blender's own builder, then validate it with Blender's validator.

    python scripts/dev/build_zip.py [--output-dir dist]

Uses `blender_ext.py` from the `bpy` wheel, which runs under plain Python (no Blender binary), with
Blender's list of valid tags. Prints the zip's path; exits non-zero when building or validating fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def blender_scripts_dir() -> Path:
    spec = importlib.util.find_spec("bpy")  # locate the wheel without importing Blender
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: the bpy module is not installed; run 'make venv' first")
    package = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(package.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not candidates:
        raise SystemExit(f"error: blender_ext.py not found under {package}")
    return candidates[-1].parents[3]


def run(args: list[str]) -> str:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(args[1:3])} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def build(output_dir: Path) -> Path:
    scripts = blender_scripts_dir()
    tool = scripts / "addons_core/bl_pkg/cli/blender_ext.py"
    tags = scripts / "modules/_bpy_internal/extensions/tags.py"
    output_dir.mkdir(parents=True, exist_ok=True)
    run([sys.executable, str(tool), "validate", str(REPO), "--valid-tags", str(tags)])
    run([sys.executable, str(tool), "build", "--source-dir", str(REPO), "--output-dir", str(output_dir),
         "--valid-tags", str(tags)])
    zips = sorted(output_dir.glob("kiln-*.zip"), key=lambda p: p.stat().st_mtime)
    if not zips:
        raise SystemExit(f"error: the builder wrote no zip into {output_dir}")
    run([sys.executable, str(tool), "validate", str(zips[-1]), "--valid-tags", str(tags)])
    return zips[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    print(build(args.output_dir.resolve()))


if __name__ == "__main__":
    main()
