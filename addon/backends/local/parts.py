"""The small grammar archetypes are written in: an archetype is a list of `Part`s, each a reusable
primitive with a size, an anchor, a material slot, an optional copy pattern and a condition.

    street lamp = base (cyl) + pole (cyl) + arm (tube) + head (alt: cone | ball | box)

Adding an archetype is therefore a data entry in `catalog.py`; this module turns entries into
shapes. Everything is in metres, Z up, the front facing -Y, and `at` is the bottom centre of a part.

Variation comes from the seed, never from wall-clock or global state: the whole assembly is
stretched per axis, cross-sections are jittered, `opt` parts come and go, one variant of each `alt`
group is chosen, and counts given as ranges ("ring:3-5") are drawn.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ...imaging.glb import FloatArray
from .shapes import (
    Shape,
    box,
    cylinder,
    hard_lathe,
    lathe,
    merge,
    prism,
    rounded_box,
    sphere,
    torus,
    tube,
)

# Material slots. Which material fills a slot is decided by the words (text.py), not by the part.
MAIN, ACCENT, LIGHT, DARK, MOSS, FOLIAGE, RUST, TRIM, GLASS, CLOTH = range(10)

Vec = tuple[float, float, float]


@dataclass(frozen=True)
class Part:
    """One primitive of an archetype.

    kind:   box, cyl, ball, blob, capsule, tube, torus, lathe, prism, tiers, cluster, spikes, blades,
            steps, arc.
    size:   extents (x, y, z) in metres; for tube the radius is size[0] / 2.
    copies: "" one; "x" / "y" mirrored; "xy" four corners; "ring:N" N around Z; "row:N:dx" along X;
            "rowy:N:dy" along Y; "col:N:dz" up Z. N may be a seeded range "3-5".
    when:   "" always; "prod" Production only (secondary detail); "draft" Draft only; "opt" or
            "opt:0.3" present with that chance; "alt:group/variant" one variant per group is kept.
    """

    kind: str
    size: Vec
    at: Vec = (0.0, 0.0, 0.0)
    slot: int = MAIN
    turn: tuple[tuple[str, float], ...] = ()
    copies: str = ""
    when: str = ""
    end: Vec | None = None
    profile: tuple[tuple[float, float], ...] = ()
    taper: float = 1.0
    count: str = ""


@dataclass
class Piece:
    """A built closed shell and its material slot; `base` pieces are never dropped by 'broken'."""

    shape: Shape
    slot: int
    base: bool = False
    detail: bool = False
    round: bool = False


ROUND_KINDS = frozenset({"cyl", "lathe", "capsule", "ball", "blob", "tiers", "cluster"})


@dataclass
class Assembly:
    """What building an archetype gives: pieces plus the level of detail they were built at."""

    pieces: list[Piece] = field(default_factory=list)

    def add(self, shape: Shape, slot: int = MAIN, base: bool = False, detail: bool = False,
            round_: bool = False) -> None:
        self.pieces.append(Piece(shape, slot, base, detail, round_))

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        points = np.concatenate([p.shape.positions for p in self.pieces])
        return points.min(axis=0), points.max(axis=0)

    def transform(self, scale: Vec = (1, 1, 1), offset: Vec = (0, 0, 0), turn_z: float = 0.0) -> None:
        for piece in self.pieces:
            shape = piece.shape.scaled(scale) if scale != (1, 1, 1) else piece.shape
            if turn_z:
                shape = shape.rotated("z", turn_z)
            piece.shape = shape.moved(offset) if offset != (0, 0, 0) else shape

    def triangles(self) -> int:
        return int(sum(len(p.shape.indices) for p in self.pieces))


@dataclass
class Detail:
    """How finely to build: segments around, bevels on boxes, secondary detail parts."""

    segments: int
    production: bool
    bevel: bool

    @property
    def round_segments(self) -> int:
        return max(4, self.segments // 2)


def build_parts(parts: tuple[Part, ...], rng: np.random.Generator, detail: Detail, vary: float = 0.12,
                simple: bool = False) -> Assembly:
    """Turn an archetype's parts into pieces, drawing every seeded choice from `rng` in a fixed order."""
    chosen = _choose_alternatives(parts, rng)
    assembly = Assembly()
    for _index, part in enumerate(parts):
        keep = _kept(part, rng, detail, simple) and (not part.when.startswith("alt:") or part.when in chosen)
        thickness = float(1.0 + rng.uniform(-0.08, 0.08))
        if not keep:
            continue
        for shape in _copies(part, rng, detail, thickness):
            assembly.add(shape, part.slot, base=not assembly.pieces, detail=part.when == "prod",
                         round_=part.kind in ROUND_KINDS)
    stretch = tuple(float(1.0 + rng.uniform(-vary, vary)) for _ in range(3))
    assembly.transform(scale=(stretch[0], stretch[1], stretch[2]))
    return assembly


