"""How long until a result is ready: a latency model per (backend, mode) and the arithmetic of waves.

Latencies start from the backend's own prior (`Capabilities.typical_latency_s`) and move to an
exponentially weighted mean of what Kiln observed (create → downloaded). A queued job waits for the
jobs ahead of it on the same backend, in waves of as many tasks as the provider lets run at once.
The panel, the batch progress and `Scheduler.eta` all read the figures from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..jobs import JobState
from .policy import QueuedJob, SlotState

DEFAULT_LATENCY_S = 60.0
"""For a backend that declared no prior for this mode and was never observed."""
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
        for mode, seconds in typical_latency_s.items():
            self.priors[(backend, mode)] = seconds

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
