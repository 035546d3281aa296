"""What the session spent and what is left, against the Tripo sandbox over real HTTP: every charged task
counts once (a refunded one not at all), clearing the queue keeps the count, and the balance is read
again after the charges without anyone asking."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import drain, wait_for

from addon.backends.tripo import TripoBackend
from addon.jobs import BatchSpec, Job, JobKind, JobSpec, JobState, Mode
from addon.scheduling import Scheduler, SchedulerConfig
from sandbox.tripo import SandboxState, TripoSandbox

KEY = "tsk_spend_test_key_0123456789"
BALANCE_ROUTE = "/v3/account/balance"


@pytest.fixture
def sandbox() -> Iterator[TripoSandbox]:
    with TripoSandbox(SandboxState(latency_s={"draft": 0.2, "textured": 0.3})) as server:
        yield server


@pytest.fixture
def scheduler(sandbox: TripoSandbox, tmp_path: Path) -> Iterator[Scheduler]:
    backend = TripoBackend(KEY, sandbox.url, timeout_s=5)
    engine = Scheduler([backend], cache_dir=tmp_path / "results", config=SchedulerConfig(draft_reserved_slots=0))
    engine.start()
    engine.add_batch(BatchSpec("b", backend="tripo"))
    yield engine
    engine.shutdown()


def crate(index: int, mode: Mode = Mode.PRODUCTION) -> JobSpec:
    return JobSpec(kind=JobKind.TEXT, backend="tripo", mode=mode, prompt=f"crate {index}", batch="b", index=index)


def balance_reads(sandbox: TripoSandbox) -> int:
    return sum(1 for _, route, _ in sandbox.state.requests_seen if route == BALANCE_ROUTE)


def refused(sandbox: TripoSandbox, scheduler: Scheduler) -> Job:
    """A job whose task the provider fails (content policy), and refunds."""
    sandbox.state.failure_rates = {2008: 1.0}
    job = scheduler.add(crate(0))
    wait_for(lambda: sandbox.state.creates == 1)
    sandbox.state.failure_rates = {}
    return job


def test_the_session_counts_each_charge_once_and_the_balance_follows(sandbox: TripoSandbox,
                                                                     scheduler: Scheduler) -> None:
    jobs = [refused(sandbox, scheduler)]  # failed on the provider, and refunded
    jobs += [scheduler.add(crate(n)) for n in range(1, 3)] + [scheduler.add(crate(9, Mode.DRAFT))]
    drain(scheduler)
    states = sorted(job.state.value for job in jobs)
    assert states == ["failed", "finished", "finished", "finished"]
    charged = sum(job.credits_spent for job in jobs)
    assert charged == 50.0, "two textured tasks at 20, a draft at 10; the failed one was refunded"
    assert scheduler.session_spent == charged

    wait_for(lambda: scheduler.balances.get("tripo") == sandbox.state.balance)
    assert sandbox.state.balance == 1000.0 - charged, "what the panel shows is what the account has"
    assert 1 <= balance_reads(sandbox) <= 3, "read after the charges, never more than once per charge"

    assert scheduler.clear_finished() == 4
    assert scheduler.session_spent == charged, "clearing the queue forgets rows, not what was spent"


def test_a_refunded_task_costs_nothing_and_asks_for_no_balance(sandbox: TripoSandbox, scheduler: Scheduler) -> None:
    job = refused(sandbox, scheduler)
    drain(scheduler)
    assert job.state is JobState.FAILED and scheduler.session_spent == 0.0
    assert balance_reads(sandbox) == 0 and "tripo" not in scheduler.balances
