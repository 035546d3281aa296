"""The panel as an artist sees it at the default sidebar width (about 280 px at UI scale 1): nothing cut
with "…", text fields labelled with an example inside, sentences wrapped whole, every grey button
saying why (in its tooltip and in the panel), what a press costs in Draft too, and preferences grouped
so each backend's fields sit under its own name. Panels are drawn through the recording stand-in for
UILayout (test_panel.Recorder), which knows how wide each widget is drawn."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from conftest import ADDON_MODULE
from test_panel import PX_PER_CHAR, SIDEBAR_PX, Recorder, Widget, draw, kiln_objects

from sandbox.tripo import SandboxState, TripoSandbox

KEY = "tsk_layout_test_key"
LABEL_MARGIN_PX = 60
"""A panel's borders and the category tabs beside it (measured on Blender 4.3 at the default width: 37
characters of a plain label show, 34 after an icon)."""
ICON_PX = 22
INLINE_LABEL_SHARE = 0.4
"""A field with its label inside the same widget gives the label about 40 % of the width."""


def fits(widget: Widget) -> str | None:
    """Why Blender would cut `widget`'s text at its drawn width, or None when it reads whole."""
    text = widget.shown_text()
    if not text or widget.kwargs.get("expand") or widget.kind == "template_list":
        return None
    # The borders and tabs come off the panel once; what is left is shared as the layout shares it.
    width = widget.width_px * (SIDEBAR_PX - LABEL_MARGIN_PX) / SIDEBAR_PX
    room = width - (ICON_PX if widget.kwargs.get("icon", "NONE") != "NONE" else 0)
    if widget.kind == "prop":
        room = width * INLINE_LABEL_SHARE  # the value takes the rest
    if len(text) * PX_PER_CHAR > room:
        return f"{widget.kind} {widget.name or ''} '{text}' needs {len(text) * PX_PER_CHAR:.0f} px, has {room:.0f}"
    return None


def cut(recorder: Recorder) -> list[str]:
    return [problem for problem in map(fits, recorder.widgets) if problem is not None]


