"""Nothing paid for is lost or bought twice, against the Tripo sandbox over real HTTP with real threads:
exactly-once creates across a SIGKILL, retries that resume at the stage that failed (one row per asset,
safe to click twice), cancels that keep what the provider charged for, runs that end when the provider
is gone or denies a task, and statuses Kiln has never seen."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import drain, wait_for

from addon.backends.base import TaskStatus
from addon.backends.tripo import TripoBackend
from addon.jobs import BatchSpec, DoubleChargeRisk, JobKind, JobSpec, JobState, Mode, Stage
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.tripo import SandboxState, TripoSandbox

KEY = "tsk_money_test_key_0123456789"
OTHER_KEY = "tsk_another_account_987654321"
WORKER = Path(__file__).with_name("uncertain_worker.py")


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.3, "textured": 0.6}, limit=10)) as server:
        yield server


def client(server: TripoSandbox, key: str = KEY) -> TripoBackend:
    return TripoBackend(key, server.url, timeout_s=5)


class Engines:
    """Schedulers on one journal, started and shut down like Kiln sessions (each one a "restart")."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: list[Scheduler] = []

    def start(self, backend: TripoBackend, **config: object) -> Scheduler:
        scheduler = Scheduler([backend], journal=Journal(self.folder),
                              config=SchedulerConfig(draft_reserved_slots=0, **config))  # type: ignore[arg-type]
        scheduler.start()
        scheduler.add_batch(BatchSpec("b", backend="tripo"))
        self.running.append(scheduler)
        return scheduler

    def stop(self, scheduler: Scheduler) -> None:
        self.running.remove(scheduler)
        scheduler.shutdown()


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[Engines]:
    made = Engines(tmp_path / "journal")
    yield made
    for scheduler in list(made.running):
        made.stop(scheduler)


def crate(index: int = 0, mode: Mode = Mode.PRODUCTION) -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="tripo", mode=mode, prompt=f"crate {index}", batch="b", index=index)


# ------------------------------------------------------------------------------------------- exactly once
def test_sigkill_between_intent_and_task_id_leaves_uncertain_jobs_that_are_never_resent(
        sandbox: TripoSandbox, engines: Engines, tmp_path: Path) -> None:
    sandbox.state.create_response_delay_s = 5.0  # the tasks are made and charged; their ids are late
    worker = subprocess.Popen([sys.executable, str(WORKER), str(engines.folder), sandbox.url, KEY, "4"],
                              stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: sandbox.state.creates == 2, timeout=30)  # two submit threads, both on the wire
    finally:
        worker.kill()  # SIGKILL
        worker.wait()
    sandbox.state.create_response_delay_s = 0.0
    charged = sandbox.state.balance

    scheduler = engines.start(client(sandbox))
    drain(scheduler, timeout=30)
    views = scheduler.views()
    uncertain = [v for v in views if v.state is JobState.UNCERTAIN]
    assert len(uncertain) == 2 and all(v.needs_confirmation for v in uncertain)
    assert all("may have been charged ~20 credits" in v.error.message for v in uncertain)  # type: ignore[union-attr]
    assert [v.state for v in views if v not in uncertain] == [JobState.FINISHED] * 2, "the others were sent once"
    assert sandbox.state.creates == 4, "one create per job: the uncertain two were not sent again"
    assert charged - sandbox.state.balance == 2 * 20

    with pytest.raises(DoubleChargeRisk, match="double charge"):
        scheduler.retry(uncertain[0].job_id)
    assert sandbox.state.creates == 4
    again = scheduler.retry(uncertain[0].job_id, confirm_double_charge=True)
    drain(scheduler)
    assert again.state is JobState.FINISHED and sandbox.state.creates == 5, "sent again only when confirmed"


def test_a_create_whose_answer_is_lost_is_uncertain_not_resent(sandbox: TripoSandbox, engines: Engines) -> None:
    sandbox.state.create_response_delay_s = 2.0
    backend = TripoBackend(KEY, sandbox.url, timeout_s=0.5)  # gives up on the answer
    scheduler = engines.start(backend)
    job = scheduler.add(crate())
    drain(scheduler)
    assert job.state is JobState.UNCERTAIN and job.error and "did not answer" in job.error.message
    assert sandbox.state.creates == 1 and job.stage is Stage.SUBMITTED


