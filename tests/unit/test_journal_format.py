"""The journal's format: a version on every line, entries another version wrote are kept and reported
(never dropped, never acted on from a stale snapshot), and batches recovered before anything is sent."""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers import drain, spec, wait_for

from addon.jobs import BatchSpec, Job, JobState, Mode, Priority, Stage
from addon.journal import FORMAT_VERSION, Journal
from addon.presets import PRESETS, theme_from_prompt
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.fake import FakeBackend

ROCKS = BatchSpec("env_rocks_01", mode=Mode.PRODUCTION, backend="fake", priority=Priority.HIGH,
                  start_at=1_900_000_000.0, budget=25.0, finish=PRESETS["game_organic"], target="film",
                  theme=theme_from_prompt("mossy green stone"), manifest_hash="abc123")


def lines(journal: Journal) -> list[dict]:
    return [json.loads(line) for line in journal.path.read_text().splitlines()]


def test_a_batch_survives_json_with_its_preset_theme_and_priority() -> None:
    again = BatchSpec.from_json(json.loads(json.dumps(ROCKS.to_json())))
    assert again == ROCKS
    assert again.finish is not None and again.finish.lod_ratios == (0.5, 0.25)
    assert again.theme is not None and again.theme.tint == ROCKS.theme.tint  # type: ignore[union-attr]
    assert BatchSpec.from_json(BatchSpec("draftless").to_json()) == BatchSpec("draftless")


