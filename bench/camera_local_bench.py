"""Generate from Camera on the local engine: how close the result is to its subject, and what the capture
costs. Writes JSON.

    python bench/camera_local_bench.py [--out bench/results/camera_local.json]

camera_local_iou: a cube, a cylinder and Suzanne, each from the default camera and from a lower camera
front-left (`tests/blender/silhouettes.py`), captured with `kiln.generate_from_camera` in Draft and
compared with the source object in the front view: silhouette, depth map and whole-solid IoU (the same
numbers `tests/blender/test_camera_depth.py` asserts). capture_ms: the Workbench render and the depth
ray cast of the default scene's camera, five runs each. generate_ms: the local engine's time for the
solid: Draft from the job's own timing, Production by running the engine on the same request.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests/blender")]

import kiln_loader  # noqa: E402
from bench_common import percentiles, print_table, write_result  # noqa: E402

kiln_loader.isolate_user_resources()
bpy = importlib.import_module("bpy")
KILN = kiln_loader.load_kiln().__name__
runtime = importlib.import_module(f"{KILN}.addon.blender.runtime")
capture = importlib.import_module(f"{KILN}.addon.blender.capture")
local = importlib.import_module(f"{KILN}.addon.backends.local")
jobs = importlib.import_module(f"{KILN}.addon.jobs")
from silhouettes import ANGLES, add_subject, aim_camera, front_view_ious  # noqa: E402

SUBJECTS = ("cube", "cylinder", "suzanne")


def capture_times(folder: Path) -> dict[str, object]:
    bpy.ops.wm.read_homefile()
    scene = bpy.context.scene
    render, depth = [], []
    for _ in range(5):
        render.append(capture.capture_camera(scene, folder)[1] * 1000)
        depth.append(capture.capture_depth(scene, folder)[1] * 1000)
    return {"render_ms": percentiles(render), "depth_ms": percentiles(depth)}


def one(kind: str, angle: str, folder: Path) -> dict[str, float]:
    source = add_subject(kind)
    aim_camera(angle)
    started = time.perf_counter()
    assert bpy.ops.kiln.generate_from_camera() == {"FINISHED"}
    operator_ms = (time.perf_counter() - started) * 1000
    assert runtime.run_until_done(timeout=120)
    (result,) = [o for o in bpy.data.objects if o.get("kiln_job_id")]
    ious = front_view_ious(source, result)
    spec = jobs.JobSpec.from_json(json.loads(result["kiln_spec"]))
    production = dataclasses.replace(spec, mode=jobs.Mode.PRODUCTION)
    started = time.perf_counter()
    made = local.generate(production, folder / f"{kind}_{angle}")
    production_ms = (time.perf_counter() - started) * 1000
    return {**{k: round(v, 3) for k, v in ious.items()}, "operator_ms": round(operator_ms, 1),
            "draft_ms": round(float(result["kiln_generation_s"]) * 1000, 1),
            "draft_triangles": int(result["kiln_triangles"]), "production_ms": round(production_ms, 1),
            "production_triangles": int(made.metadata["triangles"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/camera_local.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        runtime.start(KILN, journal_dir=Path(work) / "journal", cache_dir=Path(work) / "cache")
        times = capture_times(Path(work) / "captures")
        draft = {f"{kind}/{angle}": one(kind, angle, Path(work) / "production")
                 for kind in SUBJECTS for angle in ANGLES}
        runtime.start(KILN)  # the default engine again, before its folders go
    rows = [["subject/angle", "silhouette", "depth", "solid", "draft ms", "production ms", "triangles"]]
    rows += [[name, f"{r['silhouette']:.3f}", f"{r['depth']:.3f}", f"{r['solid']:.3f}", f"{r['draft_ms']:.0f}",
              f"{r['production_ms']:.0f}", f"{r['draft_triangles']}/{r['production_triangles']}"]
             for name, r in draft.items()]
    print_table(rows)
    keys = ("silhouette", "depth", "solid")
    iou: dict[str, dict[str, float]] = {}
    for key in keys:
        values = [r[key] for r in draft.values()]
        iou[key] = {name: r[key] for name, r in draft.items()} | {"min": min(values),
                                                                   "mean": round(statistics.mean(values), 3)}
    result = {
        "benchmark": "camera_local",
        "camera_local_iou": iou,
        "capture": times,
        "operator_ms": percentiles([r["operator_ms"] for r in draft.values()]),
        "generate_ms": {mode: percentiles([r[f"{mode}_ms"] for r in draft.values()])
                        for mode in ("draft", "production")},
        "triangles": {mode: percentiles([r[f"{mode}_triangles"] for r in draft.values()], 0)
                      for mode in ("draft", "production")},
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
