"""The credit reserve for drafts: production never spends the account below it, drafts may. Against the
Tripo sandbox over real HTTP (it holds credits at create, as Tripo does), and as pure policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import drain

from addon.backends.tripo import TripoBackend
from addon.jobs import BatchSpec, JobKind, JobSpec, JobState, Mode
from addon.scheduling import Scheduler, SchedulerConfig, policy
from addon.scheduling.policy import BudgetVerdict, CreditPool
from sandbox.tripo import SandboxState, TripoSandbox

KEY = "tsk_reserve_test_key_0123456789"


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.1, "textured": 0.15}, balance=100.0)) as server:
        yield server


def crate(index: int, mode: Mode = Mode.PRODUCTION) -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="tripo", mode=mode, prompt=f"crate {index}", batch="night",
                   index=index)


def test_a_batch_that_would_eat_the_reserve_stops_at_it_and_drafts_still_run(sandbox: TripoSandbox,
                                                                            tmp_path: Path) -> None:
    engine = Scheduler([TripoBackend(KEY, sandbox.url, timeout_s=5)], cache_dir=tmp_path / "results",
                       config=SchedulerConfig(draft_reserved_slots=0, credit_reserve=50.0))
    engine.start()
    try:
        engine.add_batch(BatchSpec("night", backend="tripo", budget=1000.0))
        batch = [engine.add(crate(n)) for n in range(5)]  # 5 x 20 credits against 100 - 50 reserved
        drain(engine)
        finished = [job for job in batch if job.state is JobState.FINISHED]
        skipped = [job for job in batch if job.state is JobState.FAILED]
        assert len(finished) == 2 and len(skipped) == 3, [(j.state, j.error) for j in batch]
        assert sandbox.state.balance == 60.0, "production stopped before the reserve"
        assert "50 reserved for drafts" in skipped[0].error.message
        assert "available for production" in skipped[0].error.message
        draft = engine.add(crate(9, Mode.DRAFT))  # 10 credits, out of the reserve
        drain(engine)
        assert draft.state is JobState.FINISHED and sandbox.state.balance == 50.0
        assert sandbox.state.creates == 3
    finally:
        engine.shutdown()


def test_reserve_and_balance_as_pure_policy() -> None:
    assert policy.reserve_verdict(20, CreditPool(100.0, reserve=50.0, committed=20.0)) is BudgetVerdict.FITS
    assert policy.reserve_verdict(20, CreditPool(100.0, reserve=50.0, committed=40.0)) is BudgetVerdict.WAIT
    assert policy.reserve_verdict(20, CreditPool(60.0, reserve=50.0)) is BudgetVerdict.NEVER
    assert policy.reserve_verdict(20, CreditPool(30.0, spent_since_read=20.0)) is BudgetVerdict.WAIT, \
        "a charge the balance does not show yet: read it again before deciding"
    assert policy.reserve_verdict(5, CreditPool(-3.0)) is BudgetVerdict.NEVER, "a balance below zero pays nothing"
    assert policy.reserve_verdict(5, CreditPool(None, reserve=10.0)) is BudgetVerdict.WAIT, "not read yet"
