"""Tripo at the physical limit, over real HTTP against the sandbox: each task paced by its own predicted
finish, full v3 status handling, refusal recovery, the plan's real limit, current field names and batch
texturing. Assertions count (which status request saw what, the sandbox's slot timeline), never time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import drain, wait_for

from addon.backends.tripo import FIELD_NAMES, TripoBackend
from addon.imaging.glb import read_glb_json
from addon.jobs import THEME_PROMPT, BatchSpec, JobKind, JobSpec, JobState, Mode
from addon.journal import Journal
from addon.presets import theme_from_prompt
from addon.requests import manifest_asset_specs, manifest_batch
from addon.scheduling import Scheduler, SchedulerConfig, eta
from sandbox.tripo import SandboxState, TripoSandbox

KEY = "tsk_limits_test_key_0123456789"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Any]:
    """One draft and one textured result per prompt used here, made once: every sandbox of this module
    serves its tasks from them, since results made on this machine's two cores at once would finish
    late, which is not what these tests are about."""
    with TripoSandbox(SandboxState(latency_s={"draft": 0.1, "textured": 0.1})) as server:
        scheduler = start(server, tmp_path_factory.mktemp("warm"))
        try:
            scheduler.add_many(text(mode, prompt=prompt) for mode in Mode for prompt in ("rock", "crate"))
            drain(scheduler)
        finally:
            scheduler.shutdown()
        return dict(server.state._result_cache)


@pytest.fixture
def sandbox(results: dict[Any, Any]) -> Iterator[TripoSandbox]:
    state = SandboxState(latency_s={"draft": 0.4, "textured": 0.6}, limit=10)
    state._result_cache.update(results)
    with TripoSandbox(state) as server:
        yield server


def start(server: TripoSandbox, tmp_path: Path, **config: Any) -> Scheduler:
    scheduler = Scheduler([TripoBackend(KEY, server.url, timeout_s=5)], journal=Journal(tmp_path / "journal"),
                          config=SchedulerConfig(**{"draft_reserved_slots": 0, **config}))
    scheduler.start()
    scheduler.add_batch(BatchSpec("b", backend="tripo"))
    return scheduler


def text(mode: Mode, index: int = 0, prompt: str = "rock", batch: str = "b") -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="tripo", mode=mode, prompt=prompt, index=index, seed=index + 1,
                   batch=batch if mode is Mode.PRODUCTION else "")


def first_answer(server: TripoSandbox, task_id: str, status: str) -> int:
    """Index of the first status request that answered `status` for the task."""
    return next(i for i, (_, seen) in enumerate(server.state.status_log) if seen.get(task_id) == status)


def first_request_after(server: TripoSandbox, moment: float) -> int:
    return next(i for i, (when, _) in enumerate(server.state.status_log) if when >= moment)


# ---------------------------------------------------------------------------------------------- prediction
def test_prediction_from_the_prior_from_progress_and_after_observed_finishes() -> None:
    latency = eta.LatencyModel()
    latency.set_priors("tripo", {})
    predictor = eta.FinishPredictor("tripo", latency)
    clock = predictor.track("t", "draft", started=0.0)
    assert clock.next_look == eta.PROBE_S, "with only a prior: a probe for progress, not a wait for 40 s"
    predictor.saw("t", 1.0, progress=0.0)
    predictor.saw("t", 2.0, progress=0.0)
    assert clock.next_look == 2.0 + eta.PROBE_S, "no progress yet: the same probe, never a growing interval"
    predictor.saw("t", 3.0, progress=0.5)
    assert predictor.left_s("t", 3.0) == pytest.approx(3.0), "half done in 3 s: 3 s left"
    assert clock.next_look == pytest.approx(6.0), "near: looked at when it should end"
    predictor.saw("t", 6.0, progress=0.9)
    assert clock.next_look == pytest.approx(6.0 / 0.9), "progress corrects the prediction"
    predictor.saw("t", 6.7, progress=0.95, left_s=2.0)
    assert predictor.left_s("t", 6.7) == pytest.approx(2.0), "the provider's own time left wins"
    predictor.saw("t", 8.0, progress=1.0, done=True)
    assert latency.known("tripo", "draft") and latency.expected("tripo", "draft") == pytest.approx(8.0)

    short = predictor.track("u", "draft", started=100.0)
    assert short.next_look == pytest.approx(104.0), "observed 8 s: halfway there first"
    predictor.saw("u", 104.0, progress=0.0)
    assert short.next_look == pytest.approx(108.0), "then at the expected finish"
    predictor.saw("u", 108.0, progress=0.0)
    assert short.next_look == pytest.approx(108.0 + eta.GRANULARITY_S), "not done: 250 ms later"
    predictor.saw("u", 108.25, progress=0.0)
    assert short.next_look - 108.25 <= eta.OVERDUE_CAP_S, "long overdue: spaced out, but capped"
    latency.observe("tripo", "production", 3.0)
    near = predictor.track("v", "production", started=200.0)
    assert near.next_look == pytest.approx(203.0), "a short observed task: one look, at its finish"


def test_the_panel_eta_falls_with_progress_and_never_exceeds_what_it_implies() -> None:
    etas = [eta.running_eta(80.0, elapsed_s=10.0, progress=p) for p in (0.0, 0.2, 0.5, 0.9, 1.0)]
    assert etas == sorted(etas, reverse=True) and etas[-1] == 0.0
    assert eta.running_eta(80.0, 10.0, 0.5) == pytest.approx(10.0), "half done after 10 s: 10 s, not 70"
    assert eta.running_eta(80.0, 10.0, 0.5, predicted_left_s=4.0) == 4.0


def test_the_provider_s_time_left_and_timestamps_reach_the_prediction(sandbox: TripoSandbox) -> None:
    sandbox.state.left_time = True
    sandbox.state.latency_s = {"draft": 0.8, "textured": 0.8}
    client = TripoBackend(KEY, sandbox.url, timeout_s=5)
    task_id = client.submit(text(Mode.DRAFT), "ref")
    seen = []
    wait_for(lambda: seen.append(client.watch([task_id], 0)[0]) or seen[-1].status.value == "running", step=0.05)
    assert seen[-1].left_s is not None and 0 <= seen[-1].left_s <= 1, "running_left_time is read"
    wait_for(lambda: client.watch([task_id], 0)[0].status.value == "success", timeout=10)
    done = client.watch([task_id], 0)[0]
    task = sandbox.state.tasks[task_id]
    assert done.duration_s == pytest.approx(task.completed - task.created, abs=1e-3), "created_at → completed_at"


# ---------------------------------------------------------------------------------------------- pacing
def test_a_draft_among_nine_longer_production_tasks_is_looked_at_for_its_own_finish(
        sandbox: TripoSandbox, tmp_path: Path) -> None:
    sandbox.state.latency_s = {"draft": 1.5, "textured": 8.0}
    scheduler = start(sandbox, tmp_path, draft_reserved_slots=1)
    try:
        production = scheduler.add_many(text(Mode.PRODUCTION, i) for i in range(9))
        wait_for(lambda: all(j.state is JobState.RUNNING for j in production))
        draft = scheduler.add(text(Mode.DRAFT))
        wait_for(lambda: draft.state in (JobState.READY, JobState.FAILED), timeout=10)
        assert all(j.state is JobState.RUNNING for j in production), "the draft went first"
        for job in production:
            scheduler.cancel(job.job_id)
    finally:
        scheduler.shutdown()
    assert draft.task_id is not None
    done = sandbox.state.tasks[draft.task_id].completed
    seen = first_answer(sandbox, draft.task_id, "success")
    assert seen == first_request_after(sandbox, done), "noticed by the first status request after it was done"
    polls = list(scheduler.polls)
    assert polls[seen][1] == draft.task_id, "that request was due for the draft, not paced by Production"
    assert polls[seen][2] == 10, "and one batched request asked about all ten tasks"
    looks = [p for p in polls if p[1] == draft.task_id]
    assert len(looks) <= 3, f"the draft's own window: a probe, its finish, one more at most ({len(looks)})"


def test_an_unknown_status_in_a_batch_of_ten_does_not_delay_the_other_nine(
        sandbox: TripoSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sandbox.state.task_overrides = [{"status": "reticulating"}]
    scheduler = start(sandbox, tmp_path, give_up_after_s=1.5)
    try:
        jobs = scheduler.add_many(text(Mode.PRODUCTION, i) for i in range(10))
        drain(scheduler, timeout=30)
    finally:
        scheduler.shutdown()
    odd = next(j for j in jobs if j.task_id and sandbox.state.tasks[j.task_id].override)
    others = [j for j in jobs if j is not odd]
    assert all(j.state is JobState.FINISHED for j in others)
    for job in others:
        assert job.task_id is not None
        done = sandbox.state.tasks[job.task_id].completed
        assert first_answer(sandbox, job.task_id, "success") == first_request_after(sandbox, done)
        answers = [seen[job.task_id] for _, seen in sandbox.state.status_log if job.task_id in seen]
        assert answers.count("success") == 1, "taken on the first answer that said so"
    assert odd.state is JobState.FAILED and odd.error is not None and odd.error.code == "unreachable"
    assert "reticulating" in odd.error.message and "task id is kept" in odd.error.message
    assert caplog.text.count("'reticulating' is new to Kiln") == 1, "logged once, watched as running"


@pytest.mark.parametrize(("override", "code", "words"), [
    ({"status": "banned"}, "2008", "refused by moderation"),
    ({"status": "expired"}, "2018", "expired"),
    ({"status": "failed", "error_code": 2008}, "2008", "content policy"),
])
def test_banned_and_expired_fail_without_a_retry(sandbox: TripoSandbox, tmp_path: Path, override: dict[str, Any],
                                                 code: str, words: str) -> None:
    sandbox.state.task_overrides = [override]
    scheduler = start(sandbox, tmp_path)
    try:
        job = scheduler.add(text(Mode.DRAFT))
        drain(scheduler)
    finally:
        scheduler.shutdown()
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == code and words in job.error.message
    assert sandbox.state.creates == 1 and job.credits_spent == 0, "not sent again, nothing counted"


def test_a_task_in_the_missed_list_fails_after_three_answers(sandbox: TripoSandbox, tmp_path: Path) -> None:
    sandbox.state.latency_s = {"draft": 30.0, "textured": 30.0}
    scheduler = start(sandbox, tmp_path)
    try:
        job = scheduler.add(text(Mode.DRAFT))
        wait_for(lambda: job.state is JobState.RUNNING)
        with sandbox.state.lock:
            sandbox.state.tasks.pop(str(job.task_id))  # the provider no longer knows it
        drain(scheduler, timeout=20)
    finally:
        scheduler.shutdown()
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "unknown_task"
    missed = [seen for _, seen in sandbox.state.status_log if not seen]
    assert len(missed) == 3, "three `missed` answers in a row, then it is failed"


# ---------------------------------------------------------------------------------------------- slots
def test_after_another_client_held_every_slot_drafts_probe_back_without_waiting_for_a_finish(
        sandbox: TripoSandbox, tmp_path: Path) -> None:
    sandbox.state.latency_s = {"draft": 2.0, "textured": 2.0}
    sandbox.state.hold_slots(10, 0.6)
    scheduler = start(sandbox, tmp_path)
    try:
        jobs = scheduler.add_many(text(Mode.DRAFT, i, prompt="crate") for i in range(5))
        drain(scheduler, timeout=30)
    finally:
        scheduler.shutdown()
    assert all(j.state is JobState.FINISHED for j in jobs)
    events = [event for _, event, _, _ in sorted(sandbox.state.timeline)]
    assert events.count("create") == 5 and events.count("refused") >= 5, "all five were refused at first"
    first_done = events.index("done")
    assert events[:first_done].count("create") == 5, \
        "all five were created before any finished: probes, not one slot per finished task"
    after_hold = [e for e in events[: first_done] if e in ("create", "refused")]
    recovery = after_hold[after_hold.index("create"):]
    assert recovery.count("refused") <= 1, "once the slots were free, at most one probe was refused"


def test_the_plan_limit_keeps_the_draft_slot_real(sandbox: TripoSandbox, tmp_path: Path) -> None:
    sandbox.state.limit = 3
    sandbox.state.latency_s = {"draft": 0.4, "textured": 0.8}
    scheduler = start(sandbox, tmp_path, draft_reserved_slots=1, plan_concurrency={"tripo": 3})
    try:
        production = scheduler.add_many(text(Mode.PRODUCTION, i) for i in range(4))
        wait_for(lambda: sum(j.state is JobState.RUNNING for j in production) == 2)
        draft = scheduler.add(text(Mode.DRAFT))
        drain(scheduler, timeout=30)
    finally:
        scheduler.shutdown()
    assert draft.state is JobState.FINISHED and all(j.state is JobState.FINISHED for j in production)
    assert not [e for e in sandbox.state.timeline if e[1] == "refused"], "nothing refused: the slot was free"
    assert max(in_use for _, event, _, in_use in sandbox.state.timeline if event == "create") <= 3


def test_a_refused_plan_limit_is_learned_and_production_leaves_the_draft_slot(
        sandbox: TripoSandbox, tmp_path: Path) -> None:
    sandbox.state.limit = 3
    sandbox.state.latency_s = {"draft": 0.4, "textured": 0.8}
    scheduler = start(sandbox, tmp_path, draft_reserved_slots=1)
    try:
        production = scheduler.add_many(text(Mode.PRODUCTION, i) for i in range(6))
        drain(scheduler, timeout=40)
    finally:
        scheduler.shutdown()
    assert all(j.state is JobState.FINISHED for j in production)
    refused = [i for i, e in enumerate(sandbox.state.timeline) if e[1] == "refused"]
    creates = [e for e in sandbox.state.timeline[refused[-1] + 1:] if e[1] == "create"]
    assert creates and max(in_use for *_, in_use in creates) <= 2, \
        "after learning the limit, production never took the third (draft) slot"


# ---------------------------------------------------------------------------------------------- fields
def bodies(client: TripoBackend) -> dict[str, dict[str, Any]]:
    """Kiln's create body per route, for one spec of each kind."""
    image = JobSpec(kind=JobKind.IMAGE, backend="tripo", mode=Mode.PRODUCTION, image_paths=("a.png",), seed=3)
    multiview = JobSpec(kind=JobKind.MULTIVIEW, backend="tripo", mode=Mode.DRAFT, image_paths=("a.png", "b.png"),
                        seed=3, params=JobSpec.make_params({"views": ("front", "right")}))
    texture = JobSpec(kind=JobKind.TEXTURE, backend="tripo", mode=Mode.PRODUCTION, prompt="moss", seed=3,
                      params=JobSpec.make_params({"original_task_id": "geo"}))
    decimate = JobSpec(kind=JobKind.REFINE, backend="tripo", mode=Mode.PRODUCTION,
                       params=JobSpec.make_params({"original_task_id": "geo", "operation": "decimate"}))
    found = {}
    for spec in (text(Mode.DRAFT), image, multiview, texture, decimate):
        route, body = client.request_fields(spec, upload=lambda path: f"file_{Path(path).stem}")
        found[route] = body
    return found


