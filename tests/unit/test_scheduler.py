"""Scheduler behaviour against FakeBackend: lanes, limits, pause, budgets, cancel, retries, ETA."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import drain, spec, wait_for

from addon.jobs import BatchSpec, JobState, Mode, Priority
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.fake import FakeBackend


@pytest.fixture
def make(tmp_path: Path) -> Iterator:
    made: list[Scheduler] = []

    def factory(*backends: FakeBackend, **config: object) -> Scheduler:
        scheduler = Scheduler(
            backends or [FakeBackend()],
            journal=Journal(tmp_path / f"journal{len(made)}"),
            config=SchedulerConfig(**config),  # type: ignore[arg-type]
        )
        scheduler.start()
        scheduler.add_batch(BatchSpec("b"))  # the batch of `helpers.spec`: production needs a declared batch
        made.append(scheduler)
        return scheduler

    yield factory
    for scheduler in made:
        scheduler.shutdown()


def test_every_job_finishes_and_concurrency_is_never_exceeded(make) -> None:
    fake = FakeBackend(latency_s=0.05, limit=3)
    scheduler = make(fake, draft_reserved_slots=0)
    jobs = scheduler.add_many(spec(index=i) for i in range(20))
    drain(scheduler)
    assert [j.state for j in jobs] == [JobState.FINISHED] * 20
    assert fake.peak_in_flight == 3, "the full limit is used, and never more"
    assert fake.refusals == 0
    assert sorted(fake.created_refs) == sorted(j.job_id for j in jobs), "one create per job"


def test_a_concurrency_refusal_shrinks_the_believed_limit_without_duplicates(make) -> None:
    fake = FakeBackend(latency_s=0.05, limit=5)
    fake.limit = 2  # the account is shared: the provider allows fewer than documented
    scheduler = make(fake, draft_reserved_slots=0)
    jobs = scheduler.add_many(spec(index=i) for i in range(12))
    drain(scheduler)
    assert all(j.state is JobState.FINISHED for j in jobs)
    assert fake.refusals > 0
    assert fake.peak_in_flight <= 2
    assert len(fake.created_refs) == 12 and len(set(fake.created_refs)) == 12


def test_draft_starts_within_one_tick_while_production_saturates_the_backend(make) -> None:
    # Long tasks: if the draft had to wait for a production slot, a production job would finish first.
    fake = FakeBackend(latency_s=3.0, limit=4)
    scheduler = make(fake, draft_reserved_slots=1)
    batch = scheduler.add_many(spec(index=i) for i in range(40))
    wait_for(lambda: sum(j.state is JobState.RUNNING for j in batch) == 3)
    time.sleep(0.1)  # a fourth production create, if the scheduler were wrong, would have happened now
    assert fake.create_calls == 3, "production leaves the reserved draft slot free"
    draft = scheduler.add(spec(mode=Mode.DRAFT, batch="", prompt="quick chair"))
    wait_for(lambda: draft.state is JobState.RUNNING, timeout=10)
    assert fake.created_refs[3] == draft.job_id, "the draft was the very next create"
    assert not any(j.state is JobState.READY or j.state is JobState.FINISHED for j in batch), \
        "no production job had to finish first"
    for job in batch:
        scheduler.cancel(job.job_id)


def test_drafts_run_ahead_of_queued_production(make) -> None:
    fake = FakeBackend(latency_s=0.05, limit=1)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.pause_production()
    production = scheduler.add_many(spec(index=i) for i in range(3))
    draft = scheduler.add(spec(mode=Mode.DRAFT, batch="", prompt="stool"))
    scheduler.resume_production()
    drain(scheduler)
    assert fake.created_refs[0] == draft.job_id
    assert fake.created_refs[1:] == [j.job_id for j in production]


def test_pause_stops_submission_and_keeps_running_jobs(make) -> None:
    fake = FakeBackend(latency_s=0.3, limit=2)
    scheduler = make(fake, draft_reserved_slots=0)
    jobs = scheduler.add_many(spec(index=i) for i in range(6))
    wait_for(lambda: scheduler.in_flight("fake") == 2)
    scheduler.pause_production()
    running = [j for j in jobs if j.state in (JobState.SUBMITTING, JobState.RUNNING)]
    wait_for(lambda: all(j.state in (JobState.READY, JobState.FINISHED) for j in running))
    time.sleep(0.2)
    assert fake.create_calls == 2, "nothing new is sent while paused"
    assert sum(j.state is JobState.QUEUED for j in jobs) == 4
    scheduler.resume_production()
    drain(scheduler)
    assert all(j.state is JobState.FINISHED for j in jobs)


def test_budget_stops_submission_and_reports_skipped_jobs(make) -> None:
    fake = FakeBackend(latency_s=0.02, limit=10, credits_per_task=10)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.add_batch(BatchSpec("env_rocks_01", budget=35))
    jobs = scheduler.add_many(spec(batch="env_rocks_01", index=i) for i in range(5))
    drain(scheduler)
    finished = [j for j in jobs if j.state is JobState.FINISHED]
    skipped = [j for j in jobs if j.state is JobState.FAILED]
    assert len(finished) == 3 and fake.create_calls == 3
    assert [j.error.code for j in skipped if j.error] == ["over_budget", "over_budget"]
    assert scheduler.budget_skipped["env_rocks_01"] == [j.job_id for j in skipped]
    assert "35" in skipped[0].error.message  # type: ignore[union-attr]
    assert sum(j.credits_spent for j in jobs) == 30


def test_failed_tasks_are_refunded_against_the_budget(make) -> None:
    fake = FakeBackend(latency_s=0.02, limit=10, credits_per_task=10, fail_when=lambda s: s.index == 0)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.add_batch(BatchSpec("b", budget=20))
    jobs = scheduler.add_many(spec(index=i) for i in range(3))
    drain(scheduler)
    assert jobs[0].state is JobState.FAILED and jobs[0].error and jobs[0].error.code == "2008"
    assert [j.state for j in jobs[1:]] == [JobState.FINISHED, JobState.FINISHED]


def test_high_priority_batch_goes_first_and_start_time_is_respected(make) -> None:
    fake = FakeBackend(latency_s=0.02, limit=1)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.pause_production()
    scheduler.add_batch(BatchSpec("low", priority=Priority.LOW))
    scheduler.add_batch(BatchSpec("high", priority=Priority.HIGH))
    scheduler.add_batch(BatchSpec("later", priority=Priority.HIGH, start_at=time.time() + 0.6))
    low = scheduler.add_many(spec(batch="low", index=i) for i in range(2))
    later = scheduler.add(spec(batch="later"))
    high = scheduler.add_many(spec(batch="high", index=i) for i in range(2))
    scheduler.resume_production()
    drain(scheduler)
    order = fake.created_refs
    assert order[:4] == [j.job_id for j in high + low], "high before low; 'later' waits for its start time"
    assert order[-1] == later.job_id


def test_cancel_in_each_state(make) -> None:
    # Each state lasts a second or more: long enough to be seen, and cancelled on the provider before the
    # task would end, on a loaded machine (at 1.2 s a cancel queued behind a busy pool came too late).
    fake = FakeBackend(latency_s=2.5, limit=4)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.pause_production()
    queued = scheduler.add(spec(index=0))
    assert "before it was sent" in scheduler.cancel(queued.job_id)
    assert queued.state is JobState.CANCELLED
    scheduler.resume_production()

    fake.submit_delay_s = 1.0
    submitting = scheduler.add(spec(index=1))
    wait_for(lambda: submitting.state is JobState.SUBMITTING)
    scheduler.cancel(submitting.job_id)
    wait_for(lambda: submitting.state is JobState.CANCELLED)
    fake.submit_delay_s = 0.0

    running = scheduler.add(spec(index=2))
    wait_for(lambda: running.state is JobState.RUNNING)
    assert "on fake" in scheduler.cancel(running.job_id)
    wait_for(lambda: scheduler.in_flight("fake") == 0)

    fake.download_delay_s = 1.0
    downloading = scheduler.add(spec(index=3))
    wait_for(lambda: downloading.state is JobState.DOWNLOADING)
    scheduler.cancel(downloading.job_id)
    wait_for(lambda: downloading.state is JobState.CANCELLED)
    fake.download_delay_s = 0.0

    ready = scheduler.add(spec(index=4))
    wait_for(lambda: ready.state is JobState.READY)
    scheduler.cancel(ready.job_id)
    assert ready.state is JobState.CANCELLED and scheduler.take_ready() is None

    done = scheduler.add(spec(index=5))
    drain(scheduler)
    assert "nothing to cancel" in scheduler.cancel(done.job_id)
    assert done.state is JobState.FINISHED
    # Every cancelled task was cancelled on the provider too, so none is left charging.
    statuses = {u.task_id: u.status for u in fake.watch([t for t in fake._tasks], 0)}
    assert sum(s.value == "cancelled" for s in statuses.values()) == 2


def test_cancel_without_provider_support_says_so_and_keeps_the_slot_until_it_ends(make) -> None:
    fake = FakeBackend(latency_s=0.4, limit=1, can_cancel=False)
    scheduler = make(fake, draft_reserved_slots=0)
    first = scheduler.add(spec(index=0))
    wait_for(lambda: first.state is JobState.RUNNING)
    message = scheduler.cancel(first.job_id)
    assert "cannot cancel" in message and "charge" in message
    second = scheduler.add(spec(index=1))
    time.sleep(0.15)
    assert second.state is JobState.QUEUED, "the provider still counts the uncancelled task"
    drain(scheduler)
    assert second.state is JobState.FINISHED and fake.refusals == 0


def test_retries_never_duplicate_creates(make) -> None:
    fake = FakeBackend(latency_s=0.02, limit=4)
    scheduler = make(fake, draft_reserved_slots=0)
    fake.refuse_next = 3  # concurrency refusals: nothing created, safe to resend
    refused = scheduler.add(spec(index=0))
    drain(scheduler)
    assert refused.state is JobState.FINISHED
    assert fake.created_refs.count(refused.job_id) == 1

    fake.ambiguous_failures = 1  # created, but the client cannot know: must not resend
    ambiguous = scheduler.add(spec(index=1))
    drain(scheduler)
    assert ambiguous.state is JobState.UNCERTAIN and ambiguous.error
    assert "connection lost" in ambiguous.error.message and "~10 credits" in ambiguous.error.message
    assert fake.created_refs.count(ambiguous.job_id) == 1

    fake.transient_watch_failures = 2
    fake.transient_download_failures = 2
    flaky = scheduler.add(spec(index=2))
    drain(scheduler)
    assert flaky.state is JobState.FINISHED and fake.created_refs.count(flaky.job_id) == 1


def test_retry_queues_a_new_job_with_the_same_spec(make) -> None:
    fake = FakeBackend(latency_s=0.02, limit=2, fail_when=lambda s: s.prompt == "dragon")
    scheduler = make(fake)
    failed = scheduler.add(spec(prompt="dragon"))
    drain(scheduler)
    assert failed.state is JobState.FAILED
    finished = scheduler.add(spec(prompt="ok"))
    drain(scheduler)
    with pytest.raises(ValueError, match="only failed, cancelled or uncertain"):
        scheduler.retry(finished.job_id)
    again = scheduler.retry(failed.job_id)
    assert again.job_id != failed.job_id and again.spec == failed.spec and again.retry_of == failed.job_id


def test_unknown_backend_fails_with_a_message(make) -> None:
    scheduler = make()
    job = scheduler.add(spec(backend="nope"))
    assert job.state is JobState.FAILED and job.error and "nope" in job.error.message


def test_eta_comes_from_observed_latency(make) -> None:
    fake = FakeBackend(latency_s=0.1, limit=2)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.add_batch(BatchSpec("warm"))
    scheduler.add_batch(BatchSpec("eta"))
    warmup = scheduler.add_many(spec(batch="warm", index=i) for i in range(2))
    drain(scheduler)
    assert all(j.state is JobState.FINISHED for j in warmup)
    scheduler.pause_production()
    queued = scheduler.add_many(spec(batch="eta", index=i) for i in range(6))
    etas = [scheduler.eta(j.job_id) for j in queued]
    assert all(e is not None for e in etas)
    assert etas[0] == pytest.approx(etas[1]) and etas[-1] > etas[0], "later waves wait longer"
    assert 0.05 < etas[0] < 1.0, "priced from the observed ~0.1 s, not the 60 s default"  # type: ignore[operator]
    batch_eta = scheduler.batch_eta("eta")
    assert batch_eta == pytest.approx(max(etas))  # type: ignore[type-var]


def test_threads_stay_bounded_with_many_jobs_and_adds_from_many_threads(make) -> None:
    fake = FakeBackend(latency_s=0.01, limit=10)
    scheduler = make(fake, draft_reserved_slots=0, workers=4)
    for k in range(4):
        scheduler.add_batch(BatchSpec(f"t{k}"))
    adders = [
        threading.Thread(target=lambda k=k: scheduler.add_many(spec(batch=f"t{k}", index=i) for i in range(50)))
        for k in range(4)
    ]
    for thread in adders:
        thread.start()
    for thread in adders:
        thread.join()
    drain(scheduler)
    assert len(scheduler.views()) == 200
    assert all(j.state is JobState.FINISHED for j in scheduler.views())
    # dispatcher + pool (4) + one watcher: independent of the 200 jobs
    assert 2 <= scheduler.threads_peak <= 1 + 4 + 1


def test_views_are_snapshots_with_etas_that_later_changes_do_not_reach(make) -> None:
    fake = FakeBackend(latency_s=0.05, limit=2)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.pause_production()
    jobs = scheduler.add_many(spec(index=i) for i in range(3))
    before = scheduler.views()
    assert [v.job_id for v in before] == [j.job_id for j in jobs]
    assert all(v.state is JobState.QUEUED and v.eta_s is not None and v.eta_s > 0 for v in before)
    assert before[2].eta_s > before[0].eta_s, "the third job waits for a second wave"  # type: ignore[operator]
    with pytest.raises(AttributeError):
        before[0].state = JobState.FAILED  # type: ignore[misc]
    scheduler.resume_production()
    drain(scheduler)
    assert [v.state for v in before] == [JobState.QUEUED] * 3, "a view never changes under its reader"
    after = scheduler.views([jobs[2].job_id, "unknown", jobs[0].job_id])
    assert [(v.job_id, v.state, v.eta_s) for v in after] == [(jobs[2].job_id, JobState.FINISHED, 0.0),
                                                             (jobs[0].job_id, JobState.FINISHED, 0.0)]
    assert after[0].files["model"].endswith("model.glb") and after[0].credits_spent == fake.credits_per_task
    assert [v.job_id for v in scheduler.views(last=2)] == [j.job_id for j in jobs[1:]]
    assert scheduler.view("unknown") is None


def test_summary_counts_states_and_says_whether_production_is_paused(make) -> None:
    scheduler = make(FakeBackend(latency_s=0.02, limit=2), draft_reserved_slots=0)
    done = scheduler.add(spec(index=0))
    drain(scheduler)
    scheduler.pause_production()
    scheduler.add_many(spec(index=i) for i in range(1, 3))
    scheduler.add(spec(backend="nope"))
    summary = scheduler.summary()
    assert summary.production_paused and summary.total == 4 and summary.active == 2
    assert (summary.counts[JobState.FINISHED], summary.counts[JobState.FAILED]) == (1, 1)
    assert done.state is JobState.FINISHED


def test_budget_totals_follow_spending_across_dispatch_passes(make) -> None:
    # A budget for three jobs of 10 credits and two slots: the third waits for a slot, the fourth waits
    # while a refund could still make room, and is skipped (with the rest) once 30 are spent.
    fake = FakeBackend(latency_s=0.05, limit=2, credits_per_task=10)
    scheduler = make(fake, draft_reserved_slots=0)
    scheduler.add_batch(BatchSpec("b", budget=30))
    jobs = scheduler.add_many(spec(index=i) for i in range(6))
    drain(scheduler)
    assert [j.state for j in jobs] == [JobState.FINISHED] * 3 + [JobState.FAILED] * 3
    assert fake.create_calls == 3 and scheduler.budget_skipped["b"] == [j.job_id for j in jobs[3:]]


def test_an_engine_without_journal_or_cache_folder_never_writes_into_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    scheduler = Scheduler([FakeBackend()])
    scheduler.start()
    try:
        scheduler.add_batch(BatchSpec("b"))
        (job,) = scheduler.add_many([spec()])
        drain(scheduler)
    finally:
        scheduler.shutdown()
    assert job.state is JobState.FINISHED and job.files
    assert all(Path(path).is_file() and not Path(path).resolve().is_relative_to(tmp_path)
               for path in job.files.values())
    assert list(tmp_path.iterdir()) == [], "nothing was written where the script happened to run"
