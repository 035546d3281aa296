"""Offline text engine benchmark: archetype count, fallback rate on the prompt table, and
`local_text_ms` (the whole job: plan, build, GLB and preview written) for Draft and Production.

    python bench/archetype_bench.py [--out bench/results/archetypes.json] [--seeds 3]

Times are per prompt over every archetype's canonical prompt and the table's prompts, several seeds;
wall time and the generating thread's CPU time (the fair figure on a loaded machine).
Targets from issue 17: Draft ≤ 50 ms, Production ≤ 300 ms. Build-only times (no GLB, no preview)
are reported too, to show where the time goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path[:0] = [str(REPO), str(REPO / "tests/unit")]

from archetype_prompts import rows  # noqa: E402
from bench_common import percentiles, write_result  # noqa: E402

from addon.backends.local import generate_text  # noqa: E402
from addon.backends.local.catalog import ARCHETYPES  # noqa: E402
from addon.backends.local.text import build, plan  # noqa: E402
from addon.jobs import JobKind, JobSpec, Mode  # noqa: E402


def planned_name(prompt: str) -> str | None:
    """The archetype the offline engine plans for `prompt`, or None for a miss."""
    archetype = plan(prompt, False).archetype
    return archetype.name if archetype else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/archetypes.json")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    table = rows()
    misses = [(prompt, expected) for prompt, expected, _ in table if plan(prompt, False).archetype is None]
    unexpected = [prompt for prompt, expected in misses if expected is not None]
    wrong = [prompt for prompt, expected, _ in table if planned_name(prompt) != expected]
    prompts = [a.words[0] for a in ARCHETYPES] + [p for p, _, _ in table]
    output: dict[str, object] = {
        "benchmark": "local_archetypes",
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "archetype_count": len(ARCHETYPES),
        "groups": dict(Counter(a.category for a in ARCHETYPES)),
        "table_prompts": len(table),
        "table_fallbacks": len(misses),
        "fallback_rate": round(len(misses) / len(table), 4),
        "expected_fallbacks": sum(expected is None for _, expected, _ in table),
        "unexpected_fallbacks": unexpected,
        "table_mismatches": wrong,
    }
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        generate_text(JobSpec(kind=JobKind.TEXT, backend="local", prompt="crate"), folder / "warmup")
        for mode in (Mode.DRAFT, Mode.PRODUCTION):
            job_ms, job_cpu_ms, build_ms, tris = [], [], [], []
            for number, prompt in enumerate(prompts):
                for seed in range(args.seeds):
                    spec = JobSpec(kind=JobKind.TEXT, backend="local", mode=mode, prompt=prompt, seed=seed)
                    started, cpu = time.perf_counter(), time.thread_time()
                    result = generate_text(spec, folder / f"{mode.value}_{number}_{seed}")
                    job_ms.append((time.perf_counter() - started) * 1000)
                    job_cpu_ms.append((time.thread_time() - cpu) * 1000)
                    tris.append(result.metadata["triangles"])
                    production = mode is Mode.PRODUCTION
                    started = time.perf_counter()
                    build(plan(prompt, production), seed, production)
                    build_ms.append((time.perf_counter() - started) * 1000)
            output[f"local_text_ms_{mode.value}"] = percentiles(job_ms)
            # CPU time of the generating thread: what the job costs on an idle core (wall time
            # includes waiting for the CPU on a shared machine; see load_average_1min).
            output[f"local_text_cpu_ms_{mode.value}"] = percentiles(job_cpu_ms)
            output[f"local_text_build_only_ms_{mode.value}"] = percentiles(build_ms)
            output[f"triangles_{mode.value}"] = percentiles([float(t) for t in tris], 0)
    write_result(args.out, output)


if __name__ == "__main__":
    main()
