"""The queue panel where money is at stake, in real Blender against the Tripo sandbox: an uncertain row's
Retry names the possible double charge and sends nothing without confirmation, a cancelled Tripo task
shows "cancelled, import anyway" with its credits and imports without paying again, a retry replaces
its row, and a Production batch's finishing survives a restart of the engine."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from conftest import ADDON_MODULE
from test_panel import Recorder, kiln_objects

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_queue_money_key_42"


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.4, "textured": 0.6})) as server:
        yield server


def tripo(server: TripoSandbox) -> Any:
    return engine("backends.tripo").TripoBackend(KEY, server.url)


def rows() -> list[Any]:
    import bpy

    return list(bpy.context.window_manager.kiln_jobs)


def drawn(row: Any) -> Recorder:
    """What the queue list draws for one row."""
    import bpy

    recorder = Recorder()
    bpy.types.KILN_UL_jobs.draw_item(None, bpy.context, recorder, None, row, 0, None, "")
    return recorder


def tooltip(row: Any) -> str:
    """What hovering the row's title shows: its whole text (the row itself is cut short to fit)."""
    import bpy

    return str(bpy.types.KILN_OT_select_job.description(bpy.context, SimpleNamespace(job_id=row.job_id)))


def crate_spec(batch: str = "b") -> Any:
    jobs = engine("jobs")
    return jobs.JobSpec(kind=jobs.JobKind.TEXT, backend="tripo", mode=jobs.Mode.PRODUCTION, prompt="iron crate",
                        batch=batch)


def test_an_uncertain_row_asks_before_a_possible_double_charge(runtime: ModuleType, sandbox: TripoSandbox,
                                                               tmp_path: Path) -> None:
    import bpy

    jobs, journal_module = engine("jobs"), engine("journal")
    journal = journal_module.Journal(tmp_path / "journal")
    journal.record_batch(jobs.BatchSpec("b", backend="tripo"))
    job = jobs.Job(spec=crate_spec(), credits_estimated=20.0)
    job.move_to(jobs.JobState.SUBMITTING)
    job.reach(jobs.Stage.SUBMITTED)
    journal.record(job, durable=True)  # Blender died with this create on the wire
    runtime.start(ADDON_MODULE, backends=[tripo(sandbox)], journal_dir=tmp_path / "journal")
    runtime.pump()
    (row,) = rows()
    assert row.needs_confirmation and row.can_retry and row.icon == "QUESTION"
    assert row.status == "uncertain"
    assert "uncertain: may have been charged ~20 credits; check the provider" in tooltip(row)
    assert ("operator", "kiln.retry_job", "") in drawn(row).calls
    assert "1 uncertain" in draw_queue().labels()

    with pytest.raises(RuntimeError, match=r"may already have been created and charged on tripo \(~20 credits\)"):
        bpy.ops.kiln.retry_job(job_id=row.job_id)  # a script or a headless run without the flag
    assert runtime.scheduler().view(row.job_id).state.value == "uncertain" and sandbox.state.creates == 0

    # From the panel, the button's invoke asks; only the confirmed call sends, exactly once.
    assert bpy.ops.kiln.retry_job(job_id=row.job_id, confirm_double_charge=True) == {"FINISHED"}
    assert bpy.ops.kiln.retry_job(job_id=row.job_id, confirm_double_charge=True) == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    assert sandbox.state.creates == 1, "the second click returned the live retry"
    (row,) = rows()
    assert row.attempt == 2 and row.status == "finished" and not row.can_retry


