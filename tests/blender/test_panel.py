"""The artist's panel: every operator in real Blender on the local backend, bad inputs, what each
panel draws in each state (through a recording stand-in for UILayout), and no work on the main thread."""

from __future__ import annotations

import importlib
import math
import threading
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from conftest import ADDON_MODULE

SIDEBAR_PX = 280
"""The default sidebar width at UI scale 1: what every panel is drawn for here."""
PX_PER_CHAR = 6.2
"""An average character of Blender's UI font at scale 1 (5.7 measured on a Blender 4.3 screenshot, plus
a margin for capitals and digits)."""


class Recorder:
    """Stands in for bpy.types.UILayout: records what a draw() asks for, in order, and where.

    Every row, column, box or split is a Recorder of its own that shares the root's `calls`, so a test
    can tell how wide each widget is: a row or split shares its width between what it holds, a column
    or box gives each the whole width (`width_px`)."""

    def __init__(self, parent: Recorder | None = None, horizontal: bool = False, factor: float = 0.0) -> None:
        self.parent = parent
        self.calls: list[tuple[Any, ...]] = parent.calls if parent is not None else []
        self.widgets: list[Widget] = parent.widgets if parent is not None else []
        self.children: list[Any] = []
        self.horizontal, self.factor = horizontal, factor
        self.enabled = True
        self.alert = False
        self.use_property_split = False
        self.use_property_decorate = True

    def _child(self, horizontal: bool, factor: float = 0.0) -> Recorder:
        child = Recorder(self, horizontal, factor)
        self.children.append(child)
        return child

    def row(self, *args: Any, **kwargs: Any) -> Recorder:
        return self._child(True)

    def split(self, *args: Any, factor: float = 0.0, **kwargs: Any) -> Recorder:
        return self._child(True, factor)

    def column(self, *args: Any, **kwargs: Any) -> Recorder:
        return self._child(False)

    box = grid_flow = column

    def _widget(self, kind: str, name: str, kwargs: dict[str, Any]) -> Widget:
        widget = Widget(kind, name, kwargs.get("text"), self, kwargs)
        self.children.append(widget)
        self.widgets.append(widget)
        return widget

    def prop(self, data: Any, name: str, **kwargs: Any) -> None:
        self.calls.append(("prop", name))
        self._widget("prop", name, {**kwargs, "data": data})

    def operator(self, idname: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("operator", idname, kwargs.get("text")))
        self._widget("operator", idname, kwargs)
        return SimpleNamespace()

    def label(self, text: str = "", **kwargs: Any) -> None:
        self.calls.append(("label", text))
        self._widget("label", "", {**kwargs, "text": text})

    def progress(self, **kwargs: Any) -> None:
        self.calls.append(("progress", kwargs.get("text")))

    def template_list(self, list_type: str, list_id: str, data: Any, prop: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("template_list", list_type, prop))
        self._widget("template_list", prop, {"text": ""})

    def template_icon(self, **kwargs: Any) -> None:
        self.calls.append(("template_icon",))

    def separator(self, **kwargs: Any) -> None:
        pass

    def names(self, kind: str) -> list[Any]:
        return [call[1] for call in self.calls if call[0] == kind]

    def labels(self) -> str:
        """Every label's text; a sentence wrapped onto several lines reads as the sentence again."""
        return " ".join(self.names("label"))

    def is_enabled(self) -> bool:
        return self.enabled and (self.parent is None or self.parent.is_enabled())

    def width_px(self, child: Any) -> float:
        """How wide `child` (a widget or layout inside this one) is drawn."""
        width = self.parent.width_px(self) if self.parent is not None else float(SIDEBAR_PX)
        if not self.horizontal:
            return width
        count = len(self.children)
        if self.factor and count > 1:
            return width * (self.factor if self.children[0] is child else (1 - self.factor) / (count - 1))
        return width / max(count, 1)

    def widget(self, kind: str, name: str) -> Widget:
        return next(w for w in self.widgets if (w.kind, w.name) == (kind, name))