def test_request_fields_follow_the_current_sdk_names() -> None:
    found = bodies(TripoBackend(KEY, "http://127.0.0.1:9"))
    assert set(found) == set(FIELD_NAMES), "every route in the table is built"
    for route, names in FIELD_NAMES.items():
        assert set(names.values()) <= set(found[route]), route
        assert not {"file", "files", "original_model_task_id", "model_version"} & set(found[route]), route
    assert found["/v3/generation/multiview-to-model"]["inputs"] == ["file_a", None, None, "file_b"]
    assert found["/v3/models/texture"]["input"] == "geo" == found["/v3/mesh/decimate"]["input"]


def test_the_sdk_sends_the_same_field_names(sandbox: TripoSandbox) -> None:
    """The official SDK against the same sandbox: its bodies carry the names of Kiln's table."""
    tripo3d = pytest.importorskip("tripo3d")
    import asyncio

    async def run() -> None:
        client = tripo3d.TripoClient(api_key=KEY, v3_base_url=sandbox.url)
        try:
            geo = await client.text_to_model("rock", model_version="v3.0-20250812", model_seed=3)
            await client.image_to_model("file_token_a", model_version="v3.0-20250812", model_seed=3)
            await client.multiview_to_model(["file_token_a", None, None, "file_token_b"],
                                            model_version="v3.0-20250812", model_seed=3)
            sandbox.state.tasks[geo].status = "success"
            await client.texture_model(geo, text_prompt="moss", model_version="v3.0-20250812", texture_seed=3)
            await client.mesh_decimate(geo, model="v3.0", face_limit=5000)
        finally:
            await client.close()

    sandbox.state.make_results = False  # only the requests matter here
    asyncio.run(run())
    sdk = {task.kind: task.request for task in sandbox.state.tasks.values()}
    kiln = bodies(TripoBackend(KEY, sandbox.url))
    routes = {"text": "/v3/generation/text-to-model", "image": "/v3/generation/image-to-model",
              "multiview": "/v3/generation/multiview-to-model", "texture": "/v3/models/texture",
              "decimate": "/v3/mesh/decimate"}
    for kind, route in routes.items():
        shared = set(FIELD_NAMES[route].values())
        assert shared <= set(sdk[kind]) and shared <= set(kiln[route]), route