# ------------------------------------------------------------------------------------------- retry
def test_a_failed_download_is_retried_from_the_paid_task_and_replaces_its_row(
        sandbox: TripoSandbox, engines: Engines) -> None:
    sandbox.state.drop_connections = 10_000  # the CDN cuts every download short
    scheduler = engines.start(client(sandbox), give_up_after_s=0.5)
    failed = scheduler.add(crate())
    drain(scheduler)
    assert failed.state is JobState.FAILED and failed.stage is Stage.TASK_DONE and failed.task_id
    assert "the task id is kept" in failed.error.message  # type: ignore[union-attr]
    assert scheduler.views()[0].recoverable and scheduler.summary().failed == 1

    sandbox.state.drop_connections = 0
    again = scheduler.retry(failed.job_id)
    assert again.state is JobState.DOWNLOADING and again.task_id == failed.task_id
    drain(scheduler)
    assert again.state is JobState.FINISHED and Path(again.files["model"]).is_file()
    assert sandbox.state.creates == 1, "the paid task was downloaded again, not created again"
    assert again.credits_spent == 20 and failed.credits_spent == 0, "its cost moved with it, counted once"
    (row,) = scheduler.views()
    assert row.job_id == again.job_id and [a.job_id for a in row.attempts] == [failed.job_id]
    assert row.attempts[0].state is JobState.FAILED and not row.attempts[0].can_retry
    assert scheduler.summary().failed == 0, "the replaced attempt no longer counts as failed"


def test_an_import_failure_is_retried_from_the_cache(sandbox: TripoSandbox, engines: Engines) -> None:
    scheduler = engines.start(client(sandbox))
    job = scheduler.add(crate())
    wait_for(lambda: job.state is JobState.READY, timeout=20)
    taken = scheduler.take_ready()
    assert taken is job
    scheduler.mark_failed(job, "import_failed", "Blender could not read it")
    again = scheduler.retry(job.job_id)
    assert again.state is JobState.READY and again.files == job.files
    assert scheduler.take_ready() is again
    scheduler.mark_imported(again)
    assert sandbox.state.creates == 1


