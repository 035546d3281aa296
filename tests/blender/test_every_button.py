"""One request path: every button that generates, in Production, lands a finished asset the same way;
selected reference empties are an input like the others; Promote reuses the draft's own request."""

from __future__ import annotations

import importlib
import math
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from conftest import ADDON_MODULE

FACE_BUDGET = 800
ASSET_NAME = re.compile(r"^(gen|env)_[a-z0-9_]+_\d{2}_\d{3}(_v\d+)?$")


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


def production_settings() -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode = "PRODUCTION"
    settings.target = "GAME"
    settings.face_budget = FACE_BUDGET
    settings.finish_preset = "game"
    settings.options = 1
    settings.seed = 7


def world_box(obj: Any) -> tuple[np.ndarray, np.ndarray]:
    from mathutils import Vector

    corners = np.array([tuple(obj.matrix_world @ Vector(c)) for c in obj.bound_box])
    return corners.min(axis=0), corners.max(axis=0)


def overlaps(a: Any, b: Any) -> bool:
    (amin, amax), (bmin, bmax) = world_box(a), world_box(b)
    # A millimetre of slack: touching is fine, sharing volume is not.
    return bool(np.all(amin < bmax - 1e-3) and np.all(bmin < amax - 1e-3))


def visible_meshes() -> list:
    import bpy

    return [o for o in bpy.context.scene.objects
            if o.type == "MESH" and o.visible_get() and not o.hide_render]


def assert_finished_production(prefix: str) -> Any:
    """The one Production result of this press: finished, with its LOD chain, in budget, named by the
    convention, in its batch's collection, and intersecting nothing."""
    import bpy

    groups = [o for o in bpy.data.objects if o.get("kiln_lod_group")]
    assert len(groups) == 1, f"expected one LOD group, got {[o.name for o in groups]}"
    (group,) = groups
    assert ASSET_NAME.match(group.name) and group.name.startswith(prefix), group.name
    lods = sorted((o for o in group.children), key=lambda o: o.name)
    assert [o.name for o in lods] == [f"{group.name}_LOD{i}" for i in range(3)]
    lod0 = lods[0]
    assert lod0["kiln_mode"] == "production"
    assert len(lod0.data.polygons) <= FACE_BUDGET, f"LOD0 has {len(lod0.data.polygons)} faces"
    assert len(lods[1].data.polygons) < len(lod0.data.polygons)
    for lod in lods[1:]:
        assert lod.hide_render and not lod.visible_get(), f"{lod.name} shows on top of LOD0"
    batch = lod0["kiln_batch"]
    assert group.name.startswith(batch) and lod0.users_collection[0].name == batch
    assert bpy.data.collections[batch] in list(bpy.context.scene.collection.children)
    shown = visible_meshes()
    for index, first in enumerate(shown):
        for second in shown[index + 1:]:
            assert not overlaps(first, second), f"{first.name} intersects {second.name}"
    return group


def add_cube_at_cursor() -> Any:
    import bpy

    bpy.ops.mesh.primitive_cube_add(size=1.0, location=bpy.context.scene.cursor.location)
    return bpy.context.active_object


def reference_empty(name: str, image_path: Path, rotation: tuple[float, float, float],
                    location: tuple[float, float, float] = (0, 0, 0)) -> Any:
    """What Add ▸ Image ▸ Reference makes: an image empty facing the view it was added in."""
    import bpy

    image = bpy.data.images.load(str(image_path))
    empty = bpy.data.objects.new(name, None)
    empty.empty_display_type = "IMAGE"
    empty.data = image
    empty.rotation_euler = rotation
    empty.location = location
    bpy.context.scene.collection.objects.link(empty)
    return empty


def write_subject_png(path: Path, kind: str = "disc") -> Path:
    imaging = importlib.import_module(f"{ADDON_MODULE}.addon.imaging.png")
    size = 128
    yy, xx = np.mgrid[0:size, 0:size]
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    disc = (xx - 64) ** 2 + (yy - 64) ** 2 < 40**2
    mask = disc if kind == "disc" else (abs(xx - 64) < 20) & (abs(yy - 64) < 50)
    rgba[mask] = (180, 120, 60, 255)
    path.write_bytes(imaging.encode_png(rgba))
    return path


