"""The scheduling policy and the ETA arithmetic as plain functions: no threads, no backends, no clock."""

from __future__ import annotations

import pytest

from addon.jobs import JobState, Priority
from addon.scheduling import eta, policy
from addon.scheduling.policy import BatchPolicy, BatchTotals, BudgetVerdict, QueuedJob, QueueView, SlotState

NOW = 1000.0
WALL = 1_700_000_000.0


def draft(job_id: str, created_at: float = 0.0, group: str = "g", backend: str = "b") -> QueuedJob:
    return QueuedJob(job_id, backend, group, draft=True, created_at=created_at)


def prod(job_id: str, batch: str = "batch", index: int = 0, credits: float = 0.0, group: str = "g",
         backend: str = "b", created_at: float = 0.0) -> QueuedJob:
    return QueuedJob(job_id, backend, group, draft=False, batch=batch, index=index, created_at=created_at,
                     credits_estimated=credits)


def slots(limit: int, in_flight: int = 0, believed: int | None = None, not_before: float = 0.0) -> SlotState:
    return SlotState(declared=limit, believed=limit if believed is None else believed, in_flight=in_flight,
                     not_before=not_before)


def view(*queued: QueuedJob, limit: int = 4, in_flight: int = 0, reserved: int = 0, paused: bool = False,
         batches: tuple[BatchPolicy, ...] = (), totals: dict[str, BatchTotals] | None = None,
         extra_slots: dict[tuple[str, str], SlotState] | None = None) -> QueueView:
    # Every production job's batch is declared unless a test says otherwise (an undeclared one is held).
    declared = {job.batch: BatchPolicy(job.batch) for job in queued if not job.draft}
    return QueueView(
        queued=queued,
        slots={("b", "g"): slots(limit, in_flight), **(extra_slots or {})},
        batches={**declared, **{b.name: b for b in batches}},
        totals=totals or {},
        production_paused=paused,
        draft_reserved_slots=reserved,
    )


def decide(queue: QueueView, now_wall: float = WALL) -> policy.Decision:
    return policy.dispatch(queue, now_mono=NOW, now_wall=now_wall)


# ---------------------------------------------------------------------------------------------- order
def test_drafts_go_first_oldest_first_then_production_by_priority_batch_age_and_index() -> None:
    batches = {
        "old_low": BatchPolicy("old_low", priority=Priority.LOW, order=1),
        "old_normal": BatchPolicy("old_normal", priority=Priority.NORMAL, order=2),
        "new_normal": BatchPolicy("new_normal", priority=Priority.NORMAL, order=3),
        "high": BatchPolicy("high", priority=Priority.HIGH, order=4),
    }
    queued = [
        prod("low0", "old_low", 0), prod("new1", "new_normal", 1), prod("new0", "new_normal", 0),
        draft("late_draft", created_at=20.0), prod("old1", "old_normal", 1), prod("high0", "high", 0),
        draft("early_draft", created_at=10.0), prod("old0", "old_normal", 0),
    ]
    order = [job.job_id for job in policy.in_order(queued, batches)]
    assert order == ["early_draft", "late_draft", "high0", "old0", "old1", "new0", "new1", "low0"]


def test_a_batch_never_declared_counts_as_normal_priority_and_oldest() -> None:
    batches = {"high": BatchPolicy("high", priority=Priority.HIGH, order=1),
               "low": BatchPolicy("low", priority=Priority.LOW, order=2)}
    order = policy.in_order([prod("low", "low"), prod("loose", "nobody"), prod("high", "high")], batches)
    assert [job.job_id for job in order] == ["high", "loose", "low"]


def test_dispatch_submits_in_order_up_to_the_free_slots() -> None:
    decision = decide(view(prod("p1", index=1), prod("p0", index=0), prod("p2", index=2), draft("d"),
                           limit=3, in_flight=1))
    assert decision.submit == ("d", "p0")
    assert decision.slots[("b", "g")].in_flight == 3
    assert decision.over_budget == ()


