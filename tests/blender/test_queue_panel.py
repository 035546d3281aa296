"""The Queue sub-panel as an artist reads it, in real Blender with the Tripo sandbox and the local engine:
counts that add up to the rows mid-batch, one icon per state, rows that never move, buttons that act
on their own row, a row click that selects its result, the spend of the batch and the session, and a
balance that refreshes itself after a paid job. Drawn through the recording stand-in for UILayout."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from conftest import ADDON_MODULE
from test_panel import Recorder, draw, kiln_objects
from test_panel_layout import cut

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_queue_panel_key_7"
ROW_PX = 225
"""One list row in Blender's default sidebar (280 px at UI scale 1), less the panel's margins and the
list's frame: measured on a screenshot of the real Blender 4.3 GUI."""
BUTTON_PX = 20
PADDING_PX = 4


class RowRecorder(Recorder):
    """Also keeps each button's properties (to see which job it acts on) and the icons drawn."""

    def __init__(self, parent: RowRecorder | None = None, horizontal: bool = False, factor: float = 0.0) -> None:
        super().__init__(parent, horizontal, factor)
        self.buttons: list[tuple[str, SimpleNamespace]] = parent.buttons if parent is not None else []
        self.icons: list[str] = parent.icons if parent is not None else []

    def _child(self, horizontal: bool, factor: float = 0.0) -> RowRecorder:
        child = RowRecorder(self, horizontal, factor)
        self.children.append(child)
        return child

    def operator(self, idname: str, **kwargs: Any) -> SimpleNamespace:
        super().operator(idname, **kwargs)
        properties = SimpleNamespace()
        self.buttons.append((idname, properties))
        self.icons.append(kwargs.get("icon", ""))
        return properties

    def label(self, text: str = "", **kwargs: Any) -> None:
        super().label(text=text, **kwargs)
        self.icons.append(kwargs.get("icon", ""))


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def rows() -> list[Any]:
    import bpy

    return list(bpy.context.window_manager.kiln_jobs)


def drawn(row: Any) -> RowRecorder:
    import bpy

    recorder = RowRecorder()
    bpy.types.KILN_UL_jobs.draw_item(None, bpy.context, recorder, None, row, 0, None, "")
    return recorder


def header() -> RowRecorder:
    import bpy

    recorder = RowRecorder()
    bpy.types.KILN_PT_queue.draw(SimpleNamespace(layout=recorder), bpy.context)
    return recorder


def counts(recorder: Recorder) -> dict[str, int]:
    """The header's "N state" labels."""
    states = {state.value for state in module("addon.presentation").RowState}
    found: dict[str, int] = {}
    for text in recorder.names("label"):
        number, _, state = text.partition(" ")
        if number.isdigit() and state in states:
            found[state] = int(number)
    return found


def spend(recorder: Recorder) -> list[str]:
    return [text for text in recorder.names("label") if text.endswith(" credits")]


def counts_texts(recorder: Recorder) -> list[str]:
    found = counts(recorder)
    return [text for text in recorder.names("label") if text.partition(" ")[2] in found]