# ---------------------------------------------------------------------------------------------- texture
def test_a_themed_batch_is_textured_by_tripo_counted_in_estimate_and_budget(
        sandbox: TripoSandbox, tmp_path: Path) -> None:
    theme = theme_from_prompt("mossy green stone")
    batch = manifest_batch(name="ruins", mode=Mode.PRODUCTION, backend="tripo", priority=BatchSpec.priority,
                           start_at=None, budget=60.0, finish=None, target="game", theme=theme)
    specs = [s for i in range(3) for s in manifest_asset_specs(batch, kind="text", index=i, name=f"ruin{i}",
                                                              base_seed=1, prompt="rock")]
    assert all(s.params_dict[THEME_PROMPT] == "mossy green stone" for s in specs)
    client = TripoBackend(KEY, sandbox.url, timeout_s=5)
    assert client.estimate_credits(specs[0]) == 20 + 10, "geometry plus the texture step"
    before = sandbox.state.balance
    scheduler = Scheduler([client], journal=Journal(tmp_path / "journal"),
                          config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    try:
        scheduler.add_batch(batch)
        jobs = scheduler.add_many(specs)
        drain(scheduler, timeout=30)
    finally:
        scheduler.shutdown()
    finished = [j for j in jobs if j.state is JobState.FINISHED]
    skipped = [j for j in jobs if j.state is JobState.FAILED]
    assert len(finished) == 2 and len(skipped) == 1 and skipped[0].error is not None
    assert skipped[0].error.code == "over_budget", "two textured models use the budget of 60"
    assert before - sandbox.state.balance == 60 and sum(j.credits_spent for j in finished) == 60
    for job in finished:
        geometry, textured = job.task_ids
        assert job.task_id == textured
        request = sandbox.state.tasks[textured].request
        assert request["input"] == geometry and request["texture_prompt"] == {"text": "mossy green stone"}
        materials = [m["name"] for m in read_glb_json(Path(job.files["model"])).get("materials", [])]
        assert materials and all("textured: mossy green stone" in m for m in materials), \
            "the textured model is the one downloaded for import"


def test_a_chained_step_sent_before_a_crash_is_never_sent_again_on_its_own(
        sandbox: TripoSandbox, tmp_path: Path) -> None:
    spec = JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt="rock", batch="b",
                   params=JobSpec.make_params({THEME_PROMPT: "gold"}))
    creates = sandbox.state.creates
    scheduler = start(sandbox, tmp_path)
    job = scheduler.add(spec)
    wait_for(lambda: job.state is JobState.RUNNING)
    sandbox.state.create_response_delay_s = 3.0  # the texture create is made, its answer late: Kiln stops
    wait_for(lambda: sandbox.state.creates == creates + 2, timeout=10)
    scheduler.shutdown(timeout_s=0.2)
    sandbox.state.create_response_delay_s = 0.0
    time.sleep(0.1)
    again = start(sandbox, tmp_path)
    try:
        drain(again, timeout=20)
    finally:
        again.shutdown()
    recovered = again.jobs[job.job_id]
    assert recovered.state is JobState.FAILED and recovered.error is not None
    assert recovered.error.code == "uncertain_step" and "may have been charged" in recovered.error.message
    assert sandbox.state.creates == creates + 2, "the texture step was not created a second time"


def test_a_failed_texture_step_is_retried_from_the_paid_geometry(sandbox: TripoSandbox, tmp_path: Path) -> None:
    spec = JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt="rock", batch="b",
                   params=JobSpec.make_params({THEME_PROMPT: "gold"}))
    scheduler = start(sandbox, tmp_path)
    try:
        job = scheduler.add(spec)
        wait_for(lambda: job.state is JobState.RUNNING)
        sandbox.state.create_errors = [1004]  # the texture create is refused
        drain(scheduler)
        assert job.state is JobState.FAILED and job.error is not None and "texture step failed" in job.error.message
        assert job.view().recoverable, "the geometry is paid and kept"
        retried = scheduler.retry(job.job_id)
        drain(scheduler)
    finally:
        scheduler.shutdown()
    assert retried.state is JobState.FINISHED and len(retried.task_ids) == 2
    assert retried.task_ids[0] == job.task_ids[0], "the same geometry task, not a new one"
    assert [t.kind for t in sandbox.state.tasks.values()] == ["text", "texture"]
    assert retried.credits_spent == 30, "geometry 20 and texture 10, each counted once"
