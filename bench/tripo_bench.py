"""Tripo at the physical limit: Kiln and the official `tripo3d` SDK against the same v3 sandbox, one run.
Writes JSON. Shipped defaults: no tuned polling floor (Kiln looks at each task when its own predicted
finish is due, at 250 ms granularity).

    python bench/tripo_bench.py [--out bench/results/tripo.json] [--latency 3] [--batch 100]

At task latency L and concurrency C = 10:
- overhead_ms: result on disk minus the moment the sandbox completed the task, p50/p95, for a batch of N
  and for 10 single drafts one after another;
- efficiency: ideal ceil(N/C)*L over the makespan, headless (every slot) and in the add-on configuration
  (one slot kept for drafts: ideal over the 9 slots production may use);
- status requests per job, refused creates (code 2000);
- refusal recovery: another client holds all 10 slots for 3 s while 5 drafts are sent; the last draft on
  disk, against the possible 3 s + L;
- the same measures for the SDK (create retried on 2000 after Retry-After, `wait_for_task` with its
  default polling, `download_task_models`), and the ratios. Skipped when the SDK is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from bench_common import import_ready, percentiles, reached, write_result  # noqa: E402

from addon.backends.tripo import DEFAULT_MODEL, TripoBackend  # noqa: E402
from addon.jobs import BatchSpec, Job, JobKind, JobSpec, JobState, Mode  # noqa: E402
from addon.journal import Journal  # noqa: E402
from addon.scheduling import Scheduler, SchedulerConfig  # noqa: E402
from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_bench"
C = 10
HOLD_S = 3.0
RETRY_AFTER_S = 0.2
"""The sandbox's Retry-After on a concurrency refusal."""


def spec(mode: Mode, index: int, batch: str = "") -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="tripo", mode=mode, prompt="rock", seed=index + 1, index=index,
                   batch=batch)


class Kiln:
    """One scheduler on the sandbox, with the add-on's or the headless configuration."""

    def __init__(self, sandbox: TripoSandbox, folder: Path, reserved: int) -> None:
        self.sandbox = sandbox
        self.scheduler = Scheduler([TripoBackend(KEY, sandbox.url)], journal=Journal(folder),
                                   config=SchedulerConfig(draft_reserved_slots=reserved))
        self.scheduler.start()
        self.offset = time.time() - time.monotonic()

    def on_disk(self, job: Job) -> float:
        """Wall time the result was written (the job reached READY), on the sandbox's clock."""
        return job.state_times[JobState.READY.value] + self.offset

    def overhead_ms(self, job: Job) -> float:
        assert job.task_id is not None
        return (self.on_disk(job) - self.sandbox.state.tasks[job.task_id].completed) * 1000

    def drain(self, until: Callable[[], bool]) -> None:
        import_ready(self.scheduler, until)

    def close(self) -> None:
        self.scheduler.shutdown()


def counters(state: SandboxState) -> tuple[int, int]:
    with state.lock:
        return state.status_requests, sum(1 for e in state.timeline if e[1] == "refused")


def kiln_batch(sandbox: TripoSandbox, folder: Path, n: int, latency: float, reserved: int) -> dict[str, Any]:
    kiln = Kiln(sandbox, folder, reserved)
    before = counters(sandbox.state)
    kiln.scheduler.add_batch(BatchSpec("bench", backend="tripo"))
    started = time.monotonic()
    jobs = kiln.scheduler.add_many(spec(Mode.PRODUCTION, i, "bench") for i in range(n))
    kiln.drain(kiln.scheduler.is_idle)
    makespan = time.monotonic() - started
    kiln.close()
    after = counters(sandbox.state)
    slots = C - reserved
    ideal = math.ceil(n / slots) * latency
    return {"N": n, "slots": slots, "makespan_s": round(makespan, 2), "ideal_s": ideal,
            "efficiency": round(ideal / makespan, 4),
            "finished": sum(j.state is JobState.FINISHED for j in jobs),
            "overhead_ms": percentiles([kiln.overhead_ms(j) for j in jobs if JobState.READY.value in j.state_times]),
            "status_requests_per_job": round((after[0] - before[0]) / n, 3),
            "refused_creates": after[1] - before[1]}


def kiln_drafts(sandbox: TripoSandbox, folder: Path, count: int) -> dict[str, Any]:
    kiln = Kiln(sandbox, folder, reserved=1)
    before = counters(sandbox.state)
    overheads = []
    for index in range(count):
        job = kiln.scheduler.add(spec(Mode.DRAFT, index))
        kiln.drain(reached(job, JobState.FINISHED, JobState.FAILED))
        overheads.append(kiln.overhead_ms(job))
    kiln.close()
    after = counters(sandbox.state)
    return {"count": count, "overhead_ms": percentiles(overheads),
            "status_requests_per_job": round((after[0] - before[0]) / count, 3)}


