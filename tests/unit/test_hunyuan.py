"""Self-hosted Hunyuan3D over real HTTP against `sandbox.hunyuan` servers on 127.0.0.1 (no mocks): every
route, the servers' known faults, and the pool (least-loaded routing, failover, probing back)."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from helpers import drain, wait_for

from addon.backends import registry
from addon.backends.base import BackendError, TaskStatus
from addon.backends.hunyuan import HunyuanBackend
from addon.batch.manifest import ManifestError, load_manifest
from addon.imaging.glb import read_glb_json
from addon.imaging.png import encode_png
from addon.jobs import BatchSpec, Job, JobKind, JobSpec, JobState, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from addon.scheduling.engine import MOVED_FROM
from sandbox.hunyuan import INITIAL, TEXTURED, HunyuanSandbox, HunyuanState


@pytest.fixture
def image(tmp_path: Path) -> str:
    pixels = np.zeros((32, 32, 4), np.uint8)
    pixels[8:24, 8:24] = (200, 120, 40, 255)
    path = tmp_path / "crate.png"
    path.write_bytes(encode_png(pixels))
    return str(path)


def spec(image: str, mode: Mode = Mode.DRAFT, seed: int = 7, **params: object) -> JobSpec:
    return JobSpec(kind=JobKind.IMAGE, backend="hunyuan", mode=mode, image_paths=(image,), seed=seed, index=seed,
                   batch="b", params=JobSpec.make_params(params) if params else ())


def servers(*states: HunyuanState) -> Iterator[list[HunyuanSandbox]]:
    with ExitStack() as stack:
        yield [stack.enter_context(HunyuanSandbox(state)) for state in states]


@pytest.fixture
def one() -> Iterator[HunyuanSandbox]:
    yield from (s[0] for s in servers(HunyuanState(latency_s=0.2, texture_latency_s=0.2)))


def run(backend: HunyuanBackend, specs: list[JobSpec], tmp_path: Path, timeout: float = 20.0,
        give_up_s: float = 120.0) -> list[Job]:
    scheduler = Scheduler([backend], journal=Journal(tmp_path / "journal"),
                          config=SchedulerConfig(draft_reserved_slots=0, give_up_after_s=give_up_s))
    scheduler.start()
    scheduler.add_batch(BatchSpec("b"))
    try:
        jobs = scheduler.add_many(specs)
        drain(scheduler, timeout=timeout)
    finally:
        scheduler.shutdown()
    return jobs


def materials(job: Job) -> list[str]:
    return [m["name"] for m in read_glb_json(Path(job.files["model"])).get("materials", [])]


def test_send_and_status_with_draft_and_production_mapping(one: HunyuanSandbox, image: str, tmp_path: Path) -> None:
    backend = HunyuanBackend([one.url], slots_per_server=2)
    draft, production = run(backend, [spec(image), spec(image, Mode.PRODUCTION, seed=8)], tmp_path)
    assert draft.state is production.state is JobState.FINISHED
    assert materials(production) == ["shape textured: hunyuan paint"] and materials(draft) == ["shape"]
    requests = {job.request["seed"]: job.request for job in one.state.jobs.values()}
    assert {k: requests[7][k] for k in ("octree_resolution", "num_inference_steps", "texture")} == \
        {"octree_resolution": 128, "num_inference_steps": 5, "texture": False}
    assert {k: requests[8][k] for k in ("octree_resolution", "num_inference_steps", "texture", "face_count")} == \
        {"octree_resolution": 256, "num_inference_steps": 20, "texture": True, "face_count": 40000}
    assert base64.b64decode(requests[7]["image"]).startswith(b"\x89PNG")
    assert one.state.sends == 2 and one.state.finished_seeds.count(7) == 1
    assert draft.task_id is not None and draft.task_id.endswith(f"@{one.url}"), "the journal names the server"
    film = backend.request_body(spec(image, Mode.PRODUCTION, target="film"))
    game = backend.request_body(spec(image, Mode.PRODUCTION, target="game", face_limit=500))
    assert (film["octree_resolution"], film["face_count"], game["face_count"]) == (384, 100000, 1000)


def test_version_2_0_without_health_or_failure_state(image: str, tmp_path: Path) -> None:
    for sandbox in servers(HunyuanState(version="2.0", latency_s=0.2, texture_latency_s=0.1, crash_seeds={1})):
        backend = HunyuanBackend([sandbox[0].url], slots_per_server=2, stuck_after_s=1.0)
        backend.verify()  # no /health on 2.0: any answer says the server is up
        crashed, ok = run(backend, [spec(image, seed=1), spec(image, Mode.PRODUCTION, seed=2)], tmp_path)
    assert ok.state is JobState.FINISHED, ok.error
    assert materials(ok) == ["shape textured: hunyuan paint"]
    assert crashed.state is JobState.FAILED and crashed.error is not None and crashed.error.code == "stuck"
    assert "no failure state" in crashed.error.message and "probably crashed" in crashed.error.message


def test_2_1_error_status_fails_the_job(image: str, tmp_path: Path) -> None:
    for sandbox in servers(HunyuanState(latency_s=0.2, crash_next=1)):
        (job,) = run(HunyuanBackend([sandbox[0].url]), [spec(image)], tmp_path)
    assert job.state is JobState.FAILED and job.error is not None
    assert "failed this job: Failed to read generated file" in job.error.message


def test_2_1_texture_false_stuck_at_texturing(image: str, tmp_path: Path) -> None:
    """Served with the texturing answer: accepted at once. Never served (upstream): a clear failure."""
    for sandbox in servers(HunyuanState(latency_s=0.2, initial_in_texturing=False)):
        backend = HunyuanBackend([sandbox[0].url], stuck_after_s=0.8)
        (job,) = run(backend, [spec(image)], tmp_path)
    assert job.state is JobState.FAILED and job.error is not None
    assert "never served it" in job.error.message and "turn texture on" in job.error.message


def test_the_404_error_quirk_on_send_and_generate(image: str, tmp_path: Path) -> None:
    for pair in servers(HunyuanState(latency_s=0.2, error_answers=1),
                        HunyuanState(latency_s=0.2, error_answers=1, no_send=True)):
        send, sync = pair
        # The engine resends a create the server answered with its error: nothing was made.
        (job,) = run(HunyuanBackend([send.url]), [spec(image)], tmp_path)
        assert job.state is JobState.FINISHED and send.state.sends == 1 and send.state.finished == 1
        backend = HunyuanBackend([sync.url])
        with pytest.raises(BackendError) as refused:
            backend.submit(spec(image), "j1")
        assert refused.value.code == "server_error" and refused.value.nothing_created and refused.value.retryable
        assert "NETWORK ERROR DUE TO HIGH TRAFFIC" in refused.value.message
        task_id = backend.submit(spec(image), "j1")  # the synchronous fallback: the model is already here
        assert [u.status for u in backend.watch([task_id], 1.0)] == [TaskStatus.SUCCESS]
        files = backend.download(task_id, tmp_path / "sync")
        assert Path(files["model"]).read_bytes()[:4] == b"glTF"
        assert ("POST", "/generate") in sync.state.requests_seen and sync.state.generates == 1


def test_out_of_range_fields_and_text_are_refused(one: HunyuanSandbox, image: str, tmp_path: Path) -> None:
    text = JobSpec(kind=JobKind.TEXT, backend="hunyuan", mode=Mode.DRAFT, prompt="crate", batch="b")
    bad, words = run(HunyuanBackend([one.url]), [spec(image, octree_resolution=2048), text], tmp_path)
    assert bad.state is words.state is JobState.FAILED and bad.error is not None and words.error is not None
    assert "refused the request" in bad.error.message and "octree_resolution" in bad.error.message
    assert "from an image only" in words.error.message
    assert one.state.sends == 0


def test_work_goes_to_the_least_loaded_server(image: str, tmp_path: Path) -> None:
    for pool in servers(HunyuanState(latency_s=0.3), HunyuanState(latency_s=0.3)):
        backend = HunyuanBackend([s.url for s in pool], slots_per_server=2)
        assert backend.capabilities.concurrency == {"gpu": 4}, "one backend with the pool's summed capacity"
        ids = [backend.submit(spec(image, seed=n), f"j{n}") for n in range(4)]
        assert [s.state.sends for s in pool] == [2, 2]
        with pytest.raises(BackendError, match="busy") as full:
            backend.submit(spec(image, seed=9), "j9")
        assert full.value.code == "concurrency_limit"
        assert {i.split("@")[1] for i in ids} == {s.url for s in pool}


def test_failover_kill_one_of_two_servers_mid_batch(image: str, tmp_path: Path) -> None:
    """Nothing lost, nothing run twice: every seed finished exactly once over both servers, and what the
    killed server held is exactly what moved."""
    for pool in servers(HunyuanState(latency_s=0.4), HunyuanState(latency_s=0.4)):
        doomed, survivor = pool
        backend = HunyuanBackend([s.url for s in pool], slots_per_server=2, probe_every_s=0.2)
        scheduler = Scheduler([backend], journal=Journal(tmp_path / "journal"),
                              config=SchedulerConfig(draft_reserved_slots=0))
        scheduler.start()
        scheduler.add_batch(BatchSpec("b"))
        try:
            jobs = scheduler.add_many(spec(image, seed=n) for n in range(1, 13))
            wait_for(lambda: doomed.state.finished >= 2 and doomed.generating() >= 1)  # noqa: B023
            doomed.kill()
            drain(scheduler, timeout=30)
        finally:
            scheduler.shutdown()
        delivered = sorted(doomed.state.delivered_seeds + survivor.state.delivered_seeds)
        assert all(j.state is JobState.FINISHED for j in jobs)
        assert delivered == list(range(1, 13)), "every job's model fetched exactly once"
        assert sorted(set(survivor.state.finished_seeds)) == sorted(survivor.state.finished_seeds)
        # Run again: only what the dead server held (lost, or finished a moment before and never fetched).
        unfetched = len(doomed.state.finished_seeds) - len(doomed.state.delivered_seeds)
        assert backend.moves == doomed.state.lost + unfetched and doomed.state.lost >= 1
        assert len(survivor.state.finished_seeds) == 12 - len(doomed.state.delivered_seeds)
        moved = [j for j in jobs if j.metadata.get(MOVED_FROM)]
        assert len(moved) == backend.moves
        journaled = {j.job_id: j for j in Journal(tmp_path / "journal").load().jobs}
        for job in moved:
            assert job.task_id is not None and job.task_id.endswith(f"@{survivor.url}")
            assert [old.split("@")[1] for old in job.metadata[MOVED_FROM]] == [doomed.url], "sent again once"
            assert journaled[job.job_id].task_id == job.task_id, "the journal names the server that owns it"
            assert journaled[job.job_id].metadata[MOVED_FROM] == job.metadata[MOVED_FROM]
        assert survivor.state.sends == survivor.state.finished


def test_a_server_taken_out_is_probed_back(image: str, tmp_path: Path) -> None:
    for pool in servers(HunyuanState(latency_s=0.1), HunyuanState(latency_s=0.1)):
        flaky, steady = pool
        backend = HunyuanBackend([s.url for s in pool], probe_every_s=0.1)
        flaky.kill()
        backend.verify()  # one server down: the pool starts without it
        assert backend.servers[flaky.url].out and not backend.servers[steady.url].out
        assert backend.submit(spec(image), "j1").endswith(f"@{steady.url}")
        flaky.restart()
        wait_for(lambda: not backend.watch([], 0.0) and not backend.servers[flaky.url].out)  # noqa: B023
        assert backend.submit(spec(image, seed=3), "j3").endswith(f"@{flaky.url}"), "least loaded again"
        assert flaky.state.health_requests >= 1


def test_a_recovered_task_is_asked_of_its_server(one: HunyuanSandbox, image: str, tmp_path: Path) -> None:
    task_id = HunyuanBackend([one.url]).submit(spec(image, Mode.PRODUCTION), "j1")
    fresh = HunyuanBackend([one.url])  # after a restart: nothing in memory but the journaled id
    wait_for(lambda: fresh.watch([task_id], 1.0)[0].status is TaskStatus.SUCCESS)
    model = Path(HunyuanBackend([one.url]).download(task_id, tmp_path / "r")["model"])
    assert read_glb_json(model)["materials"][0]["name"].endswith("textured: hunyuan paint")
    (elsewhere,) = HunyuanBackend(["http://127.0.0.1:1"]).watch([task_id], 1.0)
    assert elsewhere.status is TaskStatus.FAILED and "no longer in the Hunyuan3D server list" in elsewhere.error_message


def test_pool_configuration_environment_manifest_and_plain_http(tmp_path: Path) -> None:
    entry = registry.info("hunyuan")
    assert entry.url_list and not entry.needs_key and entry.needs_network
    env = {"KILN_HUNYUAN_URLS": "http://10.0.0.5:8081, http://10.0.0.6:8081/,"}
    settings = registry.resolve("hunyuan", base_url="http://pref:8081", environ=env)
    backend = registry.build("hunyuan", settings)
    assert list(backend.servers) == ["http://10.0.0.5:8081", "http://10.0.0.6:8081"]  # type: ignore[attr-defined]
    assert backend.capabilities.concurrency == {"gpu": 2}, "plain http on the LAN: no key to protect"
    with pytest.raises(BackendError, match="names no server"):
        registry.build("hunyuan", registry.resolve("hunyuan", environ={}))
    path = tmp_path / "b.toml"
    path.write_text('[batch]\nname = "b"\nbackend = "hunyuan"\n[[asset]]\nprompt = "crate"\n')
    with pytest.raises(ManifestError, match="image input only, not from a text prompt"):
        load_manifest(path, set(registry.names()))  # refused before anything is queued
    (tmp_path / "i.png").write_bytes(encode_png(np.full((16, 16, 4), 200, np.uint8)))
    text = '[batch]\nname = "b"\nbackend = "hunyuan"\n[[asset]]\nimage = "i.png"\n[backends.hunyuan]\n'
    path.write_text(text + 'urls = ["http://gpu1:8081", "http://gpu2:8081"]\nconcurrency = 3')
    manifest = load_manifest(path, set(registry.names()))
    assert manifest.backend_settings["hunyuan"]["base_url"] == "http://gpu1:8081,http://gpu2:8081"
    assert manifest.plan_concurrency == {"hunyuan": 3}
    for bad, message in (('urls = "http://gpu1:8081"', "must be a list"), ('urls = ["ftp://x"]', "http"),
                         ('urls = []', "must be a list")):
        path.write_text(text + bad)
        with pytest.raises(ManifestError, match=message):
            load_manifest(path, set(registry.names()))
    path.write_text(text.replace("hunyuan]", "tripo]") + 'urls = ["https://a.example"]')
    with pytest.raises(ManifestError, match="only a pooled backend"):
        load_manifest(path, set(registry.names()))


def test_the_sandbox_runs_from_the_command_line_and_prints_its_url() -> None:
    process = subprocess.Popen([sys.executable, "-m", "sandbox.hunyuan", "--port", "0", "--version", "2.0"],
                               cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        backend = HunyuanBackend([url])
        backend.verify()  # a 2.0 server: no /health, but it answers
        assert not backend.servers[url].out
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("version", ["2.0", "2.1"])
def test_a_model_read_while_the_server_still_writes_it_is_asked_for_again(version: str, image: str,
                                                                         tmp_path: Path) -> None:
    """api_server.py answers `completed` as soon as the job's .glb exists (backends.md §4), so a status read
    mid-write carries a cut-off model. That used to finish the job with half a GLB (and never ask again);
    the model is asked for again until it is whole."""
    for sandbox in servers(HunyuanState(version=version, latency_s=0.2, texture_latency_s=0.1, partial_reads=2)):
        draft, production = run(HunyuanBackend([sandbox[0].url], slots_per_server=2),
                                [spec(image), spec(image, Mode.PRODUCTION, seed=8)], tmp_path)
        state = sandbox[0].state
    assert draft.state is production.state is JobState.FINISHED
    assert Path(draft.files["model"]).read_bytes() == INITIAL
    assert Path(production.files["model"]).read_bytes() == TEXTURED
    assert state.partial_reads == 0 and sorted(state.delivered_seeds) == [7, 8]
