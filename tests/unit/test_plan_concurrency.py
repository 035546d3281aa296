"""A plan below the provider's best (the preference "Plan concurrency") is what Kiln believes from the
first create: against the Tripo sandbox over real HTTP, a plan of two never draws a concurrency refusal
from an account that allows two, where the provider's declared ten does."""

from __future__ import annotations

from pathlib import Path

from helpers import drain

from addon.backends.tripo import TripoBackend
from addon.jobs import BatchSpec, JobKind, JobSpec, Mode
from addon.journal import Journal
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.tripo import SandboxState, TripoSandbox

KEY = "tsk_plan_test_key_0123456789"
JOBS = 5


def creates_sent(plan: dict[str, int], folder: Path) -> tuple[int, int]:
    """Create requests sent (refused ones included) to finish JOBS drafts on an account allowing two."""
    with TripoSandbox(SandboxState(latency_s={"draft": 0.3, "textured": 0.3}, limit=2)) as server:
        backend = TripoBackend(KEY, server.url, timeout_s=5)
        scheduler = Scheduler([backend], journal=Journal(folder),
                              config=SchedulerConfig(draft_reserved_slots=0, plan_concurrency=plan))
        scheduler.start()
        try:
            scheduler.add_batch(BatchSpec("b", backend="tripo"))
            for index in range(JOBS):
                scheduler.add(JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.DRAFT, prompt=f"crate {index}",
                                      batch="b", index=index))
            imported = len(drain(scheduler, timeout=30))
        finally:
            scheduler.shutdown()
        posts = [route for method, route, _ in server.state.requests_seen
                 if method == "POST" and route.startswith("/v3/generation")]
        return len(posts), imported


def test_a_plan_limit_is_believed_from_the_first_create(tmp_path: Path) -> None:
    sent, imported = creates_sent({"tripo": 2}, tmp_path / "plan")
    assert imported == JOBS
    assert sent == JOBS, "never more in flight than the plan allows: no create was refused"


def test_without_a_plan_the_declared_limit_draws_refusals(tmp_path: Path) -> None:
    sent, imported = creates_sent({}, tmp_path / "declared")
    assert imported == JOBS
    assert sent > JOBS, "the provider's declared ten overshoot an account that allows two"
