"""Production finishing in background Blender processes: what lands equals finishing in-process, a killed
worker fails its one job (and says why, in the journal), a retry redoes only the finishing, and drafts
never wait behind Production results on the main thread."""

from __future__ import annotations

import importlib
import os
import signal
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import ADDON_MODULE


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{ADDON_MODULE}.addon.{name}")


def counting_local(scratch: Path) -> Any:
    """The local backend, counting its creates (a create is what a resume must never repeat)."""
    local = engine("backends.local")

    class CountingLocal(local.LocalBackend):  # type: ignore[misc,name-defined]
        creates = 0

        def submit(self, spec: Any, client_ref: str) -> str:
            type(self).creates += 1
            return str(super().submit(spec, client_ref))

    return CountingLocal(scratch_dir=scratch)


def queue_batch(scheduler: Any, name: str, prompts: list[str], preset: str = "game") -> list[str]:
    requests, presets, jobs = engine("requests"), engine("presets"), engine("jobs")
    batch = jobs.BatchSpec(name, finish=presets.PRESETS[preset], target="game")
    scheduler.add_batch(batch)
    ids = []
    for index, prompt in enumerate(prompts):
        for job in scheduler.add_many(requests.manifest_asset_specs(batch, kind="text", index=index,
                                                                    name=f"{name}_{index}", base_seed=5,
                                                                    prompt=prompt)):
            ids.append(job.job_id)
    return ids


def landed(name: str) -> dict[int, dict[str, Any]]:
    """Per asset index: what an artist (or a game engine) gets: LOD names and faces, materials, textures."""
    import bpy

    found = {}
    for group in (o for o in bpy.data.objects if o.get("kiln_lod_group") and o.name.startswith(name)):
        lods = sorted(group.children, key=lambda o: o.name)
        lod0 = lods[0]
        found[int(lod0["kiln_index"])] = {
            "lods": [(o.name, len(o.data.polygons)) for o in lods],
            "hidden": [o.hide_viewport for o in lods],
            "materials": sorted(len(o.material_slots) for o in lods),
            "textures": sorted(tuple(node.image.size) for slot in lod0.material_slots if slot.material
                               for node in slot.material.node_tree.nodes if getattr(node, "image", None)),
            "finished": lod0.get("kiln_finished"),
            "asset": lod0.asset_data is not None,
        }
    return found


PROMPTS = ["mossy rock", "wooden barrel", "iron lantern"]


def test_assets_finished_in_workers_equal_those_finished_in_process(runtime: ModuleType, tmp_path: Path) -> None:
    import bpy

    results = []
    for workers in (0, 2):
        bpy.ops.wm.read_homefile(use_empty=True)
        scheduler = runtime.start(ADDON_MODULE, journal_dir=tmp_path / f"journal_{workers}", finish_workers=workers)
        queue_batch(scheduler, "env_same_01", PROMPTS)
        assert runtime.run_until_done(timeout=180)
        assert {v.state.value for v in scheduler.views()} == {"finished"}
        results.append(landed("env_same_01"))
        pool = runtime.finish_pool()
        assert (pool is not None and not pool.busy()) if workers else True
    in_process, in_workers = results
    assert len(in_process) == 3 and in_workers == in_process
    assert all(len(asset["lods"]) == 3 and asset["hidden"] == [False, True, True] for asset in in_workers.values())
    # The scene holds the assets themselves, not references to the worker's files.
    assert list(bpy.data.libraries) == []
    views = runtime.scheduler().views()
    assert all(Path(v.metadata["finished_blend"]).is_file() and v.metadata["finish"]["lods"] for v in views)


