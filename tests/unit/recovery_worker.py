"""A batch process for the crash test: run N jobs on a FakeBackend whose tasks live in a folder.

Run it, SIGKILL it mid-batch, run it again: the second run must reattach instead of resubmitting.
Prints one line per imported job, so the test knows what each process did.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.fake import FakeBackend


def main(work: Path, count: int) -> None:
    fake = FakeBackend(latency_s=0.3, limit=4, state_dir=work / "provider")
    scheduler = Scheduler([fake], journal=Journal(work / "journal"), config=SchedulerConfig(draft_reserved_slots=0))
    scheduler.start()
    scheduler.add_batch(BatchSpec("crash"))
    known = {job.spec.index for job in scheduler.views()}
    for index in range(count):
        if index not in known:
            scheduler.add(JobSpec(kind=JobKind.TEXT, backend="fake", mode=Mode.PRODUCTION, prompt=f"rock {index}",
                                  batch="crash", index=index))
    while not scheduler.is_idle():
        job = scheduler.take_ready()
        if job is None:
            time.sleep(0.01)
            continue
        # The import (here: this line) happens before the journal records it, as in the real pump.
        print(f"imported {job.spec.index} {job.job_id}", flush=True)
        scheduler.mark_imported(job)
    states = sorted({j.state.value for j in scheduler.views()})
    print(f"done {states}", flush=True)
    scheduler.shutdown()
    assert all(j.state is JobState.FINISHED for j in scheduler.views())


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
