"""Finishing presets as plain data: what Blender's own tools do to a result before it ships.

The Blender side (`addon/blender/finishing.py`) carries them out; this module only says what they
are and checks explicit settings (from a manifest's [finish] table) with clear errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from .imaging.materials import MATERIAL_WORDS
from .validation import show_value

REMESH_MODES = ("keep", "voxel", "quadriflow")
UV_MODES = ("auto", "smart", "lightmap", "keep")


@dataclass(frozen=True)
class FinishPreset:
    name: str
    remesh: str = "keep"
    """keep: the provider's topology; voxel: organic remesh; quadriflow: quad topology."""
    face_budget: int = 0
    """Decimate to at most this many faces (0: no limit)."""
    uv: str = "auto"
    """auto: Smart UV Project only when the mesh has no UVs or a remesh destroyed them."""
    bake: bool = True
    """After a remesh, bake the original colour onto the new mesh (Cycles, CPU)."""
    bake_size: int = 512
    texture_size: int = 1024
    """Textures are resized to a power of two no larger than this (0: leave them)."""
    lod_ratios: tuple[float, ...] = ()
    """LOD1… as decimate ratios of LOD0 (game target only), e.g. (0.5, 0.25)."""
    height_m: float = 0.0
    """Scale uniformly to this height in metres (0: keep the size)."""
    apply_transforms: bool = True


PRESETS: dict[str, FinishPreset] = {
    "game": FinishPreset("game", remesh="keep", face_budget=5000, uv="auto", texture_size=1024,
                         lod_ratios=(0.5, 0.25)),
    "game_organic": FinishPreset("game_organic", remesh="voxel", face_budget=5000, uv="smart", bake=True,
                                 bake_size=512, texture_size=1024, lod_ratios=(0.5, 0.25)),
    "game_quads": FinishPreset("game_quads", remesh="quadriflow", face_budget=4000, uv="smart", bake=True,
                               texture_size=1024, lod_ratios=(0.5, 0.25)),
    "film": FinishPreset("film", remesh="keep", face_budget=0, uv="auto", texture_size=4096, lod_ratios=()),
    "keep": FinishPreset("keep", remesh="keep", face_budget=0, uv="keep", bake=False, texture_size=0,
                         apply_transforms=False),
}


@dataclass(frozen=True)
class Theme:
    """A batch's shared look: what the theme prompt's words mean as a material."""

    prompt: str
    tint: tuple[float, float, float]
    roughness: float
    noise: float


def theme_from_prompt(prompt: str) -> Theme:
    """Material words in the theme prompt ("mossy green stone") set a tint and roughness; words like
    weathered or rough add noise. Unknown words leave a neutral grey, never a guess."""
    words = prompt.lower().replace(",", " ").split()
    hits = [MATERIAL_WORDS[w] for w in words if w in MATERIAL_WORDS]
    if "mossy" in words or "moss" in words:
        hits.append(((0.28, 0.45, 0.16), 0.0, 0.95))
    if hits:
        tint = tuple(sum(h[0][i] for h in hits) / len(hits) for i in range(3))
        roughness = sum(h[2] for h in hits) / len(hits)
    else:
        tint, roughness = (0.6, 0.6, 0.6), 0.7
    noise = 0.4 if {"weathered", "rough", "worn", "mossy", "dirty"} & set(words) else 0.0
    return Theme(prompt, (tint[0], tint[1], tint[2]), roughness, noise)


class PresetError(ValueError):
    """A [finish] setting Kiln cannot carry out; `key` names it."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(f"{key}: {what}")
        self.key = key
        self.what = what


MAX_FACE_BUDGET = 10_000_000
MAX_TEXTURE_SIZE = 16384
MAX_LODS = 8
MAX_HEIGHT_M = 10_000.0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def preset_from_settings(settings: dict[str, Any]) -> FinishPreset:
    """A preset from a manifest's [finish] table: `preset = "game"` plus overrides, or explicit steps.
    Every value must have the type the preset field has: a quoted "no" is not false."""
    base_name = settings.get("preset", "game")
    if not isinstance(base_name, str) or base_name not in PRESETS:
        raise PresetError("[finish] preset",
                          f"unknown preset {show_value(base_name)} (choose from {', '.join(PRESETS)})")
    base = PRESETS[base_name]
    allowed = {f.name for f in fields(FinishPreset)} - {"name"}
    overrides: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "preset":
            continue
        if key not in allowed:
            raise PresetError(f"[finish] {key}"[:80], f"unknown setting (known: preset, {', '.join(sorted(allowed))})")
        overrides[key] = value
    for key, choices in (("remesh", REMESH_MODES), ("uv", UV_MODES)):
        if key in overrides and (not isinstance(overrides[key], str) or overrides[key] not in choices):
            raise PresetError(f"[finish] {key}",
                              f"must be one of {', '.join(choices)}, not {show_value(overrides[key])}")
    for key in ("bake", "apply_transforms"):
        if key in overrides and not isinstance(overrides[key], bool):
            raise PresetError(f"[finish] {key}",
                              f"must be true or false (without quotes), not {show_value(overrides[key])}")
    for key, maximum in (("face_budget", MAX_FACE_BUDGET), ("bake_size", MAX_TEXTURE_SIZE),
                         ("texture_size", MAX_TEXTURE_SIZE)):
        value = overrides.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise PresetError(f"[finish] {key}", f"must be a whole number from 0 to {maximum}, not {show_value(value)}")
    for key in ("texture_size", "bake_size"):
        size = overrides.get(key, 0)
        if size and size & (size - 1):
            raise PresetError(f"[finish] {key}", f"{size} is not a power of two")
    if "lod_ratios" in overrides:
        ratios = overrides["lod_ratios"]
        if not isinstance(ratios, list) or len(ratios) > MAX_LODS or \
                not all(_is_number(r) and 0 < r < 1 for r in ratios):
            raise PresetError("[finish] lod_ratios", f"a list of up to {MAX_LODS} ratios between 0 and 1, e.g. "
                              f"[0.5, 0.25], not {show_value(ratios)}")
        overrides["lod_ratios"] = tuple(float(r) for r in ratios)
    if "height_m" in overrides:
        height = overrides["height_m"]
        if not _is_number(height) or not 0 <= height <= MAX_HEIGHT_M:
            raise PresetError("[finish] height_m", f"must be a number of metres from 0 to {MAX_HEIGHT_M:g}, not "
                              f"{show_value(height)}")
        overrides["height_m"] = float(height)
    return replace(base, name=f"{base_name}+custom" if overrides else base_name, **overrides)
