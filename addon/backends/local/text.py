"""Text → blockout: map a prompt to an archetype and build it procedurally, deterministically by seed.

The point is an honest, instant blockout, not a model: a prompt the engine does not know gets a
generic blockout and says so (`matched: None` plus a warning), never a pretend match.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .glb import Material
from .shapes import PartBuilder, box, cylinder, lathe, sphere

# Material words → (base colour, metallic, roughness).
MATERIAL_WORDS: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "wooden": ((0.45, 0.29, 0.16), 0.0, 0.8),
    "wood": ((0.45, 0.29, 0.16), 0.0, 0.8),
    "stone": ((0.5, 0.5, 0.48), 0.0, 0.95),
    "iron": ((0.42, 0.43, 0.45), 1.0, 0.45),
    "metal": ((0.6, 0.61, 0.63), 1.0, 0.35),
    "gold": ((0.95, 0.75, 0.3), 1.0, 0.25),
    "golden": ((0.95, 0.75, 0.3), 1.0, 0.25),
    "crystal": ((0.55, 0.8, 0.95), 0.0, 0.05),
    "moss": ((0.3, 0.45, 0.18), 0.0, 0.9),
    "mossy": ((0.3, 0.45, 0.18), 0.0, 0.9),
    "clay": ((0.72, 0.42, 0.3), 0.0, 0.85),
    "marble": ((0.92, 0.91, 0.88), 0.0, 0.3),
}

PROPORTION_WORDS: dict[str, tuple[float, float, float]] = {
    "tall": (1.0, 1.0, 1.5),
    "short": (1.0, 1.0, 0.65),
    "wide": (1.5, 1.5, 1.0),
    "narrow": (0.7, 0.7, 1.0),
    "thin": (0.7, 0.7, 1.0),
    "round": (1.2, 1.2, 0.9),
    "big": (1.4, 1.4, 1.4),
    "large": (1.4, 1.4, 1.4),
    "small": (0.7, 0.7, 0.7),
    "tiny": (0.45, 0.45, 0.45),
}

STYLE_SEGMENTS = {"low-poly": 6, "lowpoly": 6, "blocky": 4, "smooth": 32}


@dataclass
class Blockout:
    """What an archetype builder gets: the parsed prompt and a seeded random source."""

    rng: np.random.Generator
    segments: int
    detail: float
    """1.0 in Draft; Production adds detail (segments) on top."""
    attachments: set[str] = field(default_factory=set)
    parts: PartBuilder = field(default_factory=PartBuilder)

    def jitter(self, value: float, amount: float = 0.15) -> float:
        return float(value * (1.0 + self.rng.uniform(-amount, amount)))


Builder = Callable[[Blockout], None]
# Material slots every builder may use: 0 = main material, 1 = accent (bands, trims, lights).
MAIN, ACCENT = 0, 1


def _crate(b: Blockout) -> None:
    size = b.jitter(1.0)
    b.parts.add(box((size, size, size), (0, 0, size / 2)))
    if "bands" in b.attachments or b.rng.random() < 0.5:
        for z in (0.15 * size, 0.85 * size):
            b.parts.add(box((size * 1.04, size * 1.04, size * 0.08), (0, 0, z)), ACCENT)


def _barrel(b: Blockout) -> None:
    radius, height = b.jitter(0.45), b.jitter(1.2)
    bulge = b.jitter(1.15, 0.05)
    profile = [(0.0, 0.0)] + [
        (radius * (1 + (bulge - 1) * math.sin(math.pi * t)), height * t) for t in np.linspace(0, 1, 7)
    ] + [(0.0, height)]
    b.parts.add(lathe(profile, b.segments))
    for t in (0.15, 0.85):
        ring_r = radius * (1 + (bulge - 1) * math.sin(math.pi * t)) * 1.03
        b.parts.add(cylinder(ring_r, height * 0.06, b.segments).moved((0, 0, height * t - height * 0.03)), ACCENT)


def _rock(b: Blockout) -> None:
    shape = sphere(b.jitter(0.6), max(4, b.segments // 2), b.segments)
    noise = b.rng.uniform(0.75, 1.2, size=len(shape.positions)).astype(np.float32)
    # Coincident seam/pole vertices must move together, or the shell would tear.
    keys = np.round(shape.positions, 5)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    noise = noise[inverse.ravel()]
    shape.positions = shape.positions * noise[:, None] * np.array([1.2, 1.0, 0.7], np.float32)
    low = float(shape.positions[:, 2].min())
    b.parts.add(shape.moved((0, 0, -low)))


def _pine(b: Blockout) -> None:
    trunk_h = b.jitter(0.6)
    b.parts.add(cylinder(b.jitter(0.12), trunk_h, b.segments), ACCENT)
    tiers = 3 + int(b.rng.integers(0, 2))
    z = trunk_h * 0.7
    radius = b.jitter(0.9)
    for _ in range(tiers):
        height = radius * 1.3
        b.parts.add(cylinder(radius, height, b.segments, top_radius=0.0).moved((0, 0, z)))
        z += height * 0.55
        radius *= 0.72


def _table(b: Blockout) -> None:
    width, depth, height = b.jitter(1.4), b.jitter(0.8), b.jitter(0.75, 0.08)
    top = 0.06
    b.parts.add(box((width, depth, top), (0, 0, height - top / 2)))
    leg = 0.07
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.parts.add(box((leg, leg, height - top), (sx * (width / 2 - leg), sy * (depth / 2 - leg),
                                                        (height - top) / 2)), ACCENT)


def _pillar(b: Blockout) -> None:
    height, radius = b.jitter(3.0), b.jitter(0.3)
    b.parts.add(box((radius * 3, radius * 3, 0.25), (0, 0, 0.125)), ACCENT)
    b.parts.add(cylinder(radius, height - 0.5, b.segments).moved((0, 0, 0.25)))
    b.parts.add(box((radius * 3, radius * 3, 0.25), (0, 0, height - 0.125)), ACCENT)


def _sword(b: Blockout) -> None:
    blade = b.jitter(0.9)
    b.parts.add(box((0.06, 0.02, 0.2), (0, 0, 0.1)), ACCENT)  # grip
    b.parts.add(box((0.3, 0.05, 0.04), (0, 0, 0.22)), ACCENT)  # guard
    b.parts.add(box((0.07, 0.015, blade), (0, 0, 0.24 + blade / 2)))
    b.parts.add(sphere(0.04, 4, 8).moved((0, 0, -0.02)), ACCENT)  # pommel


def _mushroom(b: Blockout) -> None:
    stem_h = b.jitter(0.5)
    b.parts.add(cylinder(b.jitter(0.1), stem_h, b.segments, top_radius=b.jitter(0.08)), ACCENT)
    cap = sphere(b.jitter(0.35), max(4, b.segments // 2), b.segments).scaled((1.0, 1.0, 0.55))
    b.parts.add(cap.moved((0, 0, stem_h)))


def _generic(b: Blockout) -> None:
    size = b.jitter(0.8)
    b.parts.add(box((size, size * b.jitter(0.8), size * 0.6), (0, 0, size * 0.3)))
    b.parts.add(sphere(size * 0.35, max(4, b.segments // 2), b.segments).moved((0, 0, size * 0.6 + size * 0.3)))


@dataclass(frozen=True)
class Archetype:
    name: str
    words: tuple[str, ...]
    build: Builder
    default_material: str
    accent_material: str


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("crate", ("crate", "box", "chest"), _crate, "wooden", "iron"),
    Archetype("barrel", ("barrel", "keg", "cask"), _barrel, "wooden", "iron"),
    Archetype("rock", ("rock", "boulder", "stone"), _rock, "stone", "moss"),
    Archetype("pine", ("pine", "fir", "conifer", "spruce"), _pine, "moss", "wooden"),
    Archetype("table", ("table", "desk"), _table, "wooden", "wooden"),
    Archetype("pillar", ("pillar", "column"), _pillar, "marble", "stone"),
    Archetype("sword", ("sword", "blade"), _sword, "iron", "wooden"),
    Archetype("mushroom", ("mushroom", "toadstool"), _mushroom, "clay", "marble"),
)
GENERIC = Archetype("generic", (), _generic, "clay", "clay")


@dataclass
class TextPlan:
    archetype: Archetype | None
    unknown_nouns: list[str]
    scale: tuple[float, float, float]
    materials: list[Material]
    segments: int
    attachments: set[str]


_WORD = re.compile(r"[a-z][a-z\-]*")
_STOP = {"a", "an", "the", "with", "of", "and", "in", "on", "for", "made", "old", "new", "some"}


def plan(prompt: str, seed: int, production: bool) -> TextPlan:
    words = _WORD.findall(prompt.lower())
    archetype = _match_archetype(words)
    scale = np.ones(3)
    for word in words:
        if word in PROPORTION_WORDS:
            scale *= PROPORTION_WORDS[word]
    segments = 24 if production else 12
    for word in words:
        segments = STYLE_SEGMENTS.get(word, segments)
    chosen = archetype or GENERIC
    material_words = [w for w in words if w in MATERIAL_WORDS]
    main_word = material_words[0] if material_words else chosen.default_material
    accent_word = material_words[1] if len(material_words) > 1 else chosen.accent_material
    rng = np.random.default_rng(seed)
    materials = [_material(main_word, rng), _material(accent_word, rng)]
    attachments = {w for w in words if w in {"bands", "vents", "lights", "moss", "trim"}}
    known = set(MATERIAL_WORDS) | set(PROPORTION_WORDS) | set(STYLE_SEGMENTS) | _STOP | attachments
    unknown = [w for w in words if w not in known] if archetype is None else []
    return TextPlan(archetype, unknown, (float(scale[0]), float(scale[1]), float(scale[2])), materials,
                    segments, attachments)


def _match_archetype(words: list[str]) -> Archetype | None:
    """The first archetype word wins, but a material word ("stone pillar") yields to a real noun."""
    hits = [
        (word, archetype)
        for word in words
        for archetype in ARCHETYPES
        if word in archetype.words or (word.endswith("s") and word[:-1] in archetype.words)
    ]
    for word, archetype in hits:
        if word not in MATERIAL_WORDS:
            return archetype
    return hits[0][1] if hits else None


def _material(word: str, rng: np.random.Generator) -> Material:
    color, metallic, roughness = MATERIAL_WORDS[word]
    jitter = rng.uniform(-0.05, 0.05, 3)
    rgb = tuple(float(np.clip(c + j, 0.0, 1.0)) for c, j in zip(color, jitter, strict=True))
    return Material(word, (rgb[0], rgb[1], rgb[2], 1.0), metallic, roughness)


def build(text_plan: TextPlan, seed: int) -> PartBuilder:
    blockout = Blockout(rng=np.random.default_rng(seed + 1), segments=text_plan.segments, detail=1.0,
                        attachments=text_plan.attachments)
    (text_plan.archetype or GENERIC).build(blockout)
    if text_plan.scale != (1.0, 1.0, 1.0):
        for shapes in blockout.parts.shapes.values():
            shapes[:] = [s.scaled(text_plan.scale) for s in shapes]
    return blockout.parts
