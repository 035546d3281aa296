"""Engine benchmark: throughput, draft latency under load, pump cost, threads. Writes JSON.

    python bench/engine_bench.py [--out bench/results/engine.json]

FakeBackend with fixed per-job latency L and concurrency limit C (N=200, C=10, L=0.2 s):
- batch_efficiency = ideal makespan ceil(N/C)*L / actual makespan (headless config: every slot to
  production) and the same with one slot reserved for drafts (the UI's config);
- draft_under_load_ratio = draft latency while a batch saturates the backend / idle draft latency;
- pump_max_ms = longest single pump() call while 200 results arrive (import excluded: no-op apply);
- threads_peak = the scheduler's own threads at peak.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from bench_common import import_ready, write_result  # noqa: E402

from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode  # noqa: E402
from addon.journal import Journal  # noqa: E402
from addon.scheduling import Scheduler, SchedulerConfig  # noqa: E402
from sandbox.fake import FakeBackend  # noqa: E402

N, C, L = 200, 10, 0.2


def spec(index: int, mode: Mode = Mode.PRODUCTION) -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="fake", mode=mode, prompt=f"asset {index}",
                   batch="bench" if mode is Mode.PRODUCTION else "", index=index)


def make_scheduler(work: Path, reserved: int) -> tuple[Scheduler, FakeBackend]:
    fake = FakeBackend(latency_s=L, limit=C)
    scheduler = Scheduler([fake], journal=Journal(work), config=SchedulerConfig(draft_reserved_slots=reserved))
    scheduler.start()
    scheduler.add_batch(BatchSpec("bench"))
    return scheduler, fake


def batch_efficiency(reserved: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        scheduler, fake = make_scheduler(Path(work), reserved)
        started = time.monotonic()
        scheduler.add_many(spec(i) for i in range(N))
        import_ready(scheduler)
        makespan = time.monotonic() - started
        threads = scheduler.threads_peak
        scheduler.shutdown()
    ideal = math.ceil(N / C) * L
    return {"efficiency": ideal / makespan, "makespan_s": makespan, "ideal_s": ideal, "threads_peak": threads,
            "provider_peak_in_flight": fake.peak_in_flight, "creates": fake.create_calls}


def draft_latency(scheduler: Scheduler) -> float:
    job = scheduler.add(spec(10_000 + len(scheduler.jobs), Mode.DRAFT))
    started = time.monotonic()
    while job.state not in (JobState.READY, JobState.FINISHED, JobState.FAILED):
        time.sleep(0.0005)
    return time.monotonic() - started


def draft_under_load() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        scheduler, _ = make_scheduler(Path(work), reserved=1)
        idle = [draft_latency(scheduler) for _ in range(5)]
        scheduler.add_many(spec(i) for i in range(N))
        time.sleep(0.1)
        loaded = []
        for _ in range(5):
            loaded.append(draft_latency(scheduler))
            time.sleep(0.05)
        scheduler.shutdown()
    ratio = statistics.median(loaded) / statistics.median(idle)
    return {"ratio": ratio, "idle_median_s": statistics.median(idle), "loaded_median_s": statistics.median(loaded),
            "fifo_expectation": N / C}


def pump_cost() -> dict[str, float | str]:
    """runtime.pump with a no-op apply while 200 results arrive (needs the bpy module)."""
    try:
        from addon.blender import runtime
    except ImportError as exc:
        return {"error": f"bpy not importable: {exc}"}
    with tempfile.TemporaryDirectory() as work:
        fake = FakeBackend(latency_s=L, limit=C)
        scheduler = runtime.start("kiln_bench", backends=[fake], apply=lambda job: None, journal_dir=Path(work),
                                  config=SchedulerConfig(draft_reserved_slots=0))
        scheduler.add_batch(BatchSpec("bench"))
        scheduler.add_many(spec(i) for i in range(N))
        durations = []
        while not scheduler.is_idle():
            started = time.perf_counter()
            runtime.pump(20.0)
            durations.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)  # the UI timer's cadence
        runtime.stop()
    return {"pump_max_ms": max(durations), "pump_p50_ms": statistics.median(durations), "calls": len(durations)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/engine.json")
    args = parser.parse_args()
    headless = batch_efficiency(reserved=0)
    ui = batch_efficiency(reserved=1)
    draft = draft_under_load()
    pump = pump_cost()
    pump_max = pump.get("pump_max_ms")  # missing (an "error" instead) without the bpy module
    result = {
        "benchmark": "engine",
        "params": {"N": N, "C": C, "L_s": L},
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "batch_efficiency": round(headless["efficiency"], 4),
        "batch_efficiency_with_draft_reserve": round(ui["efficiency"], 4),
        "draft_under_load_ratio": round(draft["ratio"], 4),
        "pump_max_ms": round(pump_max, 3) if isinstance(pump_max, float) else float("nan"),
        "threads_peak": headless["threads_peak"],
        "details": {"headless": headless, "ui_config": ui, "draft": draft, "pump": pump},
    }
    write_result(args.out, result, show={k: v for k, v in result.items() if k != "details"})


if __name__ == "__main__":
    main()