def pump_until(runtime: ModuleType, done: Callable[[], bool], timeout: float = 60.0) -> None:
    """Pump (as Blender's timer would) until `done`; the timeout only stops a broken test from hanging."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the queue never reached the state this test waits for"
        runtime.pump()
        time.sleep(0.01)
    runtime.pump()


def states(runtime: ModuleType) -> list[str]:
    return [job.state.value for job in runtime.scheduler().views()]


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.3, "textured": 0.5})) as server:
        yield server


@pytest.fixture
def tripo(runtime: ModuleType, sandbox: TripoSandbox, online: None,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[TripoSandbox]:
    """Kiln set to generate on the Tripo sandbox, as an artist with a key would."""
    import bpy

    monkeypatch.setenv("KILN_TRIPO_API_KEY", KEY)
    monkeypatch.setenv("KILN_TRIPO_BASE_URL", sandbox.url)
    settings = bpy.context.scene.kiln
    settings.backend, settings.mode, settings.options = "tripo", "DRAFT", 1
    yield sandbox


def variations(base: str, *texts: str) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.batch_base = base
    settings.variations.clear()
    for text in texts:
        settings.variations.add().text = text


# ---------------------------------------------------------------------------------------- mid-batch
def test_mid_batch_counts_add_up_icons_differ_and_statuses_fit(runtime: ModuleType, tripo: TripoSandbox) -> None:
    import blf
    import bpy

    settings = bpy.context.scene.kiln
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    settings.backend = "local"
    assert bpy.ops.kiln.generate(prompt="zorblax") == {"FINISHED"}  # the local engine warns: no such noun
    assert runtime.run_until_done(timeout=60)

    settings.backend, settings.mode = "tripo", "PRODUCTION"
    tripo.state.latency_s["textured"] = 600.0  # these stay running for the rest of the test
    variations("sci-fi car with chrome trim", "with vents", "with warning lights")
    assert bpy.ops.kiln.batch_prompts() == {"FINISHED"}
    pump_until(runtime, lambda: states(runtime).count("running") == 2)
    runtime.scheduler().pause_production()
    settings.options = 2
    assert bpy.ops.kiln.generate(prompt="iron crate") == {"FINISHED"}
    runtime.pump()
    assert bpy.ops.kiln.cancel_job(job_id=rows()[-1].job_id) == {"FINISHED"}
    tripo.state.balance = 0.0
    settings.mode, settings.options = "DRAFT", 1
    assert bpy.ops.kiln.generate(prompt="oak barrel") == {"FINISHED"}
    pump_until(runtime, lambda: "failed" in states(runtime))

    shown = rows()
    panel = header()
    assert counts(panel) == {"running": 2, "queued": 1, "finished": 1, "with warnings": 1, "cancelled": 1,
                             "failed": 1}
    assert sum(counts(panel).values()) == len(shown) == 7, "the header adds up to the rows"
    by_title = {row.title: row for row in shown}
    assert {"with vents", "with warning lights"} <= set(by_title), "variations read by what tells them apart"
    assert by_title["oak barrel"].status == "no credits"
    assert by_title["zorblax"].status == "done, warnings"
    assert by_title["stone pillar"].status == "finished"
    assert by_title["stone pillar"].icon != by_title["zorblax"].icon, "a warning is not an all-clear"

    row_states = {module("addon.presentation").row_state(job) for job in runtime.scheduler().views()}
    assert len({row.icon for row in shown}) == len(row_states) == 6, "one icon per state, distinct"
    valid = bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys()
    assert set(module("addon.presentation").ICONS.values()) <= set(valid)
    for row in shown:
        assert row.icon in drawn(row).icons, "the row draws its state's icon"

    # Every status fits its column at the default sidebar width (11 px text at UI scale 1), so none is cut.
    blf.size(0, 11)
    column_px = ROW_PX * (1 - module("ui.queue").ROW_SPLIT) - PADDING_PX
    for row in shown:
        buttons = len(drawn(row).buttons) - 1  # all but the title
        assert blf.dimensions(0, row.status)[0] <= column_px - buttons * BUTTON_PX, row.status
    for text in counts_texts(panel):
        assert blf.dimensions(0, text)[0] <= ROW_PX / 2 - BUTTON_PX, text
    assert cut(panel) == [], "the header reads whole at the default sidebar width"
    presentation = module("addon.presentation")
    with_a_button = ["in ~59 min", "100% ~59 s", "uncertain", "kept (40 cr)", "cancelling", "downloading",
                     *presentation._SHORT_CODES.values(), *(short for _, short in presentation._SHORT_PHRASES)]
    for status in with_a_button:
        assert blf.dimensions(0, status)[0] <= column_px - BUTTON_PX, status


def test_rows_keep_their_place_while_jobs_move_on_and_new_ones_arrive(runtime: ModuleType) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode = "PRODUCTION"
    runtime.scheduler().pause_production()
    variations("wooden barrel", "with iron bands", "with moss", "charred")
    assert bpy.ops.kiln.batch_prompts() == {"FINISHED"}
    runtime.pump()
    before = [row.job_id for row in rows()]
    assert [row.title for row in rows()] == ["with iron bands", "with moss", "charred"]
    assert bpy.ops.kiln.cancel_job(job_id=before[1]) == {"FINISHED"}
    runtime.scheduler().resume_production()
    assert runtime.run_until_done(timeout=120)
    settings.mode = "DRAFT"
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    runtime.pump()
    after = [row.job_id for row in rows()]
    assert after[:3] == before, "nothing moved while jobs changed state; the new job is at the bottom"

    # A retry replaces its row in place: the new attempt is where the cancelled one was.
    assert bpy.ops.kiln.retry_job(job_id=before[1]) == {"FINISHED"}
    assert runtime.run_until_done(timeout=120)
    titles = [(row.title, row.attempt) for row in rows()]
    assert titles == [("with iron bands", 1), ("with moss", 2), ("charred", 1), ("stone pillar", 1)]


def test_each_rows_buttons_act_on_its_own_job(runtime: ModuleType) -> None:
    import bpy

    runtime.scheduler().pause_production()
    bpy.context.scene.kiln.mode = "PRODUCTION"
    variations("crate", "small", "large", "tall")
    assert bpy.ops.kiln.batch_prompts() == {"FINISHED"}
    runtime.pump()
    shown = rows()
    for row in shown:
        buttons = drawn(row).buttons
        assert {name for name, _ in buttons} == {"kiln.select_job", "kiln.cancel_job"}
        assert all(properties.job_id == row.job_id for _, properties in buttons)

    # Pressing the middle row's Cancel cancels that job, and only that one.
    (cancel,) = [p for name, p in drawn(shown[1]).buttons if name == "kiln.cancel_job"]
    assert bpy.ops.kiln.cancel_job(job_id=cancel.job_id) == {"FINISHED"}
    runtime.pump()
    assert [row.status for row in rows()] == ["paused", "cancelled", "paused"]
    (retry,) = [p for name, p in drawn(rows()[1]).buttons if name == "kiln.retry_job"]
    assert retry.job_id == shown[1].job_id
    runtime.scheduler().resume_production()


def test_queue_panel_with_jobs_and_while_paused(runtime: ModuleType) -> None:
    import bpy

    assert "No jobs yet" in draw("KILN_PT_queue").labels()
    runtime.scheduler().pause_production()
    try:
        bpy.context.scene.kiln.mode = "PRODUCTION"
        bpy.ops.kiln.generate(prompt="crate")
        runtime.pump()
        paused = header()
        assert "kiln.resume_production" in paused.names("operator")
        assert ("template_list", "KILN_UL_jobs", "kiln_jobs") in paused.calls
        assert counts(paused) == {"queued": 1}
        (row,) = rows()
        assert (row.title, row.icon, row.can_cancel, row.status) == ("crate", "TIME", True, "paused")
        tooltip = bpy.types.KILN_OT_select_job.description(bpy.context, SimpleNamespace(job_id=row.job_id))
        assert "queued: production is paused; Resume sends it" in tooltip
    finally:
        runtime.scheduler().resume_production()
    assert runtime.run_until_done(timeout=60)
    done = header()
    assert "kiln.pause_production" in done.names("operator") and counts(done) == {"finished": 1}
    assert not spend(done), "the local engine is free"


# ---------------------------------------------------------------------------------------- selecting
def test_clicking_a_row_selects_its_result_and_makes_it_active(runtime: ModuleType,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    import bpy

    for prompt in ("stone pillar", "oak barrel"):
        assert bpy.ops.kiln.generate(prompt=prompt) == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    pillar, barrel = rows()
    bpy.ops.object.select_all(action="DESELECT")
    barrel_object = next(o for o in kiln_objects() if o["kiln_job_id"] == barrel.job_id)
    barrel_object.select_set(True)

    (select,) = [p for name, p in drawn(pillar).buttons if name == "kiln.select_job"]
    assert bpy.ops.kiln.select_job(job_id=select.job_id) == {"FINISHED"}
    active = bpy.context.view_layer.objects.active
    assert active is not None and active["kiln_job_id"] == pillar.job_id
    assert [o["kiln_job_id"] for o in bpy.context.selected_objects] == [pillar.job_id], "only its own result"
    assert "stone pillar" in bpy.types.KILN_OT_select_job.description(bpy.context, select)

    # In Edit Mode it says to leave it first, and the artist stays where they were.
    bpy.ops.object.mode_set(mode="EDIT")
    capfd.readouterr()
    assert bpy.ops.kiln.select_job(job_id=barrel.job_id) == {"CANCELLED"}
    assert "Leave Edit Mesh mode to select" in capfd.readouterr().out
    assert bpy.context.mode == "EDIT_MESH" and bpy.context.view_layer.objects.active == active
    bpy.ops.object.mode_set(mode="OBJECT")

    # A job with nothing in the scene yet says so, and leaves the selection alone.
    runtime.scheduler().pause_production()
    bpy.context.scene.kiln.mode = "PRODUCTION"
    assert bpy.ops.kiln.generate(prompt="iron crate") == {"FINISHED"}
    runtime.pump()
    capfd.readouterr()
    assert bpy.ops.kiln.select_job(job_id=rows()[-1].job_id) == {"CANCELLED"}
    assert "'iron crate' has no object in the scene yet (queued)" in capfd.readouterr().out
    assert bpy.context.view_layer.objects.active == active
    runtime.scheduler().resume_production()


# ---------------------------------------------------------------------------------------- money
def test_the_header_shows_what_the_batch_and_the_session_spent(runtime: ModuleType, tripo: TripoSandbox) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode = "PRODUCTION"
    variations("sci-fi car", "with vents", "with warning lights")
    assert bpy.ops.kiln.batch_prompts() == {"FINISHED"}
    assert runtime.run_until_done(timeout=120)
    charged = sum(job.credits_spent for job in runtime.scheduler().views())
    assert charged == 40.0, "two textured Tripo tasks at 20 credits"
    panel = header()
    assert spend(panel) == ["This batch: 40 credits", "This session: 40 credits"]
    assert cut(panel) == [], "the header reads whole at the default sidebar width"

    settings.mode = "DRAFT"
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    assert spend(header()) == ["Drafts: 10 credits", "This session: 50 credits"]

    assert bpy.ops.kiln.clear_finished() == {"FINISHED"}
    runtime.pump()
    panel = header()
    assert "No jobs yet" in panel.labels()
    assert spend(panel) == ["This session: 50 credits"], "clearing the queue keeps what the session spent"


def test_the_balance_refreshes_itself_after_each_paid_job(runtime: ModuleType, tripo: TripoSandbox) -> None:
    import bpy

    scheduler = runtime.scheduler()
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    pump_until(runtime, lambda: scheduler.balances.get("tripo") == 990.0)
    assert "Balance: 990 credits" in draw("KILN_PT_generate").labels(), "nobody pressed refresh"

    bpy.context.scene.kiln.mode = "PRODUCTION"
    assert bpy.ops.kiln.generate(prompt="iron crate") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    pump_until(runtime, lambda: scheduler.balances.get("tripo") == 970.0)
    assert "Balance: 970 credits" in draw("KILN_PT_generate").labels()
    assert tripo.state.balance == 970.0
