"""Blender pipeline benchmark: import overhead, finishing, FBX export, memory over 200 imports. JSON.

    python bench/pipeline_bench.py [--out bench/results/pipeline.json]

Runs in the `bpy` module with Kiln loaded as an extension. The textured 50k-triangle asset is the
local engine's Production inflation of the drawn character (about 52k triangles, 1024 px texture).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests/tools")]

import kiln_loader  # noqa: E402
from bench_common import write_result  # noqa: E402

if TYPE_CHECKING:  # the loaded extension's classes, as mypy reads them from this checkout
    from addon.jobs import Job

kiln_loader.isolate_user_resources()
bpy = importlib.import_module("bpy")
KILN = kiln_loader.load_kiln().__name__


def engine(name: str) -> ModuleType:
    return importlib.import_module(f"{KILN}.addon.{name}")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def make_job(model: Path, preview: Path | None, index: int) -> Job:
    jobs = engine("jobs")
    spec = jobs.JobSpec(kind=jobs.JobKind.IMAGE, backend="local", mode=jobs.Mode.PRODUCTION, batch="bench_01",
                        index=index, image_paths=("character.png",))
    job: Job = jobs.Job(spec=spec)
    job.files = {"model": str(model), **({"preview": str(preview)} if preview else {})}
    return job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/pipeline.json")
    args = parser.parse_args()
    from test_images import draw

    local = engine("backends.local")
    jobs = engine("jobs")
    importer = engine("blender.importer")
    finishing = engine("blender.finishing")
    exporter = engine("blender.exporter")
    presets = engine("presets")
    result: dict[str, object] = {"benchmark": "pipeline"}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        rgba, _ = draw("character", 1024, alpha=True)
        generated = local.generate_image(jobs.JobSpec(kind=jobs.JobKind.IMAGE, backend="local",
                                                      mode=jobs.Mode.PRODUCTION), rgba, folder / "asset")
        model, preview = Path(generated.files["model"]), Path(generated.files["preview"])
        result["asset"] = {"triangles": generated.metadata["triangles"], "glb_bytes": generated.metadata["bytes"]}

        bare, kiln_total, kiln_own = [], [], []
        for repeat in range(5):
            bpy.ops.wm.read_homefile(use_empty=True)
            started = time.perf_counter()
            bpy.ops.import_scene.gltf(filepath=str(model), merge_vertices=True)
            bare.append((time.perf_counter() - started) * 1000)
            bpy.ops.wm.read_homefile(use_empty=True)
            job = make_job(model, preview, repeat)
            started = time.perf_counter()
            importer.import_result(job)
            kiln_total.append((time.perf_counter() - started) * 1000)
            kiln_own.append(job.metadata["kiln_import_ms"])
        importer_ms = statistics.median(bare)
        own_ms = statistics.median(kiln_own)
        result["import_ms"] = {"bare_importer_median": round(importer_ms, 1),
                               "kiln_import_median": round(statistics.median(kiln_total), 1),
                               "kiln_own_median": round(own_ms, 1),
                               "kiln_overhead_ratio": round(own_ms / importer_ms, 3)}

        finish_s, export_ms = [], []
        for repeat in range(3):
            bpy.ops.wm.read_homefile(use_empty=True)
            job = make_job(model, None, repeat)
            importer.import_result(job)
            obj = importer.find_result(job.job_id)
            report = finishing.finish_object(obj, presets.PRESETS["game"], game=True)
            finish_s.append(report.seconds)
            group = bpy.data.objects[report.asset]
            written = exporter.export([group], str(folder / f"export_{repeat}"), per="asset", preset="unity")
            export_ms.append(written[0].ms)
        organic = []
        for repeat in range(2):
            bpy.ops.wm.read_homefile(use_empty=True)
            job = make_job(model, None, repeat)
            importer.import_result(job)
            report = finishing.finish_object(importer.find_result(job.job_id), presets.PRESETS["game_organic"])
            organic.append({"seconds": round(report.seconds, 2),
                            "bake": next(s.detail for s in report.steps if s.step == "bake")})
        result["finish_game_s"] = round(statistics.median(finish_s), 3)
        result["finish_game_organic"] = organic
        result["export_fbx_ms"] = round(statistics.median(export_ms), 1)

        small = local.generate_text(jobs.JobSpec(kind=jobs.JobKind.TEXT, backend="local", prompt="wooden barrel",
                                                 mode=jobs.Mode.PRODUCTION), folder / "small")
        bpy.ops.wm.read_homefile(use_empty=True)
        gc.collect()
        before = current_rss_mb()
        counts_before = {name: len(getattr(bpy.data, name)) for name in ("objects", "meshes", "materials", "images")}
        for index in range(200):
            job = make_job(Path(small.files["model"]), Path(small.files["preview"]), index)
            importer.import_result(job)
            obj = importer.find_result(job.job_id)
            mesh, materials = obj.data, [s.material for s in obj.material_slots]
            bpy.data.objects.remove(obj, do_unlink=True)
            bpy.data.meshes.remove(mesh)
            for material in materials:
                if material is not None and material.users == 0:
                    bpy.data.materials.remove(material)
        gc.collect()
        after = current_rss_mb()
        counts_after = {name: len(getattr(bpy.data, name)) for name in ("objects", "meshes", "materials", "images")}
        orphans = sum(1 for collection in (bpy.data.meshes, bpy.data.materials, bpy.data.images)
                      for block in collection if block.users == 0)
        result["memory_200_imports"] = {"rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
                                        "growth_mb": round(after - before, 1), "datablocks_before": counts_before,
                                        "datablocks_after": counts_after, "orphans_left": orphans,
                                        "peak_rss_mb": round(rss_mb(), 1)}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
