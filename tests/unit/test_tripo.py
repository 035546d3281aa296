"""The Tripo v3 backend over real HTTP against the sandbox server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import drain, wait_for
from test_images import draw

from addon.backends.base import BackendError
from addon.backends.tripo import TripoBackend, error_message
from addon.imaging.glb import read_glb_json
from addon.imaging.png import encode_png
from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.tripo import SandboxState, TripoSandbox

KEY = "tsk_test_key_do_not_log_0123456789"


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    state = SandboxState(latency_s={"draft": 0.3, "textured": 0.5}, limit=4)
    with TripoSandbox(state) as server:
        yield server


def backend(server: TripoSandbox, key: str = KEY) -> TripoBackend:
    return TripoBackend(key, server.url, timeout_s=5)


@pytest.fixture
def scheduler(sandbox: TripoSandbox, tmp_path: Path) -> Iterator[Scheduler]:
    scheduler = Scheduler([backend(sandbox)], journal=Journal(tmp_path / "journal"),
                          config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    scheduler.add_batch(BatchSpec("b"))
    yield scheduler
    scheduler.shutdown()


def text_spec(prompt: str = "wooden crate", mode: Mode = Mode.DRAFT, index: int = 0, batch: str = "") -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="tripo", mode=mode, prompt=prompt, seed=5, index=index, batch=batch)


def test_text_route_end_to_end(scheduler: Scheduler, sandbox: TripoSandbox) -> None:
    job = scheduler.add(text_spec())
    drain(scheduler)
    assert job.state is JobState.FINISHED
    assert read_glb_json(Path(job.files["model"]))["asset"]["version"] == "2.0"
    assert Path(job.files["preview"]).read_bytes().startswith(b"\x89PNG")
    request = next(iter(sandbox.state.tasks.values())).request
    assert request["model"] == "v3.0-20250812" and request["texture"] is False and request["model_seed"] == 5
    assert job.credits_spent == 10, "untextured text task"


def test_image_and_multiview_routes_upload_first(scheduler: Scheduler, sandbox: TripoSandbox, tmp_path: Path) -> None:
    rgba, _ = draw("star", 256, alpha=True)
    np.save(tmp_path / "star.npy", rgba)
    (tmp_path / "star.png").write_bytes(encode_png(rgba))
    prepared = JobSpec.make_params({"prepared_images": (str(tmp_path / "star.npy"),)})
    image = JobSpec(kind=JobKind.IMAGE, backend="tripo", mode=Mode.PRODUCTION, batch="b",
                    image_paths=(str(tmp_path / "star.png"),), params=prepared)
    multiview = JobSpec(kind=JobKind.MULTIVIEW, backend="tripo", mode=Mode.DRAFT,
                        image_paths=(str(tmp_path / "star.png"), str(tmp_path / "star.png")),
                        params=JobSpec.make_params({"prepared_images": (str(tmp_path / "star.npy"),) * 2,
                                                    "views": ("front", "left")}))
    jobs = scheduler.add_many([image, multiview])
    drain(scheduler)
    assert [j.state for j in jobs] == [JobState.FINISHED, JobState.FINISHED]
    posts = [path for method, path, _ in sandbox.state.requests_seen if method == "POST"]
    assert posts.count("/v3/files") == 3
    assert "/v3/generation/image-to-model" in posts and "/v3/generation/multiview-to-model" in posts
    inputs = next(t for t in sandbox.state.tasks.values() if t.kind == "multiview").request["inputs"]
    assert inputs[0].startswith("file_") and inputs[1].startswith("file_") and inputs[2] is None is inputs[3]
    assert jobs[0].credits_spent == 30


def test_status_is_polled_in_batches(sandbox: TripoSandbox, tmp_path: Path) -> None:
    sandbox.state.limit = 20
    client = backend(sandbox)
    scheduler = Scheduler([client], journal=Journal(tmp_path), config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    scheduler.add_batch(BatchSpec("b"))
    try:
        # One result first, so the sandbox serves the rest from its cache: ten results made at once on
        # this machine's two cores would finish late and count extra polls that are not Kiln's doing.
        scheduler.add(text_spec(index=99, mode=Mode.PRODUCTION, batch="b"))
        drain(scheduler)
        client.status_requests = sandbox.state.status_requests = 0
        jobs = scheduler.add_many(text_spec(index=i, mode=Mode.PRODUCTION, batch="b") for i in range(10))
        drain(scheduler)
    finally:
        scheduler.shutdown()
    assert all(j.state is JobState.FINISHED for j in jobs)
    per_job = client.status_requests / len(jobs)
    assert per_job < 2.0, f"{client.status_requests} status requests for {len(jobs)} jobs"
    assert sandbox.state.status_requests == client.status_requests


def test_concurrency_refusal_waits_and_resubmits_without_duplicates(sandbox: TripoSandbox, tmp_path: Path) -> None:
    sandbox.state.limit = 2
    client = backend(sandbox)
    client.capabilities = type(client.capabilities)(**{**client.capabilities.__dict__,
                                                       "concurrency": {"generation": 10, "p1": 5}})
    scheduler = Scheduler([client], journal=Journal(tmp_path), config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    scheduler.add_batch(BatchSpec("b"))
    start_balance = sandbox.state.balance
    try:
        jobs = scheduler.add_many(text_spec(index=i, mode=Mode.PRODUCTION, batch="b") for i in range(6))
        drain(scheduler, timeout=60)
    finally:
        scheduler.shutdown()
    assert all(j.state is JobState.FINISHED for j in jobs)
    assert sandbox.state.creates == 6, "refused creates made nothing; every job exactly once"
    assert start_balance - sandbox.state.balance == 6 * 20
    assert sum(j.credits_spent for j in jobs) == 120


def test_expired_urls_are_refreshed(sandbox: TripoSandbox, scheduler: Scheduler) -> None:
    sandbox.state.url_lifetime_s = 0.0  # every link handed out is already stale …
    job = scheduler.add(text_spec())
    wait_for(lambda: job.state in (JobState.DOWNLOADING, JobState.FAILED, JobState.READY), timeout=10)
    sandbox.state.url_lifetime_s = 60.0  # … until Kiln asks the API again
    drain(scheduler)
    assert job.state is JobState.FINISHED
    gets = [path for method, path, _ in sandbox.state.requests_seen
            if method == "GET" and path.startswith("/v3/tasks/")]
    assert gets, "fresh URLs were fetched with GET /v3/tasks/{id}"


@pytest.mark.parametrize(("code", "text"), [
    (1002, "API key rejected"), (1004, "rejected a parameter"), (2008, "refused by content policy"),
    (2010, "not enough Tripo credits: need ~10, have 1000"), (2015, "deprecated"), (1005, "forbids"),
])
def test_create_errors_map_to_messages_and_are_not_retried(sandbox: TripoSandbox, scheduler: Scheduler,
                                                          code: int, text: str) -> None:
    sandbox.state.create_errors = [code]
    job = scheduler.add(text_spec())
    drain(scheduler)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == str(code) and text in job.error.message
    assert sandbox.state.creates == 0


def test_rate_limit_backs_off_and_retries_the_create(sandbox: TripoSandbox, scheduler: Scheduler) -> None:
    sandbox.state.create_errors = [1007, 2000]
    job = scheduler.add(text_spec())
    drain(scheduler)
    assert job.state is JobState.FINISHED and sandbox.state.creates == 1


def test_failed_task_is_refunded_and_not_counted(sandbox: TripoSandbox, scheduler: Scheduler) -> None:
    sandbox.state.failure_rates = {2008: 1.0}
    before = sandbox.state.balance
    scheduler.add_batch(BatchSpec("b", budget=100))
    job = scheduler.add(text_spec(mode=Mode.PRODUCTION, batch="b"))
    drain(scheduler)
    assert job.state is JobState.FAILED and job.error and job.error.message == error_message(2008)
    assert job.credits_spent == 0
    assert sandbox.state.balance == before and sandbox.state.frozen == 0, "the provider refunded it"


def test_truncated_and_dropped_downloads_are_detected_and_retried(sandbox: TripoSandbox,
                                                                 scheduler: Scheduler) -> None:
    sandbox.state.truncate_downloads = 1
    sandbox.state.drop_connections = 1
    job = scheduler.add(text_spec())
    drain(scheduler, timeout=60)
    assert job.state is JobState.FINISHED
    read_glb_json(Path(job.files["model"]))  # a whole file, not half of one


def test_oversized_download_is_refused(sandbox: TripoSandbox, tmp_path: Path) -> None:
    client = backend(sandbox)
    task_id = client.submit(text_spec(), "ref")
    wait_for(lambda: any(u.status.value == "success" for u in client.watch([task_id], 0.5)), timeout=10)
    with pytest.raises(BackendError, match="over the 0 MB cap"):
        client.http.download(client._fresh_output(task_id)["model_url"], tmp_path / "m.glb", max_bytes=100)
    assert not (tmp_path / "m.glb").exists() and not list(tmp_path.glob("*.part"))


def test_key_never_reaches_logs_or_the_cdn(sandbox: TripoSandbox, scheduler: Scheduler,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.state.create_errors = [1004]
    sandbox.state.failure_rates = {2018: 1.0}
    logging.getLogger("addon.scheduling.engine").warning("while testing, the key was %s", KEY)
    for index in range(2):
        scheduler.add(text_spec(index=index))
    drain(scheduler)
    assert KEY not in caplog.text and "***" in caplog.text
    cdn = [auth for method, path, auth in sandbox.state.requests_seen if path.startswith("/cdn/")]
    api = [auth for method, path, auth in sandbox.state.requests_seen if path.startswith("/v3/")]
    assert all(auth == f"Bearer {KEY}" for auth in api)
    assert all(auth == "" for auth in cdn), "the key goes to the API host only"


def test_invalid_or_missing_key_is_reported_before_anything_is_submitted(sandbox: TripoSandbox) -> None:
    sandbox.state.valid_keys = {KEY}
    with pytest.raises(BackendError, match="API key rejected"):
        backend(sandbox, "tsk_wrong").verify()
    with pytest.raises(BackendError, match="no Tripo API key"):
        TripoBackend("", sandbox.url)
    assert sandbox.state.creates == 0
    assert backend(sandbox).balance() == 1000.0


def test_offline_means_no_request(sandbox: TripoSandbox) -> None:
    client = TripoBackend(KEY, sandbox.url, online=lambda: False)
    with pytest.raises(BackendError, match="online access is off"):
        client.balance()
    assert sandbox.state.requests_seen == []


def test_cost_estimates_follow_the_credit_table() -> None:
    client = TripoBackend(KEY, "http://127.0.0.1:9")
    assert client.estimate_credits(text_spec(mode=Mode.DRAFT)) == 10
    assert client.estimate_credits(text_spec(mode=Mode.PRODUCTION)) == 20
    detailed = JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt="x",
                       params=JobSpec.make_params({"texture_quality": "detailed", "quad": True}))
    assert client.estimate_credits(detailed) == 20 + 10 + 5
    p1 = JobSpec(kind=JobKind.IMAGE, backend="tripo", mode=Mode.PRODUCTION, image_paths=("a.png",),
                 params=JobSpec.make_params({"model": "P1-20260311"}))
    assert client.estimate_credits(p1) == 50 and client.concurrency_group(p1) == "p1"


def test_texture_and_smart_low_poly_routes(sandbox: TripoSandbox, tmp_path: Path) -> None:
    client = backend(sandbox)
    source = client.submit(text_spec(), "source")
    wait_for(lambda: any(u.status.value == "success" for u in client.watch([source], 0.5)), timeout=10)
    texture = JobSpec(kind=JobKind.TEXTURE, backend="tripo", mode=Mode.PRODUCTION, prompt="mossy stone", seed=3,
                      params=JobSpec.make_params({"original_task_id": source, "texture_prompt": "mossy stone"}))
    decimate = JobSpec(kind=JobKind.REFINE, backend="tripo", mode=Mode.PRODUCTION,
                       params=JobSpec.make_params({"original_task_id": source, "operation": "decimate",
                                                   "face_limit": 3000}))
    assert client.estimate_credits(texture) == 10 and client.estimate_credits(decimate) == 30
    ids = [client.submit(texture, "t"), client.submit(decimate, "d")]
    wait_for(lambda: sum(u.status.value == "success" for u in client.watch(ids, 0.5)) == 2, timeout=10)
    for task_id in ids:
        files = client.download(task_id, tmp_path / task_id)
        read_glb_json(Path(files["model"]))
    requests = {t.kind: t.request for t in sandbox.state.tasks.values()}
    assert requests["texture"]["texture_prompt"] == {"text": "mossy stone"}
    assert requests["decimate"]["face_limit"] == 3000 and requests["decimate"]["input"] == source
    bad = JobSpec(kind=JobKind.TEXTURE, backend="tripo", params=JobSpec.make_params({"original_task_id": "nope"}))
    with pytest.raises(BackendError, match="source task is not valid"):
        client.submit(bad, "x")


def test_targets_shape_the_request(sandbox: TripoSandbox) -> None:
    client = backend(sandbox)
    game = JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt="crate",
                   params=JobSpec.make_params({"target": "game", "face_limit": 4000}))
    film = JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt="crate",
                   params=JobSpec.make_params({"target": "film", "face_limit": 4000}))
    p1 = JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt="crate",
                 params=JobSpec.make_params({"model": "P1-20260311", "quad": True, "face_limit": 90000}))
    for spec in (game, film, p1):
        client.submit(spec, "r")
    requests = [t.request for t in sorted(sandbox.state.tasks.values(), key=lambda t: t.created)]
    assert requests[0]["face_limit"] == 4000 and requests[0]["texture"] and requests[0]["pbr"]
    assert "face_limit" not in requests[1] and requests[1]["texture_quality"] == "detailed"
    assert "quad" not in requests[2] and requests[2]["face_limit"] == 20000, "P1 rules"
    assert client.estimate_credits(film) == 30


def test_a_create_refused_by_the_rate_limit_is_given_up_after_the_configured_retries(sandbox: TripoSandbox,
                                                                                     tmp_path: Path) -> None:
    sandbox.state.create_errors = [1007] * 5
    scheduler = Scheduler([backend(sandbox)], journal=Journal(tmp_path),
                          config=SchedulerConfig(draft_reserved_slots=0, max_submit_retries=2))
    scheduler.start()
    try:
        job = scheduler.add(text_spec())
        drain(scheduler, timeout=30)
    finally:
        scheduler.shutdown()
    assert job.state is JobState.FAILED and job.error and job.error.code == "1007"
    assert sandbox.state.create_errors == [1007] * 2, "three creates were tried: the first and two resends"
    assert sandbox.state.creates == 0