def _choose_alternatives(parts: tuple[Part, ...], rng: np.random.Generator) -> set[str]:
    groups: dict[str, list[str]] = {}
    for part in parts:
        if part.when.startswith("alt:"):
            group = part.when[4:].split("/")[0]
            if part.when not in groups.setdefault(group, []):
                groups[group].append(part.when)
    return {options[int(rng.integers(len(options)))] for _, options in sorted(groups.items())}


def _kept(part: Part, rng: np.random.Generator, detail: Detail, simple: bool) -> bool:
    roll = float(rng.random())  # drawn for every part so choices never shift the rest of the sequence
    if part.when == "prod":
        return detail.production and not simple
    if part.when == "draft":
        return not detail.production
    if part.when.startswith("opt"):
        chance = float(part.when[4:]) if part.when.startswith("opt:") else 0.5
        return roll < chance and not simple
    return True


_COPIES = re.compile(r"(ring|row|rowy|col):(\d+)(?:-(\d+))?(?::([-\d.]+))?")


def _count(low: str, high: str | None, rng: np.random.Generator) -> int:
    return int(rng.integers(int(low), int(high) + 1)) if high else int(low)


def _drawn(spec: str, rng: np.random.Generator) -> int:
    """"4" or a seeded draw from "3-5"."""
    low, _, high = spec.partition("-")
    return _count(low, high or None, rng)


def _copies(part: Part, rng: np.random.Generator, detail: Detail, thickness: float) -> list[Shape]:
    """The part's shape at each of its copy positions (each copy its own closed shell)."""
    x, y, z = part.at
    if part.copies in ("", "x", "y", "xy"):
        first = _placed(part, rng, detail, thickness, (x, y, z))
        shapes = [first]
        if "x" in part.copies:
            shapes.append(mirrored(first, 0))
        if "y" in part.copies:
            shapes += [mirrored(s, 1) for s in list(shapes)]
        return shapes
    match = _COPIES.fullmatch(part.copies)
    if not match:
        raise ValueError(f"bad copy pattern {part.copies!r}")
    how, low, high, step = match.groups()
    count = _count(low, high, rng)
    shapes = []
    for i in range(count):
        if how == "ring":
            angle = 2 * math.pi * i / count
            shapes.append(_placed(part, rng, detail, thickness, (x, y, z)).rotated("z", angle))
        else:
            offset = (i - (count - 1) / 2) * float(step or 0.0) if how != "col" else i * float(step or 0.0)
            at = {"row": (x + offset, y, z), "rowy": (x, y + offset, z), "col": (x, y, z + offset)}[how]
            shapes.append(_placed(part, rng, detail, thickness, at))
    return shapes


def _placed(part: Part, rng: np.random.Generator, detail: Detail, thickness: float, at: Vec) -> Shape:
    shape = _primitive(part, rng, detail, thickness)
    if part.kind == "tube":  # built between its real ends; a copy moves it by its offset from `at`
        offset = (at[0] - part.at[0], at[1] - part.at[1], at[2] - part.at[2])
        return shape.moved(offset) if offset != (0.0, 0.0, 0.0) else shape
    for axis, degrees in part.turn:
        shape = shape.rotated(axis, math.radians(degrees))
    return shape.moved(at)


