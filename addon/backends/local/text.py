"""Text → blockout: map a prompt to an archetype and build it procedurally, deterministically by seed.

The point is an honest, instant blockout, not a model. A prompt the engine does not know gets a
generic blockout and says so (`matched: None` plus a warning); it never pretends to a match.

Words shape the result: the archetype noun, proportions (tall, wide …), style (low-poly, smooth,
blocky), materials (wooden, iron, gold …, written as glTF PBR materials) and attachments ("with iron
bands", "with vents", "with warning lights", "mossy"). The seed varies proportions, detail placement
and colour.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...imaging.glb import Material, MeshPart
from ...imaging.materials import MATERIAL_WORDS
from .shapes import PartBuilder, Shape, box, cylinder, hard_lathe, lathe, prism, sphere

PROPORTION_WORDS: dict[str, tuple[float, float, float]] = {
    "tall": (1.0, 1.0, 1.5),
    "high": (1.0, 1.0, 1.4),
    "short": (1.0, 1.0, 0.65),
    "low": (1.0, 1.0, 0.7),
    "squat": (1.2, 1.2, 0.7),
    "wide": (1.5, 1.5, 1.0),
    "broad": (1.4, 1.4, 1.0),
    "long": (1.6, 1.0, 1.0),
    "narrow": (0.7, 0.7, 1.0),
    "thin": (0.7, 0.7, 1.0),
    "slender": (0.65, 0.65, 1.15),
    "round": (1.2, 1.2, 0.9),
    "fat": (1.3, 1.3, 1.0),
    "big": (1.4, 1.4, 1.4),
    "large": (1.4, 1.4, 1.4),
    "huge": (2.0, 2.0, 2.0),
    "giant": (2.5, 2.5, 2.5),
    "small": (0.7, 0.7, 0.7),
    "tiny": (0.45, 0.45, 0.45),
}

STYLE_SEGMENTS = {"low-poly": 6, "lowpoly": 6, "blocky": 4, "smooth": 32}

# Attachment words → attachment name.
ATTACHMENT_WORDS = {
    "band": "bands", "bands": "bands", "banded": "bands", "strap": "bands", "straps": "bands",
    "vent": "vents", "vents": "vents", "grille": "vents",
    "light": "lights", "lights": "lights", "lamp": "lights", "lamps": "lights", "warning": "lights",
    "moss": "moss", "mossy": "moss", "overgrown": "moss",
}

# Material slots every builder may use.
MAIN, ACCENT, LIGHT, VENT, MOSS = 0, 1, 2, 3, 4
_DETAIL_MATERIALS = {
    LIGHT: Material("warning_light", (1.0, 0.35, 0.05, 1.0), 0.0, 0.4, emissive=(1.0, 0.3, 0.0)),
    VENT: Material("vent_dark_metal", (0.08, 0.08, 0.09, 1.0), 1.0, 0.6),
    MOSS: Material("moss", (0.28, 0.45, 0.16, 1.0), 0.0, 0.95),
}


@dataclass
class Blockout:
    """What an archetype builder gets: a seeded random source, detail level and attachments."""

    rng: np.random.Generator
    segments: int
    production: bool
    attachments: set[str] = field(default_factory=set)
    parts: PartBuilder = field(default_factory=PartBuilder)

    def jitter(self, value: float, amount: float = 0.15) -> float:
        return float(value * (1.0 + self.rng.uniform(-amount, amount)))

    def pick(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def add(self, shape: Shape, slot: int = MAIN) -> None:
        self.parts.add(shape, slot)

    @property
    def round_segments(self) -> int:
        return max(4, self.segments // 2)


Builder = Callable[[Blockout], None]


# ---------------------------------------------------------------------------------------- helpers
def _ring_bands(b: Blockout, radius: float, height: float, heights: tuple[float, ...]) -> None:
    for t in heights:
        b.add(cylinder(radius * 1.04, height * 0.05, b.segments).moved((0, 0, height * t)), ACCENT)


def _moss_patches(b: Blockout, top_z: float, spread: float, count: int = 3) -> None:
    for _ in range(count):
        x, y = b.rng.uniform(-spread, spread, 2)
        patch = sphere(b.jitter(spread * 0.35), b.round_segments, b.segments).scaled((1.0, 1.0, 0.25))
        b.add(patch.moved((float(x), float(y), top_z)), MOSS)


def _lights(b: Blockout, positions: list[tuple[float, float, float]], size: float = 0.06) -> None:
    for pos in positions:
        b.add(sphere(size, b.round_segments, b.segments).moved(pos), LIGHT)


def _vents(b: Blockout, center: tuple[float, float, float], width: float, height: float, count: int) -> None:
    cx, cy, cz = center
    for i in range(count):
        z = cz - height / 2 + (i + 0.5) * height / count
        b.add(box((width, 0.03, height / count * 0.45), (cx, cy, z)), VENT)


# ---------------------------------------------------------------------------------------- props
def _crate(b: Blockout) -> None:
    size = b.jitter(1.0)
    b.add(box((size, size, size), (0, 0, size / 2)))
    if "bands" in b.attachments or b.rng.random() < 0.4:
        for z in (0.15 * size, 0.85 * size):
            b.add(box((size * 1.04, size * 1.04, size * 0.08), (0, 0, z)), ACCENT)
    if b.production:
        for side in (-1, 1):
            b.add(box((size * 0.9, 0.04, 0.08), (0, side * size * 0.51, size / 2)), ACCENT)
    if "vents" in b.attachments:
        _vents(b, (0, -size * 0.52, size * 0.5), size * 0.5, size * 0.3, 4)


def _chest(b: Blockout) -> None:
    width, depth, height = b.jitter(1.0), b.jitter(0.6), b.jitter(0.5)
    b.add(box((width, depth, height), (0, 0, height / 2)))
    # Slightly longer than the box: shells may intersect but must never share a vertex.
    lid = cylinder(depth / 2, width * 1.02, b.segments).rotated("y", math.pi / 2).moved((-width * 0.51, 0, 0))
    b.add(lid.scaled((1.0, 1.0, b.jitter(0.6))).moved((0, 0, height)))
    b.add(box((0.12, 0.05, 0.16), (0, -depth / 2 - 0.02, height)), ACCENT)  # lock
    if "bands" in b.attachments or b.production:
        for x in (-width * 0.35, width * 0.35):
            b.add(box((0.06, depth * 1.04, height * 1.02), (x, 0, height / 2)), ACCENT)


def _barrel(b: Blockout) -> None:
    radius, height = b.jitter(0.45), b.jitter(1.2)
    bulge = b.jitter(1.15, 0.05)
    profile = [(0.0, 0.0)] + [
        (radius * (1 + (bulge - 1) * math.sin(math.pi * t)), height * float(t)) for t in np.linspace(0, 1, 9)
    ] + [(0.0, height)]
    b.add(lathe(profile, b.segments))
    band_heights = (0.12, 0.5, 0.88) if "bands" in b.attachments or b.production else (0.15, 0.85)
    for t in band_heights:
        ring = radius * (1 + (bulge - 1) * math.sin(math.pi * t)) * 1.03
        b.add(cylinder(ring, height * 0.05, b.segments).moved((0, 0, height * t - height * 0.025)), ACCENT)


def _pot(b: Blockout) -> None:
    radius, height = b.jitter(0.25), b.jitter(0.5)
    neck = b.jitter(0.45, 0.2)
    profile = [(0.0, 0.0), (radius * 0.6, 0.0), (radius, height * 0.35), (radius * 0.95, height * 0.6),
               (radius * neck, height * 0.85), (radius * neck * 1.25, height), (0.0, height)]
    b.add(lathe(profile, b.segments))


def _lantern(b: Blockout) -> None:
    size = b.jitter(0.22)
    height = b.jitter(0.4)
    b.add(box((size, size, 0.04), (0, 0, 0.02)), ACCENT)
    b.add(box((size * 0.75, size * 0.75, height * 0.7), (0, 0, 0.04 + height * 0.35)), LIGHT)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(box((0.025, 0.025, height * 0.72), (sx * size * 0.42, sy * size * 0.42, 0.04 + height * 0.36)))
    b.add(cylinder(size * 0.6, height * 0.2, 4, top_radius=0.0).rotated("z", math.pi / 4)
          .moved((0, 0, 0.04 + height * 0.72)), ACCENT)
    b.add(cylinder(0.03, 0.08, 6).moved((0, 0, 0.04 + height * 0.86)), ACCENT)


def _book(b: Blockout) -> None:
    width, depth, thick = b.jitter(0.17), b.jitter(0.24), b.jitter(0.04, 0.4)
    b.add(box((width, depth, thick), (0, 0, thick / 2)))
    b.add(box((width * 0.95, depth * 0.96, thick * 0.8), (0.01, 0, thick / 2)), ACCENT)  # pages


def _bottle(b: Blockout) -> None:
    radius, height = b.jitter(0.05), b.jitter(0.3)
    profile = [(0.0, 0.0), (radius, 0.0), (radius, height * 0.6), (radius * 0.35, height * 0.78),
               (radius * 0.3, height), (0.0, height)]
    b.add(lathe(profile, b.segments))
    b.add(cylinder(radius * 0.33, height * 0.06, b.segments).moved((0, 0, height * 0.98)), ACCENT)


def _candle(b: Blockout) -> None:
    radius, height = b.jitter(0.03), b.jitter(0.15, 0.4)
    b.add(cylinder(radius, height, b.segments))
    b.add(sphere(radius * 0.5, b.round_segments, b.segments).scaled((1, 1, 1.8)).moved((0, 0, height + 0.02)), LIGHT)


# ---------------------------------------------------------------------------------------- environment
def _rock(b: Blockout) -> None:
    shape = _lumpy_sphere(b, b.jitter(0.6), 0.25)
    shape.positions = shape.positions * np.array([b.jitter(1.2), 1.0, b.jitter(0.7)], np.float32)
    shape = _on_ground(shape)
    b.add(shape)
    if "moss" in b.attachments:
        _moss_patches(b, float(shape.positions[:, 2].max()) * 0.85, 0.3)


def _cliff(b: Blockout) -> None:
    width, height = b.jitter(4.0), b.jitter(3.0)
    layers = b.pick(3, 5)
    z = 0.0
    for i in range(layers):
        layer_h = height / layers * b.jitter(1.0, 0.2)
        inset = i * 0.15
        slab = box((width * b.jitter(1.0 - inset * 0.5, 0.1), b.jitter(1.5 - inset), layer_h),
                   (b.jitter(0.1, 1.0), 0.2 * i, z + layer_h / 2))
        b.add(slab)
        z += layer_h
    if "moss" in b.attachments:
        _moss_patches(b, z, width * 0.3)


def _log(b: Blockout) -> None:
    radius, length = b.jitter(0.22), b.jitter(2.0)
    b.add(cylinder(radius, length, b.segments).rotated("y", math.pi / 2).moved((-length / 2, 0, radius)))
    for x in (-length / 2 - 0.005, length / 2 - 0.015):
        b.add(cylinder(radius * 0.85, 0.02, b.segments).rotated("y", math.pi / 2).moved((x, 0, radius)), ACCENT)
    if "moss" in b.attachments:
        _moss_patches(b, radius * 1.8, length * 0.3)


def _stump(b: Blockout) -> None:
    radius, height = b.jitter(0.35), b.jitter(0.5)
    b.add(cylinder(radius * 1.3, height * 0.2, b.segments, top_radius=radius))
    b.add(cylinder(radius, height * 0.85, b.segments).moved((0, 0, height * 0.15)))
    b.add(cylinder(radius * 0.9, 0.02, b.segments).moved((0, 0, height - 0.01)), ACCENT)
    roots = b.pick(2, 4)
    for i in range(roots):
        angle = 2 * math.pi * i / roots + float(b.rng.uniform(-0.4, 0.4))
        root = cylinder(radius * 0.25, radius * 1.2, b.round_segments, top_radius=radius * 0.05).rotated("y", 1.2)
        b.add(root.moved((radius * 0.5, 0, 0.05)).rotated("z", angle))
    if "moss" in b.attachments:
        _moss_patches(b, height, radius * 0.6, 2)


def _crystal(b: Blockout) -> None:
    for i in range(b.pick(3, 6)):
        height = b.jitter(1.0 if i == 0 else 0.6, 0.3)
        base, top = b.jitter(0.15), b.jitter(0.12)
        spike = hard_lathe([(0.0, 0.0), (base, 0.0), (base, 0.0), (top, height * 0.8), (top, height * 0.8),
                            (0.0, height)], 6)
        tilt = 0.0 if i == 0 else float(b.rng.uniform(0.3, 0.7))
        turn = float(b.rng.uniform(0, 2 * math.pi))
        offset = (0.0, 0.0, 0.0) if i == 0 else (0.08 * math.cos(turn), 0.08 * math.sin(turn), -0.03)
        b.add(spike.rotated("y", tilt).rotated("z", turn).moved(offset))


# ---------------------------------------------------------------------------------------- vegetation
def _pine(b: Blockout) -> None:
    trunk_h = b.jitter(0.8)
    b.add(cylinder(b.jitter(0.15), trunk_h, b.segments), ACCENT)
    tiers = b.pick(3, 5)
    z = trunk_h * 0.7
    radius = b.jitter(1.2)
    for _ in range(tiers):
        height = radius * b.jitter(1.3, 0.1)
        b.add(cylinder(radius, height, b.segments, top_radius=0.0).moved((0, 0, z)))
        z += height * 0.55
        radius *= b.jitter(0.72, 0.08)


def _broadleaf_tree(b: Blockout) -> None:
    trunk_h = b.jitter(2.0)
    b.add(cylinder(b.jitter(0.22), trunk_h, b.segments, top_radius=b.jitter(0.15)), ACCENT)
    crown = b.jitter(1.4)
    b.add(_lumpy_sphere(b, crown, 0.12).moved((0, 0, trunk_h + crown * 0.6)))
    for _ in range(b.pick(2, 4)):
        x, y = b.rng.uniform(-crown * 0.6, crown * 0.6, 2)
        b.add(_lumpy_sphere(b, crown * b.jitter(0.55), 0.1).moved((float(x), float(y), trunk_h + crown * 0.5)))


def _bush(b: Blockout) -> None:
    size = b.jitter(0.6)
    for _ in range(b.pick(3, 5)):
        x, y = b.rng.uniform(-size * 0.5, size * 0.5, 2)
        r = size * b.jitter(0.6, 0.3)
        b.add(_lumpy_sphere(b, r, 0.12).scaled((1, 1, 0.8)).moved((float(x), float(y), r * 0.7)))


def _grass(b: Blockout) -> None:
    blades = b.pick(7, 12) if b.production else b.pick(5, 8)
    for _ in range(blades):
        height = b.jitter(0.4, 0.35)
        blade = cylinder(0.025, height, 3, top_radius=0.0)
        tilt, turn = float(b.rng.uniform(0.05, 0.4)), float(b.rng.uniform(0, 2 * math.pi))
        x, y = b.rng.uniform(-0.08, 0.08, 2)
        b.add(blade.rotated("y", tilt).rotated("z", turn).moved((float(x), float(y), 0)))


def _mushroom(b: Blockout) -> None:
    stem_h = b.jitter(0.3)
    b.add(cylinder(b.jitter(0.06), stem_h, b.segments, top_radius=b.jitter(0.05)), ACCENT)
    cap_r = b.jitter(0.2)
    profile = [(0.0, 0.0), (cap_r, 0.0), (cap_r * 0.92, cap_r * 0.35), (cap_r * 0.6, cap_r * 0.62), (0.0, cap_r * 0.72)]
    b.add(lathe(profile, b.segments).moved((0, 0, stem_h * 0.95)))


def _cactus(b: Blockout) -> None:
    height, radius = b.jitter(1.8), b.jitter(0.2)
    b.add(_capsule(b, radius, height))
    for side in (-1, 1):
        if b.rng.random() < 0.8:
            arm_h = height * b.jitter(0.3)
            z = height * b.jitter(0.45, 0.2)
            b.add(_capsule(b, radius * 0.65, radius * 1.6).rotated("y", side * math.pi / 2)
                  .moved((side * radius * 0.4, 0, z)))
            b.add(_capsule(b, radius * 0.6, arm_h).moved((side * radius * 1.8, 0, z - radius * 0.3)))


# ---------------------------------------------------------------------------------------- architecture
def _wall(b: Blockout) -> None:
    width, height, thick = b.jitter(3.0), b.jitter(2.5), b.jitter(0.4)
    rows = b.pick(4, 6) if b.production else 1
    row_h = height / rows
    for r in range(rows):
        b.add(box((width * (1 if r % 2 == 0 else 0.98), thick, row_h * 0.98), (0, 0, row_h * (r + 0.5))))
    b.add(box((width * 1.04, thick * 1.2, 0.15), (0, 0, height + 0.075)), ACCENT)
    if "moss" in b.attachments:
        _moss_patches(b, height + 0.15, width * 0.35)
    if "lights" in b.attachments:
        _lights(b, [(x, -thick / 2 - 0.05, height * 0.8) for x in (-width / 3, width / 3)])
    if "vents" in b.attachments:
        _vents(b, (0, -thick / 2 - 0.015, height * 0.4), width * 0.3, height * 0.3, 5)


def _pillar(b: Blockout) -> None:
    height, radius = b.jitter(3.0), b.jitter(0.3)
    b.add(box((radius * 3, radius * 3, 0.25), (0, 0, 0.125)), ACCENT)
    b.add(cylinder(radius, height - 0.5, b.segments).moved((0, 0, 0.25)))
    b.add(box((radius * 3, radius * 3, 0.25), (0, 0, height - 0.125)), ACCENT)


def _arch(b: Blockout) -> None:
    span, height, thick = b.jitter(2.0), b.jitter(2.0), b.jitter(0.4)
    post = 0.35
    for side in (-1, 1):
        b.add(box((post, thick, height), (side * (span / 2 + post / 2), 0, height / 2)))
    stones = max(5, b.segments // 2 + 1)
    radius = span / 2 + post / 2
    for i in range(stones):
        angle = math.pi * (i + 0.5) / stones
        x, z = radius * math.cos(angle), height + radius * math.sin(angle)
        # The stone's long side follows the curve: tangent (-sin a, cos a) in the XZ plane.
        stone = box((post, thick, math.pi * radius / stones * 0.98)).rotated("y", -angle)
        b.add(stone.moved((x, 0, z)), ACCENT if i == stones // 2 else MAIN)


def _stairs(b: Blockout) -> None:
    steps = b.pick(4, 8)
    width, rise, run = b.jitter(1.2), b.jitter(0.18, 0.1), b.jitter(0.28, 0.1)
    # Side profile in (y, z), counter-clockwise seen from +X: floor, back wall, then the steps down.
    outline = [(0.0, 0.0), (steps * run, 0.0), (steps * run, steps * rise)]
    for i in range(steps - 1, 0, -1):
        outline += [(i * run, (i + 1) * rise), (i * run, i * rise)]
    outline.append((0.0, rise))
    # prism() extrudes an XZ outline along Y; turn it so the profile stands in YZ, stairs rising along +Y.
    b.add(prism(outline, width).rotated("z", math.pi / 2).moved((0, -steps * run / 2, 0)))


def _door(b: Blockout) -> None:
    width, height = b.jitter(1.0, 0.1), b.jitter(2.1, 0.08)
    b.add(box((width, 0.08, height), (0, 0, height / 2)))
    b.add(box((width + 0.26, 0.16, 0.12), (0, 0, height + 0.05)), ACCENT)
    for side in (-1, 1):
        b.add(box((0.1, 0.14, height), (side * (width / 2 + 0.05), 0, height / 2)), ACCENT)
    b.add(sphere(0.04, b.round_segments, b.segments).moved((width * 0.38, -0.08, height * 0.48)), ACCENT)
    if "bands" in b.attachments:
        for z in (0.2, 0.8):
            b.add(box((width * 0.9, 0.02, 0.08), (0, -0.05, height * z)), ACCENT)


def _scifi_panel(b: Blockout) -> None:
    width, height = b.jitter(1.5), b.jitter(1.5)
    b.add(box((width, 0.1, height), (0, 0, height / 2)))
    b.add(box((width * 0.8, 0.04, height * 0.8), (0, -0.06, height / 2)), ACCENT)
    if "vents" in b.attachments or b.production:
        _vents(b, (b.jitter(0.0, 1) - width * 0.15, -0.085, height * 0.35), width * 0.35, height * 0.3, b.pick(3, 6))
    if "lights" in b.attachments:
        _lights(b, [(width * 0.3, -0.09, height * (0.6 + 0.1 * i)) for i in range(b.pick(2, 3))], 0.04)


def _fence(b: Blockout) -> None:
    posts = b.pick(3, 5)
    spacing, height = b.jitter(0.9), b.jitter(1.0)
    total = spacing * (posts - 1)
    for i in range(posts):
        b.add(box((0.1, 0.1, height), (-total / 2 + i * spacing, 0, height / 2)))
    for z in (0.35, 0.75):
        b.add(box((total + 0.2, 0.05, 0.1), (0, -0.07, height * z)), ACCENT)


# ---------------------------------------------------------------------------------------- furniture
def _table(b: Blockout) -> None:
    width, depth, height = b.jitter(1.4), b.jitter(0.8), b.jitter(0.75, 0.08)
    top = 0.06
    b.add(box((width, depth, top), (0, 0, height - top / 2)))
    leg = 0.07
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(box((leg, leg, height - top), (sx * (width / 2 - leg), sy * (depth / 2 - leg), (height - top) / 2)),
                  ACCENT)


def _chair(b: Blockout) -> None:
    seat, seat_h, back_h = b.jitter(0.45, 0.1), b.jitter(0.45, 0.08), b.jitter(0.5, 0.2)
    b.add(box((seat, seat, 0.05), (0, 0, seat_h)))
    leg = 0.04
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(box((leg, leg, seat_h - 0.025), (sx * (seat / 2 - leg), sy * (seat / 2 - leg), (seat_h - 0.025) / 2)),
                  ACCENT)
    b.add(box((seat * 0.96, 0.04, back_h), (0, seat / 2 - 0.03, seat_h + back_h / 2)))


def _shelf(b: Blockout) -> None:
    width, depth, height = b.jitter(1.0), b.jitter(0.35), b.jitter(1.8)
    boards = b.pick(3, 5)
    for side in (-1, 1):
        b.add(box((0.04, depth, height), (side * (width / 2 - 0.02), 0, height / 2)))
    b.add(box((width - 0.04, 0.02, height * 0.98), (0, depth / 2 - 0.015, height / 2)))
    for i in range(boards + 1):
        b.add(box((width - 0.05, depth - 0.03, 0.03), (0, -0.005, 0.02 + i * (height - 0.04) / boards)), ACCENT)


def _bed(b: Blockout) -> None:
    width, length = b.jitter(1.4, 0.1), b.jitter(2.0, 0.05)
    b.add(box((width, length, 0.3), (0, 0, 0.25)), ACCENT)
    b.add(box((width * 0.96, length * 0.96, 0.2), (0, 0, 0.5)))
    b.add(box((width, 0.08, 1.0), (0, length / 2, 0.5)), ACCENT)
    b.add(box((width * 0.5, 0.35, 0.12), (0, length / 2 - 0.3, 0.66)))  # pillow


def _bench(b: Blockout) -> None:
    length, height = b.jitter(1.5), b.jitter(0.45, 0.08)
    b.add(box((length, 0.35, 0.06), (0, 0, height)))
    for x in (-length * 0.4, length * 0.4):
        b.add(box((0.06, 0.3, height - 0.03), (x, 0, (height - 0.03) / 2)), ACCENT)


# ---------------------------------------------------------------------------------------- weapons & tools
def _sword(b: Blockout) -> None:
    blade = b.jitter(0.9)
    b.add(box((0.035, 0.035, 0.2), (0, 0, 0.1)), ACCENT)  # grip
    b.add(box((b.jitter(0.3), 0.05, 0.04), (0, 0, 0.22)), ACCENT)  # guard
    b.add(box((0.07, 0.015, blade), (0, 0, 0.24 + blade / 2)))
    b.add(cylinder(0.035, 0.08, 4, top_radius=0.0).scaled((1, 0.25, 1)).moved((0, 0, 0.24 + blade)))
    b.add(sphere(0.035, b.round_segments, b.segments).moved((0, 0, -0.01)), ACCENT)  # pommel


def _shield(b: Blockout) -> None:
    radius = b.jitter(0.4)
    disc = cylinder(radius, 0.05, b.segments).rotated("x", math.pi / 2).moved((0, 0.025, radius))
    b.add(disc)
    b.add(sphere(radius * 0.2, b.round_segments, b.segments).scaled((1, 0.5, 1)).moved((0, -0.02, radius)), ACCENT)
    rim = cylinder(radius * 1.04, 0.03, b.segments).rotated("x", math.pi / 2).moved((0, 0.015, radius))
    b.add(rim, ACCENT)


def _axe(b: Blockout) -> None:
    handle = b.jitter(0.8)
    b.add(cylinder(0.02, handle, b.segments), ACCENT)
    head = cylinder(0.14, 0.03, 3).rotated("x", math.pi / 2).rotated("z", math.pi)
    b.add(head.scaled((1.3, 1, 1)).moved((0.09, 0.015, handle * 0.85)))


def _hammer(b: Blockout) -> None:
    handle = b.jitter(0.6)
    b.add(cylinder(0.02, handle, b.segments), ACCENT)
    b.add(box((b.jitter(0.22), 0.08, 0.08), (0, 0, handle + 0.03)))


# ---------------------------------------------------------------------------------------- characters
def _mannequin(b: Blockout) -> None:
    height = b.jitter(1.8, 0.08)
    unit = height / 8  # classic eight-heads proportion
    leg_len, torso, gap = unit * 4, unit * 3, unit * 0.25
    for side in (-1, 1):
        b.add(_capsule(b, unit * 0.3, leg_len).moved((side * unit * 0.45, 0, 0)))
        b.add(_capsule(b, unit * 0.22, unit * 3.1).moved((side * unit * 1.25, 0, leg_len + unit * 0.1)))
    b.add(_capsule(b, unit * 0.8, torso).scaled((1.0, 0.6, 1.0)).moved((0, 0, leg_len - unit * 0.2)))
    b.add(cylinder(unit * 0.2, gap * 2, b.segments).moved((0, 0, leg_len + torso - unit * 0.35)), ACCENT)
    b.add(sphere(unit * 0.5, b.round_segments, b.segments).scaled((0.85, 0.95, 1.1))
          .moved((0, 0, leg_len + torso + unit * 0.45)))


def _generic(b: Blockout) -> None:
    size = b.jitter(0.8)
    b.add(box((size, size * b.jitter(0.8), size * 0.6), (0, 0, size * 0.3)))
    b.add(sphere(size * 0.35, b.round_segments, b.segments).moved((0, 0, size * 0.9)))


# ---------------------------------------------------------------------------------------- shape helpers
def _lumpy_sphere(b: Blockout, radius: float, roughness: float) -> Shape:
    shape = sphere(radius, b.round_segments, b.segments)
    noise = b.rng.uniform(1 - roughness, 1 + roughness * 0.6, size=len(shape.positions)).astype(np.float32)
    # Coincident seam/pole vertices must move together, or the shell would tear open.
    _, first, inverse = np.unique(np.round(shape.positions, 5), axis=0, return_index=True, return_inverse=True)
    noise = noise[first][inverse.ravel()]
    return Shape(shape.positions * noise[:, None], shape.normals, shape.uvs, shape.indices)


def _on_ground(shape: Shape) -> Shape:
    return shape.moved((0, 0, -float(shape.positions[:, 2].min())))


def _capsule(b: Blockout, radius: float, length: float) -> Shape:
    """A vertical capsule from z=0 to z=length."""
    rings = b.round_segments
    cap = [(radius * math.sin(t), radius - radius * math.cos(t)) for t in np.linspace(0, math.pi / 2, rings)]
    top = [(r, length - z) for r, z in reversed(cap)]
    profile = [(0.0, 0.0), *cap[1:], *top[:-1], (0.0, length)]
    return lathe([(float(r), float(z)) for r, z in profile], b.segments)


# ---------------------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class Archetype:
    name: str
    category: str
    words: tuple[str, ...]
    build: Builder
    default_material: str
    accent_material: str


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("crate", "props", ("crate", "box", "container"), _crate, "wooden", "iron"),
    Archetype("chest", "props", ("chest", "treasure", "coffer", "trunk"), _chest, "wooden", "iron"),
    Archetype("barrel", "props", ("barrel", "keg", "cask"), _barrel, "wooden", "iron"),
    Archetype("pot", "props", ("pot", "vase", "jar", "urn", "amphora"), _pot, "clay", "clay"),
    Archetype("lantern", "props", ("lantern",), _lantern, "iron", "iron"),
    Archetype("book", "props", ("book", "tome", "grimoire"), _book, "leather", "ceramic"),
    Archetype("bottle", "props", ("bottle", "potion", "flask"), _bottle, "glass", "wooden"),
    Archetype("candle", "props", ("candle",), _candle, "ceramic", "ceramic"),
    Archetype("rock", "environment", ("rock", "boulder", "stone"), _rock, "stone", "stone"),
    Archetype("cliff", "environment", ("cliff", "ledge", "outcrop", "crag"), _cliff, "stone", "stone"),
    Archetype("log", "environment", ("log", "trunk-log", "driftwood"), _log, "wooden", "oak"),
    Archetype("stump", "environment", ("stump",), _stump, "wooden", "oak"),
    Archetype("crystal", "environment", ("crystal", "gem", "shard", "geode"), _crystal, "crystal", "crystal"),
    Archetype("pine", "vegetation", ("pine", "fir", "conifer", "spruce", "evergreen"), _pine, "green", "wooden"),
    Archetype("broadleaf_tree", "vegetation", ("tree", "oak-tree", "maple", "birch", "willow"), _broadleaf_tree,
              "green", "wooden"),
    Archetype("bush", "vegetation", ("bush", "shrub", "hedge"), _bush, "green", "green"),
    Archetype("grass", "vegetation", ("grass", "reeds", "weeds"), _grass, "green", "green"),
    Archetype("mushroom", "vegetation", ("mushroom", "toadstool", "fungus"), _mushroom, "red", "white"),
    Archetype("cactus", "vegetation", ("cactus", "saguaro"), _cactus, "green", "green"),
    Archetype("wall", "architecture", ("wall", "rampart"), _wall, "stone", "stone"),
    Archetype("pillar", "architecture", ("pillar", "column"), _pillar, "marble", "stone"),
    Archetype("arch", "architecture", ("arch", "archway", "gateway"), _arch, "stone", "stone"),
    Archetype("stairs", "architecture", ("stairs", "staircase", "steps", "stair"), _stairs, "stone", "stone"),
    Archetype("door", "architecture", ("door", "gate", "doorway"), _door, "wooden", "iron"),
    Archetype("scifi_panel", "architecture", ("panel", "sci-fi", "scifi", "console", "terminal"), _scifi_panel,
              "metal", "steel"),
    Archetype("fence", "architecture", ("fence", "railing", "palisade"), _fence, "wooden", "wooden"),
    Archetype("table", "furniture", ("table", "desk"), _table, "wooden", "wooden"),
    Archetype("chair", "furniture", ("chair", "stool", "seat"), _chair, "wooden", "wooden"),
    Archetype("shelf", "furniture", ("shelf", "bookshelf", "bookcase", "cabinet"), _shelf, "wooden", "wooden"),
    Archetype("bed", "furniture", ("bed", "cot", "bunk"), _bed, "fabric", "wooden"),
    Archetype("bench", "furniture", ("bench", "pew"), _bench, "wooden", "iron"),
    Archetype("sword", "weapons", ("sword", "blade", "sabre", "saber", "katana"), _sword, "steel", "leather"),
    Archetype("shield", "weapons", ("shield", "buckler"), _shield, "wooden", "iron"),
    Archetype("axe", "weapons", ("axe", "hatchet"), _axe, "steel", "wooden"),
    Archetype("hammer", "weapons", ("hammer", "mallet", "warhammer"), _hammer, "iron", "wooden"),
    Archetype("mannequin", "characters", ("mannequin", "humanoid", "human", "person", "man", "woman", "character",
                                          "figure", "knight", "soldier", "villager"), _mannequin, "plastic", "plastic"),
)
GENERIC = Archetype("generic", "generic", (), _generic, "clay", "clay")


@dataclass
class TextPlan:
    archetype: Archetype | None
    unknown_words: list[str]
    scale: tuple[float, float, float]
    main_material: str
    accent_material: str
    segments: int
    attachments: set[str]


_WORD = re.compile(r"[a-z][a-z\-]*")
_STOP = {"a", "an", "the", "with", "of", "and", "in", "on", "for", "made", "old", "new", "some", "very", "from",
         "to", "by", "at", "its", "style", "stylized", "stylised", "game", "asset", "prop", "model", "3d"}


def plan(prompt: str, production: bool) -> TextPlan:
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
    attachments = {ATTACHMENT_WORDS[w] for w in words if w in ATTACHMENT_WORDS}
    # "with iron bands": a material word right before an attachment word colours the attachment.
    accent_words = [w for w, nxt in itertools.pairwise(words) if w in MATERIAL_WORDS and nxt in ATTACHMENT_WORDS]
    main_words = [w for w in material_words if w not in accent_words]
    known = set(MATERIAL_WORDS) | set(PROPORTION_WORDS) | set(STYLE_SEGMENTS) | _STOP | set(ATTACHMENT_WORDS)
    unknown = [w for w in words if w not in known] if archetype is None else []
    return TextPlan(
        archetype=archetype,
        unknown_words=unknown,
        scale=(float(scale[0]), float(scale[1]), float(scale[2])),
        main_material=main_words[0] if main_words else chosen.default_material,
        accent_material=(accent_words or main_words[1:] or [chosen.accent_material])[0],
        segments=segments,
        attachments=attachments,
    )


STYLE_NOUNS = frozenset({"sci-fi", "scifi"})
"""Archetype words that are also styles: "sci-fi crate" is a crate, "sci-fi" alone a sci-fi panel."""


def _match_archetype(words: list[str]) -> Archetype | None:
    """The first archetype word wins, but a material or style word ("stone pillar", "sci-fi crate")
    yields to a real noun."""
    hits = [
        (word, archetype)
        for word in words
        for archetype in ARCHETYPES
        if word in archetype.words or (word.endswith("s") and word[:-1] in archetype.words)
    ]
    for word, archetype in hits:
        if word not in MATERIAL_WORDS and word not in STYLE_NOUNS:
            return archetype
    return hits[0][1] if hits else None


def _material(word: str, rng: np.random.Generator) -> Material:
    color, metallic, roughness = MATERIAL_WORDS[word]
    jitter = rng.uniform(-0.05, 0.05, 3)
    r, g, b = (float(np.clip(c + j, 0.0, 1.0)) for c, j in zip(color, jitter, strict=True))
    return Material(word, (r, g, b, 1.0), metallic, roughness)


def build(text_plan: TextPlan, seed: int, production: bool) -> tuple[list[MeshPart], list[Material]]:
    """Meshes and materials for the plan; materials are only those some part uses."""
    rng = np.random.default_rng(seed)
    slots = {MAIN: _material(text_plan.main_material, rng), ACCENT: _material(text_plan.accent_material, rng),
             **_DETAIL_MATERIALS}
    blockout = Blockout(rng=rng, segments=text_plan.segments, production=production,
                        attachments=text_plan.attachments)
    (text_plan.archetype or GENERIC).build(blockout)
    if text_plan.scale != (1.0, 1.0, 1.0):
        for shapes in blockout.parts.shapes.values():
            shapes[:] = [s.scaled(text_plan.scale) for s in shapes]
    parts = blockout.parts.parts()
    used = sorted({p.material for p in parts})
    remap = {slot: i for i, slot in enumerate(used)}
    for part in parts:
        part.material = remap[part.material]
    return parts, [slots[slot] for slot in used]