def test_groups_and_backends_have_their_own_slots() -> None:
    other = ("b", "other")
    queue = view(prod("a0", index=0), prod("a1", index=1), prod("o0", index=2, group="other"),
                 prod("o1", index=3, group="other"), limit=1, extra_slots={other: slots(2)})
    decision = decide(queue)
    assert decision.submit == ("a0", "o0", "o1")
    assert decision.slots[other].in_flight == 2 and decision.slots[("b", "g")].in_flight == 1


def test_nothing_queued_sleeps_the_idle_interval() -> None:
    decision = decide(view())
    assert decision.submit == () and decision.sleep_s == policy.IDLE_WAKE_S


# ---------------------------------------------------------------------------------------------- lanes
def test_production_leaves_the_draft_reserve_free_and_a_draft_takes_it() -> None:
    queued = [prod(f"p{i}", index=i) for i in range(6)]
    decision = decide(view(*queued, limit=4, reserved=1))
    assert decision.submit == ("p0", "p1", "p2"), "one of four slots stays free for drafts"
    after = view(draft("d"), *queued[3:], limit=4, in_flight=3, reserved=1)
    assert decide(after).submit == ("d",), "the draft goes at once; production still waits"


def test_the_reserve_never_takes_a_groups_only_slot() -> None:
    assert decide(view(prod("p"), limit=1, reserved=1)).submit == ("p",)
    assert policy.allowance(slots(1), draft=False, draft_reserved_slots=3) == 1
    assert policy.allowance(slots(4), draft=False, draft_reserved_slots=3) == 1
    assert policy.allowance(slots(4), draft=True, draft_reserved_slots=3) == 4


def test_the_reserve_applies_to_the_slots_we_believe_in() -> None:
    shrunk = slots(4, believed=2)
    assert policy.allowance(shrunk, draft=False, draft_reserved_slots=1) == 1
    assert policy.allowance(shrunk, draft=True, draft_reserved_slots=1) == 2


# ---------------------------------------------------------------------------------------------- pause
def test_pause_holds_production_and_lets_drafts_through() -> None:
    decision = decide(view(prod("p0"), draft("d"), prod("p1", index=1), paused=True))
    assert decision.submit == ("d",)
    assert decide(view(prod("p0"), draft("d"), prod("p1", index=1))).submit == ("d", "p0", "p1")


# ---------------------------------------------------------------------------------------------- start time
def test_a_batch_waits_for_its_start_time_and_the_dispatcher_wakes_for_it() -> None:
    later = BatchPolicy("later", start_at=WALL + 0.4, order=1)
    now = BatchPolicy("now", order=2)
    decision = decide(view(prod("l", "later"), prod("n", "now"), batches=(later, now)))
    assert decision.submit == ("n",)
    assert decision.sleep_s == pytest.approx(0.4)
    assert decide(view(prod("l", "later"), batches=(later,)), now_wall=WALL + 0.5).submit == ("l",)


def test_a_far_start_time_still_wakes_within_the_idle_interval() -> None:
    tomorrow = BatchPolicy("tomorrow", start_at=WALL + 86_400)
    decision = decide(view(prod("t", "tomorrow"), batches=(tomorrow,)))
    assert decision.submit == () and decision.sleep_s == policy.IDLE_WAKE_S


def test_drafts_ignore_start_times_and_budgets() -> None:
    batch = BatchPolicy("b", start_at=WALL + 60, budget=0.0)
    job = QueuedJob("d", "b", "g", draft=True, batch="b", credits_estimated=50)
    decision = decide(view(job, batches=(batch,)))
    assert decision.submit == ("d",) and decision.over_budget == ()


# ---------------------------------------------------------------------------------------------- budget
def test_budget_verdicts() -> None:
    assert policy.budget_verdict(10, BatchTotals(spent=20, committed=0), 35) is BudgetVerdict.FITS
    assert policy.budget_verdict(10, BatchTotals(spent=20, committed=10), 35) is BudgetVerdict.WAIT
    assert policy.budget_verdict(10, BatchTotals(spent=30, committed=0), 35) is BudgetVerdict.NEVER
    assert policy.budget_verdict(5, BatchTotals(spent=30, committed=0), 35) is BudgetVerdict.FITS, "exactly fits"


