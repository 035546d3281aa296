"""The scheduling policy: pure functions over small frozen records, so every rule is tested without threads.

The engine (`engine.py`) gathers plain facts under its lock (the queued jobs, the batches' limits and
credit totals, the slots it believes each provider has) and asks `dispatch` what to do now: which jobs
to submit, which to fail as over budget, and how long to sleep. It applies the answer; nothing here
knows about threads, locks, backends or the journal.

The rules:
- order: drafts first (oldest first), then production by batch priority, batch age and index;
- lanes: production leaves `draft_reserved_slots` of each (backend, group) free, so a draft never
  waits behind a batch; pausing stops production only;
- slots: a provider's declared concurrency (capped by the plan's and by `--jobs`) is what we start
  believing; a concurrency refusal shrinks the belief to what is actually in flight, then it grows back
  by probing: one more slot per Retry-After while there is work for it (additive increase). Drafts probe
  up to the declared limit; production only up to the most the provider has accepted at once (and past
  that once per `CEILING_PROBE_S`), so on a plan smaller than declared the slot kept for drafts is real;
- budget: a job is sent only while the batch's spent plus committed credits stay within the budget;
  one that could never fit (spent alone leaves too little) is failed as over budget;
- credit reserve: production never spends the account below the reserve kept for drafts (the preference
  "Reserve for drafts", `[batch] reserve`): a job goes only while the balance, less what Kiln has in
  flight or charged since it was read, less the reserve, still pays for it. One that could never fit
  (nothing in flight, the balance fresh) is failed like an over-budget job; drafts may spend the reserve;
- start time: nothing of a batch goes before its `start_at`;
- unknown batch: a production job whose batch is not declared (its settings were not recovered) is
  never sent, since its budget, start time and finishing are unknown; it waits, and is reported.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

SlotKey = tuple[str, str]
"""(backend name, the provider's concurrency group)."""

DEFAULT_PRIORITY = 1
"""`Priority.NORMAL`, for jobs whose batch was never declared."""
IDLE_WAKE_S = 1.0
"""The longest the dispatcher sleeps when nothing is due sooner (any change wakes it at once)."""
EPSILON = 1e-9
MIN_PROBE_S = 0.1
"""The shortest spacing of probes after a concurrency refusal that gave no usable Retry-After."""
CEILING_PROBE_S = 30.0
"""Production probes past the most the provider ever accepted at once no more often than this: each such
probe may take the slot kept for drafts on a plan smaller than declared, until a task frees it."""


@dataclass(frozen=True)
class QueuedJob:
    """The facts about one queued job that the policy decides on."""

    job_id: str
    backend: str
    group: str
    draft: bool
    batch: str = ""
    index: int = 0
    created_at: float = 0.0
    credits_estimated: float = 0.0

    @property
    def slot_key(self) -> SlotKey:
        return (self.backend, self.group)


@dataclass(frozen=True)
class BatchPolicy:
    """What the scheduler reads of a batch: only its limits, never how it is finished."""

    name: str
    priority: int = DEFAULT_PRIORITY
    """Lower goes first (`Priority.HIGH` is 0)."""
    order: int = 0
    """When it was added, among batches: an older batch of equal priority goes first."""
    start_at: float | None = None
    """Wall-clock (epoch) seconds before which nothing of it is sent."""
    budget: float | None = None
    """Credits it may commit; None: no limit."""


@dataclass(frozen=True)
class BatchTotals:
    """A batch's credits: spent by results so far, and estimated for tasks in flight (not yet charged)."""

    spent: float = 0.0
    committed: float = 0.0


NO_CREDITS = BatchTotals()


@dataclass(frozen=True)
class SlotState:
    """What we believe about one (backend, group) of a provider's concurrency."""

    declared: int
    """The provider's documented limit, capped by the configuration."""
    believed: int
    """What the provider actually allows, as far as refusals taught us (never above `declared`)."""
    in_flight: int = 0
    not_before: float = 0.0
    """Monotonic time before which no create is sent (after a concurrency refusal)."""
    probe_at: float = 0.0
    """Monotonic time from which the belief may grow by one slot (after a concurrency refusal)."""
    probe_every: float = MIN_PROBE_S
    """Spacing of probes: the provider's last Retry-After."""
    ceiling: int = 0
    """The most tasks the provider accepted in flight at once (a create answered with a task id)."""
    slow_probe_at: float = 0.0
    """Monotonic time from which production may probe past `ceiling` again."""


@dataclass(frozen=True)
class CreditPool:
    """One backend's account as production may spend it. `balance` None: not read yet (production waits
    while the engine asks); a backend without a balance has no pool at all."""

    balance: float | None
    reserve: float = 0.0
    spent_since_read: float = 0.0
    """Charged since the balance was read (a refresh is on its way)."""
    committed: float = 0.0
    """Estimates of this backend's tasks in flight (any lane), not charged yet."""

    @property
    def available(self) -> float:
        """What production may still commit: the balance as it is now, less the reserve, less work in flight.
        (A provider that holds credits at create makes this cautious until the next read, never generous.)"""
        if self.balance is None:
            return 0.0
        return self.balance - self.spent_since_read - self.reserve - self.committed


@dataclass(frozen=True)
class QueueView:
    """Everything `dispatch` needs, gathered by the engine at one moment."""

    queued: tuple[QueuedJob, ...]
    slots: Mapping[SlotKey, SlotState]
    batches: Mapping[str, BatchPolicy]
    totals: Mapping[str, BatchTotals]
    production_paused: bool = False
    draft_reserved_slots: int = 1
    credits: Mapping[str, CreditPool] = field(default_factory=dict)
    """Backend name → its account, for backends that have a balance."""


@dataclass(frozen=True)
class OverBudget:
    """A job that can never fit its batch's budget; the engine fails it with `message`."""

    job_id: str
    batch: str
    needed: float
    left: float
    budget: float
    reserve: float | None = None
    """Set when the account (less the reserve for drafts), not the batch's budget, is what is short."""

    @property
    def message(self) -> str:
        if self.reserve is not None:
            kept = f" ({self.reserve:g} reserved for drafts)" if self.reserve else ""
            return (f"skipped: needs ~{self.needed:g} credits, the account has {self.left:g} available for "
                    f"production{kept}")
        return (f"skipped: needs ~{self.needed:g} credits, batch '{self.batch}' has "
                f"{self.left:g} of {self.budget:g} left")


@dataclass(frozen=True)
class Decision:
    submit: tuple[str, ...]
    """Job ids to submit now, in this order (their slots are already counted in `slots`)."""
    over_budget: tuple[OverBudget, ...]
    sleep_s: float
    """How long the dispatcher may sleep if nothing wakes it sooner."""
    slots: Mapping[SlotKey, SlotState]
    """Every slot state after the submissions."""
    held: tuple[str, ...] = ()
    """Production jobs whose batch is not declared: they wait until it is."""


class BudgetVerdict(enum.Enum):
    FITS = "fits"
    WAIT = "wait"
    """Fits only if a task in flight fails (providers refund failures): keep it queued."""
    NEVER = "never"


# ---------------------------------------------------------------------------------------------- order
def order_key(job: QueuedJob, batches: Mapping[str, BatchPolicy]) -> tuple[int, int, int, int, float]:
    """Drafts first (oldest first), then production by batch priority, batch age and index."""
    if job.draft:
        return (0, 0, 0, 0, job.created_at)
    batch = batches.get(job.batch)
    priority = batch.priority if batch else DEFAULT_PRIORITY
    order = batch.order if batch else 0
    return (1, priority, order, job.index, job.created_at)


def in_order(queued: Iterable[QueuedJob], batches: Mapping[str, BatchPolicy]) -> list[QueuedJob]:
    return sorted(queued, key=lambda job: order_key(job, batches))


# ---------------------------------------------------------------------------------------------- slots
def new_slots(provider_limit: int, cap: int | None = None) -> SlotState:
    """The slots of a group we have not used yet: believe the provider's limit (at most `cap`)."""
    declared = max(1, min(provider_limit, cap)) if cap else max(1, provider_limit)
    return SlotState(declared=declared, believed=declared)


def occupied(slots: SlotState) -> SlotState:
    """A create was sent (or a running task reattached after a restart)."""
    return replace(slots, in_flight=slots.in_flight + 1)


def accepted(slots: SlotState, running: int) -> SlotState:
    """A create came back with a task id: the provider holds `running` of ours at once (tasks it
    accepted; creates still waiting for their answer may yet be refused, so they do not count)."""
    return replace(slots, ceiling=max(slots.ceiling, running))


def refused(slots: SlotState, *, concurrency: bool, retry_at: float, retry_after_s: float | None = None
            ) -> SlotState:
    """A create came back with nothing created: the slot is free again and no create goes before
    `retry_at`. A concurrency refusal also means the provider allows no more than what is left in
    flight, so the belief shrinks to that (never below one), and grows back by one probe per
    Retry-After from `retry_at` on (`probe`)."""
    in_flight = max(0, slots.in_flight - 1)
    if not concurrency:
        return replace(slots, in_flight=in_flight, not_before=retry_at)
    return replace(slots, in_flight=in_flight, believed=max(1, min(slots.believed, in_flight)), not_before=retry_at,
                   probe_at=retry_at, probe_every=max(MIN_PROBE_S, retry_after_s or 0.0),
                   slow_probe_at=retry_at + CEILING_PROBE_S)


def probe(slots: SlotState, now: float, *, draft: bool) -> SlotState:
    """Work is waiting for a slot the belief does not give: believe in one more, if a probe is due (one
    per Retry-After since the refusal). Unchanged when none is due; see `next_probe`."""
    at = next_probe(slots, draft=draft)
    if at is None or now < at:
        return slots
    grown = replace(slots, believed=slots.believed + 1, probe_at=now + slots.probe_every)
    if not draft and slots.believed >= slots.ceiling:
        grown = replace(grown, slow_probe_at=now + CEILING_PROBE_S)
    return grown


def next_probe(slots: SlotState, *, draft: bool) -> float | None:
    """When the belief may next grow for this lane, or None: never past the declared limit."""
    if slots.believed >= slots.declared:
        return None
    if not draft and slots.believed >= slots.ceiling:
        return max(slots.probe_at, slots.slow_probe_at)
    return slots.probe_at


def failed_create(slots: SlotState) -> SlotState:
    """A create failed for good (or crashed): its slot is free, the belief stands."""
    return replace(slots, in_flight=max(0, slots.in_flight - 1))


def released(slots: SlotState) -> SlotState:
    """The provider finished a task, so a slot is free (the belief stands: probes grow it)."""
    return replace(slots, in_flight=max(0, slots.in_flight - 1))


def resend_attempt(resent: int, *, concurrency: bool, max_retries: int) -> int | None:
    """A create came back refused with nothing created, after `resent` earlier resends: the count to
    keep (it also sets the backoff), or None to give up. A concurrency refusal means "wait for a
    slot" and never uses up attempts; a rate limit or a refused connection does."""
    if concurrency:
        return resent
    return resent + 1 if resent < max_retries else None


def allowance(slots: SlotState, *, draft: bool, draft_reserved_slots: int) -> int:
    """How many tasks of this lane may be in flight in this group. Drafts may use every slot;
    production leaves the reserve free, but never the group's only slot."""
    if draft:
        return slots.believed
    reserve = max(0, min(draft_reserved_slots, slots.declared - 1))
    return slots.believed - reserve


# ---------------------------------------------------------------------------------------------- budget
def budget_verdict(needed: float, totals: BatchTotals, budget: float) -> BudgetVerdict:
    if totals.spent + needed > budget + EPSILON:
        return BudgetVerdict.NEVER
    if totals.spent + totals.committed + needed > budget + EPSILON:
        return BudgetVerdict.WAIT
    return BudgetVerdict.FITS


def reserve_verdict(needed: float, pool: CreditPool) -> BudgetVerdict:
    """Whether production may commit `needed` from this account now. NEVER only when the answer cannot
    change without the artist (nothing in flight to refund, no charge the balance does not show yet)."""
    if pool.balance is None:
        return BudgetVerdict.WAIT
    if needed <= pool.available + EPSILON:
        return BudgetVerdict.FITS
    if pool.committed > EPSILON or pool.spent_since_read > EPSILON:
        return BudgetVerdict.WAIT
    return BudgetVerdict.NEVER


def batch_totals(members: Iterable[tuple[str, float, float, bool]]) -> dict[str, BatchTotals]:
    """Running totals per batch from (batch, credits spent, credits estimated, in flight), in one pass."""
    spent: dict[str, float] = {}
    committed: dict[str, float] = {}
    for batch, job_spent, estimated, in_flight in members:
        spent[batch] = spent.get(batch, 0.0) + job_spent
        if in_flight:
            committed[batch] = committed.get(batch, 0.0) + estimated
    return {name: BatchTotals(spent[name], committed.get(name, 0.0)) for name in spent}


# ---------------------------------------------------------------------------------------------- dispatch
def dispatch(view: QueueView, *, now_mono: float, now_wall: float) -> Decision:
    """Decide what may go now. Each submission counts against its slots and its batch's committed
    credits at once, so later jobs in the same pass see it."""
    slots = dict(view.slots)
    totals = dict(view.totals)
    credits = dict(view.credits)
    submit: list[str] = []
    over: list[OverBudget] = []
    held: list[str] = []
    sleep_s = IDLE_WAKE_S
    for job in in_order(view.queued, view.batches):
        batch = view.batches.get(job.batch)
        if not job.draft and batch is None:
            held.append(job.job_id)
            continue
        group = slots[job.slot_key]
        if now_mono < group.not_before:
            sleep_s = min(sleep_s, group.not_before - now_mono)
            continue
        if batch is not None and not job.draft:
            if view.production_paused:
                continue
            if batch.start_at and now_wall < batch.start_at:
                sleep_s = min(sleep_s, batch.start_at - now_wall)
                continue
            if batch.budget is not None:
                current = totals.get(job.batch, NO_CREDITS)
                verdict = budget_verdict(job.credits_estimated, current, batch.budget)
                if verdict is BudgetVerdict.NEVER:
                    over.append(OverBudget(job.job_id, batch.name, job.credits_estimated,
                                           max(0.0, batch.budget - current.spent), batch.budget))
                    continue
                if verdict is BudgetVerdict.WAIT:
                    continue
            pool = credits.get(job.backend)
            if pool is not None:
                verdict = reserve_verdict(job.credits_estimated, pool)
                if verdict is BudgetVerdict.NEVER:
                    over.append(OverBudget(job.job_id, job.batch, job.credits_estimated,
                                           max(0.0, pool.available), batch.budget or 0.0, reserve=pool.reserve))
                    continue
                if verdict is BudgetVerdict.WAIT:
                    continue
        if group.in_flight >= allowance(group, draft=job.draft, draft_reserved_slots=view.draft_reserved_slots):
            group = slots[job.slot_key] = probe(group, now_mono, draft=job.draft)
            if group.in_flight >= allowance(group, draft=job.draft, draft_reserved_slots=view.draft_reserved_slots):
                at = next_probe(group, draft=job.draft)
                if at is not None:
                    sleep_s = min(sleep_s, max(EPSILON, at - now_mono))
                continue
        slots[job.slot_key] = occupied(group)
        current = totals.get(job.batch, NO_CREDITS)
        totals[job.batch] = replace(current, committed=current.committed + job.credits_estimated)
        pool = credits.get(job.backend)
        if pool is not None:
            credits[job.backend] = replace(pool, committed=pool.committed + job.credits_estimated)
        submit.append(job.job_id)
    return Decision(tuple(submit), tuple(over), max(0.0, sleep_s), slots, tuple(held))
