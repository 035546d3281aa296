"""Into the scene and out again: import, assets and catalogs, finishing presets, bake, LODs, FBX export."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import ADDON_MODULE


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


def run_batch(runtime: ModuleType, name: str, prompts: list[str], *, finish: str | None = None,
              target: str = "game", theme: str | None = None) -> list:
    """Queue a Production batch through the scheduler and pump it to the end; returns its objects."""
    import bpy

    requests, presets, jobs = engine("requests"), engine("presets"), engine("jobs")
    scheduler = runtime.scheduler()
    batch = jobs.BatchSpec(name, finish=presets.PRESETS[finish] if finish else None, target=target,
                           theme=presets.theme_from_prompt(theme) if theme else None)
    scheduler.add_batch(batch)
    for index, prompt in enumerate(prompts):
        scheduler.add_many(requests.manifest_asset_specs(batch, kind="text", index=index, name=f"{name}_{index}",
                                                         base_seed=11, prompt=prompt))
    assert runtime.run_until_done(timeout=120)
    return sorted((o for o in bpy.data.objects if o.get("kiln_batch") == name), key=lambda o: o["kiln_index"])


def non_manifold_edges(obj: object) -> int:
    import bmesh

    bm = bmesh.new()
    bm.from_mesh(obj.data)  # type: ignore[attr-defined]
    count = sum(not e.is_manifold for e in bm.edges)
    bm.free()
    return count


def test_import_lands_named_in_its_batch_as_assets_in_a_catalog(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    objects = run_batch(runtime, "env_props_01", ["wooden barrel", "iron lantern"])
    assert [o.name for o in objects] == ["env_props_01_001", "env_props_01_002"]
    collection = bpy.data.collections["env_props_01"]
    assert set(collection.objects) == set(objects)
    barrel = objects[0]
    assert barrel["kiln_prompt"] == "wooden barrel" and barrel["kiln_mode"] == "production"
    (job,) = [j for j in runtime.scheduler().views() if j.job_id == barrel["kiln_job_id"]]
    assert barrel["kiln_seed"] == job.spec.seed and 0 <= job.spec.seed < 2**31
    assert barrel["kiln_task_id"].startswith("local-")
    assert barrel["kiln_generation_s"] >= 0 and barrel["kiln_credits"] == 0.0
    data = barrel.asset_data
    assert data is not None and data.description == "wooden barrel"
    assert {"kiln", "production", "local", "wooden", "barrel"} <= {t.name for t in data.tags}
    catalogs = engine("catalogs")
    assert data.catalog_id == catalogs.catalog_id("env_props_01")
    assert barrel.preview is not None and tuple(barrel.preview.image_size) == (256, 256)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    cats = (tmp_path / "blender_assets.cats.txt").read_text()
    assert f"{catalogs.catalog_id('env_props_01')}:Kiln/env_props_01:" in cats


def test_upright_with_origin_at_bottom_centre(runtime: ModuleType) -> None:
    from mathutils import Vector

    (pillar,) = run_batch(runtime, "env_arch_01", ["stone pillar"])
    corners = [Vector(c) for c in pillar.bound_box]  # local space: the origin is the mesh's (0, 0, 0)
    low = Vector([min(c[i] for c in corners) for i in range(3)])
    high = Vector([max(c[i] for c in corners) for i in range(3)])
    assert low.z == pytest.approx(0.0, abs=1e-5), "the origin is at the bottom"
    assert (low.x + high.x) / 2 == pytest.approx(0.0, abs=1e-5) and (low.y + high.y) / 2 == pytest.approx(0.0, abs=1e-5)
    assert high.z - low.z > 2 * max(high.x - low.x, high.y - low.y), "a pillar stands up along +Z"


@pytest.mark.parametrize("preset", ["game", "game_organic", "game_quads"])
def test_finishing_presets_give_manifold_budgeted_uv_mapped_lods(runtime: ModuleType, preset: str) -> None:
    import bpy

    budget = engine("presets").PRESETS[preset].face_budget
    run_batch(runtime, f"env_{preset}_01", ["mossy rock", "wooden barrel"], finish=preset)
    jobs = [j for j in runtime.scheduler().views() if j.spec.batch == f"env_{preset}_01"]
    assert all(j.state.value == "finished" for j in jobs)
    for job in jobs:
        report = job.metadata["finish"]
        asset = report["asset"]
        assert report["lods"] == [f"{asset}_LOD0", f"{asset}_LOD1", f"{asset}_LOD2"]
        group = bpy.data.objects[asset]
        assert group.type == "EMPTY" and sorted(c.name for c in group.children) == report["lods"]
        lod0 = bpy.data.objects[f"{asset}_LOD0"]
        faces = [len(bpy.data.objects[name].data.polygons) for name in report["lods"]]
        assert faces[0] <= budget and faces[0] > faces[1] > faces[2]
        steps = {s["step"]: s for s in report["steps"]}
        if preset != "game" or "uv" in steps:
            assert steps["uv"]["uv_islands"] > 0
        assert lod0.data.uv_layers, "UVs present"
        for size in steps["textures"]["textures"]:
            assert all(v & (v - 1) == 0 for v in size), f"texture {size} is not a power of two"
        if preset == "game_quads" and not steps["remesh"]["ok"]:
            pytest.fail(f"QuadriFlow failed: {steps['remesh']}")
        assert non_manifold_edges(lod0) == 0 or preset == "game_quads", f"{asset}: non-manifold after {preset}"


def test_bake_keeps_the_colour(runtime: ModuleType) -> None:
    import bpy

    run_batch(runtime, "env_red_01", ["red crate"], finish="game_organic")
    lod0 = bpy.data.objects["env_red_01_001_LOD0"]
    image = next(n.image for n in lod0.active_material.node_tree.nodes if getattr(n, "image", None))
    width, height = image.size
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    rgb = pixels.reshape(-1, 4)[:, :3]
    covered = rgb[rgb.sum(axis=1) > 0.05]  # texels the bake wrote
    assert len(covered) > 0.2 * width * height
    red, green, blue = np.median(covered, axis=0)
    assert red > 2 * green and red > 2 * blue, f"baked colour {red:.2f},{green:.2f},{blue:.2f} is not the red"


def test_failed_step_leaves_the_asset_as_it_was_and_the_rest_goes_on(runtime: ModuleType) -> None:
    finishing, presets = engine("blender.finishing"), engine("presets")
    (crate,) = run_batch(runtime, "env_bad_01", ["crate"])
    # A bake into a 0-pixel image cannot work: that step must fail alone.
    broken = presets.FinishPreset("broken", remesh="voxel", face_budget=3000, uv="smart", bake=True, bake_size=0,
                                  texture_size=512)
    report = finishing.finish_object(crate, broken, game=False)
    steps = {s.step: s for s in report.steps}
    assert not steps["bake"].ok and steps["bake"].error
    assert steps["remesh"].ok and steps["uv"].ok and steps["textures"].ok, "the other steps still ran"
    assert not report.ok
    assert len(crate.data.polygons) == steps["decimate"].detail["faces_after"], "mesh as it was before the bake"
    assert crate.data.uv_layers


def test_theme_gives_a_batch_one_shared_material(runtime: ModuleType) -> None:
    objects = run_batch(runtime, "env_theme_01", ["rock", "log"], finish="game", theme="mossy green stone")
    materials = {tuple(slot.material.name for slot in o.material_slots) for o in objects}
    assert materials == {("theme_env_theme_01",)}


def test_fbx_export_reimports_with_its_lods_and_never_overwrites(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    exporter = engine("blender.exporter")
    run_batch(runtime, "env_export_01", ["barrel", "stump"], finish="game")
    roots = [o for o in bpy.data.objects if o.get("kiln_lod_group")]
    written = exporter.export(roots, str(tmp_path), per="asset", preset="unity", gltf=True)
    fbx = sorted(Path(f.path).name for f in written if f.kind == "fbx")
    assert fbx == ["env_export_01_001.fbx", "env_export_01_002.fbx"]
    manifest = json.loads((tmp_path / "export_manifest.json").read_text())
    assert {Path(f["path"]).name for f in manifest["files"]} >= set(fbx) and all(f["faces"] > 0
                                                                                for f in manifest["files"])
    again = exporter.export(roots[:1], str(tmp_path), per="asset", preset="unreal")
    assert Path(again[0].path).name.endswith("_2.fbx"), "a second export does not overwrite the first"
    expected = {o.name for o in bpy.data.objects if o.name.startswith("env_export_01_001")}
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(tmp_path / "env_export_01_001.fbx"))
    assert {o.name for o in bpy.data.objects} == expected


def test_bad_export_folders_say_why(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    exporter = engine("blender.exporter")
    (crate,) = run_batch(runtime, "env_paths_01", ["crate"])
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(exporter.ExportError, match="cannot create the export folder"):
        exporter.export([crate], str(blocker / "exports"))
    with pytest.raises(exporter.ExportError, match=r"needs the \.blend file to be saved"):
        exporter.export([crate], "//exports")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    with pytest.raises(exporter.ExportError, match=r"outside the \.blend.s folder"):
        exporter.export([crate], "//../../elsewhere")
    if os.geteuid() != 0:  # root may write anywhere, so this check cannot fail as root
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(exporter.ExportError, match="not writable"):
            exporter.export([crate], str(locked))


def test_undo_after_an_import_removes_it_without_orphans(runtime: ModuleType) -> None:
    import bpy

    bpy.ops.ed.undo_push(message="before Kiln")
    counts = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials), len(bpy.data.images))
    bpy.ops.kiln.generate(prompt="wooden crate with iron bands")
    assert runtime.run_until_done(timeout=30)
    bpy.ops.ed.undo_push(message="Kiln import")  # the pump pushes this in the UI
    assert len(bpy.data.objects) == counts[0] + 1
    bpy.ops.ed.undo()
    assert (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials), len(bpy.data.images)) == counts
