"""Draft and Production as concrete requests: one place turns a request into JobSpecs with the
parameters each mode means for each backend."""

from __future__ import annotations

import random

from .jobs import JobKind, JobSpec, Mode
from .naming import slug

# Per-backend parameters each mode implies. Cloud backends add their entries as they land.
MODE_PARAMS: dict[str, dict[Mode, dict[str, object]]] = {
    "local": {
        Mode.DRAFT: {"detail": "coarse"},
        Mode.PRODUCTION: {"detail": "fine"},
    },
}


def mode_params(backend: str, mode: Mode, extra: dict[str, object] | None = None) -> dict[str, object]:
    """What `mode` means for `backend`, plus any extra parameters (a target's face budget …)."""
    return {**MODE_PARAMS.get(backend, {}).get(mode, {}), **(extra or {})}


def target_params(mode: Mode, target: str, face_budget: int = 0) -> dict[str, object]:
    """What the Production target asks of a generator: a game asset has a face budget; a film asset
    keeps detail (detailed texture and geometry where the provider offers them). Drafts ask nothing."""
    if mode is not Mode.PRODUCTION:
        return {}
    params: dict[str, object] = {"target": target.lower()}
    if target.lower() == "game" and face_budget:
        params["face_limit"] = int(face_budget)
    return params


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
    negative_prompt: str = "",
    extra: dict[str, object] | None = None,
) -> list[JobSpec]:
    """One spec per option. Options share the prompt and differ by seed, so each is reproducible."""
    base_seed = seed or new_seed()
    params = JobSpec.make_params(mode_params(backend, mode, extra))
    return [
        JobSpec(
            kind=JobKind.TEXT,
            backend=backend,
            mode=mode,
            prompt=prompt,
            negative_prompt=negative_prompt,
            params=params,
            batch=batch,
            index=index,
            seed=base_seed + option,
            option=option,
        )
        for option in range(options)
    ]


PREPARED_IMAGES = "prepared_images"
"""Spec parameter: RGBA arrays Kiln prepared from the artist's images (see addon/blender/images.py)."""
VIEWS = "views"


def image_spec(
    source: str,
    prepared: str,
    *,
    mode: Mode,
    backend: str,
    seed: int = 0,
    batch: str = "",
    index: int = 0,
    option: int = 0,
    extra: dict[str, object] | None = None,
) -> JobSpec:
    """One image → one job. The original path is what cloud backends upload; the prepared array is
    what the local engine reads."""
    params = mode_params(backend, mode, extra)
    params[PREPARED_IMAGES] = (prepared,)
    return JobSpec(kind=JobKind.IMAGE, backend=backend, mode=mode, image_paths=(source,),
                   params=JobSpec.make_params(params), batch=batch, index=index, seed=seed or new_seed(),
                   option=option)


def multiview_spec(
    views: dict[str, tuple[str, str]],
    *,
    mode: Mode,
    backend: str,
    seed: int = 0,
    batch: str = "",
    index: int = 0,
    extra: dict[str, object] | None = None,
) -> JobSpec:
    """Views (front, left, back, right) → one job; `views` maps view → (source, prepared)."""
    if "front" not in views or len(views) < 2:
        raise ValueError("multiview needs a front view and at least one more")
    order = [v for v in ("front", "left", "back", "right") if v in views]
    params = mode_params(backend, mode, extra)
    params[PREPARED_IMAGES] = tuple(views[v][1] for v in order)
    params[VIEWS] = tuple(order)
    return JobSpec(kind=JobKind.MULTIVIEW, backend=backend, mode=mode,
                   image_paths=tuple(views[v][0] for v in order), params=JobSpec.make_params(params),
                   batch=batch, index=index, seed=seed or new_seed())


def parts_specs(
    prefix: str,
    parts: list[str] | tuple[str, ...],
    *,
    mode: Mode,
    backend: str,
    seed: int,
    batch: str,
    index: int = 0,
) -> list[JobSpec]:
    """A segmented asset: one text job per part (prefixed by the asset's own prompt, if any). The
    importer assembles them under one parent empty, in part order."""
    params = mode_params(backend, mode)
    return [
        JobSpec(kind=JobKind.TEXT, backend=backend, mode=mode, prompt=f"{prefix} {part}".strip(), batch=batch,
                index=index, seed=seed + number,
                params=JobSpec.make_params({**params, "part_name": slug(part, 24), "part_index": number}))
        for number, part in enumerate(parts)
    ]
