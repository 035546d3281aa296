"""A pool of self-hosted Hunyuan3D servers: how close Kiln keeps every GPU busy, and what losing one
costs. Writes JSON.

    python bench/hunyuan_bench.py [--out bench/results/hunyuan.json] [--latency 2] [--batch 100]

Three `sandbox.hunyuan` servers (2.1) of 2 slots each, image Drafts of task latency L:
- pool_batch_efficiency: the ideal ceil(N/6)*L over the makespan (first create to the last result on
  disk), target ≥ 0.9;
- the same batch with one server killed halfway through the ideal: its makespan, the ideal for a pool that
  loses a third of its slots at that moment, the jobs moved to other servers, and whether every job's
  model was fetched exactly once (nothing lost, nothing run twice but what the dead server held);
- status requests per job.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from bench_common import import_ready, write_result  # noqa: E402

from addon.backends.hunyuan import HunyuanBackend  # noqa: E402
from addon.imaging.png import encode_png  # noqa: E402
from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode  # noqa: E402
from addon.journal import Journal  # noqa: E402
from addon.scheduling import Scheduler, SchedulerConfig  # noqa: E402
from sandbox.hunyuan import HunyuanSandbox, HunyuanState  # noqa: E402

SERVERS = 3
SLOTS = 2


def batch(folder: Path, n: int, latency: float, kill_at_s: float | None) -> dict[str, Any]:
    image = folder / "input.png"
    pixels = np.zeros((64, 64, 4), np.uint8)
    pixels[16:48, 16:48] = (180, 90, 30, 255)
    image.write_bytes(encode_png(pixels))
    with ExitStack() as stack:
        pool = [stack.enter_context(HunyuanSandbox(HunyuanState(slots=SLOTS, latency_s=latency)))
                for _ in range(SERVERS)]
        backend = HunyuanBackend([s.url for s in pool], slots_per_server=SLOTS, probe_every_s=1.0)
        scheduler = Scheduler([backend], journal=Journal(folder / "journal"),
                              config=SchedulerConfig(draft_reserved_slots=0))
        scheduler.start()
        scheduler.add_batch(BatchSpec("bench", backend="hunyuan"))
        started = time.monotonic()
        killer = None
        if kill_at_s is not None:
            killer = threading.Timer(kill_at_s, pool[0].kill)
            killer.start()
        jobs = scheduler.add_many(
            JobSpec(kind=JobKind.IMAGE, backend="hunyuan", mode=Mode.DRAFT, image_paths=(str(image),), seed=i + 1,
                    index=i, batch="bench") for i in range(n))
        import_ready(scheduler)
        makespan = time.monotonic() - started
        scheduler.shutdown()
        if killer is not None:
            killer.join()
        delivered = sorted(seed for s in pool for seed in s.state.delivered_seeds)
        finished_on_dead = len(pool[0].state.finished_seeds) - len(pool[0].state.delivered_seeds)
        result: dict[str, Any] = {
            "N": n, "servers": SERVERS, "slots_per_server": SLOTS, "latency_s": latency,
            "makespan_s": round(makespan, 2),
            "finished": sum(j.state is JobState.FINISHED for j in jobs),
            "every_model_fetched_once": delivered == list(range(1, n + 1)),
            "status_requests_per_job": round(sum(s.state.status_requests for s in pool) / n, 2),
        }
        ideal = math.ceil(n / (SERVERS * SLOTS)) * latency
        if kill_at_s is None:
            result.update(ideal_s=ideal, pool_batch_efficiency=round(ideal / makespan, 4))
        else:
            # Ideal with the loss: full speed until the kill, then the rest (the dead server's running jobs
            # included, they start over) on the slots that are left.
            done_by_kill = math.floor(kill_at_s / latency) * SERVERS * SLOTS
            rest = n - done_by_kill
            ideal_loss = math.floor(kill_at_s / latency) * latency + math.ceil(rest / ((SERVERS - 1) * SLOTS)) * latency
            result.update(killed_at_s=round(kill_at_s, 2), ideal_with_loss_s=ideal_loss,
                          efficiency_with_loss=round(ideal_loss / makespan, 4),
                          efficiency_vs_full_pool=round(ideal / makespan, 4),
                          moved=backend.moves, lost_on_dead_server=pool[0].state.lost,
                          finished_unfetched_on_dead_server=finished_on_dead,
                          run_twice=max(0, sum(len(s.state.finished_seeds) for s in pool) - n))
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/hunyuan.json")
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-hunyuan-bench-") as tmp:
        folder = Path(tmp)
        (folder / "full").mkdir()
        (folder / "kill").mkdir()
        full = batch(folder / "full", args.batch, args.latency, None)
        ideal = math.ceil(args.batch / (SERVERS * SLOTS)) * args.latency
        killed = batch(folder / "kill", args.batch, args.latency, ideal / 2)
    result = {"pool_batch_efficiency": full["pool_batch_efficiency"], "target": 0.9, "full_pool": full,
              "one_server_killed_halfway": killed}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
