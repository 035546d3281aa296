"""In the scene: one mesh shows per finished asset, any part of an asset shows its result, and results
land in free space near the 3D cursor, the camera result beside its subject facing the camera."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import math
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ADDON_MODULE
from test_panel import draw, kiln_objects

Box = tuple[tuple[float, float, float], tuple[float, float, float]]


def world_box(obj: object) -> Box:
    """Measured here, not with Kiln's own code: the 8 bound_box corners through the world matrix."""
    from mathutils import Vector

    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]  # type: ignore[attr-defined]
    return (tuple(min(c[i] for c in corners) for i in range(3)),  # type: ignore[return-value]
            tuple(max(c[i] for c in corners) for i in range(3)))


def overlap(a: Box, b: Box) -> bool:
    return all(a[0][i] < b[1][i] - 1e-5 and b[0][i] < a[1][i] - 1e-5 for i in range(3))


def root_of(obj: object) -> object:
    while obj.parent is not None:  # type: ignore[attr-defined]
        obj = obj.parent  # type: ignore[attr-defined]
    return obj


def shown_boxes() -> dict[str, list[Box]]:
    """Every visible mesh's world box, grouped by the asset (top-level object) it belongs to."""
    import bpy

    bpy.context.view_layer.update()
    boxes: dict[str, list[Box]] = {}
    for obj in bpy.context.view_layer.objects:
        if obj.type == "MESH" and obj.visible_get():
            boxes.setdefault(root_of(obj).name, []).append(world_box(obj))
    return boxes


def clashes() -> list[tuple[str, str]]:
    """Pairs of assets whose shown meshes intersect."""
    boxes = shown_boxes()
    return [(a, b) for a, b in itertools.combinations(sorted(boxes), 2)
            if any(overlap(x, y) for x in boxes[a] for y in boxes[b])]


def finish_selected(preset: str = "game") -> None:
    import bpy

    bpy.context.scene.kiln.finish_preset = preset
    bpy.context.scene.kiln.target = "GAME"
    assert bpy.ops.kiln.finish() == {"FINISHED"}


def select_only(*objects: object) -> None:
    import bpy

    for obj in bpy.context.view_layer.objects:
        obj.select_set(False)
    for obj in objects:
        obj.select_set(True)  # type: ignore[attr-defined]
    bpy.context.view_layer.objects.active = objects[0] if objects else None


def draft(runtime: ModuleType, prompt: str) -> object:
    import bpy

    before = set(kiln_objects())
    assert bpy.ops.kiln.generate(prompt=prompt) == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    (new,) = set(kiln_objects()) - before
    return new


# ------------------------------------------------------------------------------------------ LODs
def test_lods_beyond_the_first_are_hidden_in_viewport_and_renders_yet_exported(runtime: ModuleType,
                                                                                tmp_path: Path) -> None:
    import bpy

    crate = draft(runtime, "wooden crate")
    select_only(crate)
    finish_selected()
    group = crate.parent
    lods = sorted(group.children, key=lambda o: o.name)
    assert [o.name for o in lods] == [f"{group.name}_LOD{i}" for i in range(3)]
    assert lods[0].visible_get() and not lods[0].hide_render
    assert all(not lod.visible_get() and lod.hide_render for lod in lods[1:]), "one mesh shows, not three"
    assert len(shown_boxes()[group.name]) == 1

    name = group.name
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "scene.blend"))
    group = bpy.data.objects[name]
    lods = sorted(group.children, key=lambda o: o.name)
    assert [lod.visible_get() for lod in lods] == [True, False, False], "still hidden after a reload"
    assert [lod.hide_render for lod in lods] == [False, True, True]

    select_only(lods[2])  # the hidden LOD2, picked in the Outliner: the export still takes the asset
    out = tmp_path / "exports"
    assert bpy.ops.kiln.export_fbx(directory=str(out), per="asset", preset="unity", gltf=True) == {"FINISHED"}
    manifest = json.loads((out / "export_manifest.json").read_text())
    names = {lod.name for lod in lods}
    assert all(names <= set(f["objects"]) for f in manifest["files"])
    assert [lod.visible_get() for lod in lods] == [True, False, False], "the export puts the flags back"
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(out / f"{name}.fbx"))
    imported = {o.name: o for o in bpy.data.objects}
    assert names <= set(imported), "every LOD is in the FBX"
    assert all(imported[name].visible_get() for name in names), "and visible to the engine that reads it"
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(out / f"{name}.glb"))
    assert names <= {o.name for o in bpy.data.objects}, "every LOD is in the GLB"