def test_each_submission_commits_credits_for_the_jobs_after_it_in_the_same_pass() -> None:
    batch = BatchPolicy("rocks", budget=35)
    queued = [prod(f"r{i}", "rocks", i, credits=10) for i in range(5)]
    decision = decide(view(*queued, limit=10, batches=(batch,)))
    assert decision.submit == ("r0", "r1", "r2"), "a fourth would commit 40 of 35"
    assert decision.over_budget == (), "they may still fit if a task in flight fails and is refunded"


def test_a_job_that_can_never_fit_is_skipped_with_the_numbers() -> None:
    batch = BatchPolicy("rocks", budget=35)
    decision = decide(view(prod("r3", "rocks", 3, credits=10), prod("r4", "rocks", 4, credits=10),
                           limit=10, batches=(batch,), totals={"rocks": BatchTotals(spent=30)}))
    assert decision.submit == ()
    assert [s.job_id for s in decision.over_budget] == ["r3", "r4"]
    skipped = decision.over_budget[0]
    assert (skipped.needed, skipped.left, skipped.budget) == (10, 5, 35)
    assert skipped.message == "skipped: needs ~10 credits, batch 'rocks' has 5 of 35 left"


def test_a_refund_lets_a_waiting_job_go() -> None:
    batch = BatchPolicy("b", budget=20)
    waiting = prod("p2", "b", 2, credits=10)
    busy = decide(view(waiting, limit=10, batches=(batch,), totals={"b": BatchTotals(spent=10, committed=10)}))
    assert busy.submit == () and busy.over_budget == ()
    refunded = decide(view(waiting, limit=10, batches=(batch,), totals={"b": BatchTotals(spent=10)}))
    assert refunded.submit == ("p2",)


def test_a_budget_over_a_full_group_skips_the_job_without_taking_a_slot() -> None:
    batch = BatchPolicy("b", budget=5)
    decision = decide(view(prod("p", "b", credits=10), limit=1, in_flight=1, batches=(batch,)))
    assert [s.job_id for s in decision.over_budget] == ["p"]
    assert decision.slots[("b", "g")].in_flight == 1


def test_batch_totals_sum_spent_and_in_flight_estimates_in_one_pass() -> None:
    totals = policy.batch_totals([
        ("a", 10.0, 10.0, False),  # done: spent
        ("a", 0.0, 10.0, True),    # in flight: committed
        ("a", 0.0, 10.0, False),   # queued or failed: nothing
        ("b", 5.0, 5.0, False),
    ])
    assert totals == {"a": BatchTotals(spent=10, committed=10), "b": BatchTotals(spent=5, committed=0)}


# ---------------------------------------------------------------------------------------------- slots
def test_slots_start_at_the_provider_limit_capped_by_the_configuration() -> None:
    assert policy.new_slots(10) == SlotState(declared=10, believed=10)
    assert policy.new_slots(10, cap=3) == SlotState(declared=3, believed=3)
    assert policy.new_slots(2, cap=8).declared == 2
    assert policy.new_slots(0).declared == 1, "a group always has a slot"


def test_a_concurrency_refusal_shrinks_the_belief_and_probes_grow_it_one_per_retry_after() -> None:
    state = SlotState(declared=5, believed=5, in_flight=3)
    refused = policy.refused(state, concurrency=True, retry_at=NOW + 0.2, retry_after_s=0.2)
    assert (refused.believed, refused.in_flight, refused.not_before) == (2, 2, NOW + 0.2)
    assert policy.released(refused).believed == 2, "a finished task frees a slot, it does not grow the belief"
    assert policy.probe(refused, NOW, draft=True) == refused, "no probe before the Retry-After"
    grown = policy.probe(refused, NOW + 0.2, draft=True)
    assert grown.believed == 3 and grown.probe_at == pytest.approx(NOW + 0.4)
    assert policy.probe(grown, NOW + 0.3, draft=True) == grown, "one extra slot per Retry-After"
    for step in range(2, 10):
        grown = policy.probe(grown, NOW + 0.2 * step + 0.01, draft=True)
    assert grown.believed == 5, "never above the declared limit"