def _primitive(part: Part, rng: np.random.Generator, detail: Detail, thickness: float) -> Shape:
    """The part's shape with its bottom centre at the origin (tubes: at their real ends)."""
    sx, sy, sz = part.size
    seg, rseg = detail.segments, detail.round_segments
    kind = part.kind
    if kind == "box":
        w, d = sx * thickness, sy * thickness
        if detail.bevel and min(w, d, sz) > 0.01:
            return rounded_box((w, d, sz), min(min(w, d, sz) * 0.1, 0.04), 1)  # a worn edge, not a pillow
        return box((w, d, sz), (0, 0, sz / 2))
    if kind == "cyl":
        radius = sx / 2 * thickness
        top = radius * part.taper
        if detail.bevel and part.taper > 0.05 and min(radius, sz) > 0.03:
            c = min(radius, top, sz) * 0.15
            return hard_lathe([(0.0, 0.0), (radius - c, 0.0), (radius - c, 0.0), (radius, c), (radius, c),
                               (top, sz - c), (top, sz - c), (top - c, sz), (top - c, sz), (0.0, sz)], seg)
        return cylinder(radius, sz, seg, top_radius=top).scaled((1.0, sy / sx, 1.0))
    if kind == "ball":
        return sphere(0.5, rseg, seg).scaled((sx * thickness, sy * thickness, sz)).moved((0, 0, sz / 2))
    if kind == "blob":
        rough = part.taper if part.taper < 1 else 0.15  # a blob's taper is its roughness
        lumpy = _lumpy(rng, sphere(0.5, rseg, seg), rough)
        return lumpy.scaled((sx * thickness, sy * thickness, sz)).moved((0, 0, sz / 2))
    if kind == "capsule":
        return capsule(sx / 2 * thickness, sz, rseg, seg).scaled((1.0, sy / sx, 1.0))
    if kind == "tube":
        start = np.asarray(part.at, np.float32)
        end = np.asarray(part.end or (0.0, 0.0, 1.0), np.float32)
        radius = sx / 2 * thickness
        return tube((float(start[0]), float(start[1]), float(start[2])), (float(end[0]), float(end[1]), float(end[2])),
                    radius, max(6, seg // 2), end_radius=radius * part.taper)
    if kind == "torus":
        return torus(sx / 2, sz / 2 * thickness, seg, max(6, rseg))  # centred on `at`, unlike the rest
    if kind == "lathe":
        profile = [(r * sx * thickness, zz * sz) for r, zz in part.profile]
        return lathe(profile, seg).scaled((1.0, sy / sx, 1.0)) if sy != sx else lathe(profile, seg)
    if kind == "prism":
        outline = [(px * sx, pz * sz) for px, pz in part.profile]
        return prism(outline, sy)
    if kind == "tiers":
        return _tiers(part, rng, seg)
    if kind == "cluster":
        return _cluster(part, rng, detail)
    if kind == "spikes":
        return _spikes(part, rng)
    if kind == "blades":
        return _blades(part, rng, detail)
    if kind == "steps":
        return _steps(part, rng)
    if kind == "arc":
        return _arc(part, detail)
    raise ValueError(f"unknown part kind {kind!r}")


# ------------------------------------------------------------------------------------ organic kinds
def _lumpy(rng: np.random.Generator, shape: Shape, roughness: float) -> Shape:
    noise = rng.uniform(1 - roughness, 1 + roughness * 0.6, size=len(shape.positions)).astype(np.float32)
    # Coincident seam and pole vertices must move together, or the shell would tear open.
    _, first, inverse = np.unique(np.round(shape.positions, 5), axis=0, return_index=True, return_inverse=True)
    noise = noise[first][inverse.ravel()]
    return Shape(shape.positions * noise[:, None], shape.normals, shape.uvs, shape.indices)


def _tiers(part: Part, rng: np.random.Generator, segments: int) -> Shape:
    """Stacked cones (a conifer's crown): size is (width, width, height)."""
    count = _drawn(part.count or "3-5", rng)
    shapes = []
    z, radius = 0.0, part.size[0] / 2
    step = part.size[2] / (count * 0.55 + 0.45)
    for _ in range(count):
        height = step * float(rng.uniform(0.9, 1.1))
        shapes.append(cylinder(radius, height, segments, top_radius=0.0).moved((0, 0, z)))
        z += height * 0.55
        radius *= float(rng.uniform(0.66, 0.78))
    return _merge(shapes)


def _cluster(part: Part, rng: np.random.Generator, detail: Detail) -> Shape:
    """A clump of lumpy blobs (a broadleaf crown, a bush): size is its bounding extents."""
    sx, sy, sz = part.size
    count = int(rng.integers(3, 6))
    shapes = [_lumpy(rng, sphere(0.5, detail.round_segments, detail.segments), 0.12)
              .scaled((sx * 0.75, sy * 0.75, sz * 0.75)).moved((0, 0, sz * 0.45))]
    for _ in range(count - 1):
        ox, oy = rng.uniform(-0.3, 0.3, 2)
        scale = float(rng.uniform(0.4, 0.6))
        shapes.append(_lumpy(rng, sphere(0.5, detail.round_segments, detail.segments), 0.12)
                      .scaled((sx * scale, sy * scale, sz * scale))
                      .moved((float(ox) * sx, float(oy) * sy, sz * float(rng.uniform(0.3, 0.6)))))
    return _merge(shapes)


def _spikes(part: Part, rng: np.random.Generator) -> Shape:
    sx, _, sz = part.size
    shapes = []
    for i in range(int(rng.integers(3, 7))):
        height = sz * (1.0 if i == 0 else float(rng.uniform(0.4, 0.75)))
        base, top = sx * 0.15 * float(rng.uniform(0.8, 1.2)), sx * 0.12 * float(rng.uniform(0.8, 1.2))
        spike = hard_lathe([(0.0, 0.0), (base, 0.0), (base, 0.0), (top, height * 0.8), (top, height * 0.8),
                            (0.0, height)], 6)
        tilt = 0.0 if i == 0 else float(rng.uniform(0.3, 0.7))
        turn = float(rng.uniform(0, 2 * math.pi))
        offset = (0.0, 0.0, 0.0) if i == 0 else (sx * 0.08 * math.cos(turn), sx * 0.08 * math.sin(turn), -0.03 * sz)
        shapes.append(spike.rotated("y", tilt).rotated("z", turn).moved(offset))
    return _merge(shapes)


def _blades(part: Part, rng: np.random.Generator, detail: Detail) -> Shape:
    sx, _, sz = part.size
    count = int(rng.integers(8, 13)) if detail.production else int(rng.integers(5, 9))
    shapes = []
    for _ in range(count):
        height = sz * float(rng.uniform(0.6, 1.0))
        blade = cylinder(sx * 0.06, height, 3, top_radius=0.0)
        tilt, turn = float(rng.uniform(0.05, 0.45)), float(rng.uniform(0, 2 * math.pi))
        ox, oy = rng.uniform(-sx * 0.2, sx * 0.2, 2)
        shapes.append(blade.rotated("y", tilt).rotated("z", turn).moved((float(ox), float(oy), 0)))
    return _merge(shapes)


def _steps(part: Part, rng: np.random.Generator) -> Shape:
    """A flight of stairs rising along +Y: size is (width, run, rise) of the whole flight."""
    steps = _drawn(part.count or "4-8", rng)
    width, run, rise = part.size[0], part.size[1] / steps, part.size[2] / steps
    outline = [(0.0, 0.0), (steps * run, 0.0), (steps * run, steps * rise)]
    for i in range(steps - 1, 0, -1):
        outline += [(i * run, (i + 1) * rise), (i * run, i * rise)]
    outline.append((0.0, rise))
    return prism(outline, width).rotated("z", math.pi / 2).moved((0, -steps * run / 2, 0))


def _arc(part: Part, detail: Detail) -> Shape:
    """Voussoirs of a half-round arch springing at z=0: size is (span, depth, stone thickness)."""
    span, depth, thick = part.size
    stones = max(5, detail.segments // 2 + 1)
    radius = span / 2 + thick / 2
    shapes = []
    for i in range(stones):
        angle = math.pi * (i + 0.5) / stones
        px, pz = radius * math.cos(angle), radius * math.sin(angle)
        stone = box((thick, depth, math.pi * radius / stones * 0.96)).rotated("y", -angle)
        shapes.append(stone.moved((px, 0, pz)))
    return _merge(shapes)


def capsule(radius: float, length: float, rings: int, segments: int) -> Shape:
    """A vertical capsule from z=0 to z=length."""
    length = max(length, 2 * radius + 1e-3)
    cap = [(radius * math.sin(t), radius - radius * math.cos(t)) for t in np.linspace(0, math.pi / 2, rings)]
    top = [(r, length - zz) for r, zz in reversed(cap)]
    profile = [(0.0, 0.0), *cap[1:], *top[:-1], (0.0, length)]
    return lathe([(float(r), float(zz)) for r, zz in profile], segments)


def _merge(shapes: list[Shape]) -> Shape:
    return merge(shapes)


def mirrored(shape: Shape, axis: int) -> Shape:
    """The shape reflected through the plane axis=0, its winding reversed so it stays outward."""
    flip = np.ones(3, np.float32)
    flip[axis] = -1
    return Shape(shape.positions * flip, shape.normals * flip, shape.uvs, shape.indices[:, ::-1].copy()
                 if shape.indices.ndim == 2 else shape.indices.reshape(-1, 3)[:, ::-1].ravel().copy())
