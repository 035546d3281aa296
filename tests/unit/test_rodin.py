"""The Hyper3D Rodin backend over real HTTP against the sandbox server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import drain, wait_for
from test_images import draw

from addon.backends import registry
from addon.backends.base import BackendError, TaskStatus
from addon.backends.rodin import RodinBackend, job_statuses
from addon.imaging.glb import read_glb_json
from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.rodin import RodinSandbox, RodinState

KEY = "rodin_test_key_do_not_log_0123456789"


@pytest.fixture
def sandbox() -> Iterator[RodinSandbox]:
    with RodinSandbox(RodinState(latency_s={"Sketch": 0.2, "default": 0.3})) as server:
        yield server


def backend(server: RodinSandbox, key: str = KEY) -> RodinBackend:
    return RodinBackend(key, server.url, timeout_s=5, poll_interval_s=0.05)


@pytest.fixture
def scheduler(sandbox: RodinSandbox, tmp_path: Path) -> Iterator[Scheduler]:
    scheduler = Scheduler([backend(sandbox)], journal=Journal(tmp_path / "journal"),
                          config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    scheduler.add_batch(BatchSpec("b"))
    yield scheduler
    scheduler.shutdown()


def text_spec(prompt: str = "wooden crate", mode: Mode = Mode.DRAFT, seed: int = 70000, **params: object) -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="rodin", mode=mode, prompt=prompt, seed=seed,
                   params=JobSpec.make_params(dict(params)))


def image_spec(tmp_path: Path, count: int, mode: Mode = Mode.PRODUCTION, **params: object) -> JobSpec:
    paths = []
    for number in range(count):
        rgba, _ = draw("star", 96 + number, alpha=True)  # each view's size tells it apart
        np.save(tmp_path / f"view{number}.npy", rgba)
        paths.append(str(tmp_path / f"view{number}.npy"))
    return JobSpec(kind=JobKind.IMAGE if count == 1 else JobKind.MULTIVIEW, backend="rodin", mode=mode,
                   image_paths=tuple(paths), params=JobSpec.make_params({"prepared_images": tuple(paths), **params}))


def test_draft_text_is_a_sketch_polled_by_subscription_key_and_downloaded(scheduler: Scheduler,
                                                                          sandbox: RodinSandbox) -> None:
    job = scheduler.add(text_spec())
    drain(scheduler)
    assert job.state is JobState.FINISHED, job.error
    assert read_glb_json(Path(job.files["model"]))["asset"]["version"] == "2.0"
    assert Path(job.files["preview"]).read_bytes().startswith(b"\x89PNG")
    task = next(iter(sandbox.state.tasks.values()))
    assert task.fields["tier"] == "Sketch" and task.fields["geometry_file_format"] == "glb"
    assert task.fields["seed"] == str(70000 % 65536), "seeds above Rodin's range are sent modulo 65536"
    assert job.task_id == f"{task.uuid}:{task.subscription_key}", "the journal keeps both ids"
    assert job.credits_spent == 0.5
    posts = [path for method, path, _ in sandbox.state.requests_seen if method == "POST"]
    assert posts[0] == "/api/v2/rodin" and "/api/v2/status" in posts and posts[-1] == "/api/v2/download"
    assert sandbox.state.creates == 1


def test_production_tier_follows_the_target_and_images_keep_their_order(sandbox: RodinSandbox,
                                                                        tmp_path: Path) -> None:
    client = backend(sandbox)
    game = client.submit(image_spec(tmp_path, 1, target="game", face_limit=8000), "a")
    film = client.submit(image_spec(tmp_path, 3, target="film"), "b")
    tiers = RodinBackend(KEY, sandbox.url, tiers={"film": "Gen-2"}).submit(text_spec(mode=Mode.PRODUCTION,
                                                                                    target="film"), "c")
    fields = {t: sandbox.state.tasks[t.split(":")[0]] for t in (game, film, tiers)}
    assert fields[game].fields["tier"] == "Regular" and fields[game].fields["quality_override"] == "8000"
    assert fields[film].fields["tier"] == "Detail" and fields[film].fields["mesh_mode"] == "Quad"
    assert fields[film].fields["condition_mode"] == "concat" and len(fields[film].images) == 3
    widths = [int.from_bytes(png[16:20], "big") for png in fields[film].images]  # PNG IHDR width
    assert widths == [96, 97, 98], "the images are sent in order (the first drives the material)"
    assert fields[tiers].fields["tier"] == "Gen-2", "the Production tier per target is configurable"


def test_more_than_five_images_are_refused_before_anything_is_sent(sandbox: RodinSandbox, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="at most 5 images") as raised:
        backend(sandbox).submit(image_spec(tmp_path, 6), "x")
    assert raised.value.nothing_created and sandbox.state.requests_seen == []


def test_a_task_with_one_failed_job_fails_and_is_not_sent_again(sandbox: RodinSandbox, scheduler: Scheduler) -> None:
    sandbox.state.fail_jobs = [1]
    job = scheduler.add(text_spec())
    drain(scheduler)
    assert job.state is JobState.FAILED and job.error is not None
    assert "failed 1 of the task's 2 jobs" in job.error.message
    assert sandbox.state.creates == 1 and sandbox.state.download_requests == 0


def test_job_statuses_done_only_when_all_are_done() -> None:
    assert job_statuses([{"status": "Done"}, {"status": "Done"}]) is TaskStatus.SUCCESS
    assert job_statuses([{"status": "Done"}, {"status": "Generating"}]) is TaskStatus.RUNNING
    assert job_statuses([{"status": "Done"}, {"status": "Failed"}]) is TaskStatus.FAILED
    assert job_statuses([{"status": "Waiting"}]) is TaskStatus.QUEUED
    assert job_statuses([{"status": "???"}]) is TaskStatus.UNKNOWN
    assert job_statuses(None) is TaskStatus.UNKNOWN and job_statuses([]) is TaskStatus.UNKNOWN


def test_expired_links_are_asked_for_again(sandbox: RodinSandbox, scheduler: Scheduler) -> None:
    sandbox.state.url_lifetime_s = -1.0  # every link handed out is already stale …
    job = scheduler.add(text_spec())
    wait_for(lambda: sandbox.state.download_requests >= 2, timeout=15)
    sandbox.state.url_lifetime_s = 600.0  # … until Kiln asks /download again
    drain(scheduler)
    assert job.state is JobState.FINISHED, job.error
    assert sandbox.state.download_requests >= 3 and sandbox.state.creates == 1


@pytest.mark.parametrize(("error", "code", "text"), [
    ("INSUFFICIENT_FUND", "INSUFFICIENT_FUND", "not enough Rodin credits: need ~0.5, have 100"),
    ("Not authenticated", "not_authenticated", "API key rejected"),
    (400, "400", "Rodin error"),
    ("SOMETHING_NEW", "rodin_error", "Rodin error: SOMETHING_NEW"),
])
def test_create_errors_map_to_messages_and_nothing_is_created(sandbox: RodinSandbox, scheduler: Scheduler,
                                                             error: str | int, code: str, text: str) -> None:
    sandbox.state.create_errors = [error]
    job = scheduler.add(text_spec())
    drain(scheduler)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == code and text in job.error.message
    assert sandbox.state.creates == 0


def test_a_server_error_on_create_is_uncertain_and_not_resent(sandbox: RodinSandbox, scheduler: Scheduler) -> None:
    sandbox.state.create_errors = [500]
    job = scheduler.add(text_spec())
    drain(scheduler)
    assert job.state is JobState.UNCERTAIN
    assert sum(1 for _, path, _ in sandbox.state.requests_seen if path.endswith("/rodin")) == 1


def test_a_rejected_key_is_reported_by_balance_and_verify(sandbox: RodinSandbox) -> None:
    sandbox.state.valid_keys = {KEY}
    assert backend(sandbox).balance() == 100.0
    with pytest.raises(BackendError, match="API key rejected"):
        backend(sandbox, "wrong").verify()


def test_another_key_or_a_lost_task_is_missing(sandbox: RodinSandbox) -> None:
    task_id = backend(sandbox).submit(text_spec(), "x")
    stranger = backend(sandbox, "someone_else")
    assert [u.status for u in stranger.watch([task_id], 0.1)] == [TaskStatus.MISSING]
    with pytest.raises(BackendError) as raised:
        stranger.download(task_id, Path("/nonexistent"))
    assert raised.value.code == "unknown_task"


def test_a_restarted_backend_resumes_from_the_journaled_task_id(sandbox: RodinSandbox, tmp_path: Path) -> None:
    task_id = backend(sandbox).submit(text_spec(), "x")
    fresh = backend(sandbox)  # what a restart builds: it knows only the journaled id
    wait_for(lambda: any(u.status is TaskStatus.SUCCESS for u in fresh.watch([task_id], 0.05)), timeout=10)
    assert read_glb_json(Path(fresh.download(task_id, tmp_path)["model"]))["asset"]["version"] == "2.0"


def test_polling_is_paced_by_the_interval(sandbox: RodinSandbox) -> None:
    sandbox.state.latency_s = {"Sketch": 60.0, "default": 60.0}
    client = RodinBackend(KEY, sandbox.url, poll_interval_s=30.0)
    task_id = client.submit(text_spec(), "x")
    for _ in range(5):
        assert client.watch([task_id], 0.01) == []
    assert sandbox.state.status_requests == 0, "not due yet: nothing is asked"


def test_key_never_reaches_logs_or_the_file_host(sandbox: RodinSandbox, scheduler: Scheduler,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.state.create_errors = ["Not authenticated"]
    failed = scheduler.add(text_spec())
    drain(scheduler)
    job = scheduler.add(text_spec(prompt="barrel"))
    drain(scheduler)
    assert job.state is JobState.FINISHED and failed.state is JobState.FAILED
    files = [auth for _, path, auth in sandbox.state.requests_seen if path.startswith("/cdn/")]
    api = [auth for _, path, auth in sandbox.state.requests_seen if path.startswith("/api/v2/")]
    assert files and all(auth == "" for auth in files)
    assert api and all(auth == f"Bearer {KEY}" for auth in api)
    assert KEY not in caplog.text and KEY not in (failed.error.message if failed.error else "")


def test_the_registry_builds_rodin_from_the_environment(sandbox: RodinSandbox) -> None:
    env = {"KILN_RODIN_API_KEY": KEY, "KILN_RODIN_BASE_URL": sandbox.url}
    built = registry.build("rodin", registry.resolve("rodin", environ=env))
    assert isinstance(built, RodinBackend) and built.balance() == 100.0
    assert registry.resolve("rodin", environ={}).base_url == "https://api.hyper3d.com/api/v2"
    with pytest.raises(BackendError, match="unencrypted"):
        registry.build("rodin", registry.resolve("rodin", environ={**env, "KILN_RODIN_BASE_URL": "http://example.com"}))
