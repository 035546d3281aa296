"""Artist-facing latency: click to draft in the scene, and the camera capture. Writes JSON.

    python bench/ui_bench.py [--out bench/results/ui.json]

click_to_draft_ms: `kiln.generate` called until the object is in the scene, with the pump running as
the UI timer would (every 10 ms here), on the local backend, Draft mode. camera_capture_ms: the
Workbench render of the default scene's camera at 1024 px.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "scripts"))

import kiln_loader  # noqa: E402
from bench_common import percentiles, write_result  # noqa: E402

kiln_loader.isolate_user_resources()
bpy = importlib.import_module("bpy")
KILN = kiln_loader.load_kiln().__name__
runtime = importlib.import_module(f"{KILN}.addon.blender.runtime")
capture = importlib.import_module(f"{KILN}.addon.blender.capture")

PROMPTS = ["wooden crate", "mossy rock", "tall pine tree", "stone pillar", "barrel", "chair", "sword", "mushroom"]


def click_to_draft() -> list[float]:
    times = []
    for round_ in range(3):
        for prompt in PROMPTS:
            bpy.ops.wm.read_homefile(use_empty=True)
            started = time.perf_counter()
            bpy.ops.kiln.generate(prompt=f"{prompt} {round_}")
            while not any(o.get("kiln_prompt") for o in bpy.data.objects):
                runtime.pump()
                time.sleep(0.01)
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/ui.json")
    args = parser.parse_args()
    bpy.ops.kiln.generate(prompt="warm up")
    runtime.run_until_done(timeout=30)
    clicks = click_to_draft()
    captures = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(5):
            bpy.ops.wm.read_homefile()
            _, seconds = capture.capture_camera(bpy.context.scene, Path(folder))
            captures.append(seconds * 1000)
    result = {
        "benchmark": "ui",
        "click_to_draft_ms": percentiles(clicks, 1),
        "camera_capture_ms": {"median": round(statistics.median(captures), 1), "max": round(max(captures), 1)},
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
