"""Generate from Camera as the artist sees it: where the capture goes, what the job and the object are
called, what the result says it came from, and that the artist's render settings come back."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from conftest import ADDON_MODULE
from test_panel import kiln_objects


def default_scene_with_camera_named(name: str) -> object:
    import bpy

    bpy.ops.wm.read_homefile()  # the default scene: a cube in front of the camera
    camera = bpy.context.scene.camera
    camera.name = name
    return camera


def test_a_camera_capture_is_kept_in_kilns_cache_and_named_after_its_camera(runtime: ModuleType,
                                                                            tmp_path: Path) -> None:
    import bpy

    cache = tmp_path / "artist_cache"  # the cache folder the artist chose in the preferences
    runtime.start(ADDON_MODULE, journal_dir=tmp_path / "journal", cache_dir=cache)
    default_scene_with_camera_named("Camera.001")
    assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    (job,) = runtime.scheduler().views()
    assert job.label == "Camera: Camera.001", "the queue shows the camera, not a temp file path"
    (capture,) = job.spec.image_paths
    assert Path(capture).parent == cache / "captures", "in Kiln's cache, never the system temp folder"
    assert Path(capture).is_file() and Path(capture).name.startswith("camera_camera_001_")

    assert runtime.run_until_done(timeout=60)
    (obj,) = kiln_objects()
    assert obj.name == "draft_camera_camera_001_001"
    assert obj["kiln_prompt"] == "Camera: Camera.001"
    assert obj.asset_data.description == "Camera: Camera.001"


def test_a_capture_leaves_the_artists_render_sampling_as_it_was(runtime: ModuleType) -> None:
    import bpy

    default_scene_with_camera_named("Camera")
    scene = bpy.context.scene
    scene.display.render_aa = "16"
    scene.eevee.taa_render_samples = 128
    for engine in ("BLENDER_WORKBENCH", "EEVEE"):
        scene.kiln.capture_engine = engine
        assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    assert (scene.display.render_aa, scene.eevee.taa_render_samples) == ("16", 128)
    assert len(runtime.scheduler().views()) == 2
    assert all(Path(j.spec.image_paths[0]).is_file() for j in runtime.scheduler().views())


def test_a_promoted_camera_draft_keeps_its_title(runtime: ModuleType) -> None:
    import bpy

    default_scene_with_camera_named("Shot_A")
    assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    (draft,) = kiln_objects()
    bpy.ops.object.select_all(action="DESELECT")
    draft.select_set(True)
    bpy.context.view_layer.objects.active = draft
    assert bpy.ops.kiln.promote() == {"FINISHED"}
    promoted = runtime.scheduler().views()[-1]
    assert promoted.label == "Camera: Shot_A" and promoted.spec.batch == "gen_camera_shot_a_01"