class Widget:
    """One prop, operator or label a draw() placed, with the layout it sits in."""

    def __init__(self, kind: str, name: str, text: str | None, layout: Recorder, kwargs: dict[str, Any]) -> None:
        self.kind, self.name, self.text, self.layout, self.kwargs = kind, name, text, layout, kwargs

    @property
    def width_px(self) -> float:
        return self.layout.width_px(self)

    @property
    def enabled(self) -> bool:
        return self.layout.is_enabled()

    def shown_text(self) -> str:
        """What Blender writes on (or beside) the widget: the text given, else the RNA name."""
        import bpy

        if self.text is not None:
            return self.text
        if self.kind == "operator":
            module, name = self.name.split(".")
            return str(getattr(getattr(bpy.ops, module), name).get_rna_type().name)
        if self.kind == "prop":
            return str(self.kwargs["data"].bl_rna.properties[self.name].name)
        return ""


def draw(panel_name: str) -> Recorder:
    """A panel drawn as Blender would in the default sidebar (context.region is None in the bpy module,
    so the panel assumes that width too)."""
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
    draft = draw("KILN_PT_generate")
    assert "Balance" not in draft.labels(), "Local charges no credits: no balance, nothing to refresh"
    assert "kiln.refresh_balance" not in draft.names("operator")
    assert draft.names("prop")[:3] == ["mode", "backend", "prompt"]
    assert {"kiln.generate", "kiln.generate_from_camera", "kiln.batch_images"} <= set(draft.names("operator"))
    assert "target" not in draft.names("prop")
    assert "Queues 1 job per press, no credits" in draft.labels(), "Draft says what a press costs too"
    settings.mode = "PRODUCTION"
    settings.options = 3
    production = draw("KILN_PT_generate")
    assert {"target", "face_budget", "texture_size", "finish_preset"} <= set(production.names("prop"))
    assert "Queues 3 jobs per press, no credits" in production.labels()


def test_batch_panel_lists_and_their_own_buttons(kiln: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.batch_base = "sci-fi panel"
    for text in ("with vents", "with warning lights"):
        settings.variations.add().text = text
    settings.options = 2
    panel = draw("KILN_PT_batch")
    order = [c[:3] for c in panel.calls if c[0] in ("template_list", "operator") and c[1] != "kiln.list_edit"]
    assert order == [("template_list", "KILN_UL_text_items", "variations"),
                     ("operator", "kiln.batch_prompts", "Queue 4 jobs \u00b7 no credits"),
                     ("template_list", "KILN_UL_text_items", "parts"),
                     ("operator", "kiln.generate_parts", "Generate 0 Parts \u00b7 no credits")], \
        "each list has its button right under it; the Parts list is not between Variations and Queue"
    assert "Sends \u201csci-fi panel with vents\u201d and 1 more" in panel.labels()


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
        # The landing result leaves the artist's active object alone, and a hidden active draft counts as
        # clicked in the Outliner: make nothing active either.
        bpy.context.view_layer.objects.active = None
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


def test_two_captures_of_one_camera_are_not_options_of_each_other(runtime: ModuleType) -> None:
    """Both are titled "Camera: Camera", but each is its own request (its own captured image): keeping
    one must not reject the other, and the button says there is nothing to choose between."""
    import bpy

    bpy.ops.wm.read_homefile()  # the default scene: a cube in front of the camera
    for _ in range(2):
        assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
        assert runtime.run_until_done(timeout=60)
    first, second = sorted(kiln_objects(), key=lambda o: o.name)
    assert first["kiln_prompt"] == second["kiln_prompt"] == "Camera: Camera"
    bpy.context.view_layer.objects.active = first
    with pytest.raises(RuntimeError, match="no other option to reject"):
        bpy.ops.kiln.keep_option()
    assert "Rejected" not in bpy.data.collections and not second.get("kiln_rejected")


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