# ------------------------------------------------------------------------------------------ the Result panel
def test_any_part_of_an_asset_shows_its_result_panel(runtime: ModuleType) -> None:
    import bpy

    panel = bpy.types.KILN_PT_result
    crate = draft(runtime, "wooden crate")
    select_only(crate)
    finish_selected()
    group = crate.parent
    lod1 = bpy.data.objects[f"{group.name}_LOD1"]
    for clicked in (group, crate, lod1):
        bpy.context.view_layer.objects.active = clicked
        assert panel.poll(bpy.context), f"{clicked.name} shows the Result panel"
        assert "Prompt: wooden crate" in draw("KILN_PT_result").labels()

    settings = bpy.context.scene.kiln
    for text in ("table", "lantern"):
        settings.parts.add().text = text
    assert bpy.ops.kiln.generate_parts() == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    parts = next(o for o in bpy.data.objects if o.get("kiln_parts_group"))
    lantern = next(c for c in parts.children if c.get("kiln_prompt") == "lantern")
    bpy.context.view_layer.objects.active = parts
    assert panel.poll(bpy.context) and "Prompt: table" in draw("KILN_PT_result").labels(), "the first part"
    bpy.context.view_layer.objects.active = lantern
    assert "Prompt: lantern" in draw("KILN_PT_result").labels()

    bpy.ops.mesh.primitive_cube_add()
    assert not panel.poll(bpy.context), "an object of the artist's own shows no Result panel"


def test_actions_on_the_selection_reach_the_result_from_its_lod_group_or_an_lod(runtime: ModuleType,
                                                                                  tmp_path: Path) -> None:
    import bpy

    bpy.context.scene.kiln.options = 2
    bpy.context.scene.kiln.seed = 77
    bpy.ops.kiln.generate(prompt="mossy rock")
    assert runtime.run_until_done(timeout=30)
    kept, other = sorted(kiln_objects(), key=lambda o: o["kiln_option"])
    select_only(kept)
    finish_selected()
    group = kept.parent

    select_only(bpy.data.objects[f"{group.name}_LOD1"])
    assert bpy.ops.kiln.export_fbx(directory=str(tmp_path), per="asset", preset="unreal") == {"FINISHED"}
    assert [p.name for p in tmp_path.glob("*.fbx")] == [f"{group.name}.fbx"]

    select_only(group)
    with pytest.raises(RuntimeError, match="already finished"):
        bpy.ops.kiln.finish()  # a second LOD chain inside the first would break the asset
    assert bpy.ops.kiln.keep_option() == {"FINISHED"}
    assert other.users_collection[0].name == "Rejected" and kept.get("kiln_kept_option")
    count = len(runtime.scheduler().views())
    assert bpy.ops.kiln.promote() == {"FINISHED"}
    (promoted,) = runtime.scheduler().views()[count:]
    assert promoted.spec.prompt == "mossy rock" and promoted.spec.seed == kept["kiln_seed"]
    assert promoted.spec.mode.value == "production"
    assert runtime.run_until_done(timeout=30)


# ------------------------------------------------------------------------------------------ placement
def test_drafts_parts_and_a_batch_land_in_free_space_clear_of_the_cube_at_the_cursor(runtime: ModuleType) -> None:
    import bpy

    bpy.context.scene.cursor.location = (1.0, 2.0, 0.0)
    bpy.ops.mesh.primitive_cube_add(size=2.0, location=(1.0, 2.0, 1.0))  # standing right at the cursor
    cube = bpy.context.active_object
    cube.name = "Artist Cube"
    first = draft(runtime, "wooden barrel")
    second = draft(runtime, "stone pillar")
    assert first.location.y == pytest.approx(second.location.y), "drafts share a row"
    assert second.location.x > first.location.x, "the row grows to the right"

    settings = bpy.context.scene.kiln
    for text in ("table", "crate"):
        settings.parts.add().text = text
    assert bpy.ops.kiln.generate_parts() == {"FINISHED"}
    settings.mode = "PRODUCTION"
    settings.target = "GAME"
    settings.finish_preset = "game"
    settings.batch_base = "sci-fi crate"
    for text in ("with vents", "with warning lights"):
        settings.variations.add().text = text
    settings.options = 2
    assert bpy.ops.kiln.batch_prompts() == {"FINISHED"}
    assert runtime.run_until_done(timeout=180)

    batch = [o for o in bpy.data.objects if o.get("kiln_lod_group") and o.name.startswith("env_sci_fi_crate")]
    assert len(batch) == 4, "four finished assets, each an LOD group"
    by_option: dict[int, set[float]] = {}
    for group in batch:
        by_option.setdefault(int(group["kiln_option"]), set()).add(round(group.location.y, 4))
    assert all(len(ys) == 1 for ys in by_option.values()), "one row per option"
    assert len(by_option) == 2 and by_option[0] != by_option[1], "the options' rows are apart"
    shown = shown_boxes()
    assert len(shown) == 1 + 2 + 1 + 4, "the cube, two drafts, the parts group and four batch assets"
    assert clashes() == [], "no result intersects another object or the cube"


def test_a_moved_cursor_starts_a_new_row_there(runtime: ModuleType) -> None:
    import bpy

    cursor = bpy.context.scene.cursor
    first = draft(runtime, "wooden barrel")
    assert tuple(first.location) == pytest.approx((0.0, 0.0, 0.0)), "a free cursor: right there"
    second = draft(runtime, "wooden barrel")
    assert second.location.y == pytest.approx(0.0) and second.location.x > first.location.x
    cursor.location = (-3.0, -6.0, 0.5)
    third = draft(runtime, "stone pillar")
    assert tuple(third.location) == pytest.approx((-3.0, -6.0, 0.5)), "a new row at the moved cursor"
    fourth = draft(runtime, "stone pillar")
    assert fourth.location.y == pytest.approx(-6.0) and fourth.location.x > third.location.x
    cursor.location = (0.0, 0.0, 0.0)
    fifth = draft(runtime, "mossy rock")
    assert fifth.location.y == pytest.approx(0.0) and fifth.location.x > second.location.x, \
        "back at the first row's cursor, that row goes on"
    assert clashes() == []