def test_retry_twice_or_from_many_threads_makes_one_attempt(sandbox: TripoSandbox, engines: Engines) -> None:
    sandbox.state.create_errors = [1004]  # refused: nothing was created, so a retry creates
    scheduler = engines.start(client(sandbox))
    failed = scheduler.add(crate())
    drain(scheduler)
    assert failed.state is JobState.FAILED and failed.stage is Stage.NONE
    results: list[str] = []
    clicks = [threading.Thread(target=lambda: results.append(scheduler.retry(failed.job_id).job_id))
              for _ in range(8)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    assert len(set(results)) == 1, "every click got the same live attempt"
    assert scheduler.retry(failed.job_id).job_id == results[0], "and so does a later click on the old row"
    drain(scheduler)
    assert sandbox.state.creates == 1
    (row,) = scheduler.views()
    assert row.state is JobState.FINISHED and len(row.attempts) == 1


def test_a_task_the_provider_failed_is_refunded_and_a_retry_creates_again(sandbox: TripoSandbox,
                                                                          engines: Engines) -> None:
    sandbox.state.task_overrides = [{"status": "failed", "error_code": 2008}]
    scheduler = engines.start(client(sandbox))
    failed = scheduler.add(crate())
    drain(scheduler)
    assert failed.state is JobState.FAILED and failed.stage is Stage.NONE and failed.credits_spent == 0
    again = scheduler.retry(failed.job_id)
    assert again.state is JobState.QUEUED
    drain(scheduler)
    assert again.state is JobState.FINISHED and sandbox.state.creates == 2


# ------------------------------------------------------------------------------------------- cancel
def test_cancel_on_tripo_keeps_the_paid_result_and_never_pays_again(sandbox: TripoSandbox,
                                                                    engines: Engines) -> None:
    scheduler = engines.start(client(sandbox))
    job = scheduler.add(crate())
    wait_for(lambda: job.state is JobState.RUNNING)
    message = scheduler.cancel(job.job_id)
    assert "cannot cancel a started task" in message and "~20 credits" in message
    view = scheduler.view(job.job_id)
    assert view is not None and view.state is JobState.RUNNING and not view.can_cancel, "still watched"
    drain(scheduler)
    assert job.state is JobState.CANCELLED and job.result_kept and job.credits_spent == 20
    assert Path(job.files["model"]).is_file(), "the result the provider charged for is in the cache"
    row = scheduler.view(job.job_id)
    assert row is not None and row.can_import_anyway and not row.can_retry

    imported = scheduler.import_anyway(job.job_id)
    assert imported.state is JobState.READY
    assert scheduler.retry(job.job_id) is imported, "Retry on the old row is the same import, never a create"
    drain(scheduler)
    assert imported.state is JobState.FINISHED and sandbox.state.creates == 1


def test_retry_while_a_cancel_is_pending_keeps_the_job(sandbox: TripoSandbox, engines: Engines) -> None:
    scheduler = engines.start(client(sandbox))
    job = scheduler.add(crate())
    wait_for(lambda: job.state is JobState.RUNNING)
    scheduler.cancel(job.job_id)
    assert scheduler.retry(job.job_id) is job and not job.cancel_requested
    drain(scheduler)
    assert job.state is JobState.FINISHED and sandbox.state.creates == 1


# ------------------------------------------------------------------------------------------- every run ends
def test_when_the_provider_is_gone_the_run_ends_and_a_later_retry_fetches_the_task(
        sandbox: TripoSandbox, engines: Engines) -> None:
    sandbox.state.latency_s = {"draft": 1.0, "textured": 1.0}
    scheduler = engines.start(client(sandbox), give_up_after_s=1.0)
    job = scheduler.add(crate())
    wait_for(lambda: job.state is JobState.RUNNING)
    sandbox.__exit__(None, None, None)  # the provider disappears
    drain(scheduler, timeout=30)  # ends: no stall
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "unreachable"
    assert job.error.message.startswith("could not reach tripo for ")
    assert "the task id is kept: --resume (or Retry) fetches it without paying again" in job.error.message
    engines.stop(scheduler)

    with TripoSandbox(sandbox.state) as back:  # the provider is back (at another address)
        resumed = engines.start(client(back))
        (row,) = resumed.views()
        assert row.recoverable and row.task_id == job.task_id
        again = resumed.retry(row.job_id)
        drain(resumed, timeout=30)
        assert again.state is JobState.FINISHED and back.state.creates == 1


def test_a_provider_that_does_not_know_the_task_fails_it_after_three_answers(sandbox: TripoSandbox,
                                                                              engines: Engines) -> None:
    sandbox.state.latency_s = {"draft": 2.0, "textured": 2.0}
    first = engines.start(client(sandbox))
    job = first.add(crate())
    wait_for(lambda: job.state is JobState.RUNNING)
    engines.stop(first)

    other_account = client(sandbox, OTHER_KEY)  # resumed with a key that never made that task
    second = engines.start(other_account)
    drain(second, timeout=30)
    (row,) = second.views()
    assert row.state is JobState.FAILED and row.error is not None and row.error.code == "unknown_task"
    assert row.error.message == f"the provider does not know task {job.task_id}: was the API key changed?"
    assert row.recoverable, "the id is kept: with the right key, Retry fetches it"
    assert sandbox.state.creates == 1


def test_statuses_kiln_has_not_seen_map_to_states_and_never_stall_the_others(sandbox: TripoSandbox,
                                                                              engines: Engines) -> None:
    sandbox.state.task_overrides = [
        {"status": "banned"}, {"status": "expired"}, {"status": "failed", "error_code": 2018},
        {"status": "unknown"}, {"status": "sparkling"}, {"status": None, "progress": "lots"}, {},
    ]
    scheduler = engines.start(client(sandbox), give_up_after_s=3.0)
    jobs = []
    for index in range(7):  # one at a time, so each task takes its override in order
        jobs.append(scheduler.add(crate(index)))
        wait_for(lambda: jobs[-1].task_id is not None)
    wait_for(lambda: jobs[6].state is JobState.READY, timeout=20)
    assert [j.state for j in jobs[3:6]] == [JobState.RUNNING] * 3, "odd statuses did not stop the poll"
    drain(scheduler, timeout=30)
    codes = [(j.state, j.error.code if j.error else "") for j in jobs]
    assert codes == [(JobState.FAILED, "2008"), (JobState.FAILED, "2018"), (JobState.FAILED, "2018"),
                     (JobState.FAILED, "unreachable"), (JobState.FAILED, "unreachable"),
                     (JobState.FAILED, "unreachable"), (JobState.FINISHED, "")]
    assert "banned" in jobs[0].error.message and "expired" in jobs[1].error.message  # type: ignore[union-attr]
    assert "no readable status" in jobs[4].error.message and "'sparkling'" in jobs[4].error.message  # type: ignore[union-attr]
    assert all(j.task_id for j in jobs[3:6]) and all(j.stage is Stage.SUBMITTED for j in jobs[3:6])
    assert sandbox.state.creates == 7


def test_a_list_answer_is_read_entry_by_entry() -> None:
    backend = TripoBackend(KEY, "http://127.0.0.1:9")
    data = {"tasks": ["not a task", {"status": "success"}, {"task_id": "a", "status": 5},
                      {"task_id": "b", "status": "BANNED", "progress": None},
                      {"task_id": "c", "status": "running", "progress": "x"},
                      {"task_id": "d", "status": "success", "output": "nope", "credits_consumed": "NaN"}],
            "missed": ["e", 7]}
    updates = {u.task_id: u for u in backend._updates(["a", "b", "c", "d", "e"], data)}
    assert {k: u.status for k, u in updates.items()} == {
        "a": TaskStatus.UNKNOWN, "b": TaskStatus.FAILED, "c": TaskStatus.RUNNING, "d": TaskStatus.SUCCESS,
        "e": TaskStatus.MISSING}
    assert updates["b"].error_code == "2008" and updates["c"].progress == 0 and updates["d"].credits == 0
    assert backend._updates(["a"], "garbage") == [] and backend._updates(["a"], {"tasks": 3}) == []
