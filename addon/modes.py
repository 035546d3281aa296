"""What Draft and Production mean per backend and target, as backend parameters. The request builder
(`addon/requests.py`) reads these; it is the only code that turns a request into JobSpecs."""

from __future__ import annotations

from .jobs import Mode

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


PREPARED_IMAGES = "prepared_images"
"""Spec parameter: RGBA arrays Kiln prepared from the artist's images (see addon/blender/images.py)."""
VIEWS = "views"
