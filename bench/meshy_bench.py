"""Meshy with pushed status: Kiln against the Meshy sandbox, and Tripo's polling beside it, in one run.
Writes JSON.

    python bench/meshy_bench.py [--out bench/results/meshy.json] [--latency 3] [--batch 100]

At task latency L and a queue limit of 10 (Meshy Pro):
- meshy_draft_overhead_ms: result on disk minus the moment the sandbox finished the task, p50/p95, for
  10 single drafts one after another (target ≤ 150 ms);
- meshy_batch_efficiency: ideal ceil(N/10)*L over the makespan of N drafts, headless (target ≥ 0.95);
  the same for a Production batch (each job a preview, then a refine of it: ideal ceil(N/10)*2L);
- status polls per job and dropped streams (pushed status needs none);
- Tripo at the same L and limit, the same single drafts and batch (its tasks are polled, paced by their
  predicted finish; bench/tripo_bench.py has more of it), and the ratio of the overheads.
"""

from __future__ import annotations

import argparse
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

import tripo_bench  # noqa: E402
from bench_common import import_ready, percentiles, reached, write_result  # noqa: E402

from addon.backends.meshy import MeshyBackend, meshy_id  # noqa: E402
from addon.jobs import BatchSpec, Job, JobKind, JobSpec, JobState, Mode  # noqa: E402
from addon.journal import Journal  # noqa: E402
from addon.modes import mode_params  # noqa: E402
from addon.scheduling import Scheduler, SchedulerConfig  # noqa: E402
from sandbox.meshy import MeshySandbox, MeshyState  # noqa: E402
from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "msy_bench"
C = 10


def spec(mode: Mode, index: int, batch: str = "") -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="meshy", mode=mode, prompt="rock", seed=index + 1, index=index,
                   batch=batch, params=JobSpec.make_params(mode_params("meshy", mode)))


class Kiln:
    """One scheduler on the Meshy sandbox (headless: every slot for the batch)."""

    def __init__(self, sandbox: MeshySandbox, folder: Path, reserved: int = 0) -> None:
        self.sandbox = sandbox
        self.scheduler = Scheduler([MeshyBackend(KEY, sandbox.url)], journal=Journal(folder),
                                   config=SchedulerConfig(draft_reserved_slots=reserved))
        self.scheduler.start()
        self.offset = time.time() - time.monotonic()

    def overhead_ms(self, job: Job) -> float:
        """Result on disk (the job reached READY) minus the sandbox's finish of the job's last task."""
        assert job.task_id is not None
        finished = self.sandbox.state.tasks[meshy_id(job.task_id)].finished
        return (job.state_times[JobState.READY.value] + self.offset - finished) * 1000

    def drain(self, until: Callable[[], bool]) -> None:
        import_ready(self.scheduler, until)

    def close(self) -> None:
        self.scheduler.shutdown()


def polls(state: MeshyState) -> int:
    with state.lock:
        return sum(state.polls.values())


def meshy_drafts(sandbox: MeshySandbox, folder: Path, count: int) -> dict[str, Any]:
    kiln = Kiln(sandbox, folder, reserved=1)
    before = polls(sandbox.state)
    overheads = []
    for index in range(count):
        job = kiln.scheduler.add(spec(Mode.DRAFT, index))
        kiln.drain(reached(job, JobState.FINISHED, JobState.FAILED))
        overheads.append(kiln.overhead_ms(job))
    drops = kiln.scheduler.stream_drops
    kiln.close()
    return {"count": count, "overhead_ms": percentiles(overheads),
            "polls_per_job": round((polls(sandbox.state) - before) / count, 3), "stream_drops": drops}


