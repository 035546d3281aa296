"""How long until a result is ready: a latency model per (backend, mode), the predicted finish of each
task in flight, and the arithmetic of waves.

Latencies start from a prior (`TASK_PRIORS_S`, else the backend's `Capabilities.typical_latency_s`) and
move to an exponentially weighted mean of what Kiln observed. A task in flight is predicted from what
its provider says about it (`FinishPredictor`): the time left when the provider gives it, its progress
while that moves, otherwise the observed mean (or the prior). The same prediction decides when a
polled provider is next asked about the task and what the panel shows as its ETA. A queued job waits
for the jobs ahead of it on the same backend, in waves of as many tasks as the provider lets run at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..jobs import JobState
from .policy import QueuedJob, SlotState

DEFAULT_LATENCY_S = 60.0
"""For a backend that declared no prior for this mode and was never observed."""

TASK_PRIORS_S: dict[tuple[str, str], float] = {
    # Tripo v3 generation, textured (Production): ~80 s for text, image and multiview, the progress
    # estimate in ComfyUI's Tripo nodes (nodes_tripo.py; one measured v2.5 run: 61 s).
    ("tripo", "production"): 80.0,
    # Tripo untextured with a low face limit (Draft): no published figure. Assumed half the textured
    # time; the first progress reading (at most `PROBE_S` in) replaces it either way.
    ("tripo", "draft"): 40.0,
    # Tripo's texture step on an existing model (/v3/models/texture): no published figure; assumed like
    # the other post-processing steps ComfyUI lists (convert ~30 s, retarget ~30 s).
    ("tripo", "texture"): 30.0,
    # Meshy: no published task times. Assumed from its docs' guidance (a preview in about a minute, a
    # refine in a few): a meshy-5 Draft preview 45 s, the newest model's preview 60 s, a refine 120 s,
    # image-to-3d untextured / textured 60 / 120 s, remesh and retexture 60 s. Pushed status replaces
    # them for the finish itself; they only pace polling past the stream cap and the panel's ETA.
    ("meshy", "draft"): 45.0,
    ("meshy", "preview"): 60.0,
    ("meshy", "refine"): 120.0,
    ("meshy", "production"): 120.0,
    ("meshy", "remesh"): 60.0,
    ("meshy", "retexture"): 60.0,
}
"""Typical task time per (backend, step) before Kiln has seen one finish: the one table of priors, with
where each figure comes from. Steps are the modes ("draft", "production") and chained steps ("texture")."""

GRANULARITY_S = 0.25
"""A task is looked at this often around its predicted finish, so a result is noticed within this much
of the moment it is done."""
PROBE_S = 1.0
"""While nothing but a prior is known about a task (no progress reading, nothing observed), it is looked
at this often: fixed, never growing, since a reading of its progress is what makes the prediction."""
REFRESH_S = 4.0
"""A task predicted to end further away than this is looked at again halfway there (its progress
corrects the prediction); nearer, it is looked at when it should end."""
OVERDUE_FRACTION = 0.05
OVERDUE_CAP_S = 2.0
"""A task past its predicted finish with nothing moving is looked at every `GRANULARITY_S`, spaced out to
this fraction of its age (at most `OVERDUE_CAP_S`) so a stalled task cannot cost a request per 250 ms."""
SETTLED_SAMPLES = 10
"""After this many samples the mean stops averaging evenly and follows recent tasks (weight 0.1)."""


def ewma(previous: float | None, sample: float, count: int) -> float:
    """The mean after one more sample, `count` samples having been seen before: an even average at
    first (so one early outlier does not stick), then a moving mean that follows the provider's load."""
    if previous is None:
        return sample
    weight = 1.0 / (count + 1) if count < SETTLED_SAMPLES else 1.0 / SETTLED_SAMPLES
    return (1 - weight) * previous + weight * sample


