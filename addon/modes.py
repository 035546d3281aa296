"""Draft and Production as concrete requests: one place turns a request into JobSpecs with the
parameters each mode means for each backend."""

from __future__ import annotations

import random

from .jobs import JobKind, JobSpec, Mode

# Per-backend parameters each mode implies. Cloud backends add their entries as they land.
MODE_PARAMS: dict[str, dict[Mode, dict[str, object]]] = {
    "local": {
        Mode.DRAFT: {"detail": "coarse"},
        Mode.PRODUCTION: {"detail": "fine"},
    },
}


def new_seed() -> int:
    return random.randrange(1, 2**31 - 1)


def text_specs(
    prompt: str,
    *,
    mode: Mode,
    backend: str,
    options: int = 1,
    seed: int = 0,
    batch: str = "",
    index: int = 0,
) -> list[JobSpec]:
    """One spec per option. Options share the prompt and differ by seed, so each is reproducible."""
    base_seed = seed or new_seed()
    params = JobSpec.make_params(MODE_PARAMS.get(backend, {}).get(mode, {}))
    return [
        JobSpec(
            kind=JobKind.TEXT,
            backend=backend,
            mode=mode,
            prompt=prompt,
            params=params,
            batch=batch,
            index=index,
            seed=base_seed + option,
            option=option,
        )
        for option in range(options)
    ]