@pytest.mark.bpy50_only
def test_a_killed_worker_fails_its_one_job_and_a_retry_redoes_only_the_finishing(runtime: ModuleType,
                                                                                tmp_path: Path) -> None:
    import bpy

    backend = counting_local(tmp_path / "scratch")
    journal_dir = tmp_path / "journal"
    scheduler = runtime.start(ADDON_MODULE, backends=[backend], journal_dir=journal_dir, finish_workers=1)
    ids = queue_batch(scheduler, "env_kill_01", PROMPTS)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:
        runtime.pump()
        pool = runtime.finish_pool()
        running = pool.running() if pool is not None else {}
        if running:
            victim, pid = next(iter(running.items()))
            os.kill(pid, signal.SIGKILL)
        assert time.monotonic() < deadline, "no job ever reached a finishing worker"
        time.sleep(0.01)
    assert runtime.run_until_done(timeout=180)
    views = {v.job_id: v for v in scheduler.views(ids)}
    failed = views[victim]
    assert failed.state.value == "failed" and failed.error is not None
    assert failed.error.code == "finish_failed" and "killed by signal 9" in failed.error.message
    assert [v.state.value for i, v in views.items() if i != victim] == ["finished", "finished"]
    assert len(landed("env_kill_01")) == 2
    # The reason is in the journal, and the paid result is kept.
    journaled = {job.job_id: job for job in engine("journal").Journal(journal_dir).load().jobs}
    assert journaled[victim].error.code == "finish_failed"
    assert journaled[victim].stage.value == "downloaded" and Path(journaled[victim].files["model"]).is_file()

    retry = scheduler.retry(victim)
    assert retry.state.value == "ready", "a retry starts at the finishing, not at a create"
    assert runtime.run_until_done(timeout=180)
    assert scheduler.view(retry.job_id).state.value == "finished"
    assert backend.creates == 3, "nothing was generated again"
    assert sorted(landed("env_kill_01")) == [0, 1, 2]
    assert {o.name for o in bpy.data.objects if o.get("kiln_lod_group")} == \
        {"env_kill_01_001", "env_kill_01_002", "env_kill_01_003"}


@pytest.mark.bpy50_only
def test_a_hung_worker_is_stopped_and_fails_only_its_job(runtime: ModuleType, tmp_path: Path) -> None:
    """A worker that stops answering (here: SIGSTOP, as a deadlock would look) must not keep the run
    waiting for ever: past the pool's job timeout it is killed, its one job fails with a reason, and the
    other results finish in a fresh worker."""
    backend = counting_local(tmp_path / "scratch")
    scheduler = runtime.start(ADDON_MODULE, backends=[backend], journal_dir=tmp_path / "journal", finish_workers=1)
    ids = queue_batch(scheduler, "env_hung_01", PROMPTS)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:
        runtime.pump()
        pool = runtime.finish_pool()
        running = pool.running() if pool is not None else {}
        if pool is not None and running:
            victim, pid = next(iter(running.items()))
            os.kill(pid, signal.SIGSTOP)
            pool.job_timeout_s = 1.0  # the default is minutes; the mechanism is the same
        assert time.monotonic() < deadline, "no job ever reached a finishing worker"
        time.sleep(0.01)
    while scheduler.view(victim).state.value != "failed":
        runtime.pump()
        assert time.monotonic() < deadline, "the hung worker was never stopped"
        time.sleep(0.01)
    pool.job_timeout_s = engine("blender.finish_pool").JOB_TIMEOUT_S
    assert runtime.run_until_done(timeout=180)
    failed = scheduler.view(victim)
    assert failed.error is not None and failed.error.code == "finish_failed"
    assert f"(pid {pid}) gave no answer in" in failed.error.message and "(hung)" in failed.error.message
    assert sorted(v.state.value for v in scheduler.views(ids)) == ["failed", "finished", "finished"]
    assert len(landed("env_hung_01")) == 2 and backend.creates == 3


@pytest.mark.bpy50_only
def test_a_finished_blend_in_the_cache_is_appended_without_finishing_again(runtime: ModuleType,
                                                                           tmp_path: Path) -> None:
    """A crash after the worker wrote the finished asset, before the scene had it: the restarted engine
    finds the job ready with its finished .blend, and only appends it."""
    import bpy

    journal_dir = tmp_path / "journal"
    scheduler = runtime.start(ADDON_MODULE, journal_dir=journal_dir, finish_workers=1)
    (job_id,) = queue_batch(scheduler, "env_again_01", ["stone pillar"])
    assert runtime.run_until_done(timeout=120)
    blend = Path(scheduler.view(job_id).metadata["finished_blend"])
    written = blend.stat().st_mtime_ns
    bpy.ops.wm.read_homefile(use_empty=True)  # the scene is lost; the job was finished
    job = scheduler.jobs[job_id]
    runtime.reimport(job)
    assert landed("env_again_01")[0]["finished"] == "game"
    assert blend.stat().st_mtime_ns == written, "the finishing was not redone"