def test_a_reference_image_at_the_cursor_is_kept_clear_of(runtime: ModuleType) -> None:
    import bpy

    reference = bpy.data.objects.new("Front Reference", None)  # as Add > Image > Reference makes it
    reference.empty_display_type = "IMAGE"
    reference.data = bpy.data.images.new("front.png", 64, 36)
    reference.empty_display_size = 4.0
    reference.location = (0.0, 0.0, 1.0)
    reference.rotation_euler = (math.pi / 2, 0.0, 0.0)  # standing up, facing -Y
    bpy.context.scene.collection.objects.link(reference)
    quad: Box = ((-2.0, 0.0, 1.0 - 1.125), (2.0, 0.0, 1.0 + 1.125))  # 4 m wide, 16:9, no depth
    result = draft(runtime, "wooden barrel")
    bpy.context.view_layer.update()
    assert not overlap(world_box(result), quad), "the draft does not cut through the reference"
    assert world_box(result)[0][1] > 0.0, "it stands behind the reference, whose centre is at the cursor"


def result_capture(obj: object) -> object:
    """The `capture` parameter of the request a result came from."""
    import json

    params = dict(json.loads(obj["kiln_spec"])["params"])  # type: ignore[index]
    return params["capture"]


def test_the_camera_result_stands_beside_its_subject_facing_the_camera(runtime: ModuleType) -> None:
    import bpy
    from mathutils import Vector

    bpy.ops.wm.read_homefile()  # the default scene: a cube in front of the camera
    scene = bpy.context.scene
    cube = bpy.data.objects["Cube"]
    assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    (result,) = kiln_objects()

    def faces(obj: object, camera: object) -> float:
        """Degrees between the result's front (-Y, turned with it) and the way to the camera."""
        front = obj.matrix_world.to_3x3() @ Vector((0.0, -1.0, 0.0))  # type: ignore[attr-defined]
        towards = camera.matrix_world.translation - obj.matrix_world.translation  # type: ignore[attr-defined]
        return math.degrees(front.xy.angle(towards.xy))

    def assert_beside(obj: object, subject: object) -> None:
        up = obj.matrix_world.to_3x3() @ Vector((0.0, 0.0, 1.0))  # type: ignore[attr-defined]
        assert up.normalized().z == pytest.approx(1.0), "upright"
        assert not overlap(world_box(obj), world_box(subject)), "not inside the captured cube"
        gap = min(world_box(obj)[1][i] - world_box(subject)[0][i] if world_box(obj)[0][i] < world_box(subject)[0][i]
                  else world_box(obj)[0][i] - world_box(subject)[1][i] for i in (0, 1))
        assert gap < 1.5, "beside it, not far away"
        assert world_box(obj)[0][2] == pytest.approx(world_box(subject)[0][2], abs=1e-4), "on the subject's base"

    bpy.context.view_layer.update()
    assert_beside(result, cube)
    # The local engine builds the cube from the scene's depth, in world orientation: it keeps the
    # cube's own heading instead of turning to the camera.
    assert result.rotation_euler.z == 0.0 and "depth" in dict(result_capture(result))
    assert clashes() == []

    # A capture that names its camera and subject (not the scene's camera) is placed by them; without
    # depth (what a cloud backend gets back), the result is turned to face that camera.
    side = bpy.data.objects.new("Side Camera", bpy.data.cameras.new("Side Camera"))
    scene.collection.objects.link(side)
    side.location = (0.0, 12.0, 1.0)
    side.rotation_euler = (math.pi / 2, 0.0, math.pi)  # looking along -Y at the cube
    (job,) = [j for j in runtime.scheduler().views() if j.spec.kind.value == "image"]
    jobs = importlib.import_module(f"{ADDON_MODULE}.addon.jobs")
    params = {**job.spec.params_dict, "capture": {"camera": side.name, "objects": [cube.name]}}
    spec = dataclasses.replace(job.spec, params=jobs.JobSpec.make_params(params), index=1)
    runtime.scheduler().add(spec)
    assert runtime.run_until_done(timeout=60)
    (second,) = [o for o in kiln_objects() if o is not result]
    bpy.context.view_layer.update()
    assert_beside(second, cube)
    assert faces(second, side) < 0.5
    assert clashes() == []

    select_only(second)  # finishing bakes scale into the mesh but keeps the turn on the object
    finish_selected()
    bpy.context.view_layer.update()
    assert second.parent is not None and faces(second, side) < 0.5
    assert_beside(second, cube)
    assert clashes() == []
    bpy.ops.wm.read_homefile(use_empty=True)
