"""The artist's panel: every operator in real Blender on the local backend, bad inputs, what each
panel draws in each state (through a recording stand-in for UILayout), and no work on the main thread."""

from __future__ import annotations

import importlib
import math
import threading
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from conftest import ADDON_MODULE


class Recorder:
    """Stands in for bpy.types.UILayout: records what a draw() asks for, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.enabled = True
        self.alert = False

    def _same(self, *args: Any, **kwargs: Any) -> Recorder:
        return self

    row = column = box = split = grid_flow = _same

    def prop(self, data: Any, name: str, **kwargs: Any) -> None:
        self.calls.append(("prop", name))

    def operator(self, idname: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("operator", idname, kwargs.get("text")))
        return SimpleNamespace()

    def label(self, text: str = "", **kwargs: Any) -> None:
        self.calls.append(("label", text))

    def progress(self, **kwargs: Any) -> None:
        self.calls.append(("progress", kwargs.get("text")))

    def template_list(self, list_type: str, list_id: str, data: Any, prop: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("template_list", list_type, prop))

    def template_icon(self, **kwargs: Any) -> None:
        self.calls.append(("template_icon",))

    def separator(self, **kwargs: Any) -> None:
        pass

    def names(self, kind: str) -> list[Any]:
        return [call[1] for call in self.calls if call[0] == kind]

    def labels(self) -> str:
        return "\n".join(self.names("label"))


def draw(panel_name: str) -> Recorder:
    import bpy

    recorder = Recorder()
    getattr(bpy.types, panel_name).draw(SimpleNamespace(layout=recorder), bpy.context)
    return recorder


def kiln_objects() -> list:
    import bpy

    return [o for o in bpy.data.objects if o.get("kiln_job_id")]


# ------------------------------------------------------------------------------------------ drawing
def test_generate_panel_in_draft_and_production(runtime: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode = "DRAFT"
    assert "Balance: press refresh" in draw("KILN_PT_generate").labels()
    assert bpy.ops.kiln.refresh_balance() == {"FINISHED"}
    deadline = time.monotonic() + 5
    while "local" not in runtime.scheduler().balances and time.monotonic() < deadline:
        time.sleep(0.01)
    draft = draw("KILN_PT_generate")
    assert "Balance: no credits needed" in draft.labels()
    assert draft.names("prop")[:3] == ["mode", "backend", "prompt"]
    assert "kiln.refresh_balance" in draft.names("operator")
    assert {"kiln.generate", "kiln.generate_from_camera", "kiln.batch_images"} <= set(draft.names("operator"))
    assert "target" not in draft.names("prop") and "Queues" not in draft.labels()
    settings.mode = "PRODUCTION"
    settings.options = 3
    production = draw("KILN_PT_generate")
    assert {"target", "face_budget", "texture_size", "finish_preset"} <= set(production.names("prop"))
    assert "Queues 3 job(s), ~0 credits" in production.labels()


def test_batch_panel_lists_and_queue_button(kiln: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    for text in ("with vents", "with warning lights"):
        settings.variations.add().text = text
    settings.options = 2
    panel = draw("KILN_PT_batch")
    assert ("template_list", "KILN_UL_text_items", "variations") in panel.calls
    assert ("template_list", "KILN_UL_text_items", "parts") in panel.calls
    assert ("operator", "kiln.batch_prompts", "Queue 4 Job(s), ~0 credits") in panel.calls


def test_queue_panel_with_jobs_and_while_paused(runtime: ModuleType) -> None:
    import bpy

    empty = draw("KILN_PT_queue")
    assert "No jobs yet" in empty.labels() or "0 active" in empty.labels()
    runtime.scheduler().pause_production()
    try:
        bpy.context.scene.kiln.mode = "PRODUCTION"
        bpy.ops.kiln.generate(prompt="crate")
        runtime.pump()
        paused = draw("KILN_PT_queue")
        assert "kiln.resume_production" in paused.names("operator")
        assert ("template_list", "KILN_UL_jobs", "kiln_jobs") in paused.calls
        assert "1 active · 0 done · 0 failed" in paused.labels()
        rows = bpy.context.window_manager.kiln_jobs
        assert (rows[0].title, rows[0].icon, rows[0].can_cancel) == ("crate", "TIME", True)
    finally:
        runtime.scheduler().resume_production()
    assert runtime.run_until_done(timeout=30)
    done = draw("KILN_PT_queue")
    assert "kiln.pause_production" in done.names("operator") and "0 active · 1 done" in done.labels()


def test_result_panel_for_a_selected_kiln_object(runtime: ModuleType) -> None:
    import bpy

    assert not bpy.types.KILN_PT_result.poll(bpy.context)
    bpy.ops.kiln.generate(prompt="stone pillar")
    assert runtime.run_until_done(timeout=30)
    (obj,) = kiln_objects()
    bpy.context.view_layer.objects.active = obj
    assert bpy.types.KILN_PT_result.poll(bpy.context)
    panel = draw("KILN_PT_result")
    assert ("template_icon",) in panel.calls
    assert "Prompt: stone pillar" in panel.labels() and "Backend: local" in panel.labels()
    assert {"kiln.promote", "kiln.keep_option", "kiln.finish", "kiln.export_fbx"} <= set(panel.names("operator"))


# ------------------------------------------------------------------------------------------ operators
def test_batch_prompts_queues_variations_times_options(runtime: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode = "PRODUCTION"
    settings.finish_preset = "keep"
    settings.batch_base = "sci-fi panel"
    for text in ("with vents", "with warning lights", "with data port"):
        settings.variations.add().text = text
    settings.options = 2
    assert bpy.ops.kiln.batch_prompts() == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    names = sorted(o.name for o in bpy.data.collections["env_sci_fi_panel_01"].objects)
    assert names == ["env_sci_fi_panel_01_001", "env_sci_fi_panel_01_001_v2", "env_sci_fi_panel_01_002",
                     "env_sci_fi_panel_01_002_v2", "env_sci_fi_panel_01_003", "env_sci_fi_panel_01_003_v2"]
    assert bpy.data.objects["env_sci_fi_panel_01_002"]["kiln_prompt"] == "sci-fi panel with warning lights"


def test_batch_prompts_needs_variations(kiln: ModuleType) -> None:
    import bpy

    with pytest.raises(RuntimeError, match="Add at least one variation"):
        bpy.ops.kiln.batch_prompts()


def test_generate_parts_assembles_under_one_parent_in_order(runtime: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    for text in ("table", "crate", "lantern"):
        settings.parts.add().text = text
    assert bpy.ops.kiln.generate_parts() == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    group = next(o for o in bpy.data.objects if o.get("kiln_parts_group"))
    children = sorted(group.children, key=lambda c: c.location.x)
    assert [c["kiln_prompt"] for c in children] == ["table", "crate", "lantern"]


def test_generate_from_camera_and_its_errors(runtime: ModuleType) -> None:
    import bpy

    bpy.ops.wm.read_homefile()  # the default scene: a cube in front of the camera
    render = bpy.context.scene.render
    before = (render.engine, render.resolution_x, render.resolution_y, render.filepath)
    assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    assert (render.engine, render.resolution_x, render.resolution_y, render.filepath) == before, \
        "the artist's render settings are restored"
    assert runtime.run_until_done(timeout=60)
    (obj,) = kiln_objects()
    assert obj["kiln_kind"] == "image" and obj["kiln_source_images"].endswith(".png")
    camera = bpy.context.scene.camera
    camera.rotation_euler = (0.0, math.pi, 0.0)  # looking up at the empty sky
    with pytest.raises(RuntimeError, match="sees nothing"):
        bpy.ops.kiln.generate_from_camera()
    bpy.context.scene.camera = None
    with pytest.raises(RuntimeError, match="no active camera"):
        bpy.ops.kiln.generate_from_camera()
    bpy.ops.wm.read_homefile(use_empty=True)


def test_promote_replaces_the_draft_with_a_production_result(runtime: ModuleType) -> None:
    import bpy

    bpy.context.scene.kiln.seed = 4242
    bpy.ops.kiln.generate(prompt="wooden barrel")
    assert runtime.run_until_done(timeout=30)
    (draft,) = kiln_objects()
    draft.location.x = 3.0
    draft.select_set(True)
    assert bpy.ops.kiln.promote() == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    promoted = next(o for o in kiln_objects() if o["kiln_mode"] == "production")
    assert promoted["kiln_seed"] == 4242 and promoted["kiln_prompt"] == "wooden barrel"
    # It takes the draft's place (as a finished LOD group, its world position is what counts).
    assert promoted.matrix_world.translation.x == pytest.approx(3.0)
    assert promoted["kiln_promoted_from"] == draft.name
    assert draft.hide_get() and draft.users_collection[0].name == "Kiln Drafts"
    with pytest.raises(RuntimeError, match="Select one or more Kiln drafts"):
        for obj in bpy.context.selected_objects:
            obj.select_set(False)
        bpy.ops.kiln.promote()


def test_keep_option_moves_the_others_to_rejected(runtime: ModuleType) -> None:
    import bpy

    bpy.context.scene.kiln.options = 3
    bpy.ops.kiln.generate(prompt="mossy rock")
    assert runtime.run_until_done(timeout=30)
    options = sorted(kiln_objects(), key=lambda o: o["kiln_option"])
    bpy.context.view_layer.objects.active = options[1]
    assert bpy.ops.kiln.keep_option() == {"FINISHED"}
    rejected = bpy.data.collections["Rejected"]
    assert {o.name for o in rejected.objects} == {options[0].name, options[2].name}
    assert bpy.context.view_layer.layer_collection.children["Rejected"].exclude
    assert options[1].users_collection[0].name == "Kiln Drafts"


def test_queue_control_operators(runtime: ModuleType) -> None:
    import bpy

    bpy.context.scene.kiln.mode = "PRODUCTION"
    assert bpy.ops.kiln.pause_production() == {"FINISHED"}
    bpy.ops.kiln.generate(prompt="crate")
    (job,) = runtime.scheduler().views()[-1:]
    assert job.state.value == "queued"
    assert bpy.ops.kiln.cancel_job(job_id=job.job_id) == {"FINISHED"}
    assert runtime.scheduler().view(job.job_id).state.value == "cancelled"
    assert job.state.value == "queued", "a view is a snapshot: the engine's later changes do not reach it"
    assert bpy.ops.kiln.retry_job(job_id=job.job_id) == {"FINISHED"}
    again = runtime.scheduler().views()[-1]
    assert again.spec == job.spec and again.state.value == "queued"
    assert bpy.ops.kiln.resume_production() == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    assert runtime.scheduler().view(again.job_id).state.value == "finished"
    with pytest.raises(RuntimeError, match="no longer in the queue"):
        bpy.ops.kiln.cancel_job(job_id="nope")
    assert bpy.ops.kiln.clear_finished() == {"FINISHED"}
    assert runtime.scheduler().views() == []


def test_finish_and_export_the_selection(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    with pytest.raises(RuntimeError, match="Select one or more Kiln results"):
        bpy.ops.kiln.finish()
    bpy.ops.kiln.generate(prompt="wooden crate")
    assert runtime.run_until_done(timeout=30)
    (crate,) = kiln_objects()
    crate.select_set(True)
    bpy.context.scene.kiln.finish_preset = "game"
    assert bpy.ops.kiln.finish() == {"FINISHED"}
    assert crate.name.endswith("_LOD0") and crate.parent is not None
    crate.select_set(True)
    assert bpy.ops.kiln.export_fbx(directory=str(tmp_path), per="asset", preset="unity") == {"FINISHED"}
    assert [p.name for p in tmp_path.glob("*.fbx")] == [f"{crate.parent.name}.fbx"]


def test_no_generation_or_network_call_runs_on_the_main_thread(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    local = importlib.import_module(f"{ADDON_MODULE}.addon.backends.local")
    calls: list[tuple[str, str]] = []

    class RecordingLocal(local.LocalBackend):  # type: ignore[misc,name-defined]
        def submit(self, spec: Any, client_ref: str) -> str:
            calls.append(("submit", threading.current_thread().name))
            return str(super().submit(spec, client_ref))

        def watch(self, task_ids: Any, timeout_s: float) -> Any:
            calls.append(("watch", threading.current_thread().name))
            return super().watch(task_ids, timeout_s)

        def download(self, task_id: str, dest_dir: Path) -> Any:
            calls.append(("download", threading.current_thread().name))
            return super().download(task_id, dest_dir)

    runtime.start(ADDON_MODULE, backends=[RecordingLocal(scratch_dir=tmp_path / "scratch")], journal_dir=tmp_path)
    bpy.ops.kiln.generate(prompt="crate")
    assert runtime.run_until_done(timeout=30)
    assert {kind for kind, _ in calls} == {"submit", "watch", "download"}
    main = threading.main_thread().name
    assert [call for call in calls if call[1] == main] == []


def test_offline_greys_out_remote_generation_and_says_why(kiln: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    bpy.context.preferences.system.use_online_access = False
    settings.backend = "tripo"
    assert "Online access is off: only Local runs" in draw("KILN_PT_generate").labels()
    assert not bpy.ops.kiln.generate.poll() and not bpy.ops.kiln.batch_images.poll()
    assert bpy.ops.kiln.clear_finished.poll(), "queue controls still work offline"
    settings.backend = "local"
    assert "Online access is off" not in draw("KILN_PT_generate").labels()
    assert bpy.ops.kiln.generate.poll(), "the local backend works offline"


def test_new_scenes_take_the_default_mode_and_target(kiln: ModuleType) -> None:
    import bpy

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.default_mode, prefs.default_target = "PRODUCTION", "FILM"
    try:
        bpy.ops.wm.read_homefile(use_empty=True)
        settings = bpy.context.scene.kiln
        assert (settings.mode, settings.target) == ("PRODUCTION", "FILM")
        settings.mode = "DRAFT"
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(bpy.app.tempdir or "/tmp") / "kiln_defaults.blend"))
        bpy.ops.wm.open_mainfile(filepath=str(Path(bpy.app.tempdir or "/tmp") / "kiln_defaults.blend"))
        assert bpy.context.scene.kiln.mode == "DRAFT", "an artist's choice in a saved file is kept"
    finally:
        prefs.default_mode, prefs.default_target = "DRAFT", "GAME"
        bpy.ops.wm.read_homefile(use_empty=True)