def select_only(objects: list) -> None:
    import bpy

    for obj in bpy.context.scene.objects:
        obj.select_set(obj in objects)
    if objects:
        bpy.context.view_layer.objects.active = objects[0]


# ------------------------------------------------------------------------------------------ Production, every button
def test_generate_in_production_lands_finished(runtime: ModuleType) -> None:
    import bpy

    production_settings()
    add_cube_at_cursor()
    assert bpy.ops.kiln.generate(prompt="wooden barrel") == {"FINISHED"}
    assert runtime.run_until_done(timeout=120)
    assert_finished_production("gen_wooden_barrel_01")


def test_generate_from_camera_in_production_lands_finished_beside_the_subject(runtime: ModuleType) -> None:
    import bpy

    production_settings()
    cube = add_cube_at_cursor()
    bpy.ops.object.camera_add(location=(0, -6, 1.0), rotation=(math.radians(85), 0, 0))
    bpy.context.scene.camera = bpy.context.active_object
    assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    assert runtime.run_until_done(timeout=120)
    group = assert_finished_production("gen_camera_camera_01")
    assert not overlaps(group.children[0], cube)


def test_generate_from_selected_references_in_production_lands_finished(runtime: ModuleType,
                                                                      tmp_path: Path) -> None:
    import bpy

    production_settings()
    ref = reference_empty("crate_ref", write_subject_png(tmp_path / "crate.png", "box"), (math.radians(90), 0, 0))
    select_only([ref])
    assert bpy.ops.kiln.batch_images() == {"FINISHED"}
    (job,) = runtime.scheduler().views()
    assert job.spec.kind.value == "image" and job.spec.params_dict["beside"] == ("crate_ref",)
    assert runtime.run_until_done(timeout=120)
    assert_finished_production("gen_crate_ref_01")


def test_a_prompt_batch_in_production_lands_finished(runtime: ModuleType) -> None:
    import bpy

    production_settings()
    settings = bpy.context.scene.kiln
    settings.batch_base = "stone"
    settings.variations.add().text = "pillar"
    assert bpy.ops.kiln.batch_prompts() == {"FINISHED"}
    assert runtime.run_until_done(timeout=120)
    assert_finished_production("env_stone_01")


def test_promote_reuses_the_drafts_request_and_lands_finished(runtime: ModuleType) -> None:
    import json

    import bpy

    bpy.context.scene.kiln.mode = "DRAFT"
    bpy.context.scene.kiln.seed = 4242
    assert bpy.ops.kiln.generate(prompt="wooden barrel") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    draft = bpy.data.objects["draft_wooden_barrel_001"]
    stored = json.loads(draft["kiln_spec"])
    assert stored["prompt"] == "wooden barrel" and stored["seed"] == 4242 and stored["mode"] == "draft"
    production_settings()
    select_only([draft])
    assert bpy.ops.kiln.promote() == {"FINISHED"}
    assert runtime.run_until_done(timeout=120)
    group = assert_finished_production("gen_wooden_barrel_01")
    lod0 = group.children[0]
    promoted = json.loads(lod0["kiln_spec"])
    # Only the mode (and what the mode means) changed: same prompt, seed, backend and kind.
    for key in ("prompt", "seed", "backend", "kind", "negative_prompt"):
        assert promoted[key] == stored[key], key
    assert promoted["mode"] == "production"
    assert draft.hide_render and not draft.visible_get()
    assert not any(o.name.endswith(".001") for o in bpy.data.objects)


def test_drafts_of_one_prompt_are_numbered_not_suffixed(runtime: ModuleType) -> None:
    import bpy

    bpy.context.scene.kiln.options = 2
    for _ in range(2):
        assert bpy.ops.kiln.generate(prompt="mossy rock") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    names = sorted(o.name for o in bpy.data.collections["Kiln Drafts"].objects)
    assert names == ["draft_mossy_rock_001", "draft_mossy_rock_001_v2", "draft_mossy_rock_002",
                     "draft_mossy_rock_002_v2"]


