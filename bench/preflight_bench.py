"""Pre-flight benchmark: how long the checks take on the pixels a backend receives. Writes JSON.

    python bench/preflight_bench.py [--out bench/results/preflight.json] [--runs 20]

`preflight_image_ms` is one `check_image` of a 2048x2048 RGBA reference (Kiln's largest prepared input)
for Tripo's limits: the ≤512 px copy, the subject mask, edges, blur, components (target ≤ 50 ms, so the
checks never add a noticeable pause to a button). Also reported: the same for the local engine's limits
(which also runs its silhouette extraction on the copy), a busy photo, and one prompt check.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path[:0] = [str(REPO)]

from bench_common import percentiles, write_result  # noqa: E402

from addon import preflight  # noqa: E402
from addon.backends.local import LocalBackend  # noqa: E402
from addon.backends.tripo import TripoBackend  # noqa: E402

SIZE = 2048


def reference(busy: bool) -> npt.NDArray[np.uint8]:
    """A 2048² subject on a plain studio backdrop, or on a textured, noisy one (a street photo)."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    image = np.full((SIZE, SIZE, 4), 255, np.uint8)
    if busy:
        noise = np.random.default_rng(0).integers(0, 60, (SIZE, SIZE))
        image[..., :3] = ((((cols // 36 + rows // 52) % 2) * 120 + 60 + noise)[..., None]).astype(np.uint8)
    else:
        image[..., :3] = 235
    inside = (cols - SIZE // 2) ** 2 + ((rows - SIZE // 2) * 1.3) ** 2 < (SIZE * 0.3) ** 2
    image[inside, :3] = (120, 70, 40)
    return image


def timed(function: Callable[[], object], runs: int, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    times = []
    for _ in range(runs):
        start = clock()
        function()
        times.append((clock() - start) * 1000.0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/preflight.json")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    plain, busy = reference(busy=False), reference(busy=True)
    tripo, local = TripoBackend.capabilities.limits, LocalBackend.capabilities.limits
    preflight.check_image(plain, tripo)  # warm-up: first-call allocations and imports
    cases = {
        "tripo_plain": timed(lambda: preflight.check_image(plain, tripo), args.runs),
        "local_plain": timed(lambda: preflight.check_image(plain, local), args.runs),
        "tripo_busy": timed(lambda: preflight.check_image(busy, tripo), args.runs),
    }
    prompt = "a low-poly fantasy treasure chest, wooden with iron bands, closed, isometric view"
    prompt_ms = timed(lambda: preflight.check_prompt(prompt, tripo, mode="production"), args.runs * 10)
    # This process's CPU time per check too: on a shared machine the wall time also counts the waits for a
    # core, which the checks do not cause.
    cpu = timed(lambda: preflight.check_image(plain, tripo), args.runs, time.process_time)
    result = {
        "preflight_image_ms": percentiles(cases["tripo_plain"])["p50"],
        "preflight_image_cpu_ms": percentiles(cpu)["p50"],
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "target_ms": 50.0,
        "image_px": SIZE,
        "image_ms": {name: percentiles(times) for name, times in cases.items()},
        "prompt_ms": percentiles(prompt_ms, digits=3),
        "findings": {"tripo_busy": [f.code for f in preflight.check_image(busy, tripo)[0]]},
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
