"""Rodin and Stability Fast 3D through Kiln's engine against their sandboxes, one run. Writes JSON.

    python bench/backends_bench.py [--out bench/results/backends.json] [--drafts 20] [--batch 12]

- stability_draft_overhead_ms: for single drafts one after another, the time from queueing the job to
  its result on disk, less the time the sandbox spent answering the call (its model time): what Kiln adds
  around a synchronous provider (scheduling, the upload's encoding, HTTP, the move into the cache). p50/p95.
- rodin_batch_efficiency: N Production jobs on Rodin's 3 slots, the ideal ceil(N/3) * L over the
  makespan. Rodin's tasks take minutes; here the latency and the poll interval are scaled down together
  (`--scale`, 1/30 by default: L = 2 s stands for 60 s, the shipped 5 s poll interval becomes 0.17 s), so
  the figure is what the shipped pacing gives on a one-minute task. Status requests per job with it.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests/tools"))

import numpy as np  # noqa: E402
from bench_common import import_ready, percentiles, reached, write_result  # noqa: E402
from test_images import draw  # noqa: E402

from addon.backends.rodin import DEFAULT_POLL_INTERVAL_S, RodinBackend  # noqa: E402
from addon.backends.stability import StabilityBackend  # noqa: E402
from addon.jobs import BatchSpec, Job, JobKind, JobSpec, JobState, Mode  # noqa: E402
from addon.journal import Journal  # noqa: E402
from addon.scheduling import Scheduler, SchedulerConfig  # noqa: E402
from sandbox.rodin import RodinSandbox, RodinState  # noqa: E402
from sandbox.stability import StabilitySandbox, StabilityState  # noqa: E402

RODIN_SLOTS = 3


def ready_wall(job: Job, offset: float) -> float:
    return job.state_times[JobState.READY.value] + offset


def stability_drafts(folder: Path, count: int) -> dict[str, Any]:
    rgba, _ = draw("star", 512, alpha=True)
    folder.mkdir(parents=True, exist_ok=True)
    picture = folder / "star.npy"
    np.save(picture, rgba)
    spec = JobSpec(kind=JobKind.IMAGE, backend="stability", mode=Mode.DRAFT, image_paths=(str(picture),),
                   params=JobSpec.make_params({"prepared_images": (str(picture),)}))
    with StabilitySandbox(StabilityState()) as sandbox:
        scheduler = Scheduler([StabilityBackend("sk-bench", sandbox.url, scratch_dir=folder / "scratch")],
                              journal=Journal(folder / "journal"), config=SchedulerConfig())
        scheduler.start()
        offset = time.time() - time.monotonic()
        overheads, totals = [], []
        try:
            for index in range(count + 1):  # the first makes the sandbox's cached model: not counted
                queued = time.time()
                job = scheduler.add(JobSpec(**{**spec.__dict__, "index": index}))
                import_ready(scheduler, reached(job, JobState.FINISHED, JobState.FAILED))
                received, answered = sandbox.state.served[-1]
                if index:
                    total = ready_wall(job, offset) - queued
                    totals.append(total * 1000)
                    overheads.append((total - (answered - received)) * 1000)
        finally:
            scheduler.shutdown()
    return {"drafts": count, "image_px": 512, "overhead_ms": percentiles(overheads),
            "queued_to_on_disk_ms": percentiles(totals)}


def rodin_batch(folder: Path, n: int, scale: float) -> dict[str, Any]:
    latency = 60.0 * scale
    poll = DEFAULT_POLL_INTERVAL_S * scale
    state = RodinState(latency_s={"Sketch": latency, "default": latency})
    with RodinSandbox(state) as sandbox:
        # One result first, so the sandbox serves the rest from its cache (its generator shares the cores).
        warm = RodinBackend("bench", sandbox.url, poll_interval_s=poll)
        warm_id = warm.submit(JobSpec(kind=JobKind.TEXT, backend="rodin", mode=Mode.PRODUCTION, prompt="rock"), "w")
        while not any(u.status.is_terminal for u in warm.watch([warm_id], 0.05)):
            pass
        client = RodinBackend("bench", sandbox.url, poll_interval_s=poll)
        scheduler = Scheduler([client], journal=Journal(folder / "journal"),
                              config=SchedulerConfig(draft_reserved_slots=0))
        scheduler.start()
        scheduler.add_batch(BatchSpec("bench", backend="rodin"))
        status_before = state.status_requests
        started = time.monotonic()
        jobs = scheduler.add_many(JobSpec(kind=JobKind.TEXT, backend="rodin", mode=Mode.PRODUCTION, prompt="rock",
                                          batch="bench", index=i, seed=i + 1) for i in range(n))
        try:
            import_ready(scheduler, scheduler.is_idle)
        finally:
            scheduler.shutdown()
        makespan = time.monotonic() - started
        ideal = math.ceil(n / RODIN_SLOTS) * latency
        return {"N": n, "slots": RODIN_SLOTS, "scale": round(scale, 4), "latency_s": round(latency, 3),
                "poll_interval_s": round(poll, 3), "makespan_s": round(makespan, 2), "ideal_s": round(ideal, 2),
                "efficiency": round(ideal / makespan, 4),
                "finished": sum(j.state is JobState.FINISHED for j in jobs),
                "status_requests_per_job": round((state.status_requests - status_before) / n, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/backends.json")
    parser.add_argument("--drafts", type=int, default=20)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--scale", type=float, default=1 / 30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-backends-bench-") as work:
        stability = stability_drafts(Path(work) / "stability", args.drafts)
        rodin = rodin_batch(Path(work) / "rodin", args.batch, args.scale)
    result = {"stability_draft_overhead_ms": stability["overhead_ms"], "stability": stability,
              "rodin_batch_efficiency": rodin["efficiency"], "rodin": rodin}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
