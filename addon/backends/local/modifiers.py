"""Words that change the shape of an assembled archetype, not only its colour.

Each condition is a function of the assembly and the seeded generator. Vertex moves are pure
functions of position, so vertices that coincide (seams, merged rims) move together and every shell
stays closed; anything added is its own closed shell.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ...imaging.glb import FloatArray
from .parts import ACCENT, DARK, FOLIAGE, LIGHT, MOSS, RUST, TRIM, Assembly, Detail
from .shapes import Shape, box, cylinder, sphere, torus, tube


def apply(assembly: Assembly, conditions: set[str], attachments: set[str], styles: set[str],
          rng: np.random.Generator, detail: Detail) -> None:
    """Breaking first, so moss and rust sit on what is left; trims last, on the final outline."""
    if "broken" in conditions:
        _broken(assembly, rng, detail)
    if "damaged" in conditions:
        _damaged(assembly, rng, detail)
    if "bands" in attachments:
        _bands(assembly, detail)
    if "vents" in attachments:
        _vents(assembly)
    if "lights" in attachments:
        _lights(assembly, detail)
    if "scifi" in styles:
        _scifi_trim(assembly)
    if "rusty" in conditions:
        _rust(assembly, rng, detail)
    if "mossy" in conditions or "overgrown" in conditions or "moss" in attachments:
        _moss(assembly, rng, detail, 5 if "overgrown" in conditions else 3)
    if "overgrown" in conditions:
        _overgrown(assembly, rng, detail)
    if "ornate" in conditions:
        _ornate(assembly, detail)


def _extent(assembly: Assembly) -> tuple[FloatArray, FloatArray, FloatArray]:
    low, high = assembly.bounds()
    return low, high, high - low


def _noise(points: FloatArray, seed: float, frequency: float) -> FloatArray:
    """Smooth deterministic noise in [-1, 1] from positions (no state: coincident vertices agree)."""
    p = points * frequency
    noise: FloatArray = (np.sin(p[:, 0] * 1.7 + seed) * np.cos(p[:, 1] * 1.3 - seed * 0.7)
                         + 0.5 * np.sin(p[:, 2] * 2.1 + p[:, 0] * 0.9 + seed * 1.3)) / 1.5
    return noise


def _broken(assembly: Assembly, rng: np.random.Generator, detail: Detail) -> None:
    """Parts fall off, the top is sheared down to a jagged break, rubble lies around the foot."""
    low, high, size = _extent(assembly)
    droppable = [i for i, p in enumerate(assembly.pieces) if not p.base]
    if droppable:
        count = max(1, int(len(droppable) * float(rng.uniform(0.2, 0.4))))
        gone = set(rng.choice(droppable, size=min(count, len(droppable)), replace=False).tolist())
        assembly.pieces = [p for i, p in enumerate(assembly.pieces) if i not in gone]
    height = float(size[2])
    cut = float(low[2]) + height * float(rng.uniform(0.55, 0.75))
    phase = float(rng.uniform(0, 100))
    scale = 4.0 / max(float(size[:2].max()), 1e-3)
    for piece in assembly.pieces:
        points = piece.shape.positions.copy()
        edge = cut + height * 0.12 * _noise(points, phase, scale)
        above = points[:, 2] > edge
        # Squash what is above the break rather than deleting it: faces stay non-degenerate, shells closed.
        points[above, 2] = edge[above] + (points[above, 2] - edge[above]) * 0.12
        piece.shape = Shape(points.astype(np.float32), piece.shape.normals, piece.shape.uvs, piece.shape.indices)
    _rubble(assembly, rng, detail, low, high, int(rng.integers(3, 6)), 0.12)


def _damaged(assembly: Assembly, rng: np.random.Generator, detail: Detail) -> None:
    """Dents and a lean: every shell is pushed in by smooth noise, a few parts are knocked askew."""
    low, high, size = _extent(assembly)
    centre = (low + high) / 2
    phase = float(rng.uniform(0, 100))
    scale = 6.0 / max(float(size.max()), 1e-3)
    for piece in assembly.pieces:
        points = piece.shape.positions
        outward = points - centre
        outward[:, 2] *= 0.3
        amount = np.clip(_noise(points, phase, scale), -1, 0.2)[:, None] * 0.06 * float(size.min())
        moved = points + outward / np.linalg.norm(outward, axis=1, keepdims=True).clip(1e-6) * amount
        piece.shape = Shape(moved.astype(np.float32), piece.shape.normals, piece.shape.uvs, piece.shape.indices)
    loose = [p for p in assembly.pieces if not p.base]
    for piece in loose[: max(1, len(loose) // 4)]:
        pivot = piece.shape.positions.min(axis=0)
        piece.shape = piece.shape.moved(tuple(-pivot)).rotated("y", float(rng.uniform(-0.2, 0.2))).moved(tuple(pivot))
    _rubble(assembly, rng, detail, low, high, 2, 0.08)


def _rubble(assembly: Assembly, rng: np.random.Generator, detail: Detail, low: FloatArray, high: FloatArray,
            count: int, fraction: float) -> None:
    size = high - low
    centre = (low + high) / 2
    chunk = max(float(size[:2].max()) * fraction, 0.03)
    slot = assembly.pieces[0].slot if assembly.pieces else 0
    for _ in range(count):
        angle = float(rng.uniform(0, 2 * math.pi))
        reach = float(size[:2].max()) * float(rng.uniform(0.5, 0.8))
        r = chunk * float(rng.uniform(0.5, 1.0))
        shape = sphere(r, max(3, detail.round_segments // 2), max(4, detail.segments // 2))
        shape = shape.scaled((1.0, float(rng.uniform(0.6, 1.0)), 0.6))
        where = (float(centre[0]) + reach * math.cos(angle), float(centre[1]) + reach * math.sin(angle),
                 float(low[2]) + r * 0.5)
        assembly.add(shape.moved(where), slot)


def _moss(assembly: Assembly, rng: np.random.Generator, detail: Detail, count: int) -> None:
    """Moss cushions on the highest up-facing surfaces of the biggest parts."""
    biggest = sorted(assembly.pieces, key=lambda p: -float(np.ptp(p.shape.positions[:, :2], axis=0).prod()))[:3]
    low, high, size = _extent(assembly)
    spread = float(size[:2].max())
    for i in range(count):
        piece = biggest[i % len(biggest)]
        points = piece.shape.positions
        normals = piece.shape.normals
        up = np.flatnonzero(normals[:, 2] > 0.5)
        candidates = up if len(up) else np.arange(len(points))
        # Favour high points: moss grows on tops and ledges.
        top = candidates[np.argsort(points[candidates, 2])[-max(1, len(candidates) // 3):]]
        anchor = points[int(rng.choice(top))]
        r = spread * float(rng.uniform(0.12, 0.22))
        jitter = rng.uniform(-0.15, 0.15, 2) * spread
        cushion = sphere(r, detail.round_segments, detail.segments).scaled((1.0, 1.0, 0.28))
        assembly.add(cushion.moved((float(np.clip(anchor[0] + jitter[0], low[0], high[0])),
                                    float(np.clip(anchor[1] + jitter[1], low[1], high[1])), float(anchor[2]))), MOSS)


def _overgrown(assembly: Assembly, rng: np.random.Generator, detail: Detail) -> None:
    """Vines climbing the sides and grass round the foot."""
    low, high, size = _extent(assembly)
    centre = (low + high) / 2
    radius = float(size[:2].max()) * 0.52
    for _ in range(int(rng.integers(2, 4))):
        angle = float(rng.uniform(0, 2 * math.pi))
        points: list[tuple[float, float, float]] = []
        for k in range(5):
            t = k / 4
            turn = angle + t * float(rng.uniform(0.6, 1.4))
            points.append((float(centre[0]) + radius * math.cos(turn), float(centre[1]) + radius * math.sin(turn),
                           float(low[2]) + float(size[2]) * 0.85 * t))
        for start, end in itertools.pairwise(points):
            assembly.add(tube(start, end, max(0.012, float(size.max()) * 0.012), 6), FOLIAGE)
    for _ in range(int(rng.integers(3, 6))):
        angle = float(rng.uniform(0, 2 * math.pi))
        x = float(centre[0]) + radius * 1.05 * math.cos(angle)
        y = float(centre[1]) + radius * 1.05 * math.sin(angle)
        height = max(0.08, float(size[2]) * 0.15)
        for _ in range(4):
            blade = cylinder(height * 0.08, height * float(rng.uniform(0.6, 1.0)), 3, top_radius=0.0)
            blade = blade.rotated("y", float(rng.uniform(0.1, 0.5))).rotated("z", float(rng.uniform(0, 6.28)))
            assembly.add(blade.moved((x, y, float(low[2]))), FOLIAGE)


def _rust(assembly: Assembly, rng: np.random.Generator, detail: Detail) -> None:
    """Flaking rust blotches proud of the sides (their own shells), and the accents turn to rust."""
    for piece in assembly.pieces:
        if piece.slot == ACCENT:
            piece.slot = RUST
    low, high, size = _extent(assembly)
    centre = (low + high) / 2
    for _ in range(int(rng.integers(6, 10))):
        angle = float(rng.uniform(0, 2 * math.pi))
        z = float(low[2]) + float(size[2]) * float(rng.uniform(0.1, 0.8))
        direction = np.array([math.cos(angle), math.sin(angle)])
        # Reach just past the bounding ellipse so the blotch shows on the surface.
        reach = np.abs(direction) * size[:2] / 2
        r = float(size[:2].min()) * float(rng.uniform(0.12, 0.22))
        blotch = sphere(r, max(3, detail.round_segments // 2), max(6, detail.segments // 2)).scaled((1.0, 0.45, 0.8))
        blotch = blotch.rotated("z", angle + math.pi / 2)
        assembly.add(blotch.moved((float(centre[0] + direction[0] * reach.max() * 0.98),
                                   float(centre[1] + direction[1] * reach.max() * 0.98), z)), RUST)


def _ornate(assembly: Assembly, detail: Detail) -> None:
    """Gilded trims: a plinth and cornice and finials on broad things, rings and a gem on slender ones."""
    low, high, size = _extent(assembly)
    centre = (low + high) / 2
    width, depth, height = (float(v) for v in size)
    if max(width, depth) < height * 0.25:  # slender: sword, staff, lamp post
        radius = max(width, depth) * 0.5
        for t in (0.2, 0.5, 0.8):
            ring = torus(max(radius * 0.6, 0.02), max(radius * 0.12, 0.006), detail.segments, 6)
            assembly.add(ring.moved((float(centre[0]), float(centre[1]), float(low[2]) + height * t)), TRIM)
        gem = sphere(max(radius * 0.35, 0.02), detail.round_segments, detail.segments)
        assembly.add(gem.moved((float(centre[0]), float(low[1]) - 0.005, float(low[2]) + height * 0.35)), LIGHT)
        return
    trim = max(height * 0.05, 0.02)
    assembly.add(box((width * 1.08, depth * 1.08, trim),
                     (float(centre[0]), float(centre[1]), float(low[2]) + trim / 2)), TRIM)
    assembly.add(box((width * 1.06, depth * 1.06, trim), (float(centre[0]), float(centre[1]),
                                                         float(high[2]) - trim * 0.4)), TRIM)
    finial = max(min(width, depth) * 0.08, 0.02)
    for sx in (-1, 1):
        for sy in (-1, 1):
            ball = sphere(finial, detail.round_segments, detail.segments)
            assembly.add(ball.moved((float(centre[0]) + sx * width * 0.5, float(centre[1]) + sy * depth * 0.5,
                                     float(high[2]) + finial * 0.8)), TRIM)
    assembly.add(sphere(finial * 1.3, detail.round_segments, detail.segments).scaled((1.0, 0.4, 1.0))
                 .moved((float(centre[0]), float(low[1]) - finial * 0.2, float(low[2]) + height * 0.6)), TRIM)


def _bands(assembly: Assembly, detail: Detail) -> None:
    """Two straps round the main body, round or square as the body is."""
    base = assembly.pieces[0]
    low, high = base.shape.positions.min(axis=0), base.shape.positions.max(axis=0)
    size, centre = high - low, (low + high) / 2
    for t in (0.18, 0.82):
        z = float(low[2] + size[2] * t)
        thick = float(size[2]) * 0.07
        if base.round:
            band = cylinder(float(size[:2].max()) / 2 * 1.06, thick, detail.segments)
            assembly.add(band.moved((float(centre[0]), float(centre[1]), z - thick / 2)), ACCENT)
        else:
            strap = box((float(size[0]) * 1.04, float(size[1]) * 1.04, thick), (float(centre[0]), float(centre[1]), z))
            assembly.add(strap, ACCENT)


def _vents(assembly: Assembly) -> None:
    base = assembly.pieces[0]
    low, high = base.shape.positions.min(axis=0), base.shape.positions.max(axis=0)
    size, centre = high - low, (low + high) / 2
    slats = 5
    for i in range(slats):
        z = float(low[2] + size[2] * (0.25 + 0.35 * (i + 0.5) / slats))
        assembly.add(box((float(size[0]) * 0.45, 0.03, float(size[2]) * 0.35 / slats * 0.45),
                         (float(centre[0]), float(low[1]) - 0.012, z)), DARK)


def _lights(assembly: Assembly, detail: Detail) -> None:
    low, high, size = _extent(assembly)
    r = max(float(np.sort(size)[1]) * 0.05, 0.02)  # the middle extent: a flat panel still gets visible lamps
    for sx in (-0.35, 0.35):
        bulb = sphere(r, detail.round_segments, detail.segments)
        assembly.add(bulb.moved((float((low[0] + high[0]) / 2 + sx * size[0]), float(low[1]) - r * 0.3,
                                 float(low[2] + size[2] * 0.8))), LIGHT)


def _scifi_trim(assembly: Assembly) -> None:
    """Sci-fi styling: glowing strips along the front and dark panel seams on the sides."""
    base = assembly.pieces[0]
    low, high = base.shape.positions.min(axis=0), base.shape.positions.max(axis=0)
    size, centre = high - low, (low + high) / 2
    strip = max(float(size[2]) * 0.04, 0.01)
    for t in (0.15, 0.85):
        assembly.add(box((float(size[0]) * 0.8, strip, strip),
                         (float(centre[0]), float(low[1]) - strip * 0.3, float(low[2] + size[2] * t))), LIGHT)
    for side in (-1, 1):
        assembly.add(box((strip, float(size[1]) * 0.7, float(size[2]) * 0.6),
                         (float(centre[0] + side * (size[0] / 2 + strip * 0.2)), float(centre[1]),
                          float(low[2] + size[2] * 0.5))), DARK)

