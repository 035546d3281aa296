"""Local engine benchmark: generation latency, triangles and file sizes. Writes JSON.

    python bench/local_bench.py [--out bench/results/local.json]

Text: every archetype with three seeds, Draft and Production. Image: the five drawn test subjects
at 1024x1024 (two with alpha), Draft and Production, three runs each. Multiview: front + left at
768x768. Times include writing the GLB and the preview PNG, as a job does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path[:0] = [str(REPO), str(REPO / "tests/tools")]

from bench_common import percentiles, write_result  # noqa: E402
from test_images import draw, multiview_pair  # noqa: E402

from addon.backends.local import LocalResult, generate_image, generate_multiview, generate_text  # noqa: E402
from addon.backends.local.text import ARCHETYPES  # noqa: E402
from addon.jobs import JobKind, JobSpec, Mode  # noqa: E402


def summary(results: list[dict[str, float]]) -> dict[str, object]:
    return {
        "ms": percentiles([r["ms"] for r in results]),
        "triangles": {"median": statistics.median(r["triangles"] for r in results),
                      "max": max(r["triangles"] for r in results)},
        "glb_bytes": {"median": statistics.median(r["bytes"] for r in results),
                      "max": max(r["bytes"] for r in results)},
    }


def timed(function: Callable[..., LocalResult], *args: Any) -> dict[str, float]:
    started = time.perf_counter()
    result = function(*args)
    elapsed = (time.perf_counter() - started) * 1000
    return {"ms": elapsed, "triangles": result.metadata["triangles"], "bytes": result.metadata["bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/local.json")
    args = parser.parse_args()
    output: dict[str, object] = {"benchmark": "local_engine"}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        generate_text(JobSpec(kind=JobKind.TEXT, backend="local", prompt="crate"), folder / "warmup")
        for mode in (Mode.DRAFT, Mode.PRODUCTION):
            runs = []
            for archetype in ARCHETYPES:
                for seed in (1, 2, 3):
                    spec = JobSpec(kind=JobKind.TEXT, backend="local", mode=mode, prompt=archetype.words[0], seed=seed)
                    runs.append(timed(generate_text, spec, folder / f"t_{archetype.name}_{seed}_{mode.value}"))
            output[f"local_text_{mode.value}"] = summary(runs)
        images = [draw(name, 1024, alpha=alpha)[0] for name, alpha in
                  (("disc", False), ("star", True), ("lshape", False), ("character", True), ("photo", False))]
        for mode in (Mode.DRAFT, Mode.PRODUCTION):
            runs = []
            for index, rgba in enumerate(images):
                for repeat in range(3):
                    spec = JobSpec(kind=JobKind.IMAGE, backend="local", mode=mode)
                    runs.append(timed(generate_image, spec, rgba, folder / f"i_{index}_{repeat}_{mode.value}"))
            output[f"local_image_{mode.value}"] = summary(runs)
            views = {view: pair[0] for view, pair in multiview_pair(768).items()}
            spec = JobSpec(kind=JobKind.MULTIVIEW, backend="local", mode=mode)
            output[f"local_multiview_{mode.value}"] = summary(
                [timed(generate_multiview, spec, views, folder / f"m_{r}_{mode.value}") for r in range(3)])
    write_result(args.out, output)


if __name__ == "__main__":
    main()
