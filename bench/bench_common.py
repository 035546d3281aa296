"""What every benchmark shares: percentile summaries and writing the JSON result."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol


def percentiles(values: list[float], digits: int = 2) -> dict[str, float]:
    """p50, p95 (nearest rank), max and count."""
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), digits),
            "p95": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], digits),
            "max": round(ordered[-1], digits), "n": len(ordered)}


def write_result(path: Path, result: dict[str, Any], show: dict[str, Any] | None = None) -> None:
    """Write the JSON result and print it (or the part given in `show`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result if show is None else show, indent=2))
    print(f"written to {path}")


def rss_kb() -> int:
    """This process's resident memory now (VmRSS, kB); where /proc is missing, the peak from `resource`
    (a high-water mark, so growth read from it is an upper bound)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Rows of text as aligned columns; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                        for i, (cell, width) in enumerate(zip(row, widths, strict=True))))
        if number == 0:
            print("  ".join("-" * width for width in widths))


class _HasState(Protocol):
    @property
    def state(self) -> object: ...


def reached(job: _HasState, *states: object) -> Callable[[], bool]:
    """A wait condition: `job` is in one of `states`. A function rather than a lambda in the loop, so the
    condition holds this job (not the loop's last) and keeps its type."""
    return lambda: job.state in states


def import_ready(scheduler: Any, until: Callable[[], bool] | None = None) -> None:
    """What the add-on's pump does, for a benchmark without Blender: take each downloaded result and call
    it imported, until `until()` (by default, until the engine is idle)."""
    done = until or scheduler.is_idle
    while not done():
        job = scheduler.take_ready()
        if job is None:
            time.sleep(0.002)
        else:
            scheduler.mark_imported(job)
