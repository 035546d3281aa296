"""Finishing in background Blender processes vs on the main thread. Writes JSON.

    python bench/finish_bench.py [--assets 20] [--out bench/results/finish.json]

- `finish_parallel_speedup`: a headless batch (`scripts/kiln_batch.py`, local backend, `game_organic`)
  with `--finish-workers 0` (in-process) vs the default pool (one worker per core): wall time of the
  whole process, start-up included, and the speed-up; with the CPU time (run and workers) and the
  cores that used on average, and the machine's load before each run (a shared machine's other
  processes take cores from both alike).
- `pump_step_ms` (the `ui_stall_ms` proxy): the same batch pumped by the add-on's runtime as its UI
  timer would, 20 ms budget per call, with finishing in-process vs in the add-on's default pool (cores
  - 1): p50/p95/max of one pump call. Timers do not fire headless, so this is the longest stretch the
  main thread is held by Kiln, not a heartbeat measurement in the GUI.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(REPO / "scripts")]

from bench_common import percentiles, write_result  # noqa: E402

PROMPTS = ["mossy rock", "wooden barrel", "iron lantern", "stone pillar", "tree stump", "clay pot", "wooden crate",
           "boulder", "stone arch", "mushroom", "bronze bell", "log pile", "stone well", "fern", "oak tree",
           "rock cluster", "iron anvil", "wooden chest", "stone statue", "round shield"]


def manifest(folder: Path, count: int) -> Path:
    assets = "\n".join(f'[[asset]]\nprompt = "{PROMPTS[i % len(PROMPTS)]}"\n' for i in range(count))
    path = folder / "bench_finish.toml"
    path.write_text(f'[batch]\nname = "bench_finish"\nmode = "production"\nbackend = "local"\nseed = 4\n\n'
                    f'{assets}\n[finish]\npreset = "game_organic"\n')
    return path


def headless(path: Path, out: Path, workers: int | None) -> dict[str, Any]:
    flags = [] if workers is None else ["--finish-workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    load = os.getloadavg()[0]  # other processes on the machine take cores from both runs alike
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(path), "--out", str(out),
                           "--quiet", "--json", *flags], capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run and its workers (it waits for them)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    assert done.returncode == 0, done.stderr[-2000:]
    finish_s = [a["timings_s"]["finish"] for a in report.get("assets", []) if a["timings_s"].get("finish")]
    return {"workers": "default" if workers is None else workers, "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "cores_used": round(cpu / wall, 2), "load_before": round(load, 2),
            "finished": report.get("totals", {}).get("finished"),
            "finish_s_per_asset": percentiles(finish_s) if finish_s else None}


def pump_steps(count: int, workers: int) -> dict[str, Any]:
    """In this process, as the add-on: pump the batch to the end, timing every call."""
    bpy = importlib.import_module("bpy")

    module = sys.modules.get("kiln_loader") or importlib.import_module("kiln_loader")
    package = module.load_kiln().__name__
    runtime = importlib.import_module(f"{package}.addon.blender.runtime")
    jobs = importlib.import_module(f"{package}.addon.jobs")
    presets = importlib.import_module(f"{package}.addon.presets")
    requests = importlib.import_module(f"{package}.addon.requests")
    bpy.ops.wm.read_homefile(use_empty=True)
    with tempfile.TemporaryDirectory() as work:
        scheduler = runtime.start(package, journal_dir=Path(work), finish_workers=workers)
        batch = jobs.BatchSpec("bench_pump", finish=presets.PRESETS["game_organic"], target="game")
        scheduler.add_batch(batch)
        for index in range(count):
            scheduler.add_many(requests.manifest_asset_specs(batch, kind="text", index=index, name=f"bench_{index}",
                                                             base_seed=4, prompt=PROMPTS[index % len(PROMPTS)]))
        steps = []
        started = time.perf_counter()
        while not runtime.is_done():
            begun = time.perf_counter()
            runtime.pump(runtime.PUMP_BUDGET_MS)
            steps.append((time.perf_counter() - begun) * 1000)
            time.sleep(runtime.TIMER_INTERVAL_S / 10)
        wall = time.perf_counter() - started
        finished = sum(v.state.value == "finished" for v in scheduler.views())
        runtime.stop()
    return {"workers": workers, "pump_step_ms": percentiles(steps), "wall_s": round(wall, 2), "finished": finished}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/finish.json")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    output: dict[str, Any] = {"benchmark": "finish_workers", "cores": cores, "assets": args.assets,
                              "preset": "game_organic", "backend": "local"}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        path = manifest(folder, args.assets)
        in_process = headless(path, folder / "in_process", 0)
        pooled = headless(path, folder / "pooled", None)
    output["headless"] = {"in_process": in_process, "workers": pooled}
    output["finish_parallel_speedup"] = round(in_process["wall_s"] / pooled["wall_s"], 2)

    import kiln_loader

    kiln_loader.isolate_user_resources()
    gui_default = max(1, cores - 1)
    output["pump"] = {"in_process": pump_steps(args.assets, 0), "workers": pump_steps(args.assets, gui_default)}
    output["ui_stall_ms_proxy"] = {name: {"p95": run["pump_step_ms"]["p95"], "max": run["pump_step_ms"]["max"]}
                                   for name, run in output["pump"].items()}
    write_result(args.out, output)


if __name__ == "__main__":
    main()
