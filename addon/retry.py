"""Backoff for retried reads: capped, jittered, and honouring the server's Retry-After.

One policy for every backend, so "how long do we wait" lives in one place.
"""

from __future__ import annotations

import random

# Servers sometimes ask for long waits; past this we would rather retry and be told again.
RETRY_AFTER_CAP_S = 60.0


def backoff_delay(
    attempt: int,
    *,
    base_s: float = 0.5,
    cap_s: float = 10.0,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    With Retry-After, wait at least that long (capped), plus up to 10 % jitter so many clients told the
    same value do not return in lockstep. Without it, "full jitter" exponential backoff.
    """
    rand: float = (rng or random).random()
    if retry_after_s is not None and retry_after_s >= 0:
        wait = min(retry_after_s, RETRY_AFTER_CAP_S)
        return wait + wait * 0.1 * rand
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 30))
    return ceiling * rand
