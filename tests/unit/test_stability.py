"""The Stability Fast 3D backend over real HTTP against the sandbox server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import drain
from test_images import draw

from addon.backends import registry
from addon.backends.base import BackendError, TaskStatus
from addon.backends.stability import StabilityBackend
from addon.batch.manifest import ManifestError, load_manifest
from addon.imaging.glb import read_glb_json
from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.stability import StabilitySandbox, StabilityState

KEY = "sk-stability_test_key_do_not_log_0123"


@pytest.fixture
def sandbox() -> Iterator[StabilitySandbox]:
    with StabilitySandbox(StabilityState()) as server:
        yield server


def backend(server: StabilitySandbox, scratch: Path, key: str = KEY) -> StabilityBackend:
    return StabilityBackend(key, server.url, scratch_dir=scratch, timeout_s=10)


@pytest.fixture
def scheduler(sandbox: StabilitySandbox, tmp_path: Path) -> Iterator[Scheduler]:
    scheduler = Scheduler([backend(sandbox, tmp_path / "scratch")], journal=Journal(tmp_path / "journal"),
                          config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    scheduler.add_batch(BatchSpec("b"))
    yield scheduler
    scheduler.shutdown()


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> str:
    rgba, _ = draw("star", 128, alpha=True)
    path = tmp_path_factory.mktemp("images") / "star.npy"
    np.save(path, rgba)
    return str(path)


def image_spec(picture: str, mode: Mode = Mode.DRAFT, **params: object) -> JobSpec:
    return JobSpec(kind=JobKind.IMAGE, backend="stability", mode=mode, image_paths=(picture,),
                   params=JobSpec.make_params({"prepared_images": (picture,), **params}))


def test_one_synchronous_call_makes_the_draft(scheduler: Scheduler, sandbox: StabilitySandbox, picture: str) -> None:
    job = scheduler.add(image_spec(picture))
    drain(scheduler)
    assert job.state is JobState.FINISHED, job.error
    assert read_glb_json(Path(job.files["model"]))["asset"]["version"] == "2.0"
    assert [p for m, p, _ in sandbox.state.requests_seen if m == "POST" or "3d" in p] == \
        ["/v2beta/3d/stable-fast-3d"], "one call, no polling, no second download"
    assert sandbox.state.calls == [{"texture_resolution": "512", "foreground_ratio": "0.85", "remesh": "none",
                                    "vertex_count": "-1"}]
    assert job.credits_spent == 10 and sandbox.state.balance == 990


def test_production_options_follow_the_target(sandbox: StabilitySandbox, tmp_path: Path, picture: str) -> None:
    client = backend(sandbox, tmp_path)
    client.submit(image_spec(picture, Mode.PRODUCTION, target="game", face_limit=5000), "a")
    client.submit(image_spec(picture, Mode.PRODUCTION, target="film"), "b")
    client.submit(image_spec(picture, Mode.PRODUCTION, target="game", face_limit=90000, foreground_ratio=0.7), "c")
    game, film, capped = sandbox.state.calls
    assert (game["texture_resolution"], game["remesh"], game["vertex_count"]) == ("1024", "triangle", "2500")
    assert (film["texture_resolution"], film["remesh"], film["vertex_count"]) == ("2048", "none", "-1")
    assert capped["vertex_count"] == "20000" and capped["foreground_ratio"] == "0.7"


def test_a_text_prompt_is_refused_before_any_request(sandbox: StabilitySandbox, tmp_path: Path) -> None:
    text = JobSpec(kind=JobKind.TEXT, backend="stability", prompt="wooden crate")
    with pytest.raises(BackendError, match="image input only, not from a text prompt") as raised:
        backend(sandbox, tmp_path).submit(text, "x")
    assert raised.value.nothing_created and sandbox.state.requests_seen == []
    problem = registry.input_problem("stability", "text")
    assert problem is not None and "Tripo" in problem and "Rodin" in problem and "Local" in problem
    assert registry.input_problem("stability", "image") is None and registry.input_problem("rodin", "text") is None


def test_a_manifest_with_a_text_asset_on_stability_is_refused(tmp_path: Path, picture: str) -> None:
    manifest = tmp_path / "batch.toml"
    manifest.write_text('[batch]\nname = "props_01"\nbackend = "stability"\n\n[[asset]]\nprompt = "crate"\n')
    with pytest.raises(ManifestError, match="image input only, not from a text prompt"):
        load_manifest(manifest, set(registry.names()))


def test_content_moderation_is_a_clear_failure_and_not_retried(sandbox: StabilitySandbox, scheduler: Scheduler,
                                                               picture: str) -> None:
    sandbox.state.next_errors = ["content_moderation"]
    job = scheduler.add(image_spec(picture))
    drain(scheduler)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "content_moderation" and "content moderation" in job.error.message
    assert len(sandbox.state.calls) == 1 and sandbox.state.balance == 1000


@pytest.mark.parametrize(("status", "state", "text", "calls"), [
    (400, JobState.FAILED, "Stability rejected the request: sandbox error 400", 1),
    (401, JobState.FAILED, "API key rejected", 1),
    (402, JobState.FAILED, "not enough Stability credits", 1),
    (413, JobState.FAILED, "too large", 1),
    (422, JobState.FAILED, "could not use the request", 1),
    (429, JobState.FINISHED, "", 2),  # nothing made: sent again after Retry-After
    (500, JobState.UNCERTAIN, "", 1),  # may have been charged: never sent again on its own
])
def test_errors_map_to_messages(sandbox: StabilitySandbox, scheduler: Scheduler, picture: str, status: int,
                                state: JobState, text: str, calls: int) -> None:
    sandbox.state.next_errors = [status]
    job = scheduler.add(image_spec(picture))
    drain(scheduler)
    assert job.state is state
    assert text in (job.error.message if job.error else "")
    assert len(sandbox.state.calls) == calls


def test_a_restarted_backend_finds_the_result_by_its_journaled_id(sandbox: StabilitySandbox, tmp_path: Path,
                                                                  picture: str) -> None:
    task_id = backend(sandbox, tmp_path / "scratch").submit(image_spec(picture), "x")
    fresh = backend(sandbox, tmp_path / "scratch")
    assert [u.status for u in fresh.watch([task_id, "sf3d-0000", "../etc"], 0.1)] == \
        [TaskStatus.SUCCESS, TaskStatus.MISSING, TaskStatus.MISSING]
    files = fresh.download(task_id, tmp_path / "out")
    assert read_glb_json(Path(files["model"]))["asset"]["version"] == "2.0"
    assert fresh.download(task_id, tmp_path / "out") == files, "a repeated download finds the moved file"


def test_balance_and_a_rejected_key(sandbox: StabilitySandbox, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.state.valid_keys = {KEY}
    assert backend(sandbox, tmp_path).balance() == 1000
    with pytest.raises(BackendError, match="API key rejected") as raised:
        backend(sandbox, tmp_path, "sk-wrong_key_do_not_log").verify()
    assert "sk-wrong_key_do_not_log" not in raised.value.message and "sk-wrong_key_do_not_log" not in caplog.text
    assert all(auth.startswith("Bearer sk-") for _, _, auth in sandbox.state.requests_seen)


def test_the_registry_builds_stability_from_the_environment(sandbox: StabilitySandbox, tmp_path: Path) -> None:
    env = {"KILN_STABILITY_API_KEY": KEY, "KILN_STABILITY_BASE_URL": sandbox.url}
    built = registry.build("stability", registry.resolve("stability", environ=env), scratch_dir=tmp_path)
    assert isinstance(built, StabilityBackend) and built.balance() == 1000
    assert registry.resolve("stability", environ={}).base_url == "https://api.stability.ai"
    assert registry.capabilities("stability").input_kinds == frozenset({"image"})


def test_an_answer_cut_off_mid_glb_is_uncertain_not_a_crash(sandbox: StabilitySandbox, scheduler: Scheduler,
                                                             picture: str, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """The GLB comes in the 200 itself (backends.md §4): a connection lost mid-answer leaves a call that was
    made and charged. It reads as a broken answer that may have cost money (never sent again on its own),
    not as a backend crash (requests' ChunkedEncodingError used to escape as 'failed unexpectedly')."""
    sandbox.state.cut_answers = 1
    with pytest.raises(BackendError) as raised:
        backend(sandbox, tmp_path / "own").submit(image_spec(picture), "x")
    assert raised.value.code == "answer_broken" and not raised.value.nothing_created
    assert sandbox.state.balance == 1000 - 10, "Stability charged the call"

    sandbox.state.cut_answers = 1
    caplog.set_level(logging.ERROR)
    job = scheduler.add(image_spec(picture))
    drain(scheduler)
    assert job.state is JobState.UNCERTAIN and job.error is not None
    assert "broke off" in job.error.message and "unexpectedly" not in job.error.message
    assert len(sandbox.state.calls) == 2, "the uncertain call was not sent again"
    assert "crashed" not in caplog.text
