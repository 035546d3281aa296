"""Tripo backend against the sandbox at a scaled latency L: overhead, throughput, polling. Writes JSON.

    python bench/tripo_bench.py [--out bench/results/tripo.json]

- tripo_draft_overhead_ms: result on disk minus the moment the sandbox completed the task, for single
  drafts one after another. Target: <= max(10% of L, 250 ms).
- tripo_batch_efficiency: ideal ceil(N/C)*L over the actual makespan, N=100, C=10.
Default L = 5 s (real Tripo tasks take 20-60 s); `--latency 2` shows the fixed per-wave cost better.
Polling here may go down to 30 ms near the expected finish; Kiln's default floor is 0.5 s.
- tripo_status_requests_per_job during that batch.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from bench_common import percentiles, write_result  # noqa: E402

from addon.backends.tripo import TripoBackend  # noqa: E402
from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode  # noqa: E402
from addon.journal import Journal  # noqa: E402
from addon.scheduling import Scheduler, SchedulerConfig  # noqa: E402
from sandbox.tripo import SandboxState, TripoSandbox  # noqa: E402

KEY = "tsk_bench"
DEFAULT_L = 5.0
POLL_MIN_S = 0.03


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/tripo.json")
    parser.add_argument("--latency", type=float, default=DEFAULT_L, help="sandbox task latency L in seconds")
    args = parser.parse_args()
    latency = args.latency
    result: dict[str, object] = {"benchmark": "tripo", "L_s": latency, "poll_min_s": POLL_MIN_S}
    state = SandboxState(latency_s={"draft": latency, "textured": latency}, limit=10, balance=1e6)
    with tempfile.TemporaryDirectory() as work, TripoSandbox(state) as sandbox:
        client = TripoBackend(KEY, sandbox.url, poll_min_s=POLL_MIN_S, poll_max_s=2.0)
        scheduler = Scheduler([client], journal=Journal(Path(work) / "a"),
                              config=SchedulerConfig(draft_reserved_slots=0))
        scheduler.start()
        overheads = []
        for index in range(12):
            job = scheduler.add(JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.DRAFT, prompt="crate",
                                        seed=index + 1))
            while job.state not in (JobState.READY, JobState.FAILED):
                time.sleep(0.002)
            on_disk = time.time()
            task = sandbox.state.tasks[job.task_id]  # type: ignore[index]
            overheads.append((on_disk - task.completed) * 1000)  # when the provider reported it done
            scheduler.take_ready()
            scheduler.mark_imported(job)
        scheduler.shutdown()
        result["tripo_draft_overhead_ms"] = {**percentiles(overheads, 1),
                                             "target_ms": max(0.1 * latency * 1000, 250)}

        client = TripoBackend(KEY, sandbox.url, poll_min_s=POLL_MIN_S, poll_max_s=2.0)
        scheduler = Scheduler([client], journal=Journal(Path(work) / "b"),
                              config=SchedulerConfig(draft_reserved_slots=0))
        scheduler.start()
        scheduler.add_batch(BatchSpec("bench"))
        n = 100
        started = time.monotonic()
        jobs = scheduler.add_many(JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt="rock",
                                          batch="bench", index=i, seed=i + 1) for i in range(n))
        while not scheduler.is_idle():
            job = scheduler.take_ready()
            if job is None:
                time.sleep(0.005)
            else:
                scheduler.mark_imported(job)
        makespan = time.monotonic() - started
        scheduler.shutdown()
        ideal = math.ceil(n / 10) * latency
        result["tripo_batch_efficiency"] = round(ideal / makespan, 4)
        result["tripo_batch"] = {"N": n, "C": 10, "makespan_s": round(makespan, 2), "ideal_s": ideal,
                                 "finished": sum(j.state is JobState.FINISHED for j in jobs),
                                 "creates": sandbox.state.creates - 12}
        result["tripo_status_requests_per_job"] = round(client.status_requests / n, 3)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
