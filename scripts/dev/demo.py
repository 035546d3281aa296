"""`make demo`: the headless batch demo. Not built yet, and it says so instead of pretending."""

import sys

print(
    "Kiln demo: not yet. The headless batch runner (examples/demo.toml → .blend, FBX, report,\n"
    "contact sheet) is not built yet. Meanwhile: `make test`, or install `make zip` into Blender.",
    file=sys.stderr,
)
sys.exit(1)