@pytest.fixture
def no_tripo_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Tripo selected, with no key anywhere (environment and preferences)."""
    import bpy

    monkeypatch.delenv("KILN_TRIPO_API_KEY", raising=False)
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    saved, prefs.tripo_api_key = prefs.tripo_api_key, ""
    bpy.context.scene.kiln.backend = "tripo"
    yield prefs
    prefs.tripo_api_key = saved


@pytest.fixture
def tripo(monkeypatch: pytest.MonkeyPatch, online: None) -> Iterator[TripoSandbox]:
    """Tripo selected, reachable over real HTTP on 127.0.0.1 with a valid key from the environment."""
    import bpy

    with TripoSandbox(SandboxState(latency_s={"draft": 30.0, "textured": 30.0}, valid_keys={KEY})) as server:
        monkeypatch.setenv("KILN_TRIPO_BASE_URL", server.url)
        monkeypatch.setenv("KILN_TRIPO_API_KEY", KEY)
        bpy.context.scene.kiln.backend = "tripo"
        yield server


def fill_batch() -> Any:
    import bpy

    settings = bpy.context.scene.kiln
    settings.batch_base = "sci-fi crate with heavy industrial bolts"
    for text in ("with vents", "with warning lights", "rusty and heavily damaged by years at sea"):
        settings.variations.add().text = text
    for text in ("lid", "body"):
        settings.parts.add().text = text
    settings.start_in_hours = 1.5
    return settings


# ------------------------------------------------------------------------------------------ nothing is cut
@pytest.mark.parametrize("mode", ["DRAFT", "PRODUCTION"])
def test_every_panel_reads_whole_at_the_default_sidebar_width(runtime: ModuleType, mode: str,
                                                              no_tripo_key: Any) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode = mode
    settings.backend = "local"
    settings.options = 2
    assert bpy.ops.kiln.generate(prompt="a very long prompt about a weathered stone pillar") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    fill_batch()
    obj = kiln_objects()[0]
    obj["kiln_warnings"] = "Remesh failed: the mesh has non-manifold edges, so the face budget was not met"
    bpy.context.view_layer.objects.active = obj
    for backend in ("local", "tripo"):
        settings.backend = backend
        for panel in ("KILN_PT_generate", "KILN_PT_negative", "KILN_PT_batch", "KILN_PT_batch_settings",
                      "KILN_PT_result"):
            recorder = draw(panel)
            assert recorder.widgets, f"{panel} drew nothing"
            assert cut(recorder) == [], f"{panel} on {backend} in {mode}"


def test_text_fields_have_a_label_above_and_an_example_inside(kiln: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode = "PRODUCTION"
    fields = {"KILN_PT_generate": ("prompt", "Prompt"), "KILN_PT_batch": ("batch_base", "Base Prompt"),
              "KILN_PT_batch_settings": ("batch_name", "Batch Name"), "KILN_PT_negative": ("negative_prompt", "")}
    for panel, (prop, label) in fields.items():
        recorder = draw(panel)
        field = recorder.widget("prop", prop)
        assert field.text == "" and field.kwargs.get("placeholder"), f"{prop}: full width, with an example"
        if label:
            before = recorder.calls[recorder.calls.index(("prop", prop)) - 1]
            assert before == ("label", label), f"{prop} has its label on the row above"
    generate = draw("KILN_PT_generate")
    for prop, label in (("face_budget", "Face Budget"), ("texture_size", "Texture Size")):
        assert generate.widget("prop", prop).text == ""
        assert generate.calls[generate.calls.index(("prop", prop)) - 1] == ("label", label)


def test_a_long_warning_wraps_into_whole_lines(runtime: ModuleType) -> None:
    import bpy

    bpy.ops.kiln.generate(prompt="stone pillar")
    assert runtime.run_until_done(timeout=30)
    (obj,) = kiln_objects()
    warning = ("LOD2 could not be made: the decimate step left 12 faces, below the minimum of 40 that the "
               "game target asks for; LOD1 is kept")
    obj["kiln_warnings"] = warning
    bpy.context.view_layer.objects.active = obj
    panel = draw("KILN_PT_result")
    lines = [w.text for w in panel.widgets if w.kind == "label" and w.text and w.text.split()[0] in warning]
    start = next(i for i, line in enumerate(lines) if warning.startswith(line))
    wrapped = lines[start:start + len(lines)]
    assert len(wrapped) > 1, "a long warning takes several lines"
    assert " ".join(wrapped).startswith(warning), "no word is lost or cut"
    assert cut(panel) == []


def test_start_in_has_a_unit_and_a_clock_time(kiln: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    assert "Starts now" in draw("KILN_PT_batch_settings").labels()
    settings.start_in_hours = 1.5
    labels = draw("KILN_PT_batch_settings").labels()
    assert re.search(r"Starts in 1 h 30 min \(at \d\d:\d\d\)", labels), labels
    assert draw("KILN_PT_batch_settings").widget("prop", "start_in_hours").shown_text() == "Start In (h)"


def test_capture_settings_sit_beside_generate_from_camera(kiln: ModuleType) -> None:
    generate = draw("KILN_PT_generate")
    operators_and_props = [c[1] for c in generate.calls if c[0] in ("operator", "prop")]
    camera = operators_and_props.index("kiln.generate_from_camera")
    assert operators_and_props[camera + 1] == "capture_engine"
    assert "capture_engine" not in draw("KILN_PT_negative").names("prop")


# ------------------------------------------------------------------------------------------ grey buttons say why
def disabled_reason(recorder: Recorder, operator: str) -> bool:
    return not recorder.widget("operator", operator).enabled


def test_an_empty_prompt_greys_generate_with_the_reason(runtime: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    panel = draw("KILN_PT_generate")
    assert disabled_reason(panel, "kiln.generate") and "Generate: type a prompt first" in panel.labels()
    tooltip = bpy.types.KILN_OT_generate.description(bpy.context, SimpleNamespace(prompt=""))
    assert "Type a prompt first" in tooltip, "the grey button's tooltip says why"
    with pytest.raises(RuntimeError, match="Type a prompt first"):
        bpy.ops.kiln.generate()  # a script still gets the operator's own check
    settings.prompt = "crate " * 200  # known too long before the click, as the operator would say after it
    panel = draw("KILN_PT_generate")
    assert disabled_reason(panel, "kiln.generate")
    assert "Generate: the prompt is 1199 characters long; the limit is 1024" in panel.labels()
    settings.prompt = "wooden crate"
    panel = draw("KILN_PT_generate")
    assert not disabled_reason(panel, "kiln.generate") and "Generate:" not in panel.labels()
    assert "Disabled" not in bpy.types.KILN_OT_generate.description(bpy.context, SimpleNamespace(prompt=""))


def test_a_missing_key_greys_every_generate_button_before_the_click(runtime: ModuleType, no_tripo_key: Any,
                                                                   online: None) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.prompt = "wooden crate"
    for text in ("lid", "body"):
        settings.parts.add().text = text
    for operator in ("generate", "generate_from_camera", "batch_images", "generate_parts"):
        assert not getattr(bpy.ops.kiln, operator).poll(), f"kiln.{operator} is grey without a key"
    with pytest.raises(RuntimeError, match="No Tripo API key"):
        bpy.ops.kiln.generate(prompt="crate")
    labels = draw("KILN_PT_generate").labels()
    assert "No Tripo API key: set it in Preferences" in labels and "Balance: no key" in labels
    assert "No Tripo API key" in draw("KILN_PT_batch").labels()
    no_tripo_key.tripo_api_key = KEY  # typed into the preferences: the buttons come back at once
    assert bpy.ops.kiln.generate.poll()
    assert "No Tripo API key" not in draw("KILN_PT_generate").labels()


def test_online_access_off_greys_remote_generation_with_the_reason(runtime: ModuleType) -> None:
    import bpy

    bpy.context.preferences.system.use_online_access = False
    bpy.context.scene.kiln.backend = "tripo"
    with pytest.raises(RuntimeError, match="online access is off"):
        bpy.ops.kiln.generate(prompt="crate")
    assert "Online access is off: only Local runs" in draw("KILN_PT_generate").labels()


def test_batch_buttons_say_why_they_are_grey(runtime: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    panel = draw("KILN_PT_batch")
    assert disabled_reason(panel, "kiln.batch_prompts") and disabled_reason(panel, "kiln.generate_parts")
    assert "Add at least one variation" in panel.labels() and "Add the parts to the list" in panel.labels()
    settings.variations.add().text = "with vents"
    with pytest.raises(RuntimeError, match="Type the base prompt"):
        bpy.ops.kiln.batch_prompts()
    assert "Type the base prompt" in draw("KILN_PT_batch").labels()
    settings.batch_base = "sci-fi crate"
    assert not disabled_reason(draw("KILN_PT_batch"), "kiln.batch_prompts")
    settings.variations.add().text = "with " + "vents " * 200
    with pytest.raises(RuntimeError, match="characters long"):
        bpy.ops.kiln.batch_prompts()
    assert disabled_reason(draw("KILN_PT_batch"), "kiln.batch_prompts")


def test_result_buttons_say_why_they_are_grey(runtime: ModuleType) -> None:
    import bpy

    bpy.ops.kiln.generate(prompt="mossy rock")
    assert runtime.run_until_done(timeout=30)
    (rock,) = kiln_objects()
    bpy.context.view_layer.objects.active = rock
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    panel = draw("KILN_PT_result")
    assert disabled_reason(panel, "kiln.promote") and disabled_reason(panel, "kiln.finish")
    assert disabled_reason(panel, "kiln.keep_option"), "a single option has nothing to choose between"
    labels = panel.labels()
    assert "Select one or more Kiln drafts" in labels and "Select one or more Kiln results" in labels
    assert "no other option" in labels
    for operator, message in (("promote", "Select one or more Kiln drafts"), ("finish", "Select one or more"),
                              ("export_fbx", "Select one or more"), ("keep_option", "no other option")):
        with pytest.raises(RuntimeError, match=message):
            getattr(bpy.ops.kiln, operator)()
    rock.select_set(True)
    panel = draw("KILN_PT_result")
    assert not disabled_reason(panel, "kiln.promote") and not disabled_reason(panel, "kiln.finish")


# ------------------------------------------------------------------------------------------ money and parts
def test_draft_shows_what_a_press_costs_and_local_shows_no_balance(runtime: ModuleType, tripo: TripoSandbox) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode, settings.options, settings.prompt = "DRAFT", 2, "stone pillar"
    shown = re.search(r"Queues 2 jobs per press, ~([\d.]+) credits", draw("KILN_PT_generate").labels())
    assert shown is not None, "Draft says its cost too"
    assert bpy.ops.kiln.generate() == {"FINISHED"}
    committed = sum(job.credits_estimated for job in runtime.scheduler().views())
    assert float(shown.group(1)) == committed > 0
    for job in runtime.scheduler().views():
        runtime.scheduler().cancel(job.job_id)
    settings.backend = "local"
    labels = draw("KILN_PT_generate").labels()
    assert "Balance" not in labels and "no credits" in labels


def test_parts_send_the_base_prompt_shown_above_them_never_the_main_prompt(runtime: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.prompt = "wooden barrel"  # the main prompt of another panel: not sent with the parts
    settings.batch_base = "sci-fi robot"
    for text in ("head", "torso"):
        settings.parts.add().text = text
    assert "Sends \u201csci-fi robot head\u201d and 1 more" in draw("KILN_PT_batch").labels()
    assert bpy.ops.kiln.generate_parts() == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    assert sorted(o["kiln_prompt"] for o in kiln_objects()) == ["sci-fi robot head", "sci-fi robot torso"]


# ------------------------------------------------------------------------------------------ preferences
def test_preferences_are_grouped_and_each_backend_field_sits_under_its_backend(kiln: ModuleType) -> None:
    import bpy

    registry = __import__(f"{ADDON_MODULE}.addon.backends.registry", fromlist=["BACKENDS"])
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    recorder = Recorder()
    type(prefs).draw(SimpleNamespace(layout=recorder), bpy.context)
    headings = [c[1] for c in recorder.calls if c[0] == "label" and c[1] in
                ("Backends", "Scheduling", "Storage", "Defaults for new scenes")]
    assert headings == ["Backends", "Scheduling", "Storage", "Defaults for new scenes"]
    calls = recorder.calls
    storage = calls.index(("label", "Storage"))
    assert calls[storage + 1] == ("prop", "cache_folder"), "the cache folder is filed under Storage"
    fields = {p: entry for entry in registry.BACKENDS
              for p in (entry.key_property, entry.url_property, f"{entry.name}_plan_concurrency" if
                        entry.needs_network else "") if p}
    drawn = [c[1] for c in calls if c[0] == "prop"
             and c[1].endswith(("_api_key", "_base_url", "_urls", "_plan_concurrency"))]
    assert set(drawn) == set(fields), "a field for every backend that exists, and none for one that does not"
    for prop in drawn:
        owner = fields[prop]
        before = calls[:calls.index(("prop", prop))]
        last_heading = next(c[1] for c in reversed(before) if c[0] == "label" and c[1] in
                            {e.label for e in registry.BACKENDS})
        assert last_heading == owner.label, f"{prop} sits under {owner.label}, not another heading"
    labels = recorder.labels()
    assert "only for a proxy or a self-hosted Tripo-compatible server" in labels
    assert "One URL per GPU box" in labels, "a pooled backend says how to list its servers"
    assert calls.index(("prop", "give_up_after_s")) < storage, "scheduling settings before storage"



def test_a_backends_plan_concurrency_reaches_the_engine(runtime: ModuleType) -> None:
    import bpy

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.tripo_plan_concurrency = 2
    try:
        assert runtime.scheduler().config.plan_concurrency == {"tripo": 2}
    finally:
        prefs.tripo_plan_concurrency = 0
    assert runtime.scheduler().config.plan_concurrency == {}


def test_the_batch_name_field_shows_the_name_the_batch_would_get(kiln: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.batch_base = "sci-fi crate"
    field = draw("KILN_PT_batch_settings").widget("prop", "batch_name")
    assert field.kwargs["placeholder"] == "empty: env_sci_fi_crate_01"
    bpy.data.collections.new("env_sci_fi_crate_01")
    field = draw("KILN_PT_batch_settings").widget("prop", "batch_name")
    assert field.kwargs["placeholder"] == "empty: env_sci_fi_crate_02", "a name already taken is not offered"