# ------------------------------------------------------------------------------------------ selected references
def test_three_selected_references_give_three_jobs(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    refs = [reference_empty(f"ref_{i}", write_subject_png(tmp_path / f"r{i}.png", "disc" if i % 2 else "box"),
                            (math.radians(90), 0, 0), location=(i * 3.0, 0, 0)) for i in range(3)]
    bpy.data.objects.new("not_a_reference", None)  # an empty that shows no image is ignored
    select_only(refs)
    assert bpy.ops.kiln.batch_images() == {"FINISHED"}
    jobs = runtime.scheduler().views()
    assert sorted(j.spec.name for j in jobs) == ["draft_ref_0_001", "draft_ref_1_001", "draft_ref_2_001"]
    assert all(j.spec.kind.value == "image" for j in jobs)
    assert runtime.run_until_done(timeout=60)
    assert len([o for o in bpy.data.objects if o.get("kiln_job_id")]) == 3


def test_front_and_side_references_as_views_give_one_multiview_job(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    front = reference_empty("front_ref", write_subject_png(tmp_path / "f.png", "box"), (math.radians(90), 0, 0))
    side = reference_empty("side_ref", write_subject_png(tmp_path / "s.png", "box"),
                           (math.radians(90), 0, math.radians(90)), location=(3, 0, 0))
    select_only([front, side])
    assert bpy.ops.kiln.batch_images(as_views=True) == {"FINISHED"}
    (job,) = runtime.scheduler().views()
    assert job.spec.kind.value == "multiview"
    assert job.spec.params_dict["views"] == ("front", "right")
    assert runtime.run_until_done(timeout=60)
    (obj,) = [o for o in bpy.data.objects if o.get("kiln_job_id")]
    assert obj["kiln_kind"] == "multiview"


def test_references_that_are_not_a_turnaround_are_refused_as_views(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    refs = [reference_empty(f"f{i}", write_subject_png(tmp_path / f"{i}.png"), (math.radians(90), 0, 0))
            for i in range(2)]
    select_only(refs)
    with pytest.raises(RuntimeError, match=r"need a front reference .* each facing a different way"):
        bpy.ops.kiln.batch_images(as_views=True)
    assert runtime.scheduler().views() == []


def test_a_reference_without_readable_pixels_is_skipped_with_a_message(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ref = reference_empty("broken_ref", write_subject_png(tmp_path / "ok.png"), (math.radians(90), 0, 0))
    ref.data.filepath = str(bad)
    select_only([ref])
    with pytest.raises(RuntimeError, match="No usable image"):
        bpy.ops.kiln.batch_images()
    assert runtime.scheduler().views() == []


# ------------------------------------------------------------------------------------------ the panel's estimate
@pytest.mark.parametrize("target", ["GAME", "FILM"])
def test_the_panels_estimate_is_what_the_scheduler_commits_on_tripo(runtime: ModuleType, target: str, online: None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import bpy

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from test_panel import draw

    from sandbox.tripo import SandboxState, TripoSandbox

    key = "tsk_estimate_test_key"
    with TripoSandbox(SandboxState(latency_s={"draft": 30.0, "textured": 30.0}, valid_keys={key})) as server:
        monkeypatch.setenv("KILN_TRIPO_BASE_URL", server.url)
        monkeypatch.setenv("KILN_TRIPO_API_KEY", key)
        production_settings()
        settings = bpy.context.scene.kiln
        settings.target = target
        settings.options = 2
        settings.backend = "tripo"
        assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
        shown = re.search(r"~([\d.]+) credits", draw("KILN_PT_generate").labels())
        assert shown is not None
        committed = sum(j.credits_estimated for j in runtime.scheduler().views())
        assert float(shown.group(1)) == committed > 0
        for job in runtime.scheduler().views():
            runtime.scheduler().cancel(job.job_id)
