"""A Production result imported into the scene but not yet finished (finishing on the main thread, one
result at a time) must not stay unfinished because Kiln stopped in between: a crash, or the engine
restart a preferences edit makes. The journal has it as imported; the next engine finishes it as its
batch asks once its object is in the open file, now or when the artist opens that file later."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ADDON_MODULE

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)

CRASHING_BLENDER = textwrap.dedent("""
    import os, signal, sys
    from importlib import import_module
    from pathlib import Path
    repo, journal, blend = sys.argv[1:4]
    sys.path[:0] = [repo, repo + "/scripts"]
    from kiln_loader import isolate_user_resources, load_kiln
    isolate_user_resources()
    import bpy
    kiln = load_kiln()
    runtime = import_module(kiln.__name__ + ".addon.blender.runtime")
    jobs = import_module(kiln.__name__ + ".addon.jobs")
    presets = import_module(kiln.__name__ + ".addon.presets")
    requests = import_module(kiln.__name__ + ".addon.requests")

    def save_then_crash(job, batch):
        # The result is in the scene and the artist has saved; Blender dies before finishing it.
        bpy.ops.wm.save_as_mainfile(filepath=blend)
        os.kill(os.getpid(), signal.SIGKILL)

    scheduler = runtime.start(kiln.__name__, journal_dir=Path(journal), finish=save_then_crash)
    batch = jobs.BatchSpec("crash_fin_01", finish=presets.PRESETS["game"], target="game")
    scheduler.add_batch(batch)
    scheduler.add_many(requests.manifest_asset_specs(batch, kind="text", index=0, name="crash_fin_01_0",
                                                     base_seed=5, prompt="wooden barrel"))
    runtime.run_until_done(timeout=120)
    print("finished without crashing", flush=True)
""")


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


def finished_lods(name_prefix: str) -> list[str]:
    import bpy

    return sorted(o.name for o in bpy.data.objects if o.name.startswith(name_prefix) and "_LOD" in o.name)


def test_a_result_imported_before_a_crash_is_finished_when_its_file_is_opened(
        runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    journal_dir, blend = tmp_path / "journal", tmp_path / "scene.blend"
    crashed = subprocess.run([sys.executable, "-c", CRASHING_BLENDER, str(REPO), str(journal_dir), str(blend)],
                             capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout[-2000:] + crashed.stderr[-2000:]
    assert blend.is_file()

    # Blender starts again on an empty scene: the unfinished result is not in it, so nothing happens yet
    # and nothing waits on it.
    scheduler = runtime.start(ADDON_MODULE, journal_dir=journal_dir, finish_workers=0)
    (view,) = scheduler.views()
    assert view.state.value == "imported", "the journal has it imported, not finished"
    for _ in range(5):
        runtime.pump()
    assert runtime.is_done()
    assert scheduler.views()[0].state.value == "imported"

    # The artist opens the file that holds it: Kiln finishes it as the batch asked.
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    assert runtime.run_until_done(timeout=120)
    (view,) = scheduler.views()
    assert view.state.value == "finished"
    assert [s["step"] for s in view.metadata["finish"]["steps"] if not s["ok"]] == []
    assert finished_lods("crash_fin_01_") == ["crash_fin_01_001_LOD0", "crash_fin_01_001_LOD1",
                                              "crash_fin_01_001_LOD2"]
    assert bpy.data.objects["crash_fin_01_001_LOD0"]["kiln_finished"] == "game"


def test_a_restart_from_a_preferences_edit_finishes_what_was_waiting_to_be_finished(runtime: ModuleType) -> None:
    import bpy

    jobs, presets, requests = engine("jobs"), engine("presets"), engine("requests")
    scheduler = runtime.start(ADDON_MODULE, journal_dir=runtime.scheduler().journal.folder, finish_workers=0)
    batch = jobs.BatchSpec("prefs_fin_01", finish=presets.PRESETS["game"], target="game")
    scheduler.add_batch(batch)
    for index, prompt in enumerate(["wooden barrel", "stone pillar", "iron lantern"]):
        scheduler.add_many(requests.manifest_asset_specs(batch, kind="text", index=index,
                                                         name=f"prefs_fin_01_{index}", base_seed=5, prompt=prompt))
    # All three results are downloaded; then three pumps with no time to spare import one each, and
    # none is finished yet (a pump finishes only when it imported nothing).
    deadline = time.monotonic() + 120
    while any(v.state.value != "ready" for v in scheduler.views()):
        assert time.monotonic() < deadline, [v.state.value for v in scheduler.views()]
        time.sleep(0.05)
    for _ in range(3):
        runtime.pump(budget_ms=0)
    states = [v.state.value for v in scheduler.views()]
    assert states == ["imported"] * 3, states

    # The preferences change a scheduling setting: the engine restarts, losing its in-memory work list.
    config = engine("scheduling.engine").SchedulerConfig(workers=3)
    restarted = runtime.start(ADDON_MODULE, journal_dir=scheduler.journal.folder, config=config, finish_workers=0)
    assert restarted is not scheduler
    assert runtime.run_until_done(timeout=120)
    views = restarted.views()
    assert [v.state.value for v in views] == ["finished"] * 3
    for view in views:
        assert view.metadata["finish"]["preset"] == "game"
    roots = sorted(o.name for o in bpy.data.objects if o.get("kiln_lod_group") and o.name.startswith("prefs_fin_01"))
    assert roots == ["prefs_fin_01_001", "prefs_fin_01_002", "prefs_fin_01_003"], roots


def test_a_finished_result_missing_from_the_open_file_is_brought_back_from_the_cache(runtime: ModuleType) -> None:
    """The artist opens a file saved before a result landed (or a crash lost it before a save): clicking
    its row brings the paid result in again from the cache, finished as its batch asks, with no new
    generation; a second click only selects it."""
    import bpy

    jobs, presets, requests = engine("jobs"), engine("presets"), engine("requests")
    scheduler = runtime.start(ADDON_MODULE, journal_dir=runtime.scheduler().journal.folder, finish_workers=0)
    batch = jobs.BatchSpec("back_01", finish=presets.PRESETS["game"], target="game")
    scheduler.add_batch(batch)
    scheduler.add_many(requests.manifest_asset_specs(batch, kind="text", index=0, name="back_01_0", base_seed=5,
                                                     prompt="wooden barrel"))
    assert runtime.run_until_done(timeout=120)
    (landed,) = scheduler.views()
    model = Path(landed.files["model"])
    written = model.stat().st_mtime_ns

    bpy.ops.wm.read_homefile(use_empty=True)
    assert not [o for o in bpy.data.objects if o.get("kiln_job_id")]
    assert bpy.ops.kiln.select_job(job_id=landed.job_id) == {"FINISHED"}
    assert finished_lods("back_01_") == ["back_01_001_LOD0", "back_01_001_LOD1", "back_01_001_LOD2"]
    assert bpy.data.objects["back_01_001_LOD0"]["kiln_finished"] == "game"
    assert bpy.context.view_layer.objects.active.name == "back_01_001_LOD0", "and selected"
    (view,) = scheduler.views()
    assert (view.job_id, view.task_id, view.state.value) == (landed.job_id, landed.task_id, "finished")
    assert model.stat().st_mtime_ns == written, "the cached result, not a new generation"

    assert bpy.ops.kiln.select_job(job_id=landed.job_id) == {"FINISHED"}
    assert finished_lods("back_01_") == ["back_01_001_LOD0", "back_01_001_LOD1", "back_01_001_LOD2"], \
        "not imported twice"