def kiln_recovery(sandbox: TripoSandbox, folder: Path, latency: float) -> dict[str, Any]:
    kiln = Kiln(sandbox, folder, reserved=1)
    before = counters(sandbox.state)
    started = time.time()
    sandbox.state.hold_slots(C, HOLD_S)
    jobs = kiln.scheduler.add_many(spec(Mode.DRAFT, i) for i in range(5))
    kiln.drain(lambda: all(j.state in (JobState.FINISHED, JobState.FAILED) for j in jobs))
    last = max(kiln.on_disk(j) for j in jobs) - started
    kiln.close()
    return {"drafts": 5, "held_s": HOLD_S, "last_on_disk_s": round(last, 2), "possible_s": HOLD_S + latency,
            "late_by_s": round(last - HOLD_S - latency, 2), "refused_creates": counters(sandbox.state)[1] - before[1]}


# ---------------------------------------------------------------------------------------------- the SDK
def sdk_run(sandbox: TripoSandbox, folder: Path, n: int, texture: bool, sequential: bool) -> dict[str, Any]:
    import tripo3d

    before = counters(sandbox.state)
    on_disk: dict[str, float] = {}
    refused = 0

    async def one(client: tripo3d.TripoClient, index: int) -> None:
        nonlocal refused
        while True:
            try:
                task_id = await client.text_to_model("rock", model_version=DEFAULT_MODEL, texture=texture,
                                                     pbr=texture, model_seed=index + 1)
                break
            except tripo3d.TripoAPIError as exc:
                if exc.code != 2000:
                    raise
                refused += 1
                await asyncio.sleep(RETRY_AFTER_S)
        task = await client.wait_for_task(task_id)
        target = folder / str(index)
        target.mkdir(parents=True, exist_ok=True)
        await client.download_task_models(task, str(target))
        on_disk[task_id] = time.time()

    async def run() -> None:
        client = tripo3d.TripoClient(api_key=KEY, v3_base_url=sandbox.url)
        try:
            if sequential:
                for index in range(n):
                    await one(client, index)
            else:
                await asyncio.gather(*(one(client, index) for index in range(n)))
        finally:
            await client.close()

    started = time.monotonic()
    asyncio.run(run())
    makespan = time.monotonic() - started
    after = counters(sandbox.state)
    overheads = [(t - sandbox.state.tasks[task_id].completed) * 1000 for task_id, t in on_disk.items()]
    return {"N": n, "makespan_s": round(makespan, 2), "overhead_ms": percentiles(overheads),
            "status_requests_per_job": round((after[0] - before[0]) / n, 3), "refused_creates": refused}


def ratio(sdk: float, kiln: float) -> float | None:
    return round(sdk / kiln, 1) if kiln > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/tripo.json")
    parser.add_argument("--latency", type=float, default=3.0, help="sandbox task latency L in seconds")
    parser.add_argument("--batch", type=int, default=100, help="jobs in the batch runs")
    parser.add_argument("--drafts", type=int, default=10, help="single drafts one after another")
    args = parser.parse_args()
    latency = args.latency
    state = SandboxState(latency_s={"draft": latency, "textured": latency}, limit=C, balance=1e7)
    result: dict[str, Any] = {"benchmark": "tripo", "L_s": latency, "C": C}
    with tempfile.TemporaryDirectory() as work, TripoSandbox(state) as sandbox:
        folder = Path(work)
        # One result per kind first: the sandbox serves the rest from its cache, as a provider's GPUs would
        # not share this machine's two cores with Kiln.
        warm = Kiln(sandbox, folder / "warm", reserved=0)
        warm.scheduler.add_batch(BatchSpec("warm", backend="tripo"))
        warm.scheduler.add_many([spec(Mode.DRAFT, 0), spec(Mode.PRODUCTION, 0, "warm")])
        warm.drain(warm.scheduler.is_idle)
        warm.close()

        kiln = {"batch_headless": kiln_batch(sandbox, folder / "headless", args.batch, latency, reserved=0),
                "batch_addon": kiln_batch(sandbox, folder / "addon", args.batch, latency, reserved=1),
                "single_drafts": kiln_drafts(sandbox, folder / "drafts", args.drafts),
                "refusal_recovery": kiln_recovery(sandbox, folder / "recovery", latency)}
        result["kiln"] = kiln
        try:
            import tripo3d
        except ImportError:
            result["sdk"] = "not installed (pip install tripo3d==1.0.0, see requirements-dev.txt)"
        else:
            sdk_batch = sdk_run(sandbox, folder / "sdk_batch", args.batch, texture=True, sequential=False)
            sdk_batch["efficiency"] = round(math.ceil(args.batch / C) * latency / sdk_batch["makespan_s"], 4)
            sdk_drafts = sdk_run(sandbox, folder / "sdk_drafts", args.drafts, texture=False, sequential=True)
            result["sdk"] = {"version": tripo3d.__version__, "batch": sdk_batch, "single_drafts": sdk_drafts}
            batch, drafts = kiln["batch_headless"], kiln["single_drafts"]
            result["ratios_sdk_over_kiln"] = {
                "batch_overhead_p95": ratio(sdk_batch["overhead_ms"]["p95"], batch["overhead_ms"]["p95"]),
                "draft_overhead_p95": ratio(sdk_drafts["overhead_ms"]["p95"], drafts["overhead_ms"]["p95"]),
                "batch_status_requests": ratio(sdk_batch["status_requests_per_job"], batch["status_requests_per_job"]),
                "draft_status_requests": ratio(sdk_drafts["status_requests_per_job"],
                                               drafts["status_requests_per_job"]),
            }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
