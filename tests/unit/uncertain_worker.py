"""A Kiln process for the exactly-once kill test: queue N Tripo jobs against a sandbox and wait.

The test SIGKILLs it while creates are on the wire (the sandbox holds their answers), then restarts
Kiln on the same journal: those jobs must come back uncertain, never sent again on their own.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from addon.backends.tripo import TripoBackend
from addon.jobs import BatchSpec, JobKind, JobSpec, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig


def main(work: Path, url: str, key: str, count: int) -> None:
    backend = TripoBackend(key, url, timeout_s=60)
    scheduler = Scheduler([backend], journal=Journal(work), config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    scheduler.add_batch(BatchSpec("kill", backend="tripo"))
    for index in range(count):
        scheduler.add(JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt=f"crate {index}",
                              batch="kill", index=index))
    print("queued", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
