"""What Draft and Production mean per backend and target, as backend parameters. The request builder
(`addon/requests.py`) reads these; it is the only code that turns a request into JobSpecs."""

from __future__ import annotations

from .jobs import THEME_PROMPT, Mode

# Per-backend parameters each mode implies. Cloud backends add their entries as they land.
MODE_PARAMS: dict[str, dict[Mode, dict[str, object]]] = {
    "local": {
        Mode.DRAFT: {"detail": "coarse"},
        Mode.PRODUCTION: {"detail": "fine"},
    },
    # Meshy: Draft is the cheap, fast preview (meshy-5, 5 credits, a low polycount); Production is the
    # newest model's preview, then a PBR refine of it (backends/meshy.py chains the two).
    "meshy": {
        Mode.DRAFT: {"ai_model": "meshy-5", "target_polycount": 10000, "topology": "triangle"},
        Mode.PRODUCTION: {"ai_model": "latest", "enable_pbr": True, "texture_resolution": "2k"},
    },
}

REFINE_PROMOTES = frozenset({"meshy"})
"""Backends whose Promote is the provider's refine of the draft's own preview (its task id is kept on the
result), not the same request again in Production."""


PROVIDER_THEMES = frozenset({"tripo", "meshy"})
"""Backends whose Production applies a batch's theme with the provider's own AI texturing (one shared
texture prompt on every model, a paid step after geometry). Elsewhere the theme is a Blender material."""


def theme_params(backend: str, mode: Mode, theme_prompt: str) -> dict[str, object]:
    """What a batch's theme asks of the generator: Tripo textures every Production model with it, Meshy
    refines every preview with it as the texture prompt."""
    if mode is Mode.PRODUCTION and backend in PROVIDER_THEMES and theme_prompt.strip():
        return {THEME_PROMPT: theme_prompt.strip()}
    return {}


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
