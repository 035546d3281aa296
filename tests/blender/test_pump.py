"""The main-thread pump: time budget, import failures, and stopping mid-batch without losing jobs."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

from conftest import ADDON_MODULE, disable_kiln, enable_kiln


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


def sandbox_fake() -> ModuleType:
    """The fake provider, imported inside the extension's package so it raises Kiln's own errors."""
    return importlib.import_module(f"{ADDON_MODULE}.sandbox.fake")


def production_spec(index: int) -> object:
    jobs = engine("jobs")
    return jobs.JobSpec(kind=jobs.JobKind.TEXT, backend="fake", mode=jobs.Mode.PRODUCTION, prompt=f"rock {index}",
                        batch="b", index=index)


def test_pump_stays_within_its_budget_and_leaves_the_rest_for_later(runtime: ModuleType, tmp_path: Path) -> None:
    fake = sandbox_fake().FakeBackend(latency_s=0.0, limit=10)
    applied: list[str] = []

    def slow_import(job: object) -> None:
        time.sleep(0.004)
        applied.append(job.job_id)  # type: ignore[attr-defined]

    scheduler = runtime.start(ADDON_MODULE, backends=[fake], apply=slow_import, journal_dir=tmp_path)
    scheduler.add_batch(engine("jobs").BatchSpec("b"))
    jobs = scheduler.add_many(production_spec(i) for i in range(40))
    deadline = time.monotonic() + 20
    while sum(j.state.value == "ready" for j in jobs) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    first = runtime.pump(budget_ms=20)
    assert 1 <= first < 40, "one call applies what fits in 20 ms, not everything"
    assert runtime.run_until_done(timeout=30)
    assert sorted(applied) == sorted(j.job_id for j in jobs)
    assert all(j.state.value == "finished" for j in jobs)


def test_a_corrupt_result_fails_its_job_keeps_the_file_and_leaves_no_objects(runtime: ModuleType,
                                                                            tmp_path: Path) -> None:
    import bpy

    # FakeBackend "downloads" a JSON file named model.glb: exactly what a truncated CDN response looks like.
    fake = sandbox_fake().FakeBackend(latency_s=0.0)
    scheduler = runtime.start(ADDON_MODULE, backends=[fake], journal_dir=tmp_path)
    scheduler.add_batch(engine("jobs").BatchSpec("b"))
    (job,) = scheduler.add_many([production_spec(0)])
    assert runtime.run_until_done(timeout=30)
    assert job.state.value == "failed"
    assert job.error.code == "import_failed" and "could not read model.glb" in job.error.message
    assert Path(job.files["model"]).is_file(), "the bad file is kept for inspection"
    assert len(bpy.data.objects) == 0


def test_disabling_mid_batch_neither_hangs_nor_loses_running_jobs(runtime: ModuleType, tmp_path: Path) -> None:
    fake_module = sandbox_fake()
    provider = tmp_path / "provider"
    # Tasks long enough that a loaded machine cannot finish them before the disable below.
    scheduler = runtime.start(ADDON_MODULE, backends=[fake_module.FakeBackend(latency_s=4.0, state_dir=provider)],
                              apply=lambda job: None, journal_dir=tmp_path)
    scheduler.add_batch(engine("jobs").BatchSpec("b"))
    jobs = scheduler.add_many(production_spec(i) for i in range(4))
    deadline = time.monotonic() + 10
    while not all(j.state.value == "running" for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    prefix = scheduler._thread_prefix
    disable_kiln()  # mid-batch: must return (a hang would stall the test run) and stop the threads
    deadline = time.monotonic() + 10
    while any(t.name.startswith(prefix) and t.is_alive() for t in threading.enumerate()) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not [t.name for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]
    journaled = engine("journal").Journal(tmp_path).load()
    assert [j.state.value for j in journaled.jobs] == ["running"] * 4, "the journal kept them"
    assert list(journaled.batches) == ["b"], "and their batch"
    enable_kiln()
    runtime = sys.modules[f"{ADDON_MODULE}.addon.blender.runtime"]

    again = fake_module.FakeBackend(latency_s=4.0, state_dir=provider)
    scheduler = runtime.start(ADDON_MODULE, backends=[again], apply=lambda job: None, journal_dir=tmp_path)
    assert runtime.run_until_done(timeout=30)
    states = {j.job_id: j.state.value for j in scheduler.views()}
    assert states == {j.job_id: "finished" for j in jobs}
    assert again.create_calls == 0, "reattached, not resubmitted"
