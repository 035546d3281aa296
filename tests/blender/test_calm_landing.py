"""Results never interrupt: a landing result leaves the artist's mode, selection and active object alone.

Blender's glTF importer switches Edit Mode to Object Mode and selects and activates what it imported;
the artist must not feel any of that as Kiln."""

from __future__ import annotations

import importlib
import time
from types import ModuleType

from conftest import ADDON_MODULE


def drafts() -> list[str]:
    import bpy

    collection = bpy.data.collections.get("Kiln Drafts")
    return sorted(o.name for o in collection.objects) if collection else []


def state() -> tuple[str, str | None, list[str]]:
    """What the artist sees: mode, active object, selected objects."""
    import bpy

    view_layer = bpy.context.view_layer
    active = view_layer.objects.active
    return (bpy.context.mode, active.name if active else None,
            sorted(o.name for o in view_layer.objects if o.select_get()))


def add_cube(name: str, x: float) -> object:
    import bpy

    bpy.ops.mesh.primitive_cube_add(size=0.5, location=(x, 4.0, 0.0))
    obj = bpy.context.view_layer.objects.active
    obj.name = name
    return obj


def wait_until_ready(runtime: ModuleType, prompt: str, timeout: float = 30.0) -> object:
    """Pump as the UI timer does until the job's result is downloaded and waiting to land."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runtime.pump()
        (job,) = [j for j in runtime.scheduler().views() if j.spec.prompt == prompt]
        if job.state.value not in ("queued", "submitting", "running", "downloading"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"'{prompt}' never became ready")


def test_a_draft_waits_while_the_artist_is_in_edit_mode_and_lands_once_they_leave(runtime: ModuleType) -> None:
    import bpy

    cube = add_cube("Artist_Cube", 0.0)
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="DESELECT")  # an edit in progress: nothing selected in the mesh
    before = state()
    assert before == ("EDIT_MESH", "Artist_Cube", ["Artist_Cube"])

    assert bpy.ops.kiln.generate(prompt="wooden crate") == {"FINISHED"}
    job = wait_until_ready(runtime, "wooden crate")
    for _ in range(5):  # the UI timer keeps firing while the artist edits
        runtime.pump()
    assert job.state.value == "ready", "the result waits, downloaded, for the artist to leave Edit Mode"
    assert drafts() == []
    assert state() == before
    assert bpy.context.edit_object == cube

    bpy.ops.object.mode_set(mode="OBJECT")  # the artist leaves Edit Mode
    left = state()
    assert runtime.run_until_done(timeout=30)
    assert drafts() == ["draft_wooden_crate_001"]
    assert state() == left == ("OBJECT", "Artist_Cube", ["Artist_Cube"])


def test_a_result_forced_in_during_edit_mode_leaves_the_artist_in_edit_mode(runtime: ModuleType) -> None:
    """A re-import (or a resume) lands outside the pump's wait: the importer's mode switch is undone."""
    import bpy

    assert bpy.ops.kiln.generate(prompt="mossy rock") == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    (job,) = [j for j in runtime.scheduler().views() if j.spec.prompt == "mossy rock"]
    bpy.data.objects.remove(bpy.data.objects["draft_mossy_rock_001"])

    cube = add_cube("Artist_Cube", 0.0)
    bpy.ops.object.mode_set(mode="EDIT")
    before = state()
    importer = importlib.import_module(f"{ADDON_MODULE}.addon.blender.importer")
    importer.import_result(runtime.scheduler().jobs[job.job_id])
    assert "draft_mossy_rock_001" in bpy.data.objects, "the result landed"
    assert state() == before == ("EDIT_MESH", "Artist_Cube", ["Artist_Cube"])
    assert bpy.context.edit_object == cube


def test_a_landing_result_keeps_the_selection_and_active_object_in_object_mode(runtime: ModuleType) -> None:
    import bpy

    first, second, third = add_cube("First", 0.0), add_cube("Second", 2.0), add_cube("Third", 4.0)
    bpy.ops.object.select_all(action="DESELECT")
    first.select_set(True)
    third.select_set(True)
    bpy.context.view_layer.objects.active = second  # active but not selected: Blender allows it
    before = state()
    assert before == ("OBJECT", "Second", ["First", "Third"])

    bpy.context.scene.kiln.options = 2
    assert bpy.ops.kiln.generate(prompt="barrel") == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    assert drafts() == ["draft_barrel_001", "draft_barrel_001_v2"]
    assert state() == before


def test_with_nothing_selected_nothing_is_selected_after_a_result_lands(runtime: ModuleType) -> None:
    import bpy

    add_cube("Lonely", 0.0)
    bpy.ops.object.select_all(action="DESELECT")
    bpy.context.view_layer.objects.active = None
    assert bpy.ops.kiln.generate(prompt="crate") == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    assert drafts() == ["draft_crate_001"]
    assert state() == ("OBJECT", None, [])