def meshy_batch(sandbox: MeshySandbox, folder: Path, n: int, mode: Mode, task_s: float) -> dict[str, Any]:
    kiln = Kiln(sandbox, folder)
    before = polls(sandbox.state)
    refused_before = sandbox.state.refusals["NoMoreConcurrentTasks"]
    name = f"bench_{mode.value}"
    kiln.scheduler.add_batch(BatchSpec(name, mode=mode, backend="meshy"))
    started = time.monotonic()
    jobs = kiln.scheduler.add_many(spec(mode, i, name) for i in range(n))
    kiln.drain(kiln.scheduler.is_idle)
    makespan = time.monotonic() - started
    drops, peak_threads = kiln.scheduler.stream_drops, kiln.scheduler.threads_peak
    kiln.close()
    ideal = math.ceil(n / C) * task_s
    return {"N": n, "mode": mode.value, "queue_limit": C, "makespan_s": round(makespan, 2), "ideal_s": ideal,
            "efficiency": round(ideal / makespan, 4), "finished": sum(j.state is JobState.FINISHED for j in jobs),
            "overhead_ms": percentiles([kiln.overhead_ms(j) for j in jobs if JobState.READY.value in j.state_times]),
            "polls_per_job": round((polls(sandbox.state) - before) / n, 3), "stream_drops": drops,
            "queue_full_refusals": sandbox.state.refusals["NoMoreConcurrentTasks"] - refused_before,
            "threads_peak": peak_threads}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/meshy.json")
    parser.add_argument("--latency", type=float, default=3.0, help="sandbox task latency L in seconds")
    parser.add_argument("--batch", type=int, default=100, help="jobs in the batch runs")
    parser.add_argument("--drafts", type=int, default=10, help="single drafts one after another")
    args = parser.parse_args()
    latency = args.latency
    state = MeshyState(latency_s={"text-to-3d-preview": latency, "text-to-3d-refine": latency},
                       queue_limit=C, balance=10**7)
    result: dict[str, Any] = {"benchmark": "meshy", "L_s": latency, "queue_limit": C}
    with tempfile.TemporaryDirectory() as work, MeshySandbox(state) as sandbox:
        folder = Path(work)
        # One result per kind first: the sandbox serves the rest from its cache, as a provider's GPUs would
        # not share this machine's two cores with Kiln.
        warm = Kiln(sandbox, folder / "warm")
        warm.scheduler.add_batch(BatchSpec("warm", mode=Mode.PRODUCTION, backend="meshy"))
        warm.scheduler.add_many([spec(Mode.DRAFT, 0), spec(Mode.PRODUCTION, 0, "warm")])
        warm.drain(warm.scheduler.is_idle)
        warm.close()
        drafts = meshy_drafts(sandbox, folder / "drafts", args.drafts)
        batch = meshy_batch(sandbox, folder / "batch", args.batch, Mode.DRAFT, latency)
        chained = meshy_batch(sandbox, folder / "chained", args.batch, Mode.PRODUCTION, 2 * latency)
    result["meshy_draft_overhead_ms"] = {"p50": drafts["overhead_ms"]["p50"], "p95": drafts["overhead_ms"]["p95"],
                                         "target_ms": 150}
    result["meshy_batch_efficiency"] = {"value": batch["efficiency"], "target": 0.95}
    result["meshy"] = {"single_drafts": drafts, "batch_drafts": batch, "batch_preview_then_refine": chained}

    tripo_state = SandboxState(latency_s={"draft": latency, "textured": latency}, limit=C, balance=1e7)
    with tempfile.TemporaryDirectory() as work, TripoSandbox(tripo_state) as sandbox:
        folder = Path(work)
        warm_tripo = tripo_bench.Kiln(sandbox, folder / "warm", reserved=0)
        warm_tripo.scheduler.add_batch(BatchSpec("warm", backend="tripo"))
        warm_tripo.scheduler.add_many([tripo_bench.spec(Mode.DRAFT, 0), tripo_bench.spec(Mode.PRODUCTION, 0, "warm")])
        warm_tripo.drain(warm_tripo.scheduler.is_idle)
        warm_tripo.close()
        tripo = {"single_drafts": tripo_bench.kiln_drafts(sandbox, folder / "drafts", args.drafts),
                 "batch": tripo_bench.kiln_batch(sandbox, folder / "batch", args.batch, latency, reserved=0)}
    result["tripo_polled"] = tripo
    meshy_p50, tripo_p50 = drafts["overhead_ms"]["p50"], tripo["single_drafts"]["overhead_ms"]["p50"]
    result["push_vs_poll"] = {
        "draft_overhead_p50_ms": {"meshy_push": meshy_p50, "tripo_poll": tripo_p50},
        "draft_overhead_p95_ms": {"meshy_push": drafts["overhead_ms"]["p95"],
                                  "tripo_poll": tripo["single_drafts"]["overhead_ms"]["p95"]},
        "batch_overhead_p50_ms": {"meshy_push": batch["overhead_ms"]["p50"],
                                  "tripo_poll": tripo["batch"]["overhead_ms"]["p50"]},
        "batch_efficiency": {"meshy_push": batch["efficiency"], "tripo_poll": tripo["batch"]["efficiency"]},
        "status_requests_per_job": {"meshy_push": batch["polls_per_job"],
                                    "tripo_poll": tripo["batch"]["status_requests_per_job"]},
        "tripo_over_meshy_draft_p50": round(tripo_p50 / meshy_p50, 1) if meshy_p50 > 0 else None,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