def test_a_ready_draft_is_imported_before_production_results(runtime: ModuleType, tmp_path: Path) -> None:
    jobs = engine("jobs")
    order: list[str] = []
    finished: list[str] = []
    scheduler = runtime.start(ADDON_MODULE, journal_dir=tmp_path / "journal",
                              apply=lambda job: order.append(job.spec.mode.value),
                              finish=lambda job, batch: finished.append(job.job_id))
    ids = queue_batch(scheduler, "env_order_01", PROMPTS)
    deadline = time.monotonic() + 60
    while any(v.state.value != "ready" for v in scheduler.views(ids)):  # the batch's results wait, unpumped
        assert time.monotonic() < deadline
        time.sleep(0.02)
    draft = scheduler.add(jobs.JobSpec(kind=jobs.JobKind.TEXT, backend="local", mode=jobs.Mode.DRAFT,
                                       prompt="wooden chair", seed=3))
    while scheduler.view(draft.job_id).state.value != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    while not runtime.is_done():
        runtime.pump(0.0)  # one job per call
    assert order == ["draft", "production", "production", "production"]
    assert len(finished) == 3


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.bpy50_only
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker through /proc")
def test_headless_resume_after_a_killed_worker_redoes_only_the_finishing(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    assets = "\n".join(f'[[asset]]\nprompt = "{p}"\n' for p in PROMPTS)
    manifest = tmp_path / "kill_worker.toml"
    manifest.write_text(f'[batch]\nname = "kill_worker_01"\nmode = "production"\nbackend = "local"\nseed = 2\n\n'
                        f'{assets}\n[finish]\npreset = "game"\n')
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    command = [sys.executable, str(repo / "scripts/kiln_batch.py"), str(manifest), "--out", str(tmp_path),
               "--quiet", "--json", "--finish-workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (workers := children_of(process.pid)):  # a worker starts only with a job to do
        assert process.poll() is None and time.monotonic() < deadline, "no finishing worker started"
        time.sleep(0.01)
    os.kill(workers[0], signal.SIGKILL)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, err[-2000:]
    first = {a["asset"]: a for a in json.loads(out)["assets"]}
    failed = [a for a in first.values() if a["status"] != "finished"]
    assert len(failed) == 1 and failed[0]["error"]["code"] == "finish_failed"
    assert "killed by signal 9" in failed[0]["error"]["message"]

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    second = {a["asset"]: a for a in json.loads(resumed.stdout)["assets"]}
    assert {a["status"] for a in second.values()} == {"finished"} and len(second) == 3
    # The same tasks: nothing was generated again, only the failed asset's finishing was redone.
    assert {name: a["task_id"] for name, a in second.items()} == {name: a["task_id"] for name, a in first.items()}
    assert second[failed[0]["asset"]]["lods"] and json.loads(resumed.stdout)["resume"]["added"] == []


@pytest.mark.bpy50_only
def test_a_warmed_pool_starts_its_workers_and_closing_it_ends_them(kiln: ModuleType) -> None:
    pool_module = importlib.import_module(f"{ADDON_MODULE}.addon.blender.finish_pool")
    pool = pool_module.FinishPool(ADDON_MODULE, 2)
    pool.warm()
    processes = [worker.process for worker in pool._workers]
    assert len(processes) == 2 and all(p.poll() is None for p in processes)
    assert pool.running() == {} and not pool.busy()
    pool.close()
    assert all(p.returncode is not None for p in processes), "no worker outlives its pool"
    assert pool.running() == {}