def test_every_line_carries_the_format_version(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record_batch(ROCKS)
    journal.record(Job(spec=spec(batch=ROCKS.name)), durable=True)
    assert [entry["v"] for entry in lines(journal)] == [FORMAT_VERSION, FORMAT_VERSION]
    found = journal.load()
    assert found.batches == {ROCKS.name: ROCKS} and len(found.jobs) == 1


def test_lines_written_before_versions_existed_are_read(tmp_path: Path) -> None:
    job = Job(spec=spec())
    (tmp_path / "journal.jsonl").write_text(json.dumps({"t": 1.0, "job": job.snapshot()}) + "\n")
    (loaded,) = Journal(tmp_path).load().jobs
    assert loaded.job_id == job.job_id and loaded.spec == job.spec


def test_entries_this_version_cannot_read_are_kept_verbatim_reported_and_not_acted_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    paid = Job(spec=spec(index=0), task_id="task-paid")
    paid.move_to(JobState.SUBMITTING)
    paid.move_to(JobState.RUNNING)
    other = Job(spec=spec(index=1))
    journal.record_batch(BatchSpec("b"))
    journal.record(paid, durable=True)
    journal.record(other)
    # A newer Kiln moved `paid` on, in a format this one does not know; and left a kind of entry it has no
    # notion of, and a batch with a finishing setting it cannot apply.
    newer = json.dumps({"v": FORMAT_VERSION + 1, "t": 2.0, "job": {"job_id": paid.job_id, "stage": "exported"}})
    alien = json.dumps({"v": FORMAT_VERSION, "t": 2.0, "webhook": {"id": 7}})
    original = journal.path.read_text().splitlines()
    odd_batch = json.dumps({"v": FORMAT_VERSION, "t": 2.0, "batch": {"name": "x", "finish": {"name": "n",
                                                                                            "bevel": 2}}})
    with open(journal.path, "a", encoding="utf-8") as handle:
        handle.write(f"{newer}\n{alien}\n{odd_batch}\n")

    found = journal.load()
    assert [j.job_id for j in found.jobs] == [other.job_id], "no job is rebuilt from an older snapshot"
    assert found.held_jobs == {paid.job_id}
    assert [(e.line_number, e.job_id) for e in found.unreadable] == [(4, paid.job_id), (5, None), (6, None)]
    assert "newer Kiln" in found.unreadable[0].reason and "webhook" in found.unreadable[1].reason
    assert "bevel" in found.unreadable[2].reason
    assert list(found.batches) == ["b"]

    fake = FakeBackend(latency_s=0.05)
    scheduler = Scheduler([fake], journal=journal, config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    drain(scheduler)
    assert [e.line_number for e in scheduler.journal_problems] == [4, 5, 6], "the panel can show them"
    assert fake.create_calls == 1 and fake.created_refs == [other.job_id], "the held job is never sent"
    scheduler.shutdown()  # compacts

    text = journal.path.read_text().splitlines()
    assert text[:4] == [original[1], newer, alien, odd_batch], \
        "the held job's last readable line, then the unreadable ones, verbatim and in order"
    again = Journal(tmp_path).load()
    assert again.held_jobs == {paid.job_id} and len(again.unreadable) == 3
    assert [j.job_id for j in again.jobs] == [other.job_id] and again.jobs[0].state is JobState.FINISHED


def test_batches_are_restored_before_anything_is_dispatched(tmp_path: Path) -> None:
    """Budget, priority, start time and finishing hold after a restart."""
    fake = FakeBackend(latency_s=0.02, limit=10, credits_per_task=10, state_dir=tmp_path / "provider")
    first = Scheduler([fake], journal=Journal(tmp_path / "j"), config=SchedulerConfig(draft_reserved_slots=0))
    first.start()
    batch = BatchSpec("rocks", priority=Priority.HIGH, budget=25.0, finish=PRESETS["game"],
                      theme=theme_from_prompt("weathered oak"), start_at=time.time() + 0.4)
    first.add_batch(batch)
    jobs = first.add_many(spec(batch="rocks", index=i) for i in range(4))
    first.shutdown()  # a crash, a reload or a preferences edit: nothing was sent yet
    assert fake.create_calls == 0

    again = FakeBackend(latency_s=0.02, limit=10, credits_per_task=10, state_dir=tmp_path / "provider")
    second = Scheduler([again], journal=Journal(tmp_path / "j"), config=SchedulerConfig(draft_reserved_slots=0))
    second.start()
    assert second.batches == {"rocks": batch}, "finishing preset, theme and all, for the runtime to read"
    drain(second)
    second.shutdown()
    states = [j.state for j in second.views([j.job_id for j in jobs])]
    assert states == [JobState.FINISHED] * 2 + [JobState.FAILED] * 2, "the budget of 25 held"
    assert again.create_calls == 2
    created = [json.loads(p.read_text())["created_at"] for p in (tmp_path / "provider").glob("task_*.json")]
    assert min(created) >= batch.start_at, "nothing went before the batch's start time"  # type: ignore[operator]


def test_a_production_job_whose_batch_is_unknown_waits_with_a_note(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    orphan = Job(spec=spec(batch="lost_batch"))
    journal.record(orphan)  # its batch line never made it (an older Kiln, or an unreadable entry)
    fake = FakeBackend(latency_s=0.02)
    scheduler = Scheduler([fake], journal=journal, config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    try:
        wait_for(lambda: scheduler.view(orphan.job_id).note != "")  # type: ignore[union-attr]
        (view,) = scheduler.views()
        assert view.state is JobState.QUEUED and "batch 'lost_batch' is not known" in view.note
        assert fake.create_calls == 0 and scheduler.is_idle(), "it waits, without holding up a run's end"
        scheduler.add_batch(BatchSpec("lost_batch"))
        drain(scheduler)
        assert scheduler.view(orphan.job_id).state is JobState.FINISHED  # type: ignore[union-attr]
        assert scheduler.view(orphan.job_id).note == ""  # type: ignore[union-attr]
    finally:
        scheduler.shutdown()


def test_compaction_never_drops_a_task_id_that_came_home_after_the_journal_was_read(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    job = Job(spec=spec())
    job.move_to(JobState.SUBMITTING)
    job.reach(Stage.SUBMITTED)
    journal.record(job, durable=True)
    (read,) = journal.load().jobs  # a new engine reads it: a create on the wire, no id yet
    late = Job.from_snapshot(job.snapshot())  # the old engine's create comes back after that
    late.task_id = "task-late"
    late.move_to(JobState.RUNNING)
    Journal(tmp_path).record(late, durable=True)
    read.move_to(JobState.UNCERTAIN)
    journal.compact([read], [])
    (again,) = Journal(tmp_path).load().jobs
    assert again.state is JobState.RUNNING and again.task_id == "task-late", "reattached next time, not uncertain"
