"""Render the offline engine's contact sheet: 60 varied text prompts, Production, one tile each.

    .venv/bin/python scripts/dev/local_contact_sheet.py [--out docs/local-contact-sheet.png] [--tile 192]

Runs with the `bpy` module (Blender as a Python module): each prompt goes through the local engine
(`generate_text`, as a job does), is imported with Blender's glTF importer and rendered by Kiln's own
contact-sheet code (Workbench, or the software renderer where there is no GPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402

from addon.backends.local import generate_text  # noqa: E402
from addon.blender.contact_sheet import render_contact_sheet  # noqa: E402
from addon.jobs import JobKind, JobSpec, Mode  # noqa: E402

PROMPTS = (
    # the misses issue 17 reported
    "street lamp", "castle tower", "dragon", "car", "sci-fi crate", "office chair", "oak tree", "red maple tree",
    # words that change the shape
    "wooden barrel with iron bands", "broken barrel", "mossy barrel", "rusty sci-fi crate", "ornate throne",
    "overgrown stone wall", "huge ancient pillar", "squat pot",
    # counts and composition
    "stack of crates", "three barrels", "pile of rocks", "candle on a table", "knight with sword", "lantern on a crate",
    # vegetation, rocks
    "tall pine tree", "palm tree", "dead tree", "bush", "flowers", "mushroom", "cactus", "crystal", "cliff",
    # street, architecture, furniture
    "park bench", "fire hydrant", "traffic light", "phone booth", "stone arch", "watchtower", "cottage",
    "bookshelf", "sofa", "picnic table",
    # vehicles, weapons and tools
    "crate truck", "wooden cart", "pirate ship", "tank", "sword", "round shield", "battle axe", "wizard staff",
    # sci-fi and fantasy kits
    "control console", "blast door", "reactor", "robot", "spaceship", "treasure chest", "red banner", "magic portal",
    # creatures, and an honest miss
    "horse", "bird", "xylophone",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "docs/local-contact-sheet.png")
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--mode", choices=("draft", "production"), default="production")
    args = parser.parse_args(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    items: list[tuple[str, list[bpy.types.Object]]] = []
    with tempfile.TemporaryDirectory() as work:
        for number, prompt in enumerate(PROMPTS):
            spec = JobSpec(kind=JobKind.TEXT, backend="local", mode=Mode(args.mode), prompt=prompt, seed=11 + number)
            result = generate_text(spec, Path(work) / f"p{number:02d}")
            before = set(bpy.data.objects)
            bpy.ops.import_scene.gltf(filepath=result.files["model"], merge_vertices=True)
            objects = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
            for obj in objects:
                for collection in list(obj.users_collection):
                    collection.objects.unlink(obj)  # the sheet links each tile's objects itself
            label = prompt if result.metadata["matched"] else f"{prompt} (unknown)"
            items.append((label, objects))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        layout = render_contact_sheet(items, args.out, tile=args.tile)
    print(f"{len(items)} prompts -> {args.out} {layout}")


if __name__ == "__main__":
    main()