def test_production_probes_only_up_to_what_the_provider_accepted_so_the_draft_slot_stays_real() -> None:
    # A plan of 3 under a declared 10: three creates were accepted, the fourth refused.
    state = SlotState(declared=10, believed=10)
    for running in range(1, 4):
        state = policy.accepted(policy.occupied(state), running)
    state = policy.refused(policy.occupied(state), concurrency=True, retry_at=NOW, retry_after_s=0.2)
    assert (state.believed, state.ceiling, state.in_flight) == (3, 3, 3)
    finished = policy.released(state)
    queue = QueueView(queued=(prod("p0"), prod("p1", index=1)), slots={("b", "g"): finished},
                      batches={"batch": BatchPolicy("batch")}, totals={}, draft_reserved_slots=1)
    decision = decide(queue)
    assert decision.submit == (), "production keeps the third slot free for drafts"
    assert decision.slots[("b", "g")].believed == 3, "and does not probe past what was accepted"
    with_draft = QueueView(queued=(draft("d"), *queue.queued), slots=queue.slots, batches=queue.batches, totals={},
                           draft_reserved_slots=1)
    assert decide(with_draft).submit == ("d",)
    later = policy.dispatch(queue, now_mono=NOW + policy.CEILING_PROBE_S + 1, now_wall=WALL)
    assert later.submit == ("p0",), "past the ceiling production probes, but only once per CEILING_PROBE_S"


def test_a_refusal_with_nothing_in_flight_still_believes_in_one_slot() -> None:
    refused = policy.refused(SlotState(declared=4, believed=4, in_flight=1), concurrency=True, retry_at=NOW)
    assert refused.believed == 1 and refused.in_flight == 0


def test_other_refusals_keep_the_belief_and_only_delay() -> None:
    state = SlotState(declared=5, believed=5, in_flight=3)
    rate_limited = policy.refused(state, concurrency=False, retry_at=NOW + 2)
    assert (rate_limited.believed, rate_limited.in_flight, rate_limited.not_before) == (5, 2, NOW + 2)
    failed = policy.failed_create(state)
    assert (failed.believed, failed.in_flight) == (5, 2)


def test_no_create_goes_before_a_refusals_retry_time() -> None:
    blocked = SlotState(declared=4, believed=2, in_flight=0, not_before=NOW + 0.3)
    other = ("b", "other")
    queue = QueueView(queued=(draft("d"), prod("o", group="other")),
                      slots={("b", "g"): blocked, other: slots(1)}, batches={"batch": BatchPolicy("batch")}, totals={})
    decision = decide(queue)
    assert decision.submit == ("o",), "other groups are not held back"
    assert decision.sleep_s == pytest.approx(0.3)
    later = policy.dispatch(queue, now_mono=NOW + 0.31, now_wall=WALL)
    assert later.submit == ("d", "o")


def test_a_dispatch_respects_a_shrunk_belief() -> None:
    queue = QueueView(queued=tuple(prod(f"p{i}", index=i) for i in range(4)),
                      slots={("b", "g"): SlotState(declared=4, believed=2, in_flight=1, probe_at=NOW + 0.5, ceiling=3,
                                                   slow_probe_at=NOW + 30)},
                      batches={"batch": BatchPolicy("batch")}, totals={}, draft_reserved_slots=0)
    decision = decide(queue)
    assert decision.submit == ("p0",), "no probe is due yet"
    assert decision.sleep_s == pytest.approx(0.5), "the dispatcher wakes when it is"


def test_resends_after_refusals() -> None:
    assert policy.resend_attempt(7, concurrency=True, max_retries=2) == 7, "concurrency refusals never run out"
    assert policy.resend_attempt(0, concurrency=False, max_retries=2) == 1
    assert policy.resend_attempt(1, concurrency=False, max_retries=2) == 2
    assert policy.resend_attempt(2, concurrency=False, max_retries=2) is None


def test_dispatch_does_not_change_what_it_was_given() -> None:
    queue = view(prod("p0"), prod("p1", index=1), limit=4, batches=(BatchPolicy("batch", budget=100),))
    before = dict(queue.slots)
    decide(queue)
    assert queue.slots == before and queue.totals == {}


