"""The Asset Browser as the artist sees it: a catalog for each batch that has results (and none for what
has none), the prompt as the description, and a hint while the file has never been saved."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from conftest import ADDON_MODULE
from test_panel import draw
from test_pipeline import run_batch

HINT = "Save the .blend to file results in the Asset Browser catalogs"


def assets() -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.blender.assets")


def catalog_lines(folder: Path) -> list[str]:
    """The catalog definitions in the cats file beside the .blend (UUID:path:simple name)."""
    text = (folder / "blender_assets.cats.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith(("#", "VERSION"))]


def test_catalogs_are_written_only_for_batches_that_have_results(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    (barrel,) = run_batch(runtime, "env_props_01", ["wooden barrel"])
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    assert [line.split(":")[1] for line in catalog_lines(tmp_path)] == ["Kiln/env_props_01"], \
        "no empty Drafts catalog before any draft exists"
    assert barrel.asset_data.description == "wooden barrel"

    assert bpy.ops.kiln.generate(prompt="mossy rock") == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    bpy.ops.wm.save_mainfile()
    assert sorted(line.split(":")[1] for line in catalog_lines(tmp_path)) == ["Kiln/Drafts", "Kiln/env_props_01"]


def test_an_unsaved_file_with_results_gets_a_one_line_hint(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    assert assets().catalog_hint() is None, "nothing to file yet: no hint"
    assert bpy.ops.kiln.generate(prompt="wooden crate") == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    assert assets().catalog_hint() == HINT
    crate = next(o for o in bpy.data.objects if o.get("kiln_prompt") == "wooden crate")
    bpy.context.view_layer.objects.active = crate
    assert "Save the .blend" in draw("KILN_PT_result").labels(), "the Result panel says it"
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    assert assets().catalog_hint() is None
    assert "Save the .blend" not in draw("KILN_PT_result").labels()
    assert [line.split(":")[1] for line in catalog_lines(tmp_path)] == ["Kiln/Drafts"]