@dataclass
class LatencyModel:
    """Seconds from create to a downloaded result, per (backend, mode). Not thread-safe: the
    scheduler uses it under its lock."""

    priors: dict[tuple[str, str], float] = field(default_factory=dict)
    observed: dict[tuple[str, str], float] = field(default_factory=dict)
    samples: dict[tuple[str, str], int] = field(default_factory=dict)

    def set_priors(self, backend: str, typical_latency_s: Mapping[str, float]) -> None:
        """The backend's own figures, overridden by `TASK_PRIORS_S` where that table has one."""
        for mode, seconds in typical_latency_s.items():
            self.priors[(backend, mode)] = seconds
        for (name, mode), seconds in TASK_PRIORS_S.items():
            if name == backend:
                self.priors[(name, mode)] = seconds

    def known(self, backend: str, mode: str) -> bool:
        """Whether the figure is an observation rather than a prior."""
        return (backend, mode) in self.observed

    def expected(self, backend: str, mode: str) -> float:
        key = (backend, mode)
        return self.observed.get(key, self.priors.get(key, DEFAULT_LATENCY_S))

    def observe(self, backend: str, mode: str, seconds: float) -> None:
        key = (backend, mode)
        count = self.samples.get(key, 0)
        self.observed[key] = ewma(self.observed.get(key), seconds, count)
        self.samples[key] = count + 1


def active_eta(expected_s: float, elapsed_s: float) -> float:
    """A job already sent: what is left of the expected latency (never negative)."""
    return max(0.0, expected_s - elapsed_s)


def progress_eta(progress: float, elapsed_s: float) -> float | None:
    """What the progress implies is left, extrapolating its rate so far; None without progress."""
    if not 0.0 < progress < 1.0 or elapsed_s <= 0:
        return None if progress < 1.0 else 0.0
    return elapsed_s * (1.0 - progress) / progress


def running_eta(expected_s: float, elapsed_s: float, progress: float, predicted_left_s: float | None = None
                ) -> float:
    """A job in flight, for the panel: the predicted time left (the watcher's, else the expected latency
    less what has passed), never above what its progress implies, so the figure falls as progress grows."""
    left = predicted_left_s if predicted_left_s is not None else active_eta(expected_s, elapsed_s)
    implied = progress_eta(progress, elapsed_s)
    return max(0.0, min(left, implied) if implied is not None else left)


@dataclass
class TaskClock:
    """What is known about one task in flight, for predicting its finish (monotonic seconds)."""

    started: float
    step: str
    """The latency key: the job's mode, or a chained step such as "texture"."""
    progress: float = 0.0
    progress_at: float = 0.0
    """When the progress last moved (0: it never has)."""
    moving: bool = False
    """The last reading moved the progress: it may be extrapolated."""
    left_s: float | None = None
    """The provider's own time left (Tripo's `running_left_time`), at `looked`."""
    looked: float = 0.0
    next_look: float = 0.0


def predicted_finish(clock: TaskClock, expected_s: float, now: float) -> float:
    """When the task should be done: the provider's time left when it gives one, else its progress
    extrapolated while the progress moves, else its start plus the expected task time (never before now
    when that has already passed: it is simply overdue)."""
    if clock.left_s is not None and clock.left_s >= 0:
        return clock.looked + clock.left_s
    if clock.moving and 0.0 < clock.progress < 1.0 and clock.progress_at > clock.started:
        return clock.started + (clock.progress_at - clock.started) / clock.progress
    return clock.started + expected_s


def next_look(clock: TaskClock, expected_s: float, now: float, *, informed: bool) -> float:
    """When this task should next be asked about. `informed`: the expected time is an observation, not
    a prior. Around the predicted finish every `GRANULARITY_S`; far from it, halfway there; with nothing
    but a prior, every `PROBE_S` until its progress says more. Never an interval that grows blindly."""
    finish = predicted_finish(clock, expected_s, now)
    left = finish - now
    knows = informed or clock.moving or (clock.left_s is not None and clock.left_s >= 0)
    if left <= GRANULARITY_S:
        overdue = max(0.0, -left)
        if overdue < GRANULARITY_S:
            return now + max(0.0, left) if left > 0 else now + GRANULARITY_S
        return now + max(GRANULARITY_S, min(OVERDUE_CAP_S, OVERDUE_FRACTION * (now - clock.started)))
    if not knows:
        return now + min(left, PROBE_S)
    if left > REFRESH_S:
        return now + left / 2
    return finish


