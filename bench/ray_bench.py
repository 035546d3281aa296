"""The demo manifest on one process vs on 2 Ray workers (`scripts/kiln_ray.py`, 2 shards). Writes JSON.

    python bench/ray_bench.py [--manifest examples/demo.toml] [--out bench/results/ray.json]

- `ray_speedup_2`: wall time of `kiln_batch.py MANIFEST` (one process, its default finishing pool)
  divided by the wall time of `kiln_ray.py MANIFEST --shards 2` on a local Ray with 2 CPUs: Ray's
  start-up, both shards and the merge, as a user waits for them.
- Where the Ray run's time goes: Ray's start-up (`ray_start_s`), each shard's process (bpy import,
  Kiln's load, the run, export, contact sheet, save: `process_s`) next to the run itself as the shard's
  report times it (`run_s`; process_s - run_s is the start-up and teardown of Blender in that shard),
  and the merge (append, contact sheet render, save: `merge_process_s`, of which `merge_s` in Blender).
- `ray_speedup_2_joined`: the same, less Ray's start-up (computed from the same runs): a farm whose
  cluster is already up (`ray start --head` once, then `--address auto`) pays no start-up per batch.
- The machine's load average before each run: other processes take cores from both runs alike.
Needs Ray (`pip install -r requirements-dev.txt`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(REPO / "scripts")]

from bench_common import write_result  # noqa: E402


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}


def one_process(manifest: Path, out: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out", str(out),
                           "--quiet", "--json"], capture_output=True, text=True, env=clean_env(), timeout=1800)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    return {"wall_s": round(wall, 2), "run_s": report["totals"]["wall_s"], "jobs": report["totals"]["jobs"],
            "finished": report["totals"]["finished"], "load_before": round(load, 2)}


def on_ray(manifest: Path, out: Path) -> dict[str, Any]:
    """`kiln_ray.py --shards 2` as a user runs it: a fresh local Ray (2 CPUs), shards, merge."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "scripts/kiln_ray.py"), str(manifest), "--out", str(out),
                           "--shards", "2"], capture_output=True, text=True, env=clean_env(),
                          timeout=1800)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    folder = next(p.parent for p in out.glob("*/report.json"))
    report = json.loads((folder / "report.json").read_text())
    ray = report["ray"]
    shards = []
    for entry in ray["shards"]:
        index, count = entry["shard"].split("/")
        shard_report = json.loads((folder / f"report.shard-{index}-of-{count}.json").read_text())
        shards.append({"shard": entry["shard"], "process_s": entry["seconds"],
                       "run_s": shard_report["totals"]["wall_s"], "jobs": shard_report["totals"]["jobs"],
                       "start_and_teardown_s": round(entry["seconds"] - shard_report["totals"]["wall_s"], 2)})
    return {"wall_s": round(wall, 2), "ray_start_s": ray["ray_start_s"], "shards_s": ray["shards_s"],
            "shards": shards, "merge_process_s": ray["merge_process_s"], "merge_s": report["merge_s"],
            "jobs": report["totals"]["jobs"], "finished": report["totals"]["finished"],
            "load_before": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=REPO / "examples/demo.toml")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/ray.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-ray-bench-") as folder:
        single = one_process(args.manifest, Path(folder) / "single")
        ray = on_ray(args.manifest, Path(folder) / "ray")
    assert single["jobs"] == ray["jobs"] and single["finished"] == ray["finished"], (single, ray)
    result = {
        "benchmark": "ray", "manifest": str(args.manifest.relative_to(REPO) if args.manifest.is_relative_to(REPO)
                                            else args.manifest),
        "cores": os.cpu_count(), "ray_speedup_2": round(single["wall_s"] / ray["wall_s"], 2),
        # The same runs less Ray's start-up: what joining a cluster that is already up (--address) costs.
        "ray_speedup_2_joined": round(single["wall_s"] / (ray["wall_s"] - ray["ray_start_s"]), 2),
        "one_process": single, "ray_2_workers": ray,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