def test_the_retry_button_confirms_with_a_dialog_naming_the_double_charge(runtime: ModuleType,
                                                                         sandbox: TripoSandbox,
                                                                         tmp_path: Path) -> None:
    import bpy

    runtime.start(ADDON_MODULE, backends=[tripo(sandbox)], journal_dir=tmp_path / "journal")
    scheduler = runtime.scheduler()
    scheduler.add_batch(engine("jobs").BatchSpec("b", backend="tripo"))
    sandbox.state.create_errors = [1000]  # a server error on the create: it may have been made
    job = scheduler.add(crate_spec())
    assert runtime.run_until_done(timeout=30)
    assert job.state.value == "uncertain"
    asked: dict[str, Any] = {}

    class WindowManager:
        def invoke_confirm(self, operator: Any, event: Any, **kwargs: Any) -> set[str]:
            asked.update(kwargs, flag=operator.confirm_double_charge)
            return {"RUNNING_MODAL"}

    operator = SimpleNamespace(job_id=job.job_id, confirm_double_charge=False, execute=lambda context: {"FINISHED"})
    result = bpy.types.KILN_OT_retry_job.invoke(operator, SimpleNamespace(window_manager=WindowManager()), None)
    assert result == {"RUNNING_MODAL"} and asked["flag"], "confirming runs execute with the flag set"
    assert "may already have been created and charged on tripo (~20 credits)" in asked["message"]
    assert "charge twice" in asked["message"] and asked["icon"] == "WARNING"
    assert sandbox.state.creates == 0


def test_cancelled_tripo_task_is_kept_and_imported_anyway(runtime: ModuleType, sandbox: TripoSandbox,
                                                          online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import bpy

    monkeypatch.setenv("KILN_TRIPO_API_KEY", KEY)
    monkeypatch.setenv("KILN_TRIPO_BASE_URL", sandbox.url)
    settings = bpy.context.scene.kiln
    settings.backend, settings.mode = "tripo", "DRAFT"
    assert bpy.ops.kiln.generate(prompt="stone pillar") == {"FINISHED"}
    (job,) = runtime.scheduler().views()
    while runtime.scheduler().view(job.job_id).state.value != "running":
        runtime.pump()
    assert bpy.ops.kiln.cancel_job(job_id=job.job_id) == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    (row,) = rows()
    assert row.status == "kept (10 cr)" and row.can_import_anyway
    assert "cancelled, import anyway (10 credits)" in tooltip(row)
    assert ("operator", "kiln.import_anyway", "") in drawn(row).calls
    assert kiln_objects() == [], "cancelled: nothing was imported on its own"

    assert bpy.ops.kiln.import_anyway(job_id=row.job_id) == {"FINISHED"}
    assert runtime.run_until_done(timeout=30)
    (obj,) = kiln_objects()
    assert obj["kiln_task_id"] == runtime.scheduler().view(job.job_id).task_id
    assert obj["kiln_prompt"] == "stone pillar"
    assert sandbox.state.creates == 1, "paid once, imported once"
    (row,) = rows()
    assert row.attempt == 2 and row.status == "finished", "the retry replaced its row"


def test_a_batchs_finishing_survives_an_engine_restart(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    settings = bpy.context.scene.kiln
    settings.mode, settings.finish_preset, settings.target = "PRODUCTION", "game", "GAME"
    runtime.start(ADDON_MODULE, journal_dir=tmp_path / "journal")
    runtime.scheduler().pause_production()
    assert bpy.ops.kiln.generate(prompt="wooden crate") == {"FINISHED"}
    (batch,) = runtime.scheduler().batches.values()
    runtime.stop()  # Blender quits, the add-on reloads or a preference restarts the engine

    runtime.start(ADDON_MODULE, journal_dir=tmp_path / "journal")
    assert runtime.scheduler().batches == {batch.name: batch}
    assert runtime.run_until_done(timeout=60)
    crate = next(o for o in kiln_objects() if o.name.endswith("_LOD0"))
    assert crate.parent is not None, "finished as the batch asked"
    assert {o.name for o in crate.parent.children} >= {f"{crate.parent.name}_LOD1"}


def test_give_up_after_preference_reaches_the_engine(kiln: ModuleType) -> None:
    import bpy

    preferences = importlib.import_module(f"{ADDON_MODULE}.ui.preferences")
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    assert prefs.give_up_after_s == 120.0
    prefs.give_up_after_s = 45.0
    try:
        assert preferences.engine_settings(prefs).config.give_up_after_s == 45.0
        assert sys.modules[f"{ADDON_MODULE}.addon.blender.runtime"].scheduler().config.give_up_after_s == 45.0
    finally:
        prefs.give_up_after_s = 120.0


def draw_queue() -> Recorder:
    import bpy

    recorder = Recorder()
    bpy.types.KILN_PT_queue.draw(SimpleNamespace(layout=recorder), bpy.context)
    return recorder