class FinishPredictor:
    """The predicted finish of every task a watcher follows on one backend, and when to look next.
    Not thread-safe: one watcher thread owns it (the panel reads `left_s` under the engine's lock)."""

    def __init__(self, backend: str, latency: LatencyModel) -> None:
        self.backend = backend
        self.latency = latency
        """Observed task times (create → the provider reports it done), per step; shares its priors."""
        self.clocks: dict[str, TaskClock] = {}

    def track(self, task_id: str, step: str, started: float) -> TaskClock:
        clock = self.clocks.get(task_id)
        if clock is None or clock.step != step:
            clock = self.clocks[task_id] = TaskClock(started=started, step=step, next_look=started)
            clock.next_look = self._next(clock, started)
        return clock

    def forget_others(self, task_ids: Iterable[str]) -> None:
        keep = set(task_ids)
        for task_id in [t for t in self.clocks if t not in keep]:
            del self.clocks[task_id]

    def expected(self, step: str) -> float:
        return self.latency.expected(self.backend, step)

    def due(self) -> tuple[float, str] | None:
        """The earliest next look, and the task it is for."""
        if not self.clocks:
            return None
        task_id, clock = min(self.clocks.items(), key=lambda item: item[1].next_look)
        return clock.next_look, task_id

    def saw(self, task_id: str, now: float, *, progress: float, left_s: float | None = None,
            done: bool = False, duration_s: float | None = None) -> None:
        """One reading of the task. A finished task's time feeds the observed mean of its step: the
        provider's own (`duration_s`) when it gives one, else until it was seen done, which includes how
        late it was seen (so, left alone, the looks would drift later and later)."""
        clock = self.clocks.get(task_id)
        if clock is None:
            return
        if done:
            seen = now - clock.started
            self.latency.observe(self.backend, clock.step, duration_s if duration_s is not None
                                 and 0 < duration_s <= seen + 1.0 else seen)
            del self.clocks[task_id]
            return
        clock.moving = progress > clock.progress + 1e-9 and progress > 0
        if clock.moving:
            clock.progress, clock.progress_at = progress, now
        clock.left_s = left_s if left_s is not None and math.isfinite(left_s) and left_s >= 0 else None
        clock.looked = now
        clock.next_look = self._next(clock, now)

    def unanswered(self, task_id: str, now: float) -> None:
        """Asked, but nothing usable came back about it: look again as its prediction says."""
        clock = self.clocks.get(task_id)
        if clock is not None:
            clock.moving = False
            clock.looked = now
            clock.next_look = self._next(clock, now)

    def left_s(self, task_id: str, now: float) -> float | None:
        """Predicted seconds until the task is done (the panel's ETA for a job in flight)."""
        clock = self.clocks.get(task_id)
        if clock is None:
            return None
        return max(0.0, predicted_finish(clock, self.expected(clock.step), now) - now)

    def _next(self, clock: TaskClock, now: float) -> float:
        return next_look(clock, self.expected(clock.step), now,
                         informed=self.latency.known(self.backend, clock.step))


def queued_eta(expected_s: float, ahead: int, slots: SlotState) -> float:
    """A queued job: the waves before its own, each as long as one task, given the tasks in flight
    and the queued jobs ahead of it on the same backend."""
    waves = (ahead + slots.in_flight) // max(1, slots.believed)
    return (waves + 1) * expected_s


def ahead_on_backend(ordered: Iterable[QueuedJob]) -> dict[str, int]:
    """For each queued job (in dispatch order): how many queued jobs of its backend go before it."""
    seen: dict[str, int] = {}
    ahead: dict[str, int] = {}
    for job in ordered:
        ahead[job.job_id] = seen.get(job.backend, 0)
        seen[job.backend] = ahead[job.job_id] + 1
    return ahead


def job_eta(state: JobState, expected_s: float | None, *, elapsed_s: float, ahead: int,
            slots: SlotState | None) -> float | None:
    """Seconds until the job's result is ready; None when it cannot be known (no such backend)."""
    if state.is_terminal or state in (JobState.READY, JobState.IMPORTED):
        return 0.0
    if expected_s is None:
        return None
    if state is JobState.QUEUED:
        return queued_eta(expected_s, ahead, slots) if slots is not None else expected_s
    return active_eta(expected_s, elapsed_s)
