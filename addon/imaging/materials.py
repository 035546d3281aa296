"""Words that name a material, and the PBR values they stand for.

Shared by the local engine (a "wooden barrel" gets wood's colour and roughness) and by batch themes
(`theme_from_prompt`), so one word means the same surface everywhere.
"""

from __future__ import annotations

MATERIAL_WORDS: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "wooden": ((0.45, 0.29, 0.16), 0.0, 0.8),
    "wood": ((0.45, 0.29, 0.16), 0.0, 0.8),
    "oak": ((0.5, 0.34, 0.2), 0.0, 0.8),
    "stone": ((0.5, 0.5, 0.48), 0.0, 0.95),
    "rocky": ((0.5, 0.5, 0.48), 0.0, 0.95),
    "iron": ((0.42, 0.43, 0.45), 1.0, 0.45),
    "steel": ((0.62, 0.63, 0.65), 1.0, 0.3),
    "metal": ((0.6, 0.61, 0.63), 1.0, 0.35),
    "bronze": ((0.7, 0.45, 0.2), 1.0, 0.4),
    "gold": ((0.95, 0.75, 0.3), 1.0, 0.25),
    "golden": ((0.95, 0.75, 0.3), 1.0, 0.25),
    "silver": ((0.9, 0.9, 0.92), 1.0, 0.2),
    "crystal": ((0.55, 0.8, 0.95), 0.0, 0.05),
    "ice": ((0.8, 0.92, 1.0), 0.0, 0.1),
    "clay": ((0.72, 0.42, 0.3), 0.0, 0.85),
    "ceramic": ((0.85, 0.82, 0.75), 0.0, 0.35),
    "marble": ((0.92, 0.91, 0.88), 0.0, 0.3),
    "brick": ((0.6, 0.25, 0.18), 0.0, 0.9),
    "leather": ((0.35, 0.2, 0.12), 0.0, 0.7),
    "fabric": ((0.55, 0.5, 0.6), 0.0, 0.95),
    "plastic": ((0.8, 0.8, 0.82), 0.0, 0.4),
    "glass": ((0.7, 0.85, 0.85), 0.0, 0.05),
    "red": ((0.7, 0.12, 0.1), 0.0, 0.6),
    "green": ((0.2, 0.5, 0.2), 0.0, 0.7),
    "blue": ((0.15, 0.25, 0.65), 0.0, 0.6),
    "black": ((0.05, 0.05, 0.05), 0.0, 0.6),
    "white": ((0.9, 0.9, 0.9), 0.0, 0.6),
}
"""Material word → (base colour, metallic, roughness)."""