# ---------------------------------------------------------------------------------------------- eta
def test_latency_starts_from_the_prior_and_follows_observations() -> None:
    model = eta.LatencyModel()
    assert model.expected("remote", "draft") == eta.DEFAULT_LATENCY_S
    model.set_priors("remote", {"draft": 20.0, "production": 60.0})
    assert model.expected("remote", "draft") == 20.0 and not model.known("remote", "draft")
    model.observe("remote", "draft", 10.0)
    assert model.expected("remote", "draft") == 10.0, "the first observation replaces the prior"
    assert model.known("remote", "draft")
    model.observe("remote", "draft", 20.0)
    assert model.expected("remote", "draft") == pytest.approx(15.0), "an even mean while samples are few"
    assert model.expected("remote", "production") == 60.0


def test_the_table_of_priors_wins_over_a_backends_own_figures() -> None:
    model = eta.LatencyModel()
    model.set_priors("tripo", {"draft": 1.0, "other": 5.0})
    assert model.expected("tripo", "draft") == eta.TASK_PRIORS_S[("tripo", "draft")]
    assert model.expected("tripo", "texture") == eta.TASK_PRIORS_S[("tripo", "texture")]
    assert model.expected("tripo", "other") == 5.0


def test_the_mean_follows_recent_samples_once_settled() -> None:
    model = eta.LatencyModel()
    for _ in range(eta.SETTLED_SAMPLES):
        model.observe("b", "draft", 10.0)
    model.observe("b", "draft", 110.0)
    assert model.expected("b", "draft") == pytest.approx(20.0), "weight 0.1 after ten samples"


def test_queued_jobs_wait_in_waves() -> None:
    two = SlotState(declared=2, believed=2, in_flight=0)
    assert eta.queued_eta(10.0, ahead=0, slots=two) == 10.0
    assert eta.queued_eta(10.0, ahead=1, slots=two) == 10.0, "same wave as the job ahead"
    assert eta.queued_eta(10.0, ahead=2, slots=two) == 20.0
    busy = SlotState(declared=2, believed=2, in_flight=2)
    assert eta.queued_eta(10.0, ahead=0, slots=busy) == 20.0, "waits for the tasks in flight"
    shrunk = SlotState(declared=4, believed=1, in_flight=0)
    assert eta.queued_eta(10.0, ahead=2, slots=shrunk) == 30.0


def test_ahead_counts_only_the_same_backend_in_dispatch_order() -> None:
    ordered = [draft("d", backend="x"), prod("p0", backend="x"), prod("q0", backend="y"), prod("p1", backend="x")]
    assert eta.ahead_on_backend(ordered) == {"d": 0, "p0": 1, "q0": 0, "p1": 2}


def test_job_eta_by_state() -> None:
    one = SlotState(declared=1, believed=1)
    assert eta.job_eta(JobState.FINISHED, 10.0, elapsed_s=0, ahead=0, slots=None) == 0.0
    assert eta.job_eta(JobState.READY, None, elapsed_s=0, ahead=0, slots=None) == 0.0
    assert eta.job_eta(JobState.QUEUED, None, elapsed_s=0, ahead=0, slots=one) is None, "no such backend"
    assert eta.job_eta(JobState.QUEUED, 10.0, elapsed_s=0, ahead=3, slots=one) == 40.0
    assert eta.job_eta(JobState.RUNNING, 10.0, elapsed_s=4.0, ahead=0, slots=None) == 6.0
    assert eta.job_eta(JobState.DOWNLOADING, 10.0, elapsed_s=15.0, ahead=0, slots=None) == 0.0, "never negative"


def test_a_production_job_whose_batch_is_not_declared_is_held_never_sent() -> None:
    queue = QueueView(queued=(prod("lost", "forgotten"), prod("ok", "known"), draft("d")),
                      slots={("b", "g"): slots(4)}, batches={"known": BatchPolicy("known")}, totals={})
    decision = decide(queue)
    assert decision.submit == ("d", "ok") and decision.held == ("lost",)
    assert decision.slots[("b", "g")].in_flight == 2, "a held job takes no slot"
